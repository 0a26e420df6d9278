"""`commonid document ...`: make a consent PDF, sign files with the card, verify signed PDFs."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from cryptography import x509

document_app = typer.Typer(
    help="Documents signed with the My Number Card's signature key (PAdES, CMS).",
    no_args_is_help=True,
)


class TrustChoice(StrEnum):
    PRODUCTION = "production"
    TEST = "test-hierarchy"


class RevocationChoice(StrEnum):
    REQUIRE = "require"
    SOFT_FAIL = "soft-fail"
    OFF = "off"


@document_app.command("verify")
def verify(
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="Signed PDF (or signed content)")
    ],
    signature: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, help="Detached CMS signature (.p7s) of FILE"),
    ] = None,
    trust: Annotated[
        TrustChoice, typer.Option(help="Trust anchors: the J-LIS roots or a test hierarchy")
    ] = TrustChoice.PRODUCTION,
    hierarchy: Annotated[
        Path | None, typer.Option(help="Test hierarchy directory (with --trust test-hierarchy)")
    ] = None,
    revocation: Annotated[
        RevocationChoice, typer.Option(help="Revocation checking of the signer's certificate")
    ] = RevocationChoice.REQUIRE,
    crl: Annotated[
        list[str] | None,
        typer.Option(help="Production CRL as ANCHOR=PATH_OR_URL, e.g. sign_ca_2023=sign.crl"),
    ] = None,
    show_signer: Annotated[
        bool, typer.Option(help="Show the signer's name, birth date, gender and address")
    ] = False,
    at: Annotated[
        datetime | None, typer.Option(help="Validation time (RFC 3339; default now)")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON")] = False,
    tsa_root: Annotated[
        list[Path] | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            help="Root certificate (PEM or DER) of a timestamp authority to trust; repeatable. "
            "Without one, a B-T timestamp is reported but not trusted.",
        ),
    ] = None,
) -> None:
    """Verify a PDF's signatures (or FILE's detached CMS signature) under the JPKI trust
    policy. Exit 0 only if all are valid."""
    from commonid.documents.service import verification_report
    from commonid.settings import Settings
    from commonid.trust import refresh_revocation, trust_policy_from_settings
    from jpki.documents.verification import verify_detached_cms, verify_pdf

    _one_line_pyhanko_logs()
    timestamp_roots = [_certificate_or_exit(path) for path in tsa_root or []]
    moment = (at or datetime.now(UTC)).astimezone(UTC)
    if trust is TrustChoice.TEST and hierarchy is None:
        raise typer.BadParameter("--trust test-hierarchy needs --hierarchy DIR")
    sources = dict(item.split("=", 1) for item in crl or [] if "=" in item)
    settings = Settings(
        trust_mode="test" if trust is TrustChoice.TEST else "production",
        test_hierarchy_dir=hierarchy,
        revocation_mode=revocation.value,
        crl_sources=sources,
    )
    policy = trust_policy_from_settings(settings)
    if revocation is not RevocationChoice.OFF:
        for problem in refresh_revocation(policy, at=moment, force=True).problems:
            typer.echo(f"warning: revocation data: {problem}", err=True)
    if signature is not None:
        verification = verify_detached_cms(
            file.read_bytes(),
            signature.read_bytes(),
            policy=policy,
            at=moment,
            include_signer_attributes=show_signer,
        )
    else:
        verification = verify_pdf(
            file.read_bytes(),
            policy=policy,
            at=moment,
            timestamp_roots=timestamp_roots,
            include_signer_attributes=show_signer,
        )
    report = verification_report(verification, authorized=show_signer)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False, indent=2))
    else:
        _print_report(report)
    raise typer.Exit(0 if verification.valid else 1)


def _certificate_or_exit(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        typer.echo(f"error: {path} is not a certificate (PEM or DER)", err=True)
        raise typer.Exit(2) from None


class _OneLine(logging.Formatter):
    """pyHanko logs what it could not validate with the whole traceback; the report says
    what matters (e.g. "timestamp: ... (NOT trusted)"), so its note is one line."""

    def format(self, record: logging.LogRecord) -> str:
        return f"note (pyHanko): {record.getMessage()}"


def _one_line_pyhanko_logs() -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(_OneLine())
    for name in ("pyhanko", "pyhanko_certvalidator"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False


def _print_report(report: dict) -> None:
    typer.echo(f"document sha256: {report['document_sha256']}")
    typer.echo(f"verdict: {report['reason']}")
    for signature in report["signatures"]:
        certificate = signature["certificate"]
        typer.echo(f"signature {signature['field']}: {signature['reason']}")
        typer.echo(f"  integrity: {signature['integrity']}")
        typer.echo(
            f"  coverage: {signature['coverage']}"
            f" (changed after signing: {'yes' if signature['changed_after_signing'] else 'no'},"
            f" modification level: {signature['modification_level']})"
        )
        typer.echo(f"  signing time (claimed): {signature['signing_time']}")
        if signature["timestamp_time"]:
            trusted = "trusted" if signature["timestamp_trusted"] else "NOT trusted"
            typer.echo(f"  timestamp: {signature['timestamp_time']} ({trusted})")
        typer.echo(
            f"  certificate: {certificate['reason']} (anchor {certificate['trust_anchor']},"
            f" revocation {certificate['revocation_source'] or 'not checked'})"
        )
        if certificate["detail"]:
            typer.echo(f"    {certificate['detail']}")
        signer = signature.get("signer")
        if signer:
            typer.echo(f"  signer: {signer['name']} / {signer['birthdate']} / {signer['address']}")


@document_app.command("sign")
def sign(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="File to sign")],
    out: Annotated[Path, typer.Option(help="Where to write the signed PDF or the .p7s")],
    cms: Annotated[
        bool, typer.Option(help="Detached CMS signature (.p7s) instead of a PAdES PDF")
    ] = False,
    reader: Annotated[str | None, typer.Option(help="PC/SC reader (default: first card)")] = None,
    tsa: Annotated[
        str | None, typer.Option(help="RFC 3161 timestamp authority URL (PAdES B-T / CAdES-T)")
    ] = None,
    confirm_last_try: Annotated[
        bool, typer.Option(help="Allow using the password's last try")
    ] = False,
) -> None:
    """Sign FILE with the card's signature key. The password is asked for, never an option."""
    from jpki.card import JPKICard, PinKind
    from jpki.documents import open_card_signer, sign_detached, sign_pdf
    from jpki.errors import JPKIError
    from jpki.transport import PcscTransport

    password = typer.prompt("Signature password (署名用パスワード)", hide_input=True)
    content = file.read_bytes()
    try:
        transport = PcscTransport.connect(reader)
        try:
            card = JPKICard(transport)
            with open_card_signer(
                card, password, kind=PinKind.SIGN, confirm_last_try=confirm_last_try
            ) as signer:
                del password  # used once, by the one VERIFY above
                if cms:
                    signed = sign_detached(content, signer, timestamp_url=tsa)
                else:
                    signed = sign_pdf(content, signer, timestamp_url=tsa)
        finally:
            transport.close()
    except JPKIError as error:
        typer.echo(f"error: {error.message_en}\n       {error.message_ja}", err=True)
        raise typer.Exit(2) from None
    out.write_bytes(signed)
    typer.echo(f"wrote {out} ({len(signed)} bytes)")


@document_app.command("consent")
def consent(
    out: Annotated[Path, typer.Option(help="Where to write the unsigned consent PDF")],
    provider: Annotated[str, typer.Option(help="Provider's display name")],
    purpose: Annotated[str, typer.Option(help="Purpose of use, as the provider stated it")],
    claims: Annotated[list[str], typer.Option("--claim", help="Requested claim (repeat)")],
    session_id: Annotated[str, typer.Option(help="Session id")] = "ses_example",
) -> None:
    """Write a consent document like the one the kiosk has signed (for trying things out)."""
    from commonid.documents.service import prepare_consent_document

    prepared = prepare_consent_document(
        session_id=session_id,
        provider_name=provider,
        purpose=purpose,
        claims=claims,
        created_at=datetime.now(UTC),
    )
    out.write_bytes(prepared.pdf)
    typer.echo(f"wrote {out} (document {prepared.document.document_id}, sha256 {prepared.sha256})")
