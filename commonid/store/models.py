"""Storage models (SQLAlchemy 2). API schemas live in commonid.api.schemas.

No column holds a personal attribute, a raw certificate (unless the operator
enables it), a PIN or an API key in clear: attributes are AES-GCM ciphertexts,
credentials are SHA-256 hashes.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timestamps are UTC inside; SQLite forgets the zone, so put it back on read."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use UTC-aware datetimes")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


NAMING = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = sa.MetaData(naming_convention=NAMING)
    type_annotation_map: ClassVar[dict[Any, Any]] = {
        datetime: UTCDateTime(),
        dict[str, Any]: sa.JSON,
        list[str]: sa.JSON,
    }


class Provider(Base):
    __tablename__ = "providers"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    api_key_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    allowed_claims: Mapped[list[str]]
    reuse_max_age_seconds: Mapped[int]
    webhook_url: Mapped[str | None] = mapped_column(sa.String(2000))
    webhook_secret_encrypted: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    webhook_secret_key_id: Mapped[str | None] = mapped_column(sa.String(40))
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class Kiosk(Base):
    __tablename__ = "kiosks"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(200), unique=True)
    credential_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    disabled: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class Person(Base):
    """A Common-ID record: one person, possibly over several cards."""

    __tablename__ = "persons"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    created_at: Mapped[datetime]
    identity_verified_at: Mapped[datetime | None]
    identity_method: Mapped[str | None] = mapped_column(sa.String(60))
    # The sign certificate the attributes were last verified with.
    sign_certificate_id: Mapped[str | None] = mapped_column(sa.String(40))
    # Keyed hash of the 基本4情報 as verified: finds the record again when the
    # person comes back with a new card (new keys, new DID), without storing them.
    basic_info_hash: Mapped[str | None] = mapped_column(sa.String(64), index=True)
    # Set when the signature certificate behind the verified attributes was revoked
    # (card_renewed, attributes_changed, card_lost, certificate_revoked); cleared by the
    # next identity verification. Reuse is refused meanwhile.
    reverification_reason: Mapped[str | None] = mapped_column(sa.String(60))


class Certificate(Base):
    __tablename__ = "certificates"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    person_id: Mapped[str] = mapped_column(sa.ForeignKey("persons.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(sa.String(10))  # "auth" | "sign"
    serial: Mapped[str] = mapped_column(sa.String(80))  # hex
    issuer: Mapped[str] = mapped_column(sa.String(500))  # RFC 4514
    fingerprint_sha256: Mapped[str] = mapped_column(sa.String(64), unique=True)
    not_after: Mapped[datetime]
    raw_der: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    first_seen_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class BoundDid(Base):
    __tablename__ = "dids"

    did: Mapped[str] = mapped_column(sa.String(1000), primary_key=True)
    person_id: Mapped[str] = mapped_column(
        sa.ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    auth_certificate_id: Mapped[str] = mapped_column(sa.ForeignKey("certificates.id"))
    bound_at: Mapped[datetime]
    # A renewed card's DID: the service's signed statement that it follows the person's
    # earlier DIDs (did.links), or None for a person's first card.
    link_statement: Mapped[str | None] = mapped_column(sa.Text)


class Attribute(Base):
    """One personal attribute, AES-GCM encrypted; the AAD binds person and name."""

    __tablename__ = "attributes"
    __table_args__ = (sa.UniqueConstraint("person_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(sa.ForeignKey("persons.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(sa.String(60))
    key_id: Mapped[str] = mapped_column(sa.String(40))
    ciphertext: Mapped[bytes] = mapped_column(sa.LargeBinary)  # nonce || ciphertext || tag
    verified_at: Mapped[datetime]
    source_certificate_id: Mapped[str] = mapped_column(sa.ForeignKey("certificates.id"))


class Session(Base):
    __tablename__ = "sessions"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(sa.ForeignKey("providers.id"), index=True)
    mode: Mapped[str] = mapped_column(sa.String(10))
    claims: Mapped[list[str]]
    purpose: Mapped[str] = mapped_column(sa.String(500))
    reuse: Mapped[bool]
    user_code: Mapped[str] = mapped_column(sa.String(16), unique=True)
    nonce: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime] = mapped_column(index=True)
    status: Mapped[str] = mapped_column(sa.String(30))
    kiosk_id: Mapped[str | None] = mapped_column(sa.ForeignKey("kiosks.id"))
    consent_claims: Mapped[list[str] | None] = mapped_column(sa.JSON)
    consented_at: Mapped[datetime | None]
    # Set once, by the single conditional UPDATE that lets one card response in.
    consumed_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    person_id: Mapped[str | None] = mapped_column(sa.ForeignKey("persons.id", ondelete="SET NULL"))
    reason_code: Mapped[str | None] = mapped_column(sa.String(60))
    # The provider's answer (claims, evidence, DID, credential), AES-GCM encrypted.
    result_key_id: Mapped[str | None] = mapped_column(sa.String(40))
    result_encrypted: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
    # A document the person signs with the card after the verification ("consent"), or None.
    document: Mapped[str | None] = mapped_column(sa.String(20))
    # The provider's own opaque reference for the customer or transaction (its records).
    provider_reference: Mapped[str | None] = mapped_column(sa.String(100))


class VerificationRecord(Base):
    """A verification record (確認記録) a provider must keep: one per completed identity
    verification or reuse. Its content (who, when, how, the person's attributes as
    verified, the certificate and revocation evidence) is one AES-GCM ciphertext bound
    to the record id; its SHA-256 is in the audit log. It outlives the session and the
    person's consent: it goes only after the retention its provider declared."""

    __tablename__ = "verification_records"
    __table_args__ = (
        sa.Index(None, "provider_id", "verified_at"),
        sa.Index(None, "provider_id", "subject_id"),
    )

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(sa.ForeignKey("providers.id"))
    session_id: Mapped[str] = mapped_column(sa.String(40), unique=True)
    person_id: Mapped[str | None] = mapped_column(sa.String(40))
    subject_id: Mapped[str] = mapped_column(sa.String(100))
    kind: Mapped[str] = mapped_column(sa.String(30))  # identity_verification | reuse
    verified_at: Mapped[datetime]
    key_id: Mapped[str] = mapped_column(sa.String(40))
    content_encrypted: Mapped[bytes] = mapped_column(sa.LargeBinary)
    record_hash: Mapped[str] = mapped_column(sa.String(64))
    relationship_ended_on: Mapped[date | None] = mapped_column(sa.Date)
    retain_until: Mapped[datetime | None] = mapped_column(index=True)
    created_at: Mapped[datetime]


