"""What `trickrun sweep` shows on stderr while it runs: one overall bar (cells done, failed,
running, time left) and a line per finished cell on a terminal; the lines alone otherwise;
nothing with --quiet."""

from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from .driver import NullProgress
from .states import CellState


def cell_line(plan, end, state) -> str:
    cell = plan.cell
    head = f"cell {cell.index + 1} {cell.name}: "
    if state is CellState.FAILED:
        reason = (end.error or "no reason given").splitlines()[0][:200]
        return head + f"FAILED ({reason})"
    summary = end.summary or {}
    if not summary:
        return head + f"{state} before its first epoch"
    test = summary.get("test") or {}
    acc = f"test acc {test['acc']:.4f}" if isinstance(test.get("acc"), float) else "no test evaluation"
    epochs = summary.get("epochs_run")
    wall = summary.get("wall_s")
    wall_text = f", {wall:.0f}s" if isinstance(wall, (int, float)) else ""
    return head + f"{state}, {epochs} epochs, {acc}{wall_text}"


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
        self.progress = Progress(
            TextColumn("[bold]cells"), BarColumn(), MofNCompleteColumn(),
            TextColumn("{task.fields[info]}"), TimeRemainingColumn(), console=self.console, transient=True,
        )
        self.done = self.failed = self.running = 0

    def start(self, total: int, done: int) -> None:
        self.done = done
        if done:
            self.console.print(f"{done} of {total} cells already finished: skipped")
        self.task = self.progress.add_task("cells", total=total, completed=done, info=self._info())
        self.progress.start()

    def _info(self) -> str:
        return f"failed {self.failed}  running {self.running}"

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
        line = escape(cell_line(plan, end, state))
        self.progress.console.print(f"[{style}]{line}[/]" if style else line)
        self.progress.update(self.task, completed=self.done, info=self._info())

    def close(self) -> None:
        self.progress.stop()


def make_sweep_progress(mode: str):
    """`quiet` | `plain` | `rich` | `auto` (rich on a terminal, plain otherwise)."""
    if mode == "auto":
        mode = "rich" if sys.stderr.isatty() else "plain"
    return {"quiet": NullProgress, "plain": PlainSweepProgress, "rich": RichSweepProgress}[mode]()
