"""Refusals with a stable machine-readable code, raised anywhere in the service.

The API turns them into RFC 9457 problem documents (commonid.api.problems);
every code is listed here and in docs/service.md, and the SDK raises
exceptions carrying the same code.
"""

from __future__ import annotations

from typing import Any

PROBLEM_TYPE_BASE = "https://commonid.example/problems/"

# code -> (HTTP status, title)
PROBLEM_TYPES: dict[str, tuple[int, str]] = {
    "malformed_json": (400, "The request body is not valid JSON"),
    "invalid_request": (422, "The request does not match the API schema"),
    "body_too_large": (413, "The request body is larger than the service accepts"),
    "unsupported_media_type": (415, "The request body is not of a media type this endpoint takes"),
    "not_found": (404, "No such resource"),
    "method_not_allowed": (405, "Method not allowed on this resource"),
    "unauthenticated": (401, "Missing or unknown credential"),
    "account_disabled": (403, "This provider or kiosk is disabled"),
    "admin_disabled": (403, "Admin endpoints are disabled (no admin credential configured)"),
    "name_taken": (409, "That name is already registered"),
    "rate_limited": (429, "Too many requests"),
    "claim_not_allowed": (403, "The provider is not allowed to request this claim"),
    "claims_need_identity_mode": (422, "Personal attributes need identity mode or reuse"),
    "idempotency_key_reused": (422, "The Idempotency-Key was used with a different request"),
    "session_not_found": (404, "No such session"),
    "record_not_found": (404, "No such verification record for this provider"),
    "records_signing_unavailable": (
        503,
        "The operating organisation's signing certificate is not configured: no signed PDF",
    ),
    "session_expired": (410, "The session has expired"),
    "consent_required": (409, "The person has not consented at this session yet"),
    "consent_already_recorded": (409, "This session already has a consent decision"),
    "consent_exceeds_request": (422, "Consent can only cover claims the provider requested"),
    "challenge_replayed": (409, "This session's challenge was already answered"),
    "certificate_malformed": (422, "A certificate could not be parsed"),
    "signature_invalid": (422, "A signature does not verify over this session's challenge"),
    "sign_certificate_required": (422, "Identity mode needs the sign certificate and signature"),
    "certificate_invalid": (422, "A certificate did not validate"),
    # certificate_<jpki.validation.ReasonCode>: why a certificate path did not validate
    "certificate_weak_algorithm": (422, "A certificate uses a refused algorithm or key size"),
    "certificate_ca_as_leaf": (422, "A CA certificate was presented as the card's certificate"),
    "certificate_untrusted_root": (422, "A certificate does not chain to a trusted JPKI root"),
    "certificate_bad_signature": (422, "A certificate's signature does not verify"),
    "certificate_wrong_purpose": (422, "A certificate is for the other JPKI purpose"),
    "certificate_not_yet_valid": (422, "A certificate is not valid yet"),
    "certificate_expired": (422, "A certificate has expired"),
    "certificate_key_usage_mismatch": (422, "A certificate's key usage does not allow this"),
    "certificate_policy_mismatch": (422, "A certificate does not carry an accepted JPKI policy"),
    "certificate_unsupported_critical_extension": (
        422,
        "A certificate has a critical extension the service does not process",
    ),
    "certificate_path_invalid": (422, "A certificate path did not validate"),
    "certificate_revoked": (422, "A certificate is revoked"),
    "certificate_revocation_unavailable": (503, "No usable revocation data for a certificate"),
    "certificate_revocation_stale": (503, "The revocation data for a certificate is out of date"),
    "unknown_provider": (404, "No such provider, or it is disabled"),
    # The OpenID Provider's own pages (its OAuth endpoints answer OAuth errors instead)
    "authorization_not_found": (404, "No such authorization request, or not this browser's"),
    # Signed documents (issue 9)
    "document_needs_identity_mode": (422, "A signed document needs identity mode"),
    "document_too_long": (422, "The purpose does not fit on the one-page document"),
    "document_not_requested": (404, "This session does not ask for a signed document"),
    "document_not_issued": (409, "The kiosk has not fetched this session's document yet"),
    "document_not_found": (404, "No such document"),
    "document_withheld": (
        403,
        "The signed document discloses more than the person consented to this provider",
    ),
    "identity_not_verified": (409, "The document can be signed only after a verified identity"),
    "document_signing_closed": (410, "The time to sign this session's document has passed"),
    "document_already_signed": (409, "This session's document is already signed"),
    "document_declined": (409, "The person declined to sign this session's document"),
    "document_mismatch": (422, "The signed file is not the document issued for this session"),
    "document_signature_count": (422, "The document must carry exactly one signature"),
    "document_not_a_pdf": (422, "The signed document is not a readable PDF"),
    "document_no_signature": (422, "The document is not signed"),
    "document_modified": (422, "The signed content was changed after signing"),
    "document_signature_invalid": (422, "The document's signature does not verify"),
    "document_partial_coverage": (422, "The signature does not cover the whole document"),
    "document_changed_after_signing": (422, "The document was changed after it was signed"),
    "document_timestamp_invalid": (422, "The signature's timestamp does not verify"),
    "document_timestamp_required": (422, "The signature needs a trusted timestamp (PAdES B-T)"),
    "document_certificate_invalid": (422, "The signer's certificate did not validate"),
    "document_signer_mismatch": (
        422,
        "The document was signed with another card than the identity was verified with",
    ),
    "identity_not_found": (404, "No identity linked to this provider under that subject id"),
    "credential_malformed": (422, "The credential could not be parsed"),
    "status_list_not_found": (404, "No such status list"),
    # Wallet credentials (docs/wallet.md)
    "credential_offer_exists": (409, "This session already made its credential offer"),
    "credential_offer_too_late": (
        410,
        "A credential offer is made right after the verification, not later",
    ),
    "wallet_credential_not_found": (404, "No such wallet credential"),
    "wallet_credential_revoked": (409, "The wallet credential is revoked: its status is final"),
    "dcql_unsupported": (422, "The DCQL query asks for something this verifier cannot check"),
    "presentation_request_not_found": (404, "No such presentation request for this provider"),
    "presentation_request_expired": (410, "The presentation request was answered or expired"),
    # The audit log's API (commonid.audit.api)
    "audit_no_checkpoint": (404, "No checkpoint has been signed yet"),
    "audit_bad_tree_size": (422, "No proof between those tree sizes"),
    "audit_log_fork": (409, "The log is not consistent with its last signed checkpoint"),
    "service_unavailable": (503, "A dependency of the service is not available"),
    "internal_error": (500, "Internal error"),
}


class Problem(Exception):
    """Raise to answer with a problem document; ``code`` must be in PROBLEM_TYPES
    (or be a validation reason code, answered with ``status``)."""

    def __init__(
        self,
        code: str,
        detail: str = "",
        *,
        status: int | None = None,
        title: str | None = None,
        headers: dict[str, str] | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        known_status, known_title = PROBLEM_TYPES.get(code, (status or 422, code))
        self.code = code
        self.status = status or known_status
        self.title = title or known_title
        self.detail = detail or self.title
        self.headers = headers or {}
        self.extra = extra or {}
        super().__init__(f"{code}: {self.detail}")
