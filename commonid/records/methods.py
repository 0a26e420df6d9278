"""The verification method, as a versioned code.

The Enforcement Regulation names each identification method by a letter of
Article 6(1)(i); the 2025 amendment (in force April 2027) renumbers them. A
record therefore stores our own stable code and the version of the rules it
was made under, and the reference to the regulation is looked up here when a
record is shown. Nothing stores a letter.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

JPKI_SIGNATURE = "jpki.signature_certificate"
AMENDMENT_2025_IN_FORCE = date(2027, 4, 1)


@dataclass(frozen=True)
class MethodReference:
    code: str
    rules: str  # the version of the rules: "2020-04" or "2027-04"
    ja: str
    en: str


_REFERENCES = {
    (JPKI_SIGNATURE, "2020-04"): MethodReference(
        JPKI_SIGNATURE,
        "2020-04",
        "犯罪収益移転防止法施行規則第6条第1項第1号ワ(署名用電子証明書及び電子署名の送信)",
        "Enforcement Regulation Art. 6(1)(i)(wa): signature certificate and electronic "
        "signature sent by the customer",
    ),
    (JPKI_SIGNATURE, "2027-04"): MethodReference(
        JPKI_SIGNATURE,
        "2027-04",
        "2025年改正後の犯罪収益移転防止法施行規則による公的個人認証(署名用電子証明書)の方法"
        "(号・記号は改正規則のとおり)",
        "the JPKI signature-certificate method of the Enforcement Regulation as amended in "
        "2025 (item as numbered by the amendment)",
    ),
}


def rules_in_force(on: date) -> str:
    return "2027-04" if on >= AMENDMENT_2025_IN_FORCE else "2020-04"


def reference(code: str, rules: str) -> MethodReference:
    """How a record's method reads in the regulation of its version."""
    return _REFERENCES.get((code, rules)) or MethodReference(code, rules, code, code)
