"""Path parameters: one annotated type per kind of identifier, used by every router.

Each admits only the shape the service issues (pattern and length, both in the
OpenAPI document, so clients and fuzzers see them). Anything else is refused by
request validation (``invalid_request``, 422) before a handler runs: a made-up
id never reaches a query, a row or the audit log, and a NUL character or an
over-long id gets the same answer on SQLite and PostgreSQL (whose VARCHAR(40)
columns and text type refused them with a database error, a 500).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path

from commonid.pairwise import SUBJECT_ID_PATTERN
from commonid.store.ids import ID_MAX_LENGTH, USER_CODE_ALPHABET, USER_CODE_LENGTH, id_pattern
from commonid.store.status_lists import LIST_ID_PATTERN

# The largest value of a signed 64-bit integer: audit indexes and tree sizes are
# BIGINT, and a larger number overflows the database driver.
MAX_BIGINT = 2**63 - 1


def _id(prefix: str, what: str) -> Any:
    return Path(
        pattern=id_pattern(prefix),
        max_length=ID_MAX_LENGTH,
        description=f"{what} id ({prefix}_...)",
    )


SessionId = Annotated[str, _id("ses", "Session")]
ProviderId = Annotated[str, _id("prv", "Provider")]
KioskId = Annotated[str, _id("ksk", "Kiosk")]
WalletCredentialId = Annotated[str, _id("wcr", "Wallet credential")]
DocumentId = Annotated[str, _id("doc", "Signed document")]
AuthorizationId = Annotated[str, _id("az", "OpenID authorization")]
# Read aloud and typed at the kiosk: the user code's alphabet, in either case.
_USER_CODE_CHARACTERS = "".join(sorted(set(USER_CODE_ALPHABET + USER_CODE_ALPHABET.lower())))
UserCode = Annotated[
    str,
    Path(
        pattern=f"^[{_USER_CODE_CHARACTERS}]{{{USER_CODE_LENGTH}}}$",
        max_length=USER_CODE_LENGTH,
        description="The session's user code",
    ),
]
SubjectId = Annotated[
    str, Path(pattern=SUBJECT_ID_PATTERN, max_length=80, description="Pairwise subject id")
]
StatusListId = Annotated[
    str, Path(pattern=LIST_ID_PATTERN, max_length=40, description="Status list id")
]
AuditIndex = Annotated[int, Path(ge=0, le=MAX_BIGINT, description="Audit entry index")]
