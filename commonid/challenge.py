"""The to-be-signed bytes of a card challenge.

A fixed, versioned prefix (domain separation: these bytes can never be taken
for another protocol's message), a newline, then RFC 8785 canonical JSON of
what the signature binds: audience, session, provider, mode, nonce, expiry.
The service recomputes these bytes from its own session record and never
trusts a copy sent back by the kiosk.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import rfc8785

CHALLENGE_PREFIX = b"commonid/v1/card-challenge\n"


def rfc3339(moment: datetime) -> str:
    """UTC, whole seconds, ``Z`` suffix: one spelling for every instant on the wire."""
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Challenge:
    aud: str  # the service's DID
    session_id: str
    provider_id: str
    mode: str
    nonce: str  # 32 random bytes, base64url
    exp: str  # RFC 3339

    def payload(self) -> dict[str, str]:
        return asdict(self)

    def to_be_signed(self) -> bytes:
        return CHALLENGE_PREFIX + rfc8785.dumps(self.payload())


def challenge_for(
    *, audience: str, session_id: str, provider_id: str, mode: str, nonce: str, expires_at: datetime
) -> Challenge:
    return Challenge(
        aud=audience,
        session_id=session_id,
        provider_id=provider_id,
        mode=mode,
        nonce=nonce,
        exp=rfc3339(expires_at),
    )
