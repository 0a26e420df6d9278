"""`commonid records export`: a provider's verification records from the service's
database, as JSON Lines or a PDF signed by the operating organisation."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Annotated, Literal

import typer

records_app = typer.Typer(
    help="Verification records (確認記録) kept for providers.", no_args_is_help=True
)


@records_app.command()
def export(
    provider: Annotated[str, typer.Option(help="The provider's name or id")],
    out: Annotated[Path, typer.Option(help="Where to write (a .jsonl or .pdf file)")],
    start: Annotated[str, typer.Option("--from", help="First day, YYYY-MM-DD (UTC)")],
    end: Annotated[str, typer.Option("--to", help="Last day, YYYY-MM-DD (UTC), included")],
    format: Annotated[
        Literal["jsonl", "pdf"], typer.Option(help="JSON Lines, or a signed PDF")
    ] = "jsonl",
    record: Annotated[
        str | None, typer.Option(help="Only this record (vrc_...), whatever its date")
    ] = None,
) -> None:
    """Write the provider's records of the period (or one record)."""
    from commonid.cli import _cipher, _store
    from commonid.flows.records import provider_record, provider_records
    from commonid.problems import Problem
    from commonid.records.export import jsonl, signed_records_pdf
    from commonid.store import accounts

    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError:
        raise typer.BadParameter("--from and --to are dates, YYYY-MM-DD") from None
    if first > last:
        raise typer.BadParameter("--from must not be after --to")
    with _store() as (db, settings):
        found = accounts.provider_by_name_or_id(db, provider)
        if found is None:
            typer.echo(f"no provider {provider!r}", err=True)
            raise typer.Exit(1)
        cipher = _cipher(settings)
        if record is not None:
            try:
                chosen = [provider_record(cipher, db, found.id, record)]
            except Problem:
                typer.echo(f"no record {record} of {found.name}", err=True)
                raise typer.Exit(1) from None
            period = record
        else:
            chosen = provider_records(
                cipher,
                db,
                found.id,
                datetime.combine(first, time(), tzinfo=UTC),
                datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC),
            )
            period = f"{first.isoformat()} – {last.isoformat()}"
        provider_name = found.name
    if format == "jsonl":
        out.write_text(jsonl(chosen), encoding="utf-8")
    else:
        from commonid.audit.report_signing import OrganisationSigning, ReportSigningUnavailable

        try:
            pdf = signed_records_pdf(
                chosen,
                provider_name=provider_name,
                period=period,
                generated=datetime.now(UTC),
                signing=OrganisationSigning.from_settings(settings),
            )
        except ReportSigningUnavailable as missing:
            typer.echo(f"not signed: {missing}", err=True)
            raise typer.Exit(2) from None
        out.write_bytes(pdf)
    typer.echo(f"{len(chosen)} records of {provider_name} ({period}) written to {out}")
