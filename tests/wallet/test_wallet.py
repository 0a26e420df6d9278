"""Wallet credentials end to end over real HTTP (uvicorn on a TCP port), on both databases:
a kiosk verification, its OpenID4VCI offer taken by the reference holder, a provider's
OpenID4VP request for "over 20" answered without the birth date, the token status list
after a suspension and after the signature certificate is revoked, and the refusals."""

from __future__ import annotations

import base64
import json
import urllib.parse
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from fastapi.testclient import TestClient
from joserfc import jws
from joserfc.jwk import ECKey
from jwcrypto.jwk import JWK
from sd_jwt.verifier import SDJWTVerifier

from commonid.revocations import refresh_and_apply
from commonid.runtime import Runtime
from commonid.wallet.holder import Holder, WalletError, WalletFile
from did.sd_jwt import KeyBindingSigner, present, split, unverified_payload
from did.token_status import StatusLookup, check_token_status
from jpki.testca import Hierarchy, IssuedPerson
from tests.did.conftest import software_sign_digest_info
from tests.fixtures.jpki import make_person
from tests.fixtures.service import ServiceAccounts
from tests.service.flow_helpers import CardKeys, bearer

from .helpers import (
    OVER_20,
    WalletService,
    ask_over_20,
    offer_for,
    reference_verifies,
    result_of,
    verified_at_kiosk,
)


@pytest.fixture
def person(test_hierarchy: Hierarchy) -> IssuedPerson:
    return make_person(test_hierarchy, name="鈴木\u3000一郎")


def test_issue_over_openid4vci_and_prove_over_20_over_openid4vp(
    wallet_service: WalletService, wallet_accounts: ServiceAccounts, person: IssuedPerson, tmp_path
) -> None:
    service = wallet_service
    session_id = verified_at_kiosk(service, wallet_accounts, CardKeys(person))
    offer = offer_for(service, wallet_accounts, session_id)
    assert offer["offer_uri"].startswith("openid-credential-offer://?credential_offer=")
    assert "<svg" in offer["qr_svg"] and len(offer["tx_code"]) == 6
    # One offer per session.
    again = service.http.post(
        f"/v1/kiosk/sessions/{session_id}/credential-offer",
        headers=bearer(wallet_accounts.kiosk_credential),
    )
    assert again.status_code == 409 and again.json()["code"] == "credential_offer_exists"

    holder = Holder(WalletFile.open(tmp_path / "wallet.json"), httpx.Client(timeout=30))
    with pytest.raises(WalletError) as wrong:
        holder.receive(offer["offer_uri"], "000000" if offer["tx_code"] != "000000" else "111111")
    assert wrong.value.code == "invalid_grant"
    stored = holder.receive(offer["offer_uri"], offer["tx_code"], copies=3)
    assert len(stored) == 3
    # The code is spent.
    with pytest.raises(WalletError):
        holder.receive(offer["offer_uri"], offer["tx_code"])

    # Every copy verifies with the reference library; distinct keys and salts.
    payloads = [reference_verifies(service, record["credential"]) for record in stored]
    assert {p["name"] for p in payloads} == {"鈴木\u3000一郎"}
    assert payloads[0]["age_equal_or_over"] == {"18": True, "20": True}
    assert len({json.dumps(p["cnf"], sort_keys=True) for p in payloads}) == 3
    assert len({p["status"]["status_list"]["idx"] for p in payloads}) == 3
    disclosures = [set(split(r["credential"]).disclosures) for r in stored]
    assert not disclosures[0] & disclosures[1]
    assert "serial" not in json.dumps(payloads[0])
    sign_not_after = person.sign_certificate.not_valid_after_utc.timestamp()
    assert payloads[0]["exp"] <= sign_not_after

    # Provider B asks for "over 20" only; the person's wallet answers.
    request = ask_over_20(service, wallet_accounts.provider_b_key)
    assert request["authorization_request"].startswith("openid4vp://?client_id=redirect_uri%3A")
    holder.present(request["authorization_request"])
    result = result_of(service, wallet_accounts.provider_b_key, request["id"])
    assert result["status"] == "verified", result
    shown = result["credentials"]["identity"]
    assert shown["claims"] == {"age_equal_or_over": {"20": True}}
    assert "birthdate" not in json.dumps(shown) and "鈴木" not in json.dumps(shown)
    assert shown["holder_binding"] == "wallet" and shown["status"] == "valid"
    assert shown["key_binding"] == {"nonce": True, "audience": True, "sd_hash": True}
    # The audit log says what was asked and how it ended: names and codes, no values.
    logged = {
        kind: [json.loads(e.entry)["data"] for e in service.runtime.audit.entries(event_type=kind)]
        for kind in ("presentation.requested", "presentation.answered")
    }
    assert logged["presentation.requested"][0]["age_equal_or_over"] is True
    assert logged["presentation.requested"][0]["claims"] == []
    assert logged["presentation.answered"][0]["outcome"] == "verified"
    assert logged["presentation.answered"][0]["holder_binding"] == "wallet"
    # Provider A cannot read provider B's request.
    other = service.http.get(
        f"/v1/presentation-requests/{request['id']}",
        headers=bearer(wallet_accounts.provider_a_key),
    )
    assert other.status_code == 404
    # The next presentation uses another copy (another key).
    request_2 = ask_over_20(service, wallet_accounts.provider_b_key)
    holder.present(request_2["authorization_request"])
    assert sorted(r["presented"] for r in holder.wallet.credentials) == [0, 1, 1]
    # Answering a request twice: the nonce is spent.
    with pytest.raises(WalletError) as stale:
        holder.present(request_2["authorization_request"])
    assert stale.value.code in {"presentation_request_expired", "invalid_request"}


