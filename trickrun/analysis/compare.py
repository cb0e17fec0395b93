"""Comparing runs, listing them and showing one: config diffs, results, sparkline curves,
gradient diagnostics and seed statistics, rendered as a terminal table, Markdown, CSV or JSON.

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

Seed statistics (`--group`): runs whose resolved configs are equal except for `seed` (and
the run `name`, a label) form a group, shown as mean ± sample standard deviation (n-1) and n.
With exactly two groups, their test accuracies are compared with Welch's t-test (stats.py);
the difference is called larger than the seed-to-seed noise when p < SIGNIFICANCE_LEVEL (0.05).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterable, Mapping, Sequence

from rich.console import Console

from ..config import dump_yaml
from ..errors import ConfigError
from .render import (
    EMPTY,
    RUN_COLUMNS_MAX,
    SPARK_CHARS,
    SPARK_MISSING,
    SPARK_WIDTH,
    Cell,
    OutputFormat,
    Section,
    orient,
    spark_scale,
    fmt_config,
    fmt_delta,
    fmt_duration,
    fmt_number,
    markdown_sections,
    records_text,
    render_sections,
    sparkline,
    spark_width,
)
from ..rundir.reader import FINISHED, METRIC_KEYS, Run, RunEntry, higher_is_better
from ..rundir.writer import to_json
from .stats import SIGNIFICANCE_LEVEL, WelchResult, mean_sd, welch_t_test

VANISHING_RATIO = 1e-3  # layer grad norm / largest layer grad norm of the same epoch
EXPLODING_GRAD_NORM = 1e3  # a gradient norm above this explodes
DEAD_FRACTION = 0.5  # fraction of never-active ReLU units that flags a layer
SATURATED_FRACTION = 0.5  # fraction of saturated tanh/sigmoid units that flags a layer
DEFAULT_METRIC = "val_acc"
RICH_ROWS_MAX = 500  # `ls` tables longer than this are printed as plain aligned text


class SortKey(str, Enum):
    name = "name"
    status = "status"
    epochs = "epochs"
    val_acc = "val_acc"
    test_acc = "test_acc"
    started = "started"
    duration = "duration"


STATUS_STYLE = {
    "completed": "green",
    "early_stopped": "green",
    "diverged": "bold red",
    "interrupted": "yellow",
    "running": "cyan",
    "stale": "magenta",
    "incomplete": "dim",
}


# ---------------------------------------------------------------------------------------
# Config diff.

_ABSENT = object()


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """{"optimizer": {"lr": 0.1}} -> {"optimizer.lr": 0.1}; lists stay values."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        full = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, full + "."))
        else:
            out[full] = value
    return out


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
# Diagnostics.


@dataclass
class Flag:
    kind: str  # vanishing | exploding | dead | saturated | diverged
    layer: str | None
    epoch: int | None
    text: str