class SignedDocument(Base):
    """The document of a session (issue 9): issued unsigned, then signed with the card.

    The unsigned PDF holds no personal data (provider, purpose, claim names) and
    is kept as issued: acceptance checks that the signed file extends exactly
    these bytes. The signed PDF names the signer (its certificate carries the
    basic attributes), so it is stored only AES-GCM encrypted
    (commonid.documents.storage), bound to its document and session ids.
    """

    __tablename__ = "signed_documents"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # doc_...
    # One document per session.
    session_id: Mapped[str] = mapped_column(
        sa.ForeignKey("sessions.id", ondelete="CASCADE"), unique=True, index=True
    )
    provider_id: Mapped[str] = mapped_column(sa.ForeignKey("providers.id"))
    kind: Mapped[str] = mapped_column(sa.String(20))
    unsigned_pdf: Mapped[bytes] = mapped_column(sa.LargeBinary)
    unsigned_sha256: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    # Set once, when the signed document is accepted.
    sha256: Mapped[str | None] = mapped_column(sa.String(64))
    size: Mapped[int | None]
    key_id: Mapped[str | None] = mapped_column(sa.String(40))
    ciphertext: Mapped[bytes | None] = mapped_column(sa.LargeBinary)  # nonce || ciphertext || tag
    signed_at: Mapped[datetime | None]
    # Set once, when the person declines to sign at the kiosk; then it is never signed.
    declined_at: Mapped[datetime | None]


class RejectedResponse(Base):
    """A card response turned away: replay, cross-provider, bad signature..."""

    __tablename__ = "rejected_responses"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    session_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    kiosk_id: Mapped[str | None] = mapped_column(sa.String(40))
    code: Mapped[str] = mapped_column(sa.String(60))
    at: Mapped[datetime]


