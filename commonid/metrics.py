"""Prometheus metrics of one service instance (own registry: several apps per process in tests).

With several worker processes (`commonid serve --workers N`), each worker counts
in its own memory, and a scrape reaches one worker only: its numbers would be
a fraction of the truth, and a different fraction at every scrape. `serve` then
runs prometheus_client's multiprocess mode: every worker writes its values to
files in one directory (``PROMETHEUS_MULTIPROC_DIR``, set before the workers
start, emptied at each start), and a scrape adds all workers' values up.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector

MULTIPROCESS_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_multiprocess(directory: Path) -> None:
    """Before the workers start: an empty directory for their values, named in the
    environment the workers inherit (prometheus_client reads it at import)."""
    shutil.rmtree(directory, ignore_errors=True)  # values of a previous run must not count
    directory.mkdir(parents=True)
    os.environ[MULTIPROCESS_DIR_ENV] = str(directory)


def exposition(metrics: ServiceMetrics) -> bytes:
    """The text a scrape returns: this process's registry, or all workers' values."""
    directory = os.environ.get(MULTIPROCESS_DIR_ENV)
    if not directory:
        return generate_latest(metrics.registry)
    registry = CollectorRegistry()
    MultiProcessCollector(registry, path=directory)
    return generate_latest(registry)


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
            # Across workers: the value the most recent scrape computed.
            multiprocess_mode="mostrecent",
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
        self.audit_checkpoints_refused = Counter(
            "commonid_audit_checkpoints_refused",
            "Checkpoints the service refused to sign, by reason (fork: the log does not "
            "extend a checkpoint it signed before; alert on any)",
            ["reason"],
            registry=self.registry,
        )
        self.webhook_attempts = Counter(
            "commonid_webhook_attempts",
            "Webhook delivery attempts, by result",
            ["result"],
            registry=self.registry,
        )
