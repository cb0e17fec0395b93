"""Fitting a section's table into the terminal's width without cutting a header, a row label or
a number, and using the room when there is more.

`fit(section, width)` takes the first of these that fits:
1. every column with its full header on one line;
2. headers wrapped at their spaces onto as many lines as keep each no wider than its column's
   values (a word is never cut);
3. the section's abbreviations (`Section.short`), spelled out in a legend line under the table;
each first for the section itself and then for its narrow form (`Section.narrow`, e.g. one row
per run instead of one column per run). Then the optional columns (`Section.optional`) are left
out, least important first (never more than it keeps), with a line under the table naming them;
if even that does not fit, row labels (`Section.label`, the first column by default) wrap at
their spaces and the columns come back as far as they fit. Row labels are never left out.
Narrower than any such table, `fit` says so (`Layout.fits` False) and render.draw_records
draws a block per row, every column in it. The room a fitted table leaves goes to fewer header lines; free text
(flags, a summary's values) wraps at its spaces in what is left.

Widths are terminal cells (rich's cell_len); columns are GAP cells apart, with no edge and no
padding after the last column (draw_tables trims every line).
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, replace
from typing import Sequence

from rich.cells import cell_len

from .document import Cell, Section

GAP = 2  # cells between two columns
WRAPPING_COLUMNS = ("flags", "flag", "value", "config", "runs", "cell")  # free text: wraps at spaces
WRAP_MIN_WIDTH = 24  # free text is never squeezed narrower than this (or its longest word)
WORD_MAX = 48  # a longer word of free text (a path) may fold; shorter ones (run names) stay whole


@dataclass
class Column:
    header: str  # its lines joined by "\n"
    wraps: bool  # may wrap at spaces (free text, and row labels once they have to)
    width: int  # natural: its widest header line or cell line
    least: int  # the narrowest it can be drawn without cutting a word or a number


@dataclass
class Layout:
    section: Section  # what is drawn: the section or its narrow form, holding the kept columns only
    columns: list[Column]
    notes: list[str]  # legend and left-out lines, for under the table
    fits: bool = True

    @property
    def least_width(self) -> int:
        return table_width(c.least for c in self.columns)


def table_width(widths) -> int:
    widths = list(widths)
    return sum(widths) + GAP * max(0, len(widths) - 1)


def cell_text(cell: Cell) -> str:
    return cell.text + (" " + cell.note if cell.note else "")


def _widest(texts: Sequence[str]) -> int:
    return max((cell_len(line) for text in texts for line in text.split("\n")), default=0)


def _longest_word(texts: Sequence[str]) -> int:
    return max((cell_len(word) for text in texts for word in text.split()), default=0)


def stack(header: str, width: int) -> str:
    """`header` wrapped at its spaces to `width` (or its longest word), lines joined by "\\n"."""
    if not header.strip():
        return header
    lines = textwrap.wrap(header, width=max(width, _longest_word([header]), 1),
                          break_long_words=False, break_on_hyphens=False)
    return "\n".join(lines)


def _columns(section: Section, headers: list[str], stacked: bool, wrap_labels: bool) -> list[Column]:
    out = []
    for i, header in enumerate(headers):
        cells = [cell_text(row[i]) for row in section.rows if i < len(row)]
        content = _widest(cells)
        if stacked:
            header = stack(header, content)
        width = max(content, _widest([header]))
        if i == section.label and wrap_labels:
            least = max(_longest_word(cells), _widest([header]))
            out.append(Column(header, True, width, min(width, least)))
        elif section.columns[i] in WRAPPING_COLUMNS and i != section.label:
            least = max(min(_longest_word(cells), WORD_MAX), _widest([header]), min(content, WRAP_MIN_WIDTH))
            out.append(Column(header, True, width, min(width, least)))
        else:
            out.append(Column(header, False, width, width))
    return out


def _attempt(section: Section, abbreviate: bool, stacked: bool, wrap_labels: bool = False,
             left_out: Sequence[str] = (), width: int = 0) -> Layout:
    keep = [i for i, name in enumerate(section.columns) if i == section.label or name not in left_out]
    kept = replace(section, columns=[section.columns[i] for i in keep], label=keep.index(section.label),
                   rows=[[row[i] for i in keep if i < len(row)] for row in section.rows])
    headers = list(kept.columns)
    notes = []
    if abbreviate:
        used = {name: section.short[name] for name in headers if name in section.short}
        headers = [used.get(name, name) for name in headers]
        if used:
            notes.append("short headers: " + "; ".join(f"{short} = {name}" for name, short in used.items()))
    if left_out:
        notes.append(f"left out to fit {width} columns: {', '.join(left_out)} ({section.left_out_hint})")
    return Layout(kept, _columns(kept, headers, stacked, wrap_labels), notes)


def _unstack(layout: Layout, original: Sequence[str], width: int) -> Layout:
    """Spend the room a fitted table leaves on fewer header lines: widen wrapped headers, the
    cheapest line saved first, while the table still fits."""
    spare = width - layout.least_width
    while spare > 0:
        best = None
        for i, column in enumerate(layout.columns):
            lines = column.header.count("\n") + 1
            if lines == 1 or column.wraps:
                continue
            for wider in range(column.width + 1, column.width + spare + 1):
                header = stack(original[i], wider)
                if header.count("\n") + 1 < lines:
                    new_width = max(column.width, _widest([header]))
                    if best is None or new_width - column.width < best[2]:
                        best = (i, header, new_width - column.width, new_width)
                    break
        if best is None:
            return layout
        i, header, _, new_width = best
        spare -= new_width - layout.columns[i].width
        layout.columns[i] = Column(header, False, new_width, new_width)
    return layout


def fit(section: Section, width: int) -> Layout:
    """The first layout of `section` (see the module docstring) whose table fits `width` cells,
    each column's width set; when none does, the last one tried, with `fits` False."""
    layout = _fit(section, width)
    original = [section_header(layout, i) for i in range(len(layout.columns))]
    layout = _unstack(layout, original, width) if layout.fits else layout
    _share(layout, width)
    return layout


