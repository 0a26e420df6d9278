"""JPKIIdentityCredential: issue and verify in both proof formats, and every rejection."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from joserfc import jws
from joserfc.jwk import OKPKey

from did.credentials import (
    JPKI_CLAIMS_KEY,
    Claim,
    CredentialReason,
    IdentityCredentialRequest,
    ProofFormat,
    build_identity_credential,
    issue_identity_credential,
    verify_identity_credential,
)
from did.keys import IssuerKeyring, TrustedIssuers

from .conftest import StatusRegistry

MakeRequest = Callable[..., IdentityCredentialRequest]
BOTH_FORMATS = pytest.mark.parametrize("proof_format", list(ProofFormat))


def _verify(credential: str, registry: StatusRegistry, at: datetime, keyring=None):
    return verify_identity_credential(
        credential, keyring or registry.keyring, at=at, status_resolver=registry.resolve
    )


def _jwt_claims(token: str) -> dict:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


@BOTH_FORMATS
def test_issued_credential_verifies_with_consented_claims_only(
    proof_format: ProofFormat,
    make_request: MakeRequest,
    status_registry: StatusRegistry,
    subject_did: str,
    now: datetime,
) -> None:
    request = make_request(consented=frozenset({Claim.NAME, Claim.BIRTHDATE}))
    issued = issue_identity_credential(request, status_registry.keyring, proof_format=proof_format)
    if proof_format is ProofFormat.JWT:
        assert issued.credential.count(".") == 2
    else:
        assert json.loads(issued.credential)["proof"]["type"] == "Ed25519Signature2018"

    result = _verify(issued.credential, status_registry, now)

    assert result.reason is CredentialReason.VALID, result.detail
    assert result.subject_did == subject_did
    claims = result.verified_claims["claims"]
    assert claims == {
        "name": "山田 太郎",
        "birthdate": "1985-04-01",
        JPKI_CLAIMS_KEY: {"name_flags": "0"},
    }
    verification = result.verified_claims["verification"]
    assert verification["trust_framework"] == "jp_aml"
    assert verification["evidence"][0]["type"] == "electronic_signature"
    # Both status lists were consulted.
    assert status_registry.fetches == 2


def test_credential_states_how_the_certificate_was_checked(
    make_request: MakeRequest, now: datetime
) -> None:
    request = make_request(serial=0x01020304)
    credential = build_identity_credential(request, "did:key:z6MkIssuer")
    (evidence,) = credential["evidence"]
    assert evidence["certificatePurpose"] == "sign"
    assert evidence["certificateIssuer"].startswith("CN=Test JPKI Sign CA")
    # The serial appears only hashed.
    assert len(evidence["certificateSerialSha256"]) == 64
    assert "01020304" not in json.dumps(credential).lower()
    assert evidence["revocationCheck"]["method"] == "crl"
    assert evidence["validatedAt"] == now.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert credential["credentialStatus"]["type"] == "BitstringStatusListEntry"
    assert credential["credentialStatus"]["statusPurpose"] == "revocation"
    assert credential["suspensionStatus"]["statusPurpose"] == "suspension"


def test_expiry_is_never_later_than_the_certificate(
    make_request: MakeRequest, now: datetime
) -> None:
    not_after = now + timedelta(days=30)
    capped = build_identity_credential(
        make_request(not_after=not_after, expires_at=now + timedelta(days=400)), "did:key:z6Mk"
    )
    assert capped["expirationDate"] == not_after.strftime("%Y-%m-%dT%H:%M:%SZ")
    shorter = now + timedelta(days=7)
    kept = build_identity_credential(
        make_request(not_after=not_after, expires_at=shorter), "did:key:z6Mk"
    )
    assert kept["expirationDate"] == shorter.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_no_claim_is_released_without_consent(make_request: MakeRequest) -> None:
    credential = build_identity_credential(make_request(consented=frozenset()), "did:key:z6Mk")
    assert credential["credentialSubject"]["verified_claims"]["claims"] == {}
    text = json.dumps(credential, ensure_ascii=False)
    assert "山田" not in text and "東京都" not in text and "1985" not in text


def test_tampered_claim_is_rejected_ldp(
    make_request: MakeRequest, status_registry: StatusRegistry, now: datetime
) -> None:
    issued = issue_identity_credential(make_request(), status_registry.keyring)
    tampered = json.loads(issued.credential)
    tampered["credentialSubject"]["verified_claims"]["claims"]["name"] = "佐藤 花子"
    result = _verify(json.dumps(tampered), status_registry, now)
    assert result.reason is CredentialReason.INVALID_PROOF


def test_tampered_claim_is_rejected_jwt(
    make_request: MakeRequest, status_registry: StatusRegistry, now: datetime
) -> None:
    issued = issue_identity_credential(
        make_request(), status_registry.keyring, proof_format=ProofFormat.JWT
    )
    header, _, signature = issued.credential.split(".")
    claims = _jwt_claims(issued.credential)
    claims["vc"]["credentialSubject"]["verified_claims"]["claims"]["birthdate"] = "1970-01-01"
    forged = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    result = _verify(f"{header}.{forged}.{signature}", status_registry, now)
    assert result.reason is CredentialReason.INVALID_PROOF


@BOTH_FORMATS
def test_credential_from_another_issuer_key_is_rejected(
    proof_format: ProofFormat,
    make_request: MakeRequest,
    status_registry: StatusRegistry,
    tmp_path,
    now: datetime,
) -> None:
    stranger = IssuerKeyring.open(tmp_path / "stranger.json")
    issued = issue_identity_credential(make_request(), stranger, proof_format=proof_format)
    result = _verify(issued.credential, status_registry, now)
    assert result.reason is CredentialReason.UNTRUSTED_ISSUER


def test_credential_claiming_our_issuer_but_signed_by_another_key_is_rejected(
    make_request: MakeRequest, status_registry: StatusRegistry, tmp_path, now: datetime
) -> None:
    stranger = IssuerKeyring.open(tmp_path / "stranger.json")
    forged = json.loads(issue_identity_credential(make_request(), stranger).credential)
    forged["issuer"] = status_registry.keyring.current.did
    result = _verify(json.dumps(forged), status_registry, now)
    assert result.reason is CredentialReason.INVALID_PROOF


@BOTH_FORMATS
def test_expired_credential_is_rejected(
    proof_format: ProofFormat,
    make_request: MakeRequest,
    status_registry: StatusRegistry,
    now: datetime,
) -> None:
    not_after = now + timedelta(days=10)
    issued = issue_identity_credential(
        make_request(not_after=not_after), status_registry.keyring, proof_format=proof_format
    )
    # The service keeps re-signing its lists; they are fresh at any moment asked.
    status_registry.lists_issued_at = not_after - timedelta(minutes=1)
    assert _verify(issued.credential, status_registry, not_after - timedelta(seconds=1)).valid
    result = _verify(issued.credential, status_registry, not_after)
    assert result.reason is CredentialReason.EXPIRED


def test_credential_is_not_valid_before_issuance(
    make_request: MakeRequest, status_registry: StatusRegistry, now: datetime
) -> None:
    issued = issue_identity_credential(make_request(), status_registry.keyring)
    result = _verify(issued.credential, status_registry, now - timedelta(hours=1))
    assert result.reason is CredentialReason.NOT_YET_VALID


@BOTH_FORMATS
def test_revoked_credential_is_rejected(
    proof_format: ProofFormat,
    make_request: MakeRequest,
    status_registry: StatusRegistry,
    now: datetime,
) -> None:
    request = make_request()
    other = make_request()
    issued = issue_identity_credential(request, status_registry.keyring, proof_format=proof_format)
    untouched = issue_identity_credential(other, status_registry.keyring)
    status_registry.revocation.revoke(request.status.revocation.index)

    assert _verify(issued.credential, status_registry, now).reason is CredentialReason.REVOKED
    assert _verify(untouched.credential, status_registry, now).valid


def test_suspension_rejects_until_lifted(
    make_request: MakeRequest, status_registry: StatusRegistry, now: datetime
) -> None:
    request = make_request()
    issued = issue_identity_credential(request, status_registry.keyring)
    status_registry.suspension.suspend(request.status.suspension.index)
    assert _verify(issued.credential, status_registry, now).reason is CredentialReason.SUSPENDED
    status_registry.suspension.unsuspend(request.status.suspension.index)
    assert _verify(issued.credential, status_registry, now).valid


def test_unreachable_status_list_is_not_taken_as_clear(
    make_request: MakeRequest, status_registry: StatusRegistry, now: datetime
) -> None:
    issued = issue_identity_credential(make_request(), status_registry.keyring)

    def offline(url: str) -> dict:
        raise ConnectionError(url)

    result = verify_identity_credential(
        issued.credential, status_registry.keyring, at=now, status_resolver=offline
    )
    assert result.reason is CredentialReason.STATUS_UNAVAILABLE


def test_forged_status_list_clearing_a_revocation_is_rejected(
    make_request: MakeRequest, status_registry: StatusRegistry, now: datetime
) -> None:
    request = make_request()
    issued = issue_identity_credential(request, status_registry.keyring)
    status_registry.revocation.revoke(request.status.revocation.index)
    genuine = status_registry.resolve(status_registry.revocation.url)
    cleared = status_registry.revocation.__class__.new(
        status_registry.revocation.url, status_registry.revocation.purpose
    )

    def forging(url: str) -> dict:
        if url != status_registry.revocation.url:
            return status_registry.resolve(url)
        forged = json.loads(json.dumps(genuine))
        forged["credentialSubject"]["encodedList"] = cleared.encoded_list()
        return forged

    result = verify_identity_credential(
        issued.credential, status_registry.keyring, at=now, status_resolver=forging
    )
    assert result.reason is CredentialReason.STATUS_INVALID


@BOTH_FORMATS
def test_credentials_of_a_retired_key_still_verify_after_rotation(
    proof_format: ProofFormat,
    make_request: MakeRequest,
    status_registry: StatusRegistry,
    now: datetime,
) -> None:
    before = issue_identity_credential(
        make_request(), status_registry.keyring, proof_format=proof_format
    )
    rotated = status_registry.keyring.rotate()
    status_registry.keyring = rotated  # the lists are now signed by the new key
    after = issue_identity_credential(make_request(), rotated, proof_format=proof_format)

    assert after.issuer == rotated.current.did != before.issuer
    reloaded = IssuerKeyring.load(rotated.path)
    assert _verify(before.credential, status_registry, now, reloaded).valid
    assert _verify(after.credential, status_registry, now, reloaded).valid


def test_garbage_is_malformed(status_registry: StatusRegistry, now: datetime) -> None:
    wrong_date = '{"issuer": "did:key:z6Mk", "issuanceDate": 5, "expirationDate": 6}'
    for garbage in ("not a credential", '{"issuer": 1}', "a.b.c", "[1]", wrong_date):
        result = _verify(garbage, status_registry, now)
        assert result.reason is CredentialReason.MALFORMED


def test_credential_for_a_new_card_names_the_earlier_dids(
    make_request: MakeRequest, status_registry: StatusRegistry, now: datetime
) -> None:
    old_card_did = "did:key:z4MXj1wBzi9jUstyPMS4jQqB6KdJaiatPkAtVtGc6bQEQEEsKTic4G7Rou3iBf9vPmT5"
    request = replace(make_request(), previous_subject_dids=(old_card_did,))
    issued = issue_identity_credential(request, status_registry.keyring)
    result = _verify(issued.credential, status_registry, now)
    assert result.valid, result.detail
    assert result.credential["credentialSubject"]["previousSubjectIds"] == [old_card_did]


def test_provider_verifies_with_the_did_web_document_alone(
    make_request: MakeRequest, status_registry: StatusRegistry, tmp_path, now: datetime
) -> None:
    old = issue_identity_credential(make_request(), status_registry.keyring)
    rotated = status_registry.keyring.rotate()
    new = issue_identity_credential(make_request(), rotated, proof_format=ProofFormat.JWT)
    # What a provider pins: the published did.json, no private key.
    pinned = TrustedIssuers.from_did_web_document(rotated.did_web_document("commonid.test"))
    assert pinned == rotated.trusted_issuers()

    assert _verify(old.credential, status_registry, now, pinned).valid
    assert _verify(new.credential, status_registry, now, pinned).valid
    stranger = IssuerKeyring.open(tmp_path / "stranger.json")
    stranger_pins = TrustedIssuers.from_did_web_document(stranger.did_web_document("evil.test"))
    rejected = _verify(new.credential, status_registry, now, stranger_pins)
    assert rejected.reason is CredentialReason.UNTRUSTED_ISSUER


def test_replayed_old_status_list_is_refused_once_expired(
    make_request: MakeRequest, status_registry: StatusRegistry, now: datetime
) -> None:
    request = make_request()
    issued = issue_identity_credential(request, status_registry.keyring)
    before_revocation = {
        url: status_registry.resolve(url) for url in status_registry.lists
    }  # an attacker's copy of the lists
    status_registry.revocation.revoke(request.status.revocation.index)

    def replaying(url: str) -> dict:
        return before_revocation[url]

    later = now + timedelta(hours=2)
    result = verify_identity_credential(
        issued.credential, status_registry.keyring, at=later, status_resolver=replaying
    )
    assert result.reason is CredentialReason.STATUS_UNAVAILABLE
    assert "stale" in result.detail
    status_registry.lists_issued_at = later - timedelta(minutes=1)
    assert _verify(issued.credential, status_registry, later).reason is CredentialReason.REVOKED


@pytest.mark.filterwarnings("ignore:EdDSA is deprecated")
def test_jwt_signed_by_a_stranger_but_naming_our_issuer_is_rejected(
    make_request: MakeRequest, status_registry: StatusRegistry, tmp_path, now: datetime
) -> None:
    stranger = IssuerKeyring.open(tmp_path / "stranger.json")
    genuine = issue_identity_credential(make_request(), stranger, proof_format=ProofFormat.JWT)
    claims = _jwt_claims(genuine.credential)
    ours = status_registry.keyring.current.did
    claims["iss"] = claims["vc"]["issuer"] = ours
    # A correctly signed JWS, but by the stranger's key (its own kid).
    forged = jws.serialize_compact(
        {"alg": "EdDSA", "kid": stranger.current.verification_method},
        json.dumps(claims).encode(),
        OKPKey.import_key(json.loads(stranger.current.private_jwk)),
        algorithms=["EdDSA"],
    )
    result = _verify(forged, status_registry, now)
    assert result.reason is CredentialReason.INVALID_PROOF


def test_garbage_status_list_is_invalid_not_a_crash(
    make_request: MakeRequest, status_registry: StatusRegistry, now: datetime
) -> None:
    issued = issue_identity_credential(make_request(), status_registry.keyring)
    for garbage in ("<html>not json</html>", "[]", '{"type": 5}'):
        status_registry.resolve = lambda _, served=garbage: served
        result = _verify(issued.credential, status_registry, now)
        assert result.reason is CredentialReason.STATUS_INVALID


def _unsigned_jwt(claims: dict) -> str:
    def part(value: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'EdDSA'})}.{part(claims)}.c2ln"


def _deeply_nested(depth: int) -> dict:
    nested: dict = {}
    for _ in range(depth):
        nested = {"x": nested}
    return nested


@pytest.mark.parametrize(
    "change",
    [
        pytest.param(lambda vc: vc.__setitem__("proof", "x"), id="proof-as-a-string"),
        pytest.param(
            lambda vc: vc.__setitem__("type", "JPKIIdentityCredential"), id="type-as-a-string"
        ),
        pytest.param(lambda vc: vc.__setitem__("credentialStatus", []), id="status-as-a-list"),
        pytest.param(
            lambda vc: vc["credentialSubject"].__setitem__("deep", _deeply_nested(5000)),
            id="nested-5000-deep",
        ),
    ],
)
def test_a_credential_of_the_wrong_shape_is_malformed_not_an_exception(
    change: Callable[[dict], None],
    make_request: MakeRequest,
    status_registry: StatusRegistry,
    now: datetime,
) -> None:
    issued = json.loads(
        issue_identity_credential(make_request(), status_registry.keyring).credential
    )
    change(issued)
    for given in (issued, "no text"):  # as an object, and as JSON text where it encodes
        if given == "no text":
            try:
                given = json.dumps(issued)
            except RecursionError:
                continue
        result = _verify(given, status_registry, now)
        assert result.reason is CredentialReason.MALFORMED, result


def test_an_unsigned_jwt_with_an_exp_beyond_any_date_is_malformed(
    status_registry: StatusRegistry, now: datetime
) -> None:
    vc = {"type": ["VerifiableCredential", "JPKIIdentityCredential"], "credentialSubject": {}}
    for exp in (1e20, 10**30):
        token = _unsigned_jwt({"iss": status_registry.keyring.current.did, "exp": exp, "vc": vc})
        assert _verify(token, status_registry, now).reason is CredentialReason.MALFORMED


def test_a_credential_over_the_size_limit_is_malformed_before_any_parsing(
    status_registry: StatusRegistry, now: datetime
) -> None:
    result = _verify("{" + " " * 70_000 + "}", status_registry, now)
    assert result.reason is CredentialReason.MALFORMED
    assert "bytes" in result.detail
