"""`estate evidence`: seal a run into a signed bundle, verify bundles, push them to the archive, audit it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    Format,
    FormatOpt,
    HomeOpt,
    WaitOpt,
    emit_json,
    err,
    load_or_exit,
    open_store,
    run_or_exit,
    show,
    usage_error,
    writing,
)

if TYPE_CHECKING:
    from ..evidence.trust import Trust

app = typer.Typer(
    help=("Evidence for auditors: sealed, signed bundles that standard tools can verify, archived where they "
          "cannot be changed.\n\nseal -> verify -> push. Each bundle holds the run's evidence files, its reports, "
          "SHA256SUMS, an Ed25519 signature, the public key and VERIFY.txt with the commands an auditor runs."),
    rich_markup_mode="rich", no_args_is_help=True,
)



TrustedKeysOpt = Annotated[list[Path], typer.Option(
    "--trusted-keys", help="The trusted-keys file the security group publishes (repeatable). Default: "
    "$ESTATE_TRUSTED_KEYS, else ESTATE_HOME/trusted-keys.txt if it exists. The home's own keys are always trusted.")]
TrustFingerprintOpt = Annotated[list[str], typer.Option(
    "--trust-fingerprint", "--fingerprint", help="Also trust this key (SHA-256 fingerprint), once you have confirmed "
    "with the security group that it is theirs (repeatable).")]


def _trust(home: Path, trusted_keys: list[Path], trust_fingerprint: list[str]) -> Trust:
    """The keys trusted for this command (verify and push judge signers alike); a bad file exits 2."""
    import os

    from ..evidence.trust import ENV, TrustFileError
    from ..evidence.trust import load as load_trust

    try:
        return load_trust(home, trusted_keys, trust_fingerprint, env_file=os.environ.get(ENV))
    except TrustFileError as exc:
        usage_error(str(exc))

@app.command(epilog=("Examples:\n\n  estate evidence seal\n\n  estate evidence seal --run 20261122T0505\n\n"
                     "  estate evidence seal --tsa-url https://tsa.example.org/tsr --tsa-ca tsa-ca.pem"))
def seal(
    run: str | None = typer.Option(None, "--run", help="Run id (a unique prefix will do). Default: the latest."),
    out: Path | None = typer.Option(None, "--out", help="Bundles directory. Default: ESTATE_HOME/bundles."),
    estate: EstateOpt = DEMO_ESTATE,
    home: HomeOpt = DEFAULT_HOME,
    tsa_url: str | None = typer.Option(None, "--tsa-url", help="RFC 3161 timestamp authority to stamp SHA256SUMS."),
    tsa_ca: Path | None = typer.Option(None, "--tsa-ca", help="The TSA's CA certificate (PEM), put in the bundle "
                                       "so `openssl ts -verify` can check the stamp."),
    wait: WaitOpt = 0.0,
    format: FormatOpt = Format.TEXT,
) -> None:
    """Seal a run: its evidence and reports, checksummed, signed and chained to the previous bundle.

    The signing key is created on first use in ESTATE_HOME/keys/ (mode 0600) and never leaves it; the
    bundle carries only the public key. A bundle is built in a temporary directory and renamed into
    place, so an interrupted seal leaves nothing behind. Bundles are never rewritten, and are private
    (files 0600, directories 0700). One seal at a time per home (so the chain never forks): another
    waits up to --wait seconds, else exits 75.
    """
    from ..evidence.bundle import SealError
    from ..evidence.bundle import seal as do_seal
    from ..evidence.keys import SigningKeyError
    from ..evidence.tsa import TimestampError

    if tsa_ca is not None and not tsa_ca.is_file():
        usage_error(f"--tsa-ca {tsa_ca}: no such file")
    with writing(home, "estate evidence seal", wait):
        store = open_store(home)
        info = run_or_exit(store, run, home)
        loaded = load_or_exit(estate, policy=False)   # the run's estate: overlaps are its findings
        dest = out or home / "bundles"
        try:
            bundle = do_seal(store, info.id, dest, loaded, keys_dir=home / "keys", tsa_url=tsa_url, tsa_ca=tsa_ca)
        except (SealError, SigningKeyError, TimestampError) as exc:
            usage_error(str(exc))
        evidence = store.evidence_files(info.id)
    from ..evidence.bundle import check_sealed

    # What was written, checked without hashing the evidence a third time (see check_sealed).
    check = check_sealed(bundle, evidence)
    if format is Format.JSON:
        emit_json({"bundle": str(bundle), "run": info.id, "files": check.files, "verified": check.ok})
    else:
        show.print(f"sealed run [bold]{info.id}[/]: {bundle} ({check.files} files, signed)")
        show.print(f"check it:  estate evidence verify {bundle}   (or the commands in {bundle / 'VERIFY.txt'})")
    if not check.ok:
        raise typer.Exit(1)


@app.command(epilog=("Examples:\n\n  estate evidence verify      (the latest bundle in ESTATE_HOME/bundles)\n\n"
                     "  estate evidence verify --strict --trusted-keys trusted-keys.txt /mnt/archive/bundles\n\n"
                     "  estate evidence verify --trust-fingerprint 3b1f... /mnt/archive/20261122T050512Z-3f9a\n\n"
                     "A trusted-keys file (estate-trusted-keys/1) lists one key a line: its SHA-256 fingerprint "
                     "(64 hex digits, as `openssl pkey -pubin -in signing-key.pub.pem -outform DER | sha256sum` "
                     "prints it), then free text saying whose key it is; # starts a comment."))
def verify(
    bundles: list[Path] = typer.Argument(None, help="Bundle directories to check (a directory of bundles checks "
                                         "its newest). Default: the latest bundle in ESTATE_HOME/bundles."),
    home: HomeOpt = DEFAULT_HOME,
    trusted_keys: TrustedKeysOpt = [],  # noqa: B006 (typer reads the default; never mutated)
    trust_fingerprint: TrustFingerprintOpt = [],  # noqa: B006
    strict: bool = typer.Option(False, "--strict", help="For auditors: nothing excused. The whole chain from "
                                "bundle 1 must be there with no gap, the newest bundle in the directory is checked "
                                "too, legacy bundles and unchecked timestamps fail."),
    chain: bool = typer.Option(True, "--chain/--no-chain", help="Also check the chain through earlier bundles "
                               "found beside each one, and every bundle in the same directory for forks and gaps."),
    allow_partial_chain: bool = typer.Option(False, "--allow-partial-chain", help="You were given only some of "
                                             "the bundles: a previous bundle that is not beside one, or a gap in "
                                             "the sequence numbers, is a note instead of a problem."),
    format: FormatOpt = Format.TEXT,
) -> None:
    """Check bundles: every checksum, the signature, the signer's key, bundle.json, the timestamp and the chain.

    Any changed, missing or added file fails, naming the file. The signer's key fingerprint is
    always printed and must be one the council trusts: this home's own key (or one it retired by
    `estate evidence rotate-key`), a key in the trusted-keys file, a key named with
    --trust-fingerprint, or a key announced by a key-rotation bundle in the chain that a trusted key
    signed. A bundle re-signed with any other key fails. The chain is checked back from each
    bundle, and across every bundle in its directory: a bundle that names a previous bundle which
    is not there, a gap in the sequence numbers, or a fork (two bundles naming the same previous
    bundle) fails. Exit 0 when every bundle verifies, 1 when any does not, 2 on bad usage (a path
    that is not a directory, an unreadable trusted-keys file).
    """
    from ..evidence.bundle import META, latest_bundle
    from ..evidence.bundle import verify as do_verify

    if strict and (allow_partial_chain or not chain):
        usage_error("--strict checks the whole chain: it cannot be combined with --allow-partial-chain or --no-chain")
    trust = _trust(home, trusted_keys, trust_fingerprint)
    if not bundles:
        latest = latest_bundle(home / "bundles")
        if latest is None:
            usage_error(f"{home / 'bundles'}: no sealed bundles (seal one with `estate evidence seal`)")
        bundles = [latest]
    results = []
    for b in bundles:
        if not b.is_dir():
            usage_error(f"{b}: not a directory")
        if not (b / META).is_file():   # a directory of bundles: its newest
            newest = latest_bundle(b)
            if newest is None:
                usage_error(f"{b}: neither a sealed bundle nor a directory of them")
            b = newest
        results.append(do_verify(b, trust, follow_chain=chain, allow_partial_chain=allow_partial_chain,
                                 strict=strict))
    if format is Format.JSON:
        emit_json([{"bundle": str(r.bundle), "run": r.run_id, "kind": r.kind, "seq": r.seq, "ok": r.ok,
                    "files": r.files, "signer": {"fingerprint": r.signer,
                                                 "trusted": r.keys[0]["trusted"] if r.keys else None},
                    "keys": r.keys, "problems": r.problems, "notes": r.notes, "chain": r.chain,
                    "directory": {"bundles": r.bundles_beside, "forks": r.forks, "gaps": r.gaps,
                                  "missing_previous": r.missing_previous} if chain else None}
                   for r in results])
    else:
        for r in results:
            if r.ok:
                err.print(f"[green]OK[/] {r.bundle}: {r.files} files, signature valid, "
                          f"chain checked through {len(r.chain)} bundle(s)"
                          + (f"; {r.bundles_beside} bundle(s) in its directory" if chain else "")
                          + (": no fork, no gap" if chain and not (r.forks or r.gaps or r.missing_previous) else ""),
                          soft_wrap=True)
            else:
                err.print(f"[bold red]FAILED[/] {r.bundle}:")
                for p in r.problems:
                    err.print(f"  {p}", soft_wrap=True, markup=False)
            for k in r.keys:
                why = k["trusted"] or "NOT TRUSTED"
                err.print(f"  key {k['bundle']}: {k['fingerprint'] or 'unknown (no valid signature)'}: {why}"
                          + (f"; announces {k['announces']}" if k["announces"] else ""), soft_wrap=True,
                          markup=False)
            if r.forks or r.gaps or r.missing_previous:
                err.print(f"  chain across {r.bundle.parent}: {len(r.forks)} fork(s), {len(r.gaps)} gap(s), "
                          f"{len(r.missing_previous)} missing previous bundle(s)", soft_wrap=True, markup=False)
            for n in r.notes:
                err.print(f"  note: {n}", soft_wrap=True, markup=False)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@app.command("rotate-key", epilog=("Examples:\n\n  estate evidence rotate-key\n\n"
                                   "  estate evidence rotate-key --out /srv/evidence/bundles --format json"))
def rotate_key(
    out: Path | None = typer.Option(None, "--out", help="Bundles directory (the chain the announcement joins). "
                                    "Default: ESTATE_HOME/bundles."),
    home: HomeOpt = DEFAULT_HOME,
    wait: WaitOpt = 0.0,
    format: FormatOpt = Format.TEXT,
) -> None:
    """Replace the evidence signing key, announcing the new key in a bundle signed by the old one.

    The announcement is a bundle of its own in the chain ("kind": "key-rotation", with
    announced-key.pub.pem), so an auditor who trusts the old key trusts the new one through it, and
    a bundle signed by the old key after it fails verify. The old private key is then replaced
    (only its public half stays, in ESTATE_HOME/keys/retired/). Publish the new fingerprint in the
    trusted-keys file too. One writer per home: another waits up to --wait seconds, else exits 75.
    """
    from ..evidence.bundle import SealError
    from ..evidence.bundle import rotate_key as do_rotate
    from ..evidence.keys import SigningKeyError

    if not (home / "keys" / "signing-key.pem").is_file():
        usage_error(f"{home / 'keys' / 'signing-key.pem'}: no signing key to rotate yet (the first "
                    "`estate evidence seal` creates it)")
    with writing(home, "estate evidence rotate-key", wait):
        try:
            bundle, old, new = do_rotate(out or home / "bundles", home / "keys", home)
        except (SealError, SigningKeyError) as exc:
            usage_error(str(exc))
    if format is Format.JSON:
        emit_json({"bundle": str(bundle), "retired_fingerprint": old, "new_fingerprint": new})
    else:
        err.print(f"announced new key {new}", soft_wrap=True)
        err.print(f"  in {bundle}, signed by the retired key {old}", soft_wrap=True)
        err.print("publish the new fingerprint in the security group's trusted-keys file", soft_wrap=True)


@app.command(epilog=(
    "Examples:\n\n  estate evidence push                         (to ESTATE_HOME/archive, read-only files)\n\n"
    "  estate evidence push --to /mnt/evidence-share\n\n"
    "  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... estate evidence push --bucket hdc-evidence "
    "--endpoint https://s3.example.org --retain-days 2555\n\n"
    "  estate evidence push --azure-account sthdcevidenceproduks --retain-days 2555   (managed identity)"))
def push(
    bundles: list[Path] = typer.Argument(None, help="Bundles to push. Default: every bundle in ESTATE_HOME/bundles."),
    to: Path | None = typer.Option(None, "--to", help="Directory archive (default ESTATE_HOME/archive)."),
    bucket: str | None = typer.Option(None, "--bucket", help="S3 bucket with Object Lock enabled."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="S3 endpoint URL (default: AWS)."),
    prefix: str = typer.Option("", "--prefix", help="Key prefix inside the bucket (or the Azure container)."),
    region: str | None = typer.Option(None, "--region", help="S3 region."),
    azure_account: str | None = typer.Option(None, "--azure-account", help="Azure storage account (the Pulumi "
                                             "stack output evidenceStorageAccount): blobs with locked version-level "
                                             "immutability policies."),
    container: str = typer.Option("evidence", "--container", help="Blob container in the Azure account (the Pulumi "
                                  "program creates `evidence`)."),
    azure_endpoint: str | None = typer.Option(None, "--azure-endpoint", help="Blob endpoint URL, for a private "
                                              "endpoint or another cloud (default https://ACCOUNT.blob.core."
                                              "windows.net)."),
    retain_days: int = typer.Option(2555, "--retain-days", min=1, help="Retention per object, in days (seven years "
                                    "by default): S3 COMPLIANCE retain-until, Azure locked immutability expiry."),
    trusted_keys: TrustedKeysOpt = [],  # noqa: B006 (typer reads the default; never mutated)
    trust_fingerprint: TrustFingerprintOpt = [],  # noqa: B006
    home: HomeOpt = DEFAULT_HOME,
    wait: WaitOpt = 0.0,
    format: FormatOpt = Format.TEXT,
) -> None:
    """Archive sealed bundles: S3 with Object Lock, Azure Blob with locked immutability policies, or a directory.

    Each bundle is verified before it is sent, its signer judged as `estate evidence verify` judges it:
    a bundle signed by a key the council does not trust (not this home's, not in the trusted-keys file,
    not named with --trust-fingerprint) is refused, so a forged bundle never gets a seven-year lock.
    Objects are locked as they are written, and each lock is read back (GetObjectRetention and
    HeadObject): the date recorded is the one the server reports. An object already in the bucket is
    accepted only if its content is the same and it is COMPLIANCE-locked; a shorter lock is lengthened,
    never shortened; GOVERNANCE or no lock is a conflict. When S3 cannot be reached the bundles wait in
    ESTATE_HOME/spool/ and the next push sends them; a bundle already archived is never sent again.
    Credentials come from the usual AWS environment variables or profile and are never printed.

    Azure (--azure-account): each blob is written once (If-None-Match: *) with its own immutability
    policy, mode Locked, expiring --retain-days from now; then read back, its content hashed and its
    policy as the account reports it recorded. A blob already there counts only if identical and
    locked (a shorter lock is lengthened); unlocked or no policy is a conflict. Credentials:
    AZURE_STORAGE_CONNECTION_STRING (for the same account), else AZURE_STORAGE_KEY, else managed
    identity (DefaultAzureCredential); never from a file, never printed.

    Exit 1 if anything is left spooled, refused or in conflict; 75 if another command is writing to
    the home and --wait ran out.
    """
    from ..evidence.archive import Archive
    from ..evidence.archive import push as do_push

    for b in bundles or []:
        if not b.is_dir():
            usage_error(f"{b}: not a directory")
    trust = _trust(home, trusted_keys, trust_fingerprint)
    with writing(home, "estate evidence push", wait):
        store = open_store(home)
        archive: Archive = _archive(home, to, bucket, endpoint, prefix, region, azure_account, container,
                                    azure_endpoint, retain_days)
        if not bundles:
            root = home / "bundles"
            found = root.iterdir() if root.is_dir() else iter(())
            bundles = sorted(p for p in found if p.is_dir() and not p.name.startswith("."))
        outcomes = do_push(store, archive, bundles, trust)
    if format is Format.JSON:
        emit_json({"destination": archive.destination, "bundles": [o.__dict__ for o in outcomes]})
    else:
        colour = {"pushed": "green", "already": "dim", "spooled": "yellow", "refused": "red", "conflict": "red"}
        for o in outcomes:
            err.print(f"  [{colour[o.state]}]{o.state:>8}[/] {o.bundle}: {o.detail}", soft_wrap=True)
        if not outcomes:
            err.print("nothing to push")
        err.print(f"archive: {archive.destination}")
    raise typer.Exit(1 if any(o.state in ("spooled", "refused", "conflict") for o in outcomes) else 0)


@app.command("audit-archive", epilog=(
    "Examples:\n\n  estate evidence audit-archive                  (ESTATE_HOME/archive)\n\n"
    "  estate evidence audit-archive --to /mnt/evidence-share\n\n"
    "  estate evidence audit-archive --bucket hdc-evidence --endpoint https://s3.example.org --format json"))
def audit_archive(
    to: Path | None = typer.Option(None, "--to", help="Directory archive (default ESTATE_HOME/archive)."),
    bucket: str | None = typer.Option(None, "--bucket", help="S3 bucket the bundles were pushed to."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="S3 endpoint URL (default: AWS)."),
    prefix: str = typer.Option("", "--prefix", help="Key prefix inside the bucket, as given to push."),
    region: str | None = typer.Option(None, "--region", help="S3 region."),
    azure_account: str | None = typer.Option(None, "--azure-account", help="Azure storage account (the Pulumi "
                                             "stack output evidenceStorageAccount): blobs with locked version-level "
                                             "immutability policies."),
    container: str = typer.Option("evidence", "--container", help="Blob container in the Azure account (the Pulumi "
                                  "program creates `evidence`)."),
    azure_endpoint: str | None = typer.Option(None, "--azure-endpoint", help="Blob endpoint URL, for a private "
                                              "endpoint or another cloud (default https://ACCOUNT.blob.core."
                                              "windows.net)."),
    home: HomeOpt = DEFAULT_HOME,
    format: FormatOpt = Format.TEXT,
) -> None:
    """Read every archived object again: is it there, still locked as recorded, and unchanged?

    For S3: each recorded object version's lock (mode and retain-until, from GetObjectRetention and
    HeadObject) and its content (read and hashed); a lock shorter than recorded, no lock, a missing
    object, changed content, or another version or a delete marker over it is a problem. For a
    directory archive: each file's SHA-256 and that it is still read-only. For Azure: each recorded
    blob version's immutability policy (mode and expiry, as the account reports them) and its
    content. Records when each object was checked. Exit 0 when all is well, 1 on any problem (or the
    archive cannot be reached), 2 on bad usage or when nothing was ever pushed to that archive from
    this home.
    """
    from ..evidence.archive import Archive, ArchiveUnreachable, audit_archive

    store = open_store(home)
    archive: Archive = _archive(home, to, bucket, endpoint, prefix, region, azure_account, container, azure_endpoint,
                                2555)
    from ..store.pushes import push_count

    if not push_count(store, archive.destination):
        usage_error(f"nothing was pushed to {archive.destination} from {home}: check --bucket, --endpoint and "
                    "--prefix (or --azure-account, --container, or --to) are those given to `estate evidence push`")
    try:
        report = audit_archive(store, archive)
    except ArchiveUnreachable as exc:
        if format is Format.JSON:
            emit_json({"destination": archive.destination, "ok": False, "unreachable": str(exc)})
        err.print(f"[bold red]unreachable:[/] {archive.destination}: {exc}", soft_wrap=True)
        raise typer.Exit(1) from None
    if format is Format.JSON:
        emit_json({"destination": report.destination, "ok": report.ok, "checked": report.checked,
                   "problems": [p.__dict__ for p in report.problems], "unaudited_bundles": report.unaudited})
    else:
        for p in report.problems:
            err.print(f"  [red]PROBLEM[/] {p.key}: {p.problem}", soft_wrap=True)
        for b in report.unaudited:
            err.print(f"  [red]UNCHECKED[/] {b}: recorded as pushed before objects were recorded one by one; "
                      "run `estate evidence push` to read it back", soft_wrap=True)
        verdict = "[green]OK[/]" if report.ok else "[bold red]PROBLEMS[/]"
        err.print(f"{verdict} {report.destination}: {report.checked} object(s) checked, "
                  f"{len({(p.key) for p in report.problems})} with problems", soft_wrap=True)
    raise typer.Exit(0 if report.ok else 1)


def _archive(home: Path, to: Path | None, bucket: str | None, endpoint: str | None, prefix: str, region: str | None,
             azure_account: str | None, container: str, azure_endpoint: str | None, retain_days: int) -> Any:
    """The one archive the options name (one line and exit 2 when they name none or several)."""
    from ..evidence.archive import DirectoryArchive, S3Archive

    chosen = [name for name, given in (("--to", to), ("--bucket", bucket), ("--azure-account", azure_account))
              if given]
    if len(chosen) > 1:
        usage_error(f"{' and '.join(chosen)}: choose one archive")
    if endpoint and not bucket:
        usage_error("--endpoint needs --bucket")
    if azure_endpoint and not azure_account:
        usage_error("--azure-endpoint needs --azure-account")
    if container != "evidence" and not azure_account:
        usage_error("--container needs --azure-account")
    if azure_account:
        from ..evidence.azure import AzureArchive, AzureSetupError

        try:
            return AzureArchive(azure_account, container=container, prefix=prefix, retain_days=retain_days,
                                endpoint=azure_endpoint)
        except AzureSetupError as exc:
            usage_error(str(exc))
    if bucket:
        return S3Archive(bucket, endpoint=endpoint, prefix=prefix, retain_days=retain_days, region=region)
    return DirectoryArchive(to or home / "archive", home)
