"""Service versions judged offline: what nmap's service detection (-sV) reports, against the
council's advisory feed (its cpe ecosystem) and the end-of-support data.

Nothing leaves the machine: no `vulners` NSE script, no lookup service. A port's product and
version come from nmap's `<cpe>` elements (cpe:/a:openbsd:openssh:7.4p1) or, without one, its
`product`/`version` attributes through the table below; Apache's extrainfo also names the OpenSSL
it was built with.

What a banner cannot prove. nmap reads the version a service announces. Debian, Ubuntu and Red
Hat keep a release's upstream version and backport security fixes into it ("OpenSSH 7.4p1
Debian 10+deb9u7" may hold every fix of 9.3p2), so a distribution's banner says nothing certain
about a fix: such findings say so, carry confidence "low" and severity low, and point at the
credentialed patch check (installed package versions) as the proof. A banner without a
distribution mark is still only a banner (confidence "medium"): a vendor can patch without
changing it, and an administrator can change it without patching.

The feed and the end-of-support data belong to the compliance engine; this module receives them
through the small interfaces below (the scan step is handed them by the command), so the engines
stay independent.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Protocol

from ..checks import make_finding
from ..findings import EvidenceRef, Finding, Severity, Status

# nmap's product names (lower case, as a prefix) -> CPE 2.3 vendor:product, where nmap gives no <cpe>.
PRODUCTS: tuple[tuple[str, str], ...] = (
    ("openssh", "openbsd:openssh"),
    ("apache httpd", "apache:http_server"),
    ("apache tomcat", "apache:tomcat"),
    ("nginx", "f5:nginx"),
    ("microsoft iis httpd", "microsoft:internet_information_services"),
    ("microsoft exchange", "microsoft:exchange_server"),
    ("samba smbd", "samba:samba"),
    ("openssl", "openssl:openssl"),
    ("fortinet fortios", "fortinet:fortios"),
    ("fortigate", "fortinet:fortios"),
    ("lighttpd", "lighttpd:lighttpd"),
    ("vsftpd", "beasts:vsftpd"),
    ("proftpd", "proftpd:proftpd"),
    ("postfix smtpd", "postfix:postfix"),
    ("exim smtpd", "exim:exim"),
    ("isc bind", "isc:bind"),
    ("dropbear sshd", "dropbear_ssh_project:dropbear_ssh"),
    ("mysql", "oracle:mysql"),
    ("postgresql", "postgresql:postgresql"),
    ("vmware esxi", "vmware:esxi"),
    ("hp embedded web server", "hp:embedded_web_server"),
)
# One product, several CPE vendors over time (nginx: igor_sysoev, nginx, now f5): look each up.
_ALIAS_GROUPS = (("f5:nginx", "nginx:nginx", "igor_sysoev:nginx"),)
ALIASES = {name: tuple(n for n in group if n != name) for group in _ALIAS_GROUPS for name in group}
CANONICAL = {name: group[0] for group in _ALIAS_GROUPS for name in group}
_OPENSSL_IN_EXTRA = re.compile(r"OpenSSL/(\d[\w.\-]*)", re.IGNORECASE)
# Marks of a distribution's build: its security team backports fixes without changing the version.
_DISTRO = re.compile(r"\b(debian|ubuntu|raspbian|deb\d+u\d+|ubuntu\d[\w.]*|red ?hat|rhel|centos|rocky|almalinux|"
                     r"el[6-9](?:_\d+)?|fedora|suse|sles|amazon linux|amzn\d?)\b", re.IGNORECASE)


class AdvisoryLike(Protocol):
    """What the version matcher reads of one advisory of the feed (compliance.advisories.Advisory)."""

    @property
    def id(self) -> str: ...

    @property
    def cve(self) -> list[str]: ...

    @property
    def fixed_version(self) -> str: ...

    @property
    def cvss_vector(self) -> str | None: ...

    @property
    def score(self) -> float | None: ...

    @property
    def title(self) -> str: ...


class AdvisorySource(Protocol):
    def affecting(self, vendor_product: str, version: str) -> Sequence[AdvisoryLike]: ...


ProductEol = Callable[[str, str], "tuple[str, date] | None"]
VersionOrder = Callable[[str], object]   # a sort key (compliance.vendorver.key)


@dataclass(frozen=True)
class Knowledge:
    """The offline data versions are judged against, as the command found it."""

    feed: AdvisorySource | None = None
    feed_label: str = ""                 # e.g. "advisories.json of 2026-11-20": shown in every finding
    product_eol: ProductEol | None = None
    version_key: VersionOrder | None = None
    today: date | None = None
    # A scan repeats a few hundred (product, version) pairs over thousands of ports: each is looked
    # up once.
    _seen: dict[tuple[str, str], list[AdvisoryLike]] = field(default_factory=dict, compare=False, repr=False)
    _lives: dict[tuple[str, str], tuple[str, date] | None] = field(default_factory=dict, compare=False, repr=False)

    def affecting(self, vendor_product: str, version: str) -> list[AdvisoryLike]:
        """The advisories for this product (and its other CPE names) whose range holds the version."""
        key = (vendor_product, version)
        if key not in self._seen:
            hits: dict[str, AdvisoryLike] = {}
            if self.feed is not None:
                for vp in (vendor_product, *ALIASES.get(vendor_product, ())):
                    for a in self.feed.affecting(vp, version):
                        hits.setdefault(a.id, a)
            self._seen[key] = list(hits.values())
        return self._seen[key]

    def end_of_life(self, vendor_product: str, version: str) -> tuple[str, date] | None:
        key = (vendor_product, version)
        if key not in self._lives:
            self._lives[key] = self.product_eol(vendor_product, version) if self.product_eol else None
        return self._lives[key]


@dataclass(frozen=True)
class Identified:
    vendor_product: str
    version: str          # as the service announced it (first word: "7.4p1")
    product: str          # what nmap called it ("OpenSSH")
    basis: str            # "cpe" (nmap's <cpe>) or "banner" (product/version attributes)
    distro: str           # the distribution mark in the banner, "" when none


def _cpe(value: str) -> tuple[str, str] | None:
    """(vendor:product, version) of an nmap CPE 2.2 URI (cpe:/a:openbsd:openssh:7.4p1) or a CPE 2.3 name."""
    if value.startswith("cpe:2.3:"):
        parts = value.split(":")[2:]
    elif value.startswith("cpe:/"):
        parts = value[5:].split(":")
    else:
        return None
    if len(parts) < 4 or parts[0] not in ("a", "o", "h") or parts[3] in ("", "*", "-"):
        return None
    version = parts[3]
    # CPE 2.3 puts OpenSSH's "p1" in the update field (openssh:7.4:p1); 2.2 URIs often do too.
    if len(parts) > 4 and re.fullmatch(r"p\d+", parts[4] or ""):
        version += parts[4]
    return f"{parts[1].lower()}:{parts[2].lower()}", version


def identify(product: str, version: str, extrainfo: str, cpes: Iterable[str]) -> list[Identified]:
    """The vendor products a port's service detection names, with their versions."""
    banner = " ".join(x for x in (version, extrainfo) if x)
    m = _DISTRO.search(banner)
    distro = m.group(1) if m else ""
    found: dict[str, Identified] = {}
    lowered = product.lower()
    mapped = next((vp for prefix, vp in PRODUCTS if lowered.startswith(prefix)), None)
    first = version.split()[0] if version.split() else ""
    for c in cpes:
        parsed = _cpe(c)
        if parsed is None:
            continue
        vp, ver = parsed
        vp = CANONICAL.get(vp, vp)
        # The attribute is the fuller version where both say the same release ("7.4p1" vs cpe "7.4").
        if mapped == vp and first.startswith(ver):
            ver = first
        found.setdefault(vp, Identified(vp, ver, product or vp.split(":")[1], "cpe", distro))
    if mapped and first and mapped not in found and first[:1].isdigit():
        found[mapped] = Identified(mapped, first, product, "banner", distro)
    ssl = _OPENSSL_IN_EXTRA.search(banner)
    if ssl and "openssl:openssl" not in found:
        found["openssl:openssl"] = Identified("openssl:openssl", ssl.group(1), "OpenSSL", "banner", distro)
    return list(found.values())


