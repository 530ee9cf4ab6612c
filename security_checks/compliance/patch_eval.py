"""Which installed packages miss which security fixes, for a whole fleet at once.

The fleet is columnar: one row per installed package (host, package, version), held as numpy
integer arrays over interned names, because a council-sized software inventory (10,000 endpoints
with 1,500 packages each: 15 million rows) is far too big for a loop over Python objects. The
evaluation
  1. keeps only rows whose package has an advisory at all (a numpy mask),
  2. finds the distinct (package, version, OS) cases among them (a few thousand: fleets are
     uniform), with array arithmetic,
  3. decides each case once: dpkg version ordering against each advisory, and the Cyber
     Essentials 14-day rule on the ones it lacks,
  4. maps the verdicts back to the rows with one gather; per-host counts are bincounts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import numpy as np
import numpy.typing as npt

from . import debver
from .advisories import Advisory, Feed

IntArray = npt.NDArray[np.int64]
WINDOW_DAYS = 14          # Cyber Essentials: high and critical fixes within 14 days of release
HIGH_CVSS = 7.0           # ... "high" meaning CVSS v3 base score 7.0 or more


@dataclass
class Fleet:
    """Installed software of many hosts, as parallel arrays over interned names."""

    hosts: list[str]
    host_os: list[str]            # per host, e.g. debian-12 (advisory ecosystems match on it)
    packages: list[str]           # interned package names
    versions: list[str]           # interned version strings
    host: IntArray                # per row: index into hosts
    pkg: IntArray                 # per row: index into packages
    ver: IntArray                 # per row: index into versions

    @classmethod
    def from_hosts(cls, inventory: Iterable[tuple[str, str, Mapping[str, str]]]) -> Fleet:
        """From (host, os, {package: version}) triples: the shape a handful of real hosts arrive in."""
        hosts: list[str] = []
        oses: list[str] = []
        pkg_ix: dict[str, int] = {}
        ver_ix: dict[str, int] = {}
        h_col: list[int] = []
        p_col: list[int] = []
        v_col: list[int] = []
        for name, os_name, packages in inventory:
            hi = len(hosts)
            hosts.append(name)
            oses.append(os_name)
            for p, v in packages.items():
                h_col.append(hi)
                p_col.append(pkg_ix.setdefault(p, len(pkg_ix)))
                v_col.append(ver_ix.setdefault(v, len(ver_ix)))
        return cls(hosts, oses, list(pkg_ix), list(ver_ix), np.array(h_col, dtype=np.int64),
                   np.array(p_col, dtype=np.int64), np.array(v_col, dtype=np.int64))

    @property
    def rows(self) -> int:
        return int(self.host.size)


@dataclass
class MissingFix:
    advisory: Advisory
    score: float | None     # CVSS v3 base score; None when the advisory is unrated
    days: int               # days since the fix was released
    overdue: bool           # high/critical/unrated and released more than 14 days ago


@dataclass
class MissingFixes:
    """The result, kept compact: the verdict is computed once per distinct (package, version, OS)
    and each affected fleet row points at its distinct case."""

    fleet: Fleet
    rows: IntArray                      # affected fleet rows (at least one fix missing)
    case: IntArray                      # per affected row: index into cases
    cases: list[list[MissingFix]]       # per distinct (package, version, OS): the fixes it lacks
    case_missing: IntArray              # per case: how many fixes it lacks
    case_overdue: IntArray              # per case: how many of them are overdue

    def __len__(self) -> int:
        """Missing (row, advisory) pairs."""
        return int(self.case_missing[self.case].sum()) if self.case.size else 0

    @property
    def overdue_count(self) -> int:
        return int(self.case_overdue[self.case].sum()) if self.case.size else 0

    def per_host(self) -> dict[str, npt.NDArray[np.int64]]:
        n = len(self.fleet.hosts)
        hosts = self.fleet.host[self.rows]
        return {"missing": np.bincount(hosts, weights=self.case_missing[self.case], minlength=n).astype(np.int64),
                "overdue": np.bincount(hosts, weights=self.case_overdue[self.case], minlength=n).astype(np.int64)}

    def groups(self) -> list[tuple[int, int, list[MissingFix]]]:
        """(host, package, fixes missing) for each affected row; for reporting a few hosts."""
        out: dict[tuple[int, int], list[MissingFix]] = {}
        for row, c in zip(self.rows.tolist(), self.case.tolist(), strict=True):
            out.setdefault((int(self.fleet.host[row]), int(self.fleet.pkg[row])), []).extend(self.cases[c])
        return [(h, p, fixes) for (h, p), fixes in sorted(out.items())]

    def triples(self) -> set[tuple[str, str, str]]:
        """(host, package, advisory id) for every missing fix: the plain form, for tests and exports."""
        return {(self.fleet.hosts[h], self.fleet.packages[p], f.advisory.id)
                for h, p, fixes in self.groups() for f in fixes}


def _index(codes: IntArray, space: int) -> tuple[IntArray, IntArray]:
    """(distinct codes, per-input index into them), without sorting when the code space is small."""
    if space <= 50_000_000:
        present = np.zeros(space, dtype=bool)
        present[codes] = True
        uniq = np.flatnonzero(present)
        lookup = np.zeros(space, dtype=np.int64)
        lookup[uniq] = np.arange(uniq.size)
        return uniq, lookup[codes]
    uniq, inverse = np.unique(codes, return_inverse=True)
    return uniq, inverse.reshape(-1)


def evaluate(fleet: Fleet, feed: Feed, today: date, *, window_days: int = WINDOW_DAYS,
             high: float = HIGH_CVSS) -> MissingFixes:
    empty = np.zeros(0, dtype=np.int64)
    pkg_index = {name: i for i, name in enumerate(fleet.packages)}
    by_pkg: dict[int, list[Advisory]] = {}
    for a in feed.advisories:
        if a.package in pkg_index:
            by_pkg.setdefault(pkg_index[a.package], []).append(a)
    if not by_pkg or not fleet.rows:
        return MissingFixes(fleet, empty, empty, [], empty, empty)

    # 1. rows whose package has any advisory
    has_adv = np.zeros(len(fleet.packages), dtype=bool)
    has_adv[list(by_pkg)] = True
    sel = np.flatnonzero(has_adv[fleet.pkg])

    # 2. distinct (package, version, OS) cases among them
    oses = sorted(set(fleet.host_os))
    os_ix = {o: i for i, o in enumerate(oses)}
    host_os = np.array([os_ix[o] for o in fleet.host_os], dtype=np.int64)
    n_ver, n_os = max(len(fleet.versions), 1), len(oses)
    codes = (fleet.pkg[sel] * n_ver + fleet.ver[sel]) * n_os + host_os[fleet.host[sel]]
    uniq, inverse = _index(codes, len(fleet.packages) * n_ver * n_os)

    # 3. the verdict per case: dpkg ordering and the 14-day rule, a few thousand times, not millions
    cases: list[list[MissingFix]] = []
    for code in uniq.tolist():
        p, rest = divmod(code, n_ver * n_os)
        v, o = divmod(rest, n_os)
        installed = fleet.versions[v]
        fixes = []
        for a in by_pkg[p]:
            if not a.applies_to(oses[o]) or debver.compare(installed, a.fixed_version) >= 0:
                continue
            score = a.score
            days = today.toordinal() - a.released.toordinal()
            severe = score is None or score >= high   # unrated fixes count as high (CE: SUM-5)
            fixes.append(MissingFix(a, score, days, severe and days > window_days))
        cases.append(fixes)
    case_missing = np.array([len(c) for c in cases], dtype=np.int64)
    case_overdue = np.array([sum(f.overdue for f in c) for c in cases], dtype=np.int64)

    # 4. map back to the rows: one gather
    affected = case_missing[inverse] > 0
    return MissingFixes(fleet, sel[affected], inverse[affected], cases, case_missing, case_overdue)
