"""Output rendering: sections of cells drawn as rich tables or Markdown, records as CSV or
JSON, and the formatting of numbers, durations, config values and sparklines."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import replace
from typing import Any, Callable, Iterable, Mapping, Sequence

from rich import box
from rich.cells import cell_len
from rich.console import Console, RenderableType
from rich.segment import Segment, Segments
from rich.table import Table
from rich.text import Text

from ..choices import OutputFormat
from ..display import wrap_cells
from ..metrics import higher_is_better
from ..rundir.format import Status
from ..rundir.writer import to_json
from .document import BEST_IN_BOLD, BEST_MARK, Cell, Report, Section
from .layout import Layout, cell_text, fit

RICH_ROWS_MAX = 500  # tables longer than this are printed as plain aligned text
RUN_COLUMNS_MAX = 6  # up to this many runs, one column per run; beyond it, one row per run
SPARK_WIDTH = 40  # characters of a sparkline; longer runs are averaged into buckets
SPARK_CHARS = "▁▂▃▄▅▆▇█"
SPARK_MISSING = "×"  # an epoch whose value is null (non-finite) or absent
EMPTY = "—"
# For a stdout that cannot encode them (PYTHONIOENCODING=ascii, a latin-1 terminal). Sparkline
# and mark characters map one to one, so widths and the highlighted best epoch stay put.
ASCII_SUBSTITUTES = str.maketrans({
    **dict(zip(SPARK_CHARS, "_.:-=+*#")), SPARK_MISSING: "x", "▶": ">", EMPTY: "-", "…": "...",
    "±": "+/-", "Δ": "d", "→": "->", "−": "-", "≥": ">=", "≤": "<=",
})

STATUS_STYLE = {
    Status.COMPLETED: "green",
    Status.EARLY_STOPPED: "green",
    Status.DIVERGED: "bold red",
    Status.INTERRUPTED: "yellow",
    Status.RUNNING: "cyan",
    Status.STALE: "magenta",
    Status.INCOMPLETE: "dim",
}


# ---------------------------------------------------------------------------------------
# The document model (document.py) drawn by rich or written as Markdown.


def status_cell(status: Any) -> Cell:
    return Cell(str(status), style=STATUS_STYLE.get(str(status), ""))


def encodable(text: str, console: Console) -> str:
    """`text` as `console` can encode it: unchanged if it can, else with plain substitutes
    for trickrun's own marks and `?` for anything else."""
    encoding = console.encoding
    try:
        text.encode(encoding)
        return text
    except UnicodeEncodeError:
        return text.translate(ASCII_SUBSTITUTES).encode(encoding, "replace").decode(encoding)


def write_text(console: Console, text: str, end: str = "\n") -> None:
    """Plain text (no markup, no highlighting) on `console`'s file, in characters it can
    encode: written as is, since rich would make an object of every line (seconds for a
    thousand-run table)."""
    console.file.write(encodable(text, console) + end)


def _cell(value: Any) -> Cell:
    return value if isinstance(value, Cell) else Cell(EMPTY if value is None else str(value))


def _encodable_section(section: Section, console: Console) -> Section:
    def fix(text: str) -> str:
        return encodable(text, console)

    rows = [[replace(c, text=fix(c.text), note=fix(c.note)) for c in map(_cell, row)] for row in section.rows]
    return replace(section, title=fix(section.title), columns=[fix(c) for c in section.columns], rows=rows,
                   footer=[fix(line) for line in section.footer],
                   text=None if section.text is None else fix(section.text),
                   short={fix(k): fix(v) for k, v in section.short.items()},
                   optional=[fix(c) for c in section.optional],
                   narrow=None if section.narrow is None else _encodable_section(section.narrow, console))


