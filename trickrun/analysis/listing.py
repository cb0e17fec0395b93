"""`trickrun ls`: one row per run from summary.json alone, sorted, as a table, Markdown, CSV
or JSON."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Sequence

from rich.console import Console

from ..choices import SortKey
from ..rundir.reader import RunEntry
from .render import EMPTY, Cell, OutputFormat, Report, Section, fmt_duration, fmt_number, report_output, status_cell

COLUMNS = ["name", "status", "epochs", "val acc @best", "test acc", "started", "duration"]
OPTIONAL = ["started", "duration", "epochs", "val acc @best"]  # left out first on a narrow terminal
SHORT = {"epochs": "ep"}
AT_BEST_NOTE = ("val acc @best: at the run's best epoch, the one early stopping kept (by early_stopping.monitor); "
                "it may have been higher at another")


def local_time(started: datetime | None) -> datetime | None:
    """A start time on this machine's clock, without an offset: one with an offset (summary.json
    records it) converted, one without (a directory name's stamp) taken as local already, so
    runs started under different time zones sort and read in the order they began."""
    if started is None or started.tzinfo is None:
        return started
    return started.astimezone().replace(tzinfo=None)


def _sort_value(entry: RunEntry, key: SortKey) -> Any:
    return {
        SortKey.name: entry.name,
        SortKey.status: entry.status,
        SortKey.epochs: entry.epochs,
        SortKey.val_acc: entry.best_val_acc,
        SortKey.test_acc: entry.test_acc,
        SortKey.started: local_time(entry.started),
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


def _row(e: RunEntry) -> list[Cell]:
    return [
        Cell(e.name),
        status_cell(e.status),
        Cell(fmt_number(e.epochs)),
        Cell(fmt_number(e.best_val_acc, "acc")),
        Cell(fmt_number(e.test_acc, "acc")),
        Cell(local_time(e.started).strftime("%Y-%m-%d %H:%M:%S") if e.started else EMPTY),
        Cell(fmt_duration(e.duration_s)),
    ]


def ls_output(entries: Sequence[RunEntry], fmt: OutputFormat, console: Console) -> None:
    section = Section(f"{len(entries)} run{'' if len(entries) == 1 else 's'}", COLUMNS, [_row(e) for e in entries],
                      [AT_BEST_NOTE], empty="no runs", short=SHORT, optional=OPTIONAL)
    report_output(Report([section], [e.as_dict() for e in entries]), fmt, console)
