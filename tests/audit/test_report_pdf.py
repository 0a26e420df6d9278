"""The PoC report as a committee gets it: figures an independent count agrees with,
text that copies out in both languages, embedded fonts, and a signature that
pyHanko's own validator and poppler's pdfsig accept, years after the signer expired."""

from __future__ import annotations

import csv
import io
import json
import subprocess
from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from fastapi import FastAPI
from fastapi.testclient import TestClient
from pydantic import SecretStr

from commonid.audit.api import AuditAccess, install_audit
from commonid.audit.export import export_jsonl
from commonid.audit.figures import compute_figures
from commonid.audit.log import AuditLog
from commonid.audit.report import ReportSigning, report_pdf
from commonid.audit.report_signing import (
    CRL_DIRECTORY,
    ROOT_FILE,
    ReportSigner,
    create_test_organisation,
)
from commonid.audit.web import install_reviewer_pages
from tests.audit.seed import seed_poc_log
from tests.documents.tsa import LocalTsa, local_tsa

REVIEWER = "rvw_report-token"
SERVICE = "did:key:z6MkReportTest"
START = datetime(2026, 11, 25, tzinfo=UTC)
END = START + timedelta(days=7)
PYHANKO = str(Path(__file__).parents[2] / ".venv" / "bin" / "pyhanko")
pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture
def seeded(audit_log: AuditLog, clock) -> dict:
    return seed_poc_log(audit_log, clock)


def _independent_count(export: Path) -> dict:
    """Counts over the exported JSONL, written apart from commonid.audit.figures: the
    entries are grouped per session first, then each figure is read off the groups."""
    by_session: dict[str, list[dict]] = defaultdict(list)
    others: list[dict] = []
    for line in export.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        if "entry" not in record:
            continue  # a checkpoint line
        entry = json.loads(record["entry"])
        moment = datetime.fromisoformat(entry["time"].replace("Z", "+00:00"))
        if not START <= moment < END:
            continue
        session = entry["data"].get("session_id")
        (by_session[session] if session else others).append(entry)
    per_day: Counter[tuple[str, str]] = Counter()
    reasons: Counter[str] = Counter()
    card: Counter[str] = Counter()
    kiosk_of: dict[str, str] = {}
    per_kiosk: Counter[tuple[str, str]] = Counter()
    for session, entries in by_session.items():
        types = {entry["type"]: entry for entry in entries}
        for entry in entries:
            if "kiosk_id" in entry["data"]:
                kiosk_of.setdefault(session, entry["data"]["kiosk_id"])
        if "kiosk.visit_ended" in types:
            for name, value in types["kiosk.visit_ended"]["data"].items():
                if isinstance(value, int) and name not in ("duration_ms",):
                    card[name] += value
            card["visits"] += 1
        done = types.get("session.completed")
        if done is None:
            continue
        status = done["data"]["status"]
        per_day[(done["time"][:10], status)] += 1
        per_kiosk[(kiosk_of.get(session, "none"), status)] += 1
        if status != "verified" and status != "reuse_granted":
            reasons[done["data"].get("reason_code") or "?"] += 1
    return {
        "per_day": per_day,
        "reasons": reasons,
        "card": card,
        "per_kiosk": per_kiosk,
        "declined": sum(
            1 for entries in by_session.values() for e in entries if e["type"].endswith("declined")
        ),
        "withdrawn": sum(1 for e in others if e["type"] == "consent.withdrawn"),
    }


def _table(client: TestClient, key: str) -> list[list[str]]:
    response = client.get(
        f"/reviewer/tables/{key}.csv", params={"start": "2026-11-25", "end": "2026-12-02"}
    )
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/csv")
    text = response.content.decode("utf-8-sig")
    return list(csv.reader(io.StringIO(text)))


def test_the_tables_agree_with_an_independent_count_over_the_export(
    audit_log: AuditLog, signer, seeded, tmp_path: Path
) -> None:
    export = tmp_path / "log.jsonl"
    with export.open("w", encoding="utf-8") as out:
        export_jsonl(audit_log, out)
    counted = _independent_count(export)

    app = FastAPI()
    install_audit(app, AuditAccess(audit_log, [signer.verifier()], SecretStr(REVIEWER)))
    install_reviewer_pages(app, ReportSigning(tmp_path / "unused", SERVICE))
    client = TestClient(app)
    client.post("/reviewer/login", data={"token": REVIEWER}, follow_redirects=False)

    header, *rows = _table(client, "outcomes_per_day")
    assert header[:2] == ["日付 (date)", "和暦 (Japanese era date)"]
    statuses = {"本人確認完了 (verified)": "verified", "拒否 (rejected)": "rejected"}
    statuses["再利用 (reuse granted)"] = "reuse_granted"
    for row in rows:
        for column, status in statuses.items():
            assert int(row[header.index(column)]) == counted["per_day"][(row[0], status)], row
    assert rows[0][1] == "令和8年11月25日"

    _, *reason_rows = _table(client, "rejection_reasons")
    assert {code: int(n) for code, n in reason_rows} == counted["reasons"]

    _, *card_rows = _table(client, "card_at_kiosk")
    shown = {label.split(" / ")[1]: int(value) for label, value in card_rows}
    assert shown["kiosk visits"] == counted["card"]["visits"]
    assert shown["wrong PIN (authentication)"] == counted["card"]["pin_wrong"]
    assert shown["cards removed mid-flow"] == counted["card"]["card_removed"]

    kiosk_header, *kiosk_rows = _table(client, "outcomes_per_kiosk")
    for row in kiosk_rows:
        for column, status in statuses.items():
            assert int(row[kiosk_header.index(column)]) == counted["per_kiosk"][(row[0], status)]

    _, *consent_rows = _table(client, "consent")
    assert [int(n) for _, n in consent_rows] == [counted["declined"], counted["withdrawn"]]
    assert client.get("/reviewer/tables/nonsense.csv").status_code == 404


