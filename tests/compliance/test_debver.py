"""Debian version ordering agrees with dpkg itself."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from security_checks.compliance.debver import compare

pytestmark = pytest.mark.skipif(shutil.which("dpkg") is None, reason="needs dpkg to compare against")

part = st.text(alphabet="0123456789.+~abz", min_size=1, max_size=6).map(lambda s: "1" + s)
versions = st.builds(lambda e, u, r: (f"{e}:" if e else "") + u + (f"-{r}" if r else ""),
                     st.sampled_from([0, 0, 1, 2]), part, st.one_of(st.just(""), part))


def dpkg(a: str, b: str) -> int:
    if subprocess.run(["dpkg", "--compare-versions", a, "lt", b], capture_output=True).returncode == 0:
        return -1
    if subprocess.run(["dpkg", "--compare-versions", a, "eq", b], capture_output=True).returncode == 0:
        return 0
    return 1


@pytest.mark.parametrize("a, b", [("1.0~rc1", "1.0"), ("2.36-9+deb12u4", "2.36-9+deb12u10"), ("1:1.0", "2.0"),
                                  ("1.0-1+b1", "1.0-1"), ("1.0", "1.00"), ("3.0.11-1~deb12u2", "3.0.15-1~deb12u1")])
def test_known_pairs(a: str, b: str) -> None:
    r = compare(a, b)
    assert (r > 0) - (r < 0) == dpkg(a, b)


@settings(max_examples=150, deadline=None)
@given(versions, versions)
def test_matches_dpkg(a: str, b: str) -> None:
    r = compare(a, b)
    assert (r > 0) - (r < 0) == dpkg(a, b)
