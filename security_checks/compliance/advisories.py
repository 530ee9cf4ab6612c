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
         "title": "short description"}
      ]
    }

A feed can be built from the Debian Security Tracker (fixed versions, DSA dates) joined with NVD
(CVSS vectors) on a machine that has internet access, then copied in with the estate.
"""

from __future__ import annotations

import json
from datetime import date
from functools import cache
from pathlib import Path

from cvss import CVSS3
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from . import debver

FORMAT = "estate-advisories/1"


class FeedError(ValueError):
    """A feed that cannot be used; the message names the file and the field."""


class Advisory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    cve: list[str] = []
    ecosystem: str = "debian"
    package: str
    fixed_version: str
    cvss_vector: str | None = None
    released: date
    title: str = ""

    @field_validator("fixed_version")
    @classmethod
    def _version(cls, v: str) -> str:
        debver.split(v)
        return v

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
        return self.ecosystem == os_name or os_name.startswith(self.ecosystem + "-")


class Feed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = Field(pattern=r"^estate-advisories/1$")
    feed_date: date
    source: str = ""
    advisories: list[Advisory]
    path: str = ""

    def age_days(self, today: date) -> int:
        return (today - self.feed_date).days

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
