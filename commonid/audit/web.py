"""Reviewer web pages under /reviewer: server-rendered, no scripts, no external assets.

Sign-in takes the reviewer credential once and keeps it in an HttpOnly,
SameSite=Strict cookie, so the pages and exports are plain links and forms.
"""

from __future__ import annotations

import hashlib
import io
import json
from datetime import UTC, date, datetime, time, timedelta
from html import escape
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, FastAPI, Form, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse

from commonid.api.paths import MAX_BIGINT, AuditIndex
from commonid.audit.api import AuditAccess, _matches
from commonid.audit.events import EVENT_TYPES
from commonid.audit.export import entry_line, export_csv
from commonid.audit.figures import PocFigures, compute_figures
from commonid.audit.merkle import hash_text, verify_inclusion
from commonid.audit.report import (
    TEMPLATES,
    ReportSigning,
    body_context,
    report_html,
)
from commonid.audit.report_content import REPORT_FILE, report_content
from commonid.audit.report_signing import ReportSigningUnavailable

COOKIE = "commonid_reviewer"
PAGE_SIZE = 50
# Japanese first; ?lang=en switches (and the links carry it on).
LanguageQuery = Annotated[Literal["ja", "en"], Query()]

router = APIRouter(prefix="/reviewer", include_in_schema=False)


class NotSignedIn(Exception):
    """Raised by pages when the reviewer cookie is missing or wrong."""


def install_reviewer_pages(app: FastAPI, report_signing: ReportSigning | None = None) -> None:
    """Mount the pages (after install_audit, whose AuditAccess they use)."""
    app.state.report_signing = report_signing
    app.include_router(router)

    @app.exception_handler(NotSignedIn)
    async def _to_login(_request: Request, _error: Exception) -> Response:
        return RedirectResponse("/reviewer/login", status_code=303)

    @app.exception_handler(BadPeriod)
    async def _bad_period(_request: Request, _error: Exception) -> Response:
        return HTMLResponse(
            "<p>The period must be two dates (YYYY-MM-DD), the first before the second.</p>",
            status_code=422,
        )


def _access(request: Request) -> AuditAccess:
    access: AuditAccess = request.app.state.audit
    token = request.cookies.get(COOKIE, "")
    presented = hashlib.sha256(token.encode()).digest()
    if not token or not (
        _matches(presented, access.reviewer_token) or _matches(presented, access.admin_token)
    ):
        raise NotSignedIn
    return access


def _page(request: Request, template: str, lang: str = "ja", **context: Any) -> HTMLResponse:
    # The language switch keeps the rest of the query (the period, a search).
    other = "en" if lang == "ja" else "ja"
    switch = urlencode({**request.query_params, "lang": other})
    return HTMLResponse(
        TEMPLATES.get_template(template).render(
            signed_in=True, lang=lang, switch_query=switch, other_lang=other, **context
        )
    )


class BadPeriod(Exception):
    """A period that is not two ISO dates in order."""


def _period(start: str | None, end: str | None, now: datetime) -> tuple[date, date]:
    try:
        end_day = date.fromisoformat(end) if end else now.date() + timedelta(days=1)
        start_day = date.fromisoformat(start) if start else end_day - timedelta(days=30)
    except ValueError:
        raise BadPeriod from None
    if start_day >= end_day:
        raise BadPeriod
    return start_day, end_day


def _at_midnight(day: date) -> datetime:
    return datetime.combine(day, time(), tzinfo=UTC)


def _service(request: Request) -> str:
    signing: ReportSigning | None = request.app.state.report_signing
    return signing.service if signing else "Common-ID"


@router.get("/login", response_class=HTMLResponse)
def login_page(failed: bool = False, lang: LanguageQuery = "ja") -> HTMLResponse:
    html = TEMPLATES.get_template("login.html").render(signed_in=False, failed=failed, lang=lang)
    return HTMLResponse(html, status_code=401 if failed else 200)


@router.post("/login")
def login(request: Request, token: Annotated[str, Form(max_length=500)]) -> Response:
    access: AuditAccess = request.app.state.audit
    presented = hashlib.sha256(token.encode()).digest()
    if not (_matches(presented, access.reviewer_token) or _matches(presented, access.admin_token)):
        return login_page(failed=True)
    response = RedirectResponse("/reviewer/", status_code=303)
    response.set_cookie(COOKIE, token, httponly=True, samesite="strict", path="/reviewer")
    return response


@router.post("/logout")
def logout() -> Response:
    response = RedirectResponse("/reviewer/login", status_code=303)
    response.delete_cookie(COOKIE, path="/reviewer")
    return response


@router.get("/", response_class=HTMLResponse)
def dashboard(
    request: Request,
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
    lang: LanguageQuery = "ja",
) -> HTMLResponse:
    """The report's figures, tables and charts for a period, in Japanese or English."""
    figures = _report_figures(request, start, end)
    now = datetime.now(UTC)
    content = report_content(figures, service=_service(request), generated=now)
    return _page(request, "dashboard.html", **body_context(figures, content, lang, csv_links=True))


