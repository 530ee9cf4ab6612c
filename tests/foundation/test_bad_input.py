"""Bad input still gets one clear line: file:line, the field, exit 2, nothing stored.

Each case from issue 15 item 3: an impossible date, an unknown YAML tag, a section given twice in one
file, square brackets in a path or a target (read as console markup before), a pipe or a device
where a file was expected. The estate cases run through `estate validate` as a user would.
"""

from __future__ import annotations

import io
import os
import re
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from security_checks.cli.common import STYLE_TAGS, SafeConsole
from tests.conftest import ESTATE_BIN, REPO


def estate(*args: str | Path, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("ESTATE_DIR", "ESTATE_DEBUG")}
    env.update(ESTATE_HOME=str(home), COLUMNS="300")
    return subprocess.run([str(ESTATE_BIN), *map(str, args)], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def one_line_exit_2(p: subprocess.CompletedProcess[str]) -> str:
    assert p.returncode == 2, (p.returncode, p.stdout, p.stderr)
    assert "Traceback" not in p.stderr and "internal error" not in p.stderr, p.stderr
    return p.stderr


@pytest.mark.parametrize("content, line, field, message", [
    # 30 February matches YAML's date pattern, but is no date.
    ("waivers:\n  - {check: scan.weak_tls, justification: a reviewed risk, approved_by: Aisha Okafor,\n"
     "     approved_on: 2026-02-30, expires: 2027-01-01}\n", 3, "waivers[*].approved_on",
     "'2026-02-30' is not a valid date (day is out of range for month)"),
    ("zones:\n  - !zone {name: extra, kind: user}\n", 2, "zones[*]", "unknown YAML tag '!zone'"),
    ("zones:\n  - {name: extra, kind: !!python/name:os.system user}\n", 2, "zones[*].kind",
     "unknown YAML tag 'tag:yaml.org,2002:python/name:os.system'"),
    ("scan_scopes: !!python/object/apply:os.system [id]\n", 1, "scan_scopes", "unknown YAML tag"),
    # A second `zones:` in one file was merged silently (PyYAML keeps the last).
    ("zones:\n  - {name: extra-a, kind: user}\nzones:\n  - {name: extra-b, kind: user}\n", 3, "zones",
     "duplicate key (first at line 1)"),
    # An empty key (`? `) or a list as a key has no section name: found by the fuzz test, which saw an
    # empty field name where the file and field must be named.
    ("? \n", 1, "(file)", "a top-level key must be a section name"),
    ("? [zones, sites]\n: []\n", 1, "(file)", "a top-level key must be a section name"),
])
def test_a_broken_estate_file_is_one_line_with_file_line_and_field(
        demo_copy: Path, tmp_path: Path, content: str, line: int, field: str, message: str) -> None:
    bad = demo_copy / "zz-bad.yaml"
    bad.write_text(content)
    stderr = one_line_exit_2(estate("validate", "--estate", demo_copy, cwd=tmp_path, home=tmp_path / "h"))
    pattern = re.escape(f"{bad}:{line}: ") + re.escape(field).replace(r"\*", r"\d+") + re.escape(f": {message}")
    assert re.search(pattern, stderr), stderr
    assert not (tmp_path / "h").exists()


def test_a_pipe_or_device_in_the_estate_is_refused_not_read(demo_copy: Path, tmp_path: Path) -> None:
    (demo_copy / "zz-zero.yaml").symlink_to("/dev/zero")
    os.mkfifo(demo_copy / "zz-pipe.yaml")   # opening it would wait for a writer for ever
    stderr = one_line_exit_2(estate("validate", "--estate", demo_copy, cwd=tmp_path, home=tmp_path / "h"))
    for name in ("zz-zero.yaml", "zz-pipe.yaml"):
        assert f"{demo_copy / name}:1: (file): not a regular file" in stderr, stderr


def test_an_estate_file_over_the_limit_is_refused_by_a_bounded_read(demo_copy: Path) -> None:
    from security_checks.model import loader

    big = demo_copy / "zz-big.yaml"
    big.write_bytes(b"# " + b"x" * loader.MAX_FILE_BYTES)
    with pytest.raises(loader.EstateError) as info:
        loader.load_estate(demo_copy)
    assert [str(p) for p in info.value.problems] == [f"{big}:1: (file): larger than 5 MB: not an estate file"]


def test_a_device_as_a_scan_file_stops_at_the_limit(tmp_path: Path) -> None:
    """/dev/zero never ends: a bounded read refuses it at 64 MiB instead of running out of memory."""
    stderr = one_line_exit_2(estate("scan", "import", "/dev/zero", cwd=tmp_path, home=tmp_path / "h"))
    assert "/dev/zero: over the 64 MiB limit" in stderr, stderr
    assert not (tmp_path / "h" / "estate.db").exists()


def test_square_brackets_in_a_path_are_printed_as_given(tmp_path: Path) -> None:
    folder = tmp_path / "ITHC [final]"
    folder.mkdir()
    (folder / "scan.xml").write_text("<report/>")
    stderr = one_line_exit_2(estate("scan", "import", "ITHC [final]/scan.xml", cwd=tmp_path, home=tmp_path / "h"))
    assert "ITHC [final]/scan.xml" in stderr, stderr
    assert not (tmp_path / "h" / "estate.db").exists()


@pytest.mark.parametrize("target", ["[/]", "[bold]", "[red]x[/red]", "10.0.0.0/8 [x]"])
def test_square_brackets_in_a_target_are_refused_in_one_line_that_shows_them(tmp_path: Path, target: str) -> None:
    stderr = one_line_exit_2(estate("scan", "--scope", "civic-centre-internal", "-t", target, cwd=tmp_path,
                                    home=tmp_path / "h"))
    assert target in stderr, stderr


@pytest.mark.parametrize("name", ["Harrowdale [pilot]", "x [/] y", "[bold red]"])
def test_estate_values_with_brackets_are_not_markup_either(demo_copy: Path, tmp_path: Path, name: str) -> None:
    org = demo_copy / "organisation.yaml"
    text = org.read_text()
    org.write_text(text.replace("short_name: hdc", f"short_name: '{name}'", 1))
    stderr = one_line_exit_2(estate("validate", "--estate", demo_copy, cwd=tmp_path, home=tmp_path / "h"))
    # The message quotes the pattern, brackets and all.
    assert "organisation.short_name: String should match pattern '^[a-z][a-z0-9-]{0,39}$'" in stderr, stderr


# -- the console: user text printed inside the CLI's own markup comes out as written ------------------

_pieces = st.sampled_from(["[", "]", "/", "\\", "a", " ", ":", "=", "@", "#", "[/]", "[x]", "[/x]", "[link=y]",
                           "[@click]", "[#ff0000]", ":smile:", "\\[", *(f"[{t}]" for t in STYLE_TAGS)])
_user_text = st.one_of(st.lists(_pieces, max_size=12).map("".join),
                       st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40))
# The one thing still read as markup: one of the CLI's own style tags, later closed, in user text.
_STYLED_PAIR = re.compile(r"\[(" + "|".join(map(re.escape, STYLE_TAGS)) + r")\].*\[/", re.DOTALL)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_user_text)
def test_user_text_inside_the_clis_markup_prints_as_written(text: str) -> None:
    if _STYLED_PAIR.search(text):
        return
    console = SafeConsole(file=io.StringIO(), width=1000)
    console.print(f"[bold red]error:[/] {text} [green]ok[/]", soft_wrap=True)
    assert console.file.getvalue() == f"error: {text} ok\n"   # type: ignore[attr-defined]


def test_the_cli_uses_only_its_own_style_tags() -> None:
    """A style tag the CLI writes that SafeConsole does not know would be printed as text."""
    used = set()
    for path in (REPO / "security_checks" / "cli").glob("*.py"):
        used |= set(re.findall(r"\[(bold|dim|italic|red|green|yellow|blue|cyan|magenta|white)( [a-z]+)?\]",
                               path.read_text()))
    assert {"".join(t) for t in used} <= STYLE_TAGS
