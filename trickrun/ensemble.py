"""`trickrun ensemble`: model averaging by soft voting, as the lesson closes with.

Each member is a trained run's model.npz. On the test set, the ensemble's class
probabilities are the mean of the members' softmax outputs,

    p_ens(x) = (1/M) * sum_m softmax(f_m(x)),

its prediction is argmax p_ens(x), and its loss is the mean cross-entropy of p_ens,
-mean(log(max(p_ens[y], PROB_FLOOR))): the floor keeps one confidently wrong example from
making the loss infinite. Members' own test metrics are those of `nn.losses.evaluate` (the
numbers training wrote to summary.json).

Averaging is only meaningful over the same test inputs: the members must agree on every
`data` key that decides them (SHARED_DATA_KEYS, and for "standard" scaling the keys of
STANDARD_DATA_KEYS too, as its mean and std come from the training part of the split).
The validation split is shared as well, so that no member's validation data is another's
training data.

An ensemble can be saved as a run directory of its own (`--save NAME`): config.yaml says
`kind: ensemble` and lists the members, summary.json holds the test results, so `ls` and
`compare` show it beside ordinary runs. It has no metrics.jsonl and no model.npz.
"""

from __future__ import annotations

import time
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
from rich.console import Console

from .analysis.render import Cell, OutputFormat, Report, Section, fmt_delta, fmt_number, report_output
from .choices import EnsembleFormat
from .config import dump_yaml, load_config
from .errors import ConfigError, RunDirError
from .rundir.files import effective_status, read_config, read_summary
from .rundir.format import CONFIG_FILE, ENSEMBLE_KIND, FINAL, MODEL_FILE, RESUMABLE, SUMMARY_FILE, Status
from .rundir.reader import Ambiguous, resolve_runs
from .rundir.writer import create_run_dir, environment, write_atomic, write_json

KIND = ENSEMBLE_KIND  # config.yaml's `kind` of a saved ensemble
MIN_MEMBERS = 2
PROB_FLOOR = 1e-12  # probabilities are clipped to this before the log of the ensemble loss
# The data keys that decide the test inputs and the train/validation split.
SHARED_DATA_KEYS = ("dataset", "scale", "val_size", "split_seed")
# ...and, with scale "standard", the keys that decide the training part its statistics come from.
STANDARD_DATA_KEYS = ("train_limit",)
# Members with other statuses get a warning. A diverged run is final but its weights are
# not finite, so a sweep's diverged runs are left out rather than averaged.
AVERAGEABLE = FINAL - {Status.DIVERGED}
# What np.load raises on a model.npz that is empty (EOFError), truncated or bit-flipped
# (BadZipFile: no central directory, bad CRC), or whose compressed data is damaged.
DAMAGED_MODEL_ERRORS = (OSError, ValueError, KeyError, TypeError, EOFError, zipfile.BadZipFile, zlib.error)
CONFIG_HEADER = (
    "# An ensemble of trained runs, written by `trickrun ensemble --save`.\n"
    "# Not a training config: `trickrun train` rejects its `kind` and `members` keys.\n"
)


@dataclass
class Member:
    """One trained run taking part: where it is, its config, and its model."""

    path: Path
    config: dict[str, Any]
    model: Any  # nn.model.MLP
    status: Any = None

    @property
    def seed(self) -> Any:
        return self.config.get("seed")


@dataclass
class Score:
    """Test-set loss and accuracy."""

    loss: float
    acc: float

    def as_dict(self) -> dict[str, float]:
        return {"loss": self.loss, "acc": self.acc}


@dataclass
class EnsembleResult:
    members: list[Member]
    scores: list[Score]  # each member's, in order
    ensemble: Score
    data: dict[str, Any]  # the shared data section (the first member's)
    n_test: int
    wall_s: float  # seconds to load and score the members
    warnings: list[str] = field(default_factory=list)

    @property
    def mean(self) -> Score:
        """The members' mean test loss and accuracy."""
        return Score(float(np.mean([s.loss for s in self.scores])), float(np.mean([s.acc for s in self.scores])))


