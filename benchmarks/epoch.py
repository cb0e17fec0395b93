"""One training epoch of trickrun against its matmul-only lower bound, and against PyTorch.

For each configuration this measures, in one process and interleaved (bound, real, torch,
bound, real, torch, ...) so that machine noise hits all alike:

- the lower bound: only the matrix products of one epoch of the same architecture and batch
  sizes, with the same BLAS thread count: per batch, the forward product of every Dense
  layer, its weight-gradient product x^T g, and its input-gradient product g W^T except for
  the first layer (nothing upstream needs it). Outputs are preallocated (`out=`);
- trickrun's real training step loop, `Trainer._train_epoch` called directly (no
  validation, diagnostics or run directory), on a Trainer that is never given a writer;
- PyTorch on the CPU, when it is importable (it is no dependency of trickrun): the same net
  (same layers, the same initial weights, batch norm with the same momentum and eps, the
  same dropout rate), the same optimizer and hyper-parameters, batch size, examples
  (reshuffled every epoch) and thread count (`torch.set_num_threads` = the BLAS threads),
  in a plain loop: gather the batch, forward, cross-entropy, zero_grad, backward, step.

Each figure is the median of the timed epochs after one warm-up epoch. An epoch is 55,000
examples of MNIST-shaped float32 data: real MNIST (training split less 5,000 validation
examples) when $TRICKRUN_DATA_DIR holds it, else uniform random pixels in [0, 1].

    python benchmarks/epoch.py             # the full table
    python benchmarks/epoch.py --quick     # a smoke run: 1 timed epoch of 10% of the data
    python benchmarks/epoch.py --threads 1 # BLAS threads (default: threadpoolctl's count)
    python benchmarks/epoch.py --only b128 # only the configurations whose label contains it
    python benchmarks/epoch.py --profile   # also where the time of a real epoch goes

Without torch installed the torch columns read "-" and one line says why; torch is only ever
installed to measure (pip install torch --index-url https://download.pytorch.org/whl/cpu).
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import statistics
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_info, threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # machine.py, also under runpy

from machine import cpu_model  # noqa: E402
from trickrun.config import DataConfig, load_config  # noqa: E402
from trickrun.data.load import Dataset, load_dataset  # noqa: E402
from trickrun.data.images import ScaledImages  # noqa: E402
from trickrun.data.scaling import SCALES  # noqa: E402
from trickrun.train import Divergence, Trainer, softmax_cross_entropy  # noqa: E402

N_TRAIN = 55_000  # examples per epoch
HIDDEN = [512, 256]  # 784-512-256-10


@dataclass(frozen=True)
class Case:
    label: str
    batch_size: int
    optimizer: str = "adam"
    norm: str = "none"
    dropout: float = 0.0
    target: float | None = None  # ratio to the lower bound that the speed issue asks for
    torch_target: float | None = None  # ratio to PyTorch's epoch that it asks for

    def config(self) -> dict:
        return {
            "name": "bench",
            "model": {"hidden": HIDDEN, "norm": self.norm, "dropout": self.dropout},
            "optimizer": {"name": self.optimizer},
            "train": {"batch_size": self.batch_size, "epochs": 1000},
            "early_stopping": {"enabled": False},
        }


CASES = [
    Case("adam b32", 32, target=3.5),
    Case("adam b128", 128, target=1.6, torch_target=0.67),
    Case("adam b512", 512, target=1.3),
    Case("adam b32 bn+dropout0.2", 32, norm="batch", dropout=0.2),
    Case("adam b128 bn+dropout0.2", 128, norm="batch", dropout=0.2, target=1.9),
    Case("adam b512 bn+dropout0.2", 512, norm="batch", dropout=0.2),
    Case("momentum b32", 32, optimizer="momentum"),
    Case("momentum b128", 128, optimizer="momentum", target=1.4),
    Case("momentum b512", 512, optimizer="momentum"),
]


def load_data(n: int) -> Dataset:
    root = os.environ.get("TRICKRUN_DATA_DIR")
    if root and (Path(root) / "mnist").is_dir():
        d = load_dataset(DataConfig(dataset="mnist", val_size=5000))
        x = ScaledImages(d.x_train.pixels[:n], d.x_train.scaling)
        y, source = d.y_train[:n], f"MNIST from {d.source}"
    else:
        rng = np.random.default_rng(0)
        x = ScaledImages(rng.integers(0, 256, (n, 784), dtype=np.uint8), SCALES.get("unit")(None))
        y = rng.integers(0, 10, n).astype(np.intp)
        source = "random pixels (set TRICKRUN_DATA_DIR for real MNIST)"
    y = np.ascontiguousarray(y)
    small_x, small_y = x[:10], y[:10]
    return Dataset("mnist", x, y, small_x, small_y, small_x, small_y, source)


class Bound:
    """The matrix products of one epoch, with every operand and output preallocated."""

    def __init__(self, widths: list[int], n: int, batch_size: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.sizes = [min(batch_size, n - s) for s in range(0, n, batch_size)]
        self.W = [rng.standard_normal((a, b), dtype=np.float32) * 0.05 for a, b in zip(widths, widths[1:])]
        self.gW = [np.empty_like(w) for w in self.W]
        self.buffers = {}
        for size in set(self.sizes):
            acts = [rng.random((size, w), dtype=np.float32) for w in widths]
            grads = [rng.standard_normal((size, w), dtype=np.float32) for w in widths]
            self.buffers[size] = acts, grads

    def epoch(self) -> None:
        W, gW = self.W, self.gW
        for size in self.sizes:
            acts, grads = self.buffers[size]
            for i, w in enumerate(W):
                np.matmul(acts[i], w, out=acts[i + 1])
            for i in reversed(range(len(W))):
                np.matmul(acts[i].T, grads[i + 1], out=gW[i])
                if i > 0:
                    np.matmul(grads[i + 1], W[i].T, out=grads[i])


def import_torch():
    """(torch, None), or (None, why not): torch is optional, only ever installed to measure."""
    try:
        import torch
    except Exception as e:  # ImportError, or a broken install (OSError from a shared library)
        return None, f"{type(e).__name__}: {e}"
    return torch, None


class TorchEpoch:
    """The same training epoch in PyTorch: the net of `trainer` layer for layer (from its
    blocks, with its initial weights), the same optimizer and hyper-parameters, batch size
    and examples, reshuffled every epoch. A plain loop: gather, forward, cross-entropy,
    zero_grad, backward, step, and the loss read back as a float (trickrun reads it too)."""

    def __init__(self, torch, trainer: Trainer, data: Dataset, lr: float, seed: int = 0):
        nn = torch.nn
        self.torch, self.batch_size = torch, trainer.cfg.train.batch_size
        torch.manual_seed(seed)  # dropout masks
        self.shuffle = torch.Generator().manual_seed(seed)
        if trainer.model.input_dropout is not None:
            raise ValueError("input dropout is not mirrored in torch")
        layers = []
        with torch.no_grad():
            for block in trainer.model.blocks:
                dense = block.dense
                linear = nn.Linear(*dense.W.shape, bias=dense.b is not None)
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(dense.W.T)))
                if dense.b is not None:
                    linear.bias.copy_(torch.from_numpy(dense.b))
                layers.append(linear)
                if block.norm is not None:
                    if not hasattr(block.norm, "momentum"):
                        raise ValueError(f"{type(block.norm).__name__} is not mirrored in torch")
                    # trickrun: running = m running + (1 - m) batch (Keras); torch's momentum is 1 - m
                    layers.append(nn.BatchNorm1d(dense.W.shape[1], eps=block.norm.eps,
                                                 momentum=1.0 - block.norm.momentum))
                if block.activation is not None:
                    if type(block.activation).__name__.lower() != "relu":
                        raise ValueError(f"{type(block.activation).__name__} is not mirrored in torch")
                    layers.append(nn.ReLU())
                if block.dropout is not None:
                    layers.append(nn.Dropout(block.dropout.rate))
        self.model = nn.Sequential(*layers)
        hyper = trainer.optimizer.get_config()
        name = trainer.cfg.optimizer.name
        if name == "adam":
            self.opt = torch.optim.Adam(self.model.parameters(), lr=lr, betas=(hyper["beta1"], hyper["beta2"]),
                                        eps=hyper["eps"])
        elif name == "momentum":
            # torch: b = mu b + g, w -= lr b; trickrun: v = mu v - lr g, w += v: the same at a fixed lr
            self.opt = torch.optim.SGD(self.model.parameters(), lr=lr, momentum=hyper["momentum"])
        else:
            raise ValueError(f"optimizer {name} is not mirrored in torch")
        self.x = torch.from_numpy(np.asarray(data.x_train))
        self.y = torch.from_numpy(data.y_train.astype(np.int64))

    def epoch(self) -> None:
        torch, model, opt, bs = self.torch, self.model, self.opt, self.batch_size
        cross_entropy = torch.nn.functional.cross_entropy
        model.train()
        n = len(self.x)
        order = torch.randperm(n, generator=self.shuffle)
        loss_sum = 0.0
        for start in range(0, n, bs):
            idx = order[start : start + bs]
            xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
            loss = cross_entropy(model(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item()
        if not np.isfinite(loss_sum):
            raise RuntimeError("torch: training diverged")


# OpenBLAS's idle worker busy-waits for 2^28 cycles (~0.1 s) after the last BLAS call and
# would hold one of the cores through the start of a torch epoch (torch has its own BLAS and
# OpenMP threads): a pause before every torch epoch lets it go to sleep first.
SETTLE_S = 0.2


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def measure(case: Case, data: Dataset, epochs: int, torch=None) -> tuple[list[float], list[float], list[float]]:
    """Seconds of each timed epoch: (bounds, trickrun's, torch's), measured alternately;
    torch's is empty without `torch`."""
    cfg = load_config(case.config())
    trainer = Trainer(cfg, data)
    lr = trainer.schedule.lr(1)
    bound = Bound([784, *HIDDEN, 10], len(data.x_train), case.batch_size)
    mirror = TorchEpoch(torch, trainer, data, lr) if torch is not None else None  # trickrun's initial weights

    def torch_epoch() -> float:
        time.sleep(SETTLE_S)
        return timed(mirror.epoch)

    def real() -> None:
        trainer.epoch += 1
        stats = trainer._train_epoch(lr)
        if isinstance(stats, Divergence):
            raise RuntimeError(f"{case.label}: training diverged: {stats.reason()}")

    bound.epoch()  # warm-up: allocations, page faults, BLAS thread start
    real()
    if mirror is not None:
        torch_epoch()
    b_times, r_times, t_times = [], [], []
    for _ in range(epochs):
        b_times.append(timed(bound.epoch))
        r_times.append(timed(real))
        if mirror is not None:
            t_times.append(torch_epoch())
    return b_times, r_times, t_times


