"""What a training step costs besides its arithmetic: Python's, NumPy's and numba's calls.

A tiny net (8 input pixels, two hidden layers of 4 units, batch 2) does next to no
arithmetic, so its time per batch is the training loop's fixed cost per batch: the calls
that every batch makes whatever its size (layers, kernels, scratch arrays, the optimizer,
the bookkeeping). At batch 128 an epoch pays it 430 times, at batch 32 1,719 times.

The script times a real epoch (`Trainer._train_epoch`) of the tiny net for three configs
(momentum; Adam; Adam with batch norm and dropout 0.2), with the layers' scratch arrays
looked up as before 2026-12-07 (keyed on np.dtype(dtype).str, which cost 1.6 µs a lookup
on an AMD EPYC; a batch norm + dropout step makes 31) and as now (keyed on the dtype as
given). The two ways take turns epoch by epoch; each figure is the fastest of the epochs,
in microseconds per batch.

    python benchmarks/overhead.py            # 8 epochs of 10,000 batches each way
    python benchmarks/overhead.py --quick    # a smoke run: 2 epochs of 1,000 batches
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from machine import cpu_model  # beside this script
from trickrun.config import load_config
from trickrun.data.images import ScaledImages
from trickrun.data.load import Dataset
from trickrun.data.scaling import SCALES
from trickrun.nn.layers import Scratch
from trickrun.train import Trainer

CONFIGS = (("momentum", "none", 0.0), ("adam", "none", 0.0), ("adam", "batch", 0.2))


def get_before(self, key, shape, dtype):
    """Scratch.get as it was."""
    full = (key, shape, np.dtype(dtype).str)
    arr = self._arrays.get(full)
    if arr is None:
        arr = self._arrays[full] = np.empty(shape, dtype)
    return arr


WAYS = {"before": get_before, "now": Scratch.get}


def tiny_data(n: int) -> Dataset:
    rng = np.random.default_rng(0)
    x = ScaledImages(rng.integers(0, 256, (n, 8), dtype=np.uint8), SCALES.get("unit")(None))
    y = rng.integers(0, 10, n).astype(np.intp)
    return Dataset("mnist", x, y, x[:10], y[:10], x[:10], y[:10], "random pixels")


def per_batch(optimizer: str, norm: str, dropout: float, data: Dataset, epochs: int) -> dict[str, float]:
    """The fastest epoch's seconds per batch, each way."""
    cfg = {"name": "overhead", "model": {"hidden": [4, 4], "norm": norm, "dropout": dropout},
           "optimizer": {"name": optimizer}, "train": {"batch_size": 2, "epochs": 1000},
           "early_stopping": {"enabled": False}}
    trainer = Trainer(load_config(cfg), data)
    lr, n_batches = trainer.schedule.lr(1), len(data.x_train) // 2
    best = dict.fromkeys(WAYS, float("inf"))
    try:
        for epoch in range(epochs):
            for way in list(WAYS)[epoch % 2:] + list(WAYS)[: epoch % 2]:  # each goes first in turn
                Scratch.get = WAYS[way]
                trainer._train_epoch(lr)  # a warm-up: fills the scratch arrays under this way's keys
                t0 = time.perf_counter()
                trainer._train_epoch(lr)
                best[way] = min(best[way], (time.perf_counter() - t0) / n_batches)
    finally:
        Scratch.get = WAYS["now"]
    return best


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 epochs of 1,000 batches")
    args = ap.parse_args(argv)
    data = tiny_data(2_000 if args.quick else 20_000)
    epochs = 2 if args.quick else 8
    print("# the training loop's fixed cost per batch: a tiny net (8-4-4-10, batch 2)")
    print(f"- {cpu_model()}; {len(data.x_train) // 2} batches an epoch, the fastest of {epochs} epochs each way\n")
    print("| config | scratch lookup as before, µs/batch | as now, µs/batch | saving, µs/batch |")
    print("| --- | ---: | ---: | ---: |")
    for optimizer, norm, dropout in CONFIGS:
        t = per_batch(optimizer, norm, dropout, data, epochs)
        label = optimizer + (f", {norm} norm + dropout {dropout:g}" if norm != "none" else "")
        print(f"| {label} | {t['before'] * 1e6:.1f} | {t['now'] * 1e6:.1f} | "
              f"{(t['before'] - t['now']) * 1e6:.1f} |", flush=True)


if __name__ == "__main__":
    main()