def vp_token_for(holder: Holder, request: dict, card=None) -> tuple[str, dict]:  # type: ignore[no-untyped-def]
    """What the holder would post for ``request`` (without posting it)."""
    posted: dict = {}
    real_post = holder.http.post

    def capture(url, data=None, **kwargs):  # type: ignore[no-untyped-def]
        if data and "vp_token" in data:
            posted.update(data)
            return httpx.Response(200, json={})
        return real_post(url, data=data, **kwargs)

    holder.http.post = capture  # type: ignore[method-assign]
    try:
        holder.present(request["authorization_request"], card=card)
    finally:
        holder.http.post = real_post  # type: ignore[method-assign]
    return posted["vp_token"], posted


def test_replayed_or_tampered_answers_and_revoked_credentials_are_refused_with_codes(
    wallet_service: WalletService,
    wallet_accounts: ServiceAccounts,
    person: IssuedPerson,
    test_hierarchy: Hierarchy,
    tmp_path: Path,
) -> None:
    service = wallet_service
    session_id = verified_at_kiosk(service, wallet_accounts, CardKeys(person))
    offer = offer_for(service, wallet_accounts, session_id)
    holder = Holder(WalletFile.open(tmp_path / "wallet.json"), httpx.Client(timeout=30))
    (stored,) = holder.receive(offer["offer_uri"], offer["tx_code"])
    provider_b = wallet_accounts.provider_b_key

    first = ask_over_20(service, provider_b)
    vp_token, first_form = vp_token_for(holder, first)
    assert service.http.post("/oid4vp/response", data=first_form).status_code == 200
    # The same answer again: the request's nonce is spent.
    again = service.http.post("/oid4vp/response", data=first_form)
    assert again.status_code == 400 and again.json()["error_description"] == "nonce_stale"
    assert result_of(service, provider_b, first["id"])["status"] == "verified"
    # Replayed to another request: the key binding JWT's nonce is the first request's.
    second = ask_over_20(service, provider_b)
    second_state = service.http.get(f"/oid4vp/requests/{second['id']}").text.split(".")[1]
    state = json.loads(base64.urlsafe_b64decode(second_state + "=="))["state"]
    refused = service.http.post("/oid4vp/response", data={"vp_token": vp_token, "state": state})
    assert refused.status_code == 400
    assert refused.json()["error_description"] == "key_binding_nonce_mismatch"
    assert result_of(service, provider_b, second["id"])["reason_code"] == (
        "key_binding_nonce_mismatch"
    )

    # An undisclosed required claim: the query wants the name, the wallet sends none.
    name_query = json.loads(json.dumps(OVER_20))
    name_query["credentials"][0]["claims"] = [{"path": ["name"]}]
    third = ask_over_20(service, provider_b, name_query)
    third_claims = json.loads(
        base64.urlsafe_b64decode(
            service.http.get(f"/oid4vp/requests/{third['id']}").text.split(".")[1] + "=="
        )
    )
    key = ECKey.import_key(holder.wallet.keys[stored["kid"]])
    without_name = present(
        stored["credential"],
        disclose=lambda path, value: path == ["age_equal_or_over", "20"],
        signer=KeyBindingSigner.wallet(key),
        audience=third_claims["client_id"],
        nonce=third_claims["nonce"],
        issued_at=service.runtime.clock(),
    )
    answer = service.http.post(
        "/oid4vp/response",
        data={"vp_token": json.dumps({"identity": [without_name]}), "state": third_claims["state"]},
    )
    assert answer.json()["error_description"] == "claim_not_disclosed"

    # POST /v1/credentials/verify takes the SD-JWT VC a provider holds.
    verify = service.http.post(
        "/v1/credentials/verify",
        json={"credential": stored["credential"]},
        headers=bearer(provider_b),
    )
    assert verify.status_code == 200 and verify.json()["valid"] is True
    assert verify.json()["format"] == "dc+sd-jwt"
    assert verify.json()["disclosed_claims"]["name"] == "鈴木\u3000一郎"

    # Suspended by an administrator: the token status list says so; then reinstated.
    status = unverified_payload(split(stored["credential"]).issuer_jwt)["status"]
    (issued_event,) = [
        json.loads(e.entry)["data"]
        for e in service.runtime.audit.entries(event_type="wallet.credential_issued")
    ]
    admin = {"Authorization": "Bearer admin-secret-for-tests"}
    credential_id = issued_event["credential_id"]
    suspend = service.http.post(
        f"/v1/admin/wallet-credentials/{credential_id}/suspend", headers=admin
    )
    assert suspend.status_code == 200 and suspend.json()["status"] == "suspended"
    assert _list_status(service, status) is StatusLookup.SUSPENDED
    assert _verify_code(service, stored["credential"], provider_b) == "credential_suspended"
    service.http.post(f"/v1/admin/wallet-credentials/{credential_id}/reinstate", headers=admin)
    assert _list_status(service, status) is StatusLookup.VALID

    # The person moves: J-LIS revokes the signature certificate; the status flips.
    moved = replace(person.record, address="大阪府大阪市北区梅田一丁目1番1号")
    test_hierarchy.change(person.person_id, moved)
    refresh_and_apply(service.runtime)
    assert _list_status(service, status) is StatusLookup.INVALID
    assert _verify_code(service, stored["credential"], provider_b) == "credential_revoked"
    fourth = ask_over_20(service, provider_b)
    with pytest.raises(WalletError) as revoked:
        holder.present(fourth["authorization_request"])
    assert revoked.value.args[0].startswith("credential_revoked")
    # Revocation is final: no reinstating it.
    reinstate = service.http.post(
        f"/v1/admin/wallet-credentials/{credential_id}/reinstate", headers=admin
    )
    assert reinstate.status_code == 409
    # Past the signature certificate's notAfter the credential is expired, whatever else.
    service.runtime.clock.advance(timedelta(days=6 * 366))
    assert _verify_code(service, stored["credential"], provider_b) == "credential_expired"