def block_layers(block) -> list:
    """A block's layers in order (Dense, norm, activation, dropout: those it has)."""
    layers = getattr(block, "_layers", None)
    if layers is None:
        layers = [x for x in (block.dense, block.norm, block.activation, block.dropout) if x is not None]
    return list(layers)


def profile_epoch(case: Case, data: Dataset) -> dict[str, float]:
    """Seconds per epoch of each part of a real training epoch (after a warm-up epoch),
    timed by wrapping the layers, the loss and the optimizer step of one Trainer."""
    import trickrun.train

    trainer = Trainer(load_config(case.config()), data)
    lr = trainer.schedule.lr(1)
    spent: dict[str, float] = {}

    def timing(part: str, fn):
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            out = fn(*args, **kwargs)
            spent[part] = spent.get(part, 0.0) + time.perf_counter() - t0
            return out
        return wrapper

    for layer in [layer for block in trainer.model.blocks for layer in block_layers(block)]:
        part = "Dense layers" if type(layer).__name__ == "Dense" else "other layers"
        layer.forward, layer.backward = timing(part, layer.forward), timing(part, layer.backward)
    trainer.optimizer.step = timing("optimizer step", trainer.optimizer.step)
    loss = trickrun.train.softmax_cross_entropy
    trickrun.train.softmax_cross_entropy = timing("loss", loss)
    try:
        trainer._train_epoch(lr)
        spent.clear()
        total = timed(lambda: trainer._train_epoch(lr))
    finally:
        trickrun.train.softmax_cross_entropy = loss
    spent["rest of the loop"] = total - sum(spent.values())
    spent["epoch"] = total
    return spent


