"""Prometheus metrics of one service instance (own registry: several apps per process in tests)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class ServiceMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.sessions_completed = Counter(
            "commonid_sessions_completed",
            "Sessions that reached a final status, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.card_responses_rejected = Counter(
            "commonid_card_responses_rejected",
            "Card responses turned away, by reason code",
            ["code"],
            registry=self.registry,
        )
        self.verification_seconds = Histogram(
            "commonid_verification_seconds",
            "Time to check a card response (signatures, certificate paths, storage)",
            buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0),
            registry=self.registry,
        )
        self.revocation_data_age = Gauge(
            "commonid_revocation_data_age_seconds",
            "Age of the revocation data (CRL thisUpdate) each validation used, by CA",
            ["ca"],
            registry=self.registry,
        )
        self.documents_signed = Counter(
            "commonid_documents_signed",
            "Signed documents accepted",
            registry=self.registry,
        )
        self.documents_rejected = Counter(
            "commonid_documents_rejected",
            "Signed documents turned away, by problem code",
            ["code"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "commonid_webhook_attempts",
            "Webhook delivery attempts, by result",
            ["result"],
            registry=self.registry,
        )