# ---------------------------------------------------------------------------------------
# The maths: pure functions over arrays.


def average_proba(probas: Sequence[np.ndarray]) -> np.ndarray:
    """The mean of the members' (n, classes) probability arrays, in float64."""
    total = np.zeros(probas[0].shape, dtype=np.float64)
    for p in probas:
        total += p
    return total / len(probas)


def proba_score(proba: np.ndarray, labels: np.ndarray) -> Score:
    """Mean cross-entropy (probabilities clipped at PROB_FLOOR) and accuracy of `proba`."""
    picked = np.maximum(proba[np.arange(len(labels)), labels], PROB_FLOOR)
    return Score(float(-np.mean(np.log(picked))), float(np.mean(proba.argmax(axis=1) == labels)))


def ensemble_scores(models: Sequence[Any], x: np.ndarray, y: np.ndarray) -> tuple[list[Score], Score]:
    """Each model's test score (nn.losses.evaluate) and the soft-voting ensemble's."""
    from .nn.losses import evaluate, predict_proba

    scores = [Score(*evaluate(m, x, y)) for m in models]
    return scores, proba_score(average_proba([predict_proba(m, x) for m in models]), y)


# ---------------------------------------------------------------------------------------
# Members: finding them, loading them, checking they fit together.


def member_paths(specs: Sequence[str], root: Path, note: Callable[[str], None] | None = None) -> list[Path]:
    """The run directories RUN arguments name, each once: what `compare` takes (paths, names or
    prefixes, the newest run of a shared name, `note` told, globs). The hook for more kinds of
    spec (a sweep's runs) is here."""
    if not specs:
        raise ConfigError(f"give at least {MIN_MEMBERS} RUNs, or --sweep NAME")
    paths = resolve_runs(specs, root, ambiguous=Ambiguous.NEWEST, note=note)
    if len(paths) < MIN_MEMBERS:
        named = ", ".join(p.name for p in paths)
        raise ConfigError(f"an ensemble needs at least {MIN_MEMBERS} runs; the RUN arguments name "
                          f"{len(paths)} ({named})")
    return paths


def redo_advice(path: Path, status: Any) -> str:
    """A command that makes a usable model for the run at `path`: `resume` for a run that
    stopped part-way (it goes on from its checkpoint), else a new training of its config."""
    if status in RESUMABLE:
        return f"trickrun resume {path}"
    return f"trickrun train {path / CONFIG_FILE}"


def load_member(path: Path) -> Member:
    """A run's config and model; ConfigError naming the run when it is no trained run or has no
    model.npz, RunDirError naming the file when its model.npz is damaged."""
    from .nn.model import load_model

    config, warnings = read_config(path / CONFIG_FILE)
    if config.get("kind") == KIND:
        members = config.get("members")
        named = " ".join(map(str, members)) if isinstance(members, dict) and members else "its members"
        raise ConfigError(f"{path.name} is an ensemble, not a trained run; give its members instead: {named}")
    if not isinstance(config.get("data"), dict):
        raise ConfigError(f"{path.name}: no readable data section in {CONFIG_FILE} "
                          f"({'; '.join(warnings) or 'the key is missing'}); leave it out")
    summary, _ = read_summary(path / SUMMARY_FILE)
    status = effective_status(summary, path)
    model_file = path / MODEL_FILE
    if not model_file.is_file():
        raise ConfigError(f"{path.name} has no {MODEL_FILE} (it saved no model, e.g. it was interrupted "
                          f"before its first epoch ended); leave it out, or make one with: "
                          f"{redo_advice(path, status)}")
    try:
        model, _ = load_model(model_file)
    except DAMAGED_MODEL_ERRORS as err:
        reason = str(err) or type(err).__name__
        raise RunDirError(f"{model_file} is damaged ({reason}), so {path.name} cannot be part of an ensemble; "
                          f"leave it out, or train it again with: {redo_advice(path, status)}") from None
    return Member(path, config, model, status)


