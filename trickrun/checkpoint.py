"""Checkpoints: everything the epoch loop needs to go on exactly where it stopped, and the
rule for writing them (each finished epoch's record and checkpoint together).

checkpoint.npz holds, as arrays:
  model               the flat parameters and buffers after `epochs_done` epochs (MLP.flat_state)
  best                the same for the best epoch so far by the monitor
  optimizer.<name>    each optimizer state array (adam: optimizer.m, optimizer.v, optimizer.t)
  meta                a JSON string: epochs_done, the early stopper's and the schedule's state,
                      the best epoch's validation values, the shuffle and dropout
                      generators' states (the init stream is spent once the model exists),
                      and the resolved config the run trains
Loading it into a freshly built trainer of the same config continues the run bit for bit; a
config.yaml edited since (any key but the name) is refused before anything is loaded.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Protocol

import numpy as np

from .config import absolute_data_dir, flatten
from .errors import ConfigError, RunDirError
from .rundir.format import CHECKPOINT_FILE, CONFIG_FILE
from .signals import SignalStop

RESUMED_RNGS = ("shuffle", "dropout")  # the generators still drawn from after the model is built


class TrainingState(Protocol):
    """What a checkpoint saves and restores (train.Trainer has all of it)."""

    cfg: Any  # config.Config
    model: Any  # nn.model.MLP
    optimizer: Any  # nn.optim.Optimizer
    stopper: Any  # early_stopping.EarlyStopping
    schedule: Any  # nn.schedules.LRSchedule
    rngs: Any  # train.Rngs
    best_state: np.ndarray
    best_values: dict[str, float | None]
    epochs_done: int


def checkpoint_arrays(state: TrainingState, epochs_done: int) -> dict[str, np.ndarray]:
    """`state` after `epochs_done` epochs, as the arrays of checkpoint.npz. `best` is the
    trainer's own array, not a copy: the writer is done with it before the loop goes on."""
    meta = {
        "epochs_done": epochs_done,
        "stopper": state.stopper.state_dict(),
        "schedule": state.schedule.state_dict(),
        "best_values": state.best_values,
        "rngs": {name: getattr(state.rngs, name).bit_generator.state for name in RESUMED_RNGS},
        "config": state.cfg.to_dict(),
    }
    arrays = {"model": state.model.flat_state(), "best": state.best_state,
              "meta": np.array(json.dumps(meta))}
    arrays.update({f"optimizer.{k}": v for k, v in state.optimizer.state_dict().items()})
    return arrays


def restore(state: TrainingState, arrays: Mapping[str, np.ndarray]) -> int:
    """Load checkpoint `arrays` into `state`; returns the epochs it had finished."""
    meta = json.loads(str(arrays["meta"]))
    state.model.load_flat_state(arrays["model"])
    np.copyto(state.best_state, arrays["best"])
    state.optimizer.load_state_dict({k[len("optimizer."):]: arrays[k] for k in arrays
                                     if k.startswith("optimizer.")})
    state.stopper.load_state_dict(meta["stopper"])
    state.schedule.load_state_dict(meta["schedule"])
    state.best_values = meta["best_values"]
    for name, rng_state in meta["rngs"].items():
        getattr(state.rngs, name).bit_generator.state = rng_state
    return int(meta["epochs_done"])


def load_into(state: TrainingState, run_dir: Path) -> int:
    """Restore `state` from `run_dir`'s checkpoint.npz; returns its epochs done. RunDirError,
    with nothing changed on disk, when it is damaged or does not fit the config."""
    path = run_dir / CHECKPOINT_FILE
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        started = json.loads(str(arrays["meta"])).get("config")
    except Exception as err:  # any damage: zip, npy, a missing key
        raise _unreadable(path, run_dir, err) from None
    if started is not None:  # checkpoints from before trickrun kept the config have none
        _check_unedited(run_dir, started, state.cfg.to_dict())
    try:
        return restore(state, arrays)
    except Exception as err:  # a wrong shape, a damaged state
        raise _unreadable(path, run_dir, err) from None


def _unreadable(path: Path, run_dir: Path, err: Exception) -> RunDirError:
    return RunDirError(f"{path} cannot be read ({type(err).__name__}: {err}); the run cannot be "
                       f"resumed: train it again with trickrun train {run_dir / CONFIG_FILE}")


def _check_unedited(run_dir: Path, started: Mapping[str, Any], now: Mapping[str, Any]) -> None:
    """ConfigError if config.yaml was edited since the run started: the epochs before the edit
    trained another experiment than the one the file would then claim for the whole run."""
    before, after = flatten(started), flatten(json.loads(json.dumps(now)))  # both as JSON reads them
    if isinstance(before.get("data.dir"), str):  # started before data.dir was saved absolute
        before["data.dir"] = absolute_data_dir(before["data.dir"])
    # Keys of both only: one a later trickrun added has its default, which is no edit.
    changed = [(key, before[key], after[key]) for key in before
               if key in after and key != "name" and before[key] != after[key]]
    if changed:
        shown = "; ".join(f"{key} {old!r} -> {new!r}" for key, old, new in changed[:5])
        raise ConfigError(
            f"{run_dir / CONFIG_FILE} was edited since the run started ({shown}); a resumed run goes on "
            f"with the experiment it began. Put those values back to resume it, or train the edited "
            f"config as a new run: trickrun train {run_dir / CONFIG_FILE}")


class EpochSaver:
    """Hands each finished epoch to the run directory: its record to metrics.jsonl, then the
    checkpoint after it. A stop signal arriving meanwhile waits until both are written (a
    record that no checkpoint covers would be dropped on resume, and trained again). If the
    checkpoint cannot be written (a MemoryError), the previous one stays whole and the
    record it does not cover is dropped on resume. `state.epochs_done` counts the epoch
    once both are written."""

    def __init__(self, writer, signals: SignalStop):
        self.writer, self.signals = writer, signals

    def save(self, record: Mapping[str, Any], state: TrainingState) -> None:
        with self.signals.held():
            self.writer.append_metrics(record)
            self.writer.save_checkpoint(checkpoint_arrays(state, record["epoch"]))
            # inside held(): a signal waiting for the block's end finds the epoch counted
            state.epochs_done = record["epoch"]
