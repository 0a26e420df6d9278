"""The demo's phone: the reference wallet (commonid.wallet) playing the person's phone.

``w``: the phone "scans" the wallet offer the kiosk screen shows after a verified
identity (the kiosk agent's own screen state, read like the page reads it: the
QR code's link and the code printed beside it) and keeps two copies.
``p``: Demo Pay B asks, through the service's OpenID4VP verifier, for proof that
the person is 20 or over; the phone answers disclosing that alone, and Demo Pay
B's result is printed: the birth date is not in it.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx

from commonid.demo.world import DemoWorld
from commonid.wallet.holder import Holder, WalletError, WalletFile
from did.identity_sd_jwt import JPKI_IDENTITY_VCT

PHONE_COPIES = 2
OVER_20_QUERY = {
    "credentials": [
        {
            "id": "identity",
            "format": "dc+sd-jwt",
            "meta": {"vct_values": [JPKI_IDENTITY_VCT]},
            "claims": [{"path": ["age_equal_or_over", "20"]}],
        }
    ]
}


def _holder(world: DemoWorld, http: httpx.Client) -> Holder:
    return Holder(WalletFile.open(world.data_dir / "phone-wallet.json"), http)


def take_offer(world: DemoWorld, say: Callable[[str], None]) -> None:
    with httpx.Client(timeout=30) as http:
        state = http.get(f"{world.kiosk_url.rstrip('/')}/api/state").json()
        offer = (state.get("result") or {}).get("wallet_offer")
        if offer is None:
            say("Demo phone: the kiosk shows no wallet offer (verify with a, at the kiosk, first)")
            return
        try:
            stored = _holder(world, http).receive(
                offer["offer_uri"], offer["tx_code"], copies=PHONE_COPIES
            )
        except (WalletError, httpx.HTTPError) as error:
            say(f"Demo phone: the offer was not taken: {error}")
            return
    say(
        f"Demo phone: scanned the QR code, typed {offer['tx_code']}; {len(stored)} copies of "
        f"{stored[0]['vct']} saved in {world.data_dir / 'phone-wallet.json'}"
    )


def prove_over_20(world: DemoWorld, say: Callable[[str], None]) -> None:
    with httpx.Client(timeout=30) as http:
        headers = {"Authorization": f"Bearer {world.provider_keys['Demo Pay B']}"}
        created = http.post(
            f"{world.service_url}/v1/presentation-requests",
            json={"dcql_query": OVER_20_QUERY},
            headers=headers,
        )
        if created.status_code != 201:
            say(f"Demo Pay B: the request was not created: {created.text}")
            return
        request = created.json()
        link = request["authorization_request"]
        say(f"Demo Pay B asks the phone for: age_equal_or_over.20 ({link[:48]}...)")
        try:
            _holder(world, http).present(request["authorization_request"])
        except (WalletError, httpx.HTTPError) as error:
            say(f"Demo phone: not presented: {error}")
        result = http.get(
            f"{world.service_url}/v1/presentation-requests/{request['id']}", headers=headers
        ).json()
    line = f"Demo Pay B: presentation {request['id']} {result['status']}"
    if result.get("reason_code"):
        line += f"; reason {result['reason_code']}"
    for shown in result.get("credentials", {}).values():
        over_20 = shown["claims"].get("age_equal_or_over", {}).get("20")
        line += (
            f"; age_equal_or_over.20={over_20}; holder binding {shown['holder_binding']}; "
            f"disclosed: {', '.join(_paths(shown['claims']))} (no birth date)"
        )
    say(line)


def _paths(claims: dict, prefix: str = "") -> list[str]:
    paths = []
    for name, value in claims.items():
        if isinstance(value, dict):
            paths.extend(_paths(value, f"{prefix}{name}."))
        else:
            paths.append(f"{prefix}{name}")
    return paths
