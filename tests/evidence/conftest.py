"""Evidence tests share the report builders (a store with two real runs) and one pair of sealed bundles."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace

import pytest

from security_checks.evidence.bundle import seal
from tests.report.builders import demo_loaded, make_two_runs, patched_catalogue


@pytest.fixture(scope="module")
def sealed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    root = tmp_path_factory.mktemp("bundles")
    with patched_catalogue(root):
        loaded = demo_loaded()
        home = root / "home"
        store, a, b = make_two_runs(home, loaded)
        first = seal(store, a, home / "bundles", loaded, keys_dir=home / "keys")
        second = seal(store, b, home / "bundles", loaded, keys_dir=home / "keys")
        yield SimpleNamespace(home=home, store=store, a=a, b=b, first=first, second=second, loaded=loaded)