@router.get("/events", response_class=HTMLResponse)
def events(
    request: Request,
    event_type: Annotated[str | None, Query(alias="type", max_length=60)] = None,
    q: Annotated[str | None, Query(max_length=100)] = None,
    before: Annotated[int | None, Query(ge=0, le=MAX_BIGINT)] = None,
    lang: LanguageQuery = "ja",
) -> HTMLResponse:
    access = _access(request)
    found = list(
        access.log.entries(
            stop=before,
            event_type=event_type or None,
            contains=q or None,
            newest_first=True,
            limit=PAGE_SIZE,
        )
    )
    entries = [{"index": e.index, "event": json.loads(e.entry)} for e in found]
    older = found[-1].index if len(found) == PAGE_SIZE else None
    return _page(
        request,
        "events.html",
        lang,
        entries=entries,
        event_types=sorted(EVENT_TYPES),
        event_type=event_type,
        q=q,
        older=older,
    )


@router.get("/events/{index}", response_class=HTMLResponse)
def event_detail(index: AuditIndex, request: Request, lang: LanguageQuery = "ja") -> HTMLResponse:
    access = _access(request)
    logged = access.log.entry(index)
    if logged is None:
        return HTMLResponse("<p>No such event.</p>", status_code=404)
    checkpoint = access.log.latest_checkpoint()
    proof = None
    if checkpoint is not None and index < checkpoint.tree_size:
        path = access.log.inclusion_proof(index, checkpoint.tree_size)
        proof = {
            "tree_size": checkpoint.tree_size,
            "checkpoint": checkpoint,
            "path": [hash_text(node) for node in path],
            "root": hash_text(checkpoint.root_hash),
            "verified": verify_inclusion(
                index, checkpoint.tree_size, logged.leaf_hash, path, checkpoint.root_hash
            ),
        }
    return _page(
        request,
        "event.html",
        lang,
        e={"index": index, "entry": logged.entry, "event": json.loads(logged.entry)},
        leaf_hash=hash_text(logged.leaf_hash),
        proof=proof,
    )


def _report_figures(request: Request, start: str | None, end: str | None) -> PocFigures:
    access = _access(request)
    start_day, end_day = _period(start, end, datetime.now(UTC))
    return compute_figures(access.log, _at_midnight(start_day), _at_midnight(end_day))


@router.get("/report.html", response_class=HTMLResponse)
def report_page(
    request: Request,
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
) -> HTMLResponse:
    """The report as the PDF has it (both languages), as a page."""
    figures = _report_figures(request, start, end)
    return HTMLResponse(
        report_html(figures, service=_service(request), generated=datetime.now(UTC))
    )


@router.get("/report.pdf")
def report_pdf_download(
    request: Request,
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    figures = _report_figures(request, start, end)
    signing: ReportSigning | None = request.app.state.report_signing
    if signing is None:
        return HTMLResponse("<p>Report signing is not configured.</p>", status_code=503)
    try:
        pdf = signing.signed_report(figures, generated=datetime.now(UTC))
    except ReportSigningUnavailable as missing:
        return HTMLResponse(f"<p>{escape(str(missing))}</p>", status_code=503)
    return Response(
        pdf,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{REPORT_FILE}"'},
    )


@router.get("/tables/{key}.csv")
def table_csv(
    request: Request,
    key: Annotated[str, Path(max_length=40, pattern=r"^[a-z_]+$")],
    start: Annotated[str | None, Query(max_length=10)] = None,
    end: Annotated[str | None, Query(max_length=10)] = None,
) -> Response:
    """One of the report's tables as CSV (UTF-8 with a byte order mark, for spreadsheets)."""
    figures = _report_figures(request, start, end)
    content = report_content(figures, service=_service(request), generated=datetime.now(UTC))
    table = content.tables.get(key)
    if table is None:
        return HTMLResponse("<p>No such table.</p>", status_code=404)
    return Response(
        table.csv(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{key}.csv"'},
    )


@router.get("/export.csv")
def export_csv_download(request: Request) -> Response:
    access = _access(request)
    buffer = io.StringIO()
    export_csv(access.log, buffer)
    return Response(buffer.getvalue(), media_type="text/csv")


@router.get("/export.jsonl")
def export_jsonl_download(request: Request) -> StreamingResponse:
    access = _access(request)

    def lines():  # type: ignore[no-untyped-def]
        for logged in access.log.entries():
            yield entry_line(logged)
        for stored in access.log.checkpoints():
            yield json.dumps({"checkpoint": stored.note}, ensure_ascii=False) + "\n"

    return StreamingResponse(lines(), media_type="application/jsonl")
