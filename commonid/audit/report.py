"""The PoC results report as a PDF, signed by the service with pyHanko (PAdES B-B).

The PDF is written directly (A4 pages, standard Helvetica/Courier fonts,
charts as vector rectangles), so no renderer is needed at run time. It is then
signed with a PAdES signature (ETSI.CAdES.detached) by the service's report
signing key: an ECDSA P-256 key with a self-signed certificate naming the
service's DID, kept next to the issuer key (mode 0600) and created on first use.
Reviewers validate it with pyHanko (or any PDF reader) against that certificate.
"""

from __future__ import annotations

import io
import os
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.sign import signers
from pyhanko.sign.fields import SigSeedSubFilter

from commonid.audit.charts import outcome_colour
from commonid.audit.figures import PocFigures, per_day_series

PAGE_WIDTH, PAGE_HEIGHT, MARGIN = 595, 842, 50


@dataclass(frozen=True)
class ReportSigner:
    key_file: Path
    certificate_file: Path
    service_did: str

    @classmethod
    def open(cls, directory: Path, service_did: str) -> ReportSigner:
        """The report signing key in ``directory``, created (0600) if it is missing."""
        key_file = directory / "report-signing-key.pem"
        certificate_file = directory / "report-signing-cert.pem"
        if not key_file.exists():
            directory.mkdir(parents=True, exist_ok=True)
            key = ec.generate_private_key(ec.SECP256R1())
            _write_private(
                key_file,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
            certificate_file.write_bytes(
                _self_signed(key, service_did).public_bytes(serialization.Encoding.PEM)
            )
        return cls(key_file, certificate_file, service_did)

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.certificate_file.read_bytes())

    def pyhanko_signer(self) -> signers.SimpleSigner:
        signer = signers.SimpleSigner.load(str(self.key_file), str(self.certificate_file))
        if signer is None:  # pragma: no cover - pyHanko returns None on unreadable files
            raise ValueError("cannot load the report signing key")
        return signer


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


def _self_signed(key: ec.EllipticCurvePrivateKey, service_did: str) -> x509.Certificate:
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, "Common-ID PoC report signer"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Common-ID"),
        ]
    )
    now = datetime.now(UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    if len(service_did) < 1000:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(service_did)]),
            critical=False,
        )
    return builder.sign(key, hashes.SHA256())


# --- a small PDF writer ---------------------------------------------------------


def _pdf_text(text: str) -> str:
    """A PDF string literal body in WinAnsiEncoding (cp1252), e.g. the signed note's em dash."""
    out = []
    for char in text:
        if char in "\\()":
            out.append("\\" + char)
        elif " " <= char <= "~":
            out.append(char)
        else:
            encoded = char.encode("cp1252", "replace")
            out.append("".join(f"\\{byte:03o}" for byte in encoded))
    return "".join(out)


