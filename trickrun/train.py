"""The epoch loop: feeds batches, calls the model, loss, clipping, optimizer, schedule and
early stopping, and hands every epoch's record to the run directory.

The machinery around the loop lives apart: checkpoint.py saves and restores the state the
loop goes on from, ending.py turns a stop (signal, memory, divergence, patience, epoch limit)
into the result summary.json records, signals.py turns stop signals into an orderly end.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from .config import Config
from .data.load import Dataset
from .nn.diagnostics import first_nonfinite_layer, layer_stats
from .early_stopping import EarlyStopping
from .checkpoint import EpochSaver, load_into
from .ending import Divergence, Ending, finish, run_until_ended, stop_condition
from .nn.kernels import compile_notice
from .nn.kernels.batches import gather_labels
from .nn.kernels.optim import add_penalty_grad as penalty_grad
from .nn.losses import evaluate, softmax_cross_entropy, weight_penalty
from .nn.model import MLP
from .nn.optim import apply_max_norm, clip_gradients, make_optimizer
from .nn.schedules import LRSchedule
from .signals import SignalStop

PROBE_SIZE = 512  # validation examples behind the per-layer activation statistics

class NullReporter:
    """The progress interface the loop calls; this one shows nothing."""

    def start(self, *, epochs: int, batches: int, run_dir) -> None: ...
    def batch(self, epoch: int, index: int, loss: float, correct: int, size: int) -> None: ...
    def epoch(self, record: dict) -> None: ...
    def note(self, text: str) -> None: ...


@dataclass
class Rngs:
    """Separate random streams, so that e.g. adding dropout does not change the init."""

    init: np.random.Generator
    shuffle: np.random.Generator
    dropout: np.random.Generator

    @classmethod
    def from_seed(cls, seed: int) -> "Rngs":
        init, shuffle, dropout = np.random.SeedSequence(seed).spawn(3)
        return cls(*(np.random.default_rng(s) for s in (init, shuffle, dropout)))


def class_count(data: Dataset) -> int:
    """Output width: labels are 0..K-1. Every split counts, since a train_limit sample may
    lack a class the test set has."""
    return int(max(data.y_train.max(), data.y_val.max(), data.y_test.max())) + 1


class Trainer:
    """One training run of `cfg` on `data`; `run(writer)` trains and records it.

    The seams, each defaulting to what a real run uses: `reporter` (progress, see
    NullReporter), `schedule` (the learning rate per epoch: nn.schedules.LRSchedule's
    interface), `validate` (model -> (val_loss, val_acc)), `clock` (seconds, for epoch_s and
    train_s) and `signals` (the SignalStop the loop is stopped through)."""

    def __init__(self, cfg: Config, data: Dataset, reporter=None, *, schedule: LRSchedule | None = None,
                 validate: Callable[[MLP], tuple[float, float]] | None = None,
                 clock: Callable[[], float] = time.perf_counter, signals: SignalStop | None = None):
        self.cfg, self.data = cfg, data
        self.reporter = reporter or NullReporter()
        self.rngs = Rngs.from_seed(cfg.seed)
        self.n_classes = class_count(data)
        self.model = MLP(data.x_train.shape[1], self.n_classes, cfg.model,
                         init_rng=self.rngs.init, dropout_rng=self.rngs.dropout)
        m = self.model
        # Each block's W gets its own squared norm; the rest (biases, norm params) one more.
        self._segments = [b.weight_slice for b in m.blocks] + [slice(m.n_weights, m.params.size)]
        # Each batch's squared norm per segment, one row a batch, refilled every epoch (_train_epoch).
        self._squares = np.zeros((self._batches_and_examples()[0], len(self._segments)), m.dtype)
        # The optimizer's kernel sums each segment's squares during the step, unless the run
        # clips: clipping needs the norm before the step (_train_epoch).
        self._clipping = cfg.clip.norm is not None or cfg.clip.value is not None
        self.optimizer = make_optimizer(cfg.optimizer, m.params.size, m.dtype, m.n_weights, segment_ends=(
            None if self._clipping else [s.stop for s in self._segments]))
        self.schedule = schedule or LRSchedule(cfg.schedule, cfg.optimizer.lr, cfg.train.epochs)
        es = cfg.early_stopping
        self.stopper = EarlyStopping(es.monitor, es.patience, es.min_delta, es.enabled)
        self.validate = validate or (lambda model: evaluate(model, data.x_val, data.y_val))
        self.clock, self.signals = clock, signals or SignalStop()
        self.best_state = m.flat_state()
        self.epoch = 0  # the epoch in progress (or last started)
        self.epochs_done = 0  # epochs whose record and checkpoint were written
        self.best_values = {"val_loss": None, "val_acc": None}
        self.stop_signal: int | None = None  # the signal that interrupted the run (SIGINT: Ctrl-C)
        self.out_of_memory = False  # the run was interrupted by a MemoryError
        self._probe = data.x_val[:PROBE_SIZE]
        self._buffers: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # per batch size
        self._last_weights = np.empty(m.n_weights, m.dtype)
        reg = cfg.regularization  # the L2/L1 factors in the weights' dtype, made once
        self._penalty = (m.dtype.type(reg.l2), m.dtype.type(reg.l1))

    # --- one epoch ----------------------------------------------------------------------
    def _train_epoch(self, lr: float) -> dict | Divergence:
        """One pass over the reshuffled training set; stops at the first non-finite loss or
        gradient norm and returns where it happened."""
        m, reg, clip = self.model, self.cfg.regularization, self.cfg.clip
        clipping = self._clipping
        bs, n_batches, n = self.cfg.train.batch_size, *self._batches_and_examples()
        params, grads, nw = m.params, m.grads, m.n_weights
        weights, weight_grads = params[:nw], grads[:nw]
        order = self.rngs.shuffle.permutation(len(self.data.x_train))
        # Each batch's squared gradient norm per segment, one row a batch: the optimizer's
        # kernel fills its row during the step (or _grad_norms before it, when clipping),
        # and the norms are taken from them after the epoch. The step streams megabytes
        # through the caches, and every NumPy call right after it ran cold: reading the
        # norms there cost a batch 20-30 us (the README's Performance section).
        squares = self._squares
        loss_sum = 0.0
        correct_sum = clipped = 0
        # Overflow and invalid values are what divergence is made of: the loop reports them
        # (a non-finite loss or norm), not NumPy's warnings. One errstate for the epoch, not one
        # per batch: each step's stream evicts errstate's Python code from the caches, and
        # entering it again cost most at small batches (the README's Performance section).
        with np.errstate(over="ignore", invalid="ignore"):
            for index in range(n_batches):
                xb, yb, dlogits = self._batch(order[index * bs : (index + 1) * bs])
                logits = m.forward(xb, train=True)
                loss, correct, dlogits = softmax_cross_entropy(logits, yb, grad_out=dlogits)
                if not math.isfinite(loss):
                    return self._diverged(index + 1, lr, xb)
                m.backward(dlogits)
                if reg.l2 or reg.l1:
                    penalty_grad(weights, weight_grads, *self._penalty)
                if index == n_batches - 1:
                    np.copyto(self._last_weights, weights)  # for the update/weight ratio
                row = squares[index]
                if clipping:  # clipping needs the norm before the step, whose kernel sums nothing
                    total = self._grad_norms(row)
                    if math.isfinite(total):  # else the run ends after this step (below)
                        clipped += clip_gradients(grads, math.sqrt(total), clip.norm, clip.value)
                    self.optimizer.step(params, grads, lr)
                else:
                    total = self.optimizer.step(params, grads, lr, row)
                if not math.isfinite(total):
                    # The step has used the gradient and spoilt the weights; the run ends here
                    # all the same and keeps its best epoch's weights (ending.finish).
                    bad = next((b.name for b, s in zip(m.blocks, row) if not math.isfinite(s)),
                               "biases or normalization")
                    return self._diverged(index + 1, lr, xb, layer=(bad, "gradients"))
                if reg.max_norm is not None:
                    apply_max_norm(m.max_norm_views(), reg.max_norm)
                loss_sum += loss * len(yb)
                correct_sum += correct
                self.reporter.batch(self.epoch, index + 1, loss, correct, len(yb))
        if m.dtype == np.float32:
            self._flush_subnormals()
        block_norm_sums, norm_sum = norm_sums(squares)
        return {
            "train_loss": loss_sum / n,
            "train_acc": correct_sum / n,
            "grad_norm": norm_sum / n_batches,
            "clip_fraction": clipped / n_batches,
            "block_grad_norms": (block_norm_sums / n_batches).tolist(),
        }

    def _batches_and_examples(self) -> tuple[int, int]:
        """An epoch's batches and the examples they hold: all of them, except that under batch
        norm a last batch of one example sits out (its variance is 0: it would normalize to
        beta and pull the running variance toward 0 just before evaluation; PyTorch refuses
        such a batch). The reshuffle gives that example its turn in another epoch."""
        n, bs = len(self.data.x_train), self.cfg.train.batch_size
        if self.cfg.model.norm == "batch" and n % bs == 1 and n > 1:
            return n // bs, n - 1
        return -(-n // bs), n

    def _batch(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Inputs, labels and a logits-gradient buffer for the examples `idx`, in arrays
        reused for every batch of the same size."""
        x, y = self.data.x_train, self.data.y_train
        size = len(idx)
        if size not in self._buffers:
            self._buffers[size] = (np.empty((size, x.shape[1]), x.dtype), np.empty(size, y.dtype),
                                   np.empty((size, self.n_classes), self.model.dtype))
        xb, yb, dlogits = self._buffers[size]
        x.take(idx, out=xb)  # gathered and scaled in one pass (data/images.py)
        gather_labels(y, idx, yb)
        return xb, yb, dlogits

    def _grad_norms(self, row: np.ndarray) -> float:
        """Squared L2 norm of each gradient segment into `row`, read from the gradients (BLAS
        dot products), and their sum in float64: what clipping decides on, as it always has."""
        grads = self.model.grads
        for i, seg in enumerate(self._segments):
            g = grads[seg]
            row[i] = np.dot(g, g)
        return float(row.astype(np.float64).sum())  # as norm_sums adds them

    def _flush_subnormals(self) -> None:
        flush_subnormals(self.model.params)
        # Optimizer state gets stuck at subnormals: a moment whose gradient stays 0
        # decays until the decrement rounds to 0, and every later step then does
        # slow subnormal arithmetic on it. Zeroing changes no update: an update built
        # from a subnormal moment is far below the parameter's rounding step.
        for state in self.optimizer.state.values():
            flush_subnormals(state)

    def _diverged(self, batch: int, lr: float, xb: np.ndarray, layer: tuple[str, str] | None = None) -> Divergence:
        name, where = layer or first_nonfinite_layer(self.model, xb)
        return Divergence(self.epoch, batch, name, where, lr)

    # --- the run ------------------------------------------------------------------------
    def resume_from(self, run_dir) -> None:
        """Go on from `run_dir`'s checkpoint (checkpoint.load_into; RunDirError if damaged)."""
        self.epoch = self.epochs_done = load_into(self, run_dir)

    def run(self, writer) -> dict:
        """Train until a stop condition holds, from epoch 1 or from a loaded checkpoint,
        handing each epoch's record, checkpoint and the final model to `writer` (a
        rundir.writer.RunWriter, or anything with its append_metrics, save_checkpoint,
        save_model and path). Returns the results for the summary (ending.finish)."""
        n_batches, _ = self._batches_and_examples()
        self.reporter.start(epochs=self.cfg.train.epochs, batches=n_batches, run_dir=writer.path)
        saver, limits = EpochSaver(writer, self.signals), self.cfg.train.epochs
        min_delta = self.cfg.early_stopping.min_delta
        started = self.clock()
        with compile_notice(self.reporter.note):
            ending = run_until_ended(
                lambda: stop_condition(self.stopper, self.epoch, limits, min_delta) or self._run_epoch(saver),
                self._position, self.signals)
        self.stop_signal, self.out_of_memory = ending.stop_signal, ending.out_of_memory
        return finish(self, ending, writer, restore_best=self.cfg.early_stopping.restore_best,
                      test_set=(self.data.x_test, self.data.y_test), train_s=self.clock() - started)

    def _run_epoch(self, saver: EpochSaver) -> Ending | None:
        """Train, validate and record the next epoch; an Ending if it diverged."""
        m, reg = self.model, self.cfg.regularization
        self.epoch += 1
        t0 = self.clock()
        lr = self.schedule.lr(self.epoch)
        stats = self._train_epoch(lr)
        if isinstance(stats, Divergence):
            return Ending.diverged(stats)
        val_loss, val_acc = self.validate(m)
        if not math.isfinite(val_loss):
            return Ending.diverged(Divergence(self.epoch, None, None, "validation loss", lr))
        layers = layer_stats(m, self._probe, stats.pop("block_grad_norms"), self._last_weights)
        record = {"epoch": self.epoch, "lr": lr, "train_loss": stats["train_loss"],
                  "train_acc": stats["train_acc"], "val_loss": val_loss, "val_acc": val_acc,
                  "penalty": weight_penalty(m.params[: m.n_weights], reg.l2, reg.l1),
                  "grad_norm": stats["grad_norm"], "clip_fraction": stats["clip_fraction"],
                  "epoch_s": self.clock() - t0, "layers": layers}
        # From the early stopper's verdict to the epoch's line, a stop waits: an epoch named
        # best is always one whose record and checkpoint were written.
        with self.signals.held():
            values = {"val_loss": val_loss, "val_acc": val_acc}
            improved = self.stopper.update(self.epoch, values[self.stopper.monitor])
            if improved:
                np.copyto(self.best_state, m.flat_state())
                self.best_values = values
            self.schedule.observe(self.epoch, improved)
            saver.save(record, self)
            self.reporter.epoch(record)
        return None

    def _position(self) -> str:
        """Where in the run a stop came: "during epoch 3", or "after epoch 2" once its
        record and checkpoint are written."""
        if self.epochs_done < self.epoch:
            return f"during epoch {self.epoch}"
        return f"after epoch {self.epoch}" if self.epoch else "before epoch 1"


def norm_sums(squares: np.ndarray) -> tuple[np.ndarray, float]:
    """From each batch's squared norms per segment (the last segment: biases and
    normalization parameters), the sums over batches of each block's weight-gradient norm
    and of the global norm, added batch after batch in float64."""
    blocks, total = np.zeros(squares.shape[1] - 1), 0.0
    for row in squares.astype(np.float64):
        blocks += np.sqrt(row[:-1])
        total += math.sqrt(row.sum())
    return blocks, total


def flush_subnormals(a: np.ndarray) -> None:
    """Set float32 subnormals to zero: weights shrunk by decay can drift there, and
    arithmetic on subnormals is many times slower on x86."""
    tiny = np.finfo(a.dtype).tiny
    small = np.abs(a) < tiny
    if small.any():
        a[small] = 0
