"""`trickrun compare --group`: runs that differ only in seed folded into groups, labelled by the
config values that differ between the groups (the sweep leaderboard's labels), summarised as
mean ± sd and n, each judged against the baseline's group by the rule of significance.py.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from .analyze import GroupComparison, best_flags, metric_field
from .document import BEST_IN_BOLD
from .sections import (
    EMPHASIS,
    at_best_note,
    baseline_header,
    curves_section,
    diagnostics_section,
    diff_section,
    emphasis_note,
    field_order,
    result_label,
    short_label,
)
from .render import RUN_COLUMNS_MAX, Cell, Report, Section, fmt_delta, fmt_number, orient
from .significance import Verdict, rule_line

SPREAD_NOTE = ("mean ± sample standard deviation over the finished runs of each group (n; an interrupted, "
               "running or stale run is in its status, not in its statistics; (n=k): only k of them have "
               "the value, as a run that diverged in its first epoch has none)")
VERDICT_LABEL = "test acc vs baseline"
MEAN_CURVE_NOTE = ("curves: the mean over the group's finished runs, at each epoch every one of them recorded; "
                   "@best: the best value of that mean, at its epoch (highlighted in the terminal curve)")


def group_report(analysis: GroupComparison, all_keys: bool, width: int | None) -> Report:
    groups, base_g = analysis.groups, analysis.baseline
    labels = [g.group.label for g in groups]
    names = [baseline_header(label) if i == base_g and len(groups) > 1 else label for i, label in enumerate(labels)]
    sections = [
        diff_section(analysis.diff, names, True, "group") if all_keys else _members_section(analysis),
        _results_section(analysis, names),
        curves_section("Curves (mean over seeds)", "group", labels, [g.curves for g in groups], width,
                       [MEAN_CURVE_NOTE], " (mean over seeds)"),
        diagnostics_section(analysis.runs, analysis.layers),
    ]
    records = []
    for i, g in enumerate(groups):
        record: dict[str, Any] = {"group": g.group.label, "runs": [r.dirname for r in g.group.runs],
                                  "n": len(g.counted), "seeds": [r.seed for r in g.group.runs],
                                  "status": _status_counts(g.results)}
        record.update({key: values[i] for key, values in analysis.diff})
        for key, _ in analysis.fields:
            record[f"{key}_mean"], record[f"{key}_sd"], record[f"{key}_n"] = g.stats[key]
        if len(groups) > 1:  # on each other group: its test acc against the baseline group's
            record.update(_verdict_fields(analysis.verdicts[i]))
        records.append(record)
    return Report(sections, records)


def _members_section(analysis: GroupComparison) -> Section:
    rows = [[Cell(g.group.label), Cell(str(len(g.group.runs))), Cell(", ".join(r.dirname for r in g.group.runs))]
            for g in analysis.groups]
    footer = ["each group: runs whose configs differ only in seed, labelled by the config values that differ "
              "between the groups (--all lists every key)"]
    return Section("Groups", ["group", "n", "runs"], rows, footer)


def _verdict_fields(verdict: Verdict | None) -> dict[str, Any]:
    welch = verdict.welch if verdict is not None else None
    if welch is None:
        return {"welch_t": None, "welch_df": None, "welch_p": None, "beyond_seed_noise": None,
                "verdict": None if verdict is None else verdict.word}
    return {"welch_t": welch.t, "welch_df": welch.df, "welch_p": welch.p,
            "beyond_seed_noise": welch.significant, "verdict": verdict.word}


def _field_cells(analysis: GroupComparison, notes: bool) -> list[list[Cell]]:
    """One row per results field, one cell per group: mean ± sd, and the change of the mean
    against the baseline group's when `notes`."""
    groups, base_g = analysis.groups, analysis.baseline
    cells = []
    for key, direction in analysis.fields:
        stats = [g.stats[key] for g in groups]
        best = best_flags([s.mean for s in stats], direction)
        base = stats[base_g].mean
        row = []
        for i, (mean, sd, n) in enumerate(stats):
            note = ""
            if notes and direction is not None and i != base_g and mean is not None and base is not None:
                note = f"({fmt_delta(mean - base, key)})"
            text = fmt_number(mean, key) + (f" ± {fmt_number(sd, key)}" if sd is not None else "")
            if mean is not None and n != len(groups[i].counted):  # a finished run without this value
                text += f" (n={n})"
            row.append(Cell(text, best=best[i], note=note))
        cells.append(row)
    return cells


def _verdict_cells(analysis: GroupComparison) -> list[Cell]:
    return [Cell("baseline" if v is None else str(v), style={"better": "green", "worse": "red"}.get(
        v.word if v else "", "")) for v in analysis.verdicts]


def _results_section(analysis: GroupComparison, names: list[str]) -> Section:
    groups, base_g = analysis.groups, analysis.baseline
    emphasised = metric_field(analysis.metric)[0]
    keys = [key for key, _ in analysis.fields]
    footer = [SPREAD_NOTE, emphasis_note(analysis.metric), at_best_note([a.run for a in analysis.runs])]
    if len(groups) > 1:
        footer.insert(1, rule_line("test acc", f"the baseline group ({groups[base_g].group.label})"))
    plain = [(f"{EMPHASIS} " if key == emphasised else "") + result_label(key) for key in keys]
    by_group = _results_by_group(analysis, keys, emphasised, footer)
    if len(groups) > RUN_COLUMNS_MAX:
        return by_group
    cells = [[Cell(str(len(g.counted))) for g in groups],
             [Cell(", ".join(str(r.seed) for r in g.group.runs)) for g in groups],
             [Cell(_status_counts(g.results)) for g in groups]] + _field_cells(analysis, notes=True)
    labels = ["n", "seeds", "status"] + [f"{label} (mean ± sd)" for label in plain]
    if len(groups) > 1:
        cells.append(_verdict_cells(analysis))
        labels.append(VERDICT_LABEL)
        footer = [f"best of each row {BEST_IN_BOLD}; (±) change of the mean against the baseline group"] + footer
    section = orient("Results by group", labels, names, cells, "", footer)
    section.narrow = by_group
    return section


def _results_by_group(analysis: GroupComparison, keys: list[str], emphasised: str, footer: list[str]) -> Section:
    groups = analysis.groups
    headers = ["n", "seeds", "status"] + [(f"{EMPHASIS} " if k == emphasised else "") + short_label(k) for k in keys]
    columns = [[Cell(str(len(g.counted))) for g in groups],
               [Cell(", ".join(str(r.seed) for r in g.group.runs)) for g in groups],
               [Cell(_status_counts(g.results)) for g in groups]] + _field_cells(analysis, notes=False)
    if len(groups) > 1:
        headers.append(VERDICT_LABEL)
        columns.append(_verdict_cells(analysis))
    rows = [[Cell(g.group.label)] + [column[i] for column in columns] for i, g in enumerate(groups)]
    by_key = dict(zip(keys, headers[3:]))
    optional = ["seeds", "status"] + [by_key[k] for k in field_order(keys, emphasised)]
    return Section("Results by group", ["group"] + headers, rows,
                   [f"best of each column {BEST_IN_BOLD}"] + footer, optional=optional)


def _status_counts(results: Sequence[Mapping[str, Any]]) -> str:
    counts: dict[str, int] = {}
    for r in results:
        counts[str(r["status"])] = counts.get(str(r["status"]), 0) + 1
    return ", ".join(f"{k} {v}" if len(results) > 1 else k for k, v in counts.items())
