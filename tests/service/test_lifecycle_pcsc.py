"""A card over the years, end to end over real HTTP with the virtual card in the vpcd
reader behind pcscd: verify, renew the card and land on the same record; move house,
see the provider's webhook and the refused reuse; verify again and see the new address
with the old one in the history; a renewal whose attributes differ makes a new record."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest

from commonid.card_answer import answer_challenge
from commonid.client import KioskClient, ProviderClient
from commonid.revocations import refresh_and_apply
from commonid.store import accounts
from commonid.store import webhooks as outbox
from commonid.webhooks import new_webhook_secret
from jpki.card import JPKICard
from jpki.emulator.card import VirtualMyNumberCard
from jpki.emulator.vpcd import VpcdBridge
from jpki.testca import Hierarchy, IssuedPerson
from jpki.transport import PcscTransport
from tests.fixtures.card import AUTH_PIN, SIGN_PASSWORD
from tests.fixtures.jpki import make_person
from tests.fixtures.pcsc import VPCD_PORT, wait_for_card_state
from tests.fixtures.service import LiveService, ServiceAccounts
from tests.kiosk.conftest import card_state_for

pytestmark = pytest.mark.pcsc
CLAIMS = ["name", "birthdate", "address"]


@contextmanager
def _card(hierarchy: Hierarchy, person: IssuedPerson, reader: str) -> Iterator[JPKICard]:
    """This person's card in the vpcd reader, reached through pcscd."""
    bridge = VpcdBridge(VirtualMyNumberCard(card_state_for(hierarchy, person)), port=VPCD_PORT)
    bridge.insert()
    transport = None
    try:
        wait_for_card_state(reader, present=True)
        transport = PcscTransport.connect(reader)
        yield JPKICard(transport)
    finally:
        if transport is not None:
            transport.close()
        bridge.remove()
        wait_for_card_state(reader, present=False)


def _session(
    provider: ProviderClient, kiosk: KioskClient, card: JPKICard, *, identity: bool
) -> tuple[str, object]:
    if identity:
        created = provider.create_session(mode="identity", claims=CLAIMS, purpose="口座開設")
    else:
        created = provider.create_session(mode="auth", reuse=True, claims=["name"], purpose="送金")
    shown = kiosk.session(created.user_code)
    kiosk.consent(shown.id)
    answer = answer_challenge(
        card,
        shown.challenge.to_be_signed,
        auth_pin=AUTH_PIN,
        sign_password=SIGN_PASSWORD if identity else None,
    )
    kiosk.submit_card_answer(shown.id, answer)
    return created.id, provider.wait_for_result(created.id, timeout=5)


def test_a_card_over_the_years_over_pcsc(
    live_service: LiveService,
    service_accounts: ServiceAccounts,
    test_hierarchy: Hierarchy,
    pcsc_reader: str,
) -> None:
    url = live_service.base_url
    runtime = live_service.runtime
    provider_a = ProviderClient(url, service_accounts.provider_a_key)
    provider_b = ProviderClient(url, service_accounts.provider_b_key)
    kiosk = KioskClient(url, service_accounts.kiosk_credential)
    person = make_person(test_hierarchy, name="伊藤\u3000花子")
    with runtime.sessions.begin() as db:  # provider A listens for webhooks
        provider = db.get(type(service_accounts.provider_a), service_accounts.provider_a.id)
        accounts.set_webhook(provider, "http://a.test/hooks", new_webhook_secret(), runtime.cipher)
    try:
        with _card(test_hierarchy, person, pcsc_reader) as card:
            _, first = _session(provider_a, kiosk, card, identity=True)
        assert first.status == "verified"

        # Renewal: new keys, new DID; the fresh verification proves the same 基本4情報.
        renewed = test_hierarchy.renew(person.person_id)
        with _card(test_hierarchy, renewed, pcsc_reader) as card:
            _, second = _session(provider_a, kiosk, card, identity=True)
        assert second.status == "verified" and second.sub == first.sub

        # A move: J-LIS revokes the signature certificate (affiliationChanged) and
        # issues one with the new address; the service learns it from the CRL.
        moved = dataclasses.replace(renewed.record, address="大阪府大阪市北区梅田一丁目1番1号")
        after_move = test_hierarchy.change(renewed.person_id, moved)
        report = refresh_and_apply(runtime)
        assert report.revoked_certificates >= 1
        with runtime.sessions() as db:
            told = [
                d.payload
                for d in outbox.deliveries_for(db, service_accounts.provider_a.id)
                if d.event_type == "identity.changed"
            ]
        assert {"sub": first.sub, "change": "attributes_changed", "certificate": "sign",
                "status": "reverification_required"} in told  # fmt: skip
        assert all(set(payload) == {"sub", "change", "certificate", "status"} for payload in told)
        identity = httpx.get(
            f"{url}/v1/identities/{first.sub}",
            headers={"Authorization": f"Bearer {service_accounts.provider_a_key}"},
        ).json()
        assert identity["status"] == "reverification_required"
        assert identity["reverification_reason"] == "attributes_changed"
        assert identity["verified_claims"] is None

        with _card(test_hierarchy, after_move, pcsc_reader) as card:
            _, refused = _session(provider_b, kiosk, card, identity=False)
            assert refused.status == "reverification_required"
            assert refused.reason_code == "sign_certificate_revoked"
            _, third = _session(provider_a, kiosk, card, identity=True)
        assert third.status == "verified" and third.sub == first.sub
        assert third.verified_claims["claims"]["address"]["formatted"].startswith("大阪府")
        identity = httpx.get(
            f"{url}/v1/identities/{first.sub}",
            headers={"Authorization": f"Bearer {service_accounts.provider_a_key}"},
        ).json()
        assert identity["status"] == "verified"
        addresses = [version["attributes"]["address"] for version in identity["history"]]
        assert addresses[0].startswith("大阪府") and addresses[-1].startswith("東京都")
        assert len(addresses) == 3  # three verifications, three records, newest first

        # Moved again and renewed before coming back: the new card's attributes differ
        # from the record's and nothing else links it, so it makes a new record.
        moved_again = dataclasses.replace(moved, address="福岡県福岡市中央区天神一丁目1番1号")
        changed = test_hierarchy.change(after_move.person_id, moved_again)
        stranger = test_hierarchy.renew(changed.person_id)
        with _card(test_hierarchy, stranger, pcsc_reader) as card:
            _, fourth = _session(provider_a, kiosk, card, identity=True)
        assert fourth.status == "verified" and fourth.sub != first.sub
    finally:
        provider_a.close()
        provider_b.close()
