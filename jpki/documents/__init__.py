"""Documents signed with a My Number Card: PAdES and detached CMS, and their verification.

`card_signer` turns the card's signature key into a pyHanko `Signer`;
`pades` and `cms` make signatures with it; `verification` checks a signed
PDF with pyHanko (integrity, coverage, changes after signing) and the
signer's certificate with `jpki.validation` (the JPKI trust policy).
"""

from jpki.documents.card_signer import CardSigner, DigestAlgorithmError, open_card_signer
from jpki.documents.cms import sign_detached
from jpki.documents.pades import sign_pdf
from jpki.documents.verification import (
    DocumentReason,
    DocumentVerification,
    SignatureVerification,
    verify_detached_cms,
    verify_pdf,
)

__all__ = [
    "CardSigner",
    "DigestAlgorithmError",
    "DocumentReason",
    "DocumentVerification",
    "SignatureVerification",
    "open_card_signer",
    "sign_detached",
    "sign_pdf",
    "verify_detached_cms",
    "verify_pdf",
]
