"""OpenID Connect code flows per second, side by side with the REST flow, in one run.

    .venv/bin/python bench/oidc.py [--flows 200] [--rounds 3] [--postgres URL]

One service in this process (bench/in_process.py: a fresh database, one
provider registered both for the REST API and as an OpenID client with
client_secret_basic, one kiosk), driven through Starlette's test client, so
both doors pay the same client overhead. Rounds alternate REST and OIDC (this
machine's speed drifts; interleaving keeps the comparison fair). The card
step is pre-signed as in bench/service.py: the client signs the challenge with
the test person's key, outside the timed service work it cannot avoid.

- REST: create the session, the kiosk looks it up by user code, card response
  (with the consent), the provider reads the result: 4 requests.
- OIDC: PAR, authorize (request_uri), the sign-in page's status, the kiosk's
  lookup and card response, the status again (the redirect with the code),
  token (PKCE S256), userinfo: 8 requests.

Prints flows per second, CPU milliseconds per flow (this process: service and
client), requests, SQL statements and commits per flow, and the OIDC/REST ratio.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import secrets
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding
from fastapi.testclient import TestClient

sys.path.insert(0, str(Path(__file__).parent))

from in_process import InProcessService, in_process_service
from service import PERSON

from commonid.store import accounts
from commonid.store import oidc as oidc_store
from jpki.testca import Hierarchy, IssuedPerson

REDIRECT = "https://bench.example/cb"
WARM_UP = 20


@dataclass
class Door:
    name: str
    requests_per_flow: int
    wall: float = 0.0
    cpu: float = 0.0
    flows: int = 0
    statements: int = 0
    commits: int = 0


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _card_answer(card: IssuedPerson, challenge: dict[str, Any]) -> dict[str, Any]:
    encoded = challenge["to_be_signed"]
    signature = card.auth_private_key.sign(
        base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )
    return {
        "auth_certificate": base64.b64encode(
            card.auth_certificate.public_bytes(serialization.Encoding.DER)
        ).decode(),
        "auth_signature": base64.b64encode(signature).decode(),
        "consent": {},
    }


class Flows:
    def __init__(self, service: InProcessService, client: TestClient, card: IssuedPerson) -> None:
        self.service = service
        self.client = client
        self.card = card
        self.provider = {"Authorization": f"Bearer {service.provider_key}"}
        self.kiosk = {"Authorization": f"Bearer {service.kiosk_credential}"}
        with service.runtime.sessions.begin() as db:
            provider = accounts.provider_by_name_or_id(db, "Bench Pay")
            assert provider is not None
            registered, secret = oidc_store.add_client(
                db,
                provider_id=provider.id,
                redirect_uris=[REDIRECT],
                auth_method="client_secret_basic",
                jwks=None,
                jwks_uri=None,
                require_par=False,
                now=service.runtime.clock(),
            )
        assert secret is not None
        self.client_auth = (registered.client_id, secret)
        self.client_id = registered.client_id
        # Wall seconds and SQL statements per OIDC step (request), over the measured rounds.
        self.steps: dict[str, float] = {}
        self.step_statements: dict[str, int] = {}
        self.timing = False
        self._statements_seen = 0

    def _timed(self, step: str, started: float) -> float:
        now = time.perf_counter()
        statements = self.service.counts["statements"]
        if self.timing:
            self.steps[step] = self.steps.get(step, 0.0) + now - started
            spent = statements - self._statements_seen
            self.step_statements[step] = self.step_statements.get(step, 0) + spent
        self._statements_seen = statements
        return now

    def _kiosk_step(self, user_code: str) -> None:
        looked_up = self.client.get(f"/v1/kiosk/sessions/{user_code}", headers=self.kiosk)
        assert looked_up.status_code == 200, looked_up.text
        session = looked_up.json()
        answered = self.client.post(
            f"/v1/kiosk/sessions/{session['id']}/card-response",
            json=_card_answer(self.card, session["challenge"]),
            headers=self.kiosk,
        )
        assert answered.status_code == 200, answered.text

    def rest(self) -> None:
        created = self.client.post(
            "/v1/sessions",
            json={"mode": "auth", "claims": ["did"], "purpose": "bench"},
            headers=self.provider,
        )
        assert created.status_code == 201, created.text
        session = created.json()
        self._kiosk_step(session["user_code"])
        result = self.client.get(f"/v1/sessions/{session['id']}", headers=self.provider)
        assert result.json()["status"] == "verified", result.text

    def oidc(self) -> None:
        verifier = secrets.token_urlsafe(48)
        mark = time.perf_counter()
        self._statements_seen = self.service.counts["statements"]
        pushed = self.client.post(
            "/oidc/par",
            data={
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": REDIRECT,
                "scope": "openid",
                "state": secrets.token_urlsafe(8),
                "nonce": secrets.token_urlsafe(8),
                "code_challenge": _b64url(hashlib.sha256(verifier.encode()).digest()),
                "code_challenge_method": "S256",
            },
            auth=self.client_auth,
        )
        assert pushed.status_code == 201, pushed.text
        mark = self._timed("PAR", mark)
        request_uri = pushed.json()["request_uri"]
        query = urlencode({"client_id": self.client_id, "request_uri": request_uri})
        page = self.client.get(f"/oidc/authorize?{query}").headers["location"]
        mark = self._timed("authorize (creates the session)", mark)
        status = self.client.get(f"{page}/status").json()
        mark = self._timed("status (waiting)", mark)
        self._kiosk_step(status["user_code"])
        mark = self._timed("kiosk lookup + card response", mark)
        redirect = self.client.get(f"{page}/status").json()["redirect"]
        mark = self._timed("status (issues the code)", mark)
        code = parse_qs(urlsplit(redirect).query)["code"][0]
        token = self.client.post(
            "/oidc/token",
            data={
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": REDIRECT,
                "code_verifier": verifier,
            },
            auth=self.client_auth,
        )
        assert token.status_code == 200, token.text
        mark = self._timed("token (ID token signed)", mark)
        userinfo = self.client.get(
            "/oidc/userinfo",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
        )
        assert userinfo.status_code == 200 and "sub" in userinfo.json(), userinfo.text
        self._timed("userinfo", mark)


def _round(door: Door, run: Any, flows: int, service: InProcessService) -> None:
    service.counts.update(statements=0, commits=0)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(flows):
        run()
    door.cpu += time.process_time() - cpu
    door.wall += time.perf_counter() - wall
    door.flows += flows
    door.statements += service.counts["statements"]
    door.commits += service.counts["commits"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flows", type=int, default=200, help="flows per door per round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="PostgreSQL URL instead of SQLite")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-oidc-") as tmp:
        workdir = Path(tmp)
        hierarchy = Hierarchy.init(workdir / "hierarchy")
        card = hierarchy.issue_person(PERSON)
        with (
            in_process_service(workdir, workdir / "hierarchy", args.postgres) as service,
            TestClient(
                service.app, base_url="http://localhost:8000", follow_redirects=False
            ) as client,
        ):
            flows = Flows(service, client, card)
            for _ in range(WARM_UP):
                flows.rest()
                flows.oidc()
            rest, oidc = Door("REST", 4), Door("OIDC", 8)
            flows.timing = True
            for index in range(args.rounds):
                for door, run in ((rest, flows.rest), (oidc, flows.oidc))[:: 1 - 2 * (index % 2)]:
                    _round(door, run, args.flows, service)
                    print(
                        f"round {index + 1} {door.name}: "
                        f"{args.flows / (door.wall / (index + 1)):.1f} flows/s so far",
                        file=sys.stderr,
                    )
    database = "PostgreSQL" if args.postgres else "SQLite"
    print(f"{database}, {args.rounds} interleaved rounds of {args.flows} flows per door:")
    for door in (rest, oidc):
        print(
            f"  {door.name}: {door.flows / door.wall:.1f} flows/s; "
            f"CPU {door.cpu / door.flows * 1000:.2f} ms per flow (service and client); "
            f"{door.requests_per_flow} requests, "
            f"{door.statements / door.flows:.1f} SQL statements, "
            f"{door.commits / door.flows:.1f} commits per flow"
        )
    print(
        f"  OIDC/REST: {(oidc.flows / oidc.wall) / (rest.flows / rest.wall):.2f} "
        f"(flows/s), CPU per flow {oidc.cpu / oidc.flows / (rest.cpu / rest.flows):.2f}x"
    )
    steps = ", ".join(
        f"{step} {spent / oidc.flows * 1000:.2f} ms / "
        f"{flows.step_statements[step] / oidc.flows:.0f} SQL"
        for step, spent in flows.steps.items()
    )
    print(f"  OIDC per step: {steps}")


if __name__ == "__main__":
    main()