def diagnose(run: Run) -> list[Flag]:
    """The diagnostic flags of one run (thresholds in the module docstring)."""
    flags: list[Flag] = []
    seen: set[tuple[str, str | None]] = set()

    def add(kind: str, layer: str | None, epoch: int | None, text: str) -> None:
        if (kind, layer) not in seen:
            seen.add((kind, layer))
            flags.append(Flag(kind, layer, epoch, text))

    divergence = (run.summary or {}).get("divergence")
    if isinstance(divergence, dict):
        when = f"@ep{divergence.get('epoch')}"
        if divergence.get("batch") is not None:
            when += f" batch {divergence['batch']}"
        what = " of ".join(str(divergence[k]) for k in ("where", "layer") if divergence.get(k))
        lr = divergence.get("lr")
        detail = ", ".join(filter(None, [what, f"lr {lr:.3g}" if isinstance(lr, (int, float)) else ""]))
        add("diverged", divergence.get("layer"), divergence.get("epoch"),
            f"diverged {when}" + (f" ({detail})" if detail else ""))
    last_layers = None
    for record, epoch in zip(run.records, run.epochs):
        layers = [e for e in record.get("layers") or () if isinstance(e, dict)]
        if layers:
            last_layers = layers
        norms: dict[str, float] = {}
        for entry in layers:
            name, value = entry.get("name"), entry.get("grad_norm")
            if "grad_norm" in entry and value is None:
                add("exploding", name, epoch, f"exploding grad {name} @ep{epoch} (non-finite)")
            elif isinstance(value, (int, float)):
                if not math.isfinite(value) or value > EXPLODING_GRAD_NORM:
                    add("exploding", name, epoch, f"exploding grad {name} @ep{epoch} ({value:.1e})")
                elif math.isfinite(value):
                    norms[name] = float(value)
        if norms:
            largest = max(norms.values())
            if largest == 0:
                add("vanishing", None, epoch, f"vanishing grad: all layers zero @ep{epoch}")
            for name, value in norms.items():
                if value < VANISHING_RATIO * largest:
                    add("vanishing", name, epoch,
                        f"vanishing grad {name} @ep{epoch} ({value:.1e} vs max {largest:.1e})")
        total = record.get("grad_norm")
        if not layers and isinstance(total, (int, float)) and total > EXPLODING_GRAD_NORM:
            add("exploding", None, epoch, f"exploding grad @ep{epoch} ({total:.1e})")
    for entry in last_layers or ():
        name = entry.get("name")
        dead, sat = entry.get("dead_frac"), entry.get("saturated_frac")
        if isinstance(dead, (int, float)) and dead > DEAD_FRACTION:
            add("dead", name, None, f"dead {name} {dead:.0%}")
        if isinstance(sat, (int, float)) and sat > SATURATED_FRACTION:
            add("saturated", name, None, f"saturated {name} {sat:.0%}")
    return flags


def flags_summary(flags: Sequence[Flag]) -> str:
    """The flags in a few words, one clause per kind: "exploding grad: hidden1@ep1,
    output@ep2; dead: hidden2 80%" (`show` lists each flag in full)."""
    clauses: dict[str, list[str]] = {}
    for flag in flags:
        if flag.kind == "diverged" or (flag.layer is None and flag.kind != "dead"):
            clauses.setdefault(flag.text, [])
        elif flag.kind in ("dead", "saturated"):
            clauses.setdefault(flag.kind, []).append(flag.text.split(" ", 1)[1])
        else:
            clauses.setdefault(f"{flag.kind} grad", []).append(f"{flag.layer}@ep{flag.epoch}")
    return "; ".join(f"{head}: {', '.join(items)}" if items else head for head, items in clauses.items())


THRESHOLDS_NOTE = (
    f"flags: vanishing = layer grad norm < {VANISHING_RATIO:g} × the largest layer's; "
    f"exploding = grad norm > {EXPLODING_GRAD_NORM:g} or non-finite; "
    f"dead/saturated = > {DEAD_FRACTION:.0%} of units at the last epoch"
)


def first_last_grad(run: Run, layer: str) -> tuple[float | None, float | None]:
    values = [v for v in run.layer_series(layer, "grad_norm") if v is not None]
    return (values[0], values[-1]) if values else (None, None)


# ---------------------------------------------------------------------------------------
# Run labels and groups.


def run_labels(runs: Sequence[Run]) -> list[str]:
    """Short column labels: the run name when unique, else name + seed, else the folder."""
    names = [r.name for r in runs]
    if len(set(names)) == len(names):
        return names
    seeded = [f"{r.name} s{r.seed}" for r in runs]
    if len(set(seeded)) == len(seeded):
        return seeded
    return [r.dirname for r in runs]


@dataclass
class Group:
    label: str
    runs: list[Run]

    @property
    def config(self) -> dict[str, Any]:
        return self.runs[0].config


GROUP_IGNORES = ("seed", "name")


def group_runs(runs: Sequence[Run]) -> list[Group]:
    """Runs whose configs are equal except for GROUP_IGNORES, in order of first appearance."""
    groups: dict[str, list[Run]] = {}
    for run in runs:
        flat = {k: v for k, v in flatten(run.config).items() if k not in GROUP_IGNORES}
        key = json.dumps(sorted(flat.items()), default=str)
        groups.setdefault(key, []).append(run)
    out = []
    for members in groups.values():
        names = list(dict.fromkeys(r.name for r in members))
        out.append(Group("+".join(names), members))
    labels = [g.label for g in out]
    for i, group in enumerate(out):
        if labels.count(group.label) > 1:
            group.label = f"{group.label}#{labels[: i + 1].count(group.label)}"
    return out


