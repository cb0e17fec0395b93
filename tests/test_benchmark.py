"""The benchmark script keeps working (its figures are read by people, never asserted here)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from helpers import requires_real_mnist

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "epoch.py"


def test_quick_benchmark_prints_a_row_per_configuration(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TRICKRUN_DATA_DIR"}  # random pixels: fast
    proc = subprocess.run([sys.executable, str(SCRIPT), "--quick"], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = [line for line in proc.stdout.splitlines() if line.startswith("| adam") or line.startswith("| momentum")]
    assert len(rows) == 9
    assert "blas:" in proc.stdout and "peak RSS" in proc.stdout


SWEEP_SCRIPT = Path(__file__).parents[1] / "benchmarks" / "sweep.py"


@requires_real_mnist
def test_quick_sweep_benchmark_prints_the_throughput_ratio():
    proc = subprocess.run([sys.executable, str(SWEEP_SCRIPT), "--quick"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "throughput ratio (--jobs 2 over --jobs 1):" in proc.stdout and "(failed cells: 0)" in proc.stdout
