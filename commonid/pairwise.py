"""Pairwise subject identifiers: one per (provider, Common-ID record).

HMAC-SHA256 under the service's pairwise secret, base32: stable for a
provider, and two providers' ids for one person cannot be linked without the
secret.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

# base32 (RFC 4648, lowercase, no padding) of an HMAC-SHA256: 52 characters. The
# consents table holds up to 80; the API refuses other shapes (commonid.api.paths).
SUBJECT_ID_PATTERN = r"^[a-z2-7]{1,80}$"


def pairwise_subject_id(secret: bytes, *, provider_id: str, person_id: str) -> str:
    mac = hmac.new(secret, f"{provider_id}\x00{person_id}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac).decode().rstrip("=").lower()
