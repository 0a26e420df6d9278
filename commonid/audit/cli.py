"""`commonid audit ...`: checkpoints, proofs, exports and offline verification."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from commonid.audit.checkpoint import CheckpointError, NoteVerifier, open_checkpoint
from commonid.audit.export import (
    database_records,
    export_checkpoint_notes,
    export_csv,
    export_jsonl,
    export_records,
)
from commonid.audit.log import AuditForkError, AuditLog
from commonid.audit.merkle import hash_text, leaf_hash, verify_consistency, verify_inclusion
from commonid.audit.service import SIGNED_STATE_FILE, checkpoint_signer, checkpoint_verifiers
from commonid.audit.settings import AuditSettings
from commonid.audit.verify import verify_log

audit_app = typer.Typer(
    name="audit",
    help="The verification log: checkpoints, proofs, export, verify.",
    no_args_is_help=True,
)

DatabaseOption = Annotated[
    str | None, typer.Option(help="Database URL (default: COMMONID_DATABASE_URL / data dir)")
]
KeyFileOption = Annotated[
    Path | None, typer.Option(help="Issuer key file (default: the service's)")
]
OriginOption = Annotated[str | None, typer.Option(help="Checkpoint origin (COMMONID_AUDIT_ORIGIN)")]


def _service_settings():  # type: ignore[no-untyped-def]
    from commonid.settings import Settings

    return Settings()


def _open_log(database_url: str | None, key_file: Path | None, origin: str | None) -> AuditLog:
    from commonid.store.database import create_engine, session_factory

    # No migration here: verify, prove and export only read, and may run with
    # read-only database access; the service migrates its schema.
    settings = _service_settings()
    url = database_url or settings.effective_database_url
    signer = None
    key_path = key_file or settings.issuer_key_file or settings.data_dir / "issuer-key.json"
    if key_path.exists():
        from did.keys import IssuerKeyring

        signer = checkpoint_signer(IssuerKeyring.load(key_path), origin or AuditSettings().origin)
    return AuditLog(
        session_factory(create_engine(url)),
        signer,
        signed_state=settings.data_dir / SIGNED_STATE_FILE,
    )


def _verifiers(keys: list[str], key_file: Path | None, origin: str) -> list[NoteVerifier]:
    if keys:
        return [NoteVerifier.parse(key) for key in keys]
    from did.keys import IssuerKeyring

    settings = _service_settings()
    key_path = key_file or settings.issuer_key_file or settings.data_dir / "issuer-key.json"
    if not key_path.exists():
        raise typer.BadParameter("give --key (signed-note verifier key) or --key-file")
    return checkpoint_verifiers(IssuerKeyring.load(key_path), origin)


@audit_app.command()
def checkpoint(
    database_url: DatabaseOption = None, key_file: KeyFileOption = None, origin: OriginOption = None
) -> None:
    """Sign a checkpoint of the log now and print it (a C2SP signed note)."""
    log = _open_log(database_url, key_file, origin)
    if log.signer is None:
        raise typer.BadParameter("no issuer key file: cannot sign")
    try:
        stored = log.checkpoint()
    except AuditForkError as fork:
        typer.echo(f"refused: audit log fork: {fork.detail}", err=True)
        raise typer.Exit(3) from fork
    typer.echo(stored.note, nl=False)


@audit_app.command()
def prove(
    index: Annotated[int | None, typer.Argument(help="Entry index (inclusion proof)")] = None,
    tree_size: Annotated[
        int | None, typer.Option(help="Tree size (default: latest checkpoint)")
    ] = None,
    from_size: Annotated[int | None, typer.Option(help="Consistency proof from this size")] = None,
    database_url: DatabaseOption = None,
    key_file: KeyFileOption = None,
    origin: OriginOption = None,
) -> None:
    """Print an inclusion proof for an entry, or a consistency proof between two sizes."""
    log = _open_log(database_url, key_file, origin)
    latest = log.latest_checkpoint()
    size = tree_size or (latest.tree_size if latest else log.size())
    tree = log.tree()
    root = tree.root(size)
    if from_size is not None:
        path = tree.consistency_proof(from_size, size)
        ok = verify_consistency(from_size, size, tree.root(from_size), root, path)
        document = {
            "first": from_size,
            "second": size,
            "first_root_hash": hash_text(tree.root(from_size)),
            "second_root_hash": hash_text(root),
            "consistency_path": [hash_text(n) for n in path],
            "verified": ok,
        }
    elif index is not None:
        logged = log.entry(index)
        if logged is None:
            raise typer.BadParameter(f"no entry {index}")
        path = tree.inclusion_proof(index, size)
        ok = verify_inclusion(index, size, leaf_hash(logged.entry.encode()), path, root)
        document = {
            "index": index,
            "tree_size": size,
            "entry": logged.entry,
            "leaf_hash": hash_text(logged.leaf_hash),
            "inclusion_path": [hash_text(n) for n in path],
            "root_hash": hash_text(root),
            "verified": ok,
        }
    else:
        raise typer.BadParameter("give an entry index, or --from-size for a consistency proof")
    typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
    if not ok:
        raise typer.Exit(1)


@audit_app.command()
def export(
    out: Annotated[Path, typer.Argument(help="Output file ('-' for standard output)")],
    csv: Annotated[bool, typer.Option("--csv", help="Events as CSV instead of JSONL")] = False,
    database_url: DatabaseOption = None,
    key_file: KeyFileOption = None,
    origin: OriginOption = None,
) -> None:
    """Write the log (JSONL: entries + signed checkpoints, verifiable offline) or CSV."""
    log = _open_log(database_url, key_file, origin)
    handle = sys.stdout if str(out) == "-" else out.open("w", encoding="utf-8", newline="")
    try:
        if csv:
            count = export_csv(log, handle)
            summary = f"{count} events"
        else:
            entries, checkpoints = export_jsonl(log, handle)
            summary = f"{entries} entries, {checkpoints} checkpoints"
    finally:
        if handle is not sys.stdout:
            handle.close()
    typer.echo(f"exported {summary}", err=True)


@audit_app.command()
def verify(
    export_file: Annotated[
        Path | None, typer.Option("--export", help="Verify this JSONL export, not the database")
    ] = None,
    key: Annotated[
        list[str], typer.Option(help="Signed-note verifier key name+id+key (repeatable)")
    ] = [],  # noqa: B006 - Typer reads the default, never mutates it
    checkpoint_file: Annotated[
        list[Path],
        typer.Option("--checkpoint", help="A checkpoint note kept by a reviewer (repeatable)"),
    ] = [],  # noqa: B006
    reference: Annotated[
        Path | None, typer.Option(help="An earlier JSONL export: pinpoints rewritten entries")
    ] = None,
    allow_no_checkpoint: Annotated[
        bool,
        typer.Option(
            "--allow-no-checkpoint",
            help="Accept a log with no signed checkpoint (entries checked against each other "
            "only); without it, no checkpoint is a failure",
        ),
    ] = False,
    database_url: DatabaseOption = None,
    key_file: KeyFileOption = None,
    origin: OriginOption = None,
) -> None:
    """Check a whole log against signed checkpoints; exit 1 if anything is wrong.

    A log with no signed checkpoint fails (finding ``no_checkpoint``) unless
    ``--allow-no-checkpoint`` is given.
    """
    origin = origin or AuditSettings().origin
    verifiers = _verifiers(key, key_file, origin)
    if export_file is not None:
        if not export_file.is_file():
            raise typer.BadParameter(f"{export_file} is not a file")
        records = export_records(export_file)
        notes = export_checkpoint_notes(export_file)
        typer.echo(f"source: export {export_file}")
    else:
        log = _open_log(database_url, key_file, origin)
        records = database_records(log)
        notes = [stored.note for stored in log.checkpoints()]
        typer.echo("source: database")
    notes += [path.read_text(encoding="utf-8") for path in checkpoint_file]
    reference_hashes = None
    if reference is not None:
        reference_hashes = [leaf_hash(r.entry.encode()) for r in export_records(reference)]
        # The reference's own checkpoints must verify too, or it proves nothing.
        for note in export_checkpoint_notes(reference):
            try:
                open_checkpoint(note, verifiers)
            except CheckpointError as error:
                typer.echo(f"reference {reference}: {error}", err=True)
                raise typer.Exit(2) from error
    typer.echo("keys: " + ", ".join(v.verifier_key() for v in verifiers))
    report = verify_log(
        records,
        notes,
        verifiers,
        origin=origin,
        reference_leaf_hashes=reference_hashes,
        allow_no_checkpoint=allow_no_checkpoint,
    )
    for line in report.lines():
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


@audit_app.command()
def report(
    out_dir: Annotated[Path, typer.Argument(help="Directory for the report's files")],
    start: Annotated[str, typer.Option(help="First day, YYYY-MM-DD (UTC)")],
    end: Annotated[str, typer.Option(help="Day after the last, YYYY-MM-DD (UTC)")],
    unsigned: Annotated[
        bool, typer.Option("--unsigned", help="Write report.html and an unsigned PDF only")
    ] = False,
    database_url: DatabaseOption = None,
    key_file: KeyFileOption = None,
    origin: OriginOption = None,
) -> None:
    """The PoC results report for a period: report.html, the signed PDF, and a CSV per table.

    The PDF is signed with the organisation's report signing material
    (COMMONID_REPORT_SIGNING_DIR, default <data dir>/report-signing) and
    timestamped when COMMONID_TIMESTAMP_URL is set.
    """
    from datetime import UTC, date, datetime, time

    from commonid.audit.figures import compute_figures
    from commonid.audit.report import ReportSigning, render_pdf, report_html
    from commonid.audit.report_content import REPORT_FILE, report_content
    from commonid.audit.report_signing import ReportSigningUnavailable
    from did.keys import IssuerKeyring

    settings = _service_settings()
    try:
        period = [
            datetime.combine(date.fromisoformat(day), time(), tzinfo=UTC) for day in (start, end)
        ]
    except ValueError:
        raise typer.BadParameter("--start and --end are dates, YYYY-MM-DD") from None
    if period[0] >= period[1]:
        raise typer.BadParameter("--start must be before --end")
    log = _open_log(database_url, key_file, origin)
    key_path = key_file or settings.issuer_key_file or settings.data_dir / "issuer-key.json"
    service = settings.service_did or IssuerKeyring.load(key_path).current.did
    typer.echo(f"counting the log's events from {start} to {end}...", err=True)
    figures = compute_figures(log, period[0], period[1])
    generated = datetime.now(UTC)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.html").write_text(
        report_html(figures, service=service, generated=generated), encoding="utf-8"
    )
    tables = report_content(figures, service=service, generated=generated).tables
    for key, table in tables.items():
        (out_dir / f"{key}.csv").write_text(table.csv(), encoding="utf-8")
    typer.echo("rendering the PDF...", err=True)
    if unsigned:
        pdf = render_pdf(report_html(figures, service=service, generated=generated))
        signed_by = "unsigned"
    else:
        signing = ReportSigning.from_settings(settings, service)
        try:
            pdf = signing.signed_report(figures, generated=generated)
        except ReportSigningUnavailable as missing:
            typer.echo(f"not signed: {missing}", err=True)
            raise typer.Exit(2) from None
        signed_by = f"signed by the certificates in {signing.directory}" + (
            ", timestamped" if settings.timestamp_url else " (no timestamp authority: B-B)"
        )
    (out_dir / REPORT_FILE).write_bytes(pdf)
    checkpoint = figures.checkpoint.tree_size if figures.checkpoint else 0
    typer.echo(
        f"report for {start}..{end}: {figures.verifications} sessions, {figures.visits} kiosk "
        f"visits, from the checkpoint of size {checkpoint}; {out_dir / REPORT_FILE} {signed_by}; "
        f"{len(tables)} tables as CSV"
    )


report_signer_app = typer.Typer(
    name="report-signer",
    help="The organisation's report signing material.",
    no_args_is_help=True,
)
audit_app.add_typer(report_signer_app)


@report_signer_app.command("init")
def report_signer_init(
    directory: Annotated[
        Path | None, typer.Option(help="Where (default: COMMONID_REPORT_SIGNING_DIR)")
    ] = None,
    organisation: Annotated[str, typer.Option(help="Organisation name")] = (
        "Common-ID demo organisation"
    ),
    force: Annotated[bool, typer.Option("--force", help="Replace existing material")] = False,
) -> None:
    """Make a TEST organisation CA and a report signer under it (demo and tests only:
    in production the organisation's CA issues the signer's certificate)."""
    from commonid.audit.report_signing import KEY_FILE, ROOT_FILE, create_test_organisation

    target = directory or _service_settings().effective_report_signing_dir
    if (target / KEY_FILE).exists() and not force:
        typer.echo(f"{target} already holds a report signer (--force replaces it)")
        raise typer.Exit(1)
    signer = create_test_organisation(target, organisation=organisation)
    typer.echo(f"test report signer: {signer.describe()}")
    typer.echo(f"reviewers trust: {target / ROOT_FILE}")


@report_signer_app.command("show")
def report_signer_show(
    directory: Annotated[
        Path | None, typer.Option(help="Where (default: COMMONID_REPORT_SIGNING_DIR)")
    ] = None,
) -> None:
    """Who signs the reports, under which root, until when."""
    from commonid.audit.report_signing import ReportSigner, ReportSigningUnavailable

    target = directory or _service_settings().effective_report_signing_dir
    try:
        signer = ReportSigner.load(target)
    except ReportSigningUnavailable as missing:
        typer.echo(str(missing), err=True)
        raise typer.Exit(2) from None
    typer.echo(f"signer: {signer.describe()}")
    typer.echo(f"root: {signer.root.subject.rfc4514_string()}")
    typer.echo(f"CRLs: {len(signer.crls)}")