def _rgb(colour: str) -> str:
    red, green, blue = (int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return f"{red:.3f} {green:.3f} {blue:.3f}"


class _Pages:
    """Lays out lines and bar charts top to bottom, starting new pages as needed."""

    def __init__(self) -> None:
        self.pages: list[list[str]] = []
        self._new_page()

    def _new_page(self) -> None:
        self.pages.append([])
        self.y = PAGE_HEIGHT - MARGIN

    def _room(self, height: float) -> None:
        if self.y - height < MARGIN:
            self._new_page()

    def text(self, line: str, *, size: float = 10, font: str = "F1", gap: float = 4) -> None:
        self._room(size + gap)
        self.y -= size + gap
        self.pages[-1].append(
            f"BT /{font} {size} Tf {MARGIN} {self.y:.1f} Td ({_pdf_text(line)}) Tj ET"
        )

    def wrapped(self, line: str, *, width: int = 95, **options: object) -> None:
        while len(line) > width:
            self.text(line[:width], **options)  # type: ignore[arg-type]
            line = line[width:]
        self.text(line, **options)  # type: ignore[arg-type]

    def space(self, height: float = 8) -> None:
        self.y -= height

    def stacked_bars(self, labels: list[str], series: dict[str, list[int]]) -> None:
        height = 150
        self._room(height + 30)
        top = self.y - 5
        bottom = top - height
        page = self.pages[-1]
        page.append(f"0.3 0.3 0.3 RG {MARGIN} {bottom} m {PAGE_WIDTH - MARGIN} {bottom} l S")
        totals = [sum(v[i] for v in series.values()) for i in range(len(labels))]
        peak = max(totals, default=0) or 1
        slot = (PAGE_WIDTH - 2 * MARGIN) / max(len(labels), 1)
        bar = min(40.0, max(2.0, slot * 0.7))
        for i, label in enumerate(labels):
            x = MARGIN + i * slot + (slot - bar) / 2
            y = bottom
            for s, (name, values) in enumerate(series.items()):
                h = height * values[i] / peak
                if h:
                    colour = _rgb(outcome_colour(name, s))
                    page.append(f"{colour} rg {x:.1f} {y:.1f} {bar:.1f} {h:.1f} re f")
                    y += h
            if len(labels) <= 16 or i % max(1, len(labels) // 8) == 0:
                page.append(
                    f"0 0 0 rg BT /F1 7 Tf {x:.1f} {bottom - 10:.1f} Td "
                    f"({_pdf_text(label[5:])}) Tj ET"
                )
        page.append(f"0 0 0 rg BT /F1 8 Tf {MARGIN} {bottom - 36:.1f} Td (max {peak}/day) Tj ET")
        legend_x = MARGIN
        for s, name in enumerate(series):
            page.append(
                f"{_rgb(outcome_colour(name, s))} rg {legend_x} {bottom - 24:.1f} 8 8 re f "
                f"0 0 0 rg BT /F1 8 Tf {legend_x + 11} {bottom - 23:.1f} Td "
                f"({_pdf_text(name)}) Tj ET"
            )
            legend_x += 110
        self.y = bottom - 44

    def horizontal_bars(self, counts: list[tuple[str, int]]) -> None:
        peak = max((value for _, value in counts), default=0) or 1
        for label, value in counts:
            self._room(16)
            self.y -= 16
            width = (PAGE_WIDTH - 2 * MARGIN - 230) * value / peak
            self.pages[-1].append(
                f"0 0 0 rg BT /F1 9 Tf {MARGIN} {self.y:.1f} Td ({_pdf_text(label)}) Tj ET "
                f"{_rgb('#c0392b')} rg {MARGIN + 190} {self.y - 2:.1f} {width:.1f} 10 re f "
                f"0 0 0 rg BT /F1 9 Tf {MARGIN + 195 + width:.1f} {self.y:.1f} Td ({value}) Tj ET"
            )


def _pdf_document(pages: list[list[str]], title: str) -> bytes:
    objects: list[bytes] = []

    def add(body: bytes) -> int:
        objects.append(body)
        return len(objects)

    catalog = add(b"")  # filled in below
    pages_id = add(b"")
    helvetica = add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>"
    )
    courier = add(
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Courier /Encoding /WinAnsiEncoding >>"
    )
    info = add(f"<< /Title ({_pdf_text(title)}) /Producer (Common-ID) >>".encode())
    page_ids = []
    for content in pages:
        stream = "\n".join(content).encode()
        content_id = add(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
        page_ids.append(
            add(
                (
                    f"<< /Type /Page /Parent {pages_id} 0 R "
                    f"/MediaBox [0 0 {PAGE_WIDTH} {PAGE_HEIGHT}] "
                    f"/Resources << /Font << /F1 {helvetica} 0 R /F2 {courier} 0 R >> >> "
                    f"/Contents {content_id} 0 R >>"
                ).encode()
            )
        )
    objects[catalog - 1] = f"<< /Type /Catalog /Pages {pages_id} 0 R >>".encode()
    kids = " ".join(f"{page} 0 R" for page in page_ids)
    objects[pages_id - 1] = f"<< /Type /Pages /Kids [{kids}] /Count {len(page_ids)} >>".encode()

    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R /Info %d 0 R >>\nstartxref\n%d\n%%%%EOF\n"
        % (len(objects) + 1, catalog, info, xref)
    )
    return out.getvalue()


def report_document(figures: PocFigures, *, service_did: str, generated: datetime) -> bytes:
    """The unsigned report PDF."""
    start, end = figures.start.date().isoformat(), figures.end.date().isoformat()
    pages = _Pages()
    pages.text("Common-ID proof of concept: results", size=18, gap=8)
    pages.text(f"Period: {start} to {end} (UTC, end exclusive)")
    pages.text(f"Generated {generated.isoformat(timespec='seconds')} by the Common-ID service")
    pages.wrapped(f"Service DID: {service_did}", size=8, font="F2", width=100)
    pages.space()
    pages.text("Figures", size=13, gap=8)
    pages.text(f"Completed sessions: {figures.verifications}")
    for outcome, count in figures.outcomes.most_common():
        pages.text(f"  {outcome}: {count}")
    rate = figures.reuse_rate
    pages.text(
        "Reuse rate: "
        + (f"{rate * 100:.0f}%" if rate is not None else "n/a")
        + f" ({figures.claims_reused} of {figures.claims_released} claim releases)"
    )
    latency = ", ".join(
        f"{name} {value:.0f} ms" if value is not None else f"{name} n/a"
        for name, value in figures.latency_percentiles().items()
    )
    pages.text(f"Verification latency: {latency}")
    pages.space()
    pages.text("Verifications per day by outcome", size=13, gap=8)
    labels, series = per_day_series(figures)
    pages.stacked_bars(labels, series)
    pages.text("Rejection reasons", size=13, gap=8)
    reasons = figures.rejection_reasons.most_common(12)
    if reasons:
        pages.horizontal_bars(reasons)
    else:
        pages.text("none in this period")
    pages.space()
    pages.text("Revocation data age at the end of the period", size=13, gap=8)
    ages = figures.revocation_ages_hours()
    for anchor, age in ages.items():
        pages.text(
            f"  {anchor}: {age:.1f} h (thisUpdate {figures.revocation_updates[anchor].isoformat()})"
        )
    if not ages:
        pages.text("  no revocation refresh logged in this period")
    pages.space()
    pages.text("Checkpoint these figures were computed from", size=13, gap=8)
    if figures.checkpoint is not None:
        pages.text(
            f"Tree size {figures.checkpoint.tree_size}, signed "
            f"{figures.checkpoint.created_at.isoformat()}; "
            f"{figures.events_read} events in the period."
        )
        for line in figures.checkpoint.note.rstrip("\n").split("\n"):
            pages.wrapped(line or " ", size=8, font="F2", width=100, gap=2)
    else:
        pages.text("No checkpoint had been signed: the log was empty.")
    pages.space()
    pages.wrapped(
        "Recompute these figures from an export of the log and check it with "
        "'commonid audit verify --export log.jsonl --key <verifier key>'.",
        size=9,
        width=110,
    )
    return _pdf_document(pages.pages, f"Common-ID PoC results {start} to {end}")


def sign_pdf(document: bytes, signer: ReportSigner) -> bytes:
    """A PAdES (ETSI.CAdES.detached) signature over the whole document."""
    writer = IncrementalPdfFileWriter(io.BytesIO(document))
    metadata = signers.PdfSignatureMetadata(
        field_name="CommonIdReportSignature",
        md_algorithm="sha256",
        subfilter=SigSeedSubFilter.PADES,
        reason="Common-ID PoC results report",
        name="Common-ID service",
    )
    signed = signers.sign_pdf(writer, metadata, signer=signer.pyhanko_signer())
    return signed.getvalue()


def report_pdf(figures: PocFigures, *, signer: ReportSigner, generated: datetime) -> bytes:
    document = report_document(figures, service_did=signer.service_did, generated=generated)
    return sign_pdf(document, signer)
