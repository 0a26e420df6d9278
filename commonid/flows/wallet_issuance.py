"""OpenID4VCI issuance of the JPKI identity as an SD-JWT VC (pre-authorized code flow).

At the end of a verification that proved the person's attributes, the kiosk
asks for a credential offer: a pre-authorized code (in the offer's QR code and
link) and a transaction code (shown apart, so a photographed QR alone is
useless). The wallet trades both for an access token, fetches a nonce, and asks
the credential endpoint for one or more copies, each with a proof of possession
(a JWT over the nonce) of the key the copy is bound to: a wallet's ES256 key, or
the card's authentication key (RS256, signed by the card after its PIN). Every
copy has its own salts, decoys and status index, so copies cannot be linked by
the credential itself.
"""

from __future__ import annotations

import json
import secrets
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey
from sqlalchemy.orm import Session as DbSession

from commonid import auditing
from commonid.credentials import verified_claims_from_store
from commonid.openid4vc.issuer_keys import CredentialIssuerKeys
from commonid.problems import Problem
from commonid.runtime import Runtime
from commonid.store import persons, sessions, wallet
from commonid.store.ids import hash_credential, new_id, new_secret
from commonid.store.models import Certificate, CredentialOffer, Person, WalletCredential
from commonid.store.rows import KioskRow
from did.credentials import VerifiedClaims, certificate_serial_sha256
from did.identity_sd_jwt import (
    JPKI_IDENTITY_VCT,
    IdentitySdJwtRequest,
    VerificationEvidence,
    issue_identity_sd_jwt,
)
from did.keys import did_key_from_public_key
from did.sd_jwt import IssuerKeyLookup
from did.token_status import TokenStatusError, status_reference
from did.token_status import status_list_token as sign_status_list

T = TypeVar("T")
CREDENTIAL_CONFIGURATION_ID = "jpki_identity_sd_jwt"
PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"
PROOF_TYP = "openid4vci-proof+jwt"
TX_CODE_LENGTH = 6
TX_CODE_ATTEMPTS = 3
TX_CODE_DESCRIPTION = "キオスクの画面に表示された6桁の番号 / the 6 digits on the kiosk screen"
ACCESS_TOKEN_TTL = timedelta(minutes=5)
PROOF_MAX_AGE = timedelta(minutes=5)
STATUS_LIST_PREFIX = "tsl-"  # token status list ids: tsl-1, tsl-2, ...
MAX_PROOF_BYTES = 8 * 1024


class _ProofRegistry(jws.JWSRegistry):
    max_header_length = 4096  # the header carries the key: an RSA JWK is ~400 bytes alone


_PROOF_REGISTRY = _ProofRegistry(algorithms=["ES256", "RS256"])


class OAuthRefusal(Exception):
    """An OAuth / OpenID4VCI error object: ``{"error": ..., "error_description": ...}``."""

    def __init__(self, error: str, description: str, status: int = 400) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


def _issuer_keys(runtime: Runtime) -> CredentialIssuerKeys:
    if runtime.credential_issuer is None:
        runtime.credential_issuer = CredentialIssuerKeys.from_settings(runtime.settings)
    return runtime.credential_issuer


def credential_issuer_id(runtime: Runtime) -> str:
    return runtime.settings.public_url.rstrip("/")


# --- the offer -------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    offer_id: str
    credential_offer: dict[str, Any]
    offer_uri: str  # openid-credential-offer://?credential_offer=...
    tx_code: str  # shown to the person apart from the QR code
    expires_at: datetime


