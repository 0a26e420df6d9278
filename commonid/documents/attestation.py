"""The service's signed word on a signed document, for a provider that may not have it.

A consent PDF signed at the kiosk embeds the signature certificate, which carries all
four basic attributes. A provider that was consented fewer receives, instead of the
PDF, this statement: a compact JWS (EdDSA, the service's issuer key, its did:key
verification method as ``kid``) saying which document was signed, when, that its
signature validated at acceptance, and under which CA, with the certificate's serial
only as a hash. Anyone holding the service's DID document verifies it.
"""

from __future__ import annotations

import json
from datetime import datetime

from joserfc import jws
from joserfc.jwk import OKPKey

from commonid.store.models import Certificate, SignedDocument
from did.credentials import certificate_serial_sha256
from did.keys import IssuerKeyring

STATEMENT_TYPE = "commonid-document-verification+jwt"


def document_attestation(
    keyring: IssuerKeyring,
    document: SignedDocument,
    certificate: Certificate | None,
    *,
    issued_at: datetime,
) -> str:
    """A JWS over what the service checked when it accepted ``document``."""
    assert document.signed_at is not None and document.sha256 is not None
    key = keyring.current
    claims = {
        "iss": key.did,
        "sub": document.session_id,
        "iat": int(issued_at.timestamp()),
        "document_id": document.id,
        "document_kind": document.kind,
        "document_sha256": document.sha256,
        "signed_at": document.signed_at.isoformat(),
        # Accepted means: one signature over the whole document, the certificate the
        # identity was verified with, valid under the JPKI policy at acceptance.
        "signature": "valid",
        "certificate": (
            {
                "issuer": certificate.issuer,
                "serial_sha256": certificate_serial_sha256(int(certificate.serial, 16)),
            }
            if certificate is not None
            else None
        ),
    }
    header = {"alg": "EdDSA", "typ": STATEMENT_TYPE, "kid": f"{key.did}#{key.fingerprint}"}
    private = OKPKey.import_key(json.loads(key.private_jwk))
    return jws.serialize_compact(
        header, json.dumps(claims, separators=(",", ":")), private, algorithms=["EdDSA"]
    )
