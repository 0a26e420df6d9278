"""SD-JWT VC: what we issue verifies with the reference library, and our verifier is strict."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from joserfc.jwk import ECKey, RSAKey
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS
from sd_jwt.verifier import SDJWTVerifier

from did.credentials import VerifiedClaims
from did.identity_sd_jwt import (
    JPKI_IDENTITY_VCT,
    IdentitySdJwtRequest,
    VerificationEvidence,
    issue_identity_sd_jwt,
)
from did.sd_jwt import (
    IssuerSigningKey,
    KeyBindingCheck,
    KeyBindingSigner,
    SdJwtReason,
    digest,
    present,
    split,
    verify,
)
from did.token_status import status_reference

from .conftest import software_sign_digest_info

NOW = datetime(2026, 12, 5, 9, 0, tzinfo=UTC)
ISSUER = "https://commonid.example"
AUDIENCE = "redirect_uri:https://commonid.example/oid4vp/response"


def _evidence() -> VerificationEvidence:
    return VerificationEvidence(
        "sign", "CN=Japan Agency for Local Authority Information Systems,C=JP", NOW
    )


@pytest.fixture(scope="module")
def issuer_key() -> IssuerSigningKey:
    key = ECKey.generate_key("P-256", private=True)
    return IssuerSigningKey(key, key.thumbprint())


@pytest.fixture(scope="module")
def wallet_key() -> ECKey:
    return ECKey.generate_key("P-256", private=True)


@pytest.fixture(scope="module")
def card_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _issue(issuer_key: IssuerSigningKey, holder_jwk: dict, **changes) -> str:
    request = IdentitySdJwtRequest(
        issuer=ISSUER,
        claims=VerifiedClaims(
            name="山田 太郎",
            birthdate=date(2005, 4, 2),
            gender="male",
            address="東京都千代田区霞が関1-1",
        ),
        evidence=[_evidence()],
        holder_jwk=holder_jwk,
        status=status_reference(f"{ISSUER}/v1/token-status-lists/a", 7),
        issued_at=changes.get("issued_at", NOW),
        expires_at=changes.get("expires_at", NOW + timedelta(days=365)),
    )
    return issue_identity_sd_jwt(request, issuer_key)


def _lookup(issuer_key: IssuerSigningKey):
    def lookup(iss, header):
        return issuer_key.key if iss == ISSUER and header.get("kid") == issuer_key.kid else None

    return lookup


def _over_20_only(path, value) -> bool:
    return path == ["age_equal_or_over", "20"]


def _card_signer(card_key: rsa.RSAPrivateKey) -> KeyBindingSigner:
    # What the card does: PKCS#1 v1.5 over a DigestInfo it is handed.
    return KeyBindingSigner.card(software_sign_digest_info(card_key))


def _rsa_jwk(card_key: rsa.RSAPrivateKey) -> dict:
    return RSAKey.import_key(card_key.public_key()).as_dict(private=False)


def _reference_verify(issuer_key: IssuerSigningKey, presentation: str, **kwargs) -> dict:
    public = JWK.from_json(json.dumps(issuer_key.key.as_dict(private=False)))
    verifier = SDJWTVerifier(presentation, lambda iss, header: public, **kwargs)
    return verifier.get_verified_payload()


def test_the_reference_library_verifies_an_issued_credential_and_a_wallet_presentation(
    issuer_key, wallet_key
):
    credential = _issue(issuer_key, wallet_key.as_dict(private=False))
    every = _reference_verify(issuer_key, credential)
    assert every["name"] == "山田 太郎"
    assert every["birthdate"] == "2005-04-02"
    assert every["age_equal_or_over"] == {"18": True, "20": True}
    assert every["vct"] == JPKI_IDENTITY_VCT
    assert "serial" not in json.dumps(every)
    presented = present(
        credential,
        disclose=_over_20_only,
        signer=KeyBindingSigner.wallet(wallet_key),
        audience=AUDIENCE,
        nonce="n-1",
        issued_at=NOW,
    )
    shown = _reference_verify(issuer_key, presented, expected_aud=AUDIENCE, expected_nonce="n-1")
    assert shown["age_equal_or_over"] == {"20": True}
    assert "birthdate" not in shown and "name" not in shown
    ours = verify(
        presented,
        issuer_key=_lookup(issuer_key),
        at=NOW,
        vct=JPKI_IDENTITY_VCT,
        key_binding=KeyBindingCheck(AUDIENCE, "n-1"),
    )
    assert ours.valid, ours
    assert ours.claims["age_equal_or_over"] == {"20": True}
    assert ours.holder_binding == "wallet" and ours.key_bound


def test_a_card_bound_presentation_verifies_with_the_reference_library_and_jwcrypto(
    issuer_key, card_key
):
    credential = _issue(issuer_key, _rsa_jwk(card_key))
    presented = present(
        credential,
        disclose=_over_20_only,
        signer=_card_signer(card_key),
        audience=AUDIENCE,
        nonce="n-2",
        issued_at=NOW,
    )
    # The reference library checks only ES256 key binding: it checks the issuer-signed
    # part and the disclosures, and jwcrypto the RS256 key binding JWT against cnf.jwk.
    shown = _reference_verify(issuer_key, presented)
    key_binding = split(presented).key_binding_jwt
    token = JWS()
    token.deserialize(key_binding)
    token.verify(JWK.from_json(json.dumps(shown["cnf"]["jwk"])), alg="RS256")
    assert json.loads(token.payload)["sd_hash"] == digest(presented[: presented.rindex("~") + 1])
    ours = verify(
        presented,
        issuer_key=_lookup(issuer_key),
        at=NOW,
        key_binding=KeyBindingCheck(AUDIENCE, "n-2"),
    )
    assert ours.valid and ours.holder_binding == "card"


def _wallet_presentation(issuer_key, wallet_key, credential=None, **kwargs) -> str:
    credential = credential or _issue(issuer_key, wallet_key.as_dict(private=False))
    return present(
        credential,
        disclose=kwargs.pop("disclose", _over_20_only),
        signer=KeyBindingSigner.wallet(kwargs.pop("holder", wallet_key)),
        audience=kwargs.pop("audience", AUDIENCE),
        nonce=kwargs.pop("nonce", "n-3"),
        issued_at=kwargs.pop("issued_at", NOW),
    )


def _ours(issuer_key, presentation, *, at=NOW, nonce="n-3", audience=AUDIENCE):
    return verify(
        presentation,
        issuer_key=_lookup(issuer_key),
        at=at,
        vct=JPKI_IDENTITY_VCT,
        key_binding=KeyBindingCheck(audience, nonce),
    ).reason


def _tamper_disclosure(presentation: str) -> str:
    parts = presentation.split("~")
    decoded = json.loads(base64.urlsafe_b64decode(parts[1] + "=="))
    decoded[-1] = False
    parts[1] = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode("ascii")
    return "~".join(parts)


def test_our_verifier_refuses_each_kind_of_bad_presentation(issuer_key, wallet_key):
    good = _wallet_presentation(issuer_key, wallet_key)
    assert _ours(issuer_key, good) is SdJwtReason.VALID
    # A changed disclosure: its digest is not in the credential.
    assert _ours(issuer_key, _tamper_disclosure(good)) is SdJwtReason.DISCLOSURE_INVALID
    # A disclosure taken from another credential of the same issuer.
    other = _issue(issuer_key, wallet_key.as_dict(private=False))
    foreign = next(
        part
        for part in split(other).disclosures
        if "name" in base64.urlsafe_b64decode(part + "==").decode()
    )
    parts = split(good)
    mixed_in = "~".join([parts.issuer_jwt, *parts.disclosures, foreign, ""])
    assert _ours(issuer_key, mixed_in + parts.key_binding_jwt) in {SdJwtReason.DISCLOSURE_INVALID}
    # Wrong nonce, wrong audience, no key binding, a key that is not cnf's.
    assert _ours(issuer_key, good, nonce="other") is SdJwtReason.NONCE_MISMATCH
    assert _ours(issuer_key, good, audience="x") is SdJwtReason.AUDIENCE_MISMATCH
    assert _ours(issuer_key, parts.without_key_binding) is SdJwtReason.KEY_BINDING_MISSING
    thief = ECKey.generate_key("P-256", private=True)
    stolen = _wallet_presentation(issuer_key, wallet_key, holder=thief)
    assert _ours(issuer_key, stolen) is SdJwtReason.KEY_BINDING_INVALID
    # An old key binding JWT, and an expired credential.
    assert _ours(issuer_key, good, at=NOW + timedelta(hours=1)) is SdJwtReason.KEY_BINDING_INVALID
    short = _issue(
        issuer_key, wallet_key.as_dict(private=False), expires_at=NOW + timedelta(minutes=1)
    )
    late = NOW + timedelta(hours=1)
    expired = _wallet_presentation(issuer_key, wallet_key, short, issued_at=late)
    assert _ours(issuer_key, expired, at=late) is SdJwtReason.EXPIRED
    # A changed payload byte breaks the issuer signature; another issuer is untrusted.
    payload = parts.issuer_jwt.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=="))
    claims["vct"] = "urn:other"
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).rstrip(b"=").decode()
    forged = good.replace(payload, forged_payload)
    assert _ours(issuer_key, forged) is SdJwtReason.INVALID_PROOF
    stranger_key = ECKey.generate_key("P-256", private=True)
    stranger = IssuerSigningKey(stranger_key, issuer_key.kid)
    assert (
        _ours(issuer_key, _wallet_presentation(issuer_key, wallet_key, _issue(stranger, {})))
        is SdJwtReason.INVALID_PROOF
    )
    assert _ours(issuer_key, "garbage") is SdJwtReason.MALFORMED


def test_a_wrong_vct_is_refused(issuer_key, wallet_key):
    presented = _wallet_presentation(issuer_key, wallet_key)
    outcome = verify(
        presented,
        issuer_key=_lookup(issuer_key),
        at=NOW,
        vct="urn:eudi:pid:1",
        key_binding=KeyBindingCheck(AUDIENCE, "n-3"),
    )
    assert outcome.reason is SdJwtReason.WRONG_VCT


def test_every_copy_has_its_own_salts_and_decoys(issuer_key, wallet_key):
    first = _issue(issuer_key, wallet_key.as_dict(private=False))
    second = _issue(issuer_key, wallet_key.as_dict(private=False))
    assert not set(split(first).disclosures) & set(split(second).disclosures)
    payload = json.loads(base64.urlsafe_b64decode(first.split(".")[1] + "=="))
    # 4 claims plus 1-3 decoys at the top: the number of claims is not given away.
    assert len(payload["_sd"]) > 4


def test_age_is_computed_on_the_day_of_issue(issuer_key, wallet_key):
    on_birthday_eve = datetime(2025, 4, 1, tzinfo=UTC)
    credential = _issue(
        issuer_key,
        wallet_key.as_dict(private=False),
        issued_at=on_birthday_eve,
        expires_at=on_birthday_eve + timedelta(days=1),
    )
    assert _reference_verify(issuer_key, credential)["age_equal_or_over"] == {
        "18": True,
        "20": False,
    }
    on_birthday = on_birthday_eve + timedelta(days=1)
    credential = _issue(
        issuer_key,
        wallet_key.as_dict(private=False),
        issued_at=on_birthday,
        expires_at=on_birthday + timedelta(days=1),
    )
    assert _reference_verify(issuer_key, credential)["age_equal_or_over"]["20"] is True