def create_offer(runtime: Runtime, db: DbSession, session_id: str, kiosk: KioskRow) -> Offer:
    """An offer for the person a session at this kiosk has just verified."""
    now = runtime.clock()
    session = sessions.get_session(db, session_id)
    if session is None or session.kiosk_id != kiosk.id:
        raise Problem("session_not_found")
    if session.status != sessions.SessionStatus.VERIFIED.value or session.person_id is None:
        raise Problem("identity_not_verified", "an offer follows a verified identity")
    if session.completed_at is None or now - session.completed_at > timedelta(
        seconds=runtime.settings.credential_offer_ttl_seconds
    ):
        raise Problem("credential_offer_too_late", "offer a credential right after verifying")
    person = db.get(Person, session.person_id)
    if person is None or person.sign_certificate_id is None or person.reverification_reason:
        raise Problem("identity_not_verified", "the attributes were not verified at this session")
    if wallet.offer_of_session(db, session.id) is not None:
        raise Problem("credential_offer_exists")
    code = new_secret("pac")
    tx_code = "".join(secrets.choice("0123456789") for _ in range(TX_CODE_LENGTH))
    offer = CredentialOffer(
        id=new_id("off"),
        person_id=person.id,
        session_id=session.id,
        code_hash=hash_credential(code),
        tx_code_hash=hash_credential(f"{code}:{tx_code}"),
        tx_code_failures=0,
        created_at=now,
        expires_at=now + timedelta(seconds=runtime.settings.credential_offer_ttl_seconds),
        credentials_issued=0,
    )
    db.add(offer)
    credential_offer = {
        "credential_issuer": credential_issuer_id(runtime),
        "credential_configuration_ids": [CREDENTIAL_CONFIGURATION_ID],
        "grants": {
            PRE_AUTHORIZED_GRANT: {
                "pre-authorized_code": code,
                "tx_code": {
                    "input_mode": "numeric",
                    "length": TX_CODE_LENGTH,
                    "description": TX_CODE_DESCRIPTION,
                },
            }
        },
    }
    auditing.record(
        runtime,
        db,
        [
            (
                "wallet.offer_created",
                {
                    "offer_id": offer.id,
                    "session_id": session.id,
                    "person_id": person.id,
                    "kiosk_id": kiosk.id,
                },
            )
        ],
    )
    query = urllib.parse.urlencode(
        {"credential_offer": json.dumps(credential_offer, separators=(",", ":"))}
    )
    return Offer(
        offer.id, credential_offer, f"openid-credential-offer://?{query}", tx_code, offer.expires_at
    )


# --- token and nonce -------------------------------------------------------------------


def exchange_pre_authorized_code(
    runtime: Runtime, code: str, tx_code: str | None
) -> dict[str, Any]:
    """The token endpoint's pre-authorized code grant. A wrong transaction code counts
    (and is committed): after three, the offer is spent."""
    return _committed(runtime, lambda db: _exchange(runtime, db, code, tx_code))


def _committed(runtime: Runtime, work: Callable[[DbSession], T | OAuthRefusal]) -> T:
    """``work`` in one write transaction that is committed even when it refuses (what a
    refusal counts, such as a wrong transaction code, must stay); then the refusal."""
    with runtime.write_transaction() as db:
        outcome = work(db)
    if isinstance(outcome, OAuthRefusal):
        raise outcome
    return outcome


def _exchange(
    runtime: Runtime, db: DbSession, code: str, tx_code: str | None
) -> dict[str, Any] | OAuthRefusal:
    now = runtime.clock()
    offer = wallet.offer_by_code(db, code)
    if offer is None or offer.expires_at <= now or offer.access_token_hash is not None:
        return OAuthRefusal("invalid_grant", "the pre-authorized code is unknown, used or expired")
    if offer.tx_code_failures >= TX_CODE_ATTEMPTS:
        return OAuthRefusal("invalid_grant", "too many wrong transaction codes")
    if tx_code is None or hash_credential(f"{code}:{tx_code}") != offer.tx_code_hash:
        offer.tx_code_failures += 1
        events = []
        if offer.tx_code_failures >= TX_CODE_ATTEMPTS:
            events.append(
                ("wallet.offer_refused", {"offer_id": offer.id, "reason_code": "tx_code_attempts"})
            )
        auditing.record(runtime, db, events)
        return OAuthRefusal("invalid_grant", "the transaction code is wrong")
    token = new_secret("wat")
    offer.access_token_hash = hash_credential(token)
    offer.token_expires_at = now + ACCESS_TOKEN_TTL
    return {
        "access_token": token,
        "token_type": "Bearer",
        "expires_in": int(ACCESS_TOKEN_TTL.total_seconds()),
    }