# ---------------------------------------------------------------------------------------
# compare.

RESULT_ROWS: list[tuple[str, str, bool | None]] = [
    # (results key, label, higher is better; None: not ranked)
    ("status", "status", None),
    ("epochs_run", "epochs run", None),
    ("best_epoch", "best epoch", None),
    ("best_val_acc", "best val acc", True),
    ("best_val_loss", "best val loss", False),
    ("test_acc", "test acc", True),
    ("test_loss", "test loss", False),
    ("wall_s", "wall time (s)", False),
    ("s_per_epoch", "s / epoch", False),
]


# Column headers when runs are rows (many runs), to fit a terminal.
SHORT_LABELS = {
    "epochs_run": "epochs",
    "best_epoch": "best ep",
    "best_val_acc": "val acc",
    "best_val_loss": "val loss",
    "test_acc": "test acc",
    "test_loss": "test loss",
    "wall_s": "wall s",
    "s_per_epoch": "s/epoch",
}


def valid_metrics(runs: Sequence[Run]) -> list[str]:
    names = list(METRIC_KEYS)
    for run in runs:
        names += [n for n in run.metric_names() if n not in names]
    return names


def check_metric(metric: str, runs: Sequence[Run]) -> None:
    valid = valid_metrics(runs)
    if metric not in valid:
        raise ConfigError(f"--metric: unknown metric {metric!r}; choose one of: {', '.join(valid)}")


def metric_field(metric: str) -> tuple[str, str, bool | None]:
    """The results row of the emphasised metric: best value if it has a direction, else last."""
    direction = higher_is_better(metric)
    if direction is None:
        return f"last_{metric}", f"last {metric}", None
    return f"best_{metric}", f"best {metric}", direction


def metric_value(run: Run, metric: str) -> float | None:
    direction = higher_is_better(metric)
    values = [v for v in run.series(metric) if v is not None]
    if not values:
        return None
    if direction is None:
        return values[-1]
    return max(values) if direction else min(values)


def result_fields(metric: str) -> list[tuple[str, str, bool | None]]:
    rows = list(RESULT_ROWS)
    if metric not in ("val_acc", "val_loss"):
        rows.insert(3, metric_field(metric))
    return rows


def run_results(run: Run, metric: str) -> dict[str, Any]:
    results = run.results()
    if metric not in ("val_acc", "val_loss"):
        results[metric_field(metric)[0]] = metric_value(run, metric)
    return results


def _best_flags(values: Sequence[Any], direction: bool | None) -> list[bool]:
    finite = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if direction is None or len(finite) < 2:
        return [False] * len(values)
    target = max(finite) if direction else min(finite)
    return [v == target for v in values]


@dataclass
class Report:
    sections: list[Section]
    records: list[dict[str, Any]]


def compare_report(runs: Sequence[Run], *, baseline: int = 0, metric: str = DEFAULT_METRIC,
                   group: bool = False, all_keys: bool = False, spark_width: int = SPARK_WIDTH) -> Report:
    """Everything `trickrun compare` prints, as sections (table, Markdown) and records (CSV,
    JSON). `baseline` indexes `runs`."""
    check_metric(metric, runs)
    if group:
        return _group_report(runs, baseline, metric, all_keys, spark_width)
    labels = run_labels(runs)
    shown = [f"{label} (baseline)" if i == baseline and len(runs) > 1 else label
             for i, label in enumerate(labels)]
    diff = config_diff([r.config for r in runs], all_keys, ignore=() if all_keys else ("name",))
    results = [run_results(r, metric) for r in runs]
    fields = result_fields(metric)
    flags = [diagnose(r) for r in runs]

    sections = [_diff_section(diff, shown, all_keys)]
    sections.append(_results_section(fields, results, shown, baseline, metric, labels[baseline]))
    sections.append(_curves_section(runs, labels, metric, spark_width))
    sections.append(_diagnostics_section(runs, labels, flags))

    records = []
    for run, res, fl, i in zip(runs, results, flags, range(len(runs))):
        record: dict[str, Any] = {"run": run.dirname, "name": run.name, "path": str(run.path)}
        record.update({key: values[i] for key, values in diff})
        record.update({key: res.get(key) for key, _, _ in fields})
        record["flags"] = flags_summary(fl)
        records.append(record)
    return Report(sections, records)


