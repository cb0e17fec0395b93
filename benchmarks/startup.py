"""Start-up time of `trickrun train`: a one-batch run end to end, as a subprocess, first on a
cold numba kernel cache, then warm.

    trickrun train configs/baseline.yaml --set train.epochs=1 --set data.train_limit=128

runs once after the numba cache files of trickrun/nn/kernels/ (`__pycache__/*.nbi`,
`*.nbc`) of this checkout are deleted, so every kernel is compiled again, then `--warm`
more times (default 2) on the cache the first run wrote. Each run is timed from the
parent's side:

- end to end: from starting the process to its exit;
- to first batch: until the run prints "run directory: ..." on stderr, which `Trainer.run`
  does just before its first batch (imports, config, data, model, run directory);
- first epoch: the run's own `epoch_s` from metrics.jsonl: its one batch of 128 examples
  (the first call of every kernel, so their compilation when the cache is cold), the
  validation pass and the epoch's layer statistics;
- the rest: end to end less the two above (test set, summary, model file, exit).

The baseline config trains on MNIST: set $TRICKRUN_DATA_DIR. Without numba kernels (or
without numba) the cold and warm runs differ only by the operating system's caches.

    TRICKRUN_DATA_DIR=/path/to/data python benchmarks/startup.py
    python benchmarks/startup.py --warm 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

from machine import cpu_model  # beside this script

REPO = Path(__file__).resolve().parents[1]
KERNELS = REPO / "trickrun" / "nn" / "kernels"
ARGS = ["train", "configs/baseline.yaml", "--set", "train.epochs=1", "--set", "data.train_limit=128"]
FIRST_BATCH_MARK = "run directory:"  # progress.py: printed by Reporter.start, just before the first batch


def cache_files() -> list[Path]:
    if not KERNELS.is_dir():
        return []
    return sorted(p for pattern in ("**/__pycache__/*.nbi", "**/__pycache__/*.nbc") for p in KERNELS.glob(pattern))


def command() -> list[str]:
    """`trickrun` beside this Python (the console script), else `python -m trickrun`."""
    script = Path(sys.executable).parent / "trickrun"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "trickrun"]


def blas() -> str:
    import numpy  # noqa: F401  (loads the BLAS that threadpoolctl then finds)
    from threadpoolctl import threadpool_info

    libs = [lib for lib in threadpool_info() if lib["user_api"] == "blas"]
    return "; ".join(f"{lib['internal_api']} {lib['version']}, kernel {lib.get('architecture')}, "
                     f"{lib['num_threads']} threads" for lib in libs) or "none found"


def version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "not installed"


def run_once(runs_dir: Path) -> dict:
    """One `trickrun train` run: seconds end to end, to its first batch, of its first epoch."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    cmd = [*command(), *ARGS, "--runs-dir", str(runs_dir), "--json"]
    marks: dict[str, float] = {}
    err_lines: list[str] = []

    def read_stderr(stream) -> None:
        for line in stream:
            if FIRST_BATCH_MARK in line and "first_batch" not in marks:
                marks["first_batch"] = time.perf_counter()
            err_lines.append(line)

    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    reader = threading.Thread(target=read_stderr, args=(proc.stderr,), daemon=True)
    reader.start()
    out = proc.stdout.read()
    proc.wait()
    end = time.perf_counter() - t0
    reader.join()
    if proc.returncode != 0:
        sys.exit(f"the run failed (exit {proc.returncode}):\n$ {' '.join(cmd)}\n{''.join(err_lines[-30:])}")
    result = {"end_to_end": end, "first_batch": marks["first_batch"] - t0 if "first_batch" in marks else None,
              "epoch_s": None}
    try:
        run_dir = Path(json.loads(out)["run_dir"])
        first = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[0])
        result["epoch_s"] = float(first["epoch_s"])
    except (ValueError, KeyError, IndexError, OSError):
        pass  # only end to end, then
    return result


def seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--warm", type=int, default=2, help="runs after the cold one (default 2)")
    args = ap.parse_args(argv)

    print("# trickrun start-up: one batch of training, end to end")
    print(f"- machine: {cpu_model()}, {os.cpu_count()} CPUs; Python {platform.python_version()}")
    print(f"- BLAS: {blas()}")
    print(f"- numpy {version('numpy')}, numba {version('numba')}")
    print(f"- command (in {REPO}, with --runs-dir <temporary> --json added): "
          f"`trickrun {' '.join(ARGS)}`")
    if os.environ.get("NUMBA_CACHE_DIR"):
        print(f"- NUMBA_CACHE_DIR={os.environ['NUMBA_CACHE_DIR']}: numba may cache there, not in "
              f"{KERNELS.relative_to(REPO)}; the cold run may not be cold")
    if not os.environ.get("TRICKRUN_DATA_DIR"):
        print("- TRICKRUN_DATA_DIR is not set: the run looks for MNIST where trickrun's default says")

    stale = cache_files()
    for path in stale:
        path.unlink(missing_ok=True)
    where = KERNELS.relative_to(REPO)
    print(f"- cold: {len(stale)} numba cache file(s) deleted from {where}/" if KERNELS.is_dir()
          else f"- {where}/ does not exist: no numba kernels, nothing to delete")
    print()
    print("| run | kernel cache | cache files before | end to end s | to first batch s | first epoch s | rest s |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    with tempfile.TemporaryDirectory(prefix="trickrun-startup-") as tmp:
        for i in range(1 + args.warm):
            before = len(cache_files())
            r = run_once(Path(tmp))
            rest = None
            if r["first_batch"] is not None and r["epoch_s"] is not None:
                rest = r["end_to_end"] - r["first_batch"] - r["epoch_s"]
            print(f"| {i + 1} | {'cold' if i == 0 else 'warm'} | {before} | {seconds(r['end_to_end'])} | "
                  f"{seconds(r['first_batch'])} | {seconds(r['epoch_s'])} | {seconds(rest)} |", flush=True)
    print(f"\nnumba cache files now: {len(cache_files())}")


if __name__ == "__main__":
    main()
