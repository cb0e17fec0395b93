"""`trickrun show`: one run in full (config, summary, per-epoch metrics, per-layer statistics,
curves marked at the best epoch, diagnostic flags), as a table, Markdown, CSV or JSON."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Console

from ..config import dump_yaml
from ..metrics import METRIC_KEYS
from ..rundir.reader import Run
from .analyze import RESULT_FIELDS, diagnose, run_curve
from .compare import THRESHOLDS_NOTE, result_label
from .render import (
    EMPTY,
    SPARK_WIDTH,
    Cell,
    OutputFormat,
    Report,
    Section,
    fmt_config,
    fmt_number,
    report_output,
    spark_scale,
    spark_width,
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
LAYER_COLUMNS = ["epoch", "layer", "act mean", "act std", "dead", "sat.", "w norm", "g norm", "upd ratio"]
LAYER_NOTE = ("dead: ReLU units never active on the probe batch; sat.: saturated tanh/sigmoid units; "
              "w/g norm: L2 norm of the weights and of their gradient; upd ratio: |update| / |weights|")
CURVE_METRICS = ("val_acc", "val_loss", "train_loss", "lr")
# summary.json fields the results rows already show
_SHOWN = ("status", "best", "test", "epochs_run", "best_epoch", "wall_s")


def show_report(run: Run, spark_width: int = SPARK_WIDTH) -> Report:
    """Everything `trickrun show` prints: config, summary, epochs, layers, curves, flags."""
    results = run.results()
    flags = diagnose(run)
    sections = [Section("Config", text=dump_yaml(run.config) if run.config else "(no config.yaml)\n",
                        language="yaml"),
                _summary_section(run, results), _epochs_section(run)]
    layers = _layers_section(run)
    if layers is not None:
        sections.append(layers)
    sections.append(_curves_section(run, spark_width))
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
    for key, value in (run.summary or {}).items():
        if key not in _SHOWN:
            text = json.dumps(value) if isinstance(value, (dict, list)) else fmt_config(value)
            rows.append([Cell(key), Cell(text)])
    note = [] if run.summary else ["no summary.json: results are derived from metrics.jsonl"]
    return Section("Summary", ["field", "value"], rows, note)


def _epochs_section(run: Run) -> Section:
    best_i = run.best_index()
    # a column that holds nothing, or only zeros (no penalty, never clipped), is left out
    keys = [k for k in METRIC_KEYS if any(r.get(k) not in (None, 0, 0.0) for r in run.records)]
    rows = []
    for i, record in enumerate(run.records):
        row = [Cell(str(run.epochs[i]) + (" *" if i == best_i else ""), best=i == best_i)]
        row += [Cell(fmt_number(record.get(k), k)) for k in keys]
        rows.append(row)
    return Section("Epochs", ["epoch"] + [EPOCH_HEADERS.get(k, k) for k in keys], rows,
                   ["* best epoch"] if best_i is not None else ["no epochs recorded"])


def _layers_section(run: Run) -> Section | None:
    rows = []
    for epoch, record in zip(run.epochs, run.records):
        for entry in record.get("layers") or ():
            if not isinstance(entry, dict):
                continue
            rows.append([
                Cell(str(epoch)), Cell(str(entry.get("name"))),
                Cell(fmt_number(entry.get("act_mean"))), Cell(fmt_number(entry.get("act_std"))),
                Cell(_pct(entry.get("dead_frac"))), Cell(_pct(entry.get("saturated_frac"))),
                Cell(fmt_number(entry.get("weight_norm"))), Cell(fmt_number(entry.get("grad_norm"))),
                Cell(fmt_number(entry.get("update_ratio"))),
            ])
    return Section("Layers", LAYER_COLUMNS, rows, [LAYER_NOTE]) if rows else None


def _curves_section(run: Run, width: int) -> Section:
    rows = []
    for m in CURVE_METRICS:
        curve = run_curve(run, m)
        lo, hi, log = spark_scale(curve.values, m)
        line, pos = sparkline(curve.values, lo, hi, mark=curve.best, width=width, log=log)
        rows.append([Cell(m), Cell(line or EMPTY, mark=pos),
                     Cell(f"{fmt_number(lo, m)} … {fmt_number(hi, m)}")])
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
    report = show_report(run, spark_width(console))
    report_output(Report(report.sections, show_csv_records(run), document=report.records[0]), fmt, console)
