"""The offline advisory feed: which package versions fix which vulnerabilities, how bad they are
(CVSS v3.1 vector) and when the fix was released. Nothing is fetched at run time; the feed is a
file, and its date is shown beside every patch result so a reader knows how current it is.

Format (`estate-advisories/1`, JSON):

    {
      "format": "estate-advisories/1",
      "feed_date": "2026-11-20",             # when the feed was built; staleness is measured from it
      "source": "who built it, from what",
      "advisories": [
        {"id": "DSA-5999-1",                  # the supplier's advisory id
         "cve": ["CVE-2026-12345"],           # vulnerabilities it fixes
         "ecosystem": "debian",               # debian (any release) or debian-12 / ubuntu-22.04 ...
         "package": "openssl",                # binary package name as dpkg reports it
         "fixed_version": "3.0.15-1~deb12u1", # first version with the fix (dpkg ordering)
         "cvss_vector": "CVSS:3.1/AV:N/...",  # optional: none means unrated (treated as high, CE SUM-5)
         "released": "2026-10-01",            # the day the fix became available
         "title": "short description"},
        {"id": "FG-IR-24-015",                # a vendor product (PSIRT, NVD CPE match, CSAF)
         "ecosystem": "cpe",
         "package": "fortinet:fortios",       # CPE 2.3 vendor:product
         "introduced": "7.2.0",               # optional: first affected version (inclusive)
         "fixed_version": "7.2.7",            # first fixed version (vendor order, vendorver.py)
         "released": "2024-02-08", ...}
      ]
    }

Debian advisories match installed packages by name and dpkg order (patch_eval.py). Advisories of the
`cpe` ecosystem match what a scan, a device audit or a firewall read-back reports of a vendor
product, by `Feed.affecting(vendor_product, version)`, in the vendor order of vendorver.py.

A feed can be built from the Debian Security Tracker (fixed versions, DSA dates) joined with NVD
(CVSS vectors) on a machine that has internet access, then copied in with the estate.
"""

from __future__ import annotations

import json
import re
from datetime import date
from functools import cache
from pathlib import Path

from cvss import CVSS3
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from . import debver, vendorver

FORMAT = "estate-advisories/1"
CPE = "cpe"  # the ecosystem of vendor products named "<vendor>:<product>" as in CPE 2.3
_VENDOR_PRODUCT = re.compile(r"^[a-z0-9][a-z0-9_.\-]*:[a-z0-9][a-z0-9_.\-]*$")


class FeedError(ValueError):
    """A feed that cannot be used; the message names the file and the field."""


class Advisory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    cve: list[str] = []
    ecosystem: str = "debian"
    package: str
    fixed_version: str
    introduced: str | None = None
    cvss_vector: str | None = None
    released: date
    title: str = ""

    @model_validator(mode="after")
    def _versions(self) -> Advisory:
        # Each ecosystem has its own order: dpkg's for Debian packages, the vendor's for cpe products.
        if self.ecosystem == CPE:
            if not _VENDOR_PRODUCT.match(self.package):
                raise ValueError(f"package {self.package!r}: a cpe advisory names 'vendor:product' in "
                                 "lower case, as CPE 2.3 does (e.g. 'openbsd:openssh')")
            for v in (self.fixed_version, self.introduced):
                if v is not None:
                    try:
                        vendorver.key(v)
                    except vendorver.VersionError as exc:
                        raise ValueError(str(exc)) from None
            if self.introduced is not None and vendorver.compare(self.introduced, self.fixed_version) >= 0:
                raise ValueError(f"introduced {self.introduced} is not before fixed_version {self.fixed_version}")
        else:
            debver.split(self.fixed_version)
            if self.introduced is not None:
                debver.split(self.introduced)
        return self

    @field_validator("cvss_vector")
    @classmethod
    def _vector(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                CVSS3(v)
            except Exception as exc:
                raise ValueError(f"not a CVSS v3 vector ({exc})") from None
        return v

    @property
    def score(self) -> float | None:
        return cvss_score(self.cvss_vector) if self.cvss_vector else None

    def applies_to(self, os_name: str) -> bool:
        """debian applies to every Debian release; debian-12 only to that one."""
        return self.ecosystem != CPE and (self.ecosystem == os_name or os_name.startswith(self.ecosystem + "-"))

    def affects(self, version: str) -> bool:
        """For a cpe advisory: whether this vendor version is in its affected range."""
        return vendorver.in_range(version, self.introduced, self.fixed_version)


class Feed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = Field(pattern=r"^estate-advisories/1$")
    feed_date: date
    source: str = ""
    advisories: list[Advisory]
    path: str = ""
    _cpe_index: dict[str, list[Advisory]] | None = PrivateAttr(default=None)

    def age_days(self, today: date) -> int:
        return (today - self.feed_date).days

    def affecting(self, vendor_product: str, version: str) -> list[Advisory]:
        """The cpe advisories whose affected range holds this version of the product ("vendor:product").
        A version that is not a version at all (an empty banner) is affected by nothing: the caller
        reports it as not assessed rather than guessing."""
        try:
            vendorver.key(version)
        except vendorver.VersionError:
            return []
        return [a for a in self._by_product().get(vendor_product.lower(), ()) if a.affects(version)]

    def _by_product(self) -> dict[str, list[Advisory]]:
        if self._cpe_index is None:
            index: dict[str, list[Advisory]] = {}
            for a in self.advisories:
                if a.ecosystem == CPE:
                    index.setdefault(a.package, []).append(a)
            self._cpe_index = index
        return self._cpe_index

    def summary(self, today: date) -> dict[str, object]:
        return {"path": self.path, "feed_date": self.feed_date.isoformat(), "age_days": self.age_days(today),
                "source": self.source, "advisories": len(self.advisories)}


@cache
def cvss_score(vector: str) -> float:
    return float(CVSS3(vector).scores()[0])


def load_feed(path: Path) -> Feed:
    try:
        raw = json.loads(path.read_text())
    except OSError as exc:
        raise FeedError(f"{path}: cannot read the advisory feed ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise FeedError(f"{path}: line {exc.lineno}: not JSON ({exc.msg})") from None
    if not isinstance(raw, dict):
        raise FeedError(f"{path}: the advisory feed must be a JSON object")
    try:
        feed = Feed.model_validate({**raw, "path": str(path)})
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise FeedError(f"{path}: {where}: {first['msg']}") from None
    return feed