class Consent(Base):
    """A provider's link to a person: what it may see, under which pairwise id."""

    __tablename__ = "consents"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    person_id: Mapped[str] = mapped_column(
        sa.ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    provider_id: Mapped[str] = mapped_column(sa.ForeignKey("providers.id"))
    subject_id: Mapped[str] = mapped_column(sa.String(80), index=True)
    session_id: Mapped[str] = mapped_column(sa.String(40))
    claims: Mapped[list[str]]
    granted_at: Mapped[datetime]
    withdrawn_at: Mapped[datetime | None]


class StatusList(Base):
    """A did.status.StatusList (bits + allocation map) in its own serialization."""

    __tablename__ = "status_lists"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    purpose: Mapped[str] = mapped_column(sa.String(20))
    url: Mapped[str] = mapped_column(sa.String(1000))
    serialized: Mapped[bytes] = mapped_column(sa.LargeBinary)
    updated_at: Mapped[datetime]


class IssuedCredential(Base):
    __tablename__ = "issued_credentials"

    id: Mapped[str] = mapped_column(sa.String(80), primary_key=True)
    person_id: Mapped[str] = mapped_column(
        sa.ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    provider_id: Mapped[str] = mapped_column(sa.ForeignKey("providers.id"))
    revocation_list_id: Mapped[str] = mapped_column(sa.ForeignKey("status_lists.id"))
    revocation_index: Mapped[int]
    suspension_list_id: Mapped[str] = mapped_column(sa.ForeignKey("status_lists.id"))
    suspension_index: Mapped[int]
    # did.credentials.certificate_serial_sha256 of the certificate the claims came from.
    certificate_serial_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    issued_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    # Revoked because the card was renewed (its DID followed by a new one): verification
    # says credential_superseded, and the person can be issued a new one.
    superseded_at: Mapped[datetime | None]


class WebhookDelivery(Base):
    __tablename__ = "webhook_deliveries"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)  # webhook-id
    provider_id: Mapped[str] = mapped_column(sa.ForeignKey("providers.id"), index=True)
    event_type: Mapped[str] = mapped_column(sa.String(60))
    payload: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(index=True)
    delivered_at: Mapped[datetime | None]
    last_status: Mapped[int | None]
    last_error: Mapped[str | None] = mapped_column(sa.String(500))


class IdempotencyKey(Base):
    __tablename__ = "idempotency_keys"

    provider_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    request_hash: Mapped[str] = mapped_column(sa.String(64))
    status_code: Mapped[int]
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class RateLimitBucket(Base):
    """A caller's token bucket when the hosts keep them in this database
    (``rate_limit_store = "database"``, PostgreSQL; commonid.api.limit_stores).

    UNLOGGED on PostgreSQL (see the migration): a bucket is worth no WAL write or
    fsync, and a crash that empties the table only refills every bucket.
    """

    __tablename__ = "rate_limit_buckets"

    # "<kind>:<caller id>", e.g. "providers:prv_..."
    bucket: Mapped[str] = mapped_column(sa.String(120), primary_key=True)
    tokens: Mapped[float] = mapped_column(sa.Double())
    # The database's clock when the tokens were counted: every host agrees on it.
    updated: Mapped[datetime]
    # Whether the take that last wrote the row let its request through (read back by it).
    allowed: Mapped[bool]


class SharedKeyFingerprint(Base):
    """A key every instance on this database must hold, by role (``issuer:<did>``,
    ``attribute:<key id>``, ``pairwise``): its SHA-256 fingerprint, never the key
    (commonid.shared_keys)."""

    __tablename__ = "shared_key_fingerprints"

    role: Mapped[str] = mapped_column(sa.String(60), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(64))
    recorded_at: Mapped[datetime]


# --- OpenID Provider (commonid.oidc): the door's own state, never a person's data ---


class OidcClient(Base):
    """A provider registered as an OpenID Connect client (``commonid provider oidc``)."""

    __tablename__ = "oidc_clients"

    client_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("providers.id"), unique=True
    )
    redirect_uris: Mapped[list[str]]
    # private_key_jwt (jwks or jwks_uri), or client_secret_basic for development
    auth_method: Mapped[str] = mapped_column(sa.String(40))
    secret_hash: Mapped[str | None] = mapped_column(sa.String(64))
    jwks: Mapped[dict[str, Any] | None]
    jwks_uri: Mapped[str | None] = mapped_column(sa.String(2000))
    require_par: Mapped[bool] = mapped_column(default=False)
    created_at: Mapped[datetime]


