"""Sweep throughput: the same cells with --jobs 2 against one after another with 2 BLAS threads,
and what Ray adds per cell beyond its start-up.

Cells: the baseline config (configs/baseline.yaml, full MNIST unless --limit) with a grid of
`--cells` learning rates, `--epochs` epochs each, early stopping off so every cell does the
same work. Each measurement trains every cell afresh (--rerun) in its own temporary runs
folder, through the sweep driver that `trickrun sweep` uses.

    TRICKRUN_DATA_DIR=../shared/data python benchmarks/sweep.py            # about 2 minutes here
    python benchmarks/sweep.py --ray                                        # also a local Ray
    python benchmarks/sweep.py --quick                                      # a smoke run

Prints seconds per configuration and the throughput ratio (cells per second with --jobs 2
over cells per second one at a time). With --ray: Ray's start-up, and its overhead per cell:
(Ray's sweep wall time - the local --jobs 2 wall time) / cells, both with --jobs 2.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model  # beside this script

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from threadpoolctl import threadpool_info  # noqa: E402

from trickrun.sweep.driver import execute, prepare  # noqa: E402
from trickrun.sweep.local import LocalBackend  # noqa: E402
from trickrun.sweep.spec import SweepSpec  # noqa: E402


def spec_for(args) -> SweepSpec:
    lrs = [0.001 * (1 + i / 10) for i in range(args.cells)]
    fixed = [("train.epochs", args.epochs), ("early_stopping.enabled", False)]
    if args.limit:
        fixed.append(("data.train_limit", args.limit))
    return SweepSpec("bench", ROOT / "configs" / "baseline.yaml", fixed, {"optimizer.lr": lrs})


def timed_sweep(spec: SweepSpec, jobs: int, make_backend) -> tuple[float, int]:
    """Wall seconds of executing every cell afresh, and how many cells failed."""
    with tempfile.TemporaryDirectory(prefix="trickrun-bench-") as runs:
        sweep = prepare(spec, Path(runs), True, "bench", jobs)
        backend = make_backend(sweep.root)
        t0 = time.perf_counter()
        try:
            result = execute(sweep, backend)
        finally:
            backend.close()
            sweep.release()
        return time.perf_counter() - t0, len(result.failed)


def blas() -> str:
    info = threadpool_info()
    return ", ".join(f"{i.get('internal_api')} {i.get('version')} {i.get('architecture')} "
                     f"{i.get('num_threads')} threads" for i in info) or "unknown"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--limit", type=int, default=None, help="data.train_limit of every cell")
    parser.add_argument("--ray", action="store_true", help="also measure a local Ray")
    parser.add_argument("--quick", action="store_true", help="2 cells, 1 epoch, 2,000 examples")
    args = parser.parse_args()
    if args.quick:
        args.cells, args.epochs, args.limit = 2, 1, 2000
    spec = spec_for(args)
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; blas: {blas()}")
    print(f"cells: {args.cells} x baseline, {args.epochs} epochs, train_limit {args.limit or 'all'}")
    seq, f1 = timed_sweep(spec, 1, lambda root: LocalBackend(1))  # one cell at a time, 2 BLAS threads
    par, f2 = timed_sweep(spec, 2, lambda root: LocalBackend(2))  # two cells at a time, 1 thread each
    print("| configuration | wall s | cells/s |\n| --- | ---: | ---: |")
    print(f"| --jobs 1 (2 BLAS threads) | {seq:.1f} | {args.cells / seq:.3f} |")
    print(f"| --jobs 2 (1 BLAS thread each) | {par:.1f} | {args.cells / par:.3f} |")
    print(f"throughput ratio (--jobs 2 over --jobs 1): {seq / par:.2f}  (failed cells: {f1 + f2})")
    if args.ray:
        from trickrun.sweep.ray_backend import RayBackend

        t0 = time.perf_counter()
        import ray

        ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False, logging_level="ERROR")
        start_s = time.perf_counter() - t0
        on_ray, f3 = timed_sweep(spec, 2, lambda root: RayBackend(None, 2, root / "ray.log"))
        ray.shutdown()
        print(f"| ray, --jobs 2 | {on_ray:.1f} | {args.cells / on_ray:.3f} |")
        print(f"ray start-up: {start_s:.1f} s; overhead per cell beyond it: {(on_ray - par) / args.cells:.2f} s "
              f"(failed cells: {f3})")


if __name__ == "__main__":
    main()
