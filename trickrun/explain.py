"""`trickrun explain THING`: what a config key, a section or a config file means, read from
the places that define it, so the explanation cannot drift from the code:

  meaning      the key's comment in config.py's schema
  values       its type and range (config.RANGES), or its choices (config.CHOICES) with
               their aliases (config.ALIASES)
  formulas     per choice, its entry in the formula table of the module that registers it
               (optim.py, schedules.py), else the first paragraph of its own docstring
  default      config.Config's, or for a null that `resolve` fills in, what it fills in
               for each choice of the key it depends on
  the lesson   the claims that test the key (lesson/claims.py, Claim.keys), and each claim's
               verdicts in a written report (docs/lesson.md, lesson/published.py)

A config file gets its leading comment (what to look for) and its differences from
baseline.yaml, key by key, both resolved. Anything else is exit 2 with the nearest names.
"""

from __future__ import annotations

import dataclasses
import difflib
import inspect
import io
import re
import tokenize
from dataclasses import dataclass
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from . import config as schema
from .analysis.analyze import config_diff, flatten
from .config import ALIASES, CHOICES, RANGES, REGISTRIES, Config, dump_yaml, load_config, read_config_file, short
from .errors import ConfigError
from .lesson.claims import CLAIMS, Claim
from .lesson.published import COMMITTED_REPORT, ClaimVerdict, load_verdicts

CHECKOUT = Path(__file__).resolve().parents[1]  # the repository root, when trickrun runs from one
CONFIGS = Path("configs")
BASELINE = "baseline.yaml"
CLAIMS_PAGE = "docs/lesson-claims.md"
MAX_WIDTH = 100  # prose wider than this reads badly, however wide the terminal
INDENT = (0, 0, 0, 2)


# ---------------------------------------------------------------------------------------
# What the schema says about a key.


def _comments(cls: type) -> dict[str, str]:
    """Each field of the dataclass `cls` and the comment on its line in the source."""
    source = inspect.getsource(cls)
    found: dict[str, str] = {}
    line_field: dict[int, str] = {}
    names = {f.name for f in dataclasses.fields(cls)}
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.NAME and token.start[1] == 4 and token.string in names:
            line_field.setdefault(token.start[0], token.string)
        elif token.type == tokenize.COMMENT and token.start[0] in line_field:
            found[line_field[token.start[0]]] = token.string.lstrip("#").strip()
    return found


def _sections() -> dict[str, type | None]:
    """Section name -> its dataclass; top-level keys (name, seed) under ""."""
    hints = get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if dataclasses.is_dataclass(hints[f.name])}


def all_keys() -> dict[str, tuple[type, Any, str]]:
    """Every dotted key -> (its annotation, its default, its meaning), in schema order."""
    keys: dict[str, tuple[type, Any, str]] = {}
    defaults = flatten(Config().to_dict())
    sections = _sections()
    top = _comments(Config)
    for f in dataclasses.fields(Config):
        cls = sections.get(f.name)
        if cls is None:
            keys[f.name] = (get_type_hints(Config)[f.name], defaults[f.name], top.get(f.name, ""))
            continue
        comments, hints = _comments(cls), get_type_hints(cls)
        for sub in dataclasses.fields(cls):
            key = f"{f.name}.{sub.name}"
            keys[key] = (hints[sub.name], defaults[key], comments.get(sub.name, ""))
    return keys


def _value(value: Any) -> str:
    """A value as a config file writes it."""
    return dump_yaml({"v": value}, flow=True).strip()[1:-1].strip()[len("v:"):].strip()


def kind_text(key: str, hint: Any) -> str:
    """What the key accepts, in words: `a number in (0, inf], or null`."""
    nullable = get_origin(hint) is not None and type(None) in get_args(hint)
    if nullable:
        (hint,) = [a for a in get_args(hint) if a is not type(None)]
    if key in CHOICES:
        return "one of the choices below"
    if get_origin(hint) is list:
        text = f"a list of {_PLURALS[get_args(hint)[0]]}"
        bounds = RANGES.get(key)
        text += f", each in {bounds}" if bounds else ""
    else:
        text = _WORDS.get(hint, "a value")
        bounds = RANGES.get(key)
        text += f" in {bounds}" if bounds else ""
    return text + (", or null" if nullable else "")


_WORDS = {bool: "true or false", int: "a whole number", float: "a number", str: "text"}
_PLURALS = {int: "whole numbers", float: "numbers", str: "texts"}


