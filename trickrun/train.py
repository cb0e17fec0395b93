"""The epoch loop: feeds batches, calls the model, loss, clipping, optimizer, schedule and
early stopping, and hands every record to the run directory.

However the run ends (early stop, epoch limit, divergence or Ctrl-C), the best weights by
the monitor (or the last ones with restore_best false) are evaluated once on the test set
and saved.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass

import numpy as np

from .config import Config
from .data import Dataset
from .nn.diagnostics import first_nonfinite_layer, layer_stats
from .early_stopping import EarlyStopping
from .nn.losses import add_penalty_grad, softmax_cross_entropy, weight_penalty
from .nn.model import MLP, model_arrays
from .nn.optim import clip_gradients, make_optimizer
from .nn.schedules import LRSchedule

PROBE_SIZE = 512  # validation examples behind the per-layer activation statistics
EVAL_CHUNK = 2048  # examples per forward pass when evaluating


class NullReporter:
    """The progress interface the loop calls; this one shows nothing."""

    def start(self, *, epochs: int, batches: int, run_dir) -> None: ...
    def batch(self, epoch: int, index: int, loss: float, correct: int, size: int) -> None: ...
    def epoch(self, record: dict) -> None: ...


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


def evaluate(model: MLP, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean loss and accuracy in evaluation mode."""
    total_loss, total_correct = 0.0, 0
    with np.errstate(all="ignore"):
        for start in range(0, len(x), EVAL_CHUNK):
            xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            loss, correct, _ = softmax_cross_entropy(model.forward(xb, train=False), yb)
            total_loss += loss * len(xb)
            total_correct += correct
    return total_loss / len(x), total_correct / len(x)


