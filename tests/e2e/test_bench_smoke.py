"""The benchmark's smoke run: it must keep working (its full run is by hand)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e
BENCH = Path(__file__).resolve().parents[2] / "bench" / "bench_call_setup.py"


def test_call_setup_benchmark_smoke_run_prints_ratios() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH), "--smoke"],
        capture_output=True,
        text=True,
        timeout=400,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "sipp exit codes (caller, agents): [0, 0, 0, 0]" in out, out
    ratios = re.findall(r"service / floor = ([0-9.]+)x", out)
    assert len(ratios) == 2, out  # dial delay and accept delay, both measured
    assert re.search(r"service\s+\d+ bridged calls: RSS\s+[0-9.]+ MB", out), out


EARLY_BENCH = BENCH.with_name("bench_early_dial.py")


def test_early_dial_benchmark_smoke_run_prints_waits_and_ratio() -> None:
    result = subprocess.run(
        [sys.executable, str(EARLY_BENCH), "--smoke"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    out = result.stdout
    assert result.returncode == 0, out + result.stderr
    assert "sipp exit codes (caller, agents): [0, 0, 0, 0, 0]" in out, out
    waits = dict(re.findall(r"^  ([a-z-]+)\s+1\s+([0-9.]+)\s", out, re.MULTILINE))
    assert set(waits) == {"before", "barge-in", "early-full", "early-cut"}, out
    # The baseline holds the whole announcement and prompt; cutting it holds neither.
    assert float(waits["before"]) > 8.0 > 1.0 > float(waits["early-cut"]), out
    assert re.search(r"early dial on \(best mode\) = [0-9.]+ s vs [0-9.]+ s before: ratio", out)
    assert "not measured" not in out, out
