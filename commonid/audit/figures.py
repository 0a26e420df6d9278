"""PoC figures computed from the audit log itself, so a reviewer can recompute them.

One pass over the entries covered by a signed checkpoint, keeping those logged
in [start, end) (UTC). Each figure counts named event types and fields only
(``FIGURE_SOURCES`` lists them for the report's appendix):

- outcomes per day, provider, kiosk and mode: ``session.completed`` status (the
  kiosk of a session is the one that recorded its consent or card response);
- rejection reasons, once per session, under the code the service answered with:
  ``session.completed``, else ``card_response.rejected``, else ``validation.outcome``;
- reuse rate and the age of reused claims: ``claims.released`` (reuse, verified_at);
- consent declined and withdrawn: ``session.consent_declined``, ``consent.withdrawn``;
- times: ``kiosk.visit_ended`` (visit, card and service time as the kiosk measured
  them), ``session.completed`` (latency_ms from creation, verification_ms: the
  service's own time for the card response);
- the card at the kiosk: ``kiosk.visit_ended`` counts;
- revocation: ``revocation.refreshed`` (data age while each list was held),
  rejections whose reason is a revocation, ``credential.revoked``,
  ``webhook.delivered`` / ``webhook.failed``.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from commonid.audit.log import AuditLog, StoredCheckpoint

# Counted by the card-at-the-kiosk figures, in this order.
CARD_COUNTS = ("pin_wrong", "password_wrong", "last_try_confirmed", "card_blocked", "card_removed")

# figure -> the event types (and fields) it counts: the report's appendix.
FIGURE_SOURCES: dict[str, tuple[str, ...]] = {
    "outcomes": ("session.completed (status, provider_id, mode)",),
    "per_kiosk": (
        "session.completed (status)",
        "session.consent_given / session.consent_declined / card_response.received (kiosk_id)",
    ),
    "rejections": (
        "session.completed (reason_code)",
        "card_response.rejected (reason_code)",
        "validation.outcome (outcome, reason_code)",
    ),
    "reuse": ("claims.released (reuse, verified_at)",),
    "consent": ("session.consent_declined", "consent.withdrawn"),
    "times": (
        "kiosk.visit_ended (duration_ms, card_ms, service_ms)",
        "session.completed (latency_ms, verification_ms)",
    ),
    "card": ("kiosk.visit_ended (" + ", ".join(CARD_COUNTS) + ", outcome)",),
    "revocation": (
        "revocation.refreshed (trust_anchor, revocation_this_update, revoked_count)",
        "validation.outcome (trust_anchor, revocation_source)",
        "credential.revoked",
        "webhook.delivered / webhook.failed",
    ),
}

FIGURE_EVENTS = frozenset(
    {
        "session.created",
        "session.completed",
        "session.consent_given",
        "session.consent_declined",
        "card_response.received",
        "card_response.rejected",
        "validation.outcome",
        "claims.released",
        "consent.withdrawn",
        "credential.revoked",
        "revocation.refreshed",
        "webhook.delivered",
        "webhook.failed",
        "kiosk.visit_ended",
    }
)


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass(frozen=True)
class Spread:
    """Count and nearest-rank percentiles of a list of measurements."""

    count: int
    p50: float | None
    p90: float | None
    p99: float | None

    @classmethod
    def of(cls, values: list[float]) -> Spread:
        ordered = sorted(values)
        return cls(
            len(ordered),
            percentile(ordered, 0.5),
            percentile(ordered, 0.9),
            percentile(ordered, 0.99),
        )


@dataclass
class RevocationTrack:
    """One trust anchor's lists as the refresher installed them during the period."""

    installed: list[tuple[datetime, datetime]] = field(default_factory=list)  # (logged, thisUpdate)
    revoked_count: int | None = None

    def ages_hours(self, end: datetime) -> tuple[float, float]:
        """(largest age the data reached while held, age at the end of the period)."""
        largest = 0.0
        for position, (_, this_update) in enumerate(self.installed):
            held_until = (
                self.installed[position + 1][0] if position + 1 < len(self.installed) else end
            )
            largest = max(largest, (held_until - this_update).total_seconds() / 3600)
        at_end = (end - self.installed[-1][1]).total_seconds() / 3600 if self.installed else 0.0
        return largest, at_end


