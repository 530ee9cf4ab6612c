"""Build the council's own advisory feed (`estate-advisories/1`) from saved copies of real sources.

Nothing here touches the network. A council saves the sources on a machine with internet access
and builds from the files; the feed is then checked by the same loader every run uses
(`advisories.load_feed`) and written whole (0644: a feed is not secret). The same files always
give the same feed, byte for byte: everything is sorted.

What is read, field by field:

Debian Security Tracker JSON export (https://security-tracker.debian.org/tracker/data/json)
    {"<source package>": {"CVE-YYYY-NNNN": {"description", "scope", "debianbug",
        "releases": {"<codename>": {"status": "resolved" | "open" | "undetermined",
                                    "repositories": {"<codename>": v, "<codename>-security": v},
                                    "fixed_version": v, "urgency": "low" | "medium" | "high" |
                                    "unimportant" | "not yet assigned" | "end-of-life",
                                    "nodsa", "nodsa_reason", "next_point_update"}}}}}
    A fix is a `resolved` entry of a selected release with a real `fixed_version` ("0" means the
    release was never vulnerable) whose urgency is not `unimportant`. Open and undetermined
    entries have no fix and are left out. TEMP- ids (no CVE yet) are left out too.

DSA and DLA lists (data/DSA/list, data/DLA/list of the security-tracker repository)
    [28 Nov 2024] DSA-5819-1 php8.2 - security update
    \t{CVE-2024-8929 CVE-2024-11233}
    \t[bookworm] - php8.2 8.2.26-1~deb12u1
    The tracker JSON has no dates, so a fix is dated by the advisory that shipped exactly its
    (release, source package, version); that advisory's id names it in the feed. A fix no
    advisory ships is never dated by guesswork: if its version is a stable update (+debNuM,
    ~debNuM, or what the -security/-lts suite holds: a point-release fix) it is left out and
    listed; otherwise it was fixed in the release as shipped and is no advisory at all.

NVD CVE API 2.0 responses (https://services.nvd.nist.gov/rest/json/cves/2.0, saved page by page)
    vulnerabilities[].cve.id, vulnerabilities[].cve.metrics.cvssMetricV31[].cvssData.vectorString
    (NVD's own "Primary" metric first, else the first listed). Without a vector an advisory is
    unrated, which the patch engine treats as high (Cyber Essentials SUM-5).
    For the `cpe` ecosystem (vendor products a scan, a device audit or a firewall read-back
    reports), the same responses give the affected products: vulnerabilities[].cve.configurations[]
    .nodes[].cpeMatch[] with vulnerable: true, criteria "cpe:2.3:a:<vendor>:<product>:<version>:..."
    and the bounds versionStartIncluding (the feed's `introduced`) and versionEndExcluding (its
    `fixed_version`). A match on one exact version, or bounded only by versionEndIncluding or
    versionStartExcluding, names no first fixed version: it is left out and counted, never guessed.
    The advisory is `NVD-<CVE id>`, dated by the CVE's `published` date (NVD records no fix date).

NVD CPE Match API 2.0 responses (https://services.nvd.nist.gov/rest/json/cpematch/2.0, optional)
    matchStrings[].matchString.{matchCriteriaId, criteria, versionStartIncluding,
    versionEndExcluding, ...}. A CVE's cpeMatch that names its matchCriteriaId but carries no
    bounds of its own (an abbreviated save) takes them from here.

Debian Sources index and the estate's package list (both optional)
    The tracker names source packages; the feed names binary packages as dpkg reports them. A
    Sources index (dists/<suite>/main/source/Sources.xz: `Package:` and `Binary:`) and a package
    list (`dpkg-query -W -f '${Package} ${source:Package}\\n'` from the estate's hosts: one name,
    or name and source, per line) say which binaries a source builds. Without either, a fix is
    listed under its source name, which matches only a binary of the same name. With a package
    list, only the packages on it are kept. Binary versions are compared with the source's fixed
    version, as Debian's own tooling does (a binNMU's +bN suffix still sorts after it).

CSAF 2.0 vendor advisories (Microsoft, Fortinet and others; OASIS CSAF 2.0 schema)
    document.csaf_version, document.title, document.tracking.id, .initial_release_date,
    .current_release_date; product_tree.branches[] (category, name, product.product_id,
    product.name, nested branches), product_tree.full_product_names[],
    product_tree.relationships[].full_product_name, product_tree.product_groups[];
    vulnerabilities[].cve, .title, .product_status.{first_fixed, fixed, known_affected,
    first_affected, last_affected}, .scores[].{products, cvss_v3.vectorString},
    .remediations[].{category: vendor_fix, date, details, product_ids, group_ids}.
    Products become feed packages only through the council's mapping file (below): a product the
    mapping does not cover is reported, never guessed. For each mapped package of a vulnerability
    the fixed version is the first_fixed (else fixed) product's `product_version` branch, or else
    X from an affected product's `product_version_range` "<X" (also `vers:…/…|<X`); with neither,
    the package is reported as having no stated fix. The release date is the earliest `date` of
    the vendor_fix remediations for the package's products, else the document's
    initial_release_date (in UTC). The vector is the highest-scoring `cvss_v3` whose products
    include the package's, else NVD's. When one tracking id is saved twice, the later revision
    (current_release_date) is used. A package of the `cpe` ecosystem ("openbsd:openssh") orders
    its versions the vendor's way (vendorver.py), not dpkg's.

The mapping file (YAML, kept by the council beside its estate; see `estate advisories build --help`)
    format: estate-csaf-map/1
    products:
      - {vendor: Microsoft, product: "Windows 11 Version 23H2 for x64-based Systems",
         ecosystem: windows-11, package: windows-11-23h2-x64}
      - {vendor: Fortinet, product: FortiOS, versions: "7.4.", ecosystem: fortios, package: fortios-7.4}
      - {vendor: OpenBSD, product: OpenSSH, ecosystem: cpe, package: "openbsd:openssh"}
    `product` is the CSAF `product_name` branch (or the full product name where a product has no
    such branch), `vendor` the `vendor` branch (optional), compared without regard to case;
    `versions` (optional) a prefix the product's version, or every bound of its version range, must
    start with. One package is one line of versions that only grows (one Windows release, one
    FortiOS branch): versions of different lines must never be compared with each other. The first
    entry that matches wins.

Ecosystems: Debian releases become `debian-<N>` (bookworm: debian-12); mapped CSAF products use
the mapping's `ecosystem`. By default the feed holds the ecosystems the estate runs: its endpoint
groups' operating systems, its IaaS line-of-business systems' and its firewalls' platforms.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import lzma
import re
import tempfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, NoReturn

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import yamlread
from ..fsutil import SHARED_FILE, atomic_write
from ..model.schema import Estate
from . import debver, vendorver
from .advisories import CPE, FORMAT, Feed, FeedError, cvss_score, load_feed

MAP_FORMAT = "estate-csaf-map/1"
DEBIAN_RELEASES = {"buster": "10", "bullseye": "11", "bookworm": "12", "trixie": "13", "forky": "14"}
FIREWALL_PLATFORMS = {"fortinet": "fortios", "palo-alto": "pan-os", "cisco-asa": "cisco-asa"}

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_CVE = re.compile(r"^CVE-\d{4}-\d{4,}$")
_STABLE_UPDATE = re.compile(r"[+~]deb\d+u\d+")
_KB = re.compile(r"^(?:KB)?(\d{6,8})$", re.IGNORECASE)
_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_MONTHS = {m: i for i, m in enumerate(("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct",
                                       "Nov", "Dec"), 1)}
_DSA_HEAD = re.compile(r"^\[(\d{1,2}) ([A-Z][a-z]{2}) (\d{4})\]\s+(D[SL]A-\S+)\s*(.*)$")
_DSA_FIX = re.compile(r"^\s+\[([a-z0-9-]+)\]\s+-\s+(\S+)(?:\s+(\S+))?")
_VERS_OP = re.compile(r"^(>=|<=|!=|>|<|=)?\s*(.+)$")
_FIXED_STATES = ("first_fixed", "fixed")
_NVD_BOUNDS = ("versionStartIncluding", "versionStartExcluding", "versionEndIncluding", "versionEndExcluding")
_AFFECTED_STATES = ("known_affected", "first_affected", "last_affected")


class BuildError(ValueError):
    """Input that cannot be used: one line naming the file and where in it (a JSON path or a line)."""


# -- reading ------------------------------------------------------------------------------------


def jpath(*parts: str | int) -> str:
    """A JSON path a person can follow: $.openssl["CVE-2024-1"].releases.bookworm."""
    out = "$"
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT.fullmatch(p):
            out += f".{p}"
        else:
            out += f"[{json.dumps(p)}]"
    return out


def _fail(src: Path, where: tuple[str | int, ...], message: str) -> NoReturn:
    raise BuildError(f"{src}: {jpath(*where)}: {message}")


def _kind(value: Any) -> str:
    return {dict: "an object", list: "an array", str: "a string", bool: "true/false",
            type(None): "null"}.get(type(value), "a number")


def _obj(value: Any, src: Path, where: tuple[str | int, ...]) -> dict[str, Any]:
    if not isinstance(value, dict):
        _fail(src, where, f"expected an object, found {_kind(value)}")
    return value


def _arr(value: Any, src: Path, where: tuple[str | int, ...]) -> list[Any]:
    if not isinstance(value, list):
        _fail(src, where, f"expected an array, found {_kind(value)}")
    return value


def _str(value: Any, src: Path, where: tuple[str | int, ...]) -> str:
    if not isinstance(value, str) or not value:
        _fail(src, where, f"expected a non-empty string, found {_kind(value)}")
    return value


def _read(path: Path) -> tuple[str, str]:
    """(text, sha256 of the file as saved); .gz and .xz are read as the archives publish them."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise BuildError(f"{path}: cannot read ({exc.strerror or exc})") from None
    digest = hashlib.sha256(raw).hexdigest()
    try:
        if path.suffix == ".gz":
            raw = gzip.decompress(raw)
        elif path.suffix == ".xz":
            raw = lzma.decompress(raw)
        return raw.decode("utf-8"), digest
    except (OSError, EOFError, lzma.LZMAError, UnicodeDecodeError) as exc:
        raise BuildError(f"{path}: cannot decode ({exc})") from None


