"""Benchmarks clean up after themselves: bench/revocation.py once left ~84 MB per run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_the_revocation_benchmark_leaves_nothing_in_the_temp_folder(tmp_path: Path) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    small = ["--entries", "2000", "--lookups", "100", "--validations", "10"]
    finished = subprocess.run(
        [sys.executable, "bench/revocation.py", *small, "--baseline-lookups", "2"],
        cwd=ROOT,
        env=os.environ | {"TMPDIR": str(scratch)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert "validate() p50" in finished.stdout
    assert list(scratch.iterdir()) == []
