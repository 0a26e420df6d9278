"""A small reference holder: receives SD-JWT VCs over OpenID4VCI, keeps them in a file,
and presents them over OpenID4VP. For tests, the demo and integrators; not a product.

Keys and credentials live in one JSON file (mode 0600) under the data directory.
Each copy of a credential bound to a wallet key has its own key, and the holder
presents the least used copy, so verifiers cannot link presentations by the
credential or the key. A card-bound copy is presented with a key binding JWT the
card signs (RS256) after its PIN: see :class:`CardKeyBinding`.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

import httpx
from joserfc.jwk import ECKey

from did.sd_jwt import (
    KeyBindingSigner,
    b64url_decode,
    present,
    select,
    split,
    unverified_payload,
)

WALLET_FORMAT = "commonid-reference-wallet/1"
PROOF_TYP = "openid4vci-proof+jwt"
PRE_AUTHORIZED_GRANT = "urn:ietf:params:oauth:grant-type:pre-authorized_code"


class WalletError(Exception):
    """What the holder could not do, with the server's error code when there is one."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(f"{message} ({code})" if code else message)
        self.code = code


class CardKeyBinding(Protocol):
    """The My Number Card's authentication key, after its PIN was verified once."""

    def public_jwk(self) -> dict[str, Any]: ...

    def sign_digest_info(self, digest_info: bytes) -> bytes: ...


class KioskKeyBinding:
    """A kiosk agent (or the agent on the person's computer) that has the card sign the
    key binding JWT: it shows the verifier and the claims, and asks for the PIN itself.
    The wallet never sees the PIN."""

    def __init__(self, agent_url: str, http: httpx.Client) -> None:
        self.agent_url = agent_url.rstrip("/")
        self.http = http

    def key_binding_jwt(self, presented: str, *, audience: str, nonce: str) -> str:
        response = self.http.post(
            f"{self.agent_url}/api/wallet/key-binding",
            json={"presented": presented, "audience": audience, "nonce": nonce},
            timeout=600,  # the person walks to the kiosk and enters the PIN
        )
        if response.status_code != 200:
            body = response.json() if response.content else {}
            raise WalletError(body.get("detail") or "refused", body.get("error", "kiosk"))
        return str(response.json()["key_binding_jwt"])


@dataclass
class WalletFile:
    path: Path
    keys: dict[str, dict[str, Any]]  # kid -> private JWK
    credentials: list[dict[str, Any]]

    @classmethod
    def open(cls, path: Path) -> WalletFile:
        if not path.exists():
            return cls(path, {}, [])
        document = json.loads(path.read_text())
        if document.get("format") != WALLET_FORMAT:
            raise WalletError(f"{path} is not a reference wallet file")
        return cls(path, document["keys"], document["credentials"])

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        partial = self.path.with_name(self.path.name + ".partial")
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(
                {"format": WALLET_FORMAT, "keys": self.keys, "credentials": self.credentials},
                out,
                ensure_ascii=False,
                indent=1,
            )
        os.replace(partial, self.path)

    def new_key(self) -> tuple[str, ECKey]:
        key = ECKey.generate_key("P-256", private=True)
        kid = key.thumbprint()
        self.keys[kid] = key.as_dict(private=True)
        return kid, key


def parse_offer(offer_uri: str, http: httpx.Client) -> dict[str, Any]:
    """The credential offer of an ``openid-credential-offer://`` link (by value or URI)."""
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(offer_uri).query)
    if "credential_offer" in query:
        return json.loads(query["credential_offer"][0])
    if "credential_offer_uri" in query:
        return _json(http.get(query["credential_offer_uri"][0]))
    raise WalletError("not a credential offer link")