class Trainer:
    """One training run of `cfg` on `data`, writing through `writer` (a runs.RunWriter)."""

    def __init__(self, cfg: Config, data: Dataset, writer, reporter=None):
        self.cfg, self.data, self.writer = cfg, data, writer
        self.reporter = reporter or NullReporter()
        self.rngs = Rngs.from_seed(cfg.seed)
        self.model = MLP(data.x_train.shape[1], 10, cfg.model,
                         init_rng=self.rngs.init, dropout_rng=self.rngs.dropout)
        m = self.model
        self.optimizer = make_optimizer(cfg.optimizer, m.params.size, m.dtype, m.n_weights)
        self.schedule = LRSchedule(cfg.schedule, cfg.optimizer.lr, cfg.train.epochs)
        es = cfg.early_stopping
        self.stopper = EarlyStopping(es.monitor, es.patience, es.min_delta, es.enabled)
        self.best_state = m.flat_state()
        self.epoch = 0  # the epoch in progress (or last started)
        self.epochs_done = 0  # epochs whose record was written
        self.best_values = {"val_loss": None, "val_acc": None}
        self.divergence: dict | None = None
        self._scratch = np.empty(m.n_weights, m.dtype)
        self._last_weights = np.empty(m.n_weights, m.dtype)
        # Each block's W gets its own squared norm; the rest (biases, norm params) one more.
        self._segments = [b.weight_slice for b in m.blocks] + [slice(m.n_weights, m.params.size)]

    # --- one epoch ----------------------------------------------------------------------
    def _train_epoch(self, lr: float) -> dict | None:
        cfg, m, data = self.cfg, self.model, self.data
        x, y = data.x_train, data.y_train
        n, bs = len(x), cfg.train.batch_size
        l2, l1 = cfg.regularization.l2, cfg.regularization.l1
        clip_norm, clip_value = cfg.clip.norm, cfg.clip.value
        params, grads, nw = m.params, m.grads, m.n_weights
        weights, weight_grads = params[:nw], grads[:nw]
        order = self.rngs.shuffle.permutation(n)
        batch_x = {}  # reused input and label buffers, one per batch size
        grad_logits = {}
        sq = np.zeros(len(self._segments))
        block_norm_sums = np.zeros(len(m.blocks))
        loss_sum = norm_sum = 0.0
        correct_sum = clipped = steps = 0
        n_batches = -(-n // bs)
        for index in range(n_batches):
            idx = order[index * bs : (index + 1) * bs]
            size = len(idx)
            if size not in batch_x:
                batch_x[size] = (np.empty((size, x.shape[1]), x.dtype), np.empty(size, y.dtype))
                grad_logits[size] = np.empty((size, 10), m.dtype)
            xb, yb = batch_x[size]
            # mode="clip" (idx is a permutation, always in range): with the default "raise"
            # numpy gathers into a temporary buffer and copies it into `out` afterwards.
            np.take(x, idx, axis=0, out=xb, mode="clip")
            np.take(y, idx, out=yb, mode="clip")
            with np.errstate(over="ignore", invalid="ignore"):
                logits = m.forward(xb, train=True)
                loss, correct, dlogits = softmax_cross_entropy(logits, yb, grad_out=grad_logits[size])
            if not math.isfinite(loss):
                return self._diverged(index + 1, lr, xb)
            m.backward(dlogits)
            if l2 or l1:
                add_penalty_grad(weights, weight_grads, l2, l1, self._scratch)
            with np.errstate(over="ignore", invalid="ignore"):
                for i, seg in enumerate(self._segments):
                    g = grads[seg]
                    sq[i] = np.dot(g, g)
                norm = math.sqrt(sq.sum())
            if not math.isfinite(norm):
                bad = next((b.name for b, s in zip(m.blocks, sq) if not math.isfinite(s)),
                           "biases or normalization")
                return self._diverged(index + 1, lr, xb, layer=(bad, "gradients"))
            block_norm_sums += np.sqrt(sq[:-1])
            norm_sum += norm
            if clip_norm is not None or clip_value is not None:
                clipped += clip_gradients(grads, norm, clip_norm, clip_value)
            if index == n_batches - 1:
                np.copyto(self._last_weights, weights)
            self.optimizer.step(params, grads, lr)
            loss_sum += loss * size
            correct_sum += correct
            steps += 1
            self.reporter.batch(self.epoch, index + 1, loss, correct, size)
        if m.dtype == np.float32:
            flush_subnormals(params)
            # Optimizer state gets stuck at subnormals: a moment whose gradient stays 0
            # decays until the decrement rounds to 0, and every later step then does
            # slow subnormal arithmetic on it. Zeroing changes no update: an update built
            # from a subnormal moment is far below the parameter's rounding step.
            for state in self.optimizer.state.values():
                flush_subnormals(state)
        return {
            "train_loss": loss_sum / n,
            "train_acc": correct_sum / n,
            "grad_norm": norm_sum / steps,
            "clip_fraction": clipped / steps,
            "block_grad_norms": (block_norm_sums / steps).tolist(),
        }

    def _diverged(self, batch: int, lr: float, xb: np.ndarray, layer: tuple[str, str] | None = None) -> None:
        name, where = layer or first_nonfinite_layer(self.model, xb)
        self.divergence = {"epoch": self.epoch, "batch": batch, "layer": name, "where": where, "lr": lr}
        return None

    # --- the run ------------------------------------------------------------------------
    def run(self) -> dict:
        """Train until a stop condition holds, from epoch 1 or from a loaded checkpoint."""
        cfg, m = self.cfg, self.model
        n_batches = -(-len(self.data.x_train) // cfg.train.batch_size)
        self.reporter.start(epochs=cfg.train.epochs, batches=n_batches, run_dir=self.writer.path)
        probe = self.data.x_val[:PROBE_SIZE]
        started = time.perf_counter()
        try:
            while True:
                if self.stopper.should_stop:
                    status = "early_stopped"
                    reason = (f"{self.stopper.monitor} did not improve by more than "
                              f"{cfg.early_stopping.min_delta:g} for {self.stopper.wait} epochs")
                    break
                if self.epoch >= cfg.train.epochs:
                    status, reason = "completed", f"reached the epoch limit ({cfg.train.epochs})"
                    break
                self.epoch += 1
                t0 = time.perf_counter()
                lr = self.schedule.lr(self.epoch)
                stats = self._train_epoch(lr)
                if stats is None:
                    d = self.divergence
                    status = "diverged"
                    reason = (f"non-finite value in epoch {d['epoch']}, batch {d['batch']}, "
                              f"{d['where']} of {d['layer']} (lr {d['lr']:.3g})")
                    break
                val_loss, val_acc = evaluate(m, self.data.x_val, self.data.y_val)
                if not math.isfinite(val_loss):
                    self.divergence = {"epoch": self.epoch, "batch": None, "layer": None,
                                       "where": "validation loss", "lr": lr}
                    status, reason = "diverged", f"validation loss became non-finite in epoch {self.epoch}"
                    break
                monitored = val_loss if self.stopper.monitor == "val_loss" else val_acc
                improved = self.stopper.update(self.epoch, monitored)
                if improved:
                    np.copyto(self.best_state, m.flat_state())
                    self.best_values = {"val_loss": val_loss, "val_acc": val_acc}
                self.schedule.observe(self.epoch, improved)
                layers = layer_stats(m, probe, stats.pop("block_grad_norms"), self._last_weights)
                penalty = weight_penalty(m.params[: m.n_weights], cfg.regularization.l2, cfg.regularization.l1)
                record = {"epoch": self.epoch, "lr": lr, "train_loss": stats["train_loss"],
                          "train_acc": stats["train_acc"], "val_loss": val_loss, "val_acc": val_acc,
                          "penalty": penalty, "grad_norm": stats["grad_norm"],
                          "clip_fraction": stats["clip_fraction"],
                          "epoch_s": time.perf_counter() - t0, "layers": layers}
                self.writer.append_metrics(record)
                self.epochs_done = self.epoch
                self.writer.save_checkpoint(self.checkpoint())
                self.reporter.epoch(record)
        except KeyboardInterrupt:
            status, reason = "interrupted", f"interrupted (Ctrl-C) during epoch {self.epoch}"
        return self._finish(status, reason, time.perf_counter() - started)

    # --- checkpoints: everything the loop needs to go on exactly where it stopped ------------
    def checkpoint(self) -> dict[str, np.ndarray]:
        """State after `epochs_done` epochs, as arrays for checkpoint.npz."""
        meta = {
            "epochs_done": self.epochs_done,
            "stopper": self.stopper.state_dict(),
            "schedule": self.schedule.state_dict(),
            "best_values": self.best_values,
            "rngs": {name: getattr(self.rngs, name).bit_generator.state for name in ("shuffle", "dropout")},
        }
        arrays = {"model": self.model.flat_state(), "best": self.best_state, "meta": np.array(json.dumps(meta))}
        arrays.update({f"optimizer.{k}": v for k, v in self.optimizer.state_dict().items()})
        return arrays

    def load_checkpoint(self, arrays) -> None:
        meta = json.loads(str(arrays["meta"]))
        self.model.load_flat_state(arrays["model"])
        np.copyto(self.best_state, arrays["best"])
        self.optimizer.load_state_dict({k[len("optimizer."):]: arrays[k] for k in arrays
                                        if k.startswith("optimizer.")})
        self.stopper.load_state_dict(meta["stopper"])
        self.schedule.load_state_dict(meta["schedule"])
        self.best_values = meta["best_values"]
        for name, state in meta["rngs"].items():
            getattr(self.rngs, name).bit_generator.state = state
        self.epoch = self.epochs_done = meta["epochs_done"]

    def _finish(self, status: str, reason: str, train_s: float) -> dict:
        cfg, m = self.cfg, self.model
        best_epoch = self.stopper.best_epoch
        epochs_run = self.epochs_done
        test = None
        # After a divergence the last weights are not finite, after Ctrl-C they are from the
        # middle of an epoch: either way the best ones are what there is to evaluate.
        if cfg.early_stopping.restore_best or status in ("diverged", "interrupted"):
            m.load_flat_state(self.best_state)
            evaluated = best_epoch
        else:
            evaluated = epochs_run
        if best_epoch is not None:
            test_loss, test_acc = evaluate(m, self.data.x_test, self.data.y_test)
            test = {"loss": test_loss, "acc": test_acc, "weights_of_epoch": evaluated}
            self.writer.save_model(model_arrays(m))
        else:
            reason += "; no epoch finished, so nothing was evaluated on the test set"
        return {
            "status": status,
            "stop_reason": reason,
            "epochs_run": epochs_run,
            "best_epoch": best_epoch,
            "stopped_epoch": self.epoch,
            "best": {"monitor": self.stopper.monitor, **self.best_values},
            "test": test,
            "train_s": train_s,
            "divergence": self.divergence,
        }


def flush_subnormals(a: np.ndarray) -> None:
    """Set float32 subnormals to zero: weights shrunk by decay can drift there, and
    arithmetic on subnormals is many times slower on x86."""
    tiny = np.finfo(a.dtype).tiny
    small = np.abs(a) < tiny
    if small.any():
        a[small] = 0
