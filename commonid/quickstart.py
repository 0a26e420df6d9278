"""Provider quick start: create a session, print the user code, wait for the result.

    python -m commonid.quickstart --service http://127.0.0.1:8000 --api-key KEY \
        [--mode identity|auth] [--claims name,birthdate,address] [--reuse] \
        [--document consent --save-dir DIR]

This is what a provider's back end does, with the provider SDK
(:mod:`commonid.client`). The person types the user code at the kiosk.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from commonid.client import CommonIdError, ProviderClient


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m commonid.quickstart", description=__doc__)
    parser.add_argument("--service", default="http://127.0.0.1:8000")
    parser.add_argument("--api-key", required=True)
    parser.add_argument("--mode", choices=["identity", "auth"], default="identity")
    parser.add_argument("--claims", default="name,birthdate,address")
    parser.add_argument("--purpose", default="口座開設のための本人確認 (account opening)")
    parser.add_argument("--reuse", action="store_true", help="accept previously verified claims")
    parser.add_argument(
        "--document",
        choices=["consent"],
        help="identity mode: the person also signs the consent document with the card",
    )
    parser.add_argument(
        "--save-dir", type=Path, default=Path("."), help="where a signed document is saved"
    )
    parser.add_argument("--timeout", type=float, default=300)
    arguments = parser.parse_args(argv)

    with ProviderClient(arguments.service, arguments.api_key) as client:
        try:
            session = client.create_session(
                mode=arguments.mode,
                claims=[claim for claim in arguments.claims.split(",") if claim],
                purpose=arguments.purpose,
                reuse=arguments.reuse,
                document=arguments.document,
            )
        except CommonIdError as error:
            print(f"session refused: {error.code}: {error.detail}", file=sys.stderr)
            return 2
        print(f"User code: {session.user_code}   (session {session.id})")
        print(f"Waiting up to {arguments.timeout:.0f} s for the person at the kiosk ...")
        result = client.wait_for_result(session.id, timeout=arguments.timeout)
        for listed in result.documents:
            if not listed.get("released", True):
                # The PDF's certificate discloses more than was consented: the service's
                # signed statement on it comes instead (docs/documents.md).
                path = arguments.save_dir / f"{listed['id']}.verification.jws"
                path.write_text(listed["verification"])
                print(f"Signed document withheld; the service's verification saved: {path}")
                continue
            signed = client.download_document(session.id, listed["id"])
            path = arguments.save_dir / f"{signed.document_id}.pdf"
            path.write_bytes(signed.content)
            print(f"Signed document saved: {path} (SHA-256 {signed.sha256})")
    print(f"Status: {result.status}")
    if result.reason_code:
        print(f"Reason: {result.reason_code}")
    if result.sub:
        print(f"Pairwise subject id: {result.sub}")
    if result.verified_claims:
        # The provider asked for these claims and the person consented: show them.
        print(json.dumps(result.verified_claims, ensure_ascii=False, indent=2))
    return 0 if result.status in ("verified", "reuse_granted") else 1


if __name__ == "__main__":
    sys.exit(main())