def paired_options(doc: str, argv: list[str] | None) -> argparse.Namespace:
    """The options of the scripts that time two ways of one part of the training loop side
    by side (norms.py, dropout.py): --batch, --epochs, --quick."""
    ap = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=128, choices=[32, 128, 512])
    ap.add_argument("--epochs", type=int, default=1, help="timed epochs, after 1 warm-up")
    ap.add_argument("--quick", action="store_true", help="smoke run: 10%% of an epoch")
    return ap.parse_args(argv)


def paired_setup(doc: str, argv: list[str] | None) -> tuple[argparse.Namespace, Dataset, list[Case], str]:
    """What the scripts that time ways of the training loop's tail start from (norms.py,
    cold.py): their options, the data, the configs without normalization at the batch size
    asked for, and a line naming the machine, the data and the epochs."""
    args = paired_options(doc, argv)
    examples = N_TRAIN // 10 if args.quick else N_TRAIN
    data = load_data(examples)
    cases = [c for c in CASES if c.batch_size == args.batch and c.norm == "none"]
    line = (f"- {cpu_model()}; BLAS threads {blas_threads()}; {examples} examples ({data.source}); "
            f"{args.epochs} timed epoch(s) after a warm-up")
    return args, data, cases, line


TURN = 20  # batches each trainer of a paired loop runs before the other takes over


