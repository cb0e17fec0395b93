"""What bounds an optimizer step: its arithmetic or the memory it streams.

Each rule's kernel (trickrun/nn/kernels/optim.py) runs on one flat float32 vector, alone, at
sizes from one that stays in the L2 cache to one that streams from memory. Where its time
per value is the same at every size, its arithmetic bounds it (Adam: a square root and a
division per value); where it grows once the vectors leave the L2 cache, the memory does
(momentum: a multiply-add). Best of 7 repeats per size, in ns per value; the benchmark's
535,818 parameters are the third size.

What streaming the step costs the Python after it, in the training loop: benchmarks/cold.py.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from machine import cpu_model  # beside this script
from trickrun.nn.kernels import optim as K

SIZES = (8_192, 65_536, 535_818, 4_000_000)
f32 = np.float32


def rules(n: int):
    """(name, kernel call) for sgd, momentum and adam on vectors of n values, no norms summed."""
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(n).astype(f32), rng.standard_normal(n).astype(f32)
    state = [np.full(n, 1e-3, f32) for _ in range(2)]
    chunks, none = K.chunk_table([n]), np.zeros(0, f32)
    return [
        ("sgd", lambda: K.sgd(p, g, f32(1e-3), chunks, none)),
        ("momentum", lambda: K.momentum(p, g, state[0], f32(1e-3), f32(0.9), chunks, none)),
        ("adam", lambda: K.adam(p, g, *state, f32(1e-3), f32(0.1), f32(0.001), f32(1e-8), f32(1.0), 0,
                                chunks, none)),
    ]


def ns_per_value(call, n: int, budget_s: float) -> float:
    call()  # compiles or loads the kernel, and warms the vectors
    t0 = time.perf_counter()
    call()
    reps = max(1, int(budget_s / max(time.perf_counter() - t0, 1e-7)))
    best = float("inf")
    for _ in range(7):
        t0 = time.perf_counter()
        for _ in range(reps):
            call()
        best = min(best, (time.perf_counter() - t0) / reps)
    return best / n * 1e9


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: a few ms per size")
    args = ap.parse_args(argv)
    budget = 0.002 if args.quick else 0.05
    table = {n: {name: ns_per_value(call, n, budget) for name, call in rules(n)} for n in SIZES}
    names = list(next(iter(table.values())))
    print(f"# one optimizer step alone, ns per value (float32, one thread); {cpu_model()}\n")
    print("| values | MB per vector | " + " | ".join(names) + " |")
    print("| ---: | ---: | " + " | ".join("---:" for _ in names) + " |")
    for n, row in table.items():
        print(f"| {n:,} | {n * 4 / 2**20:.2f} | " + " | ".join(f"{row[name]:.3f}" for name in names) + " |")


if __name__ == "__main__":
    main()