def sweep_members(name: str, runs_dir: Path | None) -> tuple[list[Path], list[str]]:
    """The run directories of sweep `name` that can be averaged (a finished status and a
    model.npz), and a warning for each one left out, saying why."""
    from .sweep.command import sweep_run_dirs

    usable, left_out = [], []
    for path in sweep_run_dirs(name, runs_dir):
        why = _unusable(path)
        if why is None:
            usable.append(path)
        else:
            left_out.append(f"run {path.name}: {why}")
    if len(usable) < MIN_MEMBERS:
        raise ConfigError(f"sweep {name!r} has {len(usable)} finished run(s) with a {MODEL_FILE} and an ensemble "
                          f"needs at least {MIN_MEMBERS}; left out: {'; '.join(left_out) or 'nothing'}. "
                          "Finish the sweep first (run the same `trickrun sweep` command again)")
    return usable, [f"sweep {name}: left out {why}" for why in left_out]


def _unusable(path: Path) -> str | None:
    """Why the run at `path` cannot be averaged, or None when it can."""
    summary, _ = read_summary(path / SUMMARY_FILE)
    status = effective_status(summary, path) if path.is_dir() else None
    if status is None:
        return "its run directory is missing"
    if status not in AVERAGEABLE:
        return f"it has status {status}"
    if not (path / MODEL_FILE).is_file():
        return f"it has no {MODEL_FILE}"
    return None


def data_keys(data: Mapping[str, Any]) -> tuple[str, ...]:
    """The data keys members must agree on, given one member's data section."""
    return SHARED_DATA_KEYS + (STANDARD_DATA_KEYS if data.get("scale") == "standard" else ())


def shared_data(members: Sequence[Member]) -> dict[str, Any]:
    """The first member's data section, once every member agrees with it on data_keys();
    ConfigError naming the key and the two runs otherwise."""
    first = members[0].config["data"]
    for key in data_keys(first):
        for other in members[1:]:
            value = other.config["data"].get(key)
            if value != first.get(key):
                raise ConfigError(
                    f"members differ in data.{key}: {first.get(key)!r} in {members[0].path.name} but "
                    f"{value!r} in {other.path.name}; an ensemble averages predictions on the same test "
                    "inputs and split"
                )
    return dict(first)


def _status_warnings(members: Sequence[Member]) -> list[str]:
    """A member that did not train to its end (interrupted, diverged, ...) is averaged all the same."""
    return [f"{m.path.name} has status {m.status}; its saved model is not that of a finished training"
            for m in members if m.status not in AVERAGEABLE]


def evaluate_runs(specs: Sequence[str], root: Path, note: Callable[[str], None] | None = None) -> EnsembleResult:
    """Resolve, load and check the members (`note` is told which run a shared name means),
    load the shared test set once, and score them."""
    from .data.load import load_dataset

    started = time.perf_counter()
    members = [load_member(p) for p in member_paths(specs, root, note)]
    data = shared_data(members)
    data_cfg = load_config({"data": data}).data  # validated, as training would see it
    dataset = load_dataset(data_cfg)
    inputs, classes = dataset.x_test.shape[1], int(dataset.y_test.max()) + 1
    for m in members:  # a model.npz that loads may still not take this data (copied from elsewhere)
        if m.model.n_in != inputs or m.model.n_out < classes:
            raise ConfigError(f"{m.path.name}: its model takes {m.model.n_in} inputs and gives {m.model.n_out} "
                              f"classes, but its dataset has {inputs} and {classes}: its model.npz is not that "
                              f"of its config; leave it out")
        if not np.isfinite(m.model.flat_state()).all():  # one NaN member makes every averaged probability NaN
            raise ConfigError(f"{m.path.name}: its model.npz holds weights or batch-norm statistics that are not "
                              f"finite (NaN or inf); "
                              f"averaging it would make the ensemble's every probability NaN: leave it out")
    scores, ens = ensemble_scores([m.model for m in members], dataset.x_test, dataset.y_test)
    return EnsembleResult(members, scores, ens, data, len(dataset.y_test), time.perf_counter() - started,
                          _status_warnings(members))


