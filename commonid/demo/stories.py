"""Provider stories started from the demo terminal: no second terminal needed.

A key creates a session as a demo provider's back end would (with the
provider SDK, over HTTP), prints the user code to type at the kiosk, and
prints the provider's result when the session ends, from a background thread
so that the terminal keeps taking keys meanwhile.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from commonid.client import CommonIdError, ProviderClient, SessionResult
from commonid.demo.world import DemoWorld

# Long enough for a person at the kiosk; the session's own expiry ends it sooner.
_RESULT_TIMEOUT = 900.0


@dataclass(frozen=True)
class Story:
    key: str
    provider: str
    mode: str
    reuse: bool
    claims: tuple[str, ...]
    purpose: str
    hint: str


STORIES = (
    Story(
        "a",
        "Demo Pay A",
        "identity",
        False,
        ("name", "birthdate", "address"),
        "デモ: 口座開設時の本人確認",
        "identity verification: PIN and signature password (card 1)",
    ),
    Story(
        "b",
        "Demo Pay B",
        "auth",
        True,
        ("name", "birthdate", "address"),
        "デモ: 本人確認結果の再利用",
        "reuse of Demo Pay A's verification: the PIN only (card 2)",
    ),
)


def story(key: str) -> Story | None:
    return next((s for s in STORIES if s.key == key), None)


def start_story(
    world: DemoWorld, chosen: Story, say: Callable[[str], None], stopping: threading.Event
) -> None:
    """Create the session now; report its end from a daemon thread."""
    client = ProviderClient(world.service_url, world.provider_keys[chosen.provider])
    try:
        created = client.create_session(
            mode=chosen.mode,
            claims=list(chosen.claims),
            purpose=chosen.purpose,
            reuse=chosen.reuse,
        )
    except (CommonIdError, OSError) as error:
        client.close()
        say(f"{chosen.provider}: the session was not created: {error}")
        return
    say(
        f"{chosen.provider}: {chosen.hint}. "
        f"User code {created.user_code}: type it at the kiosk ({world.kiosk_url})."
    )

    def report() -> None:
        try:
            result = client.wait_for_result(created.id, timeout=_RESULT_TIMEOUT)
        except Exception as error:  # the service stopping with the demo ends this quietly
            if not stopping.is_set():
                say(f"{chosen.provider}: no result for {created.user_code}: {error}")
            return
        finally:
            client.close()
        if not stopping.is_set():
            say(describe_result(chosen.provider, created.user_code, result))

    threading.Thread(target=report, name=f"story-{chosen.key}", daemon=True).start()


def describe_result(provider: str, user_code: str, result: SessionResult) -> str:
    """One line, as the provider's back end sees it (the demo persons are fictional)."""
    parts = [f"{provider}: session {user_code} ended: {result.status}"]
    if result.reason_code:
        parts.append(f"reason {result.reason_code}")
    if result.sub:
        parts.append(f"subject {result.sub}")
    if result.reuse:
        parts.append(f"claims first verified {result.reuse.get('first_verified_at')}")
    claims = (result.verified_claims or {}).get("claims", {})
    shown = [f"{name}={_plain(claims[name])}" for name in _SHOWN_CLAIMS if name in claims]
    if shown:
        parts.append(", ".join(shown))
    return "; ".join(parts)


_SHOWN_CLAIMS = ("name", "birthdate", "gender", "address")


def _plain(value: object) -> object:
    # OpenID Connect puts the address in an object: {"formatted": ...}
    return value.get("formatted", value) if isinstance(value, dict) else value
