"""Every code the service can answer is in the documented table."""

from __future__ import annotations

from pathlib import Path

from commonid.problems import PROBLEM_TYPES
from jpki.documents import DocumentReason
from jpki.validation import ReasonCode

DOCS = Path(__file__).resolve().parents[2] / "docs" / "service.md"


def test_every_validation_reason_has_a_problem_code() -> None:
    for reason in ReasonCode:
        if reason is not ReasonCode.VALID:
            assert f"certificate_{reason.value}" in PROBLEM_TYPES


def test_every_document_verdict_has_a_problem_code() -> None:
    for reason in DocumentReason:
        if reason is not DocumentReason.VALID:
            assert f"document_{reason.value}" in PROBLEM_TYPES


def test_every_problem_code_is_documented_with_its_status() -> None:
    docs = DOCS.read_text(encoding="utf-8")
    for code, (status, _title) in PROBLEM_TYPES.items():
        assert f"| `{code}` | {status} |" in docs, code