def filled_in(key: str) -> str | None:
    """For a key whose default is null that `resolve` fills in: what it fills in, by the choice
    of the key it depends on, grouped by value (`sgd/normalized 0.1, momentum/... 0.01`); None
    when `resolve` leaves it null. Found by resolving a config per choice, so it is what
    `resolve` does, not a copy of it."""
    if schema.get_key(schema.resolve(Config()), key) is None:
        return None
    for other in CHOICES:
        by_value: dict[str, list[str]] = {}
        for choice in CHOICES[other]:
            section, field_name = other.split(".")
            cfg = Config()
            setattr(getattr(cfg, section), field_name, choice)
            by_value.setdefault(_value(schema.get_key(schema.resolve(cfg), key)), []).append(choice)
        if len(by_value) > 1:
            return f"null, filled in by {other}: " + ", ".join(f"{'/'.join(names)} {value}"
                                                              for value, names in by_value.items())
    return f"null, filled in as {_value(schema.get_key(schema.resolve(Config()), key))}"


# ---------------------------------------------------------------------------------------
# Formulas of each choice, from the module that registers it.


def formula_table(doc: str, names: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    """The rows of a docstring's formula table (`  name   formula`, continued on deeper-indented
    lines) for the registered `names`, and the notes around it: the paragraph that introduces
    the table and the lines that follow it up to a blank line."""
    lines = inspect.cleandoc(doc or "").splitlines()
    rows: dict[str, str] = {}
    first = last = None
    current = None
    for i, line in enumerate(lines):
        match = re.match(r"^  (\S+)\s+(\S.*)$", line)
        if match and match[1] in names:
            current, first, last = match[1], i if first is None else first, i
            rows[current] = match[2]
        elif current is not None and line.startswith("   ") and line.strip():
            rows[current] += " " + line.strip()
            last = i
        else:
            current = None
    if first is None:
        return {}, []
    intro_end = first
    while intro_end > 0 and not lines[intro_end - 1].strip():
        intro_end -= 1
    intro_start = max((i for i in range(intro_end) if not lines[i].strip()), default=-1) + 1
    after = []
    for line in lines[last + 1:]:
        if not line.strip():
            break
        after.append(line.strip())
    notes = [" ".join(" ".join(lines[intro_start:intro_end]).split())] + ([" ".join(after)] if after else [])
    return {name: " ".join(text.split()) for name, text in rows.items()}, [n for n in notes if n]


def first_paragraph(obj: Any) -> str:
    """The first paragraph of `obj`'s own docstring (a class's is never inherited), on one line."""
    doc = obj.__doc__ if isinstance(obj.__doc__, str) else ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def choice_formulas(key: str) -> tuple[dict[str, str], list[str], str | None]:
    """Per choice of `key`, the formula trickrun uses; the notes of the module's formula table;
    and that module's file, relative to the checkout."""
    registry = REGISTRIES.get(key)
    if registry is None:
        return {}, [], None
    module = inspect.getmodule(registry.get(registry.names()[0]))
    table, notes = formula_table(module.__doc__, registry.names())
    formulas = {name: table.get(name) or first_paragraph(registry.get(name)) for name in registry.names()}
    source = Path(inspect.getfile(module)).resolve()
    try:
        where = str(source.relative_to(CHECKOUT))
    except ValueError:
        where = source.name
    return formulas, notes, where


# ---------------------------------------------------------------------------------------
# Rendering.


def _grid(*widths: int | None) -> Table:
    table = Table.grid(padding=(0, 2))
    for width in widths:
        table.add_column(no_wrap=False, min_width=width)
    return table


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
    facts = _grid(None, None)
    _add(facts, "accepts", kind_text(key, hint))
    _add(facts, "default", filled_in(key) if default is None and filled_in(key) else _value(default))
    parts.append(Padding(facts, INDENT, expand=False))
    if key in CHOICES:
        parts.append(Padding(_choices(key), INDENT, expand=False))
    parts.append(Text(""))
    parts += _lesson(key, report)
    return parts


def _choices(key: str) -> RenderableType:
    formulas, notes, source = choice_formulas(key)
    aliases: dict[str, list[str]] = {}
    for alias, name in ALIASES.get(key, {}).items():
        aliases.setdefault(name, []).append(alias)
    rows = _grid(None, None)
    for name in CHOICES[key]:
        text = formulas.get(name, "")
        if aliases.get(name):
            text = (text + " " if text else "") + f"(also accepted: {', '.join(aliases[name])})"
        _add(rows, name, text)
    head = f"choices, with the formulas of {source}:" if source else "choices:"
    parts: list[RenderableType] = [Text(head), Padding(rows, INDENT, expand=False)]
    parts += [Padding(Text(note), INDENT, expand=False) for note in notes]
    return Group(*parts)


def section_view(section: str) -> list[RenderableType]:
    rows = _grid(None, None, None)
    _add(rows, Text("key", style="bold"), Text("default", style="bold"), Text("meaning", style="bold"))
    for key, (_, default, meaning) in all_keys().items():
        if key.startswith(section + "."):
            _add(rows, key, _value(default), meaning)
    return [_heading(f"section {section}"), Padding(rows, INDENT, expand=False),
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
    if "base" in data or "grid" in data:  # a sweep file (sweep/spec.py's test)
        facts = _grid(None, None)
        for field_name in ("base", "set", "grid", "seeds"):
            value = data.get(field_name)
            if isinstance(value, dict):
                for i, (key, item) in enumerate(value.items()):
                    _add(facts, field_name if i == 0 else "", f"{key}: {_value(item)}")
            elif value is not None:
                _add(facts, field_name, _value(value))
        return parts + [Text("A sweep file: trickrun sweep runs each grid point with each seed."),
                        Padding(facts, INDENT, expand=False)]
    baseline = _baseline_for(path)
    if baseline is None:
        return parts + [Text(f"No {BASELINE} found beside it or in the checkout to compare it with.")]
    if baseline.resolve() == path.resolve():
        return parts + [Text("This is the baseline: each other config in its folder changes one thing of it.")]
    mine, base = load_config(path).to_dict(), load_config(baseline).to_dict()
    diff = config_diff([base, mine], ignore=("name",))
    meanings = all_keys()
    rows = _grid(None, None, None, None)
    _add(rows, *(Text(h, style="bold") for h in ("key", _shown(baseline), "this file", "meaning")))
    for key, (old, new) in diff:
        _add(rows, key, _value(old), _value(new), meanings.get(key, (None, None, ""))[2])
    parts.append(Text(f"Against {_shown(baseline)}, both resolved (every default filled in):"
                      if diff else f"The same experiment as {_shown(baseline)}, once resolved."))
    if diff:
        parts.append(Padding(rows, INDENT, expand=False))
        parts.append(Text(f"trickrun explain {diff[0][0]}: the key in full, with what the lesson says about it."))
    return parts


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
        return f"{thing!r} is a value of {' and of '.join(owners)}: " + "; ".join(f"trickrun explain {k}" for k in owners)
    for key, aliases in ALIASES.items():
        if thing in aliases:
            return (f"{thing!r} is another name for {aliases[thing]!r}, a value of {key} (a config may say "
                    f"either): trickrun explain {key}")
    return None


def _looks_like_file(thing: str) -> bool:
    return "/" in thing or thing.endswith((".yaml", ".yml", ".md", ".txt", ".json")) or Path(thing).is_file()


def resolve_thing(thing: str) -> tuple[str, str]:
    """("key" | "section" | "file", the name) for THING, or ConfigError with the nearest names."""
    keys = all_keys()
    if thing in keys:
        return "key", thing
    if thing in _sections():
        return "section", thing
    if _looks_like_file(thing):
        if Path(thing).is_file():
            return "file", thing
        if Path(thing).is_dir():
            raise ConfigError(f"{short(thing)} is a folder; give a config file in it, e.g. "
                              f"trickrun explain {CONFIGS / BASELINE}")
        near = difflib.get_close_matches(thing, _config_files(), n=3, cutoff=0.5)
        raise ConfigError(f"no file {short(thing)}" + (f"; nearest: {', '.join(near)}" if near else
                                                        f"; the configs are in {CONFIGS}/"))
    leaves = [k for k in keys if k.rsplit(".", 1)[-1] == thing]
    if len(leaves) == 1:
        return "key", leaves[0]
    owner = _choice_owner(thing)
    if owner is not None:
        raise ConfigError(owner)
    near = leaves or nearest_names(thing, keys)
    hint = (f"nearest: {', '.join(near)}" if near else
            "give a config key such as model.init, a section such as model, or a config file such as "
            "configs/dropout.yaml")
    raise ConfigError(f"nothing called {short(thing)} to explain; {hint}")


def nearest_names(thing: str, keys) -> list[str]:
    """Keys, sections and config files whose name, last part or file stem is close to THING."""
    forms: dict[str, list[str]] = {}  # what one might type -> the names it stands for
    for name in [*keys, *_sections(), *_config_files()]:
        for form in {name, name.rsplit(".", 1)[-1] if "/" not in name else Path(name).stem}:
            forms.setdefault(form, []).append(name)
    close = difflib.get_close_matches(thing, list(forms), n=6, cutoff=0.6)
    return list(dict.fromkeys(name for form in close for name in forms[form]))[:5]


def explain(thing: str, report: Path = COMMITTED_REPORT) -> list[RenderableType]:
    """What `trickrun explain THING` prints, as rich renderables."""
    kind, name = resolve_thing(thing.strip())
    if kind == "key":
        return key_view(name, report)
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
    """Print the explanation of THING at the console's width (at most MAX_WIDTH)."""
    parts = explain(thing, report or COMMITTED_REPORT)
    for line in rendered_lines(parts, min(console.width, MAX_WIDTH), styled=console.is_terminal):
        console.file.write(line + "\n")
