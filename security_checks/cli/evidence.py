"""`estate evidence`: seal a run into a signed bundle, verify bundles, push them to the archive."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    DEFAULT_HOME,
    DEMO_ESTATE,
    EstateOpt,
    Format,
    FormatOpt,
    HomeOpt,
    emit_json,
    err,
    load_or_exit,
    open_store,
    run_or_exit,
    usage_error,
)

app = typer.Typer(
    help=("Evidence for auditors: sealed, signed bundles that standard tools can verify, archived where they "
          "cannot be changed.\n\nseal -> verify -> push. Each bundle holds the run's evidence files, its reports, "
          "SHA256SUMS, an Ed25519 signature, the public key and VERIFY.txt with the commands an auditor runs."),
    rich_markup_mode="rich", no_args_is_help=True,
)


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
    format: FormatOpt = Format.TEXT,
) -> None:
    """Seal a run: its evidence and reports, checksummed, signed and chained to the previous bundle.

    The signing key is created on first use in ESTATE_HOME/keys/ (mode 0600) and never leaves it; the
    bundle carries only the public key. A bundle is built in a temporary directory and renamed into
    place, so an interrupted seal leaves nothing behind. Bundles are never rewritten.
    """
    from ..evidence.bundle import SealError
    from ..evidence.bundle import seal as do_seal
    from ..evidence.keys import SigningKeyError
    from ..evidence.tsa import TimestampError

    if tsa_ca is not None and not tsa_ca.is_file():
        usage_error(f"--tsa-ca {tsa_ca}: no such file")
    store = open_store(home)
    info = run_or_exit(store, run, home)
    loaded = load_or_exit(estate)
    dest = out or home / "bundles"
    try:
        bundle = do_seal(store, info.id, dest, loaded, keys_dir=home / "keys", tsa_url=tsa_url, tsa_ca=tsa_ca)
    except (SealError, SigningKeyError, TimestampError) as exc:
        usage_error(str(exc))
    from ..evidence.bundle import verify

    check = verify(bundle, follow_chain=False)
    if format is Format.JSON:
        emit_json({"bundle": str(bundle), "run": info.id, "files": check.files, "verified": check.ok})
    else:
        err.print(f"sealed run [bold]{info.id}[/]: {bundle} ({check.files} files, signed)")
        err.print(f"check it:  estate evidence verify {bundle}   (or the commands in {bundle / 'VERIFY.txt'})")
    if not check.ok:
        raise typer.Exit(1)


@app.command(epilog=("Examples:\n\n  estate evidence verify      (the latest bundle in ESTATE_HOME/bundles)\n\n"
                     "  estate evidence verify .estate/bundles/20261122T050512Z-3f9a\n\n"
                     "  estate evidence verify --fingerprint 3b1f... /mnt/archive/20261122T050512Z-3f9a"))
def verify(
    bundles: list[Path] = typer.Argument(None, help="Bundle directories to check. Default: the latest bundle "
                                         "in ESTATE_HOME/bundles."),
    home: HomeOpt = DEFAULT_HOME,
    fingerprint: str | None = typer.Option(None, "--fingerprint", help="SHA-256 fingerprint of the key bundles "
                                           "must be signed with (default: any key, reported)."),
    chain: bool = typer.Option(True, "--chain/--no-chain", help="Also check the chain through earlier bundles "
                               "found beside each one."),
    format: FormatOpt = Format.TEXT,
) -> None:
    """Check bundles: every checksum, the signature, bundle.json, the timestamp and the chain.

    Any changed, missing or added file fails, naming the file. Exit 0 when every bundle verifies,
    1 when any does not, 2 when a path is not a directory.
    """
    from ..evidence.bundle import latest_bundle
    from ..evidence.bundle import verify as do_verify

    if not bundles:
        latest = latest_bundle(home / "bundles")
        if latest is None:
            usage_error(f"{home / 'bundles'}: no sealed bundles (seal one with `estate evidence seal`)")
        bundles = [latest]
    results = []
    for b in bundles:
        if not b.is_dir():
            usage_error(f"{b}: not a directory")
        results.append(do_verify(b, fingerprint, follow_chain=chain))
    if format is Format.JSON:
        emit_json([{"bundle": str(r.bundle), "run": r.run_id, "ok": r.ok, "files": r.files,
                    "problems": r.problems, "notes": r.notes, "chain": r.chain} for r in results])
    else:
        for r in results:
            if r.ok:
                err.print(f"[green]OK[/] {r.bundle}: {r.files} files, signature valid, "
                          f"chain checked through {len(r.chain)} bundle(s)")
            else:
                err.print(f"[bold red]FAILED[/] {r.bundle}:")
                for p in r.problems:
                    err.print(f"  {p}", soft_wrap=True, markup=False)
            for n in r.notes:
                err.print(f"  note: {n}", soft_wrap=True, markup=False)
    raise typer.Exit(0 if all(r.ok for r in results) else 1)


@app.command(epilog=(
    "Examples:\n\n  estate evidence push                         (to ESTATE_HOME/archive, read-only files)\n\n"
    "  estate evidence push --to /mnt/evidence-share\n\n"
    "  AWS_ACCESS_KEY_ID=... AWS_SECRET_ACCESS_KEY=... estate evidence push --bucket hdc-evidence "
    "--endpoint https://s3.example.org --retain-days 2555"))
def push(
    bundles: list[Path] = typer.Argument(None, help="Bundles to push. Default: every bundle in ESTATE_HOME/bundles."),
    to: Path | None = typer.Option(None, "--to", help="Directory archive (default ESTATE_HOME/archive)."),
    bucket: str | None = typer.Option(None, "--bucket", help="S3 bucket with Object Lock enabled."),
    endpoint: str | None = typer.Option(None, "--endpoint", help="S3 endpoint URL (default: AWS)."),
    prefix: str = typer.Option("", "--prefix", help="Key prefix inside the bucket."),
    region: str | None = typer.Option(None, "--region", help="S3 region."),
    retain_days: int = typer.Option(2555, "--retain-days", min=1, help="COMPLIANCE retention per object, in days "
                                    "(seven years by default)."),
    home: HomeOpt = DEFAULT_HOME,
    format: FormatOpt = Format.TEXT,
) -> None:
    """Archive sealed bundles: S3 with Object Lock (COMPLIANCE, per-object retain-until), or a directory.

    Each bundle is verified before it is sent. Objects are locked as they are written and the lock
    is confirmed with HeadObject. When S3 cannot be reached the bundles wait in ESTATE_HOME/spool/ and
    the next push sends them; a bundle already archived is never sent again. Credentials come from
    the usual AWS environment variables or profile and are never printed. Exit 1 if anything is left
    spooled, refused or in conflict.
    """
    from ..evidence.archive import Archive, DirectoryArchive, S3Archive
    from ..evidence.archive import push as do_push

    if bucket and to:
        usage_error("--bucket and --to: choose one archive")
    if endpoint and not bucket:
        usage_error("--endpoint needs --bucket")
    store = open_store(home)
    archive: Archive = (S3Archive(bucket, endpoint=endpoint, prefix=prefix, retain_days=retain_days, region=region)
                        if bucket else DirectoryArchive(to or home / "archive"))
    if not bundles:
        root = home / "bundles"
        found = root.iterdir() if root.is_dir() else iter(())
        bundles = sorted(p for p in found if p.is_dir() and not p.name.startswith("."))
    for b in bundles:
        if not b.is_dir():
            usage_error(f"{b}: not a directory")
    outcomes = do_push(store, archive, bundles)
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
