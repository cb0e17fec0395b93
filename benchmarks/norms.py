"""What the gradient norms cost: summed by the optimizer's kernel, or by BLAS dot products.

The trainer's per-layer gradient norms come from the optimizer's kernel, which sums each
piece's squared gradient while the piece is in the L1 cache (trickrun/nn/kernels/optim.py).
A run that clips takes them apart instead, by BLAS dot products over the gradient before
the step (clipping needs them first), and its kernel sums nothing; before 2026-12-07 every
run did so. This script times, in the training loop:

- "dot products first": Trainer._grad_norms, then a step that sums nothing (a clipping
  run's way, and every run's before);
- "from the step": a step that sums the squares into the batch's row of the epoch's table
  (the trainer takes the norms from that table after the epoch: train.norm_sums);
- "no norms": the step that sums nothing, alone (what the norms cost above it).

Three trainers of the same config take turns batch by batch over the same examples (real
MNIST from $TRICKRUN_DATA_DIR, else random pixels), each running its own forward and
backward, and only that tail is timed. Pairing each step with its neighbours cancels the
machine's drift, which swamps a difference this size when whole epochs are timed. The
weights of the three must end bit-identical (without clipping the norms change no update):
checked, printed.

    python benchmarks/norms.py               # Adam and momentum at batch 128, 1 epoch
    python benchmarks/norms.py --batch 32 --epochs 2
    python benchmarks/norms.py --quick       # a smoke run: 10% of an epoch
"""

from __future__ import annotations

import statistics
import time

import numpy as np

from epoch import paired_setup  # beside this script
from trickrun.config import load_config
from trickrun.nn.kernels.optim import CHUNK
from trickrun.nn.optim import make_optimizer
from trickrun.train import Trainer, softmax_cross_entropy


WAYS = ("dot products first", "from the step", "no norms")


def paired_steps(case, data, epochs: int) -> dict:
    """Seconds of each step's tail for each way, and whether their weights agree."""
    trainers = {way: Trainer(load_config(case.config()), data) for way in WAYS}
    for way in ("dot products first", "no norms"):
        t = trainers[way]
        t.optimizer = make_optimizer(t.cfg.optimizer, t.model.params.size, t.model.dtype, t.model.n_weights)
    lr = trainers["from the step"].schedule.lr(1)
    bs = case.batch_size
    order = np.random.default_rng(0).permutation(len(data.x_train))
    n_batches = -(-len(order) // bs)
    rows = np.zeros((n_batches, len(trainers["from the step"]._segments)), np.float32)
    times: dict[str, list[float]] = {way: [] for way in WAYS}
    for epoch in range(1 + epochs):  # the first is a warm-up
        for index in range(n_batches):
            idx = order[index * bs : (index + 1) * bs]
            for way in WAYS[index % 3:] + WAYS[: index % 3]:  # each goes first in turn
                t = trainers[way]
                xb, yb, dlogits = t._batch(idx)
                logits = t.model.forward(xb, train=True)
                _, _, dlogits = softmax_cross_entropy(logits, yb, grad_out=dlogits)
                t.model.backward(dlogits)
                t0 = time.perf_counter()
                if way == "dot products first":
                    t._grad_norms(rows[index])
                if way == "from the step":
                    t.optimizer.step(t.model.params, t.model.grads, lr, rows[index])
                else:
                    t.optimizer.step(t.model.params, t.model.grads, lr)
                if epoch:
                    times[way].append(time.perf_counter() - t0)
    params = [t.model.params for t in trainers.values()]
    same = all(np.array_equal(params[0], p) for p in params[1:])
    return {"times": times, "same_bits": same, "steps_per_epoch": n_batches}


def main(argv: list[str] | None = None) -> None:
    args, data, cases, machine = paired_setup(__doc__, argv)
    print(f"# gradient norms: summed by the optimizer's kernel (pieces of {CHUNK}) or by dot products first")
    print(f"{machine}; the three take turns batch by batch; "
          f"medians, saving = paired median of dot products first - from the step\n")
    print("| config | no norms, ms/step | dot products first | from the step | saving, ms/step | saving, s/epoch "
          "| weights |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- |")
    for case in cases:
        r = paired_steps(case, data, args.epochs)
        t = r["times"]
        med = {way: statistics.median(ts) * 1e3 for way, ts in t.items()}
        saving = statistics.median(a - f for a, f in zip(t["dot products first"], t["from the step"]))
        print(f"| {case.label} | {med['no norms']:.3f} | {med['dot products first']:.3f} | "
              f"{med['from the step']:.3f} | {saving * 1e3:.3f} | {saving * r['steps_per_epoch']:.3f} | "
              f"{'bit-identical' if r['same_bits'] else 'DIFFER'} |", flush=True)


if __name__ == "__main__":
    main()