def judge(asset: str, port_key: str, ident: Identified, knowledge: Knowledge, *, evidence: list[EvidenceRef],
          site: str | None, zone: str | None, vantage: str) -> list[Finding]:
    """The scan.vulnerable_version (and scan.eol_product) findings for one product on one port."""
    key = f"{port_key} {ident.vendor_product}"
    named = f"{ident.product} {ident.version}".strip()
    backport = bool(ident.distro)
    confidence = "low" if backport else "medium"
    caveat = (f"the banner shows a {ident.distro} build: the distribution backports security fixes without "
              "changing the upstream version, so the banner cannot show whether these are fixed; confirm "
              "with the credentialed patch check (installed package versions)" if backport else
              "judged from the version the service announces (banner only): a vendor fix or a changed "
              "banner would not show; confirm on the host")
    details: dict[str, object] = {"vantage": vantage, "vendor_product": ident.vendor_product,
                                  "version": ident.version, "product": ident.product, "basis": ident.basis,
                                  "evidence_basis": "banner", "confidence": confidence,
                                  "backport_possible": backport, "distribution": ident.distro or None,
                                  "caveat": caveat, "feed": knowledge.feed_label or None}
    out: list[Finding] = []
    expected = "a version with no known vulnerability in the council's advisory feed"
    if knowledge.feed is None:
        out.append(make_finding("scan.vulnerable_version", asset, Status.NOT_ASSESSED, key=key,
                                observed=f"{named} on {port_key}: not judged, no advisory feed was given "
                                         "(organisation.advisory_feed or --advisory-feed)",
                                expected=expected, evidence=evidence, site=site, zone=zone, details=details))
    else:
        hits = knowledge.affecting(ident.vendor_product, ident.version)
        if not hits:
            out.append(make_finding("scan.vulnerable_version", asset, Status.PASS, key=key,
                                    observed=f"{named}: no advisory in {knowledge.feed_label or 'the feed'} "
                                             "affects this version",
                                    expected=expected, evidence=evidence, site=site, zone=zone, details=details))
        else:
            out.append(_vulnerable(asset, key, named, list(hits), knowledge, backport, caveat,
                                   details, evidence, site, zone, expected))
    if knowledge.product_eol is not None:
        life = knowledge.end_of_life(ident.vendor_product, ident.version)
        today = knowledge.today or date.today()
        if life is not None:
            name, ended = life
            exp = "a product release line its supplier still supports"
            if today > ended:
                observed = f"{named}: {name} reached end of support on {ended.isoformat()}"
                if backport:
                    observed += f"; the {ident.distro} build may still be supported by the distribution"
                out.append(make_finding("scan.eol_product", asset, Status.FAIL, key=key, observed=observed,
                                        expected=exp, evidence=evidence, site=site, zone=zone,
                                        severity=Severity.LOW if backport else None,
                                        details={**details, "release_line": name, "eol": ended.isoformat()}))
            else:
                out.append(make_finding("scan.eol_product", asset, Status.PASS, key=key,
                                        observed=f"{named}: {name} supported until {ended.isoformat()}",
                                        expected=exp, evidence=evidence, site=site, zone=zone,
                                        details={**details, "release_line": name, "eol": ended.isoformat()}))
    return out