def new_nonce(runtime: Runtime, db: DbSession) -> str:
    now = runtime.clock()
    wallet.purge_expired(db, now=now)
    nonce = secrets.token_urlsafe(24)
    wallet.add_nonce(
        db, nonce, expires_at=now + timedelta(seconds=runtime.settings.credential_nonce_ttl_seconds)
    )
    return nonce


# --- the credential endpoint ----------------------------------------------------------


@dataclass(frozen=True)
class _Proof:
    jwk: dict[str, Any]
    binding: str  # wallet | card
    nonce: str


def issue_credentials(
    runtime: Runtime, access_token: str, body: dict[str, Any]
) -> list[dict[str, str]]:
    """One SD-JWT VC per proof in ``body["proofs"]["jwt"]``."""
    return _committed(runtime, lambda db: _issue(runtime, db, access_token, body))


def _issue(
    runtime: Runtime, db: DbSession, access_token: str, body: dict[str, Any]
) -> list[dict[str, str]] | OAuthRefusal:
    now = runtime.clock()
    offer = wallet.offer_by_access_token(db, access_token)
    if offer is None or offer.token_expires_at is None or offer.token_expires_at <= now:
        return OAuthRefusal("invalid_token", "the access token is unknown or expired", 401)
    if offer.credentials_issued:
        return OAuthRefusal("invalid_token", "this access token was already used", 401)
    if body.get("credential_configuration_id") != CREDENTIAL_CONFIGURATION_ID:
        return OAuthRefusal(
            "unknown_credential_configuration",
            f"ask for credential_configuration_id {CREDENTIAL_CONFIGURATION_ID}",
        )
    proofs = body.get("proofs")
    jwts = proofs.get("jwt") if isinstance(proofs, dict) and len(proofs) == 1 else None
    if not isinstance(jwts, list) or not jwts or not all(isinstance(p, str) for p in jwts):
        return OAuthRefusal("invalid_credential_request", "send proofs as {'jwt': [...]}")
    if len(jwts) > runtime.settings.credential_batch_size:
        return OAuthRefusal(
            "invalid_credential_request",
            f"at most {runtime.settings.credential_batch_size} proofs in one request",
        )
    person = db.get(Person, offer.person_id)
    if person is None or person.sign_certificate_id is None or person.reverification_reason:
        return OAuthRefusal("credential_request_denied", "the identity must be verified again")
    card_dids = set(persons.dids_of(db, person.id))
    checked: list[_Proof] = []
    for proof in jwts:
        outcome = _check_proof(runtime, proof, card_dids, now)
        if isinstance(outcome, OAuthRefusal):
            return outcome
        checked.append(outcome)
    nonces = {proof.nonce for proof in checked}
    if len(nonces) != 1 or not wallet.consume_nonce(db, nonces.pop(), now=now):
        return OAuthRefusal("invalid_nonce", "get a fresh c_nonce from the nonce endpoint")
    wallet_keys = [json.dumps(p.jwk, sort_keys=True) for p in checked if p.binding == "wallet"]
    if len(set(wallet_keys)) != len(wallet_keys):
        return OAuthRefusal("invalid_proof", "each copy needs its own wallet key")
    sign = db.get(Certificate, person.sign_certificate_id)
    assert sign is not None
    claims = verified_claims_from_store(persons.load_attributes(db, person.id, runtime.cipher))
    issued = [_issue_one(runtime, db, offer, person, sign, claims, proof, now) for proof in checked]
    offer.credentials_issued = len(issued)
    auditing.record(runtime, db, [event for _, event in issued])
    return [{"credential": credential} for credential, _ in issued]


