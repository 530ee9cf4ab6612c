"""Fuzzing what users hand the product: estate YAML and nmap XML. Whatever the bytes, the answer is
a loaded estate or EstateError (problems with file:line), a parsed scan or BadScanXml: never another
exception, which the CLI would print as an internal error."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from security_checks.model.loader import EstateError, load_estate
from security_checks.scan.nmapxml import BadScanXml, parse
from tests.conftest import DEMO

pytestmark = pytest.mark.slow
FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])

# Estate-shaped text: the demo's own zones and one site, to be cut up and spliced with YAML's
# sharper edges (tags, anchors, merge keys, impossible dates, duplicate keys, flow syntax).
SEED = (DEMO / "zones.yaml").read_text() + "\n" + (DEMO / "scan_scopes.yaml").read_text()
EDGES = ["!foo ", "!!python/object:os.system ", "&a ", "*a", "<<: *a\n", "2026-02-30", "0x1F", "1e400", "~",
         "zones:\n", "- ", "{", "}", "[", "]", ": ", "\n  ", "\t", "'", '"', "? ", "|\n", "%YAML 1.1\n", "---\n",
         "...\n", "\x00", "\ufeff", "name: a\nname: b\n", "cidrs: [10.0.0.0/33]", "expires: 2027-13-01"]


@pytest.fixture(scope="module")
def lone_dir() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as d:
        yield Path(d)


def _splice(data: st.DataObject) -> str:
    lines = SEED.splitlines(keepends=True)
    for _ in range(data.draw(st.integers(1, 6))):
        i = data.draw(st.integers(0, len(lines)))
        op = data.draw(st.sampled_from(["insert", "delete", "duplicate", "cut"]))
        if op == "insert":
            lines.insert(i, data.draw(st.sampled_from(EDGES)))
        elif lines and op == "delete":
            del lines[min(i, len(lines) - 1)]
        elif lines and op == "duplicate":
            lines.insert(i, lines[min(i, len(lines) - 1)])
        elif lines:
            line = lines[min(i, len(lines) - 1)]
            j = data.draw(st.integers(0, len(line)))
            lines[min(i, len(lines) - 1)] = line[:j] + data.draw(st.sampled_from(EDGES)) + line[j:]
    return "".join(lines)


def _load(directory: Path) -> None:
    try:
        load_estate(directory)
    except EstateError as exc:
        assert exc.problems
        for p in exc.problems:
            assert p.file and p.field and p.message and "\n" not in str(p), p


@FUZZ
@given(st.data())
def test_estate_yaml_spliced_with_yaml_edges_is_loaded_or_refused_clearly(lone_dir: Path, data: st.DataObject) -> None:
    (lone_dir / "estate.yaml").write_text(_splice(data), encoding="utf-8")
    _load(lone_dir)


@FUZZ
@given(st.binary(max_size=400) | st.text(max_size=400).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_any_bytes_as_an_estate_file_are_loaded_or_refused_clearly(lone_dir: Path, raw: bytes) -> None:
    (lone_dir / "estate.yaml").write_bytes(raw)
    _load(lone_dir)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                 HealthCheck.function_scoped_fixture])
@given(st.data())
def test_a_whole_estate_with_one_file_spliced_is_loaded_or_refused_clearly(tmp_path_factory: pytest.TempPathFactory,
                                                                           data: st.DataObject) -> None:
    root = tmp_path_factory.mktemp("fuzz-estate")
    shutil.copytree(DEMO, root / "e")
    (root / "e" / "zones.yaml").write_text(_splice(data), encoding="utf-8")
    (root / "e" / "scan_scopes.yaml").unlink()
    _load(root / "e")


# -- nmap XML ----------------------------------------------------------------------------------------

NMAP = """<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE nmaprun>
<nmaprun scanner="nmap" args="nmap -sS -sV 10.10.30.20" start="1796200000" version="7.93" xmloutputversion="1.05">
<scaninfo type="syn" protocol="tcp" numservices="3" services="22,443,8000-8002"/>
<host starttime="1796200001" endtime="1796200009"><status state="up" reason="arp-response" reason_ttl="0"/>
<address addr="10.10.30.20" addrtype="ipv4"/><hostnames><hostname name="web-01" type="PTR"/></hostnames>
<ports><extraports state="filtered" count="997"/>
<port protocol="tcp" portid="22"><state state="open" reason="syn-ack" reason_ttl="64"/>
<service name="ssh" product="OpenSSH" version="9.2p1" method="probed" conf="10"/>
<script id="ssh2-enum-algos" output="x"><table key="kex_algorithms"><elem>curve25519-sha256</elem></table></script>
</port>
<port protocol="tcp" portid="443"><state state="open" reason="syn-ack" reason_ttl="64"/>
<service name="https" tunnel="ssl" method="probed" conf="10"/></port>
</ports></host>
<runstats><finished time="1796200009" elapsed="9.00" exit="success"/><hosts up="1" down="0" total="1"/></runstats>
</nmaprun>
"""
XML_EDGES = ['<!DOCTYPE x [<!ENTITY e "lol">]>', "&e;", '<!ENTITY % p SYSTEM "file:///etc/passwd">', "<", ">",
             "</port>", "<port>", 'portid="99999"', 'portid="-1"', 'portid="x"', 'addr="not-an-ip"', 'services="1-"',
             'services="65536"', "\x00", "]]>", "<![CDATA[", 'state="open"', 'protocol="sctp"', 'count="x"']


@FUZZ
@given(st.data())
def test_nmap_xml_spliced_with_hostile_edges_is_parsed_or_refused_clearly(data: st.DataObject) -> None:
    text = NMAP
    for _ in range(data.draw(st.integers(1, 5))):
        i = data.draw(st.integers(0, len(text)))
        if data.draw(st.booleans()):
            text = text[:i] + data.draw(st.sampled_from(XML_EDGES)) + text[i:]
        else:
            text = text[:i] + text[i + data.draw(st.integers(1, 40)):]
    try:
        parse(text.encode("utf-8", "surrogatepass"), source="fuzz.xml")
    except BadScanXml as exc:
        assert str(exc).startswith("fuzz.xml") and "\n" not in str(exc), exc


@FUZZ
@given(st.binary(max_size=600))
def test_any_bytes_as_nmap_xml_are_parsed_or_refused_clearly(raw: bytes) -> None:
    try:
        parse(raw, source="fuzz.xml")
    except BadScanXml as exc:
        assert str(exc).startswith("fuzz.xml"), exc
