"""What the live displays of `train` and `sweep` share: a progress bar that takes the room the
terminal has, and lines that leave out their least important parts to fit its width."""

from __future__ import annotations

from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.table import Column


def fitted_line(parts: list[tuple[int, str]], width: int | None, sep: str = "  ") -> str:
    """`parts` (rank, text) joined by `sep` in their order, leaving out the highest-ranked ones
    until the line fits `width` (None: all). Parts ranked 0 always stay: a line that is still
    too long wraps on the terminal, and loses nothing."""
    kept = list(parts)
    while width is not None and len(sep.join(t for _, t in kept)) > width and any(r > 0 for r, _ in kept):
        kept.remove(max(kept, key=lambda part: part[0]))
    return sep.join(t for _, t in kept)


def bar_columns() -> tuple:
    """A description, a bar that takes the room the other columns leave, done/total, the live
    numbers and the time left: one line at any terminal width (with Progress(expand=True))."""
    return (TextColumn("[bold]{task.description}"), BarColumn(bar_width=None, table_column=Column(ratio=1)),
            MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn())