def _best_marked(section: Section) -> Section:
    """`section` for output without styles (a pipe, a file): its best cells end in BEST_MARK,
    and the footers that say "in bold" say so instead."""
    def marked(c: Cell) -> bool:  # a cell may carry the mark in its text already (show's best epoch)
        return c.best and c.text != EMPTY and not c.text.endswith(BEST_MARK)

    rows = [[replace(c, text=c.text + BEST_MARK) if marked(c) else c for c in map(_cell, row)] for row in section.rows]
    return replace(section, rows=rows, footer=[line.replace(BEST_IN_BOLD, f"marked {BEST_MARK}") for line in section.footer],
                   narrow=None if section.narrow is None else _best_marked(section.narrow))


def draw_tables(sections: Sequence[Section], console: Console) -> None:
    """The sections as rich tables fitted to the console's width (layout.py), for a terminal;
    where green cannot show (not a terminal, or NO_COLOR), best values marked."""
    cut = "ellipsis" if encodable("…", console) == "…" else "crop"  # rich's … is not translated
    if console.color_system is None or console.no_color:  # NO_COLOR: bold alone, and the emphasised row is bold too
        sections = [_best_marked(s) for s in sections]
    for section in (_encodable_section(s, console) for s in sections):
        footer = section.footer
        if section.text is not None:
            console.print(Text(section.title, style="bold"))
            console.out(section.text.rstrip("\n"), highlight=False)
        elif not section.rows and section.empty is not None:
            console.print(section.empty)
            continue
        elif section.rows:
            layout = fit(section, console.width)
            if not layout.fits:  # every column, nothing abbreviated: the section's own footer
                shown = section.narrow or section
                draw_records(shown, console)
                footer = shown.footer
            else:
                if len(section.rows) > RICH_ROWS_MAX:  # rich takes about a second for thousands of rows
                    write_text(console, plain_table(layout.section, layout))
                else:
                    print_trimmed(console, _rich_table(layout, cut))
                footer = layout.notes + layout.section.footer
        else:
            console.print(Text(section.title, style="bold"))
        for line in footer:
            print_trimmed(console, Text(line, style="dim"))
        console.print()


RECORD_INDENT = 3  # a record's fields, under its label
VALUE_BESIDE_MIN = 16  # narrower than this beside the field names, only a value that fits whole stays there


def draw_records(section: Section, console: Console) -> None:
    """`section` for a terminal too narrow for any table of it: a block per row, its label (and
    the cells before it, such as a rank) on one line, then each other column as `header  value`
    lines, values wrapping at their spaces (under the header when too narrow beside it); every
    column is shown, and only a word wider than the room for it is folded."""
    console.print(Text(section.title, style="bold"))
    if len(section.rows) > RICH_ROWS_MAX:  # as tables: plain text, instant for any number of rows
        plain = record_lines(section, console.width, lambda cell, room: wrap_cells(cell_text(cell), room, fold=True))
        write_text(console, "\n".join(plain))
        return
    for line in rich_record_lines(section, console, console.width):
        print_trimmed(console, line)


def rich_record_lines(section: Section, console: Console, width: int) -> list[Text]:
    """record_lines as rich Texts, each cell in its style, the field names dim."""
    return record_lines(section, width, lambda cell, room: _rich_text(cell).wrap(console, room), _styled_text)


def _styled_text(text: str, style: str = "") -> Text:
    """`text` in `style` as a span, not the Text's base style, which would style what is added to it."""
    return Text.assemble((text, style))


