"""The consent / application document a person signs at the kiosk, as a one-page PDF.

Laid out from an HTML template (``templates/consent.html``) by WeasyPrint,
with Debian's IPA Gothic embedded as a subset: the page looks the same in
every viewer, and its text copies out exactly as written (Japanese and
English). A document that would not fit on one page is refused: a person
must never sign a document whose end they cannot see.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape

__all__ = ["CLAIM_LABELS", "ConsentDocument", "DocumentTooLongError", "render_consent_pdf"]

JST = timezone(timedelta(hours=9), "JST")
CLAIM_LABELS = {
    "name": "氏名 (name)",
    "birthdate": "生年月日 (date of birth)",
    "gender": "性別 (gender)",
    "address": "住所 (address)",
    "did": "DID (decentralized identifier)",
    "credential": "本人確認済みクレデンシャル (verifiable credential)",
}
_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(["html"]),
)


class DocumentTooLongError(ValueError):
    """The provider's texts (name, purpose) are too long for the one-page document."""


@dataclass(frozen=True)
class ConsentDocument:
    """What the document says: who asks, why, for what, when. No personal data of the signer."""

    document_id: str
    session_id: str
    provider_name: str
    purpose: str
    claims: tuple[str, ...]
    created_at: datetime

    def lines(self) -> list[tuple[int, str]]:
        """(font size, text) lines, Japanese first with English beside it."""
        local = self.created_at.astimezone(JST)
        claims = [CLAIM_LABELS.get(claim, claim) for claim in self.claims]
        return [
            (18, "本人確認情報の提供に関する同意書"),
            (12, "Consent to provide verified identity information"),
            (10, ""),
            (10, f"文書番号 Document: {self.document_id}"),
            (10, f"セッション Session: {self.session_id}"),
            (10, f"日付 Date: {local:%Y年%m月%d日 %H:%M} JST ({self.created_at:%Y-%m-%dT%H:%MZ})"),
            (10, ""),
            (12, "提供先事業者 Provider"),
            (11, self.provider_name),
            (12, "利用目的 Purpose"),
            (11, self.purpose),
            (12, "提供する情報 Information provided"),
            *[(11, f"・{label}") for label in claims],
            (10, ""),
            (11, "私は、上記の事業者が上記の利用目的のために、マイナンバーカードの"),
            (11, "公的個人認証により確認された上記の情報を取得することに同意します。"),
            (10, "I consent to the provider above obtaining the information above, verified"),
            (
                10,
                "with the public certification (JPKI) of my My Number Card, for the purpose above.",
            ),
            (10, ""),
            (10, "署名: マイナンバーカードの署名用電子証明書による電子署名 (PAdES)"),
            (10, "Signature: electronic signature with the card's signature certificate (PAdES)"),
            *self._disclosure_lines(),
        ]

    def _disclosure_lines(self) -> list[tuple[int, str]]:
        # The signature embeds the signature certificate, which carries all four basic
        # attributes: say plainly who receives it (commonid.documents.session_documents).
        if releases_signed_document(self.claims):
            return [
                (10, "署名した文書は事業者に渡され、署名用電子証明書の"),
                (10, "氏名・生年月日・性別・住所が事業者に開示されます。"),
                (10, "The signed document goes to the provider: its certificate discloses your"),
                (10, "name, date of birth, gender and address."),
            ]
        return [
            (10, "署名した文書は事業者に渡されません。事業者には、Common-IDが署名を確認した"),
            (10, "結果(文書のハッシュ、署名日時、証明書の発行者)だけが渡されます。"),
            (10, "The signed document is not given to the provider (its certificate carries more"),
            (10, "than you consent to): the provider receives Common-ID's signed confirmation."),
        ]


# The signature certificate's attributes: a signed document reveals all of them.
CERTIFICATE_ATTRIBUTES = frozenset({"name", "birthdate", "gender", "address"})


def releases_signed_document(consented_claims: Iterable[str]) -> bool:
    """Whether the provider may receive the signed PDF itself: only when the person
    consented to every attribute the embedded signature certificate discloses."""
    return set(consented_claims) >= CERTIFICATE_ATTRIBUTES


def _printable(text: str) -> str:
    # NFC, so what is copied out compares equal to what was written; no control characters.
    return "".join(c for c in unicodedata.normalize("NFC", text) if c.isprintable())


def render_consent_pdf(document: ConsentDocument) -> bytes:
    """The document as PDF bytes: one A4 page, metadata naming the document and purpose."""
    from weasyprint import HTML  # imported when a document is made: it takes a while

    html = _TEMPLATES.get_template("consent.html").render(
        title=f"同意書 / Consent {document.document_id}",
        subject=_printable(document.purpose),
        created=document.created_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        lines=[(size, _printable(text)) for size, text in document.lines()],
    )
    rendered = HTML(string=html).render()
    if len(rendered.pages) > 1:
        raise DocumentTooLongError("the consent text does not fit on one page")
    return rendered.write_pdf()
