"""What the terminal output of every command shares: a progress bar that takes the room the
terminal has, lines that leave out their least important parts to fit its width, and messages
wrapped between words."""

from __future__ import annotations

import re
import sys

from rich.cells import cell_len
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn
from rich.table import Column

from .stdout import STDERR_ERRNOS, stream_to_devnull


def fitted_line(parts: list[tuple[int, str]], width: int | None, sep: str = "  ") -> str:
    """`parts` (rank, text) joined by `sep` in their order, leaving out the highest-ranked ones
    until the line fits `width` (None: all). Parts ranked 0 always stay: a line that is still
    too long wraps on the terminal, and loses nothing."""
    kept = list(parts)
    while width is not None and len(sep.join(t for _, t in kept)) > width and any(r > 0 for r, _ in kept):
        kept.remove(max(kept, key=lambda part: part[0]))
    return sep.join(t for _, t in kept)


BAR_MIN = 10  # columns the bar keeps however narrow the terminal


def info_room(width: int, description: str, total: int) -> int:
    """The columns a bar line leaves for its live numbers at `width`: after the description,
    a bar of BAR_MIN, done/total, the time left (0:00:00) and the gaps between the five."""
    return width - len(description) - BAR_MIN - (2 * len(str(total)) + 1) - len("0:00:00") - 4


def bar_columns() -> tuple:
    """A description, a bar that takes the room the other columns leave, done/total, the live
    numbers and the time left: one line at any terminal width (with Progress(expand=True)) when
    the live numbers are fitted to `info_room` (rich would otherwise cut every column evenly,
    the count too)."""
    return (TextColumn("[bold]{task.description}"), BarColumn(bar_width=None, table_column=Column(ratio=1)),
            MofNCompleteColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn())


class QuietOnFailure:
    """A live display (train's reporter, the sweep's progress) whose writes may fail once
    stderr is gone (the terminal closed, the reader of a pipe ended): the first such failure
    points stderr at os.devnull and silences the display, so that the training or the sweep
    goes on rather than ending on a display error. `close` still runs once quiet (now writing
    to os.devnull), so that a rich display stops its refresh thread and gives back the
    streams it redirected."""

    def __init__(self, display):
        self.display, self._quiet = display, False

    def __getattr__(self, name: str):
        attr = getattr(self.display, name)
        if not callable(attr):
            return attr

        def call(*args, **kwargs):
            if self._quiet and name != "close":
                return None
            try:
                return attr(*args, **kwargs)
            except OSError as err:
                if err.errno not in STDERR_ERRNOS:
                    raise
                self._quiet = True
                stream_to_devnull(sys.stderr)
                return None

        return call


def say(console: Console, text: str, prefix: str = "", style: str = "") -> None:
    """`prefix text` on `console`, `prefix` in `style`. On a terminal each line is wrapped
    between words (wrap_words: an indented line or a `- ` item continues two columns further
    in); a word longer than the line, such as a path, is left whole for the terminal to fold,
    so that copying it gives one path. Not on a terminal, every line stays whole, for grep."""
    from rich.text import Text

    whole = f"{prefix} {text}" if prefix else text
    if console.is_terminal:
        whole = "\n".join(wrap_words(line, console.width) for line in whole.split("\n"))
    shown = Text(whole)
    if prefix and style:
        shown.stylize(style, 0, len(prefix))
    console.print(shown, soft_wrap=True, highlight=False)


def wrap_words(line: str, width: int) -> str:
    """`line` broken between words into lines of at most `width` terminal cells where its words
    allow; continuation lines of an indented line or a `- ` item hang two columns under it."""
    line = line.expandtabs()
    indent = line[:len(line) - len(line.lstrip(" "))]
    more = indent + ("  " if indent or line.startswith("- ") else "")
    return "\n".join(wrap_cells(line, width, more))


def wrap_cells(text: str, width: int, more: str = "", fold: bool = False) -> list[str]:
    """`text` in lines of at most `width` terminal cells (wide characters count two), broken at
    its runs of spaces, which are kept inside a line and dropped at a break; the first line
    keeps `text`'s own leading spaces, the others start with `more`. A word wider than a line
    stays whole, or with `fold` is cut into pieces that fit."""
    words = re.findall(r"(\s*)(\S+)", text)
    if not words:
        return [text]
    lines, line = [], ""
    for space, word in words:
        if line.strip() and cell_len(line + space + word) > width:
            lines.append(line)
            line, space = more, ""
        if fold and cell_len(line + space + word) > width:
            for piece in _pieces(word, max(1, width - cell_len(line + space)), max(1, width - cell_len(more))):
                if line.strip() and cell_len(line + space + piece) > width:
                    lines.append(line)
                    line, space = more, ""
                line += space + piece
                space = ""
        else:
            line += space + word
    return lines + [line]


def _pieces(word: str, first: int, rest: int) -> list[str]:
    """`word` cut into pieces of at most `first` cells, then `rest` cells each."""
    pieces, piece, used, room = [], "", 0, first
    for char in word:
        size = cell_len(char)
        if piece and used + size > room:
            pieces.append(piece)
            piece, used, room = "", 0, rest
        piece, used = piece + char, used + size
    return pieces + [piece]