def record_lines(section: Section, width: int, wrap: Callable,
                 text: Callable = lambda text, style="": text) -> list:
    """The lines of `section` drawn as records at `width` (see draw_records): strings, or rich
    Texts when `wrap` (a cell and a width -> its lines) and `text` (a string and a style) make
    them."""
    fields = range(section.label + 1, len(section.columns))
    key_width = max((cell_len(section.columns[i]) for i in fields), default=0)
    # a label with one field named only "value" (show's summary: field, value) needs no name for it
    named = not (len(fields) == 1 and section.columns[-1] == "value")
    beside_at = RECORD_INDENT + key_width + 2 if named else RECORD_INDENT
    under_at = RECORD_INDENT + 2 if named else RECORD_INDENT
    lines = []
    for row in section.rows:
        cells = [_cell(c) for c in row]
        label = Cell("  ".join(cell_text(c) for c in cells[:section.label + 1]), style=cells[section.label].style)
        lines += [_trimmed(line) for line in wrap(label, max(1, width))]
        for i in fields:
            if i >= len(cells) or not cell_text(cells[i]).strip():  # nothing to show
                continue
            # beside its name when it fits there whole, or wraps there with room to read; else under
            # it at full width
            room = width - beside_at
            beside = cell_len(cell_text(cells[i])) <= room or (room >= VALUE_BESIDE_MIN
                                                                and _longest_word(cells[i]) <= room)
            value_at = beside_at if beside else under_at
            values = [_trimmed(line) for line in wrap(cells[i], max(1, width - value_at))]
            if named:
                name = text(" " * RECORD_INDENT + section.columns[i].ljust(key_width + 2 if beside else 0), "dim")
                lines += [name + values[0]] if beside else [name, text(" " * value_at) + values[0]]
            else:
                lines.append(text(" " * value_at) + values[0])
            lines += [text(" " * value_at) + line for line in values[1:]]
    return lines


def _trimmed(line):
    """A wrapped line without the space a break left at its end (str or rich Text)."""
    if isinstance(line, Text):
        line.rstrip()
        return line
    return line.rstrip()


def _longest_word(cell: Cell) -> int:
    return max((cell_len(word) for word in cell_text(cell).split()), default=0)


def print_trimmed(console: Console, renderable: RenderableType) -> None:
    """`renderable` without the spaces rich pads its lines with past their last character."""
    segments: list[Segment] = []
    for line in console.render_lines(renderable, console.options, pad=False):
        while line and not line[-1].control and not line[-1].text.rstrip():
            line.pop()
        if line and not line[-1].control:
            line[-1] = Segment(line[-1].text.rstrip(), line[-1].style)
        segments += line + [Segment.line()]
    console.print(Segments(segments), end="")


def _rich_table(layout: Layout, cut: str) -> Table:
    section = layout.section
    table = Table(title=section.title, title_justify="left", title_style="bold", box=box.SIMPLE_HEAD,
                  pad_edge=False, collapse_padding=True, show_edge=False, expand=False)
    for column in layout.columns:  # layout.py set the width of every column that wraps
        table.add_column(column.header, no_wrap=not column.wraps, overflow="fold" if column.wraps else cut,
                         width=column.width if column.wraps else None)
    for row in section.rows:
        table.add_row(*(_rich_text(_cell(c)) for c in row))
    return table