def _diff_section(diff: list[tuple[str, list[Any]]], names: list[str], all_keys: bool) -> Section:
    title = "Config" if all_keys else "Config diff"
    if not diff:
        if len(names) == 1:
            note = "one run: nothing to compare its config with (--all lists it)" if not all_keys else "no config.yaml"
        else:
            note = "the configs are identical" + ("" if all_keys else " (--all lists them)")
        return Section(title, footer=[note])
    cells = [[Cell(fmt_config(v)) for v in values] for _, values in diff]
    return orient(title, [k for k, _ in diff], names, cells, "key")


def _results_section(fields, results: list[dict[str, Any]], names: list[str], baseline: int,
                     metric: str, baseline_label: str) -> Section:
    cells = []
    emphasised = metric_field(metric)[0] if metric not in ("val_acc", "val_loss") else f"best_{metric}"
    for key, _, direction in fields:
        values = [r.get(key) for r in results]
        if key == "wall_s":  # a run cut short is not "fastest"
            finished = [v if r["status"] in FINISHED else None for v, r in zip(values, results)]
            best = _best_flags(finished, direction)
        else:
            best = _best_flags(values, direction)
        base = values[baseline]
        row = []
        for i, value in enumerate(values):
            if key == "status":
                row.append(Cell(str(value), style=STATUS_STYLE.get(str(value), "")))
                continue
            note = ""
            if (direction is not None and i != baseline and isinstance(value, (int, float))
                    and isinstance(base, (int, float))):
                note = f"({fmt_delta(value - base, key)})"
            row.append(Cell(fmt_number(value, key), best=best[i], note=note,
                            style="bold" if key == emphasised else ""))
        cells.append(row)
    labels = [("▶ " if key == emphasised else "") + label for key, label, _ in fields]
    footer = []
    if len(names) > RUN_COLUMNS_MAX:
        labels = [("▶ " if key == emphasised else "") + SHORT_LABELS.get(key, label) for key, label, _ in fields]
    if len(results) > 1 and len(names) > RUN_COLUMNS_MAX:
        # one row per run: a change in every cell would not fit; give the two that matter
        keyed = dict(zip((k for k, _, _ in fields), cells))
        directed = {k for k, _, d in fields if d is not None}
        for key in dict.fromkeys([emphasised, "test_acc"]):
            if key in keyed and key in directed:
                labels.append(f"Δ {SHORT_LABELS.get(key, key)}")
                cells.append([Cell(c.note.strip("()") or EMPTY) for c in keyed[key]])
        for row in cells:
            for c in row:
                c.note = ""
        footer.append(f"best of each column in bold; Δ: change against the baseline run {baseline_label}")
    elif len(results) > 1:
        footer.append(f"best of each row in bold; (±) change against the baseline run {baseline_label}")
    return orient("Results", labels, names, cells, "", footer)


def _curve_metrics(metric: str) -> list[str]:
    return list(dict.fromkeys([metric, "val_acc", "val_loss"]))


def _curves_section(runs: Sequence[Run], labels: list[str], metric: str, width: int) -> Section:
    metrics = _curve_metrics(metric)
    columns = ["run"]
    footer = []
    scales = {}
    for m in metrics:
        lo, hi, log = spark_scale((v for r in runs for v in r.series(m)), m)
        scales[m] = (lo, hi, log)
        columns += [f"{m} curve", f"{m} @best"]
        footer.append(f"{m}: {SPARK_CHARS[0]} {fmt_number(lo, m)} … {SPARK_CHARS[-1]} {fmt_number(hi, m)}"
                      + (" (log scale)" if log else ""))
    footer.append(f"@best: the value at the run's best epoch (highlighted in the terminal curve); "
                  f"{SPARK_MISSING} = no finite value")
    rows = []
    for run, label in zip(runs, labels):
        best_i = run.best_index()
        row = [Cell(label)]
        for m in metrics:
            values = run.series(m)
            lo, hi, log = scales[m]
            line, pos = sparkline(values, lo, hi, mark=best_i, width=width, log=log)
            row.append(Cell(line or EMPTY, mark=pos))
            if best_i is None:
                row.append(Cell(EMPTY))
            else:
                row.append(Cell(f"{fmt_number(values[best_i], m)} @ep{run.epochs[best_i]}"))
        rows.append(row)
    return Section("Curves", columns, rows, footer)


