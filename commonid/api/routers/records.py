"""Provider API: the provider's verification records (確認記録), their export, and the
end of a business relationship that starts their seven-year retention."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from commonid.api.deps import CurrentProvider, Db, RuntimeDep
from commonid.api.paths import ID_MAX_LENGTH, id_pattern
from commonid.api.schemas import RelationshipEnded, RelationshipEndedRequest
from commonid.flows import records as record_flows
from commonid.problems import Problem

router = APIRouter(prefix="/v1/records", tags=["records"])
RecordId = Annotated[
    str,
    Path(pattern=id_pattern("vrc"), max_length=ID_MAX_LENGTH, description="Record id (vrc_...)"),
]
JSONL = "application/jsonl"
MAX_PERIOD_DAYS = 3700  # ten years and a bit: any retention period fits


def _period(start: date | None, end: date | None, today: date) -> tuple[datetime, datetime, str]:
    last = end or today
    first = start or last - timedelta(days=30)
    if first > last or (last - first).days > MAX_PERIOD_DAYS:
        raise Problem(
            "invalid_request", "from must not be after to, nor more than ten years before"
        )
    return (
        datetime.combine(first, time(), tzinfo=UTC),
        datetime.combine(last + timedelta(days=1), time(), tzinfo=UTC),
        f"{first.isoformat()} – {last.isoformat()}",
    )


def _signed_pdf(runtime, records, provider_name: str, period: str) -> Response:  # type: ignore[no-untyped-def]
    from commonid.audit.report_signing import OrganisationSigning, ReportSigningUnavailable
    from commonid.records.export import signed_records_pdf

    signing = OrganisationSigning(
        runtime.settings.effective_report_signing_dir,
        runtime.settings.timestamp_url,
        runtime.timestamp_roots,
    )
    try:
        pdf = signed_records_pdf(
            records,
            provider_name=provider_name,
            period=period,
            generated=runtime.clock(),
            signing=signing,
        )
    except ReportSigningUnavailable as missing:
        raise Problem("records_signing_unavailable", str(missing)) from None
    return Response(pdf, media_type="application/pdf")


@router.get(
    "",
    responses={200: {"content": {JSONL: {}, "application/pdf": {}}}},
    response_class=Response,
)
def list_records(
    provider: CurrentProvider,
    runtime: RuntimeDep,
    db: Db,
    start: Annotated[date | None, Query(alias="from", description="First day (UTC)")] = None,
    end: Annotated[date | None, Query(alias="to", description="Last day (UTC), included")] = None,
    format: Annotated[Literal["jsonl", "pdf"], Query()] = "jsonl",
) -> Response:
    """Your records verified in the period: JSON Lines (record, hash, retention), or one
    PDF signed by the operating organisation."""
    first, last, period = _period(start, end, runtime.clock().date())
    found = record_flows.provider_records(runtime.cipher, db, provider.id, first, last)
    if format == "pdf":
        return _signed_pdf(runtime, found, provider.name, period)
    from commonid.records.export import jsonl

    return Response(jsonl(found), media_type=JSONL)


@router.get("/{record_id}")
def get_record(
    record_id: RecordId, provider: CurrentProvider, runtime: RuntimeDep, db: Db
) -> dict[str, object]:
    """One record, its hash (as the audit log has it) and its retention."""
    return record_flows.provider_record(runtime.cipher, db, provider.id, record_id).to_json()


@router.get(
    "/{record_id}/pdf",
    responses={200: {"content": {"application/pdf": {}}}},
    response_class=Response,
)
def get_record_pdf(
    record_id: RecordId, provider: CurrentProvider, runtime: RuntimeDep, db: Db
) -> Response:
    """One record as a PDF signed by the operating organisation."""
    stored = record_flows.provider_record(runtime.cipher, db, provider.id, record_id)
    return _signed_pdf(runtime, [stored], provider.name, record_id)


@router.post("/relationship-ended", response_model=RelationshipEnded)
def relationship_ended(
    body: RelationshipEndedRequest, provider: CurrentProvider, runtime: RuntimeDep, db: Db
) -> RelationshipEnded:
    """Your business relationship with this customer ended: their records are kept for
    seven years from that day, then purged (and the purge is in the audit log)."""
    count, keep_until = record_flows.end_relationship(
        runtime, db, provider, body.sub, body.ended_on
    )
    return RelationshipEnded(sub=body.sub, records=count, retain_until=keep_until)
