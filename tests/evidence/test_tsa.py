"""RFC 3161 timestamps from a real `openssl ts` timestamp authority on loopback (the test builds its CA)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import pytest

from security_checks.evidence.bundle import seal, verify
from security_checks.evidence.tsa import TimestampError
from tests.report.builders import demo_loaded, make_two_runs, patched_catalogue


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


@pytest.fixture(scope="module")
def tsa(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    d = tmp_path_factory.mktemp("tsa")
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "ca.key",
            "-out", "ca.crt", "-subj", "/CN=Test TSA CA", "-days", "2",
            "-addext", "basicConstraints=critical,CA:true", "-addext", "keyUsage=critical,keyCertSign", cwd=d)
    openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", "tsa.key",
            "-out", "tsa.csr", "-subj", "/CN=Test TSA", cwd=d)
    (d / "ext.cnf").write_text("extendedKeyUsage=critical,timeStamping\nkeyUsage=critical,digitalSignature\n")
    openssl("x509", "-req", "-in", "tsa.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "tsa.crt", "-days", "2", "-extfile", "ext.cnf", cwd=d)
    (d / "serial").write_text("01\n")
    (d / "tsa.cnf").write_text(f"""[ tsa ]
default_tsa = tsa1
[ tsa1 ]
dir = {d}
serial = $dir/serial
crypto_device = builtin
signer_cert = $dir/tsa.crt
certs = $dir/ca.crt
signer_key = $dir/tsa.key
signer_digest = sha256
default_policy = 1.2.3.4.1
other_policies = 1.2.3.4.5
digests = sha256
accuracy = secs:1
ordering = no
tsa_name = no
ess_cert_id_chain = no
ess_cert_id_alg = sha256
""")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

        def do_POST(self) -> None:
            query = self.rfile.read(int(self.headers["Content-Length"]))
            with lock, tempfile.TemporaryDirectory() as tmp:
                (Path(tmp) / "q.tsq").write_bytes(query)
                subprocess.run(["openssl", "ts", "-reply", "-config", str(d / "tsa.cnf"), "-queryfile",
                                f"{tmp}/q.tsq", "-out", f"{tmp}/r.tsr"], check=True, capture_output=True)
                reply = (Path(tmp) / "r.tsr").read_bytes()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield SimpleNamespace(url=f"http://127.0.0.1:{server.server_address[1]}/tsr", ca=d / "ca.crt", dir=d)
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def stamped(tsa: SimpleNamespace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stamped")
    with patched_catalogue(root):
        loaded = demo_loaded()
        store, a, _b = make_two_runs(root / "home", loaded)
        return seal(store, a, root / "bundles", loaded, keys_dir=root / "keys", tsa_url=tsa.url, tsa_ca=tsa.ca)


def test_timestamped_bundle_verifies_with_estate_and_openssl_ts(stamped: Path) -> None:
    assert (stamped / "SHA256SUMS.tsr").is_file() and (stamped / "tsa-ca.pem").is_file()
    res = verify(stamped)
    assert res.ok, res.problems
    assert "SHA256SUMS.tsr: RFC 3161 timestamp verified" in res.notes
    cmd = next(line[4:] for line in (stamped / "VERIFY.txt").read_text().splitlines() if "openssl ts" in line)
    assert cmd == "openssl ts -verify -in SHA256SUMS.tsr -data SHA256SUMS -CAfile tsa-ca.pem"
    assert subprocess.run(cmd.split(), cwd=stamped, capture_output=True).returncode == 0


def test_a_changed_timestamp_fails(stamped: Path, tmp_path: Path) -> None:
    copy = tmp_path / stamped.name
    shutil.copytree(stamped, copy)
    # Flip a byte of the message imprint (the SHA-256 of SHA256SUMS the TSA signed). Not any byte: DER
    # has fields openssl does not check, and a token still valid after the flip proves the same thing.
    import hashlib

    raw = bytearray((copy / "SHA256SUMS.tsr").read_bytes())
    imprint = hashlib.sha256((copy / "SHA256SUMS").read_bytes()).digest()
    at = bytes(raw).index(imprint)
    raw[at + 5] ^= 0x01
    (copy / "SHA256SUMS.tsr").write_bytes(bytes(raw))
    res = verify(copy, follow_chain=False)
    assert res.problems == ["SHA256SUMS.tsr: the RFC 3161 timestamp does not verify against SHA256SUMS"]
    cmd = ["openssl", "ts", "-verify", "-in", "SHA256SUMS.tsr", "-data", "SHA256SUMS", "-CAfile", "tsa-ca.pem"]
    assert subprocess.run(cmd, cwd=copy, capture_output=True).returncode != 0


def test_an_unreachable_tsa_fails_the_seal_and_leaves_nothing(tmp_path: Path) -> None:
    with patched_catalogue(tmp_path):
        loaded = demo_loaded()
        store, a, _b = make_two_runs(tmp_path / "home", loaded)
        with pytest.raises(TimestampError, match="did not answer"):
            seal(store, a, tmp_path / "bundles", loaded, keys_dir=tmp_path / "keys",
                 tsa_url="http://127.0.0.1:9/tsr")
    assert list((tmp_path / "bundles").iterdir()) == []
