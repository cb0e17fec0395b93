"""What gathering a batch costs: the batch kernel prefetching rows ahead, or as it was before.

The training images stay uint8, and one kernel gathers and scales each batch's rows
(trickrun/nn/kernels/batches.py). It now starts the loads of the row AHEAD rows on before it
scales a row; before, each row's cache misses waited for the previous row's. This script
times:

- the kernel alone at batch 32, 128 and 512, both ways and "in cache": the ways take turns
  batch by batch, each over its own shuffled order of MNIST-shaped random pixels, so that
  neither finds the rows the other just read in a cache; "in cache" gathers a batch's rows
  a second time, right after the first (the floor). Medians, microseconds;
- the training loop of the epoch benchmark's "adam b{batch}" net: two trainers, one
  gathering as before, each on its own copy of the pixels (for the same reason), take turns
  20 batches at a time over the same examples. The gather is timed inside the loop, where
  the rest of the step has pushed the pixels out of the caches; each batch is also timed
  whole, with the median of the differences of the two ways' times for the same batch.
  Their weights must end bit-identical (the same batches): checked, printed.

    python benchmarks/gather.py              # batch 128, 1 timed epoch after a warm-up
    python benchmarks/gather.py --batch 512 --epochs 3
    python benchmarks/gather.py --quick      # a smoke run: 10% of an epoch
"""

from __future__ import annotations

import dataclasses
import statistics
import time

import numpy as np

from epoch import CASES, N_TRAIN, TURN, blas_threads, load_data, paired_batches, paired_options, paired_saving
from machine import cpu_model
from trickrun.config import load_config
from trickrun.data.images import ScaledImages
from trickrun.nn.kernels import kernel
from trickrun.nn.kernels.batches import gather_scaled
from trickrun.train import Trainer

BATCHES = (32, 128, 512)


@kernel
def gather_scaled_before(pixels, idx, shift, divisor, offset, out):
    """The batch kernel as it was: no prefetch."""
    width = pixels.shape[1]
    for i in range(idx.shape[0]):
        row = idx[i]
        for j in range(width):
            out[i, j] = (np.float32(pixels[row, j]) - shift) / divisor - offset


class TimedImages(ScaledImages):
    """ScaledImages that keep the seconds of each take: the gather inside the training loop."""

    gather = staticmethod(gather_scaled)

    def __init__(self, pixels, scaling):
        super().__init__(pixels, scaling)
        self.seconds: list[float] = []

    def take(self, idx, out):
        s = self.scaling
        t0 = time.perf_counter()
        self.gather(self.pixels, idx, s.shift, s.divisor, s.offset, out)
        self.seconds.append(time.perf_counter() - t0)
        return out


class TimedImagesBefore(TimedImages):
    gather = staticmethod(gather_scaled_before)


def kernel_times(n: int, repeats: int) -> dict[int, dict[str, float]]:
    """Median microseconds of one batch's gather, per batch size, each way and in cache."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (n, 784), dtype=np.uint8)
    scalars = (np.float32(0), np.float32(255), np.float32(0))
    ways = {"before": gather_scaled_before, "prefetching": gather_scaled}
    out = {}
    for batch in BATCHES:
        buffers = {way: np.empty((batch, 784), np.float32) for way in (*ways, "in cache")}
        times: dict[str, list[float]] = {way: [] for way in buffers}
        for _ in range(1 + repeats):  # the first warms up
            orders = {way: rng.permutation(n) for way in ways}
            for start in range(0, n - batch + 1, batch):
                for way, fn in ways.items():
                    idx = orders[way][start : start + batch]
                    t0 = time.perf_counter()
                    fn(pixels, idx, *scalars, buffers[way])
                    times[way].append(time.perf_counter() - t0)
                t0 = time.perf_counter()
                gather_scaled(pixels, idx, *scalars, buffers["in cache"])  # the rows just read
                times["in cache"].append(time.perf_counter() - t0)
                assert np.array_equal(buffers["in cache"], buffers["prefetching"])
        out[batch] = {way: statistics.median(ts) * 1e6 for way, ts in times.items()}
    return out


def loop_times(batch: int, data, epochs: int) -> dict:
    """Seconds of each batch of the training loop, each way, and whether the weights agree."""
    case = next(c for c in CASES if c.batch_size == batch and c.optimizer == "adam" and c.norm == "none")
    pixels, scaling = data.x_train.pixels, data.x_train.scaling
    own = {"before": TimedImagesBefore(pixels.copy(), scaling), "prefetching": TimedImages(pixels.copy(), scaling)}
    trainers = {way: Trainer(load_config(case.config()), dataclasses.replace(data, x_train=x))
                for way, x in own.items()}
    times = paired_batches(trainers, trainers["before"].schedule.lr(1), batch, len(pixels), epochs)
    same = np.array_equal(trainers["before"].model.params, trainers["prefetching"].model.params)
    n_batches = -(-len(pixels) // batch)
    gathers = {way: x.seconds[n_batches:] for way, x in own.items()}  # after the warm-up epoch
    return {"times": times, "gathers": gathers, "same_bits": same, "batches": n_batches, "label": case.label}


def main(argv: list[str] | None = None) -> None:
    args = paired_options(__doc__, argv)
    examples = N_TRAIN // 10 if args.quick else N_TRAIN
    print("# gathering a batch: the batch kernel prefetching rows ahead, or as before")
    print(f"- {cpu_model()}; BLAS threads {blas_threads()}\n")
    print(f"The kernel alone, {examples} rows of 784 random uint8 pixels, {1 if args.quick else 3} shuffled "
          "pass(es) after a warm-up; median µs per batch:\n")
    print("| batch | before | prefetching | saving | rows in cache |")
    print("| ---: | ---: | ---: | ---: | ---: |")
    for batch, t in kernel_times(examples, 1 if args.quick else 3).items():
        print(f"| {batch} | {t['before']:.1f} | {t['prefetching']:.1f} | {t['before'] - t['prefetching']:.1f} | "
              f"{t['in cache']:.1f} |", flush=True)
    data = load_data(examples)
    r = loop_times(args.batch, data, args.epochs)
    gather = {way: statistics.median(ts) * 1e6 for way, ts in r["gathers"].items()}
    per_epoch = {way: sum(ts) / args.epochs for way, ts in r["gathers"].items()}
    batch = {way: statistics.median(ts) * 1e3 for way, ts in r["times"].items()}
    saving = paired_saving(r["times"], "before", "prefetching") * 1e3
    print(f"\n{r['label']}, {examples} examples ({data.source}), {args.epochs} timed epoch(s) after a "
          f"warm-up, turns of {TURN} batches, each trainer on its own copy of the pixels. The gather "
          "inside the loop (median µs, and s per epoch), the whole batch (median ms), and the median "
          "of the paired differences of whole batches:\n")
    print("| way | gather, µs | gather, s/epoch | batch, ms | batch saving, ms | weights |")
    print("| --- | ---: | ---: | ---: | ---: | --- |")
    print(f"| before | {gather['before']:.1f} | {per_epoch['before']:.4f} | {batch['before']:.3f} | | |")
    print(f"| prefetching | {gather['prefetching']:.1f} | {per_epoch['prefetching']:.4f} | "
          f"{batch['prefetching']:.3f} | {saving:.3f} | {'bit-identical' if r['same_bits'] else 'DIFFER'} |")


if __name__ == "__main__":
    main()
