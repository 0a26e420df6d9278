"""Reviewer pages, figures from the log, and the signed PDF report (validated with pyHanko)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from asn1crypto import x509 as asn1_x509
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature
from pyhanko.sign.validation.status import SignatureCoverageLevel
from pyhanko_certvalidator import ValidationContext

from commonid.api.problems import install_problem_handlers
from commonid.audit.api import AuditAccess, install_audit
from commonid.audit.figures import compute_figures, percentile
from commonid.audit.log import AuditLog
from commonid.audit.report import ReportSigning, report_pdf
from commonid.audit.report_signing import ReportSigner, create_test_organisation
from commonid.audit.web import install_reviewer_pages
from tests.audit.seed import seed_poc_log

REVIEWER = "rvw_pages-token"
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def seeded(audit_log: AuditLog, clock) -> dict:
    return seed_poc_log(audit_log, clock)


SERVICE = "did:key:z6MkReviewTest"


@pytest.fixture
def report_signer(tmp_path: Path) -> ReportSigner:
    return create_test_organisation(tmp_path / "report-signing")


def reviewer_app(audit_log: AuditLog, signer, report_signer: ReportSigner) -> FastAPI:
    app = FastAPI()
    install_problem_handlers(app)
    install_audit(app, AuditAccess(audit_log, [signer.verifier()], SecretStr(REVIEWER)))
    install_reviewer_pages(app, ReportSigning(report_signer.directory, SERVICE))
    return app


@pytest.fixture
def pages(audit_log, signer, report_signer, seeded) -> TestClient:
    client = TestClient(reviewer_app(audit_log, signer, report_signer))
    client.post("/reviewer/login", data={"token": REVIEWER}, follow_redirects=False)
    return client


def test_figures_are_what_the_log_says(audit_log: AuditLog, seeded: dict, clock) -> None:
    start = datetime(2026, 11, 25, tzinfo=UTC)
    figures = compute_figures(audit_log, start, start + timedelta(days=30))
    assert figures.outcomes["verified"] == seeded["verified"]
    assert figures.outcomes["rejected"] == seeded["rejected"]
    assert figures.outcomes["reuse_granted"] == seeded["reuse_granted"]
    # Logged twice per refused session (validation outcome, completion), counted once.
    assert figures.rejection_reasons == seeded["reasons"]
    assert len(figures.per_day) == 7
    assert figures.latency_percentiles()["p50"] == percentile(sorted(seeded["latencies"]), 0.5)
    assert figures.reuse_rate == seeded["reuse_granted"] / (
        seeded["verified"] + seeded["reuse_granted"]
    )
    assert figures.checkpoint is not None and figures.checkpoint.tree_size == audit_log.size()
    assert figures.consent_declined == seeded["declined"]
    assert figures.consent_withdrawn == seeded["withdrawn"]
    assert figures.visits == seeded["visits"]
    assert figures.card_counts["pin_wrong"] == seeded["pin_wrong"]
    assert figures.card_counts["card_removed"] == seeded["card_removed"]
    assert sorted(figures.visit_ms) == sorted(seeded["visit_ms"])
    assert figures.webhooks_delivered == seeded["webhooks"]
    assert set(figures.per_kiosk) == {"ksk_1", "ksk_2"}
    assert set(figures.per_provider) == {"prv_a", "prv_b"}
    assert figures.per_provider["prv_b"]["reuse_granted"] == seeded["reuse_granted"]
    # Reused claims were verified three days before each release.
    assert figures.reuse_ages_hours and set(figures.reuse_ages_hours) == {72.0}
    # Daily CRLs: the data was at most a day (and the 40 minutes before the first
    # session of the next day) old while held.
    (track,) = figures.revocation.values()
    assert len(track.installed) == 7 and 24 <= track.ages_hours(figures.observed_until)[0] < 26


def test_pages_need_the_reviewer_credential(audit_log, signer, report_signer, seeded) -> None:
    client = TestClient(reviewer_app(audit_log, signer, report_signer))
    assert client.get("/reviewer/", follow_redirects=False).status_code == 303
    refused = client.post("/reviewer/login", data={"token": "guess"}, follow_redirects=False)
    assert refused.status_code == 401
    accepted = client.post("/reviewer/login", data={"token": REVIEWER}, follow_redirects=False)
    assert accepted.status_code == 303
    cookie = accepted.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/reviewer/").status_code == 200


def test_dashboard_event_list_and_detail_with_its_proof(pages: TestClient, seeded) -> None:
    dashboard = pages.get("/reviewer/", params={"start": "2026-11-25", "end": "2026-12-02"}).text
    assert dashboard.count("<svg") == 4
    assert '<html lang="ja">' in dashboard and "窓口でのカード" in dashboard
    english = pages.get("/reviewer/", params={"start": "2026-11-25", "lang": "en"}).text
    assert '<html lang="en">' in english and "The card at the kiosk" in english
    assert "窓口でのカード" not in english
    # The language switch keeps the period.
    assert 'href="?start=2026-11-25&amp;lang=ja"' in english
    assert "certificate_revoked" in dashboard or "signature_invalid" in dashboard
    # No external assets: nothing is loaded from anywhere.
    assert not re.search(r'(src|href)="(https?:)?//', dashboard)
    listed = pages.get("/reviewer/events", params={"q": "ses_d2n1"}).text
    indexes = re.findall(r'href="/reviewer/events/(\d+)\?lang=ja"', listed)
    assert indexes
    detail = pages.get(f"/reviewer/events/{indexes[-1]}").text
    assert "ses_d2n1" in detail
    assert "証明は署名付きルートに一致します" in detail
    detail_en = pages.get(f"/reviewer/events/{indexes[-1]}", params={"lang": "en"}).text
    assert "the proof leads to the signed root" in detail_en


def test_signed_pdf_report_validates_with_pyhanko(
    audit_log: AuditLog, seeded, report_signer: ReportSigner, pages: TestClient
) -> None:
    start = datetime(2026, 11, 25, tzinfo=UTC)
    figures = compute_figures(audit_log, start, start + timedelta(days=7))
    pdf = report_pdf(figures, signer=report_signer, service=SERVICE, generated=datetime.now(UTC))
    reader = PdfFileReader(io.BytesIO(pdf))
    (signature,) = reader.embedded_signatures
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"  # PAdES
    # Trusted through the organisation's root, not through the signer's own certificate.
    assert report_signer.certificate.issuer == report_signer.root.subject
    assert report_signer.certificate.subject != report_signer.root.subject
    trust = asn1_x509.Certificate.load(report_signer.root.public_bytes(Encoding.DER))
    status = validate_pdf_signature(signature, ValidationContext(trust_roots=[trust]))
    assert status.intact and status.valid and status.trusted
    # The DSS (validation data) is appended after the signature: signature maintenance.
    assert status.coverage is SignatureCoverageLevel.ENTIRE_REVISION
    assert "/DSS" in reader.root
    # The page route serves the same kind of document.
    served = pages.get("/reviewer/report.pdf", params={"start": "2026-11-25", "end": "2026-12-02"})
    assert served.status_code == 200 and served.content.startswith(b"%PDF")
    html = pages.get("/reviewer/report.html", params={"start": "2026-11-25"}).text
    assert "2026-11-25" in html and figures.checkpoint is not None
    assert figures.checkpoint.note.split("\n")[2] in html


def test_without_signing_material_the_pdf_says_what_is_missing(
    audit_log: AuditLog, signer, tmp_path: Path, seeded
) -> None:
    app = FastAPI()
    install_audit(app, AuditAccess(audit_log, [signer.verifier()], SecretStr(REVIEWER)))
    install_reviewer_pages(app, ReportSigning(tmp_path / "nothing-here", SERVICE))
    client = TestClient(app)
    client.post("/reviewer/login", data={"token": REVIEWER}, follow_redirects=False)
    refused = client.get("/reviewer/report.pdf")
    assert refused.status_code == 503
    assert "report-signing-key.pem" in refused.text and "report-signer init" in refused.text


def test_a_bad_period_is_refused_not_crashed(pages: TestClient) -> None:
    assert pages.get("/reviewer/", params={"start": "yesterday"}).status_code == 422
    bad = pages.get("/reviewer/report.pdf", params={"start": "2026-12-02", "end": "2026-11-25"})
    assert bad.status_code == 422


def test_hashes_read_the_same_everywhere_and_lists_read_as_lists(
    audit_log: AuditLog, pages: TestClient, tmp_path: Path
) -> None:
    """One encoding for hashes (base64, as the signed note and the API have them), in the
    reviewer page and the exports too; a list field is shown item by item, not as a
    Python list's repr."""
    import base64
    import json

    from commonid.audit.export import export_jsonl, export_records

    fingerprints = ["a" * 64, "b" * 64]
    index = audit_log.append(
        "validation.outcome",
        session_id="ses_lists",
        certificate_kind="auth",
        outcome="valid",
        path_fingerprints=fingerprints,
    )
    audit_log.checkpoint()
    logged = audit_log.entry(index)
    assert logged is not None
    detail = pages.get(f"/reviewer/events/{logged.index}").text
    assert f"{fingerprints[0]}<br>{fingerprints[1]}" in detail
    assert "[&#39;" not in detail and "['" not in detail
    leaf = base64.b64encode(logged.leaf_hash).decode()
    assert f"<code>{leaf}</code>" in detail
    proof = pages.get(
        f"/v1/audit/entries/{logged.index}/proof", headers={"Authorization": f"Bearer {REVIEWER}"}
    ).json()
    assert proof["leaf_hash"] == leaf

    export = tmp_path / "log.jsonl"
    with export.open("w", encoding="utf-8") as out:
        export_jsonl(audit_log, out)
    lines = [json.loads(line) for line in export.read_text().splitlines()]
    exported = next(line for line in lines if line.get("index") == logged.index)
    assert exported["leaf_hash"] == leaf
    # An export written before (hex leaf hashes) still reads back to the same hashes.
    old = tmp_path / "old.jsonl"
    old.write_text(
        "".join(
            json.dumps(line | {"leaf_hash": base64.b64decode(line["leaf_hash"]).hex()}) + "\n"
            for line in lines
            if "leaf_hash" in line
        )
    )
    assert [r.leaf_hash for r in export_records(old)] == [
        r.leaf_hash for r in export_records(export)
    ]
