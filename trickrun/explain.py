"""`trickrun explain THING`: what a config key, a section or a config file means.

A key: its meaning, what it accepts, its default and each choice's formula (configdoc.py,
read from the code), then the claims of the lesson that test it (lesson/claims.py,
Claim.keys) with each claim's verdicts in a written report (docs/lesson.md, read back by
lesson/published.py). A section: its keys. A config file: its leading comment (what to look
for) and its differences from baseline.yaml, key by key, both resolved. Anything else is
exit 2 with the nearest names. Printed with rich at the terminal's width, at most MAX_WIDTH,
without the padding rich adds.
"""

from __future__ import annotations

import difflib
import io
import re
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from .analysis.analyze import config_diff
from .analysis.document import Cell, Section
from .analysis.render import rich_record_lines
from .config import ALIASES, CHOICES, load_config, read_config_file, short, unused_keys
from .configdoc import CHECKOUT, all_keys, choice_formulas, filled_in, kind_text, sections, show_value
from .errors import ConfigError
from .lesson.claims import CLAIMS, Claim
from .lesson.published import COMMITTED_REPORT, ClaimVerdict, check_given_report, load_verdicts
from .rundir.reader import name_refused
from .sweep.spec import is_sweep_file

CONFIGS = Path("configs")
BASELINE = "baseline.yaml"
CLAIMS_PAGE = "docs/lesson-claims.md"
MAX_WIDTH = 100  # prose wider than this reads badly, however wide the terminal
INDENT = (0, 0, 0, 2)


# ---------------------------------------------------------------------------------------
# Rendering.


def _grid(columns: int) -> Table:
    """Columns two spaces apart, the last one wrapped; the others (names, keys) kept whole."""
    table = Table.grid(padding=(0, 2))
    for i in range(columns):  # a word of the last one wider than its room folds rather than ending in …
        table.add_column(no_wrap=i < columns - 1, overflow="fold")
    return table


class KeyTable:
    """Rows of keys (a config's changes: key, old value, new value, meaning; a section's keys:
    key, default, meaning): a table where its last column, the meaning, gets MEANING_MIN
    columns or more, else a block per key, its values and meaning under it
    (render.record_lines), so that only a word wider than its room is folded."""

    MEANING_MIN = 24  # as layout.WRAP_MIN_WIDTH: below it, prose reads a word or two a line

    def __init__(self, headers: list[str], rows: list[list[str]]):
        self.headers, self.rows = headers, rows

    def __rich_console__(self, console: Console, options):
        n = len(self.headers)
        widths = [max(cell_len(row[i]) for row in [self.headers, *self.rows]) for i in range(n - 1)]
        if sum(widths) + (n - 1) * 2 + self.MEANING_MIN <= options.max_width:
            table = _grid(n)
            _add(table, *(Text(h, style="bold") for h in self.headers))
            for row in self.rows:
                _add(table, *row)
            yield table
            return
        records = Section("", self.headers, [[Cell(row[0], style="bold"), *map(Cell, row[1:])] for row in self.rows])
        yield from rich_record_lines(records, console, options.max_width)


def _add(table: Table, *cells: str | Text) -> None:
    """A row of plain text: a value such as [tanh, relu] is not rich markup."""
    table.add_row(*(c if isinstance(c, Text) else Text(str(c)) for c in cells))


def _heading(text: str) -> Text:
    return Text(text, style="bold")


def _lesson(key: str, report: Path) -> list[RenderableType]:
    claims = [c for c in CLAIMS if key in c.keys]
    if not claims:
        return [Text(f"The lesson makes no claim about {key} (docs/lesson-claims.md lists its claims).")]
    verdicts = load_verdicts(report)
    parts: list[RenderableType] = []
    for claim in claims:
        parts.append(_heading(f"The lesson, claim {claim.number}: {claim.title}"))
        parts.append(Padding(Text(claim.lesson), INDENT, expand=False))
        parts.append(Padding(_verdict_block(claim, verdicts, report), INDENT, expand=False))
        parts.append(Text(""))
    parts.append(Text(f"The claims in trickrun's words: {CLAIMS_PAGE}; how each was tested and judged: "
                      f"{_shown(report)}."))
    return parts