def plain_table(section: Section, layout: Layout | None = None) -> str:
    """Columns padded to their widest cell, two spaces apart: instant for any number of rows.
    With a layout, its headers (on their lines, bottom-aligned) replace the section's."""
    rows = [[cell_text(_cell(c)) for c in row] for row in section.rows]
    headers = [c.header for c in layout.columns] if layout else section.columns
    head_lines = [h.split("\n") for h in headers]
    depth = max((len(h) for h in head_lines), default=1)
    head_lines = [[""] * (depth - len(h)) + h for h in head_lines]
    widths = [max(max(len(line) for line in head), *(len(r[i]) for r in rows)) for i, head in enumerate(head_lines)]
    lines = ["  ".join(h[d].ljust(w) for h, w in zip(head_lines, widths)).rstrip() for d in range(depth)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def _rich_text(cell: Cell) -> Text:
    style = cell.style + (" bold green" if cell.best else "")
    text = Text(cell.text, style=style.strip())
    if cell.mark is not None and 0 <= cell.mark < len(cell.text):
        text.stylize("bold red reverse", cell.mark, cell.mark + 1)
    if cell.note:
        text.append(" " + cell.note, style="dim")
    return text


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown_sections(sections: Sequence[Section]) -> str:
    out = []
    for section in sections:
        out.append(f"### {section.title}\n")
        if section.text is not None:
            out.append(f"```{section.language}\n{section.text.rstrip()}\n```\n")
        elif section.rows:
            out.append("| " + " | ".join(_md_escape(c) for c in section.columns) + " |")
            out.append("|" + "|".join("---" for _ in section.columns) + "|")
            for row in section.rows:
                cells = []
                for c in map(_cell, row):
                    if c.text.strip() and c.text[0] in SPARK_CHARS + SPARK_MISSING:
                        text = f"`{c.text}`"  # a code span: its characters stand as they are
                    else:  # a * of the text (show's best-epoch mark) is no emphasis
                        text = c.text.replace("*", "\\*")
                        text = f"**{text}**" if c.best and c.text != EMPTY else text
                    cells.append(_md_escape(text + (f" {c.note}" if c.note else "")))
                out.append("| " + " | ".join(cells) + " |")
            out.append("")
        for line in section.footer:
            out.append(line.replace("*", "\\*") + "  ")  # "* best epoch" is a note, not a list item
        if section.footer:
            out.append("")
    return "\n".join(out) + "\n"


def orient(title: str, row_labels: list[str], names: list[str], cells: list[list[Cell]],
            corner: str, footer: list[str] | None = None) -> Section:
    """A section with one column per run (few runs) or one row per run (many)."""
    if len(names) <= RUN_COLUMNS_MAX:
        rows = [[Cell(label)] + row for label, row in zip(row_labels, cells)]
        return Section(title, [corner] + names, rows, footer or [])
    transposed = [[Cell(name)] + [cells[r][c] for r in range(len(row_labels))] for c, name in enumerate(names)]
    return Section(title, ["run"] + row_labels, transposed, footer or [])


def csv_text(records: Sequence[Mapping[str, Any]]) -> str:
    """CSV with a header of every field seen, in order."""
    fields: dict[str, None] = {}
    for record in records:
        fields.update(dict.fromkeys(record))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(fields), lineterminator="\n")
    writer.writeheader()
    for record in records:
        writer.writerow({k: _csv_value(v) for k, v in record.items()})
    return buf.getvalue()


def to_json_list(records: Sequence[Mapping[str, Any]]) -> str:
    body = ",\n".join("  " + to_json(r) for r in records)
    return f"[\n{body}\n]" if records else "[]"


def _csv_value(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and not math.isfinite(value):
        return ""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return value


# ---------------------------------------------------------------------------------------
# The output formats: one renderer per format, and every command prints through RENDERERS.


def _write_markdown(report: Report, console: Console) -> None:
    write_text(console, markdown_sections(report.sections), end="")


def _write_csv(report: Report, console: Console) -> None:
    write_text(console, csv_text(report.records), end="")


def _write_json(report: Report, console: Console) -> None:
    if report.document is not None:
        write_text(console, to_json(report.document, indent=2))
    else:
        write_text(console, to_json_list(report.records) + "\n", end="")


RENDERERS: dict[OutputFormat, Callable[[Report, Console], None]] = {
    OutputFormat.table: lambda report, console: draw_tables(report.sections, console),
    OutputFormat.markdown: _write_markdown,
    OutputFormat.csv: _write_csv,
    OutputFormat.json: _write_json,
}


def report_output(report: Report, fmt: OutputFormat | str, console: Console) -> None:
    """Print `report` in format `fmt` (an OutputFormat or its value, e.g. a narrower enum's member)."""
    RENDERERS[OutputFormat(fmt)](report, console)


def render_sections(sections: Sequence[Section], fmt: OutputFormat, console: Console) -> None:
    report_output(Report(list(sections)), fmt, console)


# ---------------------------------------------------------------------------------------
# Number formatting.


def fmt_number(value: Any, key: str = "") -> str:
    if value is None:
        return EMPTY
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    if isinstance(value, int):
        return str(value)
    if not math.isfinite(value):
        return str(value)
    if (key.endswith("acc") or key.endswith("loss")) and abs(value) < 1e4:
        return f"{value:.4f}"
    if key in ("wall_s",):
        return f"{value:.1f}"
    if key in ("s_per_epoch", "epoch_s"):
        return f"{value:.2f}"
    if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e5):
        return f"{value:.2e}"
    return f"{value:.4g}"


