"""PoC figures computed from the audit log itself, so a reviewer can recompute them.

Everything comes from logged events over a period: verifications per day by
outcome (``session.completed`` status), rejection reasons (reason codes of
rejected card responses, failed validations and refused sessions, once per
session), latency percentiles (``session.completed`` latency_ms), reuse rate
(``claims.released`` with reuse) and revocation data age (latest ``revocation.refreshed`` per trust
anchor, against the end of the period).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

from commonid.audit.log import AuditLog, StoredCheckpoint

FIGURE_EVENTS = (
    "session.completed",
    "card_response.rejected",
    "validation.outcome",
    "claims.released",
    "revocation.refreshed",
)


def _parse_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def percentile(sorted_values: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of already sorted values."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(fraction * len(sorted_values)))
    return sorted_values[rank - 1]


@dataclass
class PocFigures:
    start: datetime
    end: datetime
    per_day: dict[date, Counter[str]] = field(default_factory=dict)
    rejection_reasons: Counter[str] = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)
    claims_released: int = 0
    claims_reused: int = 0
    revocation_updates: dict[str, datetime] = field(default_factory=dict)
    events_read: int = 0
    last_index: int | None = None
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
    def reuse_rate(self) -> float | None:
        return self.claims_reused / self.claims_released if self.claims_released else None

    def latency_percentiles(self) -> dict[str, float | None]:
        values = sorted(self.latencies_ms)
        return {
            "p50": percentile(values, 0.50),
            "p90": percentile(values, 0.90),
            "p99": percentile(values, 0.99),
        }

    def revocation_ages_hours(self) -> dict[str, float]:
        return {
            anchor: (self.end - updated).total_seconds() / 3600
            for anchor, updated in sorted(self.revocation_updates.items())
        }


# Which entry's reason code a refused session is counted under (the highest seen).
_VALIDATED, _REFUSED, _ANSWERED = 1, 2, 3


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

    def rejection(data: dict, reason: str, rank: int) -> None:
        session = data.get("session_id")
        if session is None:
            figures.rejection_reasons[reason] += 1
        elif session not in session_reasons or rank > session_reasons[session][0]:
            session_reasons[session] = (rank, reason)

    for logged in log.entries(stop=stop):
        figures.last_index = logged.index
        if logged.event_type not in FIGURE_EVENTS:
            continue
        document = json.loads(logged.entry)
        moment = _parse_time(document["time"])
        if not start <= moment < end:
            continue
        figures.events_read += 1
        data = document["data"]
        kind = logged.event_type
        if kind == "session.completed":
            day = figures.per_day.setdefault(moment.date(), Counter())
            day[data.get("status", "unknown")] += 1
            if "latency_ms" in data:
                figures.latencies_ms.append(float(data["latency_ms"]))
            if data.get("reason_code") and data.get("status") != "verified":
                rejection(data, data["reason_code"], _ANSWERED)
        elif kind == "card_response.rejected":
            rejection(data, data["reason_code"], _REFUSED)
        elif kind == "validation.outcome" and data.get("outcome") != "valid":
            rejection(data, data.get("reason_code", "invalid"), _VALIDATED)
        elif kind == "claims.released":
            figures.claims_released += 1
            figures.claims_reused += bool(data.get("reuse"))
        elif kind == "revocation.refreshed" and "revocation_this_update" in data:
            updated = _parse_time(data["revocation_this_update"])
            anchor = data["trust_anchor"]
            if (
                anchor not in figures.revocation_updates
                or updated > figures.revocation_updates[anchor]
            ):
                figures.revocation_updates[anchor] = updated
    figures.rejection_reasons.update(reason for _, reason in session_reasons.values())
    figures.per_day = dict(sorted(figures.per_day.items()))
    return figures


def per_day_series(figures: PocFigures) -> tuple[list[str], dict[str, list[int]]]:
    """Day labels and, per outcome, the count on each day (for charts)."""
    days = list(figures.per_day)
    outcomes = sorted(figures.outcomes)
    series = {outcome: [figures.per_day[day][outcome] for day in days] for outcome in outcomes}
    return [day.isoformat() for day in days], series