def _verdict_block(claim: Claim, verdicts: dict[int, ClaimVerdict] | None, report: Path) -> RenderableType:
    if verdicts is None:
        return Text(f"No lesson report at {_shown(report)}: `trickrun lesson` writes one.")
    found = verdicts.get(claim.number)
    if found is None or not (found.head or found.comparisons):
        return Text(f"{_shown(report)} has no verdict for claim {claim.number}.")
    rows = [Padding(Group(Text(c.predicted), Padding(Text(f"effect {c.effect}: {c.verdict}"), INDENT, expand=False)),
                    INDENT, expand=False) for c in found.comparisons]
    return Group(Text(f"Verdict in {_shown(report)}: {found.head or 'see each comparison'}"), *rows)


def _shown(path: Path) -> str:
    """A path relative to the current folder, or to the checkout, else as given."""
    absolute = path.resolve()
    for base in (Path.cwd(), CHECKOUT):
        try:
            return str(absolute.relative_to(base))
        except ValueError:
            pass
    return str(path)


def key_view(key: str, report: Path) -> list[RenderableType]:
    hint, default, meaning = all_keys()[key]
    parts: list[RenderableType] = [_heading(key)]
    if meaning:
        parts.append(Padding(Text(meaning), INDENT, expand=False))
    facts = _grid(2)
    _add(facts, "accepts", kind_text(key, hint))
    _add(facts, "default", (default is None and filled_in(key)) or show_value(default))
    parts.append(Padding(facts, INDENT, expand=False))
    if key in CHOICES:
        parts.append(Padding(_choices(key), INDENT, expand=False))
    parts.append(Text(""))
    parts += _lesson(key, report)
    return parts


def _choices(key: str) -> RenderableType:
    formulas, (before, after), source = choice_formulas(key)
    aliases: dict[str, list[str]] = {}
    for alias, name in ALIASES.get(key, {}).items():
        aliases.setdefault(name, []).append(alias)
    rows = _grid(2)
    for name in CHOICES[key]:
        text = formulas.get(name, "")
        if aliases.get(name):
            text = (text + " " if text else "") + f"(also accepted: {', '.join(aliases[name])})"
        _add(rows, name, text)
    head = f"choices, with the formulas of {source}:" if source else "choices:"
    parts: list[RenderableType] = [Text(head)]
    parts += [Padding(Text(before), INDENT, expand=False)] if before else []  # the table's preface
    parts.append(Padding(rows, INDENT, expand=False))
    parts += [Padding(Text(after), INDENT, expand=False)] if after else []
    return Group(*parts)


def section_view(section: str) -> list[RenderableType]:
    rows = [[key, show_value(default), meaning] for key, (_, default, meaning) in all_keys().items()
            if key.startswith(section + ".")]
    return [_heading(f"section {section}"), Padding(KeyTable(["key", "default", "meaning"], rows), INDENT, expand=False),
            Text(f"trickrun explain {section}.KEY: one key in full, with what the lesson says about it.")]


def leading_comment(text: str) -> str:
    """The comment lines at the top of a YAML file, joined into one paragraph."""
    lines = []
    for line in text.splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    return " ".join(" ".join(lines).split())


