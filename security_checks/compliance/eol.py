"""End-of-support data (data/eol.yaml) and the unsupported-OS check over the estate model."""

from __future__ import annotations

from datetime import date
from functools import cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from .. import yamlread
from ..checks import make_finding
from ..findings import Finding, Status
from ..model.schema import Estate, Hosting
from . import vendorver

EOL_FILE = Path(__file__).resolve().parent / "data" / "eol.yaml"


class OsLife(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    eol: date | None = None
    esu_until: date | None = None
    source: str = ""

    def supported(self, today: date, esu: bool, esu_bought_until: date | None = None) -> tuple[bool, str]:
        """`esu_bought_until`: the end of the last ESU year the estate records buying; without it, `esu`
        means every year the supplier sells (to `esu_until`)."""
        if self.eol is None:
            return True, f"{self.name}: no end of support published ({self.source})"
        if today <= self.eol:
            return True, f"{self.name}: supported until {self.eol.isoformat()}"
        covered = esu_bought_until or self.esu_until
        if esu and covered and today <= covered:
            return True, (f"{self.name}: past end of support {self.eol.isoformat()}, "
                          f"extended updates until {covered.isoformat()}")
        extra = ""
        if esu_bought_until and esu:
            extra = f"; extended updates bought ended {esu_bought_until.isoformat()}"
        elif self.esu_until:
            extra = ("; extended updates bought but ended" if esu else
                     f"; extended updates available until {self.esu_until.isoformat()} but not bought")
        return False, f"{self.name}: end of support {self.eol.isoformat()}{extra}"


class ReleaseLine(BaseModel):
    """One release line of a vendor product (FortiOS 7.0, OpenSSH 7) and its end of support."""
    model_config = ConfigDict(extra="forbid")

    prefix: str
    eol: date

    def holds(self, version: str) -> bool:
        # "7.0" holds 7.0 and 7.0.15, not 7.01 or 7.10: the prefix ends at a component boundary.
        v = vendorver.normalise(version)
        return v == self.prefix or (v.startswith(self.prefix) and not v[len(self.prefix)].isdigit())


class SoftwareLife(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    debian_packages: list[str] = []
    windows_display_name: str | None = None
    cpe: str | None = None  # "vendor:product" as in the advisory feed's cpe ecosystem
    # Without versions, `eol` is the end of the whole product; with them, each line has its own and
    # `eol` may be left out (a product still supported, with old lines that are not).
    eol: date | None = None
    versions: list[ReleaseLine] = []
    source: str = ""


class EolData(BaseModel):
    model_config = ConfigDict(extra="forbid")

    operating_systems: dict[str, OsLife]
    software: list[SoftwareLife] = []


@cache
def load_eol(path: Path = EOL_FILE) -> EolData:
    return EolData.model_validate(yamlread.safe_load(path.read_text()))


def product_eol(eol: EolData, vendor_product: str, version: str) -> tuple[str, date] | None:
    """(name, end of support) when this version of the product ("vendor:product") has one recorded,
    else None: the longest matching release line wins, then the product's own date."""
    wanted = vendor_product.lower()
    for sw in eol.software:
        if sw.cpe != wanted:
            continue
        lines = sorted((ln for ln in sw.versions if ln.holds(version)), key=lambda ln: -len(ln.prefix))
        if lines:
            return f"{sw.name} {lines[0].prefix}", lines[0].eol
        if sw.eol is not None:
            return sw.name, sw.eol
    return None


def unsupported_os_findings(estate: Estate, today: date, eol: EolData | None = None) -> list[Finding]:
    """One finding per endpoint group and per IaaS LOB system: pass when its OS is still supported."""
    eol = eol or load_eol()
    out = []
    targets: list[tuple[str, str, bool, date | None, str]] = []
    for g in estate.endpoint_groups:
        targets.append((f"endpoint-group:{g.name}", g.os.value, g.has_esu, g.esu_until, f"{g.count} device(s)"))
    for lob in estate.lob_systems:
        if lob.hosting is Hosting.IAAS and lob.os is not None:
            targets.append((f"lob:{lob.name}", lob.os.value, False, None, f"{lob.vm_count} VM(s)"))
    for asset, os_name, esu, bought_until, what in targets:
        life = eol.operating_systems.get(os_name)
        if life is None:
            out.append(make_finding("patch.unsupported_os", asset, Status.NOT_ASSESSED, key=os_name,
                                    observed=f"{os_name}: no entry in {EOL_FILE.name}",
                                    expected="an end-of-support date for every OS in the estate"))
            continue
        ok, why = life.supported(today, esu, bought_until)
        out.append(make_finding("patch.unsupported_os", asset, Status.PASS if ok else Status.FAIL, key=os_name,
                                observed=f"{why} ({what})", expected="an OS that still receives security updates",
                                details={"os": os_name, "eol": life.eol.isoformat() if life.eol else None,
                                         "esu_until": life.esu_until.isoformat() if life.esu_until else None,
                                         "extended_security_updates": esu,
                                         "esu_bought_until": bought_until.isoformat() if bought_until else None,
                                         "source": life.source}))
    return out