class OidcAuthorization(Base):
    """One authorization request: pushed (PAR) or received, then its Common-ID session,
    then its code. Stored by hash where a value is a bearer secret."""

    __tablename__ = "oidc_authorizations"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    client_id: Mapped[str] = mapped_column(sa.String(40), sa.ForeignKey("oidc_clients.client_id"))
    # The authorization request's parameters as validated (no secrets in them).
    params: Mapped[dict[str, Any]]
    pushed: Mapped[bool] = mapped_column(default=False)
    # No foreign key: sessions are purged on their own schedule, this row with them.
    session_id: Mapped[str | None] = mapped_column(sa.String(40), index=True)
    # The page that follows the person's progress holds this (hash): only that browser.
    browser_hash: Mapped[str | None] = mapped_column(sa.String(64))
    code_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    code_expires_at: Mapped[datetime | None]
    code_used_at: Mapped[datetime | None]
    auth_time: Mapped[datetime | None]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]


class OidcToken(Base):
    """An access token (by hash): what userinfo may release, for how long, to which key."""

    __tablename__ = "oidc_tokens"

    token_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    authorization_id: Mapped[str] = mapped_column(
        sa.String(40), sa.ForeignKey("oidc_authorizations.id")
    )
    client_id: Mapped[str] = mapped_column(sa.String(40))
    scope: Mapped[str] = mapped_column(sa.String(400))
    # DPoP (RFC 9449): the JWK thumbprint the token is bound to, if any.
    jkt: Mapped[str | None] = mapped_column(sa.String(64))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class OidcAssertionJti(Base):
    """Client assertions seen (private_key_jwt): a jti is accepted once per client."""

    __tablename__ = "oidc_assertion_jtis"

    client_id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    jti: Mapped[str] = mapped_column(sa.String(200), primary_key=True)
    expires_at: Mapped[datetime]


class TokenStatusListRow(Base):
    """An IETF Token Status List (did.token_status.TokenStatusList) of wallet credentials."""

    __tablename__ = "token_status_lists"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    uri: Mapped[str] = mapped_column(sa.String(300))
    serialized: Mapped[bytes] = mapped_column(sa.LargeBinary)
    updated_at: Mapped[datetime]


class WalletCredential(Base):
    """An SD-JWT VC issued to a person's wallet over OpenID4VCI (no claim is kept here:
    the credential is the person's; this row is for its status)."""

    __tablename__ = "wallet_credentials"
    __table_args__ = (sa.Index(None, "status_list_id", "status_index", unique=True),)

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    person_id: Mapped[str] = mapped_column(
        sa.ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    offer_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    status_list_id: Mapped[str] = mapped_column(sa.ForeignKey("token_status_lists.id"))
    status_index: Mapped[int]
    certificate_serial_hash: Mapped[str] = mapped_column(sa.String(64), index=True)
    holder_binding: Mapped[str] = mapped_column(sa.String(10))  # wallet | card
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]
    superseded_at: Mapped[datetime | None]
    suspended_at: Mapped[datetime | None]


class CredentialOffer(Base):
    """An OpenID4VCI credential offer with a pre-authorized code, made at the end of a
    verification. Codes, transaction codes and access tokens are kept as SHA-256."""

    __tablename__ = "credential_offers"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    person_id: Mapped[str] = mapped_column(
        sa.ForeignKey("persons.id", ondelete="CASCADE"), index=True
    )
    session_id: Mapped[str] = mapped_column(sa.String(40), index=True)
    code_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    tx_code_hash: Mapped[str] = mapped_column(sa.String(64))
    tx_code_failures: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    access_token_hash: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    token_expires_at: Mapped[datetime | None]
    credentials_issued: Mapped[int] = mapped_column(default=0)


class WalletNonce(Base):
    """A c_nonce from the nonce endpoint: a proof of possession must carry a fresh one,
    used once."""

    __tablename__ = "wallet_nonces"

    nonce_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class PresentationRequest(Base):
    """An OpenID4VP request a provider made through the API, and its verified result
    (disclosed claims are sealed like session results)."""

    __tablename__ = "presentation_requests"

    id: Mapped[str] = mapped_column(sa.String(40), primary_key=True)
    provider_id: Mapped[str] = mapped_column(sa.ForeignKey("providers.id"), index=True)
    nonce: Mapped[str] = mapped_column(sa.String(64))
    state: Mapped[str] = mapped_column(sa.String(64), unique=True)
    dcql_query: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    status: Mapped[str] = mapped_column(sa.String(20))  # pending | verified | refused
    reason_code: Mapped[str | None] = mapped_column(sa.String(60))
    answered_at: Mapped[datetime | None]
    result_key_id: Mapped[str | None] = mapped_column(sa.String(40))
    result_encrypted: Mapped[bytes | None] = mapped_column(sa.LargeBinary)
