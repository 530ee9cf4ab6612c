"""Nessus v2 (`.nessus`, root `<NessusClientData_v2>`), read as Tenable documents the format.

    <NessusClientData_v2>
      <Policy>...</Policy>          (scan settings; may hold credentials: never read or stored)
      <Report name="...">
        <ReportHost name="10.0.0.5">
          <HostProperties><tag name="host-ip">10.0.0.5</tag><tag name="host-fqdn">...</tag>
                          <tag name="Credentialed_Scan">true</tag>...</HostProperties>
          <ReportItem port="22" svc_name="ssh" protocol="tcp" severity="2" pluginID="90317"
                      pluginName="..." pluginFamily="...">
            <cve>CVE-...</cve>  <cvss3_vector>CVSS:3.0/...</cvss3_vector>  <plugin_output>...
            <plugin_type>remote | local | combined</plugin_type>  <solution>...</solution>
          </ReportItem>

The file is streamed through expat, keeping only what a finding needs, so a 50 MB file becomes
neither a tree ten times its size nor a wait (ElementTree's Python-level builder is three times
slower here). As defusedxml's forbid_dtd does, any DOCTYPE is refused, so no entity can be declared
and no external reference can be made; expat is told never to read parameter entities.
"""

from __future__ import annotations

from typing import Any
from xml.parsers import expat

from .nmapxml import BadScanXml, check_size, root_tag
from .secrets import scrub
from .vulnresult import TOOL_SEVERITY, VulnResult, clean_cves, clean_vector

_ITEM_FIELDS = {"cve", "cvss3_vector", "plugin_output", "solution", "plugin_type", "plugin_name"}


class _Refused(Exception):
    pass


class _Reader:
    """expat handlers: ReportHost -> HostProperties tags, ReportItem attributes and the fields above."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.results: list[VulnResult] = []
        self.hosts = 0
        self.policy = 0                      # depth inside <Policy> (scan settings, credentials: skipped)
        self.host: dict[str, str] = {}
        self.tags: dict[str, str] = {}
        self.item: dict[str, str] | None = None
        self.fields: dict[str, list[str]] = {}
        self.field: str | None = None        # the element whose text is being collected
        self.text: list[str] = []

    def start(self, name: str, attrs: dict[str, str]) -> None:
        if self.policy or name == "Policy":
            self.policy += 1
            return
        if name == "ReportHost":
            self.host, self.tags = dict(attrs), {}
        elif name == "tag" and self.item is None:
            self.field, self.text = "tag:" + attrs.get("name", ""), []
        elif name == "ReportItem":
            self.item, self.fields = dict(attrs), {}
        elif self.item is not None and name in _ITEM_FIELDS:
            self.field, self.text = name, []

    def chars(self, data: str) -> None:
        if self.field is not None:
            self.text.append(data)

    def end(self, name: str) -> None:
        if self.policy:
            self.policy -= 1
            return
        if self.field is not None and name == ("tag" if self.field.startswith("tag:") else self.field):
            value = "".join(self.text).strip()
            if self.field.startswith("tag:"):
                self.tags[self.field[4:]] = value
            else:
                self.fields.setdefault(self.field, []).append(value)
            self.field = None
        elif name == "ReportItem" and self.item is not None:
            self.results.append(self._result(self.item, self.fields))
            self.item = None
        elif name == "ReportHost":
            self.hosts += 1

    def _address(self) -> str:
        address = self.tags.get("host-ip") or self.host.get("name", "")
        if not address:
            raise BadScanXml(f"{self.source}: a <ReportHost> has no name or host-ip")
        return address

    def _result(self, item: dict[str, str], fields: dict[str, list[str]]) -> VulnResult:
        address = self._address()
        plugin = item.get("pluginID", "")
        if not plugin:
            raise BadScanXml(f"{self.source}: host {address}: a <ReportItem> has no pluginID")
        try:
            port = int(item.get("port", "0") or 0)
        except ValueError:
            raise BadScanXml(f"{self.source}: host {address}: plugin {plugin}: port {item.get('port')!r} "
                             "is not a number") from None

        def first(key: str) -> str:
            return fields.get(key, [""])[0]

        plugin_type = first("plugin_type")
        credentialed = self.tags.get("Credentialed_Scan", "").lower() == "true"
        return VulnResult(
            tool="nessus", host=address,
            hostname=self.tags.get("host-fqdn", "") or self.tags.get("netbios-name", ""),
            plugin_id=plugin, name=item.get("pluginName", "") or first("plugin_name"), port=port,
            protocol=item.get("protocol", "tcp") or "tcp", service=item.get("svc_name", ""),
            family=item.get("pluginFamily", ""),
            severity=TOOL_SEVERITY.get(item.get("severity", "0").strip().lower(), "info"),
            cvss_vector=clean_vector(first("cvss3_vector") or None), cves=clean_cves(fields.get("cve", [])),
            output=scrub(first("plugin_output")), solution=scrub(first("solution")),
            credentialed=credentialed and plugin_type == "local", detection=plugin_type)


def _refuse(*_args: Any) -> None:
    raise _Refused()


def _refuse_reference(*_args: Any) -> int:
    raise _Refused()


def parse(data: bytes, *, source: str) -> list[VulnResult]:
    check_size(data, source)
    root = root_tag(data)
    if root != "NessusClientData_v2":
        raise BadScanXml(f"{source}: the root element is <{root}>, not <NessusClientData_v2>: not a Nessus v2 file")
    reader = _Reader(source)
    parser = expat.ParserCreate()
    parser.SetParamEntityParsing(expat.XML_PARAM_ENTITY_PARSING_NEVER)
    parser.StartDoctypeDeclHandler = _refuse
    parser.EntityDeclHandler = _refuse
    parser.ExternalEntityRefHandler = _refuse_reference
    parser.StartElementHandler = reader.start
    parser.EndElementHandler = reader.end
    parser.CharacterDataHandler = reader.chars
    parser.buffer_text = True
    try:
        parser.Parse(data, True)
    except _Refused:
        raise BadScanXml(f"{source}: refused: a DTD (DTDs, entities and external references are not accepted "
                         "in scan files)") from None
    except expat.ExpatError as exc:
        raise BadScanXml(f"{source}: not well-formed XML ({expat.ErrorString(exc.code)}: line {exc.lineno}, "
                         f"column {exc.offset}); truncated?") from None
    if not reader.hosts:
        raise BadScanXml(f"{source}: a Nessus v2 file with no <ReportHost>: nothing to import")
    return reader.results
