"""Credential benchmark: SD-JWT VC issuance and verification next to the W3C LDP path and
the JOSE floor, interleaved in one run (the machine's speed varies from day to day).

    .venv/bin/python bench/credentials.py                 # 5 rounds of 300 operations
    .venv/bin/python bench/credentials.py --rounds 3 --count 100

What is measured (one process, wall-clock, per second; rounds interleave the
paths so a slower minute hits them all alike; the median round is printed):

1. SD-JWT VC issue: the JPKI identity credential (4 disclosable claims, 2 age
   claims, decoys, ES256 issuer signature), did.identity_sd_jwt.
2. SD-JWT VC verify: our strict verifier over a wallet presentation ("over 20"
   disclosed, ES256 key binding JWT checked), did.sd_jwt.verify.
3. SD-JWT VC present: the holder's part (selecting disclosures, signing the
   key binding JWT).
4. W3C VC issue / verify: the identity credential with an Ed25519Signature2018
   proof through didkit (JSON-LD canonicalisation), status not fetched.
5. The JOSE floor: one ES256 signature verification (joserfc) over a payload
   of the credential's size; and one ES256 signature.

Ratios are against the floor of the same round: SD-JWT verification checks two
signatures (issuer and key binding), so about 2x the floor is its ceiling.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from joserfc import jws
from joserfc.jwk import ECKey

from did.credentials import (
    CertificateEvidence,
    Claim,
    IdentityCredentialRequest,
    RevocationEvidence,
    VerifiedClaims,
    issue_identity_credential,
    verify_identity_credential,
)
from did.identity_sd_jwt import (
    JPKI_IDENTITY_VCT,
    IdentitySdJwtRequest,
    VerificationEvidence,
    issue_identity_sd_jwt,
)
from did.keys import IssuerKeyring
from did.sd_jwt import IssuerSigningKey, KeyBindingCheck, KeyBindingSigner, present, verify
from did.status import CredentialStatusRefs, StatusRef
from did.token_status import status_reference

NOW = datetime.now(UTC)
AUDIENCE = "redirect_uri:https://commonid.example/oid4vp/response"
CLAIMS = VerifiedClaims(
    name="山田\u3000太郎",
    birthdate=date(1990, 4, 1),
    gender="male",
    address="東京都千代田区千代田一丁目1番1号",
)


def rate(operation: Callable[[], object], count: int) -> float:
    started = time.perf_counter()
    for _ in range(count):
        operation()
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--count", type=int, default=300, help="operations per path per round")
    args = parser.parse_args()

    issuer_key = ECKey.generate_key("P-256", private=True)
    signer = IssuerSigningKey(issuer_key, issuer_key.thumbprint())
    wallet_key = ECKey.generate_key("P-256", private=True)
    sd_request = IdentitySdJwtRequest(
        issuer="https://commonid.example",
        claims=CLAIMS,
        evidence=[VerificationEvidence("sign", "CN=JPKI Sign CA,C=JP", NOW)],
        holder_jwk=wallet_key.as_dict(private=False),
        status=status_reference("https://commonid.example/v1/token-status-lists/tsl-1", 7),
        issued_at=NOW,
        expires_at=NOW + timedelta(days=365),
    )
    credential = issue_identity_sd_jwt(sd_request, signer)

    def over_20(path: list[str], _value: object) -> bool:
        return path == ["age_equal_or_over", "20"]

    def presentation() -> str:
        return present(
            credential,
            disclose=over_20,
            signer=KeyBindingSigner.wallet(wallet_key),
            audience=AUDIENCE,
            nonce="n",
            issued_at=datetime.now(UTC),
        )

    presented = presentation()
    check = KeyBindingCheck(AUDIENCE, "n")

    def sd_verify() -> None:
        outcome = verify(
            presented,
            issuer_key=lambda iss, header: issuer_key,
            at=datetime.now(UTC),
            vct=JPKI_IDENTITY_VCT,
            key_binding=check,
        )
        assert outcome.valid, outcome

    with tempfile.TemporaryDirectory() as directory:
        keyring = IssuerKeyring.open(Path(directory) / "issuer.json")
        evidence = CertificateEvidence(
            "sign",
            "CN=JPKI Sign CA,C=JP",
            "ab" * 32,
            NOW + timedelta(days=900),
            NOW,
            RevocationEvidence("crl", "sha256:00", NOW, NOW),
        )
        w3c_request = IdentityCredentialRequest(
            subject_did="did:key:z4MXj1wBzi9jUstyPMS4jQqB6KdJaiatPkAtVtGc6bQEQEEsKTic4G7Rou3iBf9vPmT5dbkm9qsZsuVNjq8HCuW1w24nhBFGkRE4cd2Uf2tfrB3N7h4mnyPp1BF3ZttHTYv3DLUPi1zMdkULiow3M1GfXkoC6DoxDUm1jmN6GBj22SjVsr6dxezRVQc7aj9TxE7JLbMH1wh5X3kA58H3DFW8rnYMakFGbca5CB2Jf6CnGQZmL7o5uJAdTwXfy2iiiyPxXEGerMhHMhdJKqRmNnhkNhZ2uRwBgzG1eaSeWAMiLxRdBbEzx6FvoPLtsJuaUeuqtxBvaqGMGuMsbGwlbqnQ7SukzxqyDE4tYAosjSfAKyJ2w7yuR",
            claims=CLAIMS,
            consented_claims=frozenset(Claim),
            certificates=(evidence,),
            status=CredentialStatusRefs(
                StatusRef("https://commonid.example/v1/status-lists/r", 1),
                StatusRef("https://commonid.example/v1/status-lists/s", 2),
            ),
            issued_at=NOW,
        )
        w3c = issue_identity_credential(w3c_request, keyring).credential

        def no_status_list(url: str) -> dict:
            raise LookupError(url)

        def w3c_verify() -> None:
            # Status lists not fetched: the signature path alone, as the SD-JWT one is.
            outcome = verify_identity_credential(
                w3c, keyring, at=datetime.now(UTC), status_resolver=no_status_list
            )
            assert outcome.reason.value == "credential_status_unavailable", outcome

        payload = json.dumps({"credential": presented[:1500]}).encode()
        signed = jws.serialize_compact({"alg": "ES256"}, payload, issuer_key)

        paths: dict[str, Callable[[], object]] = {
            "SD-JWT VC issue": lambda: issue_identity_sd_jwt(sd_request, signer),
            "SD-JWT VC present (wallet key binding)": presentation,
            "SD-JWT VC verify (issuer + key binding)": sd_verify,
            "W3C VC issue (LDP, didkit)": lambda: issue_identity_credential(w3c_request, keyring),
            "W3C VC verify (LDP, didkit)": w3c_verify,
            "JOSE floor: ES256 sign": lambda: jws.serialize_compact(
                {"alg": "ES256"}, payload, issuer_key
            ),
            "JOSE floor: ES256 verify": lambda: jws.deserialize_compact(signed, issuer_key),
        }
        rounds: dict[str, list[float]] = {name: [] for name in paths}
        for number in range(args.rounds):
            for name, operation in paths.items():
                rounds[name].append(rate(operation, args.count))
            print(f"round {number + 1}/{args.rounds} done", file=sys.stderr)
    floor = statistics.median(rounds["JOSE floor: ES256 verify"])
    print(f"{'path':42} {'per second':>12} {'vs ES256 verify':>16}")
    for name, rates in rounds.items():
        median = statistics.median(rates)
        print(f"{name:42} {median:12.0f} {median / floor:16.2f}")


if __name__ == "__main__":
    main()
