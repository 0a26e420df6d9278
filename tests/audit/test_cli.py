"""`commonid audit`: checkpoint, prove, export and verify against the service's database."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sqlalchemy.orm import sessionmaker
from typer.testing import CliRunner

from commonid.audit.cli import audit_app
from commonid.audit.log import AuditLog
from commonid.audit.service import checkpoint_signer
from commonid.store.database import create_engine, upgrade
from did.keys import IssuerKeyring
from tests.audit.conftest import session_event

ORIGIN = "cli.test/audit"


@pytest.fixture
def service_env(tmp_path: Path, sqlite_url: str) -> dict[str, str]:
    upgrade(sqlite_url)
    key_file = tmp_path / "issuer.json"
    keyring = IssuerKeyring.open(key_file)
    engine = create_engine(sqlite_url)
    log = AuditLog(sessionmaker(engine), checkpoint_signer(keyring, ORIGIN))
    log.append_many([session_event(n) for n in range(12)])
    log.checkpoint()
    log.append_many([session_event(n) for n in range(12, 20)])
    engine.dispose()
    return {
        "COMMONID_DATABASE_URL": sqlite_url,
        "COMMONID_DATA_DIR": str(tmp_path / "data"),
        "COMMONID_ISSUER_KEY_FILE": str(key_file),
        "COMMONID_AUDIT_ORIGIN": ORIGIN,
    }


def test_checkpoint_prove_export_verify(service_env: dict[str, str], tmp_path: Path) -> None:
    runner = CliRunner()
    signed = runner.invoke(audit_app, ["checkpoint"], env=service_env)
    assert signed.exit_code == 0, signed.output
    assert signed.output.startswith(f"{ORIGIN}\n20\n")

    proof = runner.invoke(audit_app, ["prove", "7"], env=service_env)
    assert proof.exit_code == 0, proof.output
    document = json.loads(proof.output)
    assert document["tree_size"] == 20 and document["verified"] is True
    consistency = runner.invoke(audit_app, ["prove", "--from-size", "12"], env=service_env)
    assert json.loads(consistency.output)["verified"] is True

    checked = runner.invoke(audit_app, ["verify"], env=service_env)
    assert checked.exit_code == 0, checked.output
    assert "entries checked: 20" in checked.output
    assert "[reproduced] size 12" in checked.output and "[reproduced] size 20" in checked.output

    export = tmp_path / "log.jsonl"
    exported = runner.invoke(audit_app, ["export", str(export)], env=service_env)
    assert exported.exit_code == 0, exported.output
    lines = export.read_text().splitlines()
    verifier_key = next(
        line.removeprefix("keys: ")
        for line in checked.output.splitlines()
        if line.startswith("keys:")
    )
    # Offline: only the export and the public verifier key.
    offline = runner.invoke(
        audit_app, ["verify", "--export", str(export), "--key", verifier_key, "--origin", ORIGIN]
    )
    assert offline.exit_code == 0, offline.output

    line = json.loads(lines[7])
    line["entry"] = line["entry"].replace("ses_000007", "ses_000099")
    lines[7] = json.dumps(line)
    export.write_text("\n".join(lines) + "\n")
    tampered = runner.invoke(
        audit_app, ["verify", "--export", str(export), "--key", verifier_key, "--origin", ORIGIN]
    )
    assert tampered.exit_code == 1
    assert "entry_edited at index 7" in tampered.output
    assert "result: FAILED" in tampered.output


def test_report_writes_html_a_signed_pdf_and_csv_tables(
    service_env: dict[str, str], tmp_path: Path
) -> None:
    import io

    from pyhanko.pdf_utils.reader import PdfFileReader

    out = tmp_path / "report"
    command = ["report", str(out), "--start", "2020-01-01", "--end", "2100-01-01"]
    # No signing material yet: refused with what to do, nothing half-signed.
    unsigned = CliRunner().invoke(audit_app, command, env=service_env)
    assert unsigned.exit_code == 2 and "report-signer init" in unsigned.output
    assert not (out / "commonid-poc-report.pdf").exists()
    init = CliRunner().invoke(audit_app, ["report-signer", "init"], env=service_env)
    assert init.exit_code == 0, init.output
    assert "organisation-root.pem" in init.output
    again = CliRunner().invoke(audit_app, ["report-signer", "init"], env=service_env)
    assert again.exit_code == 1  # an existing signer is never replaced silently
    made = CliRunner().invoke(audit_app, command, env=service_env)
    assert made.exit_code == 0, made.output
    assert "共通ID 実証実験(PoC)結果報告書" in (out / "report.html").read_text()
    pdf = (out / "commonid-poc-report.pdf").read_bytes()
    (signature,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    assert signature.sig_object["/SubFilter"] == "/ETSI.CAdES.detached"
    assert "Common-ID PoC report signer" in signature.signer_cert.subject.human_friendly
    tables = sorted(path.name for path in out.glob("*.csv"))
    assert "outcomes_per_day.csv" in tables and "goals.csv" in tables
    shown = CliRunner().invoke(audit_app, ["report-signer", "show"], env=service_env)
    assert shown.exit_code == 0 and "Common-ID demo organisation test CA" in shown.output


def test_registered_on_the_commonid_command(service_env: dict[str, str]) -> None:
    from commonid.cli import app

    checked = CliRunner().invoke(app, ["audit", "verify"], env=service_env)
    assert checked.exit_code == 0, checked.output
    assert "[reproduced] size 12" in checked.output


@pytest.fixture
def rewritten_env(tmp_path: Path, database_url: str) -> dict[str, str]:
    """A log whose entry 3 was rewritten with a recomputed leaf hash and whose
    checkpoints were deleted: the entries agree with each other again."""
    import sqlalchemy as sa

    from commonid.audit.log import entry_bytes
    from commonid.audit.merkle import leaf_hash

    upgrade(database_url)
    key_file = tmp_path / "issuer.json"
    keyring = IssuerKeyring.open(key_file)
    engine = create_engine(database_url)
    log = AuditLog(sessionmaker(engine), checkpoint_signer(keyring, ORIGIN))
    log.append_many([session_event(n) for n in range(8)])
    log.checkpoint()
    original = log.entry(3)
    assert original is not None
    document = json.loads(original.entry)
    document["data"]["session_id"] = "ses_forged"
    forged = entry_bytes(3, original.logged_at, document["type"], document["data"])
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE audit_entries SET entry = :entry, leaf_hash = :leaf WHERE idx = 3"),
            {"entry": forged.decode(), "leaf": leaf_hash(forged)},
        )
        connection.execute(sa.text("DELETE FROM audit_checkpoints"))
    engine.dispose()
    return {
        "COMMONID_DATABASE_URL": database_url,
        "COMMONID_DATA_DIR": str(tmp_path / "data"),
        "COMMONID_ISSUER_KEY_FILE": str(key_file),
        "COMMONID_AUDIT_ORIGIN": ORIGIN,
    }


def test_verify_without_any_checkpoint_fails_unless_explicitly_allowed(
    rewritten_env: dict[str, str],
) -> None:
    runner = CliRunner()
    refused = runner.invoke(audit_app, ["verify"], env=rewritten_env)
    assert refused.exit_code == 1, refused.output
    assert "checkpoints checked: 0" in refused.output
    assert "result: FAILED" in refused.output and "result: OK" not in refused.output
    assert "no_checkpoint: no signed checkpoint was checked" in refused.output

    allowed = runner.invoke(audit_app, ["verify", "--allow-no-checkpoint"], env=rewritten_env)
    assert allowed.exit_code == 0, allowed.output
    assert "result: OK WITHOUT CHECKPOINT" in allowed.output
