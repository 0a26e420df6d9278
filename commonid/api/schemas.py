"""Request and response bodies of the HTTP API (separate from the storage models)."""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from commonid.pairwise import SUBJECT_ID_PATTERN
from commonid.problems import PROBLEM_TYPES

# Base64 of an RSA-2048 certificate is under 3 kB; leave room, refuse the absurd.
MAX_BASE64_FIELD = 16_384
# A VC-JWT this service issues is a few kB.
MAX_CREDENTIAL_CHARS = 32_768


class Mode(StrEnum):
    IDENTITY = "identity"  # sign certificate: the four basic attributes
    AUTH = "auth"  # authentication certificate only (PIN)


class ClaimName(StrEnum):
    NAME = "name"
    BIRTHDATE = "birthdate"
    GENDER = "gender"
    ADDRESS = "address"
    DID = "did"
    CREDENTIAL = "credential"


class DocumentKind(StrEnum):
    CONSENT = "consent"  # the consent document, signed with the card's signature key


ATTRIBUTE_CLAIMS = frozenset(
    {ClaimName.NAME, ClaimName.BIRTHDATE, ClaimName.GENDER, ClaimName.ADDRESS}
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CreateSessionRequest(Strict):
    mode: Mode
    claims: list[ClaimName] = Field(default_factory=list, max_length=6)
    purpose: str = Field(min_length=1, max_length=500, description="Shown to the person")
    reuse: bool = Field(False, description="Accept claims verified earlier (auth mode)")
    document: DocumentKind | None = Field(
        None, description="Have the person sign this document with the card (identity mode)"
    )
    reference: str | None = Field(
        None,
        pattern=r"^[A-Za-z0-9._:-]{1,100}$",
        description="Your own opaque reference for the customer or transaction, kept in "
        "the verification record (no personal data: letters, digits and ._:- only)",
        examples=["cust-000123"],
    )


class RelationshipEndedRequest(Strict):
    sub: str = Field(pattern=SUBJECT_ID_PATTERN, max_length=80, description="Pairwise subject id")
    ended_on: date = Field(
        description="The day the business relationship ended (YYYY-MM-DD)",
        json_schema_extra={"pattern": r"^\d{4}-\d{2}-\d{2}$", "maxLength": 10},
    )


class RelationshipEnded(BaseModel):
    sub: str
    records: int
    retain_until: datetime


class ChallengeView(BaseModel):
    to_be_signed: str = Field(description="base64url of the exact bytes the card signs")
    payload: dict[str, str] = Field(description="The JCS-encoded part, for display")


class SessionCreated(BaseModel):
    id: str
    user_code: str
    status: str
    mode: Mode
    claims: list[ClaimName]
    purpose: str
    reuse: bool
    document: DocumentKind | None = None
    expires_at: datetime
    challenge: ChallengeView


class ReuseInfo(BaseModel):
    first_verified_at: datetime
    method: str


class DocumentRequestView(BaseModel):
    kind: DocumentKind
    # pending (identity not verified yet), awaiting_signature, signed,
    # not_signed (the session ended without one, or the time to sign passed)
    status: str
    sign_by: datetime | None = Field(None, description="While awaiting_signature")


class SignedDocumentView(BaseModel):
    id: str
    kind: DocumentKind
    media_type: str = "application/pdf"
    sha256: str
    size: int
    signed_at: datetime
    # False: the PDF is withheld (its certificate discloses more than was consented);
    # `verification` is then the service's signed statement on it (compact JWS, EdDSA).
    released: bool = True
    verification: str | None = None


class SessionResult(BaseModel):
    id: str
    status: str
    mode: Mode
    claims: list[ClaimName]
    expires_at: datetime
    completed_at: datetime | None = None
    reason_code: str | None = None
    sub: str | None = None
    verified_claims: dict[str, Any] | None = None
    did: str | None = None
    credential: Any | None = None
    reuse: ReuseInfo | None = None
    document: DocumentRequestView | None = None
    documents: list[SignedDocumentView] = Field(default_factory=list)


class ProviderView(BaseModel):
    id: str
    name: str


class KioskSessionView(BaseModel):
    id: str
    user_code: str
    status: str
    provider: ProviderView
    mode: Mode
    claims: list[ClaimName]
    purpose: str
    reuse: bool
    document: DocumentKind | None = None
    expires_at: datetime
    challenge: ChallengeView


class ConsentRequest(Strict):
    approved: bool = True
    # None: everything the provider asked for.
    claims: list[ClaimName] | None = Field(None, max_length=6)


_VISIT_MS = 86_400_000.0  # a day: no visit lasts longer
_VISIT_COUNT = 100


class KioskVisit(Strict):
    """What the kiosk saw of one visit: times and counts, nothing that identifies anyone."""

    outcome: str = Field(pattern=r"^[a-z][a-z0-9_]{0,59}$", examples=["verified", "cancelled"])
    duration_ms: float = Field(ge=0, le=_VISIT_MS)
    card_ms: float = Field(0, ge=0, le=_VISIT_MS)
    service_ms: float = Field(0, ge=0, le=_VISIT_MS)
    pin_wrong: int = Field(0, ge=0, le=_VISIT_COUNT)
    password_wrong: int = Field(0, ge=0, le=_VISIT_COUNT)
    last_try_confirmed: int = Field(0, ge=0, le=_VISIT_COUNT)
    card_blocked: int = Field(0, ge=0, le=_VISIT_COUNT)
    card_removed: int = Field(0, ge=0, le=_VISIT_COUNT)


class KioskVisitRecorded(BaseModel):
    session_id: str
    kiosk_id: str


class ConsentRecorded(BaseModel):
    session_id: str
    status: str
    claims: list[ClaimName]


class CardConsent(Strict):
    """The person's consent, sent with the card response instead of on its own."""

    # None: everything the provider asked for.
    claims: list[ClaimName] | None = Field(None, max_length=6)


class CardResponse(Strict):
    """What the kiosk agent sends: certificates and signatures, base64. Never a PIN.

    ``consent``: the kiosk may send the consent the person gave on its screen with
    the card response, in one request, instead of posting it to ``/consent`` first
    (the session must then still be pending). A decline still goes to ``/consent``."""

    auth_certificate: str = Field(max_length=MAX_BASE64_FIELD)
    auth_signature: str = Field(max_length=MAX_BASE64_FIELD)
    sign_certificate: str | None = Field(None, max_length=MAX_BASE64_FIELD)
    sign_signature: str | None = Field(None, max_length=MAX_BASE64_FIELD)
    consent: CardConsent | None = None


class CardResponseOutcome(BaseModel):
    session_id: str
    status: str
    reason_code: str | None = None


class ConsentView(BaseModel):
    session_id: str
    claims: list[str]
    granted_at: datetime


class AttributeVersion(BaseModel):
    """The attributes as one of your verification records has them."""

    record_id: str
    kind: str
    recorded_at: datetime
    verified_at: str | None
    attributes: dict[str, Any]


class IdentityView(BaseModel):
    sub: str
    consents: list[ConsentView]
    verified_claims: dict[str, Any] | None = None
    # reverification_required: the signature certificate behind the attributes was
    # revoked (the reason says why); they are no longer released until verified again.
    status: Literal["verified", "reverification_required"] = "verified"
    reverification_reason: str | None = None
    # Your records' versions of the attributes, newest first (docs/compliance.md).
    history: list[AttributeVersion] = Field(default_factory=list)
    # With consent to "did": the service's signed statements that a renewed card's DID
    # follows the earlier ones (JWTs; did.links.verify_did_link with the service's DID
    # document checks them).
    did_links: list[str] = Field(default_factory=list)


class DocumentContent(BaseModel):
    """What the document says, for the kiosk to show (the PDF's text)."""

    provider_name: str
    purpose: str
    claims: list[ClaimName]
    created_at: datetime


class KioskDocument(BaseModel):
    document_id: str
    session_id: str
    kind: DocumentKind
    media_type: str = "application/pdf"
    sha256: str
    size: int
    pdf: str = Field(description="base64 of the exact PDF to sign")
    content: DocumentContent
    timestamp_url: str | None = Field(None, description="Sign PAdES B-T with this TSA")


class DocumentAccepted(BaseModel):
    session_id: str
    document_id: str
    sha256: str
    size: int
    signed_at: datetime


class DocumentDeclined(BaseModel):
    session_id: str
    document_id: str
    declined_at: datetime


class CredentialVerifyRequest(Strict):
    # A VC-JWT (text) or a JSON-LD credential (object); the body limit bounds the object.
    credential: Annotated[str, Field(max_length=MAX_CREDENTIAL_CHARS)] | dict[str, Any]
    # For an SD-JWT VC presented with a key binding JWT: what it must be bound to.
    nonce: str | None = Field(None, min_length=1, max_length=200)
    audience: str | None = Field(None, min_length=1, max_length=500)


class CredentialVerifyResult(BaseModel):
    valid: bool
    reason: str
    subject_did: str | None = None
    verified_claims: dict[str, Any] | None = None
    format: Literal["ldp_vc", "jwt_vc", "dc+sd-jwt"] | None = None
    # SD-JWT VC: the claims in clear and those disclosed; wallet | card; whether a key
    # binding JWT was checked against the nonce and audience given.
    disclosed_claims: dict[str, Any] | None = None
    holder_binding: str | None = None
    key_binding_checked: bool | None = None


class ProviderCreate(Strict):
    name: str = Field(min_length=1, max_length=200)
    allowed_claims: list[ClaimName] = Field(default_factory=list, max_length=6)
    # At most ten years: a reuse policy longer than a card's life means nothing, and the
    # value must fit the column (a 64-bit integer) on both databases.
    reuse_max_age_seconds: int = Field(90 * 86400, ge=0, le=10 * 366 * 86400)
    webhook_url: str | None = Field(None, max_length=2000, pattern=r"^https?://")


class ProviderOut(BaseModel):
    id: str
    name: str
    allowed_claims: list[str]
    reuse_max_age_seconds: int
    webhook_url: str | None
    disabled: bool
    created_at: datetime


class ProviderCreated(BaseModel):
    provider: ProviderOut
    api_key: str = Field(description="Shown once; the service keeps only its hash")
    webhook_secret: str | None = None


class KioskCreate(Strict):
    name: str = Field(min_length=1, max_length=200)


class KioskOut(BaseModel):
    id: str
    name: str
    disabled: bool
    created_at: datetime


class KioskCreated(BaseModel):
    kiosk: KioskOut
    credential: str = Field(description="Shown once; the service keeps only its hash")


class NewApiKey(BaseModel):
    api_key: str


class ProblemDocument(BaseModel):
    """Every error: RFC 9457 problem details (``application/problem+json``) with a stable
    ``code``; docs/service.md lists each code with its HTTP status."""

    model_config = ConfigDict(extra="allow")  # e.g. `errors` on invalid_request

    type: str = Field(examples=["https://commonid.example/problems/session_not_found"])
    title: str
    status: int
    detail: str | None = None
    code: str = Field(json_schema_extra={"enum": sorted(PROBLEM_TYPES)})


def problem_responses() -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for every operation: 4XX and 5XX are problem documents.

    A "4XX" entry also replaces FastAPI's generated 422 schema, which is not the
    shape this API answers with.
    """
    reference = {"schema": {"$ref": "#/components/schemas/ProblemDocument"}}
    return {
        status: {
            "model": ProblemDocument,
            "description": description,
            "content": {"application/problem+json": reference},
        }
        for status, description in (
            ("4XX", "Refused: a problem document with a stable code"),
            ("5XX", "Service fault or dependency down: a problem document"),
        )
    }


# --- wallet credentials (docs/wallet.md) ------------------------------------------


class DcqlClaimQuery(Strict):
    """One claim of a DCQL credential query: a path of claim names, optionally the
    values accepted (e.g. ``{"path": ["age_equal_or_over", "20"], "values": [true]}``)."""

    id: str | None = Field(None, pattern=r"^[A-Za-z0-9_-]{1,40}$")
    path: list[Annotated[str, Field(min_length=1, max_length=40)]] = Field(
        min_length=1, max_length=4
    )
    values: list[Annotated[str, Field(max_length=200)] | int | bool] | None = Field(
        None, min_length=1, max_length=10
    )


class DcqlMeta(Strict):
    vct_values: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        min_length=1, max_length=5
    )


class DcqlCredentialQuery(Strict):
    id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,40}$")
    format: Literal["dc+sd-jwt"]
    meta: DcqlMeta
    claims: list[DcqlClaimQuery] = Field(min_length=1, max_length=10)


class DcqlQuery(Strict):
    """A Digital Credentials Query Language query (OpenID4VP 1.0 section 6); this
    verifier takes credential queries with claim paths, not credential or claim sets."""

    credentials: list[DcqlCredentialQuery] = Field(min_length=1, max_length=3)


class PresentationRequestCreate(Strict):
    dcql_query: DcqlQuery


class PresentationRequestView(BaseModel):
    id: str
    status: str
    request_uri: str
    client_id: str
    authorization_request: str  # openid4vp://?client_id=...&request_uri=...
    qr_svg: str  # the authorization request as a QR code, for a wallet on a phone
    expires_at: datetime


class PresentationResult(BaseModel):
    id: str
    status: str  # pending | verified | refused | expired
    reason_code: str | None = None
    created_at: datetime
    expires_at: datetime
    answered_at: datetime | None = None
    # Per DCQL credential query id: vct, issuer, the claims the query named, the
    # verification evidence, holder_binding (wallet | card), key_binding, status.
    credentials: dict[str, Any] = Field(default_factory=dict)


class CredentialOfferView(BaseModel):
    offer_id: str
    offer_uri: str  # openid-credential-offer://?credential_offer=...
    credential_offer: dict[str, Any]
    qr_svg: str
    tx_code: str  # show it to the person apart from the QR code
    expires_at: datetime


class WalletCredentialStatusView(BaseModel):
    credential_id: str
    status: str  # valid | suspended | revoked
