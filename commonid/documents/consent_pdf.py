"""The consent / application document a person signs at the kiosk, as a one-page PDF.

Japanese text without embedding a font: the page uses the Adobe-Japan1 CID
font HeiseiKakuGo-W5 with the predefined UniJIS-UTF16-H CMap, one of the
fonts a PDF viewer must supply itself (PDF 1.7, 9.7.5.2; as reportlab's
UnicodeCIDFont does). Strings are UTF-16BE, so any Japanese name or purpose
is written as given, and the file stays a few kilobytes.
"""

from __future__ import annotations

import io
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.generic import pdf_name
from pyhanko.pdf_utils.writer import PageObject, PdfFileWriter

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
_PAGE_WIDTH, _PAGE_HEIGHT = 595, 842  # A4 in points
_MARGIN = 56
_FONT = "HeiseiKakuGo-W5"


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


def render_consent_pdf(document: ConsentDocument) -> bytes:
    """The document as PDF bytes: one A4 page, document metadata naming session and provider."""
    writer = PdfFileWriter()
    writer.document_meta.title = f"同意書 / Consent {document.document_id}"
    writer.document_meta.subject = document.purpose
    writer.document_meta.creator = "Common-ID"
    writer.document_meta.created = document.created_at.astimezone(UTC)
    font_dictionary = _japanese_font()
    font_dictionary[pdf_name("/ToUnicode")] = writer.add_object(
        generic.StreamObject(stream_data=_utf16_to_unicode_cmap())
    )
    font = writer.add_object(font_dictionary)
    content = generic.StreamObject(stream_data=_content_stream(document.lines()))
    resources = generic.DictionaryObject(
        {pdf_name("/Font"): generic.DictionaryObject({pdf_name("/F1"): font})}
    )
    page = PageObject(
        contents=writer.add_object(content),
        media_box=(0, 0, _PAGE_WIDTH, _PAGE_HEIGHT),
        resources=resources,
    )
    writer.insert_page(page)
    output = io.BytesIO()
    writer.write(output)
    return output.getvalue()


def _japanese_font() -> generic.DictionaryObject:
    descriptor = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/FontDescriptor"),
            pdf_name("/FontName"): pdf_name(f"/{_FONT}"),
            pdf_name("/Flags"): generic.NumberObject(4),
            pdf_name("/FontBBox"): _numbers([-92, -250, 1010, 922]),
            pdf_name("/ItalicAngle"): generic.NumberObject(0),
            pdf_name("/Ascent"): generic.NumberObject(752),
            pdf_name("/Descent"): generic.NumberObject(-221),
            pdf_name("/CapHeight"): generic.NumberObject(737),
            pdf_name("/StemV"): generic.NumberObject(114),
        }
    )
    cid_font = generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/CIDFontType0"),
            pdf_name("/BaseFont"): pdf_name(f"/{_FONT}"),
            pdf_name("/CIDSystemInfo"): generic.DictionaryObject(
                {
                    pdf_name("/Registry"): generic.TextStringObject("Adobe"),
                    pdf_name("/Ordering"): generic.TextStringObject("Japan1"),
                    pdf_name("/Supplement"): generic.NumberObject(5),
                }
            ),
            pdf_name("/FontDescriptor"): descriptor,
            pdf_name("/DW"): generic.NumberObject(1000),
            # CIDs 1-95 are the Roman characters that UniJIS-UTF16-H maps ASCII to.
            pdf_name("/W"): _numbers([1, 95, 500]),
        }
    )
    return generic.DictionaryObject(
        {
            pdf_name("/Type"): pdf_name("/Font"),
            pdf_name("/Subtype"): pdf_name("/Type0"),
            pdf_name("/BaseFont"): pdf_name(f"/{_FONT}"),
            pdf_name("/Encoding"): pdf_name("/UniJIS-UTF16-H"),
            pdf_name("/DescendantFonts"): generic.ArrayObject([cid_font]),
        }
    )


def _utf16_to_unicode_cmap() -> bytes:
    """A ToUnicode CMap for text shown through UniJIS-UTF16-H: every 2-byte code is the
    UTF-16BE of its character, so the map is the identity. Without it, extraction
    guesses from the CIDs (Adobe-Japan1 CID 63 reads back as U+0332, not `_`).
    One range per high byte: readers increment only the last byte within a range."""
    ranges = [f"<{high:02X}00> <{high:02X}FF> <{high:02X}00>" for high in range(256)]
    ranges = [r for r in ranges if not 0xD8 <= int(r[1:3], 16) <= 0xDF]  # no surrogates
    blocks = []
    for start in range(0, len(ranges), 100):  # at most 100 entries per block (PDF spec)
        chunk = ranges[start : start + 100]
        blocks.append(f"{len(chunk)} beginbfrange\n" + "\n".join(chunk) + "\nendbfrange")
    return (
        "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
        "/CIDSystemInfo << /Registry (Adobe) /Ordering (UCS) /Supplement 0 >> def\n"
        "/CMapName /CommonID-UTF16-UCS def\n/CMapType 2 def\n"
        "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
        + "\n".join(blocks)
        + "\nendcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n"
    ).encode("ascii")


def _numbers(values: Iterable[int]) -> generic.ArrayObject:
    return generic.ArrayObject(generic.NumberObject(v) for v in values)


def _em_width(character: str) -> float:
    """Advance width in em as declared in /W and /DW: half for ASCII, full otherwise."""
    return 0.5 if " " <= character <= "~" else 1.0


def _wrap(text: str, size: int, width: float) -> list[str]:
    lines, current, used = [], "", 0.0
    for character in text:
        advance = _em_width(character) * size
        if current and used + advance > width:
            lines.append(current)
            current, used = "", 0.0
        current += character
        used += advance
    lines.append(current)
    return lines


def _content_stream(lines: Sequence[tuple[int, str]]) -> bytes:
    commands = ["BT"]
    y = _PAGE_HEIGHT - _MARGIN
    for size, text in lines:
        # NFC: the CMap maps precomposed characters; control characters are dropped.
        text = "".join(c for c in unicodedata.normalize("NFC", text) if c.isprintable())
        for line in _wrap(text, size, _PAGE_WIDTH - 2 * _MARGIN) if text else [""]:
            y -= int(size * 1.5)
            if y < _MARGIN:
                # Text below the margin would be cut off or unprinted: a person
                # must never sign a document whose end they cannot see.
                raise DocumentTooLongError("the consent text does not fit on one page")
            if line:
                encoded = line.encode("utf-16-be").hex().upper()
                commands.append(f"/F1 {size} Tf 1 0 0 1 {_MARGIN} {y} Tm <{encoded}> Tj")
    commands.append("ET")
    return "\n".join(commands).encode("ascii")
