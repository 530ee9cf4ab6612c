"""The report, the board PDF and the network diagram of a council of 30-40+ sites, looked at.

For every council under tests/estates, an assessment plus an ITHC-style import of three hosts at
every site (each answering telnet and an undeclared web port: hundreds of findings of a handful
of checks, which is what a real estate's first ITHC looks like) is reported, and the pages are
rendered the way people see them: the HTML dashboard by headless Chromium (file:// only, nothing
fetched), the PDF pages by pdftoppm, the diagram by Graphviz. The PNGs are kept as the test's
artefact in out/screens/<council>/ (ESTATE_SCREENS overrides) for a person to look at, and the
test asserts what can be measured in them:

- the diagram is laid out by site kind (HQ first) near A3 proportions, not one column of sites;
- no page of the PDF but the last is nearly blank, and repeated findings are one row each;
- the asset column of the findings table is never squeezed to a few characters a line;
- `estate check psn` on all those findings still fits a screen.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from defusedxml import ElementTree

from security_checks.model.loader import load_estate

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
ESTATE_BIN = REPO / ".venv" / "bin" / "estate"
ESTATES = sorted(p.parent for p in (REPO / "tests" / "estates").glob("*/organisation.yaml"))
HOSTS_PER_SITE = 3

# Chromium with everything that could reach the network switched off; it only opens file:// pages.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars"]
# Appended to a copy of the page: measures each asset cell in characters of its own font, after layout.
MEASURE = """<script>
(function () {
  var cells = Array.prototype.slice.call(document.querySelectorAll("td.asset")).slice(0, 400);
  var canvas = document.createElement("canvas").getContext("2d"), out = [];
  cells.forEach(function (td) {
    var cs = getComputedStyle(td); canvas.font = cs.fontSize + " " + cs.fontFamily;
    var ch = canvas.measureText("0").width, pad = parseFloat(cs.paddingLeft) + parseFloat(cs.paddingRight);
    if (td.offsetParent !== null) out.push(Math.floor((td.getBoundingClientRect().width - pad) / ch));
  });
  var pre = document.createElement("pre"); pre.id = "asset-widths"; pre.textContent = JSON.stringify(out);
  document.body.appendChild(pre);
})();
</script>"""


PORTS = ('<port protocol="tcp" portid="23"><state state="open" reason="syn-ack"/>'
         '<service name="telnet" method="probed" conf="10"/></port>'
         '<port protocol="tcp" portid="8080"><state state="open" reason="syn-ack"/>'
         '<service name="http-proxy" method="table" conf="3"/></port>')


def _scan_xml(estate_dir: Path) -> str:
    """HOSTS_PER_SITE hosts in every site's first range, each with telnet and an undeclared port."""
    hosts = []
    for site in load_estate(estate_dir).estate.sites:
        net = ipaddress.ip_network(site.ranges[0])
        for i in range(HOSTS_PER_SITE):
            addr = net.network_address + 200 + i
            hosts.append(f'<host starttime="1796200001" endtime="1796200009"><status state="up" '
                         f'reason="arp-response"/><address addr="{addr}" addrtype="ipv4"/><hostnames/>'
                         f"<ports>{PORTS}</ports></host>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE nmaprun>\n<nmaprun scanner="nmap" '
            'args="nmap -sS -p 23,8080 (every site)" start="1796200000" version="7.93" xmloutputversion="1.05">\n'
            '<scaninfo type="syn" protocol="tcp" numservices="2" services="23,8080"/>\n' + "\n".join(hosts)
            + '\n<runstats><finished time="1796200900" elapsed="900" exit="success"/>'
              f'<hosts up="{len(hosts)}" down="0" total="{len(hosts)}"/></runstats>\n</nmaprun>\n')


@dataclass
class Rendered:
    name: str
    screens: Path
    report: Path
    diagram_svg: Path
    psn_text: str
    sites: list[str]
    failing: int


def _estate(env: dict[str, str], root: Path, *args: str | Path, ok: tuple[int, ...] = (0,)) -> str:
    p = subprocess.run([str(ESTATE_BIN), *map(str, args)], cwd=root, env=env, capture_output=True, text=True,
                       timeout=900)
    assert p.returncode in ok and "Traceback" not in p.stderr, \
        f"estate {args} -> {p.returncode}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    return p.stdout


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        pytest.fail("chromium is not installed (deps/apt-packages.txt lists it; `make` installs it as root)")
    return found