@dataclass
class PocFigures:
    start: datetime
    end: datetime
    per_day: dict[date, Counter[str]] = field(default_factory=dict)
    per_provider: dict[str, Counter[str]] = field(default_factory=dict)
    per_kiosk: dict[str, Counter[str]] = field(default_factory=dict)
    modes: Counter[str] = field(default_factory=Counter)
    trust_anchors: set[str] = field(default_factory=set)
    revocation_sources: Counter[str] = field(default_factory=Counter)
    rejection_reasons: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    verification_ms: list[float] = field(default_factory=list)
    claims_released: int = 0
    claims_reused: int = 0
    reuse_ages_hours: list[float] = field(default_factory=list)
    consent_declined: int = 0
    consent_withdrawn: int = 0
    visit_outcomes: Counter[str] = field(default_factory=Counter)
    visit_ms: list[float] = field(default_factory=list)
    visit_card_ms: list[float] = field(default_factory=list)
    visit_service_ms: list[float] = field(default_factory=list)
    card_counts: Counter[str] = field(default_factory=Counter)
    revocation: dict[str, RevocationTrack] = field(default_factory=dict)
    credentials_revoked: int = 0
    webhooks_delivered: int = 0
    webhooks_failed: int = 0
    events_read: int = 0
    checkpoint: StoredCheckpoint | None = None

    @property
    def outcomes(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for day in self.per_day.values():
            total.update(day)
        return total

    @property
    def verifications(self) -> int:
        return sum(self.outcomes.values())

    @property
    def visits(self) -> int:
        return sum(self.visit_outcomes.values())

    @property
    def reuse_rate(self) -> float | None:
        return self.claims_reused / self.claims_released if self.claims_released else None

    @property
    def revocations_found(self) -> int:
        """Sessions refused because a certificate was revoked (counted once per session)."""
        return sum(count for code, count in self.rejection_reasons.items() if "revoked" in code)

    @property
    def observed_until(self) -> datetime:
        """The end of the period, or the checkpoint's time when that is earlier: the log
        says nothing about what came after its checkpoint."""
        if self.checkpoint is not None and self.checkpoint.created_at < self.end:
            return max(self.checkpoint.created_at, self.start)
        return self.end

    @property
    def revocation_updates(self) -> dict[str, datetime]:
        """The latest thisUpdate installed per trust anchor."""
        return {
            anchor: track.installed[-1][1]
            for anchor, track in sorted(self.revocation.items())
            if track.installed
        }

    def latency_percentiles(self) -> dict[str, float | None]:
        spread = Spread.of(self.latencies_ms)
        return {"p50": spread.p50, "p90": spread.p90, "p99": spread.p99}


# Which entry's reason code a refused session is counted under (the highest seen).
_VALIDATED, _REFUSED, _ANSWERED = 1, 2, 3
_KIOSK_EVENTS = (
    "session.consent_given",
    "session.consent_declined",
    "card_response.received",
    "card_response.rejected",
    "kiosk.visit_ended",
)


def compute_figures(
    log: AuditLog, start: datetime, end: datetime, *, checkpoint: StoredCheckpoint | None = None
) -> PocFigures:
    """Figures over [start, end), from the entries covered by ``checkpoint`` (default: latest)."""
    checkpoint = checkpoint or log.latest_checkpoint()
    figures = PocFigures(start=start, end=end, checkpoint=checkpoint)
    stop = checkpoint.tree_size if checkpoint else 0
    # A refused session logs its reason more than once, and not always under the same
    # code: the validation outcome says `revoked`, the rejected response and the
    # completed session say `certificate_revoked`. Count each session once, under the
    # code the service answered with: the completed session's, else the rejected
    # response's, else the validation's.
    session_reasons: dict[str, tuple[int, str]] = {}
    session_kiosk: dict[str, str] = {}
    session_status: dict[str, str] = {}

    def rejection(data: dict, reason: str, rank: int) -> None:
        session = data.get("session_id")
        if session is None:
            figures.rejection_reasons[reason] += 1
        elif session not in session_reasons or rank > session_reasons[session][0]:
            session_reasons[session] = (rank, reason)

    for logged in log.entries(stop=stop):
        kind = logged.event_type
        if kind not in FIGURE_EVENTS:
            continue
        document = json.loads(logged.entry)
        moment = _parse_time(document["time"])
        if not start <= moment < end:
            continue
        figures.events_read += 1
        data = document["data"]
        if kind in _KIOSK_EVENTS and "kiosk_id" in data:
            session_kiosk.setdefault(data["session_id"], data["kiosk_id"])
        if kind == "session.completed":
            status = data.get("status", "unknown")
            figures.per_day.setdefault(moment.date(), Counter())[status] += 1
            figures.per_provider.setdefault(data.get("provider_id", "unknown"), Counter())[
                status
            ] += 1
            figures.modes[data.get("mode", "unknown")] += 1
            session_status[data["session_id"]] = status
            if "latency_ms" in data:
                figures.latencies_ms.append(float(data["latency_ms"]))
            if "verification_ms" in data:
                figures.verification_ms.append(float(data["verification_ms"]))
            if data.get("reason_code") and status != "verified":
                rejection(data, data["reason_code"], _ANSWERED)
        elif kind == "card_response.rejected":
            rejection(data, data["reason_code"], _REFUSED)
        elif kind == "validation.outcome":
            if "trust_anchor" in data:
                figures.trust_anchors.add(data["trust_anchor"])
            if "revocation_source" in data:
                figures.revocation_sources[data["revocation_source"]] += 1
            if data.get("outcome") != "valid":
                rejection(data, data.get("reason_code", "invalid"), _VALIDATED)
        elif kind == "claims.released":
            figures.claims_released += 1
            if data.get("reuse"):
                figures.claims_reused += 1
                if "verified_at" in data:
                    age = moment - _parse_time(data["verified_at"])
                    figures.reuse_ages_hours.append(age.total_seconds() / 3600)
        elif kind == "session.consent_declined":
            figures.consent_declined += 1
        elif kind == "consent.withdrawn":
            figures.consent_withdrawn += 1
        elif kind == "kiosk.visit_ended":
            figures.visit_outcomes[data["outcome"]] += 1
            figures.visit_ms.append(float(data.get("duration_ms", 0.0)))
            figures.visit_card_ms.append(float(data.get("card_ms", 0.0)))
            figures.visit_service_ms.append(float(data.get("service_ms", 0.0)))
            figures.card_counts.update({name: data.get(name, 0) for name in CARD_COUNTS})
        elif kind == "revocation.refreshed":
            anchor = data["trust_anchor"]
            figures.trust_anchors.add(anchor)
            track = figures.revocation.setdefault(anchor, RevocationTrack())
            if "revocation_this_update" in data:
                track.installed.append((moment, _parse_time(data["revocation_this_update"])))
            if "revoked_count" in data:
                track.revoked_count = data["revoked_count"]
        elif kind == "credential.revoked":
            figures.credentials_revoked += 1
        elif kind == "webhook.delivered":
            figures.webhooks_delivered += 1
        elif kind == "webhook.failed":
            figures.webhooks_failed += 1
    figures.rejection_reasons.update(reason for _, reason in session_reasons.values())
    for session, status in session_status.items():
        kiosk = session_kiosk.get(session, "none")
        figures.per_kiosk.setdefault(kiosk, Counter())[status] += 1
    figures.per_day = dict(sorted(figures.per_day.items()))
    figures.per_provider = dict(sorted(figures.per_provider.items()))
    figures.per_kiosk = dict(sorted(figures.per_kiosk.items()))
    return figures


def per_day_series(figures: PocFigures) -> tuple[list[str], dict[str, list[int]]]:
    """Day labels and, per outcome, the count on each day (for charts)."""
    days = list(figures.per_day)
    outcomes = sorted(figures.outcomes)
    series = {outcome: [figures.per_day[day][outcome] for day in days] for outcome in outcomes}
    return [day.isoformat() for day in days], series