def _check_proof(
    runtime: Runtime, proof: str, card_dids: set[str], now: datetime
) -> _Proof | OAuthRefusal:
    refusal = OAuthRefusal("invalid_proof", "the proof of possession is not valid")
    if len(proof) > MAX_PROOF_BYTES or proof.count(".") != 2:
        return refusal
    try:
        header = jws.extract_compact(proof.encode(), registry=_PROOF_REGISTRY).protected
    except (JoseError, ValueError):
        return refusal
    jwk = header.get("jwk")
    if header.get("typ") != PROOF_TYP or not isinstance(jwk, dict) or "d" in jwk:
        return OAuthRefusal("invalid_proof", f"typ must be {PROOF_TYP} with a public jwk")
    try:
        if header.get("alg") == "ES256" and jwk.get("kty") == "EC" and jwk.get("crv") == "P-256":
            key: ECKey | RSAKey = ECKey.import_key(jwk)
            binding = "wallet"
        elif header.get("alg") == "RS256" and jwk.get("kty") == "RSA":
            key = RSAKey.import_key(jwk)
            public = key.get_op_key("verify")
            assert isinstance(public, rsa.RSAPublicKey)
            # An RSA key is taken only as the card's: it must be one the person verified with.
            if did_key_from_public_key(public) not in card_dids:
                return OAuthRefusal("invalid_proof", "an RS256 proof must come from the card")
            binding = "card"
        else:
            return OAuthRefusal("invalid_proof", "ES256 with a P-256 key, or RS256 by the card")
        verified = jws.deserialize_compact(proof, key, registry=_PROOF_REGISTRY)
        claims = json.loads(verified.payload)
    except (JoseError, ValueError, TypeError):
        return refusal
    if not isinstance(claims, dict) or claims.get("aud") != credential_issuer_id(runtime):
        return OAuthRefusal("invalid_proof", "aud must be the credential issuer identifier")
    issued = claims.get("iat")
    if not isinstance(issued, int | float) or isinstance(issued, bool):
        return refusal
    age = now.timestamp() - issued
    if age > PROOF_MAX_AGE.total_seconds() or age < -30:
        return OAuthRefusal("invalid_proof", "the proof's iat is too old or in the future")
    nonce = claims.get("nonce")
    if not isinstance(nonce, str):
        return OAuthRefusal("invalid_nonce", "the proof carries no c_nonce")
    public_jwk = key.as_dict(private=False)
    return _Proof(public_jwk, binding, nonce)


def _allocate(runtime: Runtime, db: DbSession, now: datetime) -> tuple[str, int]:
    """An index in the newest token status list (a new list when it is full)."""
    number = 1
    while True:
        list_id = f"{STATUS_LIST_PREFIX}{number}"
        wallet.ensure_token_list(db, list_id, base_url=runtime.settings.public_url, now=now)
        row, status_list = wallet.load_token_list_for_update(db, list_id, now=now)
        try:
            index = status_list.allocate()
        except TokenStatusError:
            number += 1
            continue
        wallet.save_token_list(row, status_list, now=now)
        return list_id, index