def file_view(path: Path, report: Path) -> list[RenderableType]:
    data = read_config_file(path)  # a file that is no config at all is refused here
    comment = leading_comment(path.read_text(encoding="utf-8", errors="replace"))
    parts: list[RenderableType] = [_heading(str(path))]
    parts.append(Padding(Text(comment or "(no comment at its top says what it is for)"), INDENT, expand=False))
    if is_sweep_file(data):
        facts = _grid(2)
        for field_name in ("base", "set", "grid", "seeds"):
            value = data.get(field_name)
            if isinstance(value, dict):
                for i, (key, item) in enumerate(value.items()):
                    _add(facts, field_name if i == 0 else "", f"{key}: {show_value(item)}")
            elif value is not None:
                _add(facts, field_name, show_value(value))
        return parts + [Text("A sweep file: trickrun sweep runs each grid point with each seed."),
                        Padding(facts, INDENT, expand=False)]
    baseline = _baseline_for(path)
    if baseline is None:
        return parts + [Text(f"No {BASELINE} found beside it or in the checkout to compare it with.")]
    if baseline.resolve() == path.resolve():
        return parts + [Text("This is the baseline: each other config in its folder makes the change its comment names.")]
    configs = [load_config(baseline), load_config(path)]
    unused = [unused_keys(cfg) for cfg in configs]
    # A key neither config's optimizer or schedule reads differs in value only (gamma under
    # a constant schedule): no change. One that only one reads is shown as unused by the other.
    diff = [(key, values) for key, values in config_diff([c.to_dict() for c in configs], ignore=("name",))
            if not all(key in u for u in unused)]
    meanings = all_keys()
    rows = []
    for key, values in diff:
        shown = [f"unused by {_reader(cfg, key)}" if key in u else show_value(v) for cfg, u, v in zip(configs, unused, values)]
        rows.append([key, *shown, meanings.get(key, (None, None, ""))[2]])
    parts.append(Text(f"Against {_shown(baseline)}, both resolved (every default filled in):"
                      if diff else f"The same experiment as {_shown(baseline)}, once resolved."))
    if diff:
        parts.append(Padding(KeyTable(["key", _shown(baseline), "this file", "meaning"], rows), INDENT,
                             expand=False))
        parts.append(Text(f"trickrun explain {diff[0][0]}: the key in full, with what the lesson says about it."))
    return parts


def _reader(cfg, key: str) -> str:
    """The choice that would read `key` if it took it: the optimizer or the schedule."""
    section = key.split(".")[0]
    return getattr(cfg, section).name


def _baseline_for(path: Path) -> Path | None:
    for candidate in (path.parent / BASELINE, Path.cwd() / CONFIGS / BASELINE, CHECKOUT / CONFIGS / BASELINE):
        if candidate.is_file():
            return candidate
    return None


# ---------------------------------------------------------------------------------------
# Finding what THING names.


def _config_files() -> list[str]:
    for folder in (Path.cwd() / CONFIGS, CHECKOUT / CONFIGS):
        if folder.is_dir():
            return sorted(str(CONFIGS / p.name) for p in folder.glob("*.yaml"))
    return []


def _choice_owner(thing: str) -> str | None:
    """`'xavier' is ... a value of model.init` when THING is a choice (or an alias of one)."""
    owners = [key for key, choices in CHOICES.items() if thing in choices]
    if owners:
        commands = "; ".join(f"trickrun explain {k}" for k in owners)
        return f"{thing!r} is a value of {' and of '.join(owners)}: {commands}"
    for key, aliases in ALIASES.items():
        if thing in aliases:
            return (f"{thing!r} is another name for {aliases[thing]!r}, a value of {key} (a config may say "
                    f"either): trickrun explain {key}")
    return None


def _also_named(thing: str, key: str) -> list[RenderableType]:
    """For a key found by its last part (`momentum`), a line naming what else THING is: a
    choice of another key, a config of the checkout."""
    if thing == key:
        return []
    also = [f"a value of {k} (trickrun explain {k})" for k, choices in CHOICES.items() if thing in choices]
    also += [f"a config (trickrun explain {f})" for f in _config_files() if Path(f).stem == thing]
    return [Text(f"{thing} is also {' and '.join(also)}.")] if also else []


def _looks_like_file(thing: str) -> bool:
    return ("/" in thing or thing.endswith((".yaml", ".yml", ".md", ".txt", ".json")) or Path(thing).is_file()
            or _is_folder(thing))


def _is_folder(thing: str) -> bool:
    """A folder here or, like a config file, of the checkout (`configs` with or without its
    slash); not the empty name, which Path reads as the current folder."""
    if not thing:
        return False
    return Path(thing).is_dir() or (not Path(thing).is_absolute() and (CHECKOUT / thing).is_dir())