def _pdftotext(pdf: bytes) -> str:
    return subprocess.run(
        ["pdftotext", "-", "-"], input=pdf, capture_output=True, check=True
    ).stdout.decode("utf-8")


def test_text_copies_out_in_both_languages_and_every_font_is_embedded(
    audit_log: AuditLog, seeded, tmp_path: Path
) -> None:
    signer = create_test_organisation(tmp_path / "signing")
    figures = compute_figures(audit_log, START, END)
    pdf = report_pdf(figures, signer=signer, service=SERVICE, generated=datetime.now(UTC))
    text = _pdftotext(pdf)
    for heading in (
        "共通ID 実証実験(PoC)結果報告書",
        "Common-ID proof of concept: results",
        "1. 範囲と方法",
        "1. Scope and method",
        "4. 窓口でのカード",
        "4. The card at the kiosk",
        "7. PoCの目標との対照",
        "7. Against the PoC's goals",
        "令和8年11月25日〜令和8年12月1日",
    ):
        assert heading in text, heading
    # Figures read back as written: the headline count and a per-kiosk total.
    assert str(figures.verifications) in text.split()
    assert f"{seeded['pin_wrong']}" in text.split()
    path = tmp_path / "report.pdf"
    path.write_bytes(pdf)
    listed = subprocess.run(["pdffonts", str(path)], capture_output=True, text=True, check=True)
    fonts = listed.stdout.splitlines()[2:]
    assert fonts and any("IPAPGothic" in line for line in fonts)
    # Columns: name type encoding emb sub uni ...: "emb" is the fourth from the right.
    assert all(line.split()[-5] == "yes" for line in fonts), listed.stdout


def _trust_files(signer: ReportSigner, tsa: LocalTsa, tmp_path: Path) -> list[str]:
    tsa_root = tmp_path / "tsa-root.pem"
    tsa_root.write_bytes(tsa.root.public_bytes(Encoding.PEM))
    return ["--trust", str(signer.directory / ROOT_FILE), "--trust", str(tsa_root)]


def _adesverify(pdf: Path, trust: list[str], at: datetime | None = None) -> tuple[bool, str]:
    command = [PYHANKO, "sign", "adesverify", *trust, "--trust-replace", "--executive-summary"]
    if at is not None:
        command += ["--validation-time", at.isoformat()]
    done = subprocess.run([*command, str(pdf)], capture_output=True, text=True)
    return done.returncode == 0 and ":VALID" in done.stdout, done.stdout + done.stderr


def test_the_signature_validates_after_the_signer_expired_and_catches_a_changed_byte(
    audit_log: AuditLog, seeded, tmp_path: Path
) -> None:
    signer = create_test_organisation(tmp_path / "signing", signer_valid_for=timedelta(days=2))
    figures = compute_figures(audit_log, START, END)
    generated = datetime.now(UTC)
    later = generated + timedelta(days=400)  # long after the signer's certificate expired
    assert signer.certificate.not_valid_after_utc < later
    with local_tsa() as tsa:
        # The operator keeps the TSA's CRL next to the organisation's: both go in the DSS.
        (signer.directory / CRL_DIRECTORY / "tsa.crl").write_bytes(
            tsa.crl.public_bytes(Encoding.DER)
        )
        signing = ReportSigning(signer.directory, SERVICE, tsa.url, (tsa.root,))
        pdf = signing.signed_report(figures, generated=generated)
        unstamped = ReportSigning(signer.directory, SERVICE).signed_report(
            figures, generated=generated
        )
    signed, bare = tmp_path / "report.pdf", tmp_path / "bare.pdf"
    signed.write_bytes(pdf)
    bare.write_bytes(unstamped)
    trust = _trust_files(signer, tsa, tmp_path)

    # pyHanko's AdES validator, the command docs/audit.md gives reviewers.
    assert _adesverify(signed, trust)[0]
    valid_later, output = _adesverify(signed, trust, later)
    assert valid_later, output
    # Without the timestamp nothing proves when it was signed: expired means invalid.
    assert _adesverify(bare, trust)[0]
    assert not _adesverify(bare, trust, later)[0]

    # poppler's pdfsig checks the signature over the signed bytes on its own.
    checked = subprocess.run(["pdfsig", str(signed)], capture_output=True, text=True)
    assert "Signature Validation: Signature is Valid." in checked.stdout, checked.stdout
    assert "ETSI.CAdES.detached" in checked.stdout

    # One changed byte inside the signed range, and both say so.
    position = pdf.index(b"/Producer")
    tampered_bytes = pdf[:position] + b"/Producex" + pdf[position + 9 :]
    tampered = tmp_path / "tampered.pdf"
    tampered.write_bytes(tampered_bytes)
    assert not _adesverify(tampered, trust)[0]
    broken = subprocess.run(["pdfsig", str(tampered)], capture_output=True, text=True)
    assert "Signature is Valid." not in broken.stdout