def _json(path: Path) -> tuple[Any, str]:
    text, digest = _read(path)
    try:
        return json.loads(text), digest
    except json.JSONDecodeError as exc:
        raise BuildError(f"{path}: line {exc.lineno}: not JSON ({exc.msg})") from None


def _version(value: Any, src: Path, where: tuple[str | int, ...]) -> str:
    text = _str(value, src, where)
    try:
        debver.split(text)
    except ValueError:
        _fail(src, where, f"{text!r} is not a version dpkg can order")
    return text


def _vector(value: Any, src: Path, where: tuple[str | int, ...]) -> str:
    text = _str(value, src, where)
    try:
        cvss_score(text)
    except Exception:
        _fail(src, where, f"{text!r} is not a CVSS v3 vector")
    return text


def _files(path: Path) -> list[Path]:
    """A file, or every *.json under a directory (sorted): vendors publish one document per file."""
    if path.is_dir():
        return sorted(p for p in path.rglob("*.json") if p.is_file())
    return [path]


# -- Debian: the tracker, the DSA/DLA lists, Sources, the package list --------------------------


@dataclass(frozen=True)
class DatedFix:
    advisory: str       # DSA-5819-1, DLA-3975-1
    released: date
    title: str          # as the list gives it: "php8.2 - security update"


