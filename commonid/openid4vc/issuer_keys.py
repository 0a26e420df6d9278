"""The SD-JWT VC issuer's keys: ES256, rotated like the ID token keys, kept published
for as long as a credential they signed can live (the signature certificate's term)."""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from joserfc.jwk import ECKey

from commonid.oidc.keys import SigningKeysFile
from commonid.settings import Settings
from did.sd_jwt import IssuerSigningKey

# A JPKI signature certificate is good for five birthdays at most: a retired key stays
# in the issuer metadata that long, so every credential it signed still verifies.
RETIRED_KEPT = dt.timedelta(days=5 * 366 + 31)


class IssuerChainError(ValueError):
    """The configured certificate chain does not belong to the current issuer key."""


@dataclass
class CredentialIssuerKeys:
    file: SigningKeysFile
    chain: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> CredentialIssuerKeys:
        path = settings.credential_issuer_key_file or (
            settings.data_dir / "credential-issuer-keys.json"
        )
        keys = cls(SigningKeysFile(path))
        if settings.credential_issuer_certificate_chain is not None:
            pem = settings.credential_issuer_certificate_chain.read_bytes()
            keys.chain = tuple(x509.load_pem_x509_certificates(pem))
            keys.check_chain()
        return keys

    def check_chain(self) -> None:
        """The leaf must certify the current key (else verifiers would refuse every x5c)."""
        if not self.chain:
            return
        spki = PublicFormat.SubjectPublicKeyInfo
        leaf = self.chain[0].public_key().public_bytes(Encoding.DER, spki)
        current = self.file.keys().current.as_der(private=False)
        if leaf != current:
            raise IssuerChainError("the issuer certificate is not for the current issuer key")

    def signer(self) -> IssuerSigningKey:
        keys = self.file.keys()
        x5c = tuple(
            base64.b64encode(certificate.public_bytes(Encoding.DER)).decode()
            for certificate in self.chain
        )
        if x5c:  # a rotation without a new certificate: sign without x5c
            try:
                self.check_chain()
            except IssuerChainError:
                x5c = ()
        return IssuerSigningKey(keys.current, keys.current_kid, x5c)

    def key_for(self, header: Mapping[str, Any]) -> ECKey | None:
        """The key a credential or status list token names by ``kid``."""
        kid = header.get("kid")
        return self.file.keys().key(kid) if isinstance(kid, str) else None

    def jwks(self, now: dt.datetime) -> dict[str, Any]:
        return self.file.keys().jwks(now, retired_kept=RETIRED_KEPT)

    @property
    def path(self) -> Path:
        return self.file.keys().path
