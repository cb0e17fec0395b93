"""What `trickrun sweep` shows on stderr while it runs: one overall bar (cells done, failed,
running, time left) and a line per finished cell on a terminal; the lines alone otherwise;
nothing with --quiet."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress

from ..display import QuietOnFailure, bar_columns, fitted_line, info_room
from .driver import NullProgress
from .states import CellState


def cell_line(plan, end, state, width: int | None = None) -> str:
    """`cell 3 NAME: completed, 12 epochs, test acc 0.9735, 14s`; with a `width`, the time and
    then the epochs are left out until it fits (the name, state and accuracy always stay), and
    a failure's reason is cut to the room left (the sweep prints it whole at its end)."""
    cell = plan.cell
    head = f"cell {cell.index + 1} {cell.name}: "
    if state is CellState.FAILED:
        reason = (end.error or "no reason given").splitlines()[0][:200]
        if width is not None and len(head) + len("FAILED ()") + len(reason) > width:
            reason = reason[:max(10, width - len(head) - len("FAILED ()") - 1)] + "…"
        return head + f"FAILED ({reason})"
    summary = end.summary or {}
    if not summary:  # a worker stopped while it started, or killed by a second Ctrl-C: it may hold epochs
        return head + f"{state} before its worker could report (a re-run of the sweep goes on with it)"
    test = summary.get("test") or {}
    acc = f"test acc {test['acc']:.4f}" if isinstance(test.get("acc"), float) else "no test evaluation"
    wall = summary.get("wall_s")
    parts = [(0, f"{head}{state}"), (1, f"{summary.get('epochs_run')} epoch{'' if summary.get('epochs_run') == 1 else 's'}"), (0, acc)]
    if isinstance(wall, (int, float)):
        parts.append((2, f"{wall:.0f}s"))
    return fitted_line(parts, width, ", ")


class PlainSweepProgress(NullProgress):
    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.total = self.done = self.failed = 0
        self.started = time.monotonic()

    def start(self, total: int, done: int) -> None:
        self.total, self.done = total, done
        if done:
            print(f"{done} of {total} cells already finished: skipped", file=self.stream, flush=True)

    def note(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def cell_ended(self, plan, end, state) -> None:
        self.done += 1
        self.failed += state is CellState.FAILED
        print(f"[{self.done}/{self.total}] {cell_line(plan, end, state)}", file=self.stream, flush=True)


class RichSweepProgress(NullProgress):
    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True, highlight=False)
        self.progress = Progress(*bar_columns(), console=self.console, transient=True, expand=True)
        self.total = self.done = self.failed = self.running = 0

    def start(self, total: int, done: int) -> None:
        self.done, self.total = done, total
        if done:
            self.console.print(f"{done} of {total} cells already finished: skipped")
        self.task = self.progress.add_task("cells", total=total, completed=done, info=self._info())
        self.progress.start()

    def _info(self) -> str:
        """The counts that fit beside the bar; failed goes last, since the cell lines say it too."""
        room = info_room(self.console.width, "cells", self.total)
        return fitted_line([(2, f"failed {self.failed}"), (1, f"running {self.running}")], room)

    def cell_started(self, plan) -> None:
        self.running += 1
        self.progress.update(self.task, info=self._info())

    def note(self, text: str) -> None:
        self.progress.console.print(escape(text))

    def cell_ended(self, plan, end, state) -> None:
        self.running -= 1
        self.done += 1
        self.failed += state is CellState.FAILED
        style = "red" if state is CellState.FAILED else ""
        line = escape(cell_line(plan, end, state, self.console.width))
        self.progress.console.print(f"[{style}]{line}[/]" if style else line)
        self.progress.update(self.task, completed=self.done, info=self._info())

    def close(self) -> None:
        self.progress.stop()


def make_sweep_progress(mode: str):
    """`quiet` | `plain` | `rich` | `auto` (rich on a terminal, plain otherwise)."""
    if mode == "auto":
        mode = "rich" if sys.stderr.isatty() else "plain"
    return QuietOnFailure({"quiet": NullProgress, "plain": PlainSweepProgress, "rich": RichSweepProgress}[mode]())