def _layer_order(name: str) -> tuple[int, int, str]:
    """hiddenN in numeric order, then output, then any other name."""
    if name.startswith("hidden") and name[6:].isdigit():
        return (0, int(name[6:]), "")
    return (1 if name == "output" else 2, 0, name)


def _diagnostics_section(runs: Sequence[Run], labels: list[str], flags: list[list[Flag]]) -> Section:
    layers: list[str] = []
    for run in runs:
        layers += [n for n in run.layer_names() if n not in layers]
    layers.sort(key=_layer_order)  # hidden1, hidden2, ..., output, whatever the runs' depths
    columns = ["run"] + [f"{name} grad first → last" for name in layers] + ["flags"]
    rows = []
    for run, label, fl in zip(runs, labels, flags):
        row = [Cell(label)]
        for name in layers:
            first, last = first_last_grad(run, name)
            row.append(Cell(EMPTY if first is None else f"{first:.2e} → {last:.2e}"))
        row.append(Cell(flags_summary(fl) or "ok", style="bold red" if fl else "green"))
        rows.append(row)
    return Section("Diagnostics", columns, rows, [THRESHOLDS_NOTE])


# --- compare --group ---------------------------------------------------------------------



def _group_report(runs: Sequence[Run], baseline: int, metric: str, all_keys: bool, width: int) -> Report:
    groups = group_runs(runs)
    base_run = runs[baseline]
    base_g = next(i for i, g in enumerate(groups) if any(r is base_run for r in g.runs))
    names = [g.label + (" (baseline)" if i == base_g and len(groups) > 1 else "") for i, g in enumerate(groups)]
    diff = config_diff([g.config for g in groups], all_keys, ignore=GROUP_IGNORES)
    fields = [f for f in result_fields(metric) if f[0] != "status"]
    per_group = [[run_results(r, metric) for r in g.runs] for g in groups]
    stats = [{key: mean_sd([res.get(key) for res in rs]) for key, _, _ in fields} for rs in per_group]
    welch = welch_between(per_group, base_g) if len(groups) == 2 else None

    sections = [_diff_section(diff, names, all_keys)]
    cells = [[Cell(str(len(g.runs))) for g in groups],
             [Cell(", ".join(str(r.seed) for r in g.runs)) for g in groups],
             [Cell(_status_counts(rs)) for rs in per_group]]
    for key, _, direction in fields:
        means = [s[key][0] for s in stats]
        best = _best_flags(means, direction)
        base = means[base_g]
        row = []
        for i, (mean, sd, n) in enumerate(s[key] for s in stats):
            note = ""
            if direction is not None and i != base_g and mean is not None and base is not None:
                note = f"({fmt_delta(mean - base, key)})"
            text = fmt_number(mean, key) + (f" ± {fmt_number(sd, key)}" if sd is not None else "")
            row.append(Cell(text, best=best[i], note=note))
        cells.append(row)
    labels = ["n", "seeds", "status"] + [label + " (mean ± sd)" for _, label, _ in fields]
    footer = ["mean ± sample standard deviation over the seeds of each group"]
    if len(groups) == 2:
        footer.append(welch_sentence(welch, groups[1 - base_g].label, groups[base_g].label))
    elif len(groups) > 2:
        footer.append("significance is tested only when exactly two groups are compared")
    sections.append(orient("Results by group", labels, names, cells, "", footer))
    sections.append(_group_curves(groups, metric, width))
    run_labels_ = run_labels(runs)
    sections.append(_diagnostics_section(runs, run_labels_, [diagnose(r) for r in runs]))

    records = []
    for i, (g, s, rs) in enumerate(zip(groups, stats, per_group)):
        record: dict[str, Any] = {"group": g.label, "runs": [r.dirname for r in g.runs], "n": len(g.runs),
                                  "seeds": [r.seed for r in g.runs], "status": _status_counts(rs)}
        record.update({key: values[i] for key, values in diff})
        for key, _, _ in fields:
            record[f"{key}_mean"], record[f"{key}_sd"], _ = s[key]
        if welch is not None:  # on the non-baseline group: its test acc minus the baseline's
            comparing = i != base_g
            record["welch_t"] = welch.t if comparing else None
            record["welch_df"] = welch.df if comparing else None
            record["welch_p"] = welch.p if comparing else None
            record["beyond_seed_noise"] = welch.significant if comparing else None
        records.append(record)
    return Report(sections, records)


