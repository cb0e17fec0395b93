"""Run analysis as plain data: config diffs, results, curves with their best epoch, gradient
diagnostics and seed statistics. Functions take Run objects and return dicts and dataclasses;
nothing here knows about tables, cells or terminals (compare.py and show.py render it).

Diagnostic flags (each a named constant below):
  vanishing   in some epoch, a layer's gradient norm is below VANISHING_RATIO (1e-3) times the
              largest layer gradient norm of that epoch (the signal no longer reaches it)
  exploding   a layer's (or the global) gradient norm is above EXPLODING_GRAD_NORM (1e3), or
              is non-finite (written as null)
  dead        at the last epoch, more than DEAD_FRACTION (50%) of a ReLU layer's units are
              never active on the probe batch
  saturated   at the last epoch, more than SATURATED_FRACTION (50%) of a tanh/sigmoid layer's
              units are saturated
  diverged    summary.json records where the loss became non-finite

Seed groups: runs whose resolved configs are equal except for GROUP_IGNORES (`seed`, and the
run `name`, a label) form a group, labelled by the config values that differ between the groups,
summarised as mean, sample standard deviation (n-1) and n. Each group's test accuracies are
judged against the baseline group's by the rule of significance.py (Welch's t-test).
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, NamedTuple, Sequence

from ..config import flatten
from ..errors import ConfigError
from ..metrics import METRIC_KEYS, best_index, higher_is_better
from ..rundir.format import FINAL, RAN_TO_END, layer_order
from ..rundir.reader import Run, newer_namesakes, split_dir_name
from .significance import Verdict, judge
from .stats import mean_sd

VANISHING_RATIO = 1e-3  # layer grad norm / largest layer grad norm of the same epoch
EXPLODING_GRAD_NORM = 1e3  # a gradient norm above this explodes
DEAD_FRACTION = 0.5  # fraction of never-active ReLU units that flags a layer
SATURATED_FRACTION = 0.5  # fraction of saturated tanh/sigmoid units that flags a layer
DEFAULT_METRIC = "val_acc"
GROUP_IGNORES = ("seed", "name")  # config keys that may differ within a seed group


# ---------------------------------------------------------------------------------------
# Config diff.

_ABSENT = object()


def config_diff(configs: Sequence[Mapping[str, Any]], all_keys: bool = False,
                ignore: Iterable[str] = ()) -> list[tuple[str, list[Any]]]:
    """(key, one value per config) for every key whose values differ (every key with
    `all_keys`), in the order keys first appear. A key a config lacks has value None."""
    flats = [flatten(c) for c in configs]
    keys: dict[str, None] = {}
    for flat in flats:
        keys.update(dict.fromkeys(flat))
    skip = set(ignore)
    out = []
    for key in keys:
        if key in skip:
            continue
        values = [flat.get(key, _ABSENT) for flat in flats]
        if all_keys or any(v != values[0] for v in values[1:]):
            out.append((key, [None if v is _ABSENT else v for v in values]))
    return out


# ---------------------------------------------------------------------------------------
# Results.

# (results key, higher is better; None: not ranked), in the order reports show them.
RESULT_FIELDS: tuple[tuple[str, bool | None], ...] = (
    ("status", None),
    ("epochs_run", None),
    ("best_epoch", None),
    ("best_val_acc", True),
    ("best_val_loss", False),
    ("test_acc", True),
    ("test_loss", False),
    ("wall_s", False),
    ("s_per_epoch", False),
)
# Measured once per run, on the test set (summary.json): no curve, and a results field of
# their own. `trickrun ls --sort` takes the same names.
TEST_METRICS = ("test_acc", "test_loss")
_OWN_FIELDS = ("val_acc", "val_loss", *TEST_METRICS)  # metrics RESULT_FIELDS already has a field for


def valid_metrics(runs: Sequence[Run]) -> list[str]:
    names = [*METRIC_KEYS, *TEST_METRICS]
    for run in runs:
        names += [n for n in run.metric_names() if n not in names]
    return names


def check_metric(metric: str, runs: Sequence[Run]) -> None:
    valid = valid_metrics(runs)
    if metric not in valid:
        raise ConfigError(f"--metric: unknown metric {metric!r}; choose one of: {', '.join(valid)}")


def metric_field(metric: str) -> tuple[str, bool | None]:
    """The results key of an emphasised metric: its best value if it has a direction, else
    its last value; a test metric's own value."""
    direction = higher_is_better(metric)
    if metric in TEST_METRICS:
        return metric, direction
    return (f"last_{metric}", None) if direction is None else (f"best_{metric}", direction)


