"""Everything the service holds while it runs, built once from Settings."""

from __future__ import annotations

from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path

import sqlalchemy as sa
from cryptography import x509
from sqlalchemy.orm import Session as DbSession
from sqlalchemy.orm import sessionmaker

from commonid.audit.log import AuditLog, Clock, system_clock
from commonid.metrics import ServiceMetrics
from commonid.openid4vc.issuer_keys import CredentialIssuerKeys
from commonid.operator import LinkageSource, linkage_source
from commonid.settings import Settings
from commonid.shared_keys import check_shared_keys
from commonid.store import status_lists
from commonid.store.database import (
    WriterGate,
    create_engine,
    gate_writes_at_first_statement,
    read_session_factory,
    session_factory,
    upgrade,
    write_transaction,
    writer_gate,
)
from commonid.store.encryption import AttributeCipher
from commonid.trust import refresh_revocation, revocation_data_ages, trust_policy_from_settings
from did.keys import IssuerKeyring, IssuerKeyringFile
from jpki.validation import TrustPolicy, ValidationCache

# Clock and system_clock are the audit log's own: with system_clock, audit entries on
# PostgreSQL take the database's clock under the append lock (commonid.audit.pg_append).


@dataclass
class Runtime:
    settings: Settings
    engine: sa.Engine
    sessions: sessionmaker
    cipher: AttributeCipher
    pairwise_secret: bytes
    # The issuer key file, re-read when it changes (rotation without restart): use .keyring.
    keyring_file: IssuerKeyringFile
    trust_policy: TrustPolicy
    clock: Clock = system_clock
    metrics: ServiceMetrics = field(default_factory=ServiceMetrics)
    # The append-only audit log (commonid.audit); None only in a bare runtime.
    audit: AuditLog | None = None
    # Roots of the timestamp authorities whose tokens a signed document may carry.
    timestamp_roots: tuple[x509.Certificate, ...] = ()
    # Path checks of card certificates already seen (revocation is checked every time).
    validation_cache: ValidationCache = field(default_factory=ValidationCache)
    # Where write transactions queue on SQLite (commonid.store.database.WriterGate).
    writer_gate: WriterGate | None = None
    # Sessions for reads alone (commonid.store.database.read_session_factory).
    read_sessions: sessionmaker | None = None
    # A platform operator's certificate linkage records (commonid.operator), if configured.
    linkage: LinkageSource | None = None
    # The SD-JWT VC issuer's keys (commonid.openid4vc); None only in a bare runtime.
    credential_issuer: CredentialIssuerKeys | None = None

    def write_transaction(self) -> AbstractContextManager[DbSession]:
        """A transaction that is going to write; on SQLite through the writer gate, taken
        at its first writing statement (commonid.store.database.write_transaction)."""
        return write_transaction(self.sessions, self.writer_gate)

    def read_only(self) -> AbstractContextManager[DbSession]:
        """A session for a request that only reads: nothing it does is committed (on
        PostgreSQL it runs in autocommit, without BEGIN and COMMIT round trips)."""
        return (self.read_sessions or self.sessions)()

    @property
    def keyring(self) -> IssuerKeyring:
        """The issuer key ring as its file is now (a rotation reaches a running service)."""
        return self.keyring_file.keyring()

    @property
    def service_did(self) -> str:
        return self.settings.service_did or self.keyring.current.did

    @property
    def session_ttl(self) -> timedelta:
        return timedelta(seconds=self.settings.session_ttl_seconds)

    def refresh_revocation(self, *, force: bool = False) -> list[str]:
        """Fetch due (or all) CRLs; update the revocation-age metric and append a
        ``revocation.refreshed`` audit entry for each CRL installed. Returns problems."""
        from commonid import auditing  # it imports this module for its types

        now = self.clock()
        refresh = refresh_revocation(self.trust_policy, at=now, force=force)
        for ca, age in revocation_data_ages(self.trust_policy, at=now).items():
            self.metrics.revocation_data_age.labels(ca).set(age)
        if refresh.installed and self.audit is not None:
            with self.sessions.begin() as db:
                self.audit.append_many_in(
                    db, [auditing.revocation_refreshed(crl) for crl in refresh.installed]
                )
        return list(refresh.problems)

    def close(self) -> None:
        self.engine.dispose()


def build_runtime(
    settings: Settings,
    *,
    clock: Clock = system_clock,
    migrate: bool = True,
    trust_policy: TrustPolicy | None = None,
) -> Runtime:
    """Open the database (migrating it to head), keys, secrets and trust named by settings."""
    settings = settings.with_generated_secrets()
    url = settings.effective_database_url
    if migrate:
        upgrade(url)
    engine = create_engine(url)
    assert settings.pairwise_secret is not None
    keyring = IssuerKeyring.open(settings.issuer_key_file or settings.data_dir / "issuer-key.json")
    timestamp_roots = tuple(load_certificate(path) for path in settings.timestamp_roots)
    if settings.timestamp_url and not timestamp_roots:
        # B-T is required then, and no timestamp could ever be trusted.
        raise ValueError("timestamp_url is set: name the TSA's root in timestamp_roots")
    sessions = session_factory(engine)
    try:
        check_shared_keys(sessions, settings, keyring, now=clock())
    except BaseException:
        engine.dispose()
        raise
    gate = writer_gate(url)
    if gate is not None:
        gate_writes_at_first_statement(engine, sessions)
    runtime = Runtime(
        settings=settings,
        engine=engine,
        sessions=sessions,
        cipher=AttributeCipher(settings.attribute_key_bytes(), settings.current_attribute_key_id),
        pairwise_secret=settings.pairwise_secret.get_secret_value().encode(),
        keyring_file=IssuerKeyringFile(keyring),
        clock=clock,
        trust_policy=trust_policy or trust_policy_from_settings(settings),
        timestamp_roots=timestamp_roots,
        writer_gate=gate,
        read_sessions=read_session_factory(engine),
        linkage=linkage_source(settings),
        credential_issuer=CredentialIssuerKeys.from_settings(settings),
    )
    from commonid.audit.service import audit_log_for_runtime  # it imports this module

    runtime.audit = audit_log_for_runtime(runtime)
    with runtime.sessions.begin() as db:
        status_lists.ensure_lists(db, base_url=settings.public_url, now=clock())
    runtime.refresh_revocation(force=True)
    return runtime


def load_certificate(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)
