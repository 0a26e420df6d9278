"""Rate limits that the worker processes of one host share (commonid.api.limits)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from commonid.api.limits import RateLimiter, SharedRateLimiter, caller_limiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _allowed(limiter: SharedRateLimiter | RateLimiter, caller: str, tries: int) -> int:
    return sum(limiter.take(caller) is None for _ in range(tries))


def test_two_limiters_on_one_file_spend_from_one_bucket(tmp_path: Path) -> None:
    clock = Clock()
    path = tmp_path / "providers.buckets"
    # Two workers' limiters: each maps the same file.
    first = SharedRateLimiter(path, rate_per_second=1.0, burst=5, clock=clock)
    second = SharedRateLimiter(path, rate_per_second=1.0, burst=5, clock=clock)
    assert _allowed(first, "prv_a", 3) == 3
    assert _allowed(second, "prv_a", 3) == 2  # 5 in all, not 5 per worker
    wait = first.take("prv_a")
    assert wait is not None and 0 < wait <= 1.0
    # Another caller has its own bucket.
    assert _allowed(second, "prv_b", 5) == 5
    # Tokens come back at the rate, for both workers.
    clock.now += 2.0
    assert _allowed(second, "prv_a", 3) == 2


def test_a_bucket_never_holds_more_than_the_burst(tmp_path: Path) -> None:
    clock = Clock()
    limiter = SharedRateLimiter(tmp_path / "k.buckets", rate_per_second=10.0, burst=3, clock=clock)
    assert _allowed(limiter, "ksk_a", 3) == 3
    clock.now += 3600
    assert _allowed(limiter, "ksk_a", 10) == 3


def test_when_every_probed_slot_is_taken_the_longest_idle_one_is_reused(tmp_path: Path) -> None:
    class Tiny(SharedRateLimiter):
        SLOTS = 2
        PROBES = 2

    clock = Clock()
    limiter = Tiny(tmp_path / "tiny.buckets", rate_per_second=0.001, burst=1, clock=clock)
    assert limiter.take("a") is None
    clock.now += 1
    assert limiter.take("b") is None
    clock.now += 1
    # Both slots are taken; "c" reuses a's (idle the longest) and starts with a full bucket.
    assert limiter.take("c") is None
    assert limiter.take("b") is not None  # b's bucket was kept: still empty
    assert limiter.take("a") is None  # a lost its slot, so it starts full again


def test_worker_processes_share_the_buckets(tmp_path: Path) -> None:
    path = tmp_path / "providers.buckets"
    script = (
        "import sys; from pathlib import Path; "
        "from commonid.api.limits import SharedRateLimiter; "
        "limiter = SharedRateLimiter(Path(sys.argv[1]), 0.001, 10); "
        "print(sum(limiter.take('prv_a') is None for _ in range(8)))"
    )
    counts = [
        int(
            subprocess.run(
                [sys.executable, "-c", script, str(path)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
        for _ in range(2)
    ]
    assert counts == [8, 2]


def test_without_a_directory_each_process_limits_alone(tmp_path: Path) -> None:
    assert isinstance(caller_limiter(None, "providers", 1.0, 5), RateLimiter)
    shared = caller_limiter(tmp_path / "limits", "providers", 1.0, 5)
    assert isinstance(shared, SharedRateLimiter)
    assert (tmp_path / "limits" / "providers.buckets").exists()
