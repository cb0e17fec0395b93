"""Builds run directories in the exact format the training command writes (see runs.py), so
the inspection commands can be tested without training anything."""

from __future__ import annotations

import json
import math
import os
import socket
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from trickrun.config import Config, dump_yaml
from trickrun.rundir.writer import to_json

LAYERS = ("hidden1", "hidden2", "output")
DEAD_PID = 2**30  # above Linux's pid_max: never a live process


def config_dict(name: str = "adam", seed: int = 0, **dotted: Any) -> dict[str, Any]:
    """The resolved config, with dotted overrides such as `**{"optimizer.lr": 0.01}`."""
    data = Config(name=name, seed=seed).to_dict()
    data["optimizer"]["lr"] = 0.001
    data["optimizer"]["weight_decay"] = 0.0
    data["schedule"]["gamma"] = 0.98
    for key, value in dotted.items():
        node = data
        *parents, last = key.split(".")
        for part in parents:
            node = node[part]
        node[last] = value
    return data


def layer_record(name: str, epoch: int, activation: str = "relu", grad_scale: float = 1.0) -> dict:
    relu = activation == "relu"
    squash = activation in ("tanh", "sigmoid")
    return {
        "name": name,
        "act_mean": 0.3 + 0.01 * epoch,
        "act_std": 0.5,
        "dead_frac": (0.05 if relu and name != "output" else None),
        "saturated_frac": (0.1 if squash and name != "output" else None),
        "weight_norm": 10.0 + epoch,
        "grad_norm": grad_scale * 0.1 / epoch,
        "update_ratio": 1e-3,
    }


def curve_records(
    epochs: int,
    *,
    final_acc: float = 0.97,
    lr: float = 0.001,
    layers: Sequence[str] = LAYERS,
    activation: str = "relu",
    overfit_after: int | None = None,
    layer_fn: Callable[[int, dict], None] | None = None,
) -> list[dict[str, Any]]:
    """Plausible per-epoch records: accuracy rises towards `final_acc`, loss falls; after
    `overfit_after` epochs the validation loss rises again. `layer_fn(epoch, layer)` may
    edit each layer entry in place."""
    out = []
    for e in range(1, epochs + 1):
        progress = 1 - math.exp(-e / 2)
        val_acc = 0.8 + (final_acc - 0.8) * progress
        val_loss = 0.6 * (1 - progress) + (1 - final_acc) * 2
        if overfit_after is not None and e > overfit_after:
            val_loss += 0.02 * (e - overfit_after)
            val_acc -= 0.001 * (e - overfit_after)
        layer_entries = []
        for name in layers:
            entry = layer_record(name, e, activation)
            if layer_fn:
                layer_fn(e, entry)
            layer_entries.append(entry)
        out.append(
            {
                "epoch": e,
                "lr": lr * 0.98 ** (e - 1),
                "train_loss": val_loss * 0.9,
                "train_acc": min(1.0, val_acc + 0.01),
                "val_loss": val_loss,
                "val_acc": val_acc,
                "penalty": 0.0,
                "grad_norm": 0.2 / e,
                "clip_fraction": 0.0,
                "epoch_s": 2.0,
                "layers": layer_entries,
            }
        )
    return out


def _best(records: Sequence[Mapping[str, Any]], monitor: str) -> Mapping[str, Any]:
    scored = [r for r in records if r.get(monitor) is not None]
    if monitor == "val_acc":
        return max(scored, key=lambda r: r[monitor])
    return min(scored, key=lambda r: r[monitor])


def make_run(
    root: Path,
    name: str = "adam",
    *,
    seed: int = 0,
    stamp: str = "20240501-120000",
    config: Mapping[str, Any] | None = None,
    records: Sequence[Mapping[str, Any]] | None = None,
    epochs: int = 6,
    final_acc: float = 0.97,
    test_acc: float | None = None,
    status: str = "completed",
    summary: Mapping[str, Any] | None | bool = True,
    pid: int | None = None,
    torn_tail: str | None = None,
    **dotted: Any,
) -> Path:
    """Write `<root>/<name>-<stamp>/` with config.yaml, metrics.jsonl and summary.json.

    `status="running"` writes the start-time summary only (pid defaults to this process,
    alive); `summary=False` writes no summary.json; a dict replaces the summary outright.
    `torn_tail` is appended to metrics.jsonl without a newline, as a crash would leave it.
    """
    path = root / f"{name}-{stamp}"
    path.mkdir(parents=True)
    cfg = dict(config) if config is not None else config_dict(name, seed, **dotted)
    (path / "config.yaml").write_text(dump_yaml(cfg), encoding="utf-8")
    if records is None:
        records = curve_records(epochs, final_acc=final_acc, lr=cfg["optimizer"]["lr"])
    with open(path / "metrics.jsonl", "w", encoding="utf-8") as f:
        for record in records:
            f.write(to_json(record) + "\n")
        if torn_tail is not None:
            f.write(torn_tail)
    start = {
        "status": "running",
        "started": f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}",
        "pid": os.getpid() if pid is None else pid,
        "host": socket.gethostname(),
    }
    if summary is False:
        return path
    if isinstance(summary, Mapping):
        data = dict(summary)
    elif status == "running":
        data = start
    else:
        monitor = cfg["early_stopping"]["monitor"]
        best = _best(records, monitor) if records else {}
        data = {
            **start,
            "status": status,
            "stop_reason": {"completed": "reached train.epochs"}.get(status, status),
            "epochs_run": len(records),
            "best_epoch": best.get("epoch"),
            "stopped_epoch": len(records),
            "best": {"monitor": monitor, "val_loss": best.get("val_loss"), "val_acc": best.get("val_acc")},
            "test": {
                "loss": None if status == "diverged" else 0.1,
                "acc": None if status == "diverged" else (final_acc - 0.002 if test_acc is None else test_acc),
            },
            "wall_s": 2.0 * len(records) + 1.5,
            "seed": cfg["seed"],
            "finished": start["started"],
            "versions": {"trickrun": "0.1.0", "python": "3.11", "numpy": "2", "blas": "openblas"},
            "divergence": None,
        }
    (path / "summary.json").write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


def write_record(root: Path, name: str, run_dirs: Sequence[Path]) -> Path:
    """A sweep's record listing `run_dirs` (as sweep/record.py writes it, cells trimmed)."""
    folder = root / "sweeps" / name
    folder.mkdir(parents=True)
    cells = [{"index": i, "name": p.name, "run_dir": str(p), "status": "completed"} for i, p in enumerate(run_dirs)]
    (folder / "sweep.json").write_text(json.dumps({"name": name, "cells": cells}))
    return folder