def _issue_one(
    runtime: Runtime,
    db: DbSession,
    offer: CredentialOffer,
    person: Person,
    sign: Certificate,
    claims: VerifiedClaims,
    proof: _Proof,
    now: datetime,
) -> tuple[str, tuple[str, dict[str, Any]]]:
    list_id, index = _allocate(runtime, db, now)
    expires_at = sign.not_after
    serial_hash = certificate_serial_sha256(int(sign.serial, 16))
    request = IdentitySdJwtRequest(
        issuer=credential_issuer_id(runtime),
        claims=claims,
        evidence=[
            VerificationEvidence(
                purpose="sign",
                issuer=sign.issuer,
                verified_at=person.identity_verified_at or now,
            )
        ],
        holder_jwk=proof.jwk,
        status=status_reference(wallet.token_list_uri(runtime.settings.public_url, list_id), index),
        issued_at=now,
        expires_at=expires_at,
    )
    credential = issue_identity_sd_jwt(request, _issuer_keys(runtime).signer())
    row = WalletCredential(
        id=new_id("wcr"),
        person_id=person.id,
        offer_id=offer.id,
        status_list_id=list_id,
        status_index=index,
        certificate_serial_hash=serial_hash,
        holder_binding=proof.binding,
        issued_at=now,
        expires_at=expires_at,
    )
    db.add(row)
    event = {
        "credential_id": row.id,
        "offer_id": offer.id,
        "person_id": person.id,
        "holder_binding": proof.binding,
        "status_list_id": list_id,
        "status_index": index,
        "certificate_serial_hash": serial_hash,
    }
    return credential, ("wallet.credential_issued", event)


# --- metadata ---------------------------------------------------------------------------


def credential_issuer_metadata(runtime: Runtime) -> dict[str, Any]:
    base = credential_issuer_id(runtime)
    return {
        "credential_issuer": base,
        "credential_endpoint": f"{base}/oid4vci/credential",
        "nonce_endpoint": f"{base}/oid4vci/nonce",
        "authorization_servers": [base],
        "batch_credential_issuance": {"batch_size": runtime.settings.credential_batch_size},
        "display": [
            {"name": "Common-ID", "locale": "en"},
            {"name": "Common-ID（共通ID）", "locale": "ja"},
        ],
        "credential_configurations_supported": {
            CREDENTIAL_CONFIGURATION_ID: {
                "format": "dc+sd-jwt",
                "vct": JPKI_IDENTITY_VCT,
                "scope": "jpki_identity",
                "cryptographic_binding_methods_supported": ["jwk"],
                "credential_signing_alg_values_supported": ["ES256"],
                "proof_types_supported": {
                    "jwt": {"proof_signing_alg_values_supported": ["ES256", "RS256"]}
                },
                "credential_metadata": {
                    "display": [
                        {"name": "マイナンバーカードで確認した本人情報", "locale": "ja"},
                        {"name": "Identity verified with the My Number Card", "locale": "en"},
                    ],
                    "claims": [
                        {"path": [name]} for name in ("name", "birthdate", "gender", "address")
                    ]
                    + [{"path": ["age_equal_or_over", str(age)]} for age in (18, 20)],
                },
            }
        },
    }


def authorization_server_metadata(runtime: Runtime) -> dict[str, Any]:
    base = credential_issuer_id(runtime)
    return {
        "issuer": base,
        "token_endpoint": f"{base}/oid4vci/token",
        "grant_types_supported": [PRE_AUTHORIZED_GRANT],
        "pre-authorized_grant_anonymous_access_supported": True,
        "response_types_supported": [],
    }


def jwt_vc_issuer_metadata(runtime: Runtime) -> dict[str, Any]:
    return {
        "issuer": credential_issuer_id(runtime),
        "jwks": _issuer_keys(runtime).jwks(runtime.clock()),
    }


def issuer_key_for(runtime: Runtime) -> IssuerKeyLookup:
    """Our issuer key by ``kid`` for our own verifier (current or retired)."""
    keys = _issuer_keys(runtime)

    def lookup(iss: str, header: dict[str, Any]) -> ECKey | None:
        return keys.key_for(header) if iss == credential_issuer_id(runtime) else None

    return lookup


def status_list_token(runtime: Runtime, db: DbSession, list_id: str) -> str | None:
    """The signed token status list ``list_id``, signed now by the current issuer key."""
    status_list = wallet.token_list(db, list_id)
    if status_list is None:
        return None
    signer = _issuer_keys(runtime).signer()
    return sign_status_list(status_list, signer.key, kid=signer.kid, issued_at=runtime.clock())