def _status_counts(results: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return ", ".join(f"{k} {v}" if len(results) > 1 else k for k, v in counts.items())


def _test_accs(results: Sequence[Mapping[str, Any]]) -> list[float]:
    return [r["test_acc"] for r in results if r.get("test_acc") is not None]


def welch_between(per_group: Sequence[Sequence[Mapping[str, Any]]], base_g: int) -> WelchResult | None:
    """Welch's test of the other group's test accuracy minus the baseline group's (two groups)."""
    other = 1 - base_g
    a, b = _test_accs(per_group[other]), _test_accs(per_group[base_g])
    if len(a) < 2 or len(b) < 2:
        return None
    return welch_t_test(a, b)


def welch_sentence(result: WelchResult | None, other: str, base: str) -> str:
    if result is None:
        return ("test acc: cannot tell a difference from seed noise; each group needs at least "
                "2 runs with a test accuracy")
    verdict = "larger than" if result.significant else "not larger than"
    return (f"test acc {other} − {base} = {fmt_delta(result.mean_a - result.mean_b, 'acc')}: "
            f"{verdict} the seed-to-seed noise (Welch's t = {result.t:.3g}, df = {result.df:.3g}, "
            f"two-sided p = {result.p:.3g} {'<' if result.significant else '≥'} {SIGNIFICANCE_LEVEL})")


def _mean_curve(group: Group, metric: str) -> tuple[list[int], list[float | None]]:
    by_epoch: dict[int, list[float]] = {}
    for run in group.runs:
        for epoch, value in zip(run.epochs, run.series(metric)):
            bucket = by_epoch.setdefault(epoch, [])
            if value is not None:
                bucket.append(value)
    epochs = sorted(by_epoch)
    return epochs, [statistics.fmean(by_epoch[e]) if by_epoch[e] else None for e in epochs]


def _group_curves(groups: Sequence[Group], metric: str, width: int) -> Section:
    metrics = _curve_metrics(metric)
    curves = {m: [_mean_curve(g, m) for g in groups] for m in metrics}
    columns = ["group"]
    footer = []
    for m in metrics:
        columns += [f"{m} curve", f"{m} @best"]
        lo, hi, log = spark_scale((v for _, vs in curves[m] for v in vs), m)
        footer.append(f"{m} (mean over seeds): {SPARK_CHARS[0]} {fmt_number(lo, m)} … "
                      f"{SPARK_CHARS[-1]} {fmt_number(hi, m)}" + (" (log scale)" if log else ""))
    rows = []
    for gi, group in enumerate(groups):
        row = [Cell(group.label)]
        for m in metrics:
            epochs, values = curves[m][gi]
            lo, hi, log = spark_scale((v for _, vs in curves[m] for v in vs), m)
            finite = [(v, i) for i, v in enumerate(values) if v is not None]
            direction = higher_is_better(m)
            best_i = None
            if finite:
                if direction is None:
                    best_i = finite[-1][1]
                else:
                    best_i = (max if direction else min)(finite, key=lambda c: c[0])[1]
            line, pos = sparkline(values, lo, hi, mark=best_i, width=width, log=log)
            row.append(Cell(line or EMPTY, mark=pos))
            row.append(Cell(EMPTY if best_i is None else f"{fmt_number(values[best_i], m)} @ep{epochs[best_i]}"))
        rows.append(row)
    return Section("Curves (mean over seeds)", columns, rows, footer)


# ---------------------------------------------------------------------------------------
# ls.


def _sort_value(entry: RunEntry, key: SortKey) -> Any:
    return {
        SortKey.name: entry.name,
        SortKey.status: entry.status,
        SortKey.epochs: entry.epochs,
        SortKey.val_acc: entry.best_val_acc,
        SortKey.test_acc: entry.test_acc,
        SortKey.started: entry.started.replace(tzinfo=None) if entry.started else None,
        SortKey.duration: entry.duration_s,
    }[key]


def sort_entries(entries: Sequence[RunEntry], key: SortKey, reverse: bool = False) -> list[RunEntry]:
    """Accuracies best first, everything else ascending; `reverse` flips; missing values last."""
    descending = key in (SortKey.val_acc, SortKey.test_acc)
    if reverse:
        descending = not descending
    present = [e for e in entries if _sort_value(e, key) is not None]
    missing = [e for e in entries if _sort_value(e, key) is None]
    present.sort(key=lambda e: (_sort_value(e, key), e.name), reverse=descending)
    return present + missing


def ls_output(entries: Sequence[RunEntry], fmt: OutputFormat, console: Console) -> None:
    if fmt in (OutputFormat.csv, OutputFormat.json):
        console.out(records_text([e.as_dict() for e in entries], fmt), highlight=False, end="")
        return
    columns = ["name", "status", "epochs", "best val acc", "test acc", "started", "duration"]
    rows = [
        [
            Cell(e.name),
            Cell(e.status, style=STATUS_STYLE.get(e.status, "")),
            Cell(fmt_number(e.epochs)),
            Cell(fmt_number(e.best_val_acc, "acc")),
            Cell(fmt_number(e.test_acc, "acc")),
            Cell(e.started.strftime("%Y-%m-%d %H:%M:%S") if e.started else EMPTY),
            Cell(fmt_duration(e.duration_s)),
        ]
        for e in entries
    ]
    section = Section(f"{len(entries)} run{'' if len(entries) == 1 else 's'}", columns, rows)
    if fmt is OutputFormat.markdown:
        console.out(markdown_sections([section]), highlight=False, end="")
        return
    if not rows:
        console.print("no runs")
        return
    if len(rows) <= RICH_ROWS_MAX:
        render_sections([section], fmt, console)
        return
    # rich takes about a second for thousands of rows; plain aligned columns are instant
    widths = [max(len(columns[i]), *(len(r[i].text) for r in rows)) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    for row in rows:
        lines.append("  ".join(c.text.ljust(w) for c, w in zip(row, widths)).rstrip())
    console.out("\n".join(lines), highlight=False)


# ---------------------------------------------------------------------------------------
# show.

EPOCH_HEADERS = {
    "lr": "lr",
    "train_loss": "train loss",
    "train_acc": "train acc",
    "val_loss": "val loss",
    "val_acc": "val acc",
    "penalty": "penalty",
    "grad_norm": "grad norm",
    "clip_fraction": "clipped",
    "epoch_s": "s",
}


def show_report(run: Run, spark_width: int = SPARK_WIDTH) -> Report:
    """Everything `trickrun show` prints: config, summary, epochs, layers, curves, flags."""
    sections = [Section("Config", text=dump_yaml(run.config) if run.config else "(no config.yaml)\n",
                        language="yaml")]
    summary = dict(run.summary or {})
    summary_rows = [[Cell("run"), Cell(run.dirname)], [Cell("path"), Cell(str(run.path))],
                    [Cell("status"), Cell(run.status, style=STATUS_STYLE.get(run.status, ""))]]
    results = run.results()
    for key, label, _ in RESULT_ROWS[1:]:
        summary_rows.append([Cell(label), Cell(fmt_number(results[key], key))])
    for key, value in summary.items():
        if key in ("status", "best", "test", "epochs_run", "best_epoch", "wall_s"):
            continue
        text = json.dumps(value) if isinstance(value, (dict, list)) else fmt_config(value)
        summary_rows.append([Cell(key), Cell(text)])
    note = [] if run.summary else ["no summary.json: results are derived from metrics.jsonl"]
    sections.append(Section("Summary", ["field", "value"], summary_rows, note))

    best_i = run.best_index()
    # a column that holds nothing, or only zeros (no penalty, never clipped), is left out
    keys = [k for k in METRIC_KEYS if any(r.get(k) not in (None, 0, 0.0) for r in run.records)]
    epoch_rows = []
    for i, record in enumerate(run.records):
        row = [Cell(str(run.epochs[i]) + (" *" if i == best_i else ""), best=i == best_i)]
        row += [Cell(fmt_number(record.get(k), k)) for k in keys]
        epoch_rows.append(row)
    sections.append(Section("Epochs", ["epoch"] + [EPOCH_HEADERS.get(k, k) for k in keys], epoch_rows,
                            ["* best epoch"] if best_i is not None else ["no epochs recorded"]))

    layer_columns = ["epoch", "layer", "act mean", "act std", "dead", "sat.", "w norm", "g norm",
                     "upd ratio"]
    layer_rows = []
    for epoch, record in zip(run.epochs, run.records):
        for entry in record.get("layers") or ():
            if not isinstance(entry, dict):
                continue
            layer_rows.append([
                Cell(str(epoch)), Cell(str(entry.get("name"))),
                Cell(fmt_number(entry.get("act_mean"))), Cell(fmt_number(entry.get("act_std"))),
                Cell(_pct(entry.get("dead_frac"))), Cell(_pct(entry.get("saturated_frac"))),
                Cell(fmt_number(entry.get("weight_norm"))), Cell(fmt_number(entry.get("grad_norm"))),
                Cell(fmt_number(entry.get("update_ratio"))),
            ])
    if layer_rows:
        sections.append(Section("Layers", layer_columns, layer_rows,
                                ["dead: ReLU units never active on the probe batch; sat.: saturated "
                                 "tanh/sigmoid units; w/g norm: L2 norm of the weights and of their "
                                 "gradient; upd ratio: |update| / |weights|"]))

    curve_rows = []
    for m in ("val_acc", "val_loss", "train_loss", "lr"):
        values = run.series(m)
        lo, hi, log = spark_scale(values, m)
        line, pos = sparkline(values, lo, hi, mark=best_i, width=spark_width, log=log)
        curve_rows.append([Cell(m), Cell(line or EMPTY, mark=pos),
                           Cell(f"{fmt_number(lo, m)} … {fmt_number(hi, m)}")])
    sections.append(Section("Curves", ["metric", "curve", "range"], curve_rows,
                            ["the highlighted character (terminal only) is the best epoch"]))
    flags = diagnose(run)
    sections.append(Section("Diagnostics", ["flag"], [[Cell(f.text, style="bold red")] for f in flags],
                            ([] if flags else ["no flags"]) + [THRESHOLDS_NOTE]))
    record = {
        "run": run.dirname,
        "path": str(run.path),
        "status": run.status,
        "config": run.config,
        "summary": run.summary,
        "results": results,
        "flags": [f.text for f in flags],
        "epochs": run.records,
    }
    return Report(sections, [record])


def _pct(value: Any) -> str:
    return f"{value:.0%}" if isinstance(value, (int, float)) and not isinstance(value, bool) else EMPTY


def show_csv_records(run: Run) -> list[dict[str, Any]]:
    """One flat row per epoch: the scalar metrics, then `<layer>.<stat>` for every layer."""
    rows = []
    for epoch, record in zip(run.epochs, run.records):
        row = {"epoch": epoch}
        row.update({k: v for k, v in record.items() if k not in ("epoch", "layers")})
        for entry in record.get("layers") or ():
            if isinstance(entry, dict):
                name = entry.get("name")
                row.update({f"{name}.{k}": v for k, v in entry.items() if k != "name"})
        rows.append(row)
    return rows


def show_output(run: Run, fmt: OutputFormat, console: Console) -> None:
    if fmt is OutputFormat.json:
        console.out(to_json(show_report(run).records[0], indent=2), highlight=False)
    elif fmt is OutputFormat.csv:
        console.out(records_text(show_csv_records(run), fmt), highlight=False, end="")
    else:
        render_sections(show_report(run, spark_width(console)).sections, fmt, console)


def compare_output(report: Report, fmt: OutputFormat, console: Console) -> None:
    if fmt in (OutputFormat.csv, OutputFormat.json):
        console.out(records_text(report.records, fmt), highlight=False, end="")
    else:
        render_sections(report.sections, fmt, console)
