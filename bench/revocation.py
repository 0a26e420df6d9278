"""Revocation at national scale: the CRL index against the naive baselines, in one run.

    .venv/bin/python bench/revocation.py [--entries 1000000]

Builds a test hierarchy and an N-entry CRL of its auth CA (jpki.testca's
large-CRL generator), then measures, each next to its naive baseline:
ingest time including the signature check, memory of the index, lookup
latency for revoked and non-revoked serials, and full validate() latency
with that CRL loaded. Baselines: cryptography's CRL object and its linear
`get_revoked_certificate_by_serial_number`, and pyhanko-certvalidator handed
the CRL directly (a few validations only: each one re-reads the whole CRL).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import os
import random
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path

from asn1crypto import x509 as asn1_x509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from pyhanko_certvalidator import CertificateValidator, ValidationContext

from jpki.profile import Gender
from jpki.revocation import RevocationIndex, RevocationStatus
from jpki.revocation_policy import RevocationConfig
from jpki.testca import Hierarchy, PersonRecord
from jpki.validation import ReasonCode, TrustPolicy, validate

NOW = dt.datetime(2026, 11, 1, tzinfo=dt.UTC)
TARGETS = {
    "ingest_s": 10.0,
    "lookup_p99_us": 10.0,
    "memory_mb": 300.0,
    "validate_p99_ms": 2.0,
}


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def timed(function: Callable[[], object]) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def row(metric: str, ours: str, baseline: str, target: str = "") -> None:
    print(f"{metric:<34} {ours:<26} {baseline:<40} {target}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    parser.add_argument("--validations", type=int, default=2_000)
    parser.add_argument("--baseline-lookups", type=int, default=40)
    parser.add_argument("--certvalidator-runs", type=int, default=1)
    arguments = parser.parse_args()

    # A million-entry CRL, its index and cache: about 84 MB, removed however the run ends.
    with tempfile.TemporaryDirectory(prefix="bench-revocation-") as scratch:
        workdir = Path(scratch)
        hierarchy = Hierarchy.init(workdir / "ca", now=NOW)
        record = PersonRecord(
            name="山田\u3000太郎",
            birth_date=dt.date(1990, 4, 1),
            gender=Gender.MALE,
            address="東京都千代田区千代田一丁目1番1号",
            prefecture="東京都",
            municipality="千代田区",
        )
        good_person = hierarchy.issue_person(record)
        revoked_person = hierarchy.issue_person(record)
        hierarchy.revoke(
            revoked_person.auth_serial,
            purpose="auth",
            reason=x509.ReasonFlags.key_compromise,
            revoked_at=NOW - dt.timedelta(days=1),
        )
        ca = hierarchy.auth_ca_certificate

        generation = time.perf_counter()
        crl_der = hierarchy.large_crl("auth", arguments.entries, seed=2026)
        generation = time.perf_counter() - generation
        crl_path = workdir / "auth.crl"
        crl_path.write_bytes(crl_der)
        load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
        print(
            f"python {sys.version.split()[0]}, {arguments.entries:,} entries, {os.cpu_count()} CPUs"
        )
        print(f"load average at start: {load} (p99 figures suffer on a shared machine)")
        print(f"test CA CRL: {len(crl_der) / 1e6:.1f} MB DER, generated in {generation:.1f} s")
        print()
        row("metric", "RevocationIndex", "naive baseline", "target")
        row("-" * 34, "-" * 26, "-" * 40, "-" * 8)

        # --- ingest, including the signature check ----------------------------------------------
        gc.collect()
        rss_before = rss_mb()
        index = RevocationIndex(ca)
        ingest_s = timed(lambda: index.ingest(crl_path.read_bytes(), at=NOW))
        gc.collect()
        index_rss = rss_mb() - rss_before

        crypto_crl: x509.CertificateRevocationList | None = None

        def crypto_ingest() -> None:
            nonlocal crypto_crl
            crypto_crl = x509.load_der_x509_crl(crl_path.read_bytes())
            assert crypto_crl.is_signature_valid(ca.public_key())  # type: ignore[arg-type]

        gc.collect()
        rss_before = rss_mb()
        baseline_ingest_s = timed(crypto_ingest)
        gc.collect()
        baseline_rss = rss_mb() - rss_before
        assert crypto_crl is not None
        row(
            "ingest incl. signature check",
            f"{ingest_s:.2f} s",
            f"{baseline_ingest_s:.2f} s (cryptography load+verify)",
            f"<= {TARGETS['ingest_s']:.0f} s",
        )

        # --- restart with the persisted index ---
        persisted = RevocationIndex(ca, cache_dir=workdir / "cache")
        persisted.ingest(crl_path.read_bytes(), at=NOW)
        del persisted
        restored: list[RevocationIndex] = []
        restart_s = timed(lambda: restored.append(RevocationIndex(ca, cache_dir=workdir / "cache")))
        assert restored[0].restored_from_cache and restored[0].current == index.current
        restored.clear()
        row(
            "restart, CRL unchanged (cache)",
            f"{restart_s:.2f} s",
            f"{ingest_s:.2f} s (full ingest again)",
        )

        # --- memory -------------------------------------------------------------------------------
        gc.collect()
        tracemalloc.start()
        traced = RevocationIndex(ca)
        traced.ingest(crl_path.read_bytes(), at=NOW)
        gc.collect()
        retained, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del traced
        row(
            "index memory (tracemalloc)",
            f"{retained / 2**20:.0f} MiB (peak {peak / 2**20:.0f})",
            "n/a (Rust heap, see RSS)",
            f"<= {TARGETS['memory_mb']:.0f} MB",
        )
        row(
            "RSS growth after ingest",
            f"{index_rss:.0f} MiB",
            f"{baseline_rss:.0f} MiB (cryptography)",
        )

        # --- lookups ------------------------------------------------------------------------------
        revoked_serials = [entry.serial_number for entry in crypto_crl]
        revoked_set = set(revoked_serials)
        rng = random.Random(7)
        revoked_probe = rng.sample(revoked_serials, min(arguments.lookups, len(revoked_serials)))
        good_probe = []
        while len(good_probe) < arguments.lookups:
            serial = rng.randrange(1, 2**32)
            if serial not in revoked_set:
                good_probe.append(serial)
        for label, probe, expected in (
            ("revoked", revoked_probe, RevocationStatus.REVOKED),
            ("non-revoked", good_probe, RevocationStatus.GOOD),
        ):
            samples = []
            clock = time.perf_counter_ns
            check = index.check
            for serial in probe:
                start = clock()
                answer = check(serial, at=NOW)
                samples.append((clock() - start) / 1000)
                assert answer.status is expected
            p50, p99 = percentiles(samples)
            baseline = []
            for serial in probe[: arguments.baseline_lookups]:
                start = clock()
                found = crypto_crl.get_revoked_certificate_by_serial_number(serial)
                baseline.append((clock() - start) / 1000)
                assert (found is not None) == (expected is RevocationStatus.REVOKED)
            b50, b99 = percentiles(baseline)
            row(
                f"lookup {label} p50 / p99",
                f"{p50:.1f} / {p99:.1f} us",
                f"{b50:,.0f} / {b99:,.0f} us (linear, n={len(baseline)})",
                f"p99 <= {TARGETS['lookup_p99_us']:.0f} us",
            )

        # The probe lists hold millions of ints; the cyclic GC would walk them during the
        # validate() loop below, timing the benchmark's own data instead of the index.
        del revoked_serials, revoked_set, revoked_probe, good_probe, probe
        gc.collect()

        # --- validate() with the large CRL loaded -------------------------------------------------
        sign_index = RevocationIndex(hierarchy.sign_ca_certificate)
        sign_index.ingest(hierarchy.crl("sign"), at=NOW)
        policy = TrustPolicy.for_test_hierarchy(
            ca,
            hierarchy.sign_ca_certificate,
            revocation=RevocationConfig.from_crls([index, sign_index]),
        )
        good_der = good_person.auth_certificate.public_bytes(serialization.Encoding.DER)
        revoked_der = revoked_person.auth_certificate.public_bytes(serialization.Encoding.DER)
        assert validate(good_der, "auth", at=NOW, policy=policy).valid
        assert validate(revoked_der, "auth", at=NOW, policy=policy).reason is ReasonCode.REVOKED
        samples = []
        for turn in range(arguments.validations):
            certificate = good_der if turn % 2 else revoked_der
            start = time.perf_counter()
            validate(certificate, "auth", at=NOW, policy=policy)
            samples.append((time.perf_counter() - start) * 1000)
        p50, p99 = percentiles(samples)

        ca_asn1 = asn1_x509.Certificate.load(ca.public_bytes(serialization.Encoding.DER))
        leaf_asn1 = asn1_x509.Certificate.load(good_der)

        async def certvalidator_with_crl() -> None:
            context = ValidationContext(
                trust_roots=[ca_asn1], crls=[crl_der], moment=NOW, revocation_mode="require"
            )
            validator = CertificateValidator(leaf_asn1, validation_context=context)
            await validator.async_validate_usage({"digital_signature"})

        baseline = [
            timed(lambda: asyncio.run(certvalidator_with_crl())) * 1000
            for _ in range(arguments.certvalidator_runs)
        ]
        row(
            "validate() p50 / p99",
            f"{p50:.2f} / {p99:.2f} ms",
            f"{statistics.median(baseline):,.0f} ms (certvalidator+CRL, n={len(baseline)})",
            f"p99 <= {TARGETS['validate_p99_ms']:.0f} ms",
        )
        print()
        print(f"load average at end: {', '.join(f'{value:.1f}' for value in os.getloadavg())}")
        mean = statistics.mean(samples)
        print(f"validate() samples: {len(samples)} (half good, half revoked), mean {mean:.2f} ms")


if __name__ == "__main__":
    main()