def resolve_thing(thing: str) -> tuple[str, str]:
    """("key" | "section" | "file", the name) for THING, or ConfigError with the nearest names."""
    keys = all_keys()
    if thing in keys:
        return "key", thing
    if thing in sections():
        return "section", thing
    if _looks_like_file(thing):
        if Path(thing).is_file():
            return "file", thing
        if not Path(thing).is_absolute() and (CHECKOUT / thing).is_file():  # run from another folder
            return "file", str(CHECKOUT / thing)
        if _is_folder(thing):
            raise ConfigError(f"{short(thing)} is a folder; give a config file in it, e.g. "
                              f"trickrun explain {CONFIGS / BASELINE}")
        near = difflib.get_close_matches(thing, _config_files(), n=3, cutoff=0.5)
        raise ConfigError(f"no file {short(thing)}" + (f"; nearest: {', '.join(near)}" if near else
                                                        f"; the configs are in {CONFIGS}/"))
    leaves = [k for k in keys if k.rsplit(".", 1)[-1] == thing]
    if len(leaves) == 1:
        return "key", leaves[0]
    if leaves:  # several keys end in it
        raise ConfigError(f"{short(thing)} is the last part of {len(leaves)} keys: {', '.join(leaves)}; "
                          f"give one in full, e.g. trickrun explain {leaves[0]}")
    owner = _choice_owner(thing)
    if owner is not None:
        raise ConfigError(owner)
    near = nearest_names(thing, keys)
    hint = (f"nearest: {', '.join(near)}" if near else
            "give a config key such as model.init, a section such as model, or a config file such as "
            "configs/dropout.yaml")
    raise ConfigError(f"nothing called {short(thing)} to explain; {hint}")


def nearest_names(thing: str, keys) -> list[str]:
    """Keys, sections and config files whose name, last part or file stem is close to THING."""
    forms: dict[str, list[str]] = {}  # what one might type -> the names it stands for
    for name in [*keys, *sections(), *_config_files()]:
        for form in {name, name.rsplit(".", 1)[-1] if "/" not in name else Path(name).stem}:
            forms.setdefault(form, []).append(name)
    close = difflib.get_close_matches(thing, list(forms), n=6, cutoff=0.6)
    return list(dict.fromkeys(name for form in close for name in forms[form]))[:5]


def explain(thing: str, report: Path = COMMITTED_REPORT) -> list[RenderableType]:
    """What `trickrun explain THING` prints, as rich renderables."""
    try:
        kind, name = resolve_thing(thing.strip())
    except OSError as err:  # a name the file system refuses to look up (ENAMETOOLONG, ...)
        raise ConfigError(f"nothing called {short(thing)} to explain: as a file name it "
                          f"{name_refused(err)}; give a config key such as model.init, a section such as "
                          f"model, or a config file such as configs/dropout.yaml") from None
    if kind == "key":
        return key_view(name, report) + _also_named(thing.strip(), name)
    if kind == "section":
        return section_view(name)
    return file_view(Path(name), report)


_TRAILING = re.compile(r" +((?:\x1b\[[0-9;]*m)*)$")  # spaces before the line's last style codes


def rendered_lines(parts: list[RenderableType], width: int, styled: bool = False) -> list[str]:
    """The lines `parts` print at `width` columns, without the spaces rich pads them with."""
    buffer = Console(width=width, file=io.StringIO(), highlight=False, force_terminal=styled,
                     color_system="standard" if styled else None)
    for part in parts:
        buffer.print(part)
    return [_TRAILING.sub(r"\1", line) for line in buffer.file.getvalue().splitlines()]


def explain_output(thing: str, console: Console, report: Path | None = None) -> None:
    """Print the explanation of THING at the console's width (at most MAX_WIDTH); `report`,
    a --report the user gave, must be a lesson report."""
    if report is not None:
        check_given_report(report)
    parts = explain(thing, report or COMMITTED_REPORT)
    for line in rendered_lines(parts, min(console.width, MAX_WIDTH), styled=console.is_terminal):
        console.file.write(line + "\n")