def _vulnerable(asset: str, key: str, named: str, hits: list[AdvisoryLike], knowledge: Knowledge, backport: bool,
                caveat: str, details: dict[str, object], evidence: list[EvidenceRef], site: str | None,
                zone: str | None, expected: str) -> Finding:
    hits.sort(key=lambda a: (-(a.score or 0.0), a.id))
    cves = sorted({c for a in hits for c in a.cve})
    worst = next((a for a in hits if a.cvss_vector), None)
    fixes = [a.fixed_version for a in hits]
    order = knowledge.version_key
    fixed = max(fixes, key=order) if order is not None else fixes[0]  # type: ignore[arg-type]
    listed = ", ".join(f"{c}" for c in cves[:8]) + (f" and {len(cves) - 8} more" if len(cves) > 8 else "")
    observed = (f"{named} is in the affected range of {len(hits)} advisor{'y' if len(hits) == 1 else 'ies'} "
                f"({listed or ', '.join(a.id for a in hits)}); fixed in {fixed}; {caveat}")
    return make_finding(
        "scan.vulnerable_version", asset, Status.FAIL, key=key, observed=observed, expected=expected,
        evidence=evidence, site=site, zone=zone, cvss_vector=worst.cvss_vector if worst else None,
        # A distribution build's banner is weak evidence: reported, at low severity, not as an alarm.
        # Unrated advisories count as high, as the patch engine treats them; a rated one by its vector.
        severity=Severity.LOW if backport else (None if worst else Severity.HIGH),
        details={**details, "cves": cves, "fixed_version": fixed,
                 "advisories": [{"id": a.id, "cve": list(a.cve), "fixed_version": a.fixed_version,
                                 "cvss_vector": a.cvss_vector, "title": a.title} for a in hits]})
