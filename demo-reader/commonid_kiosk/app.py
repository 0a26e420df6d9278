"""The kiosk agent: a FastAPI app on 127.0.0.1 that owns the reader and serves the kiosk page.

The page talks only to this agent; the agent talks to the card (jpki, PC/SC)
and to the Common-ID service (kiosk credential). PIN and password requests
are read by hand rather than through a pydantic model: FastAPI's validation
errors echo the submitted input, and a PIN must never be echoed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
from fastapi import Depends, FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles

from commonid_kiosk.card_session import CardSession
from commonid_kiosk.events import EventBroadcaster
from commonid_kiosk.flow import KeyBindingRequest, KioskFlow, Step, StepRefused
from commonid_kiosk.reader_choice import STAFF, ReaderChoice, initial_choice, remember
from commonid_kiosk.reader_monitor import ReaderMonitor, ReaderSnapshot
from commonid_kiosk.secret_entry import SecretEntry
from commonid_kiosk.service_client import KioskService
from commonid_kiosk.settings import KioskSettings
from did.sd_jwt import SdJwtError, disclosed_claim_paths, split

STATIC_DIR = Path(__file__).parent / "static"
MAX_JSON_BODY = 4096
# A wallet's presentation (SD-JWT with its disclosures) for the card to bind.
MAX_PRESENTATION_BODY = 64 * 1024
# The agent clears a session the page has left behind a little after the page would.
_BACKSTOP_SECONDS = 5.0
_IDLE_CHECK_SECONDS = 0.5
_NO_STORE = {"Cache-Control": "no-store"}


LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "[::1]"})


class _BadRequest(Exception):
    pass


class _Forbidden(Exception):
    pass


class _ReaderRefused(Exception):
    def __init__(self, code: str, detail: str, status: int) -> None:
        super().__init__(detail)
        self.code = code
        self.status = status


def only_the_kiosk_page(request: Request) -> None:
    """Refuse requests another web site makes the kiosk's browser send.

    Any page open in a browser on this machine can send requests to
    127.0.0.1: a foreign site must not be able to enter PINs (and burn the
    card's tries). The Host must be a loopback name (no DNS rebinding), a
    state-changing request must come from the agent's own origin, and it must
    be JSON, which a cross-site form or ``no-cors`` fetch cannot send.
    """
    host = request.headers.get("host", "")
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    if hostname not in LOOPBACK_HOSTS:
        raise _Forbidden("unexpected Host")
    if request.method in ("GET", "HEAD"):
        return
    origin = request.headers.get("origin")
    if origin is not None and origin != f"http://{host}":
        raise _Forbidden("cross-origin request")
    if request.headers.get("sec-fetch-site", "same-origin") not in ("same-origin", "none"):
        raise _Forbidden("cross-site request")
    if not request.headers.get("content-type", "").startswith("application/json"):
        raise _Forbidden("requests to the agent are JSON")


async def _json_body(request: Request, limit: int = MAX_JSON_BODY) -> dict[str, Any]:
    raw = await request.body()
    if len(raw) > limit:
        raise _BadRequest("body too large")
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise _BadRequest("body is not JSON") from None
    if not isinstance(body, dict):
        raise _BadRequest("body must be a JSON object")
    return body


def _text_field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise _BadRequest(f"{name} must be a string")  # the value itself is never quoted
    return value


def create_app(
    settings: KioskSettings | None = None,
    *,
    service_transport: httpx.BaseTransport | None = None,
    open_card: Callable[[], CardSession] | None = None,
) -> FastAPI:
    """The agent as an ASGI app (``service_transport``: tests record what reaches the service)."""
    settings = settings or KioskSettings()
    credential = settings.credential.get_secret_value() if settings.credential else ""
    client = KioskService(
        settings.service_url,
        credential,
        timeout=settings.service_timeout_seconds,
        transport=service_transport,
    )
    monitor = ReaderMonitor(initial_choice(settings.reader, settings.reader_choice_file))
    events = EventBroadcaster()

    def open_selected_card() -> CardSession:
        return CardSession.open(monitor.snapshot.reader_for_card)

    flow = KioskFlow(
        client,
        open_card or open_selected_card,
        inactivity_timeout=settings.inactivity_timeout_seconds + _BACKSTOP_SECONDS,
    )

    def on_reader_change(snapshot: ReaderSnapshot) -> None:
        events.publish("reader", snapshot.to_json())
        if not snapshot.card_present:
            # Not on the monitor thread: a card step may hold the flow for a moment.
            threading.Thread(target=_card_gone, daemon=True).start()

    def _card_gone() -> None:
        before = flow.step
        view = flow.card_removed()
        if view["step"] != before:
            events.publish("flow", view)

    async def watch_idle() -> None:
        while True:
            await asyncio.sleep(_IDLE_CHECK_SECONDS)
            if await run_in_threadpool(flow.expire_if_idle):
                events.publish("flow", flow.view())

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        events.bind(asyncio.get_running_loop())
        monitor.add_listener(on_reader_change)
        await run_in_threadpool(monitor.start)
        idle = asyncio.create_task(watch_idle())
        try:
            yield
        finally:
            idle.cancel()
            monitor.stop()
            await run_in_threadpool(flow.close)
            client.close()

    app = FastAPI(
        title="Common-ID kiosk agent",
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        dependencies=[Depends(only_the_kiosk_page)],
    )
    app.state.flow = flow
    app.state.monitor = monitor
    app.state.settings = settings

    @app.exception_handler(_BadRequest)
    async def _bad_request(_request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": "bad_request", "detail": str(error)}, status_code=400)

    @app.exception_handler(_Forbidden)
    async def _forbidden(_request: Request, error: Exception) -> JSONResponse:
        return JSONResponse({"error": "forbidden", "detail": str(error)}, status_code=403)

    @app.exception_handler(_ReaderRefused)
    async def _reader_refused(_request: Request, error: _ReaderRefused) -> JSONResponse:
        return JSONResponse(
            {"error": error.code, "detail": str(error), "readers": monitor.snapshot.to_json()},
            status_code=error.status,
        )

    @app.exception_handler(StepRefused)
    async def _refused(_request: Request, error: Exception) -> JSONResponse:
        return JSONResponse(
            {"error": "step_refused", "detail": str(error), "state": flow.view()},
            status_code=409,
        )

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/", include_in_schema=False)
    def kiosk_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=_NO_STORE)

    @app.get("/api/config")
    def config() -> dict[str, Any]:
        return {
            "inactivity_timeout_seconds": settings.inactivity_timeout_seconds,
            "reader": settings.reader,
        }

    @app.get("/api/readers")
    def readers() -> dict[str, Any]:
        return monitor.snapshot.to_json()

    @app.post("/api/reader")
    async def choose_reader(request: Request) -> JSONResponse:
        """Staff choose the reader this kiosk uses; remembered across restarts."""
        name = _text_field(await _json_body(request), "name")
        if name not in {r.name for r in monitor.snapshot.readers}:
            raise _ReaderRefused("unknown_reader", "no reader of that name is connected", 404)
        # Never between a person's steps: the card they put down is in the old reader.
        if flow.step is not Step.START:
            raise _ReaderRefused(
                "reader_busy", "the reader can be changed only on the start screen", 409
            )
        if settings.reader_choice_file is not None:
            await run_in_threadpool(remember, settings.reader_choice_file, name)
        snapshot = monitor.choose(ReaderChoice(name, STAFF))
        return JSONResponse(snapshot.to_json(), headers=_NO_STORE)

    @app.get("/api/state")
    def state() -> JSONResponse:
        return JSONResponse(flow.view(), headers=_NO_STORE)

    @app.get("/api/events")
    async def event_stream() -> StreamingResponse:
        first = [("reader", monitor.snapshot.to_json()), ("flow", flow.view())]
        return StreamingResponse(
            events.stream(first),
            media_type="text/event-stream",
            headers={**_NO_STORE, "X-Accel-Buffering": "no"},
        )

    async def _step(action: Callable[[], dict[str, Any]]) -> JSONResponse:
        view = await run_in_threadpool(action)
        return JSONResponse(view, headers=_NO_STORE)

    @app.post("/api/activity")
    async def activity() -> JSONResponse:
        return await _step(flow.touch)

    @app.post("/api/session/lookup")
    async def look_up(request: Request) -> JSONResponse:
        user_code = _text_field(await _json_body(request), "user_code")
        return await _step(lambda: flow.look_up(user_code))

    @app.post("/api/session/consent")
    async def consent(request: Request) -> JSONResponse:
        approved = (await _json_body(request)).get("approved")
        if not isinstance(approved, bool):
            raise _BadRequest("approved must be true or false")
        return await _step(lambda: flow.consent(approved=approved))

    @app.post("/api/session/card")
    async def check_card() -> JSONResponse:
        return await _step(flow.check_card)

    async def _secret_step(request: Request, field: str) -> tuple[SecretEntry, str, bool]:
        body = await _json_body(request)
        try:
            entry_id = _text_field(body, "entry_id")
            confirm = body.get("confirm_last_try", False) is True
            entry = SecretEntry(_text_field(body, field))
        finally:
            body.clear()
        return entry, entry_id, confirm

    @app.post("/api/session/pin")
    async def enter_pin(request: Request) -> JSONResponse:
        entry, entry_id, confirm = await _secret_step(request, "pin")
        return await _step(
            lambda: flow.enter_pin(entry, entry_id=entry_id, confirm_last_try=confirm)
        )

    @app.post("/api/session/password")
    async def enter_password(request: Request) -> JSONResponse:
        entry, entry_id, confirm = await _secret_step(request, "password")
        return await _step(
            lambda: flow.enter_password(entry, entry_id=entry_id, confirm_last_try=confirm)
        )

    @app.post("/api/session/document")
    async def sign_document(request: Request) -> JSONResponse:
        entry, entry_id, confirm = await _secret_step(request, "password")
        return await _step(
            lambda: flow.sign_document(entry, entry_id=entry_id, confirm_last_try=confirm)
        )

    @app.post("/api/wallet/key-binding")
    async def key_binding(request: Request) -> JSONResponse:
        """A wallet on this machine asks for a card-bound presentation's key binding JWT:
        ``{"presented": "<sd-jwt>~...~", "audience": ..., "nonce": ...}``. The page shows
        the verifier and the claims and asks for the PIN; the answer comes when the card
        has signed (``key_binding_jwt``), or the person cancelled (409)."""
        body = await _json_body(request, MAX_PRESENTATION_BODY)
        presented = _text_field(body, "presented")
        audience, nonce = _text_field(body, "audience"), _text_field(body, "nonce")
        if not (0 < len(audience) <= 500 and 0 < len(nonce) <= 200):
            raise _BadRequest("audience and nonce must be short, non-empty strings")
        try:
            claims = disclosed_claim_paths(presented)
        except (SdJwtError, ValueError) as error:
            raise _BadRequest("presented is not an SD-JWT presentation") from error
        if split(presented).key_binding_jwt is not None:
            raise _BadRequest("presented already has a key binding JWT")
        pending = KeyBindingRequest(presented, audience, nonce, claims)
        # The page did not ask for this: tell it (it shows the PIN screen).
        events.publish("flow", await run_in_threadpool(flow.begin_key_binding, pending))
        # The person has until the screen's inactivity timeout (which settles it too).
        done = await run_in_threadpool(pending.done.wait, flow.inactivity_timeout + 30)
        if not done:
            pending.settle(refusal="timed_out")
        if pending.key_binding_jwt is None:
            return JSONResponse(
                {"error": "key_binding_refused", "detail": pending.refusal or "cancelled"},
                status_code=409,
                headers=_NO_STORE,
            )
        return JSONResponse({"key_binding_jwt": pending.key_binding_jwt}, headers=_NO_STORE)

    @app.post("/api/session/document/decline")
    async def decline_document() -> JSONResponse:
        return await _step(flow.decline_document)

    @app.post("/api/session/cancel")
    async def cancel() -> JSONResponse:
        return await _step(flow.cancel)

    return app
