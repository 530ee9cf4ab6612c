"""`estate infra diagram`: real Graphviz rendering of the estate's network."""

from __future__ import annotations

import json
from pathlib import Path

from defusedxml import ElementTree
from typer.testing import CliRunner

from security_checks.cli.app import app
from security_checks.model.loader import load_estate
from security_checks.network.diagram import COLOUR, diagram_data, to_dot

from .conftest import DEMO, copy_demo

runner = CliRunner()


def test_diagram_writes_svg_and_png_with_every_site(tmp_path: Path) -> None:
    out = tmp_path / "psn" / "network.svg"
    result = runner.invoke(app, ["infra", "diagram", "--estate", str(DEMO), "--out", str(out)])
    assert result.exit_code == 0, result.output
    png = out.with_suffix(".png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 50_000
    svg = ElementTree.fromstring(out.read_bytes())
    text = " ".join(t.text or "" for t in svg.iter() if t.tag.endswith("text"))
    estate = load_estate(DEMO).estate
    for site in estate.sites:
        assert site.title in text
    assert "PSN connection (IPsec, its own connection)" in text and "PSN firewall rules" in text
    assert "internet breakout (filtered)" in text
    assert "guest / public Wi-Fi: internet only" in text
    clusters = [g for g in svg.iter() if g.get("class") == "cluster"]
    assert len(clusters) == len(estate.sites) + 1          # one per site, plus the hub
    assert not list(out.parent.glob(".*"))                  # no temporary files left behind
    # A drawing people share (the PSN submission), not assessment evidence: world-readable.
    assert all(p.stat().st_mode & 0o777 == 0o644 for p in (out, png))


def test_diagram_json_is_the_psn_submission_data() -> None:
    result = runner.invoke(app, ["infra", "diagram", "--estate", str(DEMO), "--format", "json"])
    assert result.exit_code == 0
    data = json.loads(result.stdout)
    assert data == json.loads(json.dumps(diagram_data(load_estate(DEMO).estate)))
    assert data["public_sector_network"] == "PSN"
    assert data["psn"]["allowed_zones"] == ["corporate", "azure"]
    civic = next(s for s in data["sites"] if s["name"] == "civic-centre")
    trust = {v["name"]: v["trust"] for v in civic["vlans"]}
    assert trust["guest"] == trust["public"] == "untrusted" and trust["psn-dmz"] == "psn"
    assert trust["corporate"] == "trusted"
    public = next(v for v in civic["vlans"] if v["name"] == "public")
    assert public["ssids"] == ["Harrowdale Free WiFi"]
    assert sum(1 for link in data["links"] if link["kind"] == "vpn") == 12


def test_diagram_names_swan_for_a_scottish_council(tmp_path: Path) -> None:
    estate_dir = copy_demo(tmp_path / "estate", {"organisation.yaml": [
        ("  nation: england            # hence PSN (SWAN for a Scottish council)", "  nation: scotland")]})
    data = diagram_data(load_estate(estate_dir).estate)
    assert data["public_sector_network"] == "SWAN" and data["psn"]["name"] == "SWAN"
    assert data["psn"]["isolation"].startswith("routing intent")   # the demo's design is virtual-wan
    assert any(link["kind"] == "psn" and "SWAN" in link["label"] for link in data["links"])


def test_diagram_bad_input_is_one_line_and_exit_2(tmp_path: Path) -> None:
    estate_dir = copy_demo(tmp_path / "estate", {"sites.yaml": [
        ("    ranges: [10.21.0.0/16]", "    ranges: [10.21.0.0/33]")]})
    out = tmp_path / "d.svg"
    result = runner.invoke(app, ["infra", "diagram", "--estate", str(estate_dir), "--out", str(out)])
    assert result.exit_code == 2 and "sites.yaml" in result.output and not out.exists()
    result = runner.invoke(app, ["infra", "diagram", "--estate", str(DEMO), "--out", str(tmp_path / "d.txt")])
    assert result.exit_code == 2 and "--out" in result.output


def test_pupil_and_device_vlans_are_drawn_segregated_not_trusted(tmp_path: Path) -> None:
    """A Welsh council's schools: pupils' VLANs are kept from the council's zones and cameras and
    building management reach only their controllers, so neither is drawn as a trusted VLAN."""
    estate = load_estate(Path(__file__).resolve().parents[1] / "estates" / "cwm-tawel").estate
    data = diagram_data(estate)
    school = next(s for s in data["sites"] if s["name"] == "ysgol-gyfun-cwm-tawel")
    trust = {v["name"]: v["trust"] for v in school["vlans"]}
    assert trust["pupils"] == trust["building"] == trust["cctv"] == "segregated"
    assert trust["staff"] == trust["netmgmt"] == "trusted" and trust["visitor"] == "untrusted"
    dot = to_dot(data).source
    assert "segregated: pupils" in dot and COLOUR["segregated"] in dot
