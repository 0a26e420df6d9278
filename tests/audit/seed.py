"""A plausible PoC log over several days, for the reviewer pages and report tests."""

from __future__ import annotations

import hashlib
import random
from datetime import timedelta

from commonid.audit.log import AuditLog
from tests.audit.conftest import SteppingClock

REASONS = ["certificate_revoked", "signature_invalid", "certificate_expired", "session_expired"]


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def seed_poc_log(log: AuditLog, clock: SteppingClock, *, days: int = 7, seed: int = 8) -> dict:
    """Sessions with outcomes, rejections, releases and CRL refreshes; returns what was logged."""
    randomizer = random.Random(seed)
    logged = {"verified": 0, "rejected": 0, "reuse_granted": 0, "reasons": {}, "latencies": []}
    first_morning = clock()
    for day in range(days):
        clock.now = first_morning + timedelta(days=day)
        log.append(
            "revocation.refreshed",
            trust_anchor="sign_ca_test",
            revocation_source="crl",
            revocation_this_update=clock(),
            revocation_next_update=clock() + timedelta(days=1),
            revocation_evidence_hash=_hash(f"crl {day}"),
            revoked_count=3 + day,
        )
        for number in range(randomizer.randint(4, 9)):
            session = f"ses_d{day}n{number}"
            reuse = number % 4 == 3
            log.append(
                "session.created",
                session_id=session,
                provider_id="prv_b" if reuse else "prv_a",
                mode="auth" if reuse else "identity",
                claims=["name", "birthdate"],
                reuse=reuse,
            )
            log.append(
                "session.consent_given", session_id=session, kiosk_id="ksk_1", claims=["name"]
            )
            clock.advance(40)
            latency = randomizer.uniform(180, 900)
            if randomizer.random() < 0.2:
                reason = REASONS[randomizer.randrange(len(REASONS))]
                log.append(
                    "validation.outcome",
                    session_id=session,
                    certificate_kind="sign",
                    outcome="invalid",
                    reason_code=reason,
                    trust_anchor="sign_ca_test",
                    certificate_serial_hash=_hash(session),
                    revocation_source="crl",
                )
                status = "rejected"
                logged["reasons"][reason] = logged["reasons"].get(reason, 0) + 1
            else:
                log.append(
                    "validation.outcome",
                    session_id=session,
                    certificate_kind="sign",
                    outcome="valid",
                    trust_anchor="sign_ca_test",
                    certificate_serial_hash=_hash(session),
                    revocation_source="crl",
                )
                status = "reuse_granted" if reuse else "verified"
                log.append(
                    "claims.released",
                    session_id=session,
                    provider_id="prv_b" if reuse else "prv_a",
                    subject_id=f"SUB{number}X{day}",
                    claims=["name"],
                    reuse=reuse,
                )
                reason = None
            log.append(
                "session.completed",
                session_id=session,
                status=status,
                reason_code=reason,
                latency_ms=latency,
            )
            logged[status] += 1
            logged["latencies"].append(round(latency, 3))
            clock.advance(1800)
    log.checkpoint()
    return logged
