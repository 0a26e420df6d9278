"""The one place that calls didkit: a synchronous face over its async, JSON-string API.

didkit 0.3.3's async functions grab the *running* event loop when called, so they
cannot be called from plain synchronous code, and `asyncio.run` would fail inside
an already running loop (a FastAPI handler). A private loop on a daemon thread
runs every call, so callers in either world use the same blocking functions.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import didkit

T = TypeVar("T")

DIDKitError = didkit.DIDKitException

_loop: asyncio.AbstractEventLoop | None = None
_loop_lock = threading.Lock()


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop
    with _loop_lock:
        if _loop is None:
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="didkit-loop", daemon=True)
            thread.start()
            _loop = loop
        return _loop


def _stop_background_loop() -> None:
    """At exit: stop the loop and wait for its thread, so no didkit callback is running
    Python code while the interpreter finalizes (see did.process for the rest)."""
    with _loop_lock:
        loop = _loop
    if loop is None or loop.is_closed():
        return
    loop.call_soon_threadsafe(loop.stop)
    for thread in threading.enumerate():
        if thread.name == "didkit-loop":
            thread.join(timeout=5)


atexit.register(_stop_background_loop)


def _run(call: Callable[[], Awaitable[T]]) -> T:
    async def inside_loop() -> T:
        # didkit's coroutine must be created while the loop runs, i.e. here.
        return await call()

    return asyncio.run_coroutine_threadsafe(inside_loop(), _background_loop()).result()


@dataclass(frozen=True)
class VerificationReport:
    """didkit's verification result: which checks ran and the errors found."""

    checks: tuple[str, ...]
    errors: tuple[str, ...]
    warnings: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return not self.errors and bool(self.checks)


def _report(raw: str) -> VerificationReport:
    parsed = json.loads(raw)
    return VerificationReport(
        checks=tuple(parsed.get("checks", ())),
        errors=tuple(parsed.get("errors", ())),
        warnings=tuple(parsed.get("warnings", ())),
    )


def generate_ed25519_jwk() -> str:
    """A new Ed25519 private key as a JWK JSON string."""
    return didkit.generate_ed25519_key()


def key_to_did_key(jwk: str) -> str:
    return didkit.key_to_did("key", jwk)


def key_to_verification_method(jwk: str) -> str:
    return _run(lambda: didkit.key_to_verification_method("key", jwk))


def resolve_did(did: str) -> dict[str, Any]:
    """The DID document of ``did`` (did:key resolves locally, without network)."""
    raw = _run(lambda: didkit.resolve_did(did, "{}"))
    parsed = json.loads(raw)
    # didkit returns either the bare document or a resolution result wrapper.
    if "didDocument" in parsed:
        if parsed.get("didDocument") is None:
            raise DIDKitError(f"cannot resolve {did}: {parsed.get('didResolutionMetadata')}")
        return parsed["didDocument"]
    return parsed


def issue_credential(credential: dict[str, Any], options: dict[str, Any], jwk: str) -> str:
    """Sign ``credential``; a JSON-LD credential (JSON text) or a compact JWT."""
    return _run(lambda: didkit.issue_credential(json.dumps(credential), json.dumps(options), jwk))


def verify_credential(credential: str, options: dict[str, Any]) -> VerificationReport:
    return _report(_run(lambda: didkit.verify_credential(credential, json.dumps(options))))
