"""`trickrun compare`: the analysis of several runs (analyze.py) laid out as sections of cells
(a terminal table or Markdown) and as records (CSV, JSON): config diff, results, sparkline
curves and gradient diagnostics, per run or, with `--group`, per seed group with Welch's test.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..errors import ConfigError
from ..rundir.reader import Ambiguous, Run, load_run, resolve_run, resolve_runs
from .analyze import (
    DEAD_FRACTION,
    DEFAULT_METRIC,
    EXPLODING_GRAD_NORM,
    VANISHING_RATIO,
    Comparison,
    Curve,
    Flag,
    GroupComparison,
    RunAnalysis,
    best_flags,
    best_runs,
    compare_groups,
    compare_runs,
    metric_field,
)
from .render import (
    EMPTY,
    RUN_COLUMNS_MAX,
    SPARK_CHARS,
    SPARK_MISSING,
    SPARK_WIDTH,
    Cell,
    Report,
    Section,
    fmt_config,
    fmt_delta,
    fmt_number,
    orient,
    spark_scale,
    sparkline,
    status_cell,
)
from .stats import SIGNIFICANCE_LEVEL, WelchResult

RESULT_LABELS = {
    "status": "status",
    "epochs_run": "epochs run",
    "best_epoch": "best epoch",
    "best_val_acc": "best val acc",
    "best_val_loss": "best val loss",
    "test_acc": "test acc",
    "test_loss": "test loss",
    "wall_s": "wall time (s)",
    "s_per_epoch": "s / epoch",
}
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
THRESHOLDS_NOTE = (
    f"flags: vanishing = layer grad norm < {VANISHING_RATIO:g} × the largest layer's; "
    f"exploding = grad norm > {EXPLODING_GRAD_NORM:g} or non-finite; "
    f"dead/saturated = > {DEAD_FRACTION:.0%} of units at the last epoch"
)


def result_label(key: str) -> str:
    """"best_train_loss" -> "best train_loss": a metric's own field keeps the metric's name."""
    return RESULT_LABELS.get(key) or key.replace("_", " ", 1)


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


def load_compared(specs: Sequence[str], baseline: str | None, root: Path,
                  note: Callable[[str], None] | None = None) -> tuple[list[Run], int]:
    """The runs `specs` name and the index of the baseline among them: the run `baseline`
    names (put first when the specs do not include it), else the first. A name that several
    runs share means the newest of them (`note` is told)."""
    paths = resolve_runs(specs, root, ambiguous=Ambiguous.NEWEST, note=note)
    base_index = 0
    if baseline is not None:
        base_paths = [p.resolve() for p in resolve_run(baseline, root, ambiguous=Ambiguous.NEWEST, note=note)]
        if len(base_paths) != 1:
            raise ConfigError(f"--baseline {baseline!r} matches {len(base_paths)} runs; name one run")
        if base_paths[0] not in paths:
            paths.insert(0, base_paths[0])
        base_index = paths.index(base_paths[0])
    return [load_run(p) for p in paths], base_index


def compare_report(runs: Sequence[Run], *, baseline: int = 0, metric: str = DEFAULT_METRIC,
                   group: bool = False, all_keys: bool = False, spark_width: int = SPARK_WIDTH) -> Report:
    """Everything `trickrun compare` prints. `baseline` indexes `runs`."""
    if group:
        return _group_report(compare_groups(runs, baseline=baseline, metric=metric, all_keys=all_keys),
                             all_keys, spark_width)
    analysis = compare_runs(runs, baseline=baseline, metric=metric, all_keys=all_keys)
    labels = [a.label for a in analysis.runs]
    shown = [f"{label} (baseline)" if i == baseline and len(runs) > 1 else label
             for i, label in enumerate(labels)]
    sections = [
        _diff_section(analysis.diff, shown, all_keys),
        _results_section(analysis, shown),
        _curves_section(analysis.runs, spark_width),
        _diagnostics_section(analysis.runs, analysis.layers),
    ]
    records = []
    for i, a in enumerate(analysis.runs):
        record: dict[str, Any] = {"run": a.run.dirname, "name": a.run.name, "path": str(a.run.path)}
        record.update({key: values[i] for key, values in analysis.diff})
        record.update({key: a.results.get(key) for key, _ in analysis.fields})
        record["flags"] = flags_summary(a.flags)
        records.append(record)
    return Report(sections, records)


def _diff_section(diff: list[tuple[str, list[Any]]], names: list[str], all_keys: bool) -> Section:
    title = "Config" if all_keys else "Config diff"
    if not diff:
        if len(names) == 1:
            note = ("no config.yaml" if all_keys
                    else "one run: nothing to compare its config with (--all lists it)")
        else:
            note = "the configs are identical" + ("" if all_keys else " (--all lists them)")
        return Section(title, footer=[note])
    cells = [[Cell(fmt_config(v)) for v in values] for _, values in diff]
    return orient(title, [k for k, _ in diff], names, cells, "key")


def _result_cells(analysis: Comparison, emphasised: str) -> list[list[Cell]]:
    """One row per results field, one cell per run, with its change against the baseline."""
    results = [a.results for a in analysis.runs]
    base = analysis.baseline
    cells = []
    for key, direction in analysis.fields:
        if key == "status":
            cells.append([status_cell(r[key]) for r in results])
            continue
        values = [r.get(key) for r in results]
        best = best_runs(results, key, direction)
        row = []
        for i, value in enumerate(values):
            note = ""
            if (direction is not None and i != base and isinstance(value, (int, float))
                    and isinstance(values[base], (int, float))):
                note = f"({fmt_delta(value - values[base], key)})"
            row.append(Cell(fmt_number(value, key), best=best[i], note=note,
                            style="bold" if key == emphasised else ""))
        cells.append(row)
    return cells


def _results_section(analysis: Comparison, names: list[str]) -> Section:
    emphasised = metric_field(analysis.metric)[0]
    cells = _result_cells(analysis, emphasised)
    many = len(names) > RUN_COLUMNS_MAX  # one row per run: short column headers
    labels = [("▶ " if key == emphasised else "")
              + (SHORT_LABELS.get(key, result_label(key)) if many else result_label(key))
              for key, _ in analysis.fields]
    baseline_label = analysis.runs[analysis.baseline].label
    footer = []
    if len(names) > 1 and many:
        # a change in every cell would not fit; give the two that matter as columns of their own
        keyed = dict(zip((k for k, _ in analysis.fields), cells))
        directed = {k for k, d in analysis.fields if d is not None}
        for key in dict.fromkeys([emphasised, "test_acc"]):
            if key in keyed and key in directed:
                labels.append(f"Δ {SHORT_LABELS.get(key, key)}")
                cells.append([Cell(c.note.strip("()") or EMPTY) for c in keyed[key]])
        for row in cells:
            for c in row:
                c.note = ""
        footer.append(f"best of each column in bold; Δ: change against the baseline run {baseline_label}")
    elif len(names) > 1:
        footer.append(f"best of each row in bold; (±) change against the baseline run {baseline_label}")
    return orient("Results", labels, names, cells, "", footer)


def _curve_cells(curve: Curve, scale: tuple[float, float, bool], width: int) -> list[Cell]:
    """The sparkline with its best epoch highlighted, and the value at that epoch."""
    lo, hi, log = scale
    line, pos = sparkline(curve.values, lo, hi, mark=curve.best, width=width, log=log)
    at_best = EMPTY
    if curve.best is not None:
        at_best = f"{fmt_number(curve.best_value, curve.metric)} @ep{curve.best_epoch}"
    return [Cell(line or EMPTY, mark=pos), Cell(at_best)]


def _curves_table(title: str, corner: str, labels: list[str], curves: list[dict[str, Curve]],
                  width: int, note: str) -> Section:
    """One row per run or group, two columns (curve, value at best) per metric."""
    metrics = list(curves[0]) if curves else []
    columns, footer, scales = [corner], [], {}
    for m in metrics:
        scales[m] = spark_scale((v for c in curves for v in c[m].values), m)
        lo, hi, log = scales[m]
        columns += [f"{m} curve", f"{m} @best"]
        footer.append(f"{m}{note}: {SPARK_CHARS[0]} {fmt_number(lo, m)} … "
                      f"{SPARK_CHARS[-1]} {fmt_number(hi, m)}" + (" (log scale)" if log else ""))
    rows = []
    for label, by_metric in zip(labels, curves):
        row = [Cell(label)]
        for m in metrics:
            row += _curve_cells(by_metric[m], scales[m], width)
        rows.append(row)
    return Section(title, columns, rows, footer)


def _curves_section(runs: Sequence[RunAnalysis], width: int) -> Section:
    section = _curves_table("Curves", "run", [a.label for a in runs], [a.curves for a in runs], width, "")
    section.footer.append(f"@best: the value at the run's best epoch (highlighted in the terminal curve); "
                          f"{SPARK_MISSING} = no finite value")
    return section


def _diagnostics_section(runs: Sequence[RunAnalysis], layers: list[str]) -> Section:
    columns = ["run"] + [f"{name} grad first → last" for name in layers] + ["flags"]
    rows = []
    for a in runs:
        row = [Cell(a.label)]
        for name in layers:
            first, last = a.grads[name]
            row.append(Cell(EMPTY if first is None else f"{first:.2e} → {last:.2e}"))
        row.append(Cell(flags_summary(a.flags) or "ok", style="bold red" if a.flags else "green"))
        rows.append(row)
    return Section("Diagnostics", columns, rows, [THRESHOLDS_NOTE])


# --- compare --group ---------------------------------------------------------------------


def _group_report(analysis: GroupComparison, all_keys: bool, width: int) -> Report:
    groups, base_g = analysis.groups, analysis.baseline
    names = [g.group.label + (" (baseline)" if i == base_g and len(groups) > 1 else "")
             for i, g in enumerate(groups)]
    sections = [
        _diff_section(analysis.diff, names, all_keys),
        _group_results_section(analysis, names),
        _curves_table("Curves (mean over seeds)", "group", [g.group.label for g in groups],
                      [g.curves for g in groups], width, " (mean over seeds)"),
        _diagnostics_section(analysis.runs, analysis.layers),
    ]
    records = []
    for i, g in enumerate(groups):
        record: dict[str, Any] = {"group": g.group.label, "runs": [r.dirname for r in g.group.runs],
                                  "n": len(g.group.runs), "seeds": [r.seed for r in g.group.runs],
                                  "status": _status_counts(g.results)}
        record.update({key: values[i] for key, values in analysis.diff})
        for key, _ in analysis.fields:
            record[f"{key}_mean"], record[f"{key}_sd"] = g.stats[key].mean, g.stats[key].sd
        if analysis.welch is not None:  # on the non-baseline group: its test acc minus the baseline's
            record.update(_welch_fields(analysis.welch if i != base_g else None))
        records.append(record)
    return Report(sections, records)


def _welch_fields(welch: WelchResult | None) -> dict[str, Any]:
    if welch is None:
        return dict.fromkeys(("welch_t", "welch_df", "welch_p", "beyond_seed_noise"))
    return {"welch_t": welch.t, "welch_df": welch.df, "welch_p": welch.p,
            "beyond_seed_noise": welch.significant}


def _group_results_section(analysis: GroupComparison, names: list[str]) -> Section:
    groups, base_g = analysis.groups, analysis.baseline
    cells = [[Cell(str(len(g.group.runs))) for g in groups],
             [Cell(", ".join(str(r.seed) for r in g.group.runs)) for g in groups],
             [Cell(_status_counts(g.results)) for g in groups]]
    for key, direction in analysis.fields:
        stats = [g.stats[key] for g in groups]
        best = best_flags([s.mean for s in stats], direction)
        base = stats[base_g].mean
        row = []
        for i, (mean, sd, _) in enumerate(stats):
            note = ""
            if direction is not None and i != base_g and mean is not None and base is not None:
                note = f"({fmt_delta(mean - base, key)})"
            text = fmt_number(mean, key) + (f" ± {fmt_number(sd, key)}" if sd is not None else "")
            row.append(Cell(text, best=best[i], note=note))
        cells.append(row)
    labels = ["n", "seeds", "status"] + [result_label(key) + " (mean ± sd)" for key, _ in analysis.fields]
    footer = ["mean ± sample standard deviation over the seeds of each group"]
    if len(groups) == 2:
        other, base = groups[1 - base_g].group.label, groups[base_g].group.label
        footer.append(welch_sentence(analysis.welch, other, base))
    elif len(groups) > 2:
        footer.append("significance is tested only when exactly two groups are compared")
    return orient("Results by group", labels, names, cells, "", footer)


def _status_counts(results: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    return ", ".join(f"{k} {v}" if len(results) > 1 else k for k, v in counts.items())


def welch_sentence(result: WelchResult | None, other: str, base: str) -> str:
    if result is None:
        return ("test acc: cannot tell a difference from seed noise; each group needs at least "
                "2 runs with a test accuracy")
    verdict = "larger than" if result.significant else "not larger than"
    return (f"test acc {other} − {base} = {fmt_delta(result.mean_a - result.mean_b, 'acc')}: "
            f"{verdict} the seed-to-seed noise (Welch's t = {result.t:.3g}, df = {result.df:.3g}, "
            f"two-sided p = {result.p:.3g} {'<' if result.significant else '≥'} {SIGNIFICANCE_LEVEL})")