def result_fields(metric: str) -> list[tuple[str, bool | None]]:
    """RESULT_FIELDS, plus the metric's own field when it has none there."""
    fields = list(RESULT_FIELDS)
    if metric not in _OWN_FIELDS:
        fields.insert(3, metric_field(metric))
    return fields


def metric_value(run: Run, metric: str) -> float | None:
    """The metric at its own best epoch (its last finite value if it has no direction)."""
    values = run.series(metric)
    i = best_index(values, metric)
    return None if i is None else values[i]


def run_results(run: Run, metric: str = DEFAULT_METRIC) -> dict[str, Any]:
    """Run.results(), plus the metric's own field (see result_fields)."""
    results = run.results()
    if metric not in _OWN_FIELDS:
        results[metric_field(metric)[0]] = metric_value(run, metric)
    return results


# metrics.best_index takes its direction from a metric name; these names stand for one.
_BY_DIRECTION = {True: "acc", False: "loss"}


def best_flags(values: Sequence[Any], higher: bool | None) -> list[bool]:
    """Which values equal the best of the numbers among them; none when the row is not ranked
    or holds fewer than two numbers."""
    numbers = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in values]
    if higher is None or sum(v is not None for v in numbers) < 2:
        return [False] * len(values)
    best = best_index(numbers, _BY_DIRECTION[higher])
    return [best is not None and v == numbers[best] for v in numbers]


