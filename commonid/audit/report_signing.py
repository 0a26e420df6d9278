"""Signing the PoC report so that it still validates years later (PAdES B-T / B-LT).

The report is signed by a certificate of the operating organisation, issued
under that organisation's CA: reviewers trust the organisation's root, not a
key the service made up. The signing material is a directory:

    report-signing-key.pem    the signer's private key (PKCS#8, mode 0600)
    report-signing-chain.pem  the signer's certificate, then any intermediates
    organisation-root.pem     the organisation's root CA (the reviewers' trust anchor)
    crls/*.crl                current CRLs of the CAs in the chain (DER or PEM),
                              kept current by the operator

With a timestamp authority (``timestamp_url``), the signature carries an RFC 3161
timestamp (B-T); in every case the certificates and CRLs that validate the
signer (and the timestamp) are embedded in the document security store (DSS),
so with a timestamp the document is B-LT: it validates after the signer's
certificate has expired, at the time the timestamp proves. Without a
timestamp there is no trusted signing time, and validation needs the signer
still valid. ``create_test_organisation`` makes such a directory for the demo
and tests (never for production: the organisation's CA issues the real one).
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import crl as asn1_crl
from asn1crypto import keys, pem
from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers, timestamps
from pyhanko.sign.fields import SigSeedSubFilter
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from commonid.settings import Settings

KEY_FILE = "report-signing-key.pem"
CHAIN_FILE = "report-signing-chain.pem"
ROOT_FILE = "organisation-root.pem"
CRL_DIRECTORY = "crls"
SIGNATURE_FIELD = "CommonIdReportSignature"


class ReportSigningUnavailable(Exception):
    """No usable report signing material: the message says what is missing."""


def _pem_or_der_objects(data: bytes) -> list[bytes]:
    if pem.detect(data):
        return [der for _, _, der in pem.unarmor(data, multiple=True)]
    return [data]


def _asn1_certificate(certificate: x509.Certificate) -> asn1_x509.Certificate:
    return asn1_x509.Certificate.load(certificate.public_bytes(serialization.Encoding.DER))


@dataclass(frozen=True)
class ReportSigner:
    """The organisation's report signing key, its chain, root and revocation data."""

    directory: Path
    chain: tuple[x509.Certificate, ...]
    root: x509.Certificate
    crls: tuple[bytes, ...]

    @classmethod
    def load(cls, directory: Path) -> ReportSigner:
        missing = [
            name for name in (KEY_FILE, CHAIN_FILE, ROOT_FILE) if not (directory / name).is_file()
        ]
        if missing:
            raise ReportSigningUnavailable(
                f"no report signing material in {directory} (missing {', '.join(missing)}); "
                "put the organisation's signing key and chain there, or for a test "
                "organisation run `commonid audit report-signer init`"
            )
        chain = tuple(x509.load_pem_x509_certificates((directory / CHAIN_FILE).read_bytes()))
        root = x509.load_pem_x509_certificate((directory / ROOT_FILE).read_bytes())
        crls = tuple(
            der
            for path in sorted((directory / CRL_DIRECTORY).glob("*.crl"))
            for der in _pem_or_der_objects(path.read_bytes())
        )
        return cls(directory, chain, root, crls)

    @property
    def certificate(self) -> x509.Certificate:
        return self.chain[0]

    @property
    def key_file(self) -> Path:
        return self.directory / KEY_FILE

    def describe(self) -> str:
        """Who signs, under which root, until when (for logs and the report itself)."""
        return (
            f"{self.certificate.subject.rfc4514_string()}, issued by "
            f"{self.certificate.issuer.rfc4514_string()}, valid until "
            f"{self.certificate.not_valid_after_utc:%Y-%m-%d}"
        )

    def validation_context(
        self, *, extra_roots: list[x509.Certificate] | None = None, moment: datetime | None = None
    ) -> ValidationContext:
        """What a reviewer validates with: the organisation's root (and the TSA's)."""
        return ValidationContext(
            trust_roots=[_asn1_certificate(c) for c in [self.root, *(extra_roots or [])]],
            other_certs=[_asn1_certificate(c) for c in self.chain[1:]],
            crls=[asn1_crl.CertificateList.load(der) for der in self.crls],
            allow_fetching=False,
            moment=moment,
        )

    def _pyhanko_signer(self) -> signers.SimpleSigner:
        key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        key_der = key.private_bytes(
            serialization.Encoding.DER,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        return signers.SimpleSigner(
            signing_cert=_asn1_certificate(self.certificate),
            signing_key=keys.PrivateKeyInfo.load(key_der),
            cert_registry=SimpleCertificateStore.from_certs(
                [_asn1_certificate(c) for c in [*self.chain[1:], self.root]]
            ),
        )

    def sign(
        self,
        document: bytes,
        *,
        timestamp_url: str | None = None,
        timestamp_roots: list[x509.Certificate] | None = None,
        reason: str = "Common-ID PoC results report / 共通ID PoC 結果報告書",
    ) -> bytes:
        """PAdES over the whole document: B-T with a timestamp authority, validation data
        (certificates, CRLs) in the DSS in every case."""
        metadata = signers.PdfSignatureMetadata(
            field_name=SIGNATURE_FIELD,
            md_algorithm="sha256",
            subfilter=SigSeedSubFilter.PADES,
            reason=reason,
            name=self.certificate.subject.rfc4514_string(),
            embed_validation_info=True,
            use_pades_lta=False,
            validation_context=self.validation_context(extra_roots=timestamp_roots),
        )
        stamper = timestamps.HTTPTimeStamper(timestamp_url) if timestamp_url else None
        writer = IncrementalPdfFileWriter(io.BytesIO(document))
        signed = signers.sign_pdf(
            writer, metadata, signer=self._pyhanko_signer(), timestamper=stamper
        )
        return signed.getvalue()


@dataclass(frozen=True)
class OrganisationSigning:
    """Where the organisation's signatures come from: the signing material (read at each
    signature, so an operator's new CRLs or a renewed certificate count without a restart)
    and the timestamp authority. Reports and verification records are signed alike."""

    directory: Path
    timestamp_url: str | None = None
    timestamp_roots: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings) -> OrganisationSigning:
        from commonid.runtime import load_certificate

        return cls(
            settings.effective_report_signing_dir,
            settings.timestamp_url,
            tuple(load_certificate(path) for path in settings.timestamp_roots),
        )

    def signer(self) -> ReportSigner:
        """Raises ReportSigningUnavailable (saying what is missing) when there is none."""
        return ReportSigner.load(self.directory)

    def sign(self, document: bytes, *, reason: str) -> bytes:
        return self.signer().sign(
            document,
            timestamp_url=self.timestamp_url,
            timestamp_roots=list(self.timestamp_roots),
            reason=reason,
        )


