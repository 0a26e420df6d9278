"""Consent and application documents signed with the My Number Card (issue 9).

`consent_pdf` writes the document, `service` accepts the signed one and
serves it, `storage` encrypts it at rest, `cli` is `commonid document`.
The card signing and verification themselves are in `jpki.documents`.
"""