def _list_status(service: WalletService, status: dict) -> StatusLookup:
    metadata = service.http.get("/.well-known/jwt-vc-issuer").json()

    def key_for(header: dict) -> ECKey:
        (jwk,) = [k for k in metadata["jwks"]["keys"] if k["kid"] == header["kid"]]
        return ECKey.import_key(jwk)

    def fetch(uri: str) -> str:
        response = service.http.get(uri)
        assert response.headers["content-type"] == "application/statuslist+jwt"
        return response.text

    return check_token_status(status, fetch=fetch, issuer_key=key_for, at=service.runtime.clock())


def _verify_code(service: WalletService, credential: str, provider_key: str) -> str:
    response = service.http.post(
        "/v1/credentials/verify", json={"credential": credential}, headers=bearer(provider_key)
    )
    assert response.status_code == 200, response.text
    return response.json()["reason"]


BAD_INPUTS = [
    (
        "post",
        "/oid4vci/token",
        {"content": b"\xff\xfe", "headers": {"content-type": "application/x-www-form-urlencoded"}},
    ),
    ("post", "/oid4vci/token", {"data": {"grant_type": "authorization_code"}}),
    (
        "post",
        "/oid4vci/token",
        {
            "data": {
                "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
                "pre-authorized_code": "nope",
                "tx_code": "1",
            }
        },
    ),
    ("post", "/oid4vci/token", {"json": {"x": 1}}),
    ("post", "/oid4vci/credential", {"json": {}}),
    ("post", "/oid4vci/credential", {"content": b"{", "headers": {"authorization": "Bearer x"}}),
    (
        "post",
        "/oid4vci/credential",
        {"json": {"proofs": {"jwt": ["a.b.c"]}}, "headers": {"authorization": "Bearer x"}},
    ),
    ("post", "/oid4vp/response", {"data": {"vp_token": "{}", "state": "unknown"}}),
    ("post", "/oid4vp/response", {"data": {"vp_token": "not json"}}),
    ("get", "/oid4vp/requests/vpr_unknown", {}),
    ("get", "/oid4vp/requests/..%2F..%2Fetc", {}),
    ("get", "/v1/token-status-lists/tsl-99", {}),
    ("get", "/v1/token-status-lists/other", {}),
]


