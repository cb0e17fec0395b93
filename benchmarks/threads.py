"""Can the second core take half of the optimizer step? A training epoch with Adam's kernel
run on one thread against the same kernel run on two, each under two environments.

The speed issue's lead: the elementwise work runs on one core while the second waits, and a
kernel on two threads (`prange`) made an epoch 2x slower, since OpenBLAS's idle worker spins
on the second core after every product. Two variables should let the second core go:
OPENBLAS_THREAD_TIMEOUT=4 (the BLAS worker sleeps almost at once instead of spinning for
2^28 cycles) and OMP_WAIT_POLICY=PASSIVE (an OpenMP worker sleeps too). Both are read when
the libraries load, so each environment gets its own child process:

- "as is": the environment this script was started in;
- "BLAS sleeps": the same plus OPENBLAS_THREAD_TIMEOUT=4 and OMP_WAIT_POLICY=PASSIVE.

In each child, interleaved (bound, one thread, two threads, bound, ...) so that machine noise
hits all alike: the matmul bound of benchmarks/epoch.py, and `Trainer._train_epoch` with
`kernels.optim.adam` called once on the whole vector ("1 thread") or on its two halves from
a pool of two threads ("2 threads"; the kernels release the GIL, and the update is
elementwise, so the halves give the same bits: checked, printed). Ratios are to the bound of
the same child; "paired" is the median of each epoch's ratio to the bound timed just before.

    TRICKRUN_DATA_DIR=/path/to/data python benchmarks/threads.py            # Adam, batch 128
    python benchmarks/threads.py --batch 32 --epochs 7
    python benchmarks/threads.py --quick     # a smoke run: 10% of an epoch, 1 timed epoch
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np  # each child loads it afresh, under the environment the parent gave it

from epoch import CASES, HIDDEN, N_TRAIN, Bound, blas_threads, load_data, timed  # beside this script
from machine import cpu_model
from trickrun.config import load_config
from trickrun.nn.kernels import optim as kernels
from trickrun.train import Trainer

ENVIRONMENTS = {
    "as is": {},
    "BLAS sleeps": {"OPENBLAS_THREAD_TIMEOUT": "4", "OMP_WAIT_POLICY": "PASSIVE"},
}


def split_in_two(kernel, pool: ThreadPoolExecutor):
    """`kernel(p, g, m, v, *scalars, chunks, squares)` run on the two halves of its pieces
    (`chunks`' rows, absolute positions) at once. Each half sums its own squares and the
    two sums are added after: the same updates bit for bit, the squares and their total (the
    kernel's return, what the trainer checks) to rounding."""

    def halves(p, g, m, v, *args):
        *scalars, chunks, squares = args
        h = len(chunks) // 2
        mine = np.empty_like(squares)
        first = pool.submit(kernel, p, g, m, v, *scalars, chunks[:h], mine)
        kernel(p, g, m, v, *scalars, chunks[h:], squares)
        first.result()
        squares += mine
        return sum(float(s) for s in squares)  # as the kernels' _total adds them

    return halves


def child(batch_size: int, epochs: int, examples: int) -> dict:
    """Time the bound and both kinds of epoch in this process (whose environment the parent set)."""
    case = next(c for c in CASES if c.optimizer == "adam" and c.norm == "none" and c.batch_size == batch_size)
    data = load_data(examples)
    bound = Bound([784, *HIDDEN, 10], len(data.x_train), batch_size)
    one, pool = kernels.adam, ThreadPoolExecutor(1)
    variants = {"1 thread": one, "2 threads": split_in_two(one, pool)}
    trainers = {name: Trainer(load_config(case.config()), data) for name in variants}
    lr = trainers["1 thread"].schedule.lr(1)

    def run(name: str) -> None:
        kernels.adam = variants[name]
        try:
            trainers[name]._train_epoch(lr)
        finally:
            kernels.adam = one

    bound.epoch()
    for name in variants:  # warm-up
        run(name)
    times: dict[str, list[float]] = {"bound": [], **{name: [] for name in variants}}
    for _ in range(epochs):
        times["bound"].append(timed(bound.epoch))
        for name in variants:
            times[name].append(timed(lambda: run(name)))
    params = [t.model.params for t in trainers.values()]
    return {"times": times, "same_bits": bool(np.array_equal(*params)), "blas_threads": blas_threads()}


def report(label: str, result: dict) -> None:
    times = result["times"]
    bound = statistics.median(times["bound"])
    print(f"\n{label}: BLAS threads {result['blas_threads']}; the two variants' weights after "
          f"training {'are bit-identical' if result['same_bits'] else 'DIFFER'}\n")
    print("| epoch | median s | ratio to bound | paired ratio | spread |")
    print("| --- | ---: | ---: | ---: | ---: |")
    for name, ts in times.items():
        paired = statistics.median(t / b for t, b in zip(ts, times["bound"]))
        print(f"| {name} | {statistics.median(ts):.3f} | {statistics.median(ts) / bound:.2f} | {paired:.2f} | "
              f"{max(ts) / min(ts) - 1:.0%} |")


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128, choices=[32, 128, 512])
    ap.add_argument("--epochs", type=int, default=5, help="timed epochs of each kind, after 1 warm-up")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10%% of an epoch, 1 timed epoch")
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    examples = N_TRAIN // 10 if args.quick else N_TRAIN
    epochs = 1 if args.quick else args.epochs
    if args.child:
        print(json.dumps(child(args.batch, epochs, examples)))
        return
    set_here = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "NUMBA_"))}
    net = "-".join(map(str, [784, *HIDDEN, 10]))
    print(f"# Adam b{args.batch}, {net} ReLU, {examples} examples, {epochs} timed epoch(s) each; "
          f"{cpu_model()}; variables set by the caller: {set_here or 'none'}")
    for label, extra in ENVIRONMENTS.items():
        env = {**os.environ, **extra}
        cmd = [sys.executable, str(Path(__file__).resolve()), "--child", "--batch", str(args.batch),
               "--epochs", str(args.epochs), *(["--quick"] if args.quick else [])]
        out = subprocess.run(cmd, env=env, check=True, capture_output=True, text=True)
        report(f"{label} ({', '.join(f'{k}={v}' for k, v in extra.items()) or 'nothing added'})",
               json.loads(out.stdout.splitlines()[-1]))


if __name__ == "__main__":
    main()
