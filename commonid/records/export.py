"""A provider's verification records as JSON Lines and as a signed PDF.

The PDF is laid out by WeasyPrint from ``templates/records.html`` (Japanese with
English beside it) and signed like the PoC report, by the operating
organisation's report signer (commonid.audit.report_signing: PAdES, B-T with a
timestamp authority, validation data embedded). It names the people verified:
it goes only to the provider the records belong to.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

from commonid.audit.report import render_pdf
from commonid.audit.report_signing import OrganisationSigning
from commonid.flows.records import StoredRecord
from commonid.records.methods import reference

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


def jsonl(records: list[StoredRecord]) -> str:
    """One JSON object per line: the record, its hash (as in the audit log), its retention."""
    return "".join(json.dumps(r.to_json(), ensure_ascii=False) + "\n" for r in records)


def records_html(
    records: list[StoredRecord], *, provider_name: str, period: str, generated: datetime
) -> str:
    shown = []
    for stored in records:
        verification = stored.content.get("verification") or {}
        method = verification.get("method")
        shown.append(
            {
                "stored": stored,
                "record": stored.content,
                "verification": verification,
                "method": reference(method["code"], method["rules"]) if method else None,
            }
        )
    return _TEMPLATES.get_template("records.html").render(
        records=shown,
        provider_name=provider_name,
        period=period,
        generated=generated.isoformat(timespec="seconds"),
    )


def signed_records_pdf(
    records: list[StoredRecord],
    *,
    provider_name: str,
    period: str,
    generated: datetime,
    signing: OrganisationSigning,
) -> bytes:
    """Raises ReportSigningUnavailable (saying what is missing) when there is no signer."""
    html = records_html(records, provider_name=provider_name, period=period, generated=generated)
    return signing.sign(render_pdf(html), reason="Common-ID verification records / 確認記録")
