"""Read a scan file someone else produced, whatever it is, without trusting it.

`estate scan import` takes nmap XML, Nessus v2 (`.nessus`) and OpenVAS/Greenbone report XML. The
file is read with a bounded read (at most the cap plus one byte), so a pipe, a device or a file
that grows while it is read is refused at the cap just as a large regular file is: a size from
stat() would say nothing about /dev/zero or `<(curl ...)`. The format is told from the document's
root element, not from the file name, and every parser below refuses DTDs, entities and external
references (defusedxml).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from . import nmapxml
from .nmapxml import BadScanXml

FORMATS = {"nmaprun": "nmap", "NessusClientData_v2": "nessus", "report": "openvas", "get_reports_response": "openvas"}


@dataclass(frozen=True)
class ScanFile:
    data: bytes
    source: str
    kind: str        # nmap | nessus | openvas
    sha256: str


def read_capped(stream: BinaryIO, source: str, limit: int | None = None) -> bytes:
    """At most `limit` bytes (default: the scan-file cap) from any stream; more is refused."""
    cap = nmapxml.MAX_XML_BYTES if limit is None else limit
    chunks: list[bytes] = []
    got = 0
    while got <= cap:
        chunk = stream.read(min(1 << 20, cap + 1 - got))
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    if got > cap:
        raise BadScanXml(f"{source}: over the {cap // (1024 * 1024)} MiB limit for a scan file "
                         "(read stopped there)")
    return b"".join(chunks)


def read_file(path: Path) -> bytes:
    """The file's bytes, refused past the cap; OSError is left to the caller (it names the file)."""
    with path.open("rb") as f:
        return read_capped(f, str(path))


def detect(data: bytes, source: str) -> str:
    """nmap, nessus or openvas, from the root element; anything else is refused with one line."""
    name = nmapxml.root_tag(data)
    if not name:
        raise BadScanXml(f"{source}: not an XML scan file (no root element found)")
    kind = FORMATS.get(name)
    if kind is None:
        raise BadScanXml(f"{source}: the root element is <{name}>: not nmap XML (<nmaprun>), Nessus v2 "
                         "(<NessusClientData_v2>) or an OpenVAS/Greenbone report (<report>)")
    return kind


def open_scan(data: bytes, source: str) -> ScanFile:
    nmapxml.check_size(data, source)
    return ScanFile(data=data, source=source, kind=detect(data, source), sha256=hashlib.sha256(data).hexdigest())