@dataclass
class DsaLists:
    fixes: dict[tuple[str, str, str], DatedFix] = field(default_factory=dict)  # (release, source, version)
    described: list[str] = field(default_factory=list)

    def read(self, path: Path) -> None:
        text, _ = _read(path)
        current: tuple[str, date, str] | None = None
        latest: date | None = None
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            if not line[0].isspace():
                m = _DSA_HEAD.match(line)
                if not m:
                    raise BuildError(f"{path}: line {n}: not an advisory line "
                                     "('[28 Nov 2024] DSA-5819-1 php8.2 - security update')")
                day, month, year, advisory, rest = m.groups()
                try:
                    released = date(int(year), _MONTHS[month], int(day))
                except (KeyError, ValueError):
                    raise BuildError(f"{path}: line {n}: [{day} {month} {year}] is not a date") from None
                current = (advisory, released, rest.strip())
                latest = max(latest or released, released)
                continue
            m = _DSA_FIX.match(line)
            if not m:
                continue    # {CVE ...} and NOTE: lines: the tracker says which CVEs a version fixes
            if current is None:
                raise BuildError(f"{path}: line {n}: a fixed version before any advisory line")
            release, package, version = m.groups()
            if not version or version.startswith("<"):
                continue    # <not-affected>, <unfixed>, <end-of-life>: nothing shipped
            try:
                debver.split(version)
            except ValueError:
                raise BuildError(f"{path}: line {n}: {version!r} is not a Debian version") from None
            key = (release, package, version)
            fix = DatedFix(current[0], current[1], current[2])
            if key not in self.fixes or fix.released < self.fixes[key].released:
                self.fixes[key] = fix
        self.described.append(f"{path.name} (latest advisory {latest.isoformat() if latest else 'none'})")


def read_sources(path: Path, into: dict[str, set[str]]) -> None:
    """Source package -> binary packages, from a Debian Sources index (deb822 stanzas)."""
    text, _ = _read(path)
    fields: dict[str, str] = {}
    last = ""
    start = 1

    def flush() -> None:
        if not fields:
            return
        if "package" not in fields:
            raise BuildError(f"{path}: line {start}: a Sources stanza without Package:")
        binaries = {b.strip() for b in fields.get("binary", "").replace("\n", " ").split(",") if b.strip()}
        into.setdefault(fields["package"].strip(), set()).update(binaries)

    for n, line in enumerate([*text.splitlines(), ""], 1):
        if not line.strip():
            flush()
            fields, last, start = {}, "", n + 1
        elif line[0] in " \t":
            if not last:
                raise BuildError(f"{path}: line {n}: a continuation line outside a field")
            fields[last] += "\n" + line.strip()
        else:
            key, sep, value = line.partition(":")
            if not sep:
                raise BuildError(f"{path}: line {n}: not a 'Field: value' line of a Sources index")
            last = key.strip().lower()
            fields[last] = value.strip()


@dataclass
class PackageList:
    """The packages the estate's hosts have: the filter, and which source each comes from."""

    names: set[str] = field(default_factory=set)
    source_of: dict[str, str] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def read(cls, path: Path) -> PackageList:
        text, _ = _read(path)
        out = cls(path=path)
        for n, raw in enumerate(text.splitlines(), 1):
            parts = raw.split("#", 1)[0].split()
            if not parts:
                continue
            name = parts[0].split(":", 1)[0]    # dpkg-query's ${binary:Package} adds :arch
            if len(parts) > 2 or not _PACKAGE.match(name) or (len(parts) == 2 and not _PACKAGE.match(parts[1])):
                raise BuildError(f"{path}: line {n}: expected 'package' or 'package source' "
                                 f"(dpkg-query -W -f '${{Package}} ${{source:Package}}\\n'), found {raw.strip()!r}")
            out.names.add(name)
            if len(parts) == 2:
                out.source_of[name] = parts[1]
        return out


# -- CSAF and the council's product mapping -----------------------------------------------------


class MapEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    product: str = Field(min_length=1, description="the CSAF product_name branch, or the full product name")
    vendor: str | None = Field(None, description="the CSAF vendor branch")
    versions: str | None = Field(None, min_length=1, description="the version line: a prefix such as '7.4.'")
    ecosystem: str = Field(pattern=r"^[a-z0-9][a-z0-9.+-]*$")
    # A cpe package is "vendor:product" (the feed's loader checks its form).
    package: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9.+_-]*(:[A-Za-z0-9][A-Za-z0-9.+_-]*)?$")


