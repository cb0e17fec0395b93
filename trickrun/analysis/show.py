"""`trickrun show`: one run in full (config, summary, per-epoch metrics, per-layer statistics,
curves marked at the best epoch, diagnostic flags), as a table, Markdown, CSV or JSON."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from ..config import dump_yaml
from ..metrics import METRIC_KEYS
from ..rundir.reader import Run
from .analyze import RESULT_FIELDS, diagnose, flatten, run_curve
from .sections import THRESHOLDS_NOTE, at_best_note, result_label
from .layout import GAP
from .render import (
    EMPTY,
    SPARK_WIDTH,
    Cell,
    OutputFormat,
    Report,
    Section,
    fmt_column,
    fmt_config,
    fmt_number,
    fmt_seconds,
    report_output,
    spark_scale,
    sparkline,
    status_cell,
)

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
# A narrow terminal leaves these out first (the epoch and the losses and accuracies stay).
EPOCH_OPTIONAL = ["s", "clipped", "penalty", "lr", "grad norm", "train acc"]
LAYER_COLUMNS = ["epoch", "layer", "act mean", "act std", "dead", "sat.", "w norm", "g norm", "upd ratio"]
LAYER_KEYS = ("act_mean", "act_std", "dead_frac", "saturated_frac", "weight_norm", "grad_norm", "update_ratio")
LAYER_OPTIONAL = ["act std", "act mean", "upd ratio", "w norm"]
LAYER_NOTE = ("dead: ReLU units never active on the probe batch; sat.: saturated tanh/sigmoid units; "
              "w/g norm: L2 norm of the weights and of their gradient; upd ratio: |update| / |weights|")
CURVE_METRICS = ("val_acc", "val_loss", "train_loss", "lr")
# summary.json fields the results rows already show
_SHOWN = ("status", "best", "test", "epochs_run", "best_epoch", "wall_s")
# summary.json fields given a label of their own (the others show their key)
SUMMARY_LABELS = {"train_s": "train time (s)", "stop_reason": "stop reason", "stopped_epoch": "stopped epoch"}


def show_report(run: Run, width: int | None = None) -> Report:
    """Everything `trickrun show` prints: config, summary, epochs, layers, curves, flags;
    `width`: the terminal's, for the sparklines (None: SPARK_WIDTH)."""
    results = run.results()
    flags = diagnose(run)
    sections = [Section("Config", text=dump_yaml(run.config) if run.config else "(no config.yaml)\n",
                        language="yaml"),
                _summary_section(run, results), _epochs_section(run)]
    layers = _layers_section(run)
    if layers is not None:
        sections.append(layers)
    sections.append(_curves_section(run, width))
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


def _summary_section(run: Run, results: dict[str, Any]) -> Section:
    rows = [[Cell("run"), Cell(run.dirname)], [Cell("path"), Cell(str(run.path))],
            [Cell("status"), status_cell(run.status)]]
    rows += [[Cell(result_label(key)), Cell(fmt_number(results[key], key))] for key, _ in RESULT_FIELDS[1:]]
    rows += [[Cell(label), Cell(text)] for label, text in summary_fields(run.summary or {})]
    note = [at_best_note([run])] + ([] if run.summary else ["no summary.json: results are derived from metrics.jsonl"])
    return Section("Summary", ["field", "value"], rows, note)


def summary_fields(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary's other fields, readable: nested ones one row per dotted key
    (`versions.numpy`), seconds as the results show them, a missing value as —."""
    rest = {}
    for key, value in summary.items():
        if key in _SHOWN:
            continue
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            rest.update({f"{key}[{i}]": v for i, v in enumerate(value)})  # an ensemble's members
        else:
            rest[key] = value
    rows = []
    for key, value in flatten(rest).items():
        if key.endswith("_s") and isinstance(value, (int, float)) and not isinstance(value, bool):
            text = fmt_seconds(value)
        elif value is None:
            text = EMPTY
        elif isinstance(value, (list, dict)):
            text = ", ".join(fmt_config(v) for v in value) if isinstance(value, list) else fmt_config(value)
        elif isinstance(value, float):
            text = fmt_number(value, key)  # a loss or accuracy as the results rows write it
        else:
            text = fmt_config(value)
        rows.append((SUMMARY_LABELS.get(key, key.replace("_s", " (s)") if key.endswith("_s") else key), text))
    return rows


def _epochs_section(run: Run) -> Section:
    best_i = run.best_index()
    # a column that holds nothing, or only zeros (no penalty, never clipped), is left out
    keys = [k for k in METRIC_KEYS if any(r.get(k) not in (None, 0, 0.0) for r in run.records)]
    columns = [fmt_column([r.get(k) for r in run.records], k) for k in keys]
    rows = []
    for i in range(len(run.records)):
        row = [Cell(str(run.epochs[i]) + (" *" if i == best_i else ""), best=i == best_i)]
        rows.append(row + [Cell(column[i]) for column in columns])
    note = ("* best epoch" if best_i is not None else "no epochs recorded" if not rows
            else "no epoch marked: the best epoch has no valid record here")
    return Section("Epochs", ["epoch"] + [EPOCH_HEADERS.get(k, k) for k in keys], rows, [note],
                   optional=EPOCH_OPTIONAL)


def _layers_section(run: Run) -> Section | None:
    entries = [(epoch, entry) for epoch, record in zip(run.epochs, run.records)
               for entry in record.get("layers") or () if isinstance(entry, dict)]
    if not entries:
        return None
    columns = {key: fmt_column([entry.get(key) for _, entry in entries]) for key in LAYER_KEYS}
    columns["dead_frac"] = [_pct(entry.get("dead_frac")) for _, entry in entries]
    columns["saturated_frac"] = [_pct(entry.get("saturated_frac")) for _, entry in entries]
    rows = [[Cell(str(epoch)), Cell(str(entry.get("name")))] + [Cell(columns[key][i]) for key in LAYER_KEYS]
            for i, (epoch, entry) in enumerate(entries)]
    return Section("Layers", LAYER_COLUMNS, rows, [LAYER_NOTE], optional=LAYER_OPTIONAL)


def _curves_section(run: Run, width: int | None) -> Section:
    curves = [run_curve(run, m) for m in CURVE_METRICS]
    scales = [spark_scale(curve.values, m) for curve, m in zip(curves, CURVE_METRICS)]
    ranges = [" … ".join(fmt_column([lo, hi], m)) if any(v is not None for v in curve.values) else EMPTY
              for curve, (lo, hi, _), m in zip(curves, scales, CURVE_METRICS)]
    spark = SPARK_WIDTH
    if width is not None:  # what the metric and range columns leave of the terminal
        fixed = max(map(len, CURVE_METRICS)) + max(map(len, ranges)) + 2 * GAP
        spark = max(8, min(SPARK_WIDTH, width - fixed))
    rows = []
    for curve, m, (lo, hi, log), text in zip(curves, CURVE_METRICS, scales, ranges):
        line, pos = sparkline(curve.values, lo, hi, mark=curve.best, width=spark, log=log)
        rows.append([Cell(m), Cell(line or EMPTY, mark=pos), Cell(text)])
    return Section("Curves", ["metric", "curve", "range"], rows,
                   ["the highlighted character (terminal only) is the best epoch"])


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
    """JSON: the run as one object; CSV: one row per epoch; table and Markdown: the sections."""
    report = show_report(run, console.width)
    report_output(Report(report.sections, show_csv_records(run), document=report.records[0]), fmt, console)