def section_header(layout: Layout, i: int) -> str:
    """The unwrapped header of the layout's column `i` (its abbreviation, if one is in use)."""
    return layout.columns[i].header.replace("\n", " ")


def _fit(section: Section, width: int) -> Layout:
    forms = [section] + ([section.narrow] if section.narrow is not None else [])
    for form in forms:
        for abbreviate, stacked in ((False, False), (False, True), (True, True)):
            if abbreviate and not any(name in form.short for name in form.columns):
                continue
            layout = _attempt(form, abbreviate, stacked)
            if layout.least_width <= width:
                return layout
    last = forms[-1]
    optional = [name for i, name in enumerate(last.columns) if name in last.optional and i != last.label]
    optional.sort(key=last.optional.index)
    # columns are left out before labels wrap: a label on one line reads best; a table that
    # would show fewer columns than it leaves out reads worse than records, which show all
    shown = len(last.columns) - 1  # besides the label
    for wrap_labels in (False, True):
        for n in range(min(len(optional), shown // 2) + 1):
            for abbreviate in (False, True):
                layout = _attempt(last, abbreviate, True, wrap_labels, optional[:n], width)
                if layout.least_width <= width:
                    return layout
    layout.fits = False  # no table: render.draw_records
    return layout


def _share(layout: Layout, width: int) -> None:
    """Narrow the wrapping columns, the widest first, until the table fits `width`."""
    while table_width(c.width for c in layout.columns) > width:
        shrinkable = [c for c in layout.columns if c.wraps and c.width > c.least]
        if not shrinkable:
            return
        widest = max(shrinkable, key=lambda c: c.width)
        widest.width -= 1
