"""The sections `trickrun compare` prints both per run (compare.py) and per seed group
(grouped.py): the config diff, sparkline curves and gradient diagnostics, each with a narrow form
for a small terminal (layout.py), and the labels and legends the results tables share.
"""

from __future__ import annotations

from typing import Any, Sequence

from ..rundir.reader import Run
from .analyze import DEAD_FRACTION, EXPLODING_GRAD_NORM, VANISHING_RATIO, Curve, Flag, RunAnalysis, label_value
from .layout import GAP
from .render import (
    EMPTY,
    SPARK_CHARS,
    SPARK_WIDTH,
    Cell,
    Section,
    fmt_config,
    fmt_number,
    orient,
    spark_scale,
    sparkline,
)

RESULT_LABELS = {
    "status": "status",
    "epochs_run": "epochs run",
    "best_epoch": "best epoch",
    "best_val_acc": "val acc @best",
    "best_val_loss": "val loss @best",
    "test_acc": "test acc",
    "test_loss": "test loss",
    "wall_s": "wall time (s)",
    "s_per_epoch": "s / epoch",
}
# Column headers when runs are rows (many runs, or a narrow terminal).
SHORT_LABELS = {
    "epochs_run": "epochs",
    "best_epoch": "best epoch",
    "wall_s": "wall s",
    "s_per_epoch": "s/epoch",
}
# Results by importance: the last are left out first when a terminal is too narrow for all.
IMPORTANCE = ("test_acc", "status", "best_val_acc", "best_val_loss", "epochs_run", "best_epoch", "test_loss",
              "wall_s", "s_per_epoch")
EMPHASIS = "▶"
THRESHOLDS_NOTE = (
    f"flags: vanishing = layer grad norm < {VANISHING_RATIO:g} × the largest layer's; "
    f"exploding = grad norm > {EXPLODING_GRAD_NORM:g} or non-finite; "
    f"dead/saturated = > {DEAD_FRACTION:.0%} of units at the last epoch"
)


def result_label(key: str) -> str:
    """"best_train_loss" -> "best train_loss": a metric's own field keeps the metric's name."""
    return RESULT_LABELS.get(key) or key.replace("_", " ", 1)


def short_label(key: str) -> str:
    return SHORT_LABELS.get(key) or result_label(key)


def baseline_header(label: str) -> str:
    """The baseline's column header: its label marked, unless the label already says it (a run
    named baseline, `baseline s0`)."""
    return label if label.split()[:1] == ["baseline"] else f"{label} (baseline)"


def at_best_note(runs: Sequence[Run]) -> str:
    monitors = sorted({r.monitor() for r in runs})
    by = f"by early_stopping.monitor, {monitors[0]}" if len(monitors) == 1 else "by each run's early_stopping.monitor"
    return f"@best: at the best epoch, the one early stopping kept ({by}); another epoch may have been better"


def emphasis_note(metric: str) -> str:
    return f"{EMPHASIS}: the metric --metric emphasises ({metric})"


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


def field_order(keys: Sequence[str], emphasised: str) -> list[str]:
    """The results a narrow terminal may leave out, least important first: all but the
    emphasised metric and test accuracy."""
    rank = {key: i for i, key in enumerate((emphasised, *IMPORTANCE))}
    return sorted((k for k in keys if k not in (emphasised, "test_acc")), key=lambda k: rank.get(k, len(rank)),
                  reverse=True)


# --- config diff ---------------------------------------------------------------------------


def diff_section(diff: list[tuple[str, list[Any]]], names: list[str], all_keys: bool, corner: str) -> Section:
    """The differing keys, one row per key and a column per run (or group); narrow: one row per
    run, its values as `key=value` words that wrap."""
    title = "Config" if all_keys else "Config diff"
    if not diff:
        if len(names) == 1:
            note = ("no config.yaml" if all_keys
                    else "one run: nothing to compare its config with (--all lists it)")
        else:
            note = "the configs are identical" + ("" if all_keys else " (--all lists them)")
        return Section(title, footer=[note])
    cells = [[Cell(fmt_config(v)) for v in values] for _, values in diff]
    section = orient(title, [k for k, _ in diff], names, cells, "key")
    section.narrow = Section(title, [corner, "config"],
                             [[Cell(name), Cell(" ".join(f"{key}={label_value(values[i])}" for key, values in diff))]
                              for i, name in enumerate(names)])
    return section