def paired_batches(trainers: dict, lr: float, batch: int, n: int, epochs: int) -> dict[str, list[float]]:
    """Seconds of every batch (gather, forward, loss, backward, step) of trainers that take
    turns TURN batches at a time over the same shuffled examples, each going first in turn:
    pairing a batch's times cancels the machine's drift, which swamps a small saving when
    whole epochs are timed. The first of 1 + `epochs` epochs is a warm-up."""
    order = np.random.default_rng(0).permutation(n)
    n_batches = -(-n // batch)
    ways = list(trainers)
    times: dict[str, list[float]] = {way: [] for way in ways}
    for epoch in range(1 + epochs):
        for start in range(0, n_batches, TURN):
            turn = (start // TURN) % len(ways)
            for way in ways[turn:] + ways[:turn]:
                t = trainers[way]
                for index in range(start, min(start + TURN, n_batches)):
                    t0 = time.perf_counter()
                    xb, yb, dlogits = t._batch(order[index * batch : (index + 1) * batch])
                    logits = t.model.forward(xb, train=True)
                    _, _, dlogits = softmax_cross_entropy(logits, yb, grad_out=dlogits)
                    t.model.backward(dlogits)
                    t.optimizer.step(t.model.params, t.model.grads, lr)
                    if epoch:
                        times[way].append(time.perf_counter() - t0)
    return times


def paired_saving(times: dict[str, list[float]], before: str, after: str) -> float:
    """The median of the batch-by-batch differences, before minus after, in seconds."""
    return statistics.median(a - b for a, b in zip(times[before], times[after]))


def blas_threads() -> int:
    """The BLAS threads in effect (the most of any BLAS library loaded)."""
    counts = [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]
    return max(counts) if counts else (os.cpu_count() or 1)


def blas_description() -> list[str]:
    lines = []
    for lib in threadpool_info():
        lines.append(
            f"- {lib['user_api']}: {lib['internal_api']} {lib['version']}, kernel "
            f"{lib.get('architecture')}, {lib['num_threads']} threads ({Path(lib['filepath']).name})"
        )
    env = {k: v for k, v in os.environ.items() if k.startswith(("OPENBLAS_", "OMP_", "MKL_"))}
    lines.append(f"- environment: {env or 'no OPENBLAS_/OMP_/MKL_ variables'}")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="smoke run: 10%% of an epoch, 1 timed epoch")
    ap.add_argument("--threads", type=int, default=None, help="BLAS threads (default: as found)")
    ap.add_argument("--epochs", type=int, default=3, help="timed epochs per configuration, after 1 warm-up")
    ap.add_argument("--only", default=None, help="run only configurations whose label contains this")
    ap.add_argument("--profile", action="store_true", help="also split one real epoch into its parts, per config")
    args = ap.parse_args(argv)

    n = N_TRAIN // 10 if args.quick else N_TRAIN
    epochs = 1 if args.quick else args.epochs
    cases = [c for c in CASES if args.only is None or args.only in c.label]
    started = time.perf_counter()
    data = load_data(n)
    torch, no_torch = import_torch()
    with threadpool_limits(args.threads, user_api="blas") if args.threads else nullcontext():
        threads = args.threads or blas_threads()
        print(f"# trickrun epoch benchmark: 784-{'-'.join(map(str, HIDDEN))}-10 ReLU MLP, float32")
        print(f"- data: {n} examples per epoch, {data.source}")
        print(f"- {epochs} timed epoch(s) per config after 1 warm-up; medians; bound, real and torch interleaved")
        print(f"- numpy {np.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs")
        print("\n".join(blas_description()))
        if torch is None:
            print(f"- torch: not importable ({no_torch}); its columns read \"-\"")
        else:
            torch.set_num_threads(threads)
            print(f"- torch {torch.__version__}: {torch.get_num_threads()} threads (= the BLAS threads), "
                  f"default optimizer implementation, {SETTLE_S:g} s pause before each torch epoch")
        print()
        print("| config | bound s/epoch | trickrun s/epoch | torch s/epoch | ratio | trickrun / torch | target "
              "| ratio of minima | spread |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
        for case in cases:
            bounds, reals, torches = measure(case, data, epochs, torch)
            b, r = statistics.median(bounds), statistics.median(reals)
            ratio = r / b
            target = "" if case.target is None else (
                f"<= {case.target:g} {'ok' if ratio <= case.target else 'MISSED'}")
            t_cell, vs_torch = "-", "-"
            if torches:
                t = statistics.median(torches)
                t_cell, vs_torch = f"{t:.3f}", f"{r / t:.2f}"
                if case.torch_target is not None:
                    met = "ok" if r / t <= case.torch_target else "MISSED"
                    target += f"; torch <= {case.torch_target:g} {met}"
            # Noise only ever adds time: the ratio of the fastest epochs is the steadier
            # figure, and the spread (slowest over fastest epoch, worst of the series)
            # says how much the machine disturbed this row.
            spread = max(max(t) / min(t) - 1 for t in (bounds, reals, torches) if t)
            print(f"| {case.label} | {b:.3f} | {r:.3f} | {t_cell} | {ratio:.2f} | {vs_torch} | {target} | "
                  f"{min(reals) / min(bounds):.2f} | {spread:.0%} |", flush=True)
        if args.profile:
            parts = ("Dense layers", "other layers", "loss", "optimizer step", "rest of the loop", "epoch")
            print("\nWhere a real epoch goes, s/epoch (one epoch after a warm-up; the wrappers add a little;"
                  " Dense layers = products, + bias unless the activation adds it;"
                  " rest = gather, gradient norms, bookkeeping):\n")
            print("| config | " + " | ".join(parts) + " |")
            print("| --- |" + " ---: |" * len(parts))
            for case in cases:
                p = profile_epoch(case, data)
                print(f"| {case.label} | " + " | ".join(f"{p.get(k, 0.0):.3f}" for k in parts) + " |", flush=True)
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(f"\npeak RSS {peak_mib:.0f} MiB; total {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