# ---------------------------------------------------------------------------------------
# Output: a table, Markdown or one JSON object.


def result_dict(result: EnsembleResult, saved: Path | None = None) -> dict[str, Any]:
    """What `--format json` prints (and summary.json's result fields): members (run, path,
    seed, test {loss, acc}), mean_of_members {loss, acc}, test {loss, acc} of the ensemble,
    seeds, n_test, saved (the run directory written, or null)."""
    return {
        "members": [{"run": m.path.name, "path": str(m.path), "seed": m.seed, "test": s.as_dict()}
                    for m, s in zip(result.members, result.scores)],
        "mean_of_members": result.mean.as_dict(),
        "test": result.ensemble.as_dict(),
        "seeds": [m.seed for m in result.members],
        "n_test": result.n_test,
        "saved": None if saved is None else str(saved),
    }


def ensemble_section(result: EnsembleResult) -> Section:
    """One row per member, their mean, and the ensemble with its change against the mean."""
    def row(label: str, seed: Any, score: Score, note: tuple[str, str] = ("", "")) -> list[Cell]:
        return [Cell(label), Cell(fmt_number(seed)), Cell(fmt_number(score.acc, "acc"), note=note[0]),
                Cell(fmt_number(score.loss, "loss"), note=note[1])]

    mean, ens = result.mean, result.ensemble
    rows = [row(m.path.name, m.seed, s) for m, s in zip(result.members, result.scores)]
    rows.append(row("mean of members", None, mean))
    change = (fmt_delta(ens.acc - mean.acc, "acc"), fmt_delta(ens.loss - mean.loss, "loss"))
    rows.append(row("ensemble", None, ens, change))
    rows[-1][0].style = "bold"
    footer = [f"soft voting over {len(result.members)} runs on {result.n_test} test examples; the ensemble's "
              f"loss is the cross-entropy of the averaged probabilities (clipped at {PROB_FLOOR:g}); the signed "
              f"numbers beside it are its change against the mean of the members"]
    return Section("Ensemble (test set)", ["run", "seed", "test acc", "test loss"], rows, footer, optional=["seed"])


def ensemble_output(result: EnsembleResult, fmt: EnsembleFormat, console: Console,
                    saved: Path | None = None) -> None:
    report = Report([ensemble_section(result)], document=result_dict(result, saved))
    report_output(report, fmt.value, console)


# ---------------------------------------------------------------------------------------
# Saving: an ensemble run directory.


def check_save_name(name: str) -> str:
    """`name` if it can name a run directory (the rule of a run's `name`); ConfigError otherwise."""
    try:
        load_config({"name": name})
    except ConfigError as err:
        raise ConfigError(f"--save: {err}") from None
    return name


def ensemble_config(name: str, result: EnsembleResult) -> dict[str, Any]:
    """config.yaml of a saved ensemble: `kind` first, so `trickrun train` stops at it. The
    members map run-directory name -> path (a mapping, so `compare` shows one short row per
    member rather than one very long value)."""
    return {
        "kind": KIND,
        "name": name,
        "members": {m.path.name: str(m.path.resolve()) for m in result.members},
        "seeds": [m.seed for m in result.members],
        "data": result.data,
    }


def save_ensemble(root: Path, name: str, result: EnsembleResult, now: float | None = None) -> Path:
    """Write `<root>/<name>-<stamp>/` with config.yaml and a completed summary.json."""
    check_save_name(name)
    now = time.time() if now is None else now
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(now))
    fields = {k: v for k, v in result_dict(result).items() if k != "saved"}
    summary = {"status": Status.COMPLETED, "kind": KIND, "stop_reason": "ensemble of trained runs",
               **fields, "started": stamp, "finished": stamp, "wall_s": result.wall_s, "versions": environment()}

    def fill(folder: Path) -> None:
        write_atomic(folder / CONFIG_FILE, (CONFIG_HEADER + dump_yaml(ensemble_config(name, result))).encode())
        write_json(folder / SUMMARY_FILE, summary)

    path, _ = create_run_dir(root, name, fill, now)
    return path