# --- curves --------------------------------------------------------------------------------


def _at_best(curve: Curve) -> str:
    if curve.best is None:
        return EMPTY
    return f"{fmt_number(curve.best_value, curve.metric)} @ep{curve.best_epoch}"


def _spark_width(width: int | None, fixed: int, curves: int) -> int:
    """The widest sparkline (up to SPARK_WIDTH, at least 8) that lets `curves` of them share
    what `fixed` cells of other columns leave of the terminal's width."""
    if width is None:
        return SPARK_WIDTH
    return max(8, min(SPARK_WIDTH, (width - fixed) // max(1, curves)))


def _spark_cell(curve: Curve, scale: tuple[float, float, bool], width: int) -> Cell:
    lo, hi, log = scale
    line, pos = sparkline(curve.values, lo, hi, mark=curve.best, width=width, log=log)
    return Cell(line or EMPTY, mark=pos)


def curves_section(title: str, corner: str, labels: list[str], curves: list[dict[str, Curve]],
                   width: int | None, notes: list[str], scale_note: str = "") -> Section:
    """One row per run or group, two columns (curve, value at best) per metric; narrow: one row
    per run and metric, with a longer curve."""
    metrics = list(curves[0]) if curves else []
    scales = {m: spark_scale((v for c in curves for v in c[m].values), m) for m in metrics}
    # a scale only for a metric some run has a value of (runs with no epochs, ensembles: none)
    footer = [f"{m}{scale_note}: {SPARK_CHARS[0]} {fmt_number(scales[m][0], m)} … "
              f"{SPARK_CHARS[-1]} {fmt_number(scales[m][1], m)}" + (" (log scale)" if scales[m][2] else "")
              for m in metrics if any(v is not None for c in curves for v in c[m].values)]
    footer += notes
    label_width = max((len(word) for label in labels for word in label.split()), default=0)
    at_best = max((len(_at_best(c[m])) for c in curves for m in metrics), default=0)
    wide = _spark_width(width, label_width + len(metrics) * (at_best + 2 * GAP), len(metrics))
    columns, rows = [corner], []
    for m in metrics:
        columns += [f"{m} curve", f"{m} @best"]
    for label, by_metric in zip(labels, curves):
        row = [Cell(label)]
        for m in metrics:
            row += [_spark_cell(by_metric[m], scales[m], wide), Cell(_at_best(by_metric[m]))]
        rows.append(row)
    long = _spark_width(width, label_width + max(map(len, metrics), default=0) + at_best + 3 * GAP, 1)
    narrow_rows = []
    for label, by_metric in zip(labels, curves):
        for j, m in enumerate(metrics):
            narrow_rows.append([Cell(label if j == 0 else ""), Cell(m), _spark_cell(by_metric[m], scales[m], long),
                                Cell(_at_best(by_metric[m]))])
    narrow = Section(title, [corner, "metric", "curve", "@best"], narrow_rows, footer)
    return Section(title, columns, rows, footer, narrow=narrow)


# --- diagnostics ---------------------------------------------------------------------------


def _grad_text(first: float | None, last: float | None) -> str:
    return EMPTY if first is None else f"{first:.2e} → {last:.2e}"


def diagnostics_section(runs: Sequence[RunAnalysis], layers: list[str]) -> Section:
    """Per run, each layer's gradient norm at the first and last epoch, and the flags; narrow:
    one row per run and layer, the run's flags beside its first layer."""
    columns = ["run"] + [f"{name} grad first → last" for name in layers] + ["flags"]
    rows, narrow_rows = [], []
    for a in runs:
        flags = Cell(flags_summary(a.flags) or "ok", style="bold red" if a.flags else "green")
        rows.append([Cell(a.label)] + [Cell(_grad_text(*a.grads[name])) for name in layers] + [flags])
        own = [name for name in layers if a.grads[name][0] is not None] or [EMPTY]  # a shallower run: its layers
        for j, name in enumerate(own):
            grads = a.grads.get(name, (None, None))
            narrow_rows.append([Cell(a.label if j == 0 else ""), Cell(name), Cell(_grad_text(*grads)),
                                flags if j == 0 else Cell("")])
    narrow = Section("Diagnostics", ["run", "layer", "grad first → last", "flags"], narrow_rows, [THRESHOLDS_NOTE])
    return Section("Diagnostics", columns, rows, [THRESHOLDS_NOTE], narrow=narrow)