def fmt_column(values: Sequence[Any], key: str = "") -> list[str]:
    """A column's numbers in one format, so that they line up and compare at a glance: losses
    and accuracies as fmt_number writes them; other floats in scientific notation when any is
    below 1e-3 or the column spans three decades or more, else with the decimals that give its
    smallest value three significant digits. Integers and non-numbers as they are."""
    floats = [abs(v) for v in values if isinstance(v, float) and math.isfinite(v)]
    if not floats or key.endswith(("acc", "loss")) or key in ("wall_s", "s_per_epoch", "epoch_s"):
        return [fmt_number(v, key) for v in values]
    nonzero = [v for v in floats if v != 0]
    if nonzero and (min(nonzero) < 1e-3 or max(nonzero) >= 1e5 or max(nonzero) / min(nonzero) >= 1e3):
        pattern = "{:.2e}"
    else:
        digits = 2 - math.floor(math.log10(min(nonzero))) if nonzero else 0
        pattern = "{:.%df}" % max(0, min(6, digits))
    zero = "0" if "e" in pattern else pattern.format(0.0)
    return [(pattern.format(v) if v != 0 else zero) if isinstance(v, float) and math.isfinite(v)
            else fmt_number(v, key) for v in values]


def fmt_seconds(value: Any) -> str:
    """Seconds as the results show them: one decimal."""
    return fmt_number(value, "wall_s")


def fmt_delta(value: float, key: str) -> str:
    """A change with its sign; one that rounds to zero at the key's precision is +0 (not -0.0
    beside two equal numbers)."""
    text = fmt_number(abs(value), key)
    shown_zero = not any(digit in "123456789" for digit in text.split("e")[0])
    return ("+" if value >= 0 or shown_zero else "-") + text


def fmt_config(value: Any) -> str:
    """A config value as YAML would show it, long floats cut to 6 significant digits."""
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and len(repr(value)) > 10:
        return f"{value:.6g}"
    return str(value)


def fmt_duration(seconds: float | None) -> str:
    if seconds is None:
        return EMPTY
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


# ---------------------------------------------------------------------------------------
# Sparklines.


def sparkline(values: Sequence[float | None], lo: float, hi: float, *, mark: int | None = None,
              width: int = SPARK_WIDTH, log: bool = False) -> tuple[str, int | None]:
    """One character per value (or per bucket of values when there are more than `width`),
    scaled from `lo` (▁) to `hi` (█); returns the line and the position of index `mark`."""
    n = len(values)
    if n == 0:
        return "", None
    width = max(1, width)
    buckets = min(n, width)
    edges = [i * n // buckets for i in range(buckets + 1)]
    scale = (lambda v: math.log10(v)) if log else (lambda v: v)
    lo_s, hi_s = scale(lo), scale(hi)
    chars = []
    for b in range(buckets):
        chunk = [v for v in values[edges[b]:edges[b + 1]] if v is not None and (not log or v > 0)]
        if not chunk:
            chars.append(SPARK_MISSING)
            continue
        v = scale(sum(chunk) / len(chunk))
        if hi_s <= lo_s:
            level = len(SPARK_CHARS) // 2
        else:
            level = round((v - lo_s) / (hi_s - lo_s) * (len(SPARK_CHARS) - 1))
        chars.append(SPARK_CHARS[max(0, min(len(SPARK_CHARS) - 1, level))])
    pos = None
    if mark is not None and 0 <= mark < n:
        pos = next(b for b in range(buckets) if edges[b] <= mark < edges[b + 1])
    return "".join(chars), pos


def spark_scale(all_values: Iterable[float | None], metric: str) -> tuple[float, float, bool]:
    finite = [v for v in all_values if v is not None]
    if not finite:
        return 0.0, 1.0, False
    lo, hi = min(finite), max(finite)
    log = higher_is_better(metric) is not True and lo > 0 and hi / lo > 100
    return lo, hi, log