class CsafMap(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str = Field(pattern=rf"^{re.escape(MAP_FORMAT)}$")
    products: list[MapEntry]
    path: str = ""

    @classmethod
    def read(cls, path: Path) -> CsafMap:
        text, _ = _read(path)
        try:
            raw = yamlread.safe_load(text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f"line {mark.line + 1}: " if mark is not None else ""
            raise BuildError(f"{path}: {where}not YAML ({getattr(exc, 'problem', None) or exc})") from None
        if not isinstance(raw, dict):
            raise BuildError(f"{path}: $: expected a mapping with format: {MAP_FORMAT} and products:")
        try:
            return cls.model_validate({**raw, "path": str(path)})
        except ValidationError as exc:
            first = exc.errors()[0]
            raise BuildError(f"{path}: {jpath(*first['loc'])}: {first['msg']}") from None

    def match(self, product: Product) -> MapEntry | None:
        for entry in self.products:
            if entry.vendor and (product.vendor or "").casefold() != entry.vendor.casefold():
                continue
            if (product.product or product.name).casefold() != entry.product.casefold():
                continue
            if entry.versions:
                line = product.line_versions()
                if not line or not all(v.startswith(entry.versions) for v in line):
                    continue
            return entry
        return None


@dataclass(frozen=True)
class Product:
    id: str
    name: str                       # the full product name
    vendor: str | None = None       # from the branches above it
    product: str | None = None
    version: str | None = None
    range: str | None = None

    @property
    def line(self) -> str:
        """What a person adds to the mapping: vendor and product name, without the version."""
        base = self.product or self.name
        return f"{self.vendor}: {base}" if self.vendor else base

    def bounds(self) -> list[tuple[str, str]]:
        """(operator, version) of a product_version_range: 'vers:fortios/>=7.4.0|<7.4.5' or '<10.0.1'."""
        if not self.range:
            return []
        text = self.range.split("/", 1)[1] if self.range.startswith("vers:") and "/" in self.range else self.range
        out = []
        for part in re.split(r"[|,]", text):
            m = _VERS_OP.match(part.strip())
            if m and m.group(2).strip() and m.group(2).strip() != "*":
                out.append((m.group(1) or "=", m.group(2).strip()))
        return out

    def line_versions(self) -> list[str]:
        return [self.version] if self.version else [v for _, v in self.bounds()]

    def fixed_by_range(self) -> str | None:
        """X of an affected range '<X': the first version outside it. Anything else says no version."""
        uppers = [v for op, v in self.bounds() if op == "<"]
        return uppers[0] if len(uppers) == 1 else None


@dataclass
class CsafDocument:
    path: Path
    id: str
    title: str
    initial: date
    current: datetime
    products: dict[str, Product]
    groups: dict[str, set[str]]
    vulnerabilities: list[tuple[int, dict[str, Any]]]


def _datetime(value: Any, src: Path, where: tuple[str | int, ...]) -> datetime:
    text = _str(value, src, where)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        _fail(src, where, f"{text!r} is not an ISO 8601 date-time")
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _utc_date(text: str) -> date:
    """The UTC day of a CSAF date-time (already checked by read_csaf)."""
    parsed = datetime.fromisoformat(text)
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).astimezone(UTC).date()


def _product(pid: str, name: str, trail: Iterable[tuple[str, str]]) -> Product:
    last: dict[str, str] = {}
    for category, value in trail:
        last[category] = value
    return Product(pid, name, last.get("vendor"), last.get("product_name"), last.get("product_version"),
                   last.get("product_version_range"))


def read_csaf(path: Path) -> CsafDocument:
    data, _ = _json(path)
    root = _obj(data, path, ())
    doc = _obj(root.get("document"), path, ("document",))
    if doc.get("csaf_version") != "2.0":
        _fail(path, ("document", "csaf_version"), f"expected \"2.0\", found {json.dumps(doc.get('csaf_version'))}"
              " (not a CSAF 2.0 document)")
    tracking = _obj(doc.get("tracking"), path, ("document", "tracking"))
    tid = _str(tracking.get("id"), path, ("document", "tracking", "id"))
    initial = _datetime(tracking.get("initial_release_date"), path, ("document", "tracking", "initial_release_date"))
    current = _datetime(tracking.get("current_release_date"), path, ("document", "tracking", "current_release_date"))
    title = _str(doc.get("title"), path, ("document", "title"))

    products: dict[str, Product] = {}

    def define(p: Any, where: tuple[str | int, ...], trail: tuple[tuple[str, str], ...]) -> None:
        p = _obj(p, path, where)
        pid = _str(p.get("product_id"), path, (*where, "product_id"))
        if pid in products:
            _fail(path, (*where, "product_id"), f"product id {pid!r} is defined twice")
        products[pid] = _product(pid, _str(p.get("name"), path, (*where, "name")), trail)

    def walk(branches: Any, where: tuple[str | int, ...], trail: tuple[tuple[str, str], ...]) -> None:
        for i, b in enumerate(_arr(branches, path, where)):
            w = (*where, i)
            b = _obj(b, path, w)
            step = ((_str(b.get("category"), path, (*w, "category")), _str(b.get("name"), path, (*w, "name"))),)
            if "product" in b:
                define(b["product"], (*w, "product"), trail + step)
            if "branches" in b:
                walk(b["branches"], (*w, "branches"), trail + step)

    tree = _obj(root.get("product_tree", {}), path, ("product_tree",))
    if "branches" in tree:
        walk(tree["branches"], ("product_tree", "branches"), ())
    for i, p in enumerate(_arr(tree.get("full_product_names", []), path, ("product_tree", "full_product_names"))):
        define(p, ("product_tree", "full_product_names", i), ())
    for i, r in enumerate(_arr(tree.get("relationships", []), path, ("product_tree", "relationships"))):
        r = _obj(r, path, ("product_tree", "relationships", i))
        define(r.get("full_product_name"), ("product_tree", "relationships", i, "full_product_name"), ())
    groups: dict[str, set[str]] = {}
    for i, g in enumerate(_arr(tree.get("product_groups", []), path, ("product_tree", "product_groups"))):
        gw = ("product_tree", "product_groups", i)
        g = _obj(g, path, gw)
        groups[_str(g.get("group_id"), path, (*gw, "group_id"))] = set(
            _ids(g.get("product_ids"), path, (*gw, "product_ids"), products))

    vulns = []
    for i, v in enumerate(_arr(root.get("vulnerabilities", []), path, ("vulnerabilities",))):
        w: tuple[str | int, ...] = ("vulnerabilities", i)
        v = _obj(v, path, w)
        if "cve" in v:
            _str(v["cve"], path, (*w, "cve"))
        status = _obj(v.get("product_status", {}), path, (*w, "product_status"))
        for key, ids in status.items():
            _ids(ids, path, (*w, "product_status", key), products)
        for j, s in enumerate(_arr(v.get("scores", []), path, (*w, "scores"))):
            s = _obj(s, path, (*w, "scores", j))
            _ids(s.get("products"), path, (*w, "scores", j, "products"), products)
            if "cvss_v3" in s:
                cv = _obj(s["cvss_v3"], path, (*w, "scores", j, "cvss_v3"))
                _vector(cv.get("vectorString"), path, (*w, "scores", j, "cvss_v3", "vectorString"))
        for j, r in enumerate(_arr(v.get("remediations", []), path, (*w, "remediations"))):
            r = _obj(r, path, (*w, "remediations", j))
            _str(r.get("category"), path, (*w, "remediations", j, "category"))
            _ids(r.get("product_ids", []), path, (*w, "remediations", j, "product_ids"), products)
            for k, gid in enumerate(_arr(r.get("group_ids", []), path, (*w, "remediations", j, "group_ids"))):
                if gid not in groups:
                    _fail(path, (*w, "remediations", j, "group_ids", k), f"group id {gid!r} is not in product_groups")
            if "date" in r:
                _datetime(r["date"], path, (*w, "remediations", j, "date"))
        vulns.append((i, v))
    return CsafDocument(path, tid, title, initial.astimezone(UTC).date(), current, products, groups, vulns)


def _ids(value: Any, src: Path, where: tuple[str | int, ...], products: dict[str, Product]) -> list[str]:
    ids = _arr(value, src, where)
    for k, pid in enumerate(ids):
        if pid not in products:
            _fail(src, (*where, k), f"product id {pid!r} is not defined in product_tree")
    return ids


# -- the build ----------------------------------------------------------------------------------


@dataclass
class Inputs:
    debian_tracker: Path
    dsa_lists: list[Path] = field(default_factory=list)
    nvd: list[Path] = field(default_factory=list)
    csaf: list[Path] = field(default_factory=list)            # files or directories
    csaf_map: Path | None = None
    debian_sources: list[Path] = field(default_factory=list)
    packages: Path | None = None
    nvd_cpe_match: list[Path] = field(default_factory=list)   # NVD CPE Match API 2.0 responses


@dataclass
class Build:
    """The feed and what the build left out, so a person can see why a fix is missing."""

    feed: dict[str, Any]
    ecosystems: list[str]
    undated: list[dict[str, str]] = field(default_factory=list)        # fixes with no release date
    unmapped: dict[str, set[str]] = field(default_factory=dict)        # CSAF product line -> documents
    unmapped_versions: dict[str, set[str]] = field(default_factory=dict)
    no_fixed_version: list[dict[str, str]] = field(default_factory=list)
    left_out: Counter[str] = field(default_factory=Counter)
    named_by_source: set[str] = field(default_factory=set)

    def summary(self) -> dict[str, Any]:
        advisories = self.feed["advisories"]
        return {
            "feed_date": self.feed["feed_date"], "source": self.feed["source"], "ecosystems": self.ecosystems,
            "advisories": len(advisories),
            "by_ecosystem": dict(sorted(Counter(a["ecosystem"] for a in advisories).items())),
            "unrated": sum(1 for a in advisories if "cvss_vector" not in a),
            "left_out": dict(sorted(self.left_out.items())),
            "undated_fixes": self.undated,
            "unmapped_products": [{"product": p, "versions": sorted(self.unmapped_versions.get(p, ())),
                                   "documents": sorted(d)} for p, d in sorted(self.unmapped.items())],
            "no_fixed_version": self.no_fixed_version,
            "named_by_source_package": sorted(self.named_by_source),
        }


@dataclass(frozen=True)
class _Fix:
    ecosystem: str
    package: str
    fixed_version: str
    id: str
    released: date
    title: str
    cve: str | None
    vector: str | None


def normalise_ecosystem(name: str) -> str:
    """bookworm -> debian-12, so people can name a release either way."""
    name = name.strip().lower()
    return f"debian-{DEBIAN_RELEASES[name]}" if name in DEBIAN_RELEASES else name


def estate_ecosystems(estate: Estate) -> set[str]:
    """What the estate runs: endpoint groups, IaaS line-of-business systems, firewall platforms, and
    the vendor products (cpe) every estate's services are, as scans see them."""
    out = {g.os.value for g in estate.endpoint_groups} | {CPE}
    out |= {s.os.value for s in estate.lob_systems if s.os is not None}
    out |= {FIREWALL_PLATFORMS[f.vendor] for f in estate.firewalls if f.vendor in FIREWALL_PLATFORMS}
    return out


def _selected(ecosystem: str, selected: set[str]) -> bool:
    # The feed's own rule (Advisory.applies_to) both ways: a "debian" advisory serves a debian-12
    # estate, and asking for "debian" asks for every debian-N.
    return any(s == ecosystem or s.startswith(ecosystem + "-") or ecosystem.startswith(s + "-") for s in selected)


def read_nvd(path: Path, into: dict[str, str]) -> str | None:
    """CVE -> CVSS v3.1 vector from one NVD CVE API 2.0 response; returns the response's timestamp."""
    data, _ = _json(path)
    root = _obj(data, path, ())
    for i, item in enumerate(_arr(root.get("vulnerabilities"), path, ("vulnerabilities",))):
        w: tuple[str | int, ...] = ("vulnerabilities", i, "cve")
        cve = _obj(_obj(item, path, w[:2]).get("cve"), path, w)
        cid = _str(cve.get("id"), path, (*w, "id"))
        metrics = _obj(cve.get("metrics", {}), path, (*w, "metrics"))
        v31 = _arr(metrics.get("cvssMetricV31", []), path, (*w, "metrics", "cvssMetricV31"))
        ranked = sorted(range(len(v31)), key=lambda j: (_obj(v31[j], path, (*w, "metrics", "cvssMetricV31", j))
                                                         .get("type") != "Primary", j))
        for j in ranked[:1]:
            mw = (*w, "metrics", "cvssMetricV31", j, "cvssData")
            into[cid] = _vector(_obj(v31[j].get("cvssData"), path, mw).get("vectorString"), path, (*mw, "vectorString"))
    stamp = root.get("timestamp")
    return str(stamp) if stamp else None


def read_cpe_match(path: Path, into: dict[str, dict[str, str]]) -> None:
    """matchCriteriaId -> its criteria and version bounds, from one NVD CPE Match API 2.0 response."""
    data, _ = _json(path)
    root = _obj(data, path, ())
    for i, item in enumerate(_arr(root.get("matchStrings"), path, ("matchStrings",))):
        w: tuple[str | int, ...] = ("matchStrings", i, "matchString")
        ms = _obj(_obj(item, path, w[:2]).get("matchString"), path, w)
        mid = _str(ms.get("matchCriteriaId"), path, (*w, "matchCriteriaId"))
        into[mid] = {k: str(v) for k, v in ms.items() if k in ("criteria", *_NVD_BOUNDS) and isinstance(v, str)}


def _vendor_version(value: Any, src: Path, where: tuple[str | int, ...]) -> str:
    text = _str(value, src, where)
    try:
        vendorver.key(text)
    except vendorver.VersionError:
        _fail(src, where, f"{text!r} is not a version")
    return text


def read_nvd_cpe(path: Path, matches: dict[str, dict[str, str]], vectors: dict[str, str],
                 out: Build) -> list[dict[str, Any]]:
    """Advisories of the cpe ecosystem from one NVD CVE API 2.0 response (configurations)."""
    data, _ = _json(path)
    root = _obj(data, path, ())
    found: list[dict[str, Any]] = []
    for i, item in enumerate(_arr(root.get("vulnerabilities"), path, ("vulnerabilities",))):
        w: tuple[str | int, ...] = ("vulnerabilities", i, "cve")
        cve = _obj(_obj(item, path, w[:2]).get("cve"), path, w)
        cid = _str(cve.get("id"), path, (*w, "id"))
        published = _datetime(cve.get("published"), path, (*w, "published")).date()
        descriptions = _arr(cve.get("descriptions", []), path, (*w, "descriptions"))
        title = next((str(d.get("value", "")) for d in descriptions if isinstance(d, dict) and d.get("lang") == "en"),
                     "")
        title = title if len(title) <= 160 else title[:157].rstrip() + "..."
        for j, conf in enumerate(_arr(cve.get("configurations", []), path, (*w, "configurations"))):
            cw = (*w, "configurations", j)
            for k, node in enumerate(_arr(_obj(conf, path, cw).get("nodes", []), path, (*cw, "nodes"))):
                nw = (*cw, "nodes", k)
                for m, match in enumerate(_arr(_obj(node, path, nw).get("cpeMatch", []), path, (*nw, "cpeMatch"))):
                    mw = (*nw, "cpeMatch", m)
                    match = _obj(match, path, mw)
                    if match.get("vulnerable") is not True:
                        continue     # a platform the product runs on ("running on/with"), not the product
                    bounds = {b: match[b] for b in _NVD_BOUNDS if b in match}
                    if not bounds and str(match.get("matchCriteriaId", "")) in matches:
                        bounds = {b: v for b, v in matches[str(match["matchCriteriaId"])].items() if b != "criteria"}
                    parts = _str(match.get("criteria"), path, (*mw, "criteria")).split(":")
                    if len(parts) < 6 or parts[:2] != ["cpe", "2.3"] or parts[2] not in ("a", "o", "h"):
                        _fail(path, (*mw, "criteria"), "not a CPE 2.3 name (cpe:2.3:part:vendor:product:version:...)")
                    package = f"{parts[3]}:{parts[4]}".lower()
                    if parts[5] not in ("*", "-"):
                        out.left_out["NVD: one exact version named (no first fixed version)"] += 1
                        continue
                    fixed = bounds.get("versionEndExcluding")
                    if fixed is None:
                        out.left_out["NVD: no versionEndExcluding (no first fixed version stated)"] += 1
                        continue
                    if "versionStartExcluding" in bounds:
                        out.left_out["NVD: versionStartExcluding (not expressible as introduced)"] += 1
                        continue
                    a: dict[str, Any] = {"id": f"NVD-{cid}", "cve": [cid], "ecosystem": CPE, "package": package}
                    if "versionStartIncluding" in bounds:
                        a["introduced"] = _vendor_version(bounds["versionStartIncluding"], path,
                                                          (*mw, "versionStartIncluding"))
                    a["fixed_version"] = _vendor_version(fixed, path, (*mw, "versionEndExcluding"))
                    if "introduced" in a and vendorver.compare(a["introduced"], a["fixed_version"]) >= 0:
                        out.left_out["NVD: empty version range"] += 1
                        continue
                    if cid in vectors:
                        a["cvss_vector"] = vectors[cid]
                    a["released"] = published.isoformat()
                    a["title"] = title
                    found.append(a)
    return found


def _debian_fixes(src: Path, data: Any, releases: dict[str, str], dsa: DsaLists, nvd: dict[str, str],
                  binaries: dict[str, set[str]], plist: PackageList | None, out: Build) -> Iterator[_Fix]:
    tracker = _obj(data, src, ())
    for source in sorted(tracker):
        issues = _obj(tracker[source], src, (source,))
        names: list[str] | None = None
        for issue in sorted(issues):
            entry = _obj(issues[issue], src, (source, issue))
            rels = _obj(entry.get("releases", {}), src, (source, issue, "releases"))
            for codename in sorted(set(rels) & set(releases)):
                w = (source, issue, "releases", codename)
                rel = _obj(rels[codename], src, w)
                status = _str(rel.get("status"), src, (*w, "status"))
                urgency = str(rel.get("urgency") or "").rstrip("*")
                fixed = rel.get("fixed_version")
                if status != "resolved":
                    out.left_out[f"Debian: {status}, no fix yet"] += 1
                    continue
                if not _CVE.match(issue):
                    out.left_out["Debian: not a CVE (TEMP- id)"] += 1
                    continue
                if fixed is None or fixed == "0":
                    out.left_out["Debian: release never vulnerable"] += 1
                    continue
                fixed = _version(fixed, src, (*w, "fixed_version"))
                if urgency == "unimportant":
                    out.left_out["Debian: unimportant"] += 1
                    continue
                dated = dsa.fixes.get((codename, source, fixed))
                if dated is None:
                    repos = _obj(rel.get("repositories", {}), src, (*w, "repositories"))
                    updates = {repos.get(f"{codename}-security"), repos.get(f"{codename}-lts")}
                    if _STABLE_UPDATE.search(fixed) or fixed in updates:
                        out.undated.append({"release": codename, "package": source, "fixed_version": fixed,
                                            "cve": issue})
                    else:
                        out.left_out["Debian: fixed in the release as shipped (no stable update)"] += 1
                    continue
                if names is None:
                    names = _binaries(source, binaries, plist, out)
                    if not names:
                        out.left_out["Debian: source packages with no binary on the package list"] += 1
                for name in names:
                    yield _Fix(f"debian-{releases[codename]}", name, fixed, dated.advisory, dated.released,
                               dated.title, issue, nvd.get(issue))


def _binaries(source: str, index: dict[str, set[str]], plist: PackageList | None, out: Build) -> list[str]:
    names = set(index.get(source, ()))
    if plist is not None:
        names |= {b for b, s in plist.source_of.items() if s == source}
    if not names:
        names = {source}
        out.named_by_source.add(source)
    if plist is not None:
        names &= plist.names
    return sorted(names)


def _csaf_fixes(inputs: Inputs, csaf_map: CsafMap, nvd: dict[str, str], out: Build) -> Iterator[_Fix]:
    latest: dict[str, CsafDocument] = {}
    for given in inputs.csaf:
        if not given.exists():
            raise BuildError(f"{given}: no such file or directory")
        for path in _files(given):
            doc = read_csaf(path)
            seen = latest.get(doc.id)
            if seen is None or (doc.current, str(doc.path)) > (seen.current, str(seen.path)):
                if seen is not None:
                    out.left_out["CSAF: earlier revision of a document also given"] += 1
                latest[doc.id] = doc
            else:
                out.left_out["CSAF: earlier revision of a document also given"] += 1
    for doc_id in sorted(latest):
        yield from _document_fixes(latest[doc_id], csaf_map, nvd, out)


def _document_fixes(doc: CsafDocument, csaf_map: CsafMap, nvd: dict[str, str], out: Build) -> Iterator[_Fix]:
    for _, v in doc.vulnerabilities:
        status = v.get("product_status", {})
        states = {k: set(status.get(k, [])) for k in (*_FIXED_STATES, *_AFFECTED_STATES)}
        packages: dict[tuple[str, str], set[str]] = defaultdict(set)
        for pid in sorted(set().union(*states.values())):
            product = doc.products[pid]
            entry = csaf_map.match(product)
            if entry is None:
                out.unmapped.setdefault(product.line, set()).add(doc.path.name)
                if product.version or product.range:
                    out.unmapped_versions.setdefault(product.line, set()).add(product.version or product.range or "")
                continue
            packages[(entry.ecosystem, entry.package)].add(pid)
        cve = v.get("cve")
        for (ecosystem, package), ids in sorted(packages.items()):
            where = {"document": doc.path.name, "id": doc.id, "cve": cve or "", "package": package}
            fixed = _csaf_fixed_version(doc, ids, states, out, {**where, "ecosystem": ecosystem})
            if fixed is None:
                continue
            dates: list[date] = []
            kbs: set[str] = set()
            for r in v.get("remediations", []):
                covered = set(r.get("product_ids", [])).union(*(doc.groups[g] for g in r.get("group_ids", [])))
                if r["category"] != "vendor_fix" or not covered & ids:
                    continue
                if "date" in r:
                    dates.append(_utc_date(r["date"]))
                kb = _KB.match(str(r.get("details", "")).strip())
                if kb:
                    kbs.add(f"KB{kb.group(1)}")
            vectors = [s["cvss_v3"]["vectorString"] for s in v.get("scores", [])
                       if "cvss_v3" in s and set(s["products"]) & ids]
            vector = min(vectors, key=lambda x: (-cvss_score(x), x)) if vectors else (nvd.get(cve) if cve else None)
            title = str(v.get("title") or doc.title)
            if kbs:
                title += f" ({', '.join(sorted(kbs))})"
            yield _Fix(ecosystem, package, fixed, doc.id, min(dates) if dates else doc.initial, title, cve, vector)


def _csaf_fixed_version(doc: CsafDocument, ids: set[str], states: dict[str, set[str]], out: Build,
                        where: dict[str, str]) -> str | None:
    candidates: list[str] = []
    for state in _FIXED_STATES:
        candidates = [v for p in sorted(ids & states[state]) if (v := doc.products[p].version)]
        if candidates:
            break
    if not candidates:
        affected = ids & set().union(*(states[s] for s in _AFFECTED_STATES))
        candidates = [v for p in sorted(affected) if (v := doc.products[p].fixed_by_range())]
    usable = []
    cpe = where.get("ecosystem") == CPE
    for c in candidates:
        try:
            vendorver.key(c) if cpe else debver.split(c)
            usable.append(c)
        except ValueError:
            out.no_fixed_version.append({**where, "reason": f"version {c!r} cannot be ordered"})
    if not usable:
        if not candidates:
            out.no_fixed_version.append({**where, "reason": "affected, and no fixed version stated"})
        return None
    return min(usable, key=vendorver.key if cpe else debver.sort_key)


def _describe_inputs(inputs: Inputs, digest: str, dsa: DsaLists, nvd_stamps: list[str], nvd_count: int,
                     plist: PackageList | None, csaf_docs: int) -> list[str]:
    tracker = inputs.debian_tracker
    saved = date.fromtimestamp(tracker.stat().st_mtime).isoformat()
    parts = [f"Debian Security Tracker JSON {tracker.name} (saved {saved}, sha256 {digest[:12]})"]
    if dsa.described:
        parts.append("DSA/DLA lists " + ", ".join(dsa.described))
    if inputs.nvd:
        newest = max(nvd_stamps) if nvd_stamps else "no timestamp"
        parts.append(f"NVD CVE API 2.0: {len(inputs.nvd)} file(s), {nvd_count} CVSS v3.1 vectors (newest {newest})")
    if inputs.debian_sources:
        parts.append("Debian Sources " + ", ".join(p.name for p in inputs.debian_sources))
    if plist is not None and plist.path is not None:
        parts.append(f"estate package list {plist.path.name} ({len(plist.names)} packages)")
    if inputs.csaf:
        parts.append(f"CSAF 2.0: {csaf_docs} document(s), products mapped by "
                     f"{inputs.csaf_map.name if inputs.csaf_map else 'no mapping'}")
    return parts


def build(inputs: Inputs, *, ecosystems: Iterable[str], feed_date: date, note: str = "") -> Build:
    """The feed for `ecosystems`, and an account of what was left out. Raises BuildError."""
    if inputs.csaf and inputs.csaf_map is None:
        raise BuildError("--csaf needs --csaf-map: the council's mapping of CSAF products to feed packages")
    selected = {normalise_ecosystem(e) for e in ecosystems}
    releases = {c: n for c, n in DEBIAN_RELEASES.items() if _selected(f"debian-{n}", selected)}
    out = Build(feed={}, ecosystems=sorted(selected))
    dsa = DsaLists()
    for path in inputs.dsa_lists:
        dsa.read(path)
    nvd: dict[str, str] = {}
    stamps = [s for p in inputs.nvd for f in _files(p) if (s := read_nvd(f, nvd))]
    binaries: dict[str, set[str]] = {}
    for path in inputs.debian_sources:
        read_sources(path, binaries)
    plist = PackageList.read(inputs.packages) if inputs.packages else None
    csaf_map = CsafMap.read(inputs.csaf_map) if inputs.csaf_map else None

    tracker, digest = _json(inputs.debian_tracker)
    fixes = list(_debian_fixes(inputs.debian_tracker, tracker, releases, dsa, nvd, binaries, plist, out))
    del tracker   # the export is large; the fixes are all that is needed of it
    if csaf_map is not None:
        fixes += list(_csaf_fixes(inputs, csaf_map, nvd, out))
    vendor: list[dict[str, Any]] = []
    if _selected(CPE, selected):
        matches: dict[str, dict[str, str]] = {}
        for given in inputs.nvd_cpe_match:
            for saved in _files(given):
                read_cpe_match(saved, matches)
        for given in inputs.nvd:
            for saved in _files(given):
                vendor += read_nvd_cpe(saved, matches, nvd, out)

    grouped: dict[tuple[str, str, str, str, date, str, str], set[str]] = defaultdict(set)
    for f in fixes:
        if not _selected(f.ecosystem, selected):
            out.left_out["outside the selected ecosystems"] += 1
            continue
        # One entry per distinct vector: merging CVEs rated differently would lose the unrated ones.
        grouped[(f.ecosystem, f.package, f.fixed_version, f.id, f.released, f.vector or "", f.title)].update(
            [f.cve] if f.cve else [])
    advisories = []
    for (eco, package, fixed, aid, released, vector, title), cves in sorted(
            grouped.items(), key=lambda kv: (kv[0][0], kv[0][1], kv[0][4], kv[0][3], kv[0][2], kv[0][5],
                                             kv[0][6], sorted(kv[1]))):
        a: dict[str, Any] = {"id": aid, "cve": sorted(cves), "ecosystem": eco, "package": package,
                             "fixed_version": fixed}
        if vector:
            a["cvss_vector"] = vector
        a["released"] = released.isoformat()
        a["title"] = title
        advisories.append(a)
    if vendor:
        # The same range named twice (two configurations, two saved pages) is one advisory.
        unique = {json.dumps(a, sort_keys=True): a for a in vendor}
        advisories = sorted([*advisories, *unique.values()], key=_advisory_order)
    out.undated.sort(key=lambda u: (u["release"], u["package"], u["fixed_version"], u["cve"]))
    out.no_fixed_version.sort(key=lambda u: (u["document"], u["cve"], u["package"], u["reason"]))
    csaf_docs = sum(len(_files(p)) for p in inputs.csaf if p.exists())
    parts = ([note] if note else []) + _describe_inputs(inputs, digest, dsa, stamps, len(nvd), plist, csaf_docs)
    out.feed = {"format": FORMAT, "feed_date": feed_date.isoformat(),
                "source": "; ".join(parts) + "; built offline by `estate advisories build`",
                "advisories": advisories}
    return out


def _advisory_order(a: dict[str, Any]) -> tuple[str, ...]:
    # The order above for every advisory, the range's start last: one CVE may name two ranges.
    return (a["ecosystem"], a["package"], a["released"], a["id"], a["fixed_version"], a.get("cvss_vector", ""),
            a["title"], ",".join(a["cve"]), a.get("introduced", ""))


def render(feed: dict[str, Any]) -> str:
    """One advisory per line: next month's feed diffs against this one line by line."""
    head = [f"  {json.dumps(k)}: {json.dumps(v, ensure_ascii=False)}," for k, v in feed.items() if k != "advisories"]
    rows = ",\n".join("    " + json.dumps(a, ensure_ascii=False) for a in feed["advisories"])
    return "{\n" + "\n".join(head) + '\n  "advisories": [\n' + (rows + "\n" if rows else "") + "  ]\n}\n"


def write_feed(feed: dict[str, Any], out: Path) -> Feed:
    """Check the feed with the loader every run uses, then replace `out` in one rename (0644)."""
    text = render(feed)
    with tempfile.TemporaryDirectory(prefix="estate-feed-") as tmp:
        candidate = Path(tmp) / out.name
        candidate.write_text(text)
        try:
            checked = load_feed(candidate)
        except FeedError as exc:
            raise BuildError(f"{out}: the built feed does not load, nothing written "
                             f"({str(exc).removeprefix(str(candidate) + ': ')})") from None
    atomic_write(out, text, mode=SHARED_FILE)
    return checked.model_copy(update={"path": str(out)})
