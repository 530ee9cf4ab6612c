"""What of the demo council (inventory/demo, Harrowdale) must never appear in another council's outputs.

The markers are read from the demo's own files (its name, short name, domain, people, GUIDs, the
place names in its site titles, its network supplier and policy text), so a new placeholder in the
demo is looked for without editing this list. `texts_under` reads every file a command wrote the
way a person would see it: PDFs through pdftotext, workbooks and archives member by member.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import yaml

DEMO = Path(__file__).resolve().parents[1] / "inventory" / "demo"

# Words of the demo's site titles that any council might use; a title with any other word in it
# (Northgate, Riverside...) is the demo's own.
_GENERIC = {"customer", "contact", "centre", "north", "south", "east", "west", "depot", "library", "leisure", "pool",
            "gym", "community", "hub", "schools", "admin", "and", "education", "services", "register", "office",
            "waste", "fleet", "highways", "grounds", "headquarters", "central", "civic"}


@cache
def demo_markers() -> list[tuple[str, re.Pattern[str]]]:
    markers: list[tuple[str, re.Pattern[str]]] = [
        ("Harrowdale", re.compile("harrowdale", re.IGNORECASE)),
        # the demo's short name as a resource-name part (vnet-hdc-..., HDC-Corporate, hdc-* packages)
        ("hdc-", re.compile(r"(?<![A-Za-z0-9])hdc-", re.IGNORECASE)),
        # HDC as a word (HDC\Workstation Admins), not three letters inside base64 or an identifier
        ("HDC", re.compile(r"(?<![A-Za-z0-9+/])HDC(?![A-Za-z0-9+/=])")),
    ]
    org = yaml.safe_load((DEMO / "organisation.yaml").read_text())
    o, azure = org["organisation"], org["azure"]
    names = [c["name"] for c in o["contacts"]]
    assert names, "the demo estate lists no contacts: the people check would prove nothing"
    values = [*names, o["domain"], o["remediation_timescales"]["source"], azure["tenant_id"],
              *(s["id"] for s in azure["subscriptions"]), *azure["entra_groups"].values()]
    if azure["connectivity"].get("psn"):
        values.append(azure["connectivity"]["psn"]["provider"])
    for path in sorted(DEMO.glob("sites*.yaml")) + sorted(DEMO.glob("sites/*.yaml")):
        for site in (yaml.safe_load(path.read_text()) or {}).get("sites", []):
            words = {w.lower() for w in re.findall(r"[A-Za-z]+", site["title"])}
            if words - _GENERIC:
                values.append(site["title"])
    for value in dict.fromkeys(values):
        markers.append((value, re.compile(re.escape(value))))
    return markers


def leaks(text: str, where: str) -> list[str]:
    """One line per demo marker found in `text` (with its context), naming `where` it was."""
    out = []
    for label, pattern in demo_markers():
        m = pattern.search(text)
        if m:
            context = text[max(0, m.start() - 60):m.end() + 60].replace("\n", " ")
            out.append(f"{where}: {label!r} in ...{context}...")
    return out


def texts_under(root: Path) -> Iterator[tuple[str, str]]:
    """(relative path, text) for every file under root: PDFs through pdftotext, zips by member.
    PNG screenshots are pixels, not text: skipped."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        rel = str(path.relative_to(root))
        if path.suffix == ".png":
            continue
        if path.suffix == ".pdf":
            pdftotext = shutil.which("pdftotext")
            if pdftotext is None:
                continue   # poppler-utils missing: the PDF's text cannot be read here
            yield rel, subprocess.run([pdftotext, "-q", str(path), "-"], check=True, capture_output=True,
                                      text=True, timeout=120).stdout
        elif zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as z:
                for member in z.namelist():
                    yield f"{rel}!{member}", z.read(member).decode("utf-8", "replace")
        else:
            yield rel, path.read_bytes().decode("utf-8", "replace")