def _chrome(*args: str) -> str:
    with tempfile.TemporaryDirectory() as profile:
        p = subprocess.run([_chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                           text=True, timeout=180)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout


@pytest.fixture(scope="module", params=ESTATES, ids=[p.name for p in ESTATES])
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Rendered:
    source: Path = request.param
    root = tmp_path_factory.mktemp(f"layout-{source.name}")
    estate = root / "estate"
    shutil.copytree(source, estate)
    home = root / "home"
    env = {k: v for k, v in os.environ.items() if k not in ("ESTATE_DIR", "ESTATE_ADVISORY_FEED", "ESTATE_DB")}
    env.update(ESTATE_HOME=str(home), COLUMNS="120")
    screens = Path(os.environ.get("ESTATE_SCREENS", REPO / "out" / "screens")) / source.name
    shutil.rmtree(screens, ignore_errors=True)
    screens.mkdir(parents=True)

    _estate(env, root, "assess", "--estate", estate, "--home", home, "--fail-on", "none", "--format", "json")
    xml = root / "ithc-every-site.xml"
    xml.write_text(_scan_xml(estate))
    imported = json.loads(_estate(env, root, "scan", "import", xml, "--estate", estate, "--home", home,
                                  "--fail-on", "none", "--format", "json"))
    report = root / "report"
    _estate(env, root, "report", "--estate", estate, "--home", home, "--run", imported["run"], "--out", report)
    psn_text = _estate(env, root, "check", "psn", "--estate", estate, "--home", home, "--run", imported["run"],
                       ok=(0, 1))
    svg = screens / "network-diagram.svg"
    _estate(env, root, "infra", "diagram", "--estate", estate, "--out", svg)

    # What a person looks at: the dashboard, every PDF page, the diagram (written beside the SVG).
    _chrome("--window-size=1280,1800", f"--screenshot={screens / 'report-index.png'}",
            (report / "index.html").as_uri())
    _chrome("--window-size=1280,1800", f"--screenshot={screens / 'report-controls.png'}",
            (report / "controls.html").as_uri())
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(report / "board-report.pdf"), str(screens / "board-page")],
                   check=True, timeout=300)
    loaded = load_estate(estate).estate
    failing = sum(1 for f in imported["findings"] if f["status"] == "fail")
    return Rendered(source.name, screens, report, svg, psn_text, [s.title for s in loaded.sites], failing)


def test_the_diagram_is_grouped_by_site_kind_near_a3_not_one_tall_column(rendered: Rendered) -> None:
    svg = ElementTree.fromstring(rendered.diagram_svg.read_bytes())
    width, height = (float(svg.get(k, "0").removesuffix("pt")) for k in ("width", "height"))
    # One column of 36 sites drew 12,815 px tall; a grid beside the hub stays within a couple of A3
    # pages (A3 landscape is 1190 x 842 pt) and about its proportions.
    assert height <= 2000 and width <= 3000, (width, height)
    assert 1.0 <= width / height <= 2.2, (width, height)
    text = " ".join(t.text or "" for t in svg.iter() if t.tag.endswith("text"))
    for title in rendered.sites:
        assert title.split(" (")[0] in text, title
    groups = re.findall(r"^([A-Z][A-Za-z ()]+?) \((\d+)\):", "\n".join(
        (t.text or "") for t in svg.iter() if t.tag.endswith("text")), re.MULTILINE)
    assert sum(int(n) for _, n in groups) == len(rendered.sites), groups
    assert (rendered.screens / "network-diagram.png").stat().st_size > 50_000


def _pdf_pages(pdf: Path) -> list[str]:
    text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], check=True, capture_output=True, text=True,
                          timeout=120).stdout
    return text.split("\f")[:-1] if text.endswith("\f") else text.split("\f")


def test_no_pdf_page_but_the_last_is_nearly_blank_and_repeats_are_grouped(rendered: Rendered) -> None:
    pages = _pdf_pages(rendered.report / "board-report.pdf")
    pngs = sorted(rendered.screens.glob("board-page-*.png"))
    assert len(pngs) == len(pages) >= 3
    sparse = [(i + 1, len("".join(p.split()))) for i, p in enumerate(pages[:-1]) if len("".join(p.split())) < 900]
    assert not sparse, f"nearly blank pages (page, characters): {sparse}"
    # Telnet on every host is one row of the top risks, with its asset count, not one per host.
    top = next(p for p in pages if "Top risks" in p)
    telnet_rows = [ln for ln in top.splitlines() if re.search(r"telnet|Telnet|plaintext|Plaintext", ln)]
    assert 1 <= len(telnet_rows) <= 4, telnet_rows
    assert re.search(r"\((\d+) assets\)", top) and max(int(n) for n in re.findall(r"\((\d+) assets\)", top)) >= \
        HOSTS_PER_SITE * len(rendered.sites) // 2


def test_the_asset_column_is_never_squeezed(rendered: Rendered) -> None:
    page = rendered.report / "index.html"
    measured = rendered.report / "index-measured.html"
    measured.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    dom = _chrome("--window-size=1280,1800", "--dump-dom", measured.as_uri())
    m = re.search(r'<pre id="asset-widths">([^<]*)</pre>', dom)
    assert m, dom[-2000:]
    widths = json.loads(m.group(1))
    assert len(widths) >= 20, widths
    # "host:10.64.0.200" is 16 characters; wrapped char by char a cell was 1-2 wide.
    assert min(widths) >= 14, sorted(widths)[:20]
    assert (rendered.screens / "report-index.png").stat().st_size > 20_000


def test_check_psn_on_hundreds_of_findings_fits_a_screen(rendered: Rendered) -> None:
    assert rendered.failing >= 2 * len(rendered.sites), rendered.failing
    lines = rendered.psn_text.splitlines()
    assert len(lines) <= 45, "\n".join(lines)
    assert re.search(r"\b\d+: ", rendered.psn_text), rendered.psn_text   # a grouped row: "108: host:..., ..."
