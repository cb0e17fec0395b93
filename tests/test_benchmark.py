"""The benchmark scripts keep working (their figures are read by people, never asserted here)."""

from __future__ import annotations

import os
import re
import runpy
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from helpers import requires_real_mnist
from trickrun.nn.kernels import optim as kernels

SCRIPT = Path(__file__).parents[1] / "benchmarks" / "epoch.py"


NO_TORCH_NOTE = "- torch: not importable"


def run_quick(*args: str, hide_torch: bool = False) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "TRICKRUN_DATA_DIR"}  # random pixels: fast
    if hide_torch:  # as if torch were not installed, whether or not it is
        cmd = [sys.executable, "-c", "import runpy, sys; sys.modules['torch'] = None; "
               f"sys.argv = {[str(SCRIPT), '--quick', *args]!r}; runpy.run_path(sys.argv[0], run_name='__main__')"]
    else:
        cmd = [sys.executable, str(SCRIPT), "--quick", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def run_script(name: str, *args: str) -> subprocess.CompletedProcess:
    """Another script of benchmarks/ (a smoke run), on random pixels; it must exit 0."""
    env = {k: v for k, v in os.environ.items() if k != "TRICKRUN_DATA_DIR"}  # random pixels: fast
    proc = subprocess.run([sys.executable, str(SCRIPT.with_name(name)), *args], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc


def table(stdout: str) -> list[dict[str, str]]:
    """The rows of the results table, as {column: cell}."""
    lines = [line for line in stdout.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return [dict(zip(header, row)) for row in rows if row[0].startswith(("adam", "momentum"))]


def test_quick_benchmark_prints_a_row_per_configuration(tmp_path):
    proc = run_quick()
    rows = table(proc.stdout)
    assert len(rows) == 9
    assert "blas:" in proc.stdout and "peak RSS" in proc.stdout
    for row in rows:  # torch's columns: figures when torch imports, else "-" and a note saying why
        assert {"ratio", "torch s/epoch", "trickrun / torch"} <= row.keys()
        if NO_TORCH_NOTE in proc.stdout:
            assert row["torch s/epoch"] == row["trickrun / torch"] == "-"
        else:
            assert float(row["torch s/epoch"]) > 0 and float(row["trickrun / torch"]) > 0
    assert (NO_TORCH_NOTE in proc.stdout) != bool(re.search(r"^- torch \d", proc.stdout, re.M))


def test_quick_benchmark_without_torch_says_so_and_leaves_its_columns_empty():
    proc = run_quick("--only", "momentum b512", hide_torch=True)
    assert proc.stdout.count(NO_TORCH_NOTE) == 1
    [row] = table(proc.stdout)
    assert row["torch s/epoch"] == row["trickrun / torch"] == "-"
    assert float(row["ratio"]) > 0


SWEEP_SCRIPT = Path(__file__).parents[1] / "benchmarks" / "sweep.py"


@requires_real_mnist
def test_quick_sweep_benchmark_prints_the_throughput_ratio():
    proc = subprocess.run([sys.executable, str(SWEEP_SCRIPT), "--quick"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "throughput ratio (--jobs 2 over --jobs 1):" in proc.stdout and "(failed cells: 0)" in proc.stdout


THREADS_SCRIPT = SCRIPT.with_name("threads.py")


def test_the_optimizer_step_split_in_two_halves_gives_the_same_bits_as_one_call(monkeypatch):
    # benchmarks/threads.py times Adam's kernel on two threads, each on half the vector: its
    # verdict is only worth reading if the halves give the very update one call gives,
    # AdamW's decayed prefix (n_decay) included wherever it ends.
    monkeypatch.syspath_prepend(str(THREADS_SCRIPT.parent))  # its `machine` module
    threads = runpy.run_path(str(THREADS_SCRIPT), run_name="threads")
    f = np.float32
    rng = np.random.default_rng(3)
    with ThreadPoolExecutor(1) as pool:
        halves = threads["split_in_two"](kernels.adam, pool)
        for size, n_decay in [(1, 0), (1, 1), (7, 5), (1001, 500), (5000, 1000), (5000, 4500), (10001, 10001), (10000, 0)]:
            p, g = rng.standard_normal(size, dtype=f), rng.standard_normal(size, dtype=f)
            m, v = rng.standard_normal(size, dtype=f) * f(0.1), rng.random(size, dtype=f) * f(0.01)
            chunks = kernels.chunk_table([size // 3, size])  # two segments, pieces of both
            scalars = (f(1e-3), f(0.1), f(0.001), f(1e-8), f(0.99), n_decay, chunks)
            before = p.copy()
            one = [a.copy() for a in (p, g, m, v)]
            squares_one, squares_halves = np.empty(2, f), np.empty(2, f)
            total_one = kernels.adam(*one, *scalars, squares_one)
            total_halves = halves(p, g, m, v, *scalars, squares_halves)
            assert total_halves == pytest.approx(total_one, rel=1e-6)
            for got, want in zip((p, m, v), (one[0], one[2], one[3])):
                assert np.array_equal(got, want), (size, n_decay)
            np.testing.assert_allclose(squares_halves, squares_one, rtol=1e-6)
            assert not np.array_equal(p, before)  # the step did move the weights


def test_quick_threads_benchmark_reports_both_environments():
    proc = run_script("threads.py", "--quick", "--batch", "512")
    assert proc.stdout.count("weights after training are bit-identical") == 2
    assert "OPENBLAS_THREAD_TIMEOUT=4" in proc.stdout
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| 1 thread", "| 2 threads"))]
    assert len(rows) == 4


def test_quick_norms_benchmark_times_the_three_ways_and_finds_the_same_weights():
    proc = run_script("norms.py", "--quick")
    rows = [line for line in proc.stdout.splitlines() if line.startswith(("| adam", "| momentum"))]
    assert [row.split("|")[1].strip() for row in rows] == ["adam b128", "momentum b128"]
    assert all(row.rstrip(" |").endswith("bit-identical") for row in rows)


def test_quick_dropout_benchmark_times_both_ways_and_finds_the_same_weights():
    proc = run_script("dropout.py", "--quick")
    layers = [line for line in proc.stdout.splitlines() if line.startswith("| 128 x ")]
    assert [row.split("|")[1].strip() for row in layers] == ["128 x 512", "128 x 256"]
    assert proc.stdout.rstrip().endswith("| bit-identical |")


def test_quick_gather_benchmark_times_both_ways_and_finds_the_same_weights():
    proc = run_script("gather.py", "--quick")
    kernel_rows = [line.split("|")[1].strip() for line in proc.stdout.splitlines() if line.startswith("| ")
                   and line.split("|")[1].strip().isdigit()]
    assert kernel_rows == ["32", "128", "512"]
    assert proc.stdout.rstrip().endswith("| bit-identical |")


def test_quick_overhead_benchmark_times_both_lookups_for_each_config():
    proc = run_script("overhead.py", "--quick")
    rows = [line.split("|")[1].strip() for line in proc.stdout.splitlines() if line.startswith("| ")][2:]
    assert rows == ["momentum", "adam", "adam, batch norm + dropout 0.2"]


def test_quick_step_benchmark_times_each_rule_at_each_size():
    proc = run_script("step.py", "--quick")
    rows = [line.split("|")[1:-1] for line in proc.stdout.splitlines() if line.startswith("| ")][2:]
    assert [r[0].strip() for r in rows[:4]] == ["8,192", "65,536", "535,818", "4,000,000"]
    assert all(float(cell) > 0 for r in rows[:4] for cell in r[2:])  # sgd, momentum, adam: ns per value
    assert len(rows) == 4


def test_quick_cold_benchmark_times_both_ways_of_one_loop_for_each_config():
    proc = run_script("cold.py", "--quick")
    rows = table(proc.stdout)
    assert [r["config"] for r in rows] == ["adam b128", "momentum b128"]
    for row in rows:
        assert float(row["before"]) > 0 and float(row["now"]) > 0
        assert float(row["norms read after the step"]) > 0 and float(row["the same read again"]) > 0