# --- a test organisation, for the demo and the tests -----------------------------------


def _write_private(path: Path, content: bytes) -> None:
    descriptor, temporary = tempfile.mkstemp(dir=path.parent, prefix=".report-key-")
    try:
        os.fchmod(descriptor, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(content)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "JP"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _key_usage(*, signer: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=signer,
        content_commitment=signer,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=not signer,
        crl_sign=not signer,
        encipher_only=False,
        decipher_only=False,
    )


def create_test_organisation(
    directory: Path,
    *,
    organisation: str = "Common-ID demo organisation",
    signer_valid_for: timedelta = timedelta(days=825),
    now: datetime | None = None,
) -> ReportSigner:
    """A test organisation CA, a report signer under it and the CA's (empty) CRL."""
    now = now or datetime.now(UTC)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CRL_DIRECTORY).mkdir(exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name(f"{organisation} test CA", organisation)
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(signer=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    signer_key = ec.generate_private_key(ec.SECP256R1())
    signer = (
        x509.CertificateBuilder()
        .subject_name(_name("Common-ID PoC report signer", organisation))
        .issuer_name(ca_name)
        .public_key(signer_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + signer_valid_for)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(signer=True), critical=True)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    # Revocation data valid as long as the CA: a test organisation never revokes, and
    # a long nextUpdate keeps the embedded CRL usable when a test moves the clock on.
    crl = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_name)
        .last_update(now - timedelta(minutes=5))
        .next_update(now + timedelta(days=3650))
        .add_extension(x509.CRLNumber(1), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(
        directory / KEY_FILE,
        signer_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    (directory / CHAIN_FILE).write_bytes(signer.public_bytes(serialization.Encoding.PEM))
    (directory / ROOT_FILE).write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    (directory / CRL_DIRECTORY / "organisation-ca.crl").write_bytes(
        crl.public_bytes(serialization.Encoding.DER)
    )
    return ReportSigner.load(directory)
