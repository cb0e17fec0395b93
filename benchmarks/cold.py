"""NumPy calls in the training loop's cold stretch: what keeping them out saved.

Each optimizer step streams megabytes through the caches and evicts the interpreter's own
code and data, so the Python that follows it runs cold, and NumPy's small calls, whose
dispatch is long code, cost several times what they cost warm. Until 2026-12-08 every batch
made four kinds of them:

- the trainer read the norms the step had summed (np.copyto, sum, np.sqrt, +=) right after
  the step;
- the output layer, which has no activation to fuse its bias into, added its bias (np.add)
  and summed its bias gradient over the batch (np.sum);
- the batch's labels were gathered by np.take.

Now each step leaves its sums in a row of the epoch's table (the norms are taken once, after
the epoch: train.norm_sums) and three small kernels do the rest (kernels/layers.py add_bias
and column_sums, kernels/batches.py gather_labels), with the same bits.

One trainer runs the loop body both ways ("before", "now") in turns of TURN batches, over
the epochs after a warm-up. Both ways make the same updates, so the one trainer trains as a
run does; and both use the same arrays, at the same places in memory: two trainers of one
config, built side by side, differed by up to 30 µs a batch by where their arrays landed,
more than the change. Printed: the median of the per-batch differences (paired turn by
turn), and, the way before, the norms read right after the step and the same read again.

    python benchmarks/cold.py                # Adam and momentum at batch 128, 1 epoch
    python benchmarks/cold.py --batch 32 --epochs 1
    python benchmarks/cold.py --quick        # a smoke run: 10% of an epoch
"""

from __future__ import annotations

import math
import statistics
import time
import types

import numpy as np

from epoch import TURN, paired_setup  # beside this script
import trickrun.nn.layers
import trickrun.train
from trickrun.config import load_config
from trickrun.train import Trainer, softmax_cross_entropy

KERNELS = trickrun.nn.layers.K
LABELS = trickrun.train.gather_labels
# The layers' kernels module as the layers saw it before: bias and bias gradient by NumPy.
NUMPY_BIAS = types.SimpleNamespace(**{name: getattr(KERNELS, name) for name in dir(KERNELS)
                                      if not name.startswith("__")})
NUMPY_BIAS.add_bias = lambda x, bias: np.add(x, bias, out=x)
NUMPY_BIAS.column_sums = lambda x, out: np.sum(x, axis=0, out=out)


def numpy_labels(labels, idx, out):
    np.take(labels, idx, out=out, mode="clip")


class Loop:
    """The training loop's body (gather, forward, loss, backward, step, the norms), either way."""

    def __init__(self, trainer: Trainer, lr: float, n_batches: int):
        self.t, self.lr = trainer, lr
        self.rows = np.zeros((n_batches, len(trainer._segments)), trainer.model.dtype)
        self.sq = np.zeros(len(trainer._segments))  # the trainer's float64 copy, as before
        self.sums = [np.zeros(len(trainer.model.blocks)), 0.0]
        self.read_first: list[float] = []
        self.read_again: list[float] = []

    def batch(self, way: str, idx: np.ndarray, index: int) -> None:
        before = way == "before"
        trickrun.nn.layers.K = NUMPY_BIAS if before else KERNELS
        trickrun.train.gather_labels = numpy_labels if before else LABELS
        t, m = self.t, self.t.model
        xb, yb, dlogits = t._batch(idx)
        logits = m.forward(xb, train=True)
        _, _, dlogits = softmax_cross_entropy(logits, yb, grad_out=dlogits)
        m.backward(dlogits)
        if not before:
            if not math.isfinite(t.optimizer.step(m.params, m.grads, self.lr, self.rows[index])):
                raise RuntimeError("diverged")
            return
        t.optimizer.step(m.params, m.grads, self.lr)
        t0 = time.perf_counter()
        norm = self.read_norms()
        t1 = time.perf_counter()
        self.read_norms()
        self.read_first.append(t1 - t0)
        self.read_again.append(time.perf_counter() - t1)
        if not math.isfinite(norm):
            raise RuntimeError("diverged")
        self.sums[0] += np.sqrt(self.sq[:-1])
        self.sums[1] += norm

    def read_norms(self) -> float:
        """Trainer._step_norms as it was: the step's sums copied to float64, then their total."""
        np.copyto(self.sq, self.t.optimizer.squares)
        return math.sqrt(self.sq.sum())


def paired(case, data, epochs: int) -> dict:
    trainer = Trainer(load_config(case.config()), data)
    bs, n = case.batch_size, len(data.x_train)
    n_batches = -(-n // bs)
    loop = Loop(trainer, trainer.schedule.lr(1), n_batches)
    order = np.random.default_rng(0).permutation(n)
    ways = ("before", "now")
    times: dict[str, list[float]] = {way: [] for way in ways}
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            for epoch in range(1 + epochs):  # the first is a warm-up
                for start in range(0, n_batches, TURN):
                    turn = (start // TURN) % 2  # each way goes first in turn
                    for way in ways[turn:] + ways[:turn]:
                        for index in range(start, min(start + TURN, n_batches)):
                            t0 = time.perf_counter()
                            loop.batch(way, order[index * bs : (index + 1) * bs], index)
                            if epoch:
                                times[way].append(time.perf_counter() - t0)
    finally:
        trickrun.nn.layers.K, trickrun.train.gather_labels = KERNELS, LABELS
    return {"times": times, "first": loop.read_first, "again": loop.read_again, "steps_per_epoch": n_batches}


def main(argv: list[str] | None = None) -> None:
    args, data, cases, machine = paired_setup(__doc__, argv)
    print("# NumPy calls after the step (before) or none (now): one trainer, the two ways in turns "
          f"of {TURN} batches")
    print(f"{machine}; medians, µs a batch\n")
    print("| config | before | now | saving (paired) | saving, s/epoch | norms read after the step | "
          "the same read again |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for case in cases:
        r = paired(case, data, args.epochs)
        t = r["times"]
        saving = statistics.median(a - b for a, b in zip(t["before"], t["now"]))
        us = {way: statistics.median(ts) * 1e6 for way, ts in t.items()}
        print(f"| {case.label} | {us['before']:.1f} | {us['now']:.1f} | {saving * 1e6:.1f} | "
              f"{saving * r['steps_per_epoch']:.4f} | {statistics.median(r['first']) * 1e6:.1f} | "
              f"{statistics.median(r['again']) * 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()
