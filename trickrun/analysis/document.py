"""A neutral document model: what a command prints, as sections of cells (tables, or a block of
text) and records, before anything decides how it looks; render.py draws it on a terminal or
writes it as Markdown, CSV or JSON, and layout.py fits its tables to a terminal's width."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


# How a footer says where the best values are; where styles cannot show (piped output),
# render.py marks those cells with BEST_MARK and says so instead.
BEST_IN_BOLD = "in bold"
BEST_MARK = "*"


@dataclass
class Cell:
    text: str
    best: bool = False  # the best value of its row (or column): highlighted
    note: str = ""  # shown dimmed after the text, e.g. the change against the baseline
    style: str = ""  # rich style of the text
    mark: int | None = None  # index of one character to highlight (a sparkline's best epoch)


@dataclass
class Section:
    title: str
    columns: list[str] = field(default_factory=list)
    rows: list[list[Cell]] = field(default_factory=list)
    footer: list[str] = field(default_factory=list)  # lines after the table
    text: str | None = None  # a preformatted block instead of a table
    language: str = ""  # of `text`, for Markdown fences
    empty: str | None = None  # printed alone, instead of the title, on a terminal when there are no rows
    # For a terminal narrower than the table (layout.py): abbreviations of long column headers,
    # columns that may be left out (the least important first), and the same content laid out
    # another way (e.g. one row per run instead of one column per run).
    short: dict[str, str] = field(default_factory=dict)
    optional: list[str] = field(default_factory=list)
    narrow: "Section | None" = None
    label: int = 0  # the column of row labels: never left out; wraps at its spaces when it must
    # What shows the columns a narrow terminal left out, for a command that has no --format.
    left_out_hint: str = "a wider terminal, or --format markdown, shows them"


@dataclass
class Report:
    """What a command prints: sections (table, Markdown) and records (CSV, JSON); `document`,
    when set, is the one JSON object printed instead of the records."""

    sections: list[Section]
    records: list[dict[str, Any]] = field(default_factory=list)
    document: dict[str, Any] | None = None