@pytest.mark.parametrize(("method", "path", "kwargs"), BAD_INPUTS)
def test_bad_input_to_the_wallet_endpoints_is_a_4xx_with_a_code(
    wallet_service: WalletService, method: str, path: str, kwargs: dict
) -> None:
    response = getattr(wallet_service.http, method)(path, **kwargs)
    assert 400 <= response.status_code < 500, response.text
    body = response.json()
    assert body.get("error") or body.get("code")


@pytest.fixture
def in_process(
    service_client: TestClient, service_runtime: Runtime, service_accounts: ServiceAccounts
) -> WalletService:
    """The same app through the ASGI interface (no port): for the key tests."""
    service = WalletService.__new__(WalletService)
    service.base_url, service.runtime, service.http = (
        service_runtime.settings.public_url,
        service_runtime,
        service_client,
    )
    return service


def _credential(service: WalletService, accounts: ServiceAccounts, person: IssuedPerson, tmp_path):  # type: ignore[no-untyped-def]
    session_id = verified_at_kiosk(service, accounts, CardKeys(person))
    offer = offer_for(service, accounts, session_id)
    holder = Holder(WalletFile.open(tmp_path / "wallet.json"), service.http)
    (stored,) = holder.receive(offer["offer_uri"], offer["tx_code"])
    return stored["credential"]


def test_issuer_key_rotation_keeps_issued_credentials_verifiable(
    in_process: WalletService,
    service_accounts: ServiceAccounts,
    test_hierarchy: Hierarchy,
    tmp_path: Path,
) -> None:
    from commonid.oidc.keys import SigningKeys

    service = in_process
    # Two people (one person twice would be a renewal: the first credential superseded).
    before = _credential(
        service, service_accounts, make_person(test_hierarchy, name="前田\u3000一"), tmp_path
    )
    key_file = service.runtime.credential_issuer.path
    SigningKeys.load(key_file).rotated().save()  # `commonid credential-issuer rotate-key`
    after = _credential(
        service, service_accounts, make_person(test_hierarchy, name="後藤\u3000二"), tmp_path
    )
    kid = [
        json.loads(base64.urlsafe_b64decode(c.split(".")[0] + "=="))["kid"] for c in (before, after)
    ]
    assert kid[0] != kid[1]
    published = {
        k["kid"] for k in service.http.get("/.well-known/jwt-vc-issuer").json()["jwks"]["keys"]
    }
    assert set(kid) <= published
    for credential in (before, after):
        assert (
            reference_verifies(service, credential)["vct"]
            == OVER_20["credentials"][0]["meta"]["vct_values"][0]
        )
        assert _verify_code(service, credential, service_accounts.provider_b_key) == "valid"
    # The status list is signed with the new key and still verifies from the metadata.
    status = unverified_payload(split(before).issuer_jwt)["status"]
    assert _list_status(service, status) is StatusLookup.VALID


