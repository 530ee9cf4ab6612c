"""`estate advisories build`: the council's own advisory feed, built offline from saved sources."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from .common import DEMO_ESTATE, EstateOpt, Format, FormatOpt, emit_json, err, load_or_exit, usage_error

app = typer.Typer(
    help=("The advisory feed the patch step judges against (format estate-advisories/1), built by the council "
          "from saved copies of the Debian Security Tracker, the DSA/DLA lists, NVD and vendor CSAF advisories. "
          "Nothing is fetched: save the sources on a machine with internet access, build, copy the feed in."),
    rich_markup_mode="rich", no_args_is_help=True,
)

EPILOG = (
    "Where each input comes from (save them on a machine with internet access, same day):\n\n"
    "  --debian-tracker  https://security-tracker.debian.org/tracker/data/json  (fixed versions per release; "
    "source package names)\n\n"
    "  --dsa-list        https://salsa.debian.org/security-tracker-team/security-tracker/-/raw/master/data/DSA/list "
    "and .../data/DLA/list  (the dates: the tracker JSON has none)\n\n"
    "  --nvd             https://services.nvd.nist.gov/rest/json/cves/2.0?lastModStartDate=...&lastModEndDate=... "
    "saved page by page, or one file per ?cveId=  (CVSS v3.1 vectors; with --ecosystem cpe or by default, the "
    "vendor products each CVE affects, from its configurations: what scans match service versions against)\n\n"
    "  --nvd-cpe-match   https://services.nvd.nist.gov/rest/json/cpematch/2.0?lastModStartDate=...  (optional: "
    "version bounds for a CVE's matchCriteriaId where the CVE file left them out)\n\n"
    "  --debian-sources  https://deb.debian.org/debian/dists/bookworm/main/source/Sources.xz and "
    "https://security.debian.org/debian-security/dists/bookworm-security/main/source/Sources.xz  "
    "(which binary packages each source builds)\n\n"
    "  --packages        on the estate's hosts: dpkg-query -W -f '${Package} ${source:Package}\\n'  "
    "(keeps only what the estate could have)\n\n"
    "  --csaf            vendor CSAF 2.0 documents; the vendor's provider-metadata.json "
    "(https://msrc.microsoft.com/csaf/provider-metadata.json; others under /.well-known/csaf/) lists them\n\n"
    "  --csaf-map        the council's YAML: format: estate-csaf-map/1, products: "
    "- {vendor: Fortinet, product: FortiOS, versions: '7.4.', ecosystem: fortios, package: fortios-7.4}\n\n"
    "Examples:\n\n"
    "  estate advisories build --debian-tracker saved/tracker.json --dsa-list saved/DSA-list "
    "--nvd saved/nvd/ --out advisories.json\n\n"
    "  estate advisories build --debian-tracker saved/tracker.json.gz --dsa-list saved/DSA-list "
    "--dsa-list saved/DLA-list --ecosystem bookworm --ecosystem bullseye --packages saved/packages.txt "
    "--out advisories.json\n\n"
    "  estate advisories build --debian-tracker saved/tracker.json --dsa-list saved/DSA-list "
    "--csaf saved/msrc/ --csaf saved/fortinet/ --csaf-map inventory/council/csaf-map.yaml "
    "--feed-date 2026-11-20 --out inventory/council/advisories.json --format json\n\n"
    "Then declare it (organisation.advisory_feed) or pass it: estate assess --advisory-feed advisories.json\n\n"
    "Exit status: 0 written; 2 bad input (one line naming the file and where in it; nothing written)."
)

@app.command(epilog=EPILOG)
def build(
    debian_tracker: Annotated[Path, typer.Option(
        "--debian-tracker", help="The Debian Security Tracker JSON export, saved (.json, .json.gz or .json.xz).")],
    out: Annotated[Path, typer.Option("--out", help="The feed file to write (replaced whole; mode 0644).")],
    dsa_list: Annotated[list[Path] | None, typer.Option(
        "--dsa-list", help="The security tracker's data/DSA/list, and data/DLA/list for LTS releases (repeat). "
        "Dates each Debian fix; a fix no advisory ships is left out and listed, never dated by guesswork.")] = None,
    nvd: Annotated[list[Path] | None, typer.Option(
        "--nvd", help="NVD CVE API 2.0 responses: a file or a directory of them (repeat). Supplies CVSS v3.1 "
        "vectors; without one an advisory is unrated, which the patch step treats as high.")] = None,
    nvd_cpe_match: Annotated[list[Path] | None, typer.Option(
        "--nvd-cpe-match", help="NVD CPE Match API 2.0 responses (file or directory, repeat): the version bounds "
        "behind a CVE's matchCriteriaId, for vendor products (the cpe ecosystem).")] = None,
    csaf: Annotated[list[Path] | None, typer.Option(
        "--csaf", help="CSAF 2.0 vendor advisories: a file or a directory of *.json (repeat). Needs --csaf-map.")
    ] = None,
    csaf_map: Annotated[Path | None, typer.Option(
        "--csaf-map", help="The council's mapping of CSAF products to feed ecosystems and packages (YAML, "
        "estate-csaf-map/1). Products it does not cover are reported, not guessed.")] = None,
    debian_sources: Annotated[list[Path] | None, typer.Option(
        "--debian-sources", help="Debian Sources indexes (Sources, .gz or .xz; repeat): source -> binary packages, "
        "so advisories name packages as dpkg reports them.")] = None,
    packages: Annotated[Path | None, typer.Option(
        "--packages", help="Packages the estate's hosts have, one per line ('package' or 'package source'): "
        "Debian advisories for anything else are left out.")] = None,
    ecosystem: Annotated[list[str] | None, typer.Option(
        "--ecosystem", help="Include this ecosystem (repeat): debian-12 (or bookworm), debian-11 (bullseye), "
        "windows-11, fortios, ... Default: what the estate runs (endpoint groups, IaaS systems, firewalls).")
    ] = None,
    estate: EstateOpt = DEMO_ESTATE,
    feed_date: Annotated[str | None, typer.Option(
        "--feed-date", metavar="YYYY-MM-DD", help="The feed's date (staleness counts from it). Default: today.")
    ] = None,
    source: Annotated[str, typer.Option(
        "--source", help="Who built the feed, for its `source` text; the inputs and their dates are added.")] = "",
    format: FormatOpt = Format.TEXT,
) -> None:
    """Build the council's advisory feed from saved sources, check it with the loader every run uses, write it.

    Debian fixes come from the tracker (resolved entries of the selected releases; open, undetermined
    and unimportant ones are left out), each dated by the DSA or DLA that shipped exactly its version.
    Vendor fixes come from CSAF documents through the council's product mapping, dated by the vendor's
    remediation or release date. The summary says what was built and what was left out, and why.
    """
    from ..compliance import feed_build

    try:
        when = date.fromisoformat(feed_date) if feed_date else date.today()
    except ValueError:
        usage_error(f"--feed-date: {feed_date!r} is not a date (YYYY-MM-DD)")
    if csaf and csaf_map is None:
        usage_error("--csaf needs --csaf-map: the council's mapping of CSAF products to feed packages "
                    "(see estate advisories build --help)")
    if out.is_dir():
        usage_error(f"--out: {out} is a directory; give the feed's file name")
    if ecosystem:
        chosen = {feed_build.normalise_ecosystem(e) for e in ecosystem}
    else:
        chosen = feed_build.estate_ecosystems(load_or_exit(estate).estate)
    inputs = feed_build.Inputs(debian_tracker=debian_tracker, dsa_lists=dsa_list or [], nvd=nvd or [],
                               csaf=csaf or [], csaf_map=csaf_map, debian_sources=debian_sources or [],
                               packages=packages, nvd_cpe_match=nvd_cpe_match or [])
    try:
        result = feed_build.build(inputs, ecosystems=chosen, feed_date=when, note=source)
        feed_build.write_feed(result.feed, out)
    except feed_build.BuildError as exc:
        usage_error(escape(str(exc)))
    except OSError as exc:
        usage_error(escape(f"{out}: cannot write the feed ({exc.strerror or exc})"))
    summary = {"written": str(out), **result.summary()}
    if not (debian_sources or packages):
        summary["named_by_source_package"] = "all (no --debian-sources or --packages)"
    if format is Format.JSON:
        emit_json(summary)
    else:
        _print(summary)


def _print(s: dict[str, Any], limit: int = 10) -> None:
    def say(text: str) -> None:
        err.print(text, soft_wrap=True, markup=False, highlight=False)

    say(f"written: {s['written']} (feed dated {s['feed_date']}; {s['advisories']} advisories, "
        f"{s['unrated']} unrated; ecosystems {', '.join(s['ecosystems']) or 'none'})")
    say("  by ecosystem: " + (", ".join(f"{k} {v}" for k, v in s["by_ecosystem"].items()) or "none"))
    for reason, n in s["left_out"].items():
        say(f"  left out: {n} {reason}")

    def listing(title: str, rows: list[str]) -> None:
        if not rows:
            return
        say(f"{title}: {len(rows)}")
        for row in rows[:limit]:
            say(f"  - {row}")
        if len(rows) > limit:
            say(f"  ... and {len(rows) - limit} more (--format json for all)")

    listing("fixes left out, no release date (no DSA/DLA ships their version: point-release fixes, or give "
            "--dsa-list)", [f"{u['release']} {u['package']} {u['fixed_version']} ({u['cve']})"
                            for u in s["undated_fixes"]])
    listing("CSAF products not in the mapping (add them to --csaf-map to include them)",
            [f"{u['product']}{' ' + ', '.join(u['versions']) if u['versions'] else ''} "
             f"(in {', '.join(u['documents'][:3])}{', ...' if len(u['documents']) > 3 else ''})"
             for u in s["unmapped_products"]])
    listing("mapped CSAF products with no usable fixed version", [
        f"{u['id']} {u['cve']} {u['package']}: {u['reason']}" for u in s["no_fixed_version"]])
    named = s["named_by_source_package"]
    if isinstance(named, str):
        say(f"package names: Debian source names for {named}: give --debian-sources or --packages so "
            "advisories name binary packages as dpkg reports them")
    elif named:
        say(f"package names: {len(named)} source package(s) listed under their own name (no binary list for "
            f"them): {', '.join(named[:limit])}{' ...' if len(named) > limit else ''}")
