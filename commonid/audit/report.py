"""The PoC results report: HTML from the templates, PDF rendered by WeasyPrint, signed.

One template (``templates/report.html`` with ``report_body.html``) lays out
``report_content`` for the reviewer pages (Japanese or English) and for the
PDF (both: Japanese first, English beside it). WeasyPrint embeds the IPA
fonts as subsets, so the PDF's text copies out as written. The signature is
the organisation's (``report_signing``): PAdES B-T with a timestamp authority,
validation data in the DSS (B-LT).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

from cryptography import x509
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.runtime import Context

from commonid.audit.figures import PocFigures
from commonid.audit.report_content import ReportContent, Text, report_content
from commonid.audit.report_signing import OrganisationSigning, ReportSigner
from commonid.settings import Settings

Language = Literal["ja", "en", "both"]
TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


@pass_context
def _tr(context: Context, ja: str, en: str) -> str:
    """A page's own words in its language: ``{{ tr("イベント", "Events") }}``."""
    return en if context.get("lang") == "en" else ja


TEMPLATES.globals["tr"] = _tr
NO_DATA = Text("この期間のデータはありません", "no data in this period")


def report_html(
    figures: PocFigures,
    *,
    service: str,
    generated: datetime,
    lang: Language = "both",
    csv_links: bool = False,
) -> str:
    """The whole report as one HTML document."""
    content = report_content(figures, service=service, generated=generated)
    return TEMPLATES.get_template("report.html").render(
        **body_context(figures, content, lang, csv_links)
    )


def body_context(
    figures: PocFigures, content: ReportContent, lang: Language, csv_links: bool
) -> dict[str, object]:
    """What ``report_body.html`` needs (the reviewer dashboard includes it too)."""
    return {
        "report": content,
        "lang": lang,
        "csv_links": csv_links,
        "no_data": NO_DATA,
        "start": figures.start.date().isoformat(),
        "end": figures.end.date().isoformat(),
        "checkpoint_note": figures.checkpoint.note if figures.checkpoint else None,
    }


def render_pdf(html: str) -> bytes:
    """HTML to PDF with WeasyPrint (fonts embedded as subsets)."""
    from weasyprint import HTML  # a second or so to import: only when a PDF is made

    return HTML(string=html).write_pdf()


@dataclass(frozen=True)
class ReportSigning:
    """The organisation's signing (``OrganisationSigning``) for one service's reports,
    which name the service."""

    directory: Path
    service: str
    timestamp_url: str | None = None
    timestamp_roots: tuple[x509.Certificate, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, service: str) -> ReportSigning:
        organisation = OrganisationSigning.from_settings(settings)
        return cls(
            organisation.directory, service, organisation.timestamp_url,
            organisation.timestamp_roots,
        )  # fmt: skip

    @property
    def organisation(self) -> OrganisationSigning:
        return OrganisationSigning(self.directory, self.timestamp_url, self.timestamp_roots)

    def signed_report(self, figures: PocFigures, *, generated: datetime) -> bytes:
        """Raises ReportSigningUnavailable (with what is missing) when there is no signer."""
        return report_pdf(
            figures,
            signer=self.organisation.signer(),
            service=self.service,
            generated=generated,
            timestamp_url=self.timestamp_url,
            timestamp_roots=list(self.timestamp_roots),
        )


def report_pdf(
    figures: PocFigures,
    *,
    signer: ReportSigner,
    service: str,
    generated: datetime,
    timestamp_url: str | None = None,
    timestamp_roots: list[x509.Certificate] | None = None,
) -> bytes:
    """The signed report: bilingual PDF, PAdES by the organisation's report signer."""
    document = render_pdf(report_html(figures, service=service, generated=generated))
    return signer.sign(document, timestamp_url=timestamp_url, timestamp_roots=timestamp_roots)