def test_with_a_certificate_chain_credentials_carry_x5c_that_verifies(
    in_process: WalletService,
    service_accounts: ServiceAccounts,
    test_hierarchy: Hierarchy,
    tmp_path: Path,
) -> None:
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store

    from commonid.openid4vc.issuer_keys import CredentialIssuerKeys, IssuerChainError

    service = in_process
    issuer_keys = service.runtime.credential_issuer
    root, leaf = _issuer_chain(issuer_keys.file.keys().current, service.base_url)
    chain = tmp_path / "issuer-chain.pem"
    chain.write_bytes(b"".join(c.public_bytes(Encoding.PEM) for c in (leaf, root)))
    settings = service.runtime.settings.model_copy(
        update={"credential_issuer_certificate_chain": chain}
    )
    service.runtime.credential_issuer = CredentialIssuerKeys.from_settings(settings)
    credential = _credential(service, service_accounts, make_person(test_hierarchy), tmp_path)
    header = json.loads(base64.urlsafe_b64decode(credential.split(".")[0] + "=="))
    certificates = [x509.load_der_x509_certificate(base64.b64decode(c)) for c in header["x5c"]]
    # A verifier that trusts the root, not the metadata: the chain, then the leaf's key.
    verifier = (
        PolicyBuilder().store(Store([root])).time(service.runtime.clock()).build_client_verifier()
    )
    verified = verifier.verify(certificates[0], certificates[1:])
    assert service.base_url in [str(s.value) for s in verified.subjects]
    leaf_jwk = JWK.from_pem(
        certificates[0].public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    payload = SDJWTVerifier(credential, lambda iss, hdr: leaf_jwk).get_verified_payload()
    assert payload["iss"] == service.base_url
    # A chain for another key is refused at start-up.
    _, other_leaf = _issuer_chain(ECKey.generate_key("P-256", private=True), service.base_url)
    chain.write_bytes(other_leaf.public_bytes(Encoding.PEM))
    with pytest.raises(IssuerChainError):
        CredentialIssuerKeys.from_settings(settings)


def _issuer_chain(key: ECKey, issuer_url: str):  # type: ignore[no-untyped-def]
    """A test CA and a certificate for the issuer key naming the issuer URL."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Common-ID test issuer CA")])
    root = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    public = key.get_op_key("verify")
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Common-ID issuer")]))
        .issuer_name(ca_name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=90))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(issuer_url)]),
            critical=False,
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    return root, leaf


class _SoftwareRsaKey:
    """An RSA key that is not the person's card (what a forger would bring)."""

    def __init__(self) -> None:
        from cryptography.hazmat.primitives.asymmetric import rsa

        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def public_jwk(self) -> dict:
        from joserfc.jwk import RSAKey

        return RSAKey.import_key(self.key.public_key()).as_dict(private=False)

    def sign_digest_info(self, digest_info: bytes) -> bytes:
        return software_sign_digest_info(self.key)(digest_info)


def test_proofs_of_possession_are_refused_with_codes(
    in_process: WalletService,
    service_accounts: ServiceAccounts,
    test_hierarchy: Hierarchy,
    tmp_path: Path,
) -> None:
    service = in_process
    person = make_person(test_hierarchy, name="村上\u3000四郎")

    def fresh_offer() -> dict:
        return offer_for(
            service,
            service_accounts,
            verified_at_kiosk(service, service_accounts, CardKeys(person)),
        )

    holder = Holder(WalletFile.open(tmp_path / "wallet.json"), service.http)
    # An RSA key that is not the card the person verified with.
    offer = fresh_offer()
    with pytest.raises(WalletError) as forged:
        holder.receive(offer["offer_uri"], offer["tx_code"], card=_SoftwareRsaKey())
    assert forged.value.code == "invalid_proof" and "card" in str(forged.value)
    # More copies than the batch size.
    offer = fresh_offer()
    with pytest.raises(WalletError) as too_many:
        holder.receive(offer["offer_uri"], offer["tx_code"], copies=5)
    assert too_many.value.code == "invalid_credential_request"
    # A proof for another audience, and a nonce the service never gave out.
    offer = fresh_offer()
    grant = json.loads(
        urllib.parse.parse_qs(urllib.parse.urlsplit(offer["offer_uri"]).query)["credential_offer"][
            0
        ]
    )["grants"]["urn:ietf:params:oauth:grant-type:pre-authorized_code"]
    token = service.http.post(
        "/oid4vci/token",
        data={
            "grant_type": "urn:ietf:params:oauth:grant-type:pre-authorized_code",
            "pre-authorized_code": grant["pre-authorized_code"],
            "tx_code": offer["tx_code"],
        },
    ).json()["access_token"]
    key = ECKey.generate_key("P-256", private=True)
    nonce = service.http.post("/oid4vci/nonce").json()["c_nonce"]

    def ask(claims: dict) -> httpx.Response:
        header = {"alg": "ES256", "typ": "openid4vci-proof+jwt", "jwk": key.as_dict(private=False)}
        proof = jws.serialize_compact(header, json.dumps(claims).encode(), key)
        return service.http.post(
            "/oid4vci/credential",
            json={
                "credential_configuration_id": "jpki_identity_sd_jwt",
                "proofs": {"jwt": [proof]},
            },
            headers=bearer(token),
        )

    now = int(service.runtime.clock().timestamp())
    wrong_audience = ask({"aud": "https://elsewhere.example", "iat": now, "nonce": nonce})
    assert wrong_audience.status_code == 400 and wrong_audience.json()["error"] == "invalid_proof"
    unknown_nonce = ask({"aud": service.base_url, "iat": now, "nonce": "made-up"})
    assert unknown_nonce.json()["error"] == "invalid_nonce"
    old = ask({"aud": service.base_url, "iat": now - 3600, "nonce": nonce})
    assert old.json()["error"] == "invalid_proof"
    good = ask({"aud": service.base_url, "iat": now, "nonce": nonce})
    assert good.status_code == 200 and len(good.json()["credentials"]) == 1
    # The nonce and the access token are spent.
    assert ask({"aud": service.base_url, "iat": now, "nonce": nonce}).status_code == 401
