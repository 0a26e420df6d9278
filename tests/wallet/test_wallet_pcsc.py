"""A credential bound to the My Number Card, over the real PC/SC stack (the virtual card
in the vpcd reader behind pcscd): verified at the kiosk, the proof of possession and
every key binding JWT signed by the card after its PIN; without the card, no
presentation."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from jwcrypto.jwk import JWK
from jwcrypto.jws import JWS

from commonid.card_answer import answer_challenge
from commonid.client import KioskClient, ProviderClient
from commonid.wallet.card import JpkiCardBinding
from commonid.wallet.holder import Holder, WalletError, WalletFile
from did.sd_jwt import split
from jpki.testca import Hierarchy
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.jpki import make_person
from tests.service.test_lifecycle_pcsc import _card

from .helpers import WalletService, ask_over_20, offer_for, reference_verifies, result_of
from .test_wallet import vp_token_for

pytestmark = pytest.mark.pcsc


def test_a_card_bound_credential_is_issued_and_presented_with_the_card(
    wallet_service: WalletService,
    wallet_accounts,
    test_hierarchy: Hierarchy,
    pcsc_reader: str,
    tmp_path: Path,
) -> None:
    service = wallet_service
    person = make_person(test_hierarchy, name="小林\u3000三郎")
    provider_a = ProviderClient(service.base_url, wallet_accounts.provider_a_key)
    kiosk = KioskClient(service.base_url, wallet_accounts.kiosk_credential)
    holder = Holder(WalletFile.open(tmp_path / "wallet.json"), httpx.Client(timeout=30))
    with _card(test_hierarchy, person, pcsc_reader) as card:
        created = provider_a.create_session(mode="identity", claims=["name"], purpose="口座開設")
        shown = kiosk.session(created.user_code)
        kiosk.consent(shown.id)
        answer = answer_challenge(
            card, shown.challenge.to_be_signed, auth_pin=AUTH_PIN, sign_password=SIGN_PASSWORD
        )
        kiosk.submit_card_answer(shown.id, answer)
        assert provider_a.wait_for_result(created.id, timeout=5).status == "verified"
        offer = offer_for(service, wallet_accounts, shown.id)
        # The proofs of possession (two copies) signed by the card: one PIN entry.
        with JpkiCardBinding.open(card, AUTH_PIN) as binding:
            stored = holder.receive(offer["offer_uri"], offer["tx_code"], copies=2, card=binding)
            card_jwk = binding.public_jwk()
        assert [record["binding"] for record in stored] == ["card", "card"]
        payload = reference_verifies(service, stored[0]["credential"])
        assert payload["cnf"]["jwk"]["n"] == card_jwk["n"]

        request = ask_over_20(service, wallet_accounts.provider_b_key)
        with JpkiCardBinding.open(card, AUTH_PIN) as binding:
            vp_token, form = vp_token_for(holder, request, card=binding)
    # The card's RS256 key binding JWT verifies with jwcrypto against cnf.jwk (the
    # reference library checks only ES256 key binding).
    (presented,) = json.loads(vp_token)["identity"]
    key_binding = JWS()
    key_binding.deserialize(split(presented).key_binding_jwt)
    key_binding.verify(JWK.from_json(json.dumps(card_jwk)), alg="RS256")
    assert json.loads(key_binding.payload)["aud"].startswith("redirect_uri:")
    assert service.http.post("/oid4vp/response", data=form).status_code == 200
    result = result_of(service, wallet_accounts.provider_b_key, request["id"])
    assert result["status"] == "verified", result
    shown_claims = result["credentials"]["identity"]
    assert shown_claims["holder_binding"] == "card"
    assert shown_claims["claims"] == {"age_equal_or_over": {"20": True}}

    # Without the card the copy cannot be presented: a key binding JWT signed by any
    # other key (a thief's wallet key) is refused.
    holder.wallet.credentials[0]["binding"] = "wallet"
    holder.wallet.credentials[0]["kid"], _ = holder.wallet.new_key()
    request = ask_over_20(service, wallet_accounts.provider_b_key)
    with pytest.raises(WalletError) as refused:
        holder.present(request["authorization_request"])
    assert refused.value.args[0].startswith("key_binding_invalid")
