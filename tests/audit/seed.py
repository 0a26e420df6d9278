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
    logged |= {"declined": 0, "withdrawn": 0, "pin_wrong": 0, "card_removed": 0, "visits": 0}
    logged |= {"webhooks": 0, "visit_ms": []}
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
            kiosk = "ksk_1" if number % 2 else "ksk_2"
            if number == 5:  # the person changed their mind at the kiosk
                log.append("session.consent_declined", session_id=session, kiosk_id=kiosk)
                log.append(
                    "session.completed",
                    session_id=session,
                    provider_id="prv_a",
                    mode="identity",
                    status="rejected",
                    reason_code="consent_declined",
                )
                _visit(log, logged, session, kiosk, "declined", 20_000.0, {})
                logged["declined"] += 1
                logged["rejected"] += 1
                logged["reasons"]["consent_declined"] = (
                    logged["reasons"].get("consent_declined", 0) + 1
                )
                continue
            log.append("session.consent_given", session_id=session, kiosk_id=kiosk, claims=["name"])
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
                    verified_at=clock() - timedelta(days=3) if reuse else None,
                )
                reason = None
            log.append(
                "session.completed",
                session_id=session,
                provider_id="prv_b" if reuse else "prv_a",
                mode="auth" if reuse else "identity",
                status=status,
                reason_code=reason,
                latency_ms=latency,
                verification_ms=latency / 10,
            )
            counts = {"pin_wrong": number % 3, "card_removed": int(number == 2)}
            duration = randomizer.uniform(40_000, 200_000)
            _visit(log, logged, session, kiosk, status, duration, counts)
            if status != "rejected":
                log.append(
                    "webhook.delivered",
                    delivery_id=f"whd_{session}",
                    provider_id="prv_a",
                    event_type="session.completed",
                    attempts=1,
                    status_code=200,
                )
                logged["webhooks"] += 1
            logged[status] += 1
            logged["latencies"].append(round(latency, 3))
            clock.advance(1800)
        if day == 3:
            log.append("consent.withdrawn", provider_id="prv_b", subject_id="SUB1X0")
            logged["withdrawn"] += 1
    log.checkpoint()
    return logged


def _visit(
    log: AuditLog,
    logged: dict,
    session: str,
    kiosk: str,
    outcome: str,
    duration_ms: float,
    counts: dict[str, int],
) -> None:
    log.append(
        "kiosk.visit_ended",
        session_id=session,
        kiosk_id=kiosk,
        outcome=outcome,
        duration_ms=duration_ms,
        card_ms=duration_ms / 4,
        service_ms=duration_ms / 20,
        **counts,
    )
    logged["visits"] += 1
    logged["visit_ms"].append(round(duration_ms, 3))
    for name, count in counts.items():
        logged[name] += count