def best_runs(results: Sequence[Mapping[str, Any]], key: str, higher: bool | None) -> list[bool]:
    """Which runs hold the best value of results `key` (best_flags); only a run that ran to
    its end (completed or early-stopped) may be the fastest: one still running, interrupted
    or diverged was cut short."""
    values = [r.get(key) for r in results]
    if key == "wall_s":
        values = [v if r["status"] in RAN_TO_END else None for v, r in zip(values, results)]
    return best_flags(values, higher)


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Short labels: the run name when unique, else name + seed, else the folder, else as many
    of the path's last parts as tell the runs apart (one run copied into two runs folders). A
    run that a newer one of its name has since replaced is `NAME~K`, as `show` and `compare`
    take it, since its bare name now means the newer run."""
    names = [r.name for r in runs]
    newer = newer_namesakes([r.path for r in runs])
    aged = [name if k == 0 else f"{split_dir_name(r.dirname)[0]}~{k}" for name, r, k in zip(names, runs, newer)]
    seeded = [f"{r.name} s{r.seed}" for r in runs]
    for labels in (names, seeded, aged):
        if len(set(labels)) == len(labels):
            return aged if labels is names else labels
    parts = [Path(os.path.abspath(r.path)).parts for r in runs]
    for k in range(1, max(map(len, parts), default=0) + 1):
        labels = ["/".join(p[-k:]) for p in parts]
        if len(set(labels)) == len(labels):
            return labels
    return [str(r.path) for r in runs]


# ---------------------------------------------------------------------------------------
# Curves.


@dataclass
class Curve:
    """One value per epoch (None where not finite), and the index of the best epoch."""

    metric: str
    epochs: list[int]
    values: list[float | None]
    best: int | None

    @property
    def best_value(self) -> float | None:
        return None if self.best is None else self.values[self.best]

    @property
    def best_epoch(self) -> int | None:
        return None if self.best is None else self.epochs[self.best]


def curve_metrics(metric: str) -> list[str]:
    """The curves a comparison draws: the emphasised metric (a test metric has none), then
    val_acc and val_loss."""
    return list(dict.fromkeys([m for m in (metric, "val_acc", "val_loss") if m not in TEST_METRICS]))


def run_curve(run: Run, metric: str) -> Curve:
    """The run's values of `metric`, marked at the run's best epoch (its monitor's)."""
    return Curve(metric, run.epochs, run.series(metric), run.best_index())


def values_by_shared_epoch(series: Sequence[tuple[Sequence[int], Sequence[float | None]]],
                           epochs: Iterable[int] | None = None) -> dict[int, list[float]]:
    """Several runs' (epochs, values), as the finite values at each of `epochs`, in epoch order;
    by default the epochs every one of them recorded. Only those: where early stopping ended
    some runs sooner, a mean over the runs that went on would follow the survivors. A value that
    is not finite (the epoch a run diverged) is left out of its epoch's list."""
    if epochs is None:
        epochs = set.intersection(*(set(e) for e, _ in series)) if series else ()
    by_epoch: dict[int, list[float]] = {e: [] for e in sorted(epochs)}
    for run_epochs, values in series:
        for epoch, value in zip(run_epochs, values):
            if epoch in by_epoch and value is not None:
                by_epoch[epoch].append(value)
    return by_epoch


def mean_curve(runs: Sequence[Run], metric: str) -> Curve:
    """The per-epoch mean over `runs` (seeds) at the epochs all of them recorded
    (values_by_shared_epoch), marked at the best epoch of that mean."""
    by_epoch = values_by_shared_epoch([(run.epochs, run.series(metric)) for run in runs])
    epochs = list(by_epoch)
    values = [statistics.fmean(by_epoch[e]) if by_epoch[e] else None for e in epochs]
    return Curve(metric, epochs, values, best_index(values, metric))


# ---------------------------------------------------------------------------------------
# Diagnostics.


@dataclass
class Flag:
    kind: str  # vanishing | exploding | dead | saturated | diverged
    layer: str | None
    epoch: int | None
    text: str


def diagnose(run: Run) -> list[Flag]:
    """The diagnostic flags of one run (thresholds in the module docstring): the first of each
    kind per layer, divergence first, then epoch by epoch, then the last epoch's units."""
    found = _divergence_flags(run.summary or {})
    last_layers: list[dict] = []
    for record, epoch in zip(run.records, run.epochs):
        layers = [e for e in record.get("layers") or () if isinstance(e, dict)]
        last_layers = layers or last_layers
        found += _gradient_flags(layers, record.get("grad_norm"), epoch)
    found += _unit_flags(last_layers)
    flags: dict[tuple[str, str | None], Flag] = {}
    for flag in found:
        flags.setdefault((flag.kind, flag.layer), flag)
    return list(flags.values())


def _divergence_flags(summary: Mapping[str, Any]) -> list[Flag]:
    divergence = summary.get("divergence")
    if not isinstance(divergence, dict):
        return []
    when = f"@ep{divergence.get('epoch')}"
    if divergence.get("batch") is not None:
        when += f" batch {divergence['batch']}"
    what = " of ".join(str(divergence[k]) for k in ("where", "layer") if divergence.get(k))
    lr = divergence.get("lr")
    detail = ", ".join(filter(None, [what, f"lr {lr:.3g}" if isinstance(lr, (int, float)) else ""]))
    return [Flag("diverged", divergence.get("layer"), divergence.get("epoch"),
                 f"diverged {when}" + (f" ({detail})" if detail else ""))]


def _gradient_flags(layers: list[dict], total: Any, epoch: int) -> list[Flag]:
    """Exploding and vanishing gradients of one epoch."""
    flags, norms = [], {}
    for entry in layers:
        name, value = entry.get("name"), entry.get("grad_norm")
        if "grad_norm" in entry and value is None:
            flags.append(Flag("exploding", name, epoch, f"exploding grad {name} @ep{epoch} (non-finite)"))
        elif isinstance(value, (int, float)):
            if not math.isfinite(value) or value > EXPLODING_GRAD_NORM:
                text = f"exploding grad {name} @ep{epoch} ({value:.1e})"
                flags.append(Flag("exploding", name, epoch, text))
            else:
                norms[name] = float(value)
    if norms:
        largest = max(norms.values())
        if largest == 0:
            flags.append(Flag("vanishing", None, epoch, f"vanishing grad: all layers zero @ep{epoch}"))
        flags += [Flag("vanishing", name, epoch,
                       f"vanishing grad {name} @ep{epoch} ({value:.1e} vs max {largest:.1e})")
                  for name, value in norms.items() if value < VANISHING_RATIO * largest]
    if not layers and isinstance(total, (int, float)) and total > EXPLODING_GRAD_NORM:
        flags.append(Flag("exploding", None, epoch, f"exploding grad @ep{epoch} ({total:.1e})"))
    return flags


def _unit_flags(layers: list[dict]) -> list[Flag]:
    """Dead and saturated units of the last epoch's layers."""
    flags = []
    for entry in layers:
        name = entry.get("name")
        dead, sat = entry.get("dead_frac"), entry.get("saturated_frac")
        if isinstance(dead, (int, float)) and dead > DEAD_FRACTION:
            flags.append(Flag("dead", name, None, f"dead {name} {dead:.0%}"))
        if isinstance(sat, (int, float)) and sat > SATURATED_FRACTION:
            flags.append(Flag("saturated", name, None, f"saturated {name} {sat:.0%}"))
    return flags


def layer_union(runs: Sequence[Run]) -> list[str]:
    """Every layer name of `runs` in network order (hidden1, hidden2, ..., output), whatever
    the runs' depths."""
    names: set[str] = set()
    for run in runs:
        names.update(run.layer_names())
    return sorted(names, key=layer_order)


def first_last_grad(run: Run, layer: str) -> tuple[float | None, float | None]:
    """The layer's first and last finite gradient norm; (None, None) if it has none."""
    values = [v for v in run.layer_series(layer, "grad_norm") if v is not None]
    return (values[0], values[-1]) if values else (None, None)


# ---------------------------------------------------------------------------------------
# One run, several runs, seed groups.


@dataclass
class RunAnalysis:
    run: Run
    label: str
    results: dict[str, Any]  # run_results()
    curves: dict[str, Curve]  # by metric, marked at the run's best epoch
    flags: list[Flag]
    grads: dict[str, tuple[float | None, float | None]]  # layer -> first_last_grad()


def analyze_run(run: Run, metric: str = DEFAULT_METRIC, label: str | None = None,
                layers: Sequence[str] | None = None) -> RunAnalysis:
    """Everything a report says about one run; `layers` defaults to the run's own."""
    layers = layer_union([run]) if layers is None else layers
    return RunAnalysis(
        run=run,
        label=run.name if label is None else label,
        results=run_results(run, metric),
        curves={m: run_curve(run, m) for m in curve_metrics(metric)},
        flags=diagnose(run),
        grads={name: first_last_grad(run, name) for name in layers},
    )


@dataclass
class Comparison:
    metric: str
    baseline: int  # index into runs
    diff: list[tuple[str, list[Any]]]  # config_diff() of the runs
    fields: list[tuple[str, bool | None]]  # result_fields(metric)
    layers: list[str]  # layer_union() of the runs
    runs: list[RunAnalysis]


def _beside_ensembles(diff: list[tuple[str, list[Any]]], runs: Sequence[Run],
                      all_keys: bool) -> list[tuple[str, list[Any]]]:
    """The diff without the training keys that differ only because an ensemble has none (its
    members' configs hold them): an ensemble beside a trained run is not 40 lines of null."""
    if all_keys or not any(r.is_ensemble for r in runs):
        return diff
    lacks = [set(flatten(r.config)) if r.is_ensemble else None for r in runs]
    kept = []
    for key, values in diff:
        trained = {json.dumps(v, sort_keys=True, default=str)
                   for v, keys in zip(values, lacks) if keys is None or key in keys}
        if len(trained) > 1:
            kept.append((key, values))
    return kept


def compare_runs(runs: Sequence[Run], *, baseline: int = 0, metric: str = DEFAULT_METRIC,
                 all_keys: bool = False) -> Comparison:
    """The analysis of several runs against `runs[baseline]`; ConfigError for an unknown metric."""
    check_metric(metric, runs)
    layers = layer_union(runs)
    return Comparison(
        metric=metric,
        baseline=baseline,
        diff=_beside_ensembles(config_diff([r.config for r in runs], all_keys, ignore=() if all_keys else ("name",)),
                               runs, all_keys),
        fields=result_fields(metric),
        layers=layers,
        runs=[analyze_run(r, metric, label, layers) for r, label in zip(runs, run_labels(runs))],
    )


class Stat(NamedTuple):
    mean: float | None
    sd: float | None  # sample standard deviation; None below two values
    n: int


@dataclass
class Group:
    label: str
    runs: list[Run]

    @property
    def config(self) -> dict[str, Any]:
        return self.runs[0].config


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs whose configs are equal except for GROUP_IGNORES, in order of first appearance,
    each labelled by group_labels()."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        flat = {k: v for k, v in flatten(run.config).items() if k not in GROUP_IGNORES}
        groups.setdefault(json.dumps(sorted(flat.items()), default=str), []).append(run)
    members = list(groups.values())
    return [Group(label, runs) for label, runs in zip(group_labels(members), members)]


def group_labels(groups: Sequence[Sequence[Run]]) -> list[str]:
    """A label per seed group, the one `compare --group` and the sweep leaderboard both show:
    the config values that differ between the groups (`model.norm=batch optimizer.lr=0.01`),
    or, for a single group, its run name. Labels that would read alike get `#2`, `#3`..."""
    diff = config_diff([g[0].config for g in groups], ignore=GROUP_IGNORES)
    labels = [" ".join(f"{key}={label_value(values[i])}" for key, values in diff) or common_name(g)
              for i, g in enumerate(groups)]
    return [f"{label}#{labels[: i + 1].count(label)}" if labels.count(label) > 1 else label
            for i, label in enumerate(labels)]


def label_value(value: Any) -> str:
    """A config value in a label: YAML's scalars, lists without spaces (`[512,256]`) so that a
    label wraps only between its `key=value` words; long floats cut to 6 significant digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, float) and len(repr(value)) > 10:
        return f"{value:.6g}"
    if isinstance(value, (list, dict)):
        return json.dumps(value, separators=(",", ":"), default=str)
    return str(value)


def common_name(runs: Sequence[Run]) -> str:
    """The name the runs share: their run name, else the start their names share (a sweep's
    `base_s0`, `base_s1` -> `base`), else the names joined by `+`."""
    names = list(dict.fromkeys(r.name for r in runs))
    if len(names) == 1:
        return names[0]
    prefix = os.path.commonprefix(names)
    prefix = re.sub(r"_s$", "", prefix).rstrip("-_.")
    return prefix or "+".join(names)


@dataclass
class GroupAnalysis:
    group: Group
    results: list[dict[str, Any]]  # run_results() of each run
    stats: dict[str, Stat]  # results key -> mean, sd, n over the finished runs (counted)
    curves: dict[str, Curve]  # by metric: mean over the runs, marked at its own best
    # The results of the runs that finished, those the statistics are over: found once, as a
    # run's status may ask its lock.
    counted: list[dict[str, Any]]


@dataclass
class GroupComparison:
    metric: str
    baseline: int  # index into groups: the group holding the baseline run
    diff: list[tuple[str, list[Any]]]  # config_diff() of the groups, GROUP_IGNORES left out
    fields: list[tuple[str, bool | None]]  # result_fields(metric) but status
    groups: list[GroupAnalysis]
    verdicts: list[Verdict | None]  # each group's test acc against the baseline group's; None for it
    layers: list[str]
    runs: list[RunAnalysis]  # every run, for per-run diagnostics


def compare_groups(runs: Sequence[Run], *, baseline: int = 0, metric: str = DEFAULT_METRIC,
                   all_keys: bool = False) -> GroupComparison:
    """The runs merged into seed groups, compared against the group of `runs[baseline]`."""
    per_run = compare_runs(runs, baseline=baseline, metric=metric, all_keys=all_keys)
    results = {id(a.run): a.results for a in per_run.runs}
    groups = group_runs(runs)
    base_g = next(i for i, g in enumerate(groups) if any(r is runs[baseline] for r in g.runs))
    fields = [f for f in per_run.fields if f[0] != "status"]
    analyses = []
    for group in groups:
        rs = [results[id(r)] for r in group.runs]
        counted = [res for run, res in zip(group.runs, rs) if finished_run(run)]
        stats = {key: Stat(*mean_sd([res.get(key) for res in counted])) for key, _ in fields}
        curves = {m: mean_curve(curve_runs(group.runs), m) for m in curve_metrics(metric)}
        analyses.append(GroupAnalysis(group, rs, stats, curves, counted))
    return GroupComparison(
        metric=metric,
        baseline=base_g,
        diff=config_diff([g.config for g in groups], all_keys, ignore=GROUP_IGNORES),
        fields=fields,
        groups=analyses,
        verdicts=[None if i == base_g else judge(_test_accs(g.counted), _test_accs(analyses[base_g].counted), True)
                  for i, g in enumerate(analyses)],
        layers=per_run.layers,
        runs=per_run.runs,
    )


def finished_run(run: Run) -> bool:
    """Whether `run` counts in a group's statistics: it finished (completed, early-stopped or
    diverged). An interrupted, running or stale run's best so far is not its result, and
    would pass for one more seed."""
    return run.status in FINAL


def curve_runs(runs: Sequence[Run]) -> list[Run]:
    """The runs a group's mean curves are drawn over: its finished runs (those its statistics
    count), so that one interrupted early does not cut the curves short; all of them while none
    has finished."""
    return [run for run in runs if finished_run(run)] or list(runs)


def _test_accs(results: Sequence[Mapping[str, Any]]) -> list[float]:
    return [r["test_acc"] for r in results if r.get("test_acc") is not None]
