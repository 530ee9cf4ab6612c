"""RFC 3161 timestamps over SHA256SUMS, requested with `openssl ts` and sent over HTTP(S).

The request carries only the SHA-256 of SHA256SUMS (no content leaves the machine) and asks for the
TSA's certificate in the reply, so `openssl ts -verify -CAfile <TSA CA>` can check it later.
"""

from __future__ import annotations

import subprocess
import tempfile
import urllib.request
from pathlib import Path


class TimestampError(Exception):
    pass


def timestamp(sums: Path, url: str, out: Path, ca: Path | None = None, timeout: float = 30.0) -> None:
    if not url.startswith(("http://", "https://")):
        raise TimestampError(f"--tsa-url {url!r}: must be an http:// or https:// URL")
    with tempfile.TemporaryDirectory() as tmp:
        query = Path(tmp) / "request.tsq"
        _openssl(["ts", "-query", "-data", str(sums), "-sha256", "-cert", "-out", str(query)])
        req = urllib.request.Request(url, data=query.read_bytes(), method="POST",  # noqa: S310 (scheme checked)
                                     headers={"Content-Type": "application/timestamp-query"})
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:  # noqa: S310
                reply = resp.read()
        except OSError as exc:
            raise TimestampError(f"timestamp authority {url} did not answer: {exc}") from None
        out.write_bytes(reply)
    if ca is not None:
        proc = subprocess.run(["openssl", "ts", "-verify", "-in", str(out), "-data", str(sums), "-CAfile", str(ca)],
                              capture_output=True, text=True, check=False)
        if proc.returncode != 0:
            out.unlink(missing_ok=True)
            raise TimestampError(f"the timestamp from {url} does not verify against the TSA CA {ca}: "
                                 f"{proc.stdout.strip() or proc.stderr.strip()}")


def _openssl(args: list[str]) -> None:
    proc = subprocess.run(["openssl", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise TimestampError(f"openssl {args[0]} failed: {proc.stderr.strip()}")
