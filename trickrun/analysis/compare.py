"""`trickrun compare`: the analysis of several runs (analyze.py) laid out as sections of cells
(a terminal table or Markdown) and as records (CSV, JSON): config diff, results, sparkline
curves and gradient diagnostics (sections.py), per run (here) or, with `--group`, per seed group
(grouped.py). The results table has a narrow form for a small terminal (layout.py): one row per
run instead of one column per run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from ..rundir.reader import Ambiguous, Run, load_run, resolve_run, resolve_runs
from .analyze import DEFAULT_METRIC, Comparison, best_runs, compare_groups, compare_runs, metric_field
from .document import BEST_IN_BOLD
from .grouped import group_report
from .render import (EMPTY, RUN_COLUMNS_MAX, SPARK_MISSING, Cell, Report, Section, fmt_delta, fmt_number, orient,
                     status_cell)
from .sections import (
    EMPHASIS,
    at_best_note,
    baseline_header,
    curves_section,
    diagnostics_section,
    diff_section,
    emphasis_note,
    field_order,
    flags_summary,
    result_label,
    short_label,
)

__all__ = ["compare_report", "flags_summary", "load_compared"]

ENSEMBLE_NOTE = ("an ensemble trained nothing: the training keys its members have are left out of the diff "
                 "(compare its members for theirs), and it has no epochs or training time")


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
                   group: bool = False, all_keys: bool = False, width: int | None = None) -> Report:
    """Everything `trickrun compare` prints. `baseline` indexes `runs`; `width` is the
    terminal's (None: sparklines of the full SPARK_WIDTH)."""
    if group:
        return group_report(compare_groups(runs, baseline=baseline, metric=metric, all_keys=all_keys),
                            all_keys, width)
    analysis = compare_runs(runs, baseline=baseline, metric=metric, all_keys=all_keys)
    labels = [a.label for a in analysis.runs]
    shown = [baseline_header(label) if i == baseline and len(runs) > 1 else label for i, label in enumerate(labels)]
    diff = diff_section(analysis.diff, shown, all_keys, "run")
    if not all_keys and any(r.is_ensemble for r in runs):
        diff.footer.append(ENSEMBLE_NOTE)
    sections = [
        diff,
        _results_section(analysis, shown, runs),
        curves_section("Curves", "run", labels, [a.curves for a in analysis.runs], width,
                       [f"@best: as in Results, the value at the run's best epoch (highlighted in the terminal "
                        f"curve); {SPARK_MISSING} = no finite value"]),
        diagnostics_section(analysis.runs, analysis.layers),
    ]
    records = []
    for i, a in enumerate(analysis.runs):
        record: dict[str, Any] = {"run": a.run.dirname, "name": a.run.name, "path": str(a.run.path)}
        record.update({key: values[i] for key, values in analysis.diff})
        record.update({key: a.results.get(key) for key, _ in analysis.fields})
        record["flags"] = flags_summary(a.flags)
        records.append(record)
    return Report(sections, records)


# --- results -------------------------------------------------------------------------------


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


def _results_section(analysis: Comparison, names: list[str], runs: Sequence[Run]) -> Section:
    emphasised = metric_field(analysis.metric)[0]
    keys = [key for key, _ in analysis.fields]
    footer = [emphasis_note(analysis.metric), at_best_note(runs)]
    by_run = _results_by_run(analysis, names, emphasised, footer)
    if len(names) > RUN_COLUMNS_MAX:
        return by_run
    labels = [(f"{EMPHASIS} " if key == emphasised else "") + result_label(key) for key in keys]
    if len(names) > 1:
        footer = [f"best of each row {BEST_IN_BOLD}; (±) change against the baseline run "
                  f"{analysis.runs[analysis.baseline].label}"] + footer
    section = orient("Results", labels, names, _result_cells(analysis, emphasised), "", footer)
    section.narrow = by_run
    return section


def _results_by_run(analysis: Comparison, names: list[str], emphasised: str, notes: list[str]) -> Section:
    """One row per run, short column headers; the change against the baseline, which would not
    fit in every cell, in columns of its own for the two results that matter most."""
    keys = [key for key, _ in analysis.fields]
    cells = _result_cells(analysis, emphasised)
    headers = [(f"{EMPHASIS} " if key == emphasised else "") + short_label(key) for key in keys]
    footer = list(notes)
    if len(names) > 1:
        directed = {k for k, d in analysis.fields if d is not None}
        for key in dict.fromkeys([emphasised, "test_acc"]):
            if key in keys and key in directed:
                headers.append(f"Δ {short_label(key)}")
                cells.append([Cell(c.note.strip("()") or EMPTY) for c in cells[keys.index(key)]])
        footer.insert(0, f"best of each column {BEST_IN_BOLD}; Δ: change against the baseline run "
                         f"{analysis.runs[analysis.baseline].label}")
    rows = [[Cell(name)] + [_without_note(row[c]) for row in cells] for c, name in enumerate(names)]
    by_key = dict(zip(keys, headers))
    return Section("Results", ["run"] + headers, rows, footer,
                   optional=[by_key[k] for k in field_order(keys, emphasised)])


def _without_note(cell: Cell) -> Cell:
    return Cell(cell.text, best=cell.best, style=cell.style, mark=cell.mark)