def _json(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 400:
        try:
            body = response.json()
        except ValueError:
            body = {}
        code = body.get("error") or body.get("code") or str(response.status_code)
        raise WalletError(body.get("error_description") or body.get("detail") or "refused", code)
    return response.json()


class Holder:
    def __init__(
        self,
        wallet: WalletFile,
        http: httpx.Client,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.wallet = wallet
        self.http = http
        self.clock = clock

    # --- OpenID4VCI ---------------------------------------------------------

    def receive(
        self,
        offer_uri: str,
        tx_code: str,
        *,
        copies: int = 1,
        card: CardKeyBinding | None = None,
    ) -> list[dict[str, Any]]:
        """Take an offer: token, nonce, then ``copies`` credentials in one batch request,
        each bound to a new wallet key (or all to the card)."""
        offer = parse_offer(offer_uri, self.http)
        issuer = offer["credential_issuer"]
        metadata = _json(self.http.get(f"{issuer}/.well-known/openid-credential-issuer"))
        server = metadata.get("authorization_servers", [issuer])[0]
        token_endpoint = _json(self.http.get(f"{server}/.well-known/oauth-authorization-server"))[
            "token_endpoint"
        ]
        grant = offer["grants"][PRE_AUTHORIZED_GRANT]
        token = _json(
            self.http.post(
                token_endpoint,
                data={
                    "grant_type": PRE_AUTHORIZED_GRANT,
                    "pre-authorized_code": grant["pre-authorized_code"],
                    "tx_code": tx_code,
                },
            )
        )
        nonce = _json(self.http.post(metadata["nonce_endpoint"]))["c_nonce"]
        configuration = offer["credential_configuration_ids"][0]
        proofs, bindings = [], []
        for _ in range(copies):
            claims = {"aud": issuer, "iat": int(self.clock().timestamp()), "nonce": nonce}
            if card is not None:
                signer = KeyBindingSigner.card(card.sign_digest_info)
                jwk, binding = card.public_jwk(), {"binding": "card"}
            else:
                kid, key = self.wallet.new_key()
                signer = KeyBindingSigner.wallet(key)
                jwk, binding = key.as_dict(private=False), {"binding": "wallet", "kid": kid}
            header = {"alg": signer.algorithm, "typ": PROOF_TYP, "jwk": jwk}
            proofs.append(signer.sign_compact(header, claims))
            bindings.append(binding)
        issued = _json(
            self.http.post(
                metadata["credential_endpoint"],
                json={"credential_configuration_id": configuration, "proofs": {"jwt": proofs}},
                headers={"Authorization": f"Bearer {token['access_token']}"},
            )
        )
        stored = []
        for entry, binding in zip(issued["credentials"], bindings, strict=True):
            payload = unverified_payload(split(entry["credential"]).issuer_jwt)
            record = {
                "credential": entry["credential"],
                "issuer": payload.get("iss"),
                "vct": payload.get("vct"),
                "received_at": self.clock().isoformat(timespec="seconds"),
                "presented": 0,
                **binding,
            }
            self.wallet.credentials.append(record)
            stored.append(record)
        self.wallet.save()
        return stored

    # --- OpenID4VP ----------------------------------------------------------

    def fetch_request(self, authorization_request: str) -> dict[str, Any]:
        """The request object behind an ``openid4vp://`` link (or a bare request URI)."""
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(authorization_request).query)
        uri = query["request_uri"][0] if "request_uri" in query else authorization_request
        response = self.http.get(uri)
        if response.status_code >= 400:
            _json(response)
        header_part, claims_part, *_ = response.text.split(".")
        if json.loads(b64url_decode(header_part)).get("typ") != "oauth-authz-req+jwt":
            raise WalletError("not a request object")
        claims = json.loads(b64url_decode(claims_part))
        if "client_id" in query and query["client_id"][0] != claims.get("client_id"):
            raise WalletError("the request object is for another client")
        if not str(claims.get("client_id", "")).startswith("redirect_uri:") or claims.get(
            "response_uri"
        ) != str(claims["client_id"]).removeprefix("redirect_uri:"):
            raise WalletError("the response_uri is not the client's")
        return claims

    def present(
        self,
        authorization_request: str,
        *,
        card: CardKeyBinding | None = None,
        kiosk: KioskKeyBinding | None = None,
    ) -> dict[str, Any]:
        """Answer a request with the least used matching credential, disclosing only the
        claims its DCQL query names. A card-bound copy is signed by ``card`` (a reader
        here) or by the card at ``kiosk`` (the agent asks for the PIN)."""
        request = self.fetch_request(authorization_request)
        vp_token: dict[str, list[str]] = {}
        for query in request["dcql_query"]["credentials"]:
            wanted = [list(claim["path"]) for claim in query["claims"]]
            card_bound = card is not None or kiosk is not None
            record = self._choose(query["meta"]["vct_values"], card_bound)

            def disclose(path: list[str], _value: Any, wanted: list = wanted) -> bool:
                return any(w[: len(path)] == path or path[: len(w)] == w for w in wanted)

            if kiosk is not None:
                presented = select(record["credential"], disclose)
                vp_token[query["id"]] = [
                    presented
                    + kiosk.key_binding_jwt(
                        presented, audience=request["client_id"], nonce=request["nonce"]
                    )
                ]
            else:
                signer = (
                    KeyBindingSigner.card(card.sign_digest_info)
                    if card is not None
                    else KeyBindingSigner.wallet(ECKey.import_key(self.wallet.keys[record["kid"]]))
                )
                vp_token[query["id"]] = [
                    present(
                        record["credential"],
                        disclose=disclose,
                        signer=signer,
                        audience=request["client_id"],
                        nonce=request["nonce"],
                        issued_at=self.clock(),
                    )
                ]
            record["presented"] += 1
        self.wallet.save()
        response = self.http.post(
            request["response_uri"],
            data={"vp_token": json.dumps(vp_token), "state": request["state"]},
        )
        return _json(response)

    def _choose(self, vct_values: list[str], card_bound: bool) -> dict[str, Any]:
        candidates = [
            record
            for record in self.wallet.credentials
            if record["vct"] in vct_values and (record["binding"] == "card") == card_bound
        ]
        if not candidates:
            raise WalletError("no credential in this wallet fits the request")
        return min(candidates, key=lambda record: record["presented"])
