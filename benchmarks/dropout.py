"""What drawing dropout's words costs: NumPy's PCG64.random_raw, or kernels.pcg64's kernel.

Dropout keeps a unit when its uniform 32-bit word is at or above a threshold; the words are
PCG64's raw 64-bit draws split in two (nn/layers.Dropout). kernels.pcg64.RawWords draws the same
words as random_raw, bit for bit, by jumping LANES states side by side. This script times:

- a dropout layer's forward (words, then mask and output) at the shapes of the benchmark
  net's hidden layers, 512 and 256 units, at the batch size given (32, 128 or 512), both
  ways, alternating call by call; medians, microseconds;
- the training loop of the epoch benchmark's "adam bn+dropout0.2" net: two trainers, one
  drawing its words with random_raw as before, take turns 20 batches at a time over the
  same examples; each batch is timed whole (gather, forward, loss, backward, step), and the
  saving is the median of the differences of the two ways' times for the same batch. Their
  weights must end bit-identical (the same words give the same masks): checked, printed.

    python benchmarks/dropout.py              # batch 128, 1 timed epoch after a warm-up
    python benchmarks/dropout.py --batch 32
    python benchmarks/dropout.py --quick      # a smoke run: 10% of an epoch
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

from epoch import (CASES, HIDDEN, N_TRAIN, TURN, blas_threads, load_data, paired_batches,  # beside this script
                   paired_options, paired_saving)
from machine import cpu_model
from trickrun.config import load_config
from trickrun.nn.layers import Dropout
from trickrun.train import Trainer


class RandomRawDropout(Dropout):
    """Dropout drawing its words as it did before kernels.pcg64: NumPy's random_raw."""

    def _words(self, shape):
        n = math.prod(shape)
        return self.rng.bit_generator.random_raw(-(-n // 2)).view(np.uint32)[:n].reshape(shape)


def layer_times(batch: int, calls: int = 400) -> dict[str, dict[str, float]]:
    """Median microseconds of one forward, per hidden width, each way."""
    out = {}
    for width in HIDDEN:
        x = np.random.default_rng(0).standard_normal((batch, width), dtype=np.float32)
        layers = {"random_raw": RandomRawDropout(0.2, np.random.default_rng(1)),
                  "kernel": Dropout(0.2, np.random.default_rng(1))}
        times: dict[str, list[float]] = {way: [] for way in layers}
        for call in range(calls + 20):  # the first 20 warm up
            for way, layer in layers.items():
                t0 = time.perf_counter()
                layer.forward(x, True)
                if call >= 20:
                    times[way].append(time.perf_counter() - t0)
        assert np.array_equal(layers["random_raw"].mask, layers["kernel"].mask)
        out[width] = {way: statistics.median(ts) * 1e6 for way, ts in times.items()}
    return out


def loop_times(batch: int, data, epochs: int) -> dict:
    """Seconds of each batch of the training loop, each way, and whether the weights agree."""
    case = next(c for c in CASES if c.batch_size == batch and c.dropout > 0)
    trainers = {way: Trainer(load_config(case.config()), data) for way in ("random_raw", "kernel")}
    for block in trainers["random_raw"].model.blocks:
        if getattr(block, "dropout", None) is not None:
            block.dropout.__class__ = RandomRawDropout
    times = paired_batches(trainers, trainers["kernel"].schedule.lr(1), batch, len(data.x_train), epochs)
    same = np.array_equal(trainers["random_raw"].model.params, trainers["kernel"].model.params)
    return {"times": times, "same_bits": same, "batches": -(-len(data.x_train) // batch), "label": case.label}


def main(argv: list[str] | None = None) -> None:
    args = paired_options(__doc__, argv)
    examples = N_TRAIN // 10 if args.quick else N_TRAIN
    print("# dropout's words: NumPy's random_raw, or kernels.pcg64's kernel (the same words)")
    print(f"- {cpu_model()}; BLAS threads {blas_threads()}; batch {args.batch}\n")
    print("| layer forward, dropout 0.2 | random_raw, µs | kernel, µs | saving, µs |")
    print("| --- | ---: | ---: | ---: |")
    for width, t in layer_times(args.batch).items():
        print(f"| {args.batch} x {width} | {t['random_raw']:.1f} | {t['kernel']:.1f} | "
              f"{t['random_raw'] - t['kernel']:.1f} |", flush=True)
    data = load_data(examples)
    r = loop_times(args.batch, data, args.epochs)
    med = {way: statistics.median(ts) * 1e3 for way, ts in r["times"].items()}
    saving = paired_saving(r["times"], "random_raw", "kernel") * 1e3
    print(f"\n{r['label']}, {examples} examples ({data.source}), {args.epochs} timed epoch(s) after a "
          f"warm-up, turns of {TURN} batches; median ms per batch, and the median of the paired "
          f"differences, batch by batch:\n")
    print("| random_raw | kernel | saving, ms/batch | saving, s/epoch | weights |")
    print("| ---: | ---: | ---: | ---: | --- |")
    print(f"| {med['random_raw']:.3f} | {med['kernel']:.3f} | {saving:.3f} | "
          f"{saving * r['batches'] / 1e3:.3f} | {'bit-identical' if r['same_bits'] else 'DIFFER'} |")


if __name__ == "__main__":
    main()
