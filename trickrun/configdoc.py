"""What the code says about each config key, as data, for `trickrun explain`: read from the
places that define it, so an explanation cannot drift from the code.

  meaning      the key's comment on its line of config.py's schema
  accepts      its type and range (ranges.RANGES), or its choices (config.CHOICES) with
               their aliases (config.ALIASES)
  default      Config's; for a null that `resolve` fills in, what it fills in for each
               choice of the key it depends on (found by resolving, not copied)
  formulas     per choice, its row in the formula table of the module that registers it
               (nn/optim.py, nn/schedules.py), else the first paragraph of its own docstring
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import re
import tokenize
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from . import config as schema
from .analysis.analyze import flatten
from .config import CHOICES, REGISTRIES, Config, dump_yaml
from .ranges import RANGES

CHECKOUT = Path(__file__).resolve().parents[1]  # the repository root, when trickrun runs from one


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


def sections() -> dict[str, type]:
    """Each section of the config (data, model, ...) and its dataclass."""
    hints = get_type_hints(Config)
    return {f.name: hints[f.name] for f in dataclasses.fields(Config) if dataclasses.is_dataclass(hints[f.name])}


def all_keys() -> dict[str, tuple[type, Any, str]]:
    """Every dotted key -> (its annotation, its default, its meaning), in schema order."""
    keys: dict[str, tuple[type, Any, str]] = {}
    defaults = flatten(Config().to_dict())
    by_name = sections()
    top = _comments(Config)
    for f in dataclasses.fields(Config):
        cls = by_name.get(f.name)
        if cls is None:
            keys[f.name] = (get_type_hints(Config)[f.name], defaults[f.name], top.get(f.name, ""))
            continue
        comments, hints = _comments(cls), get_type_hints(cls)
        for sub in dataclasses.fields(cls):
            key = f"{f.name}.{sub.name}"
            keys[key] = (hints[sub.name], defaults[key], comments.get(sub.name, ""))
    return keys


def show_value(value: Any) -> str:
    """A value as a config file writes it."""
    return dump_yaml({"v": value}, flow=True).strip()[1:-1].strip()[len("v:"):].strip()


def kind_text(key: str, hint: Any) -> str:
    """What the key accepts, in words: `a number in (0, inf), or null`."""
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
            by_value.setdefault(show_value(schema.get_key(schema.resolve(cfg), key)), []).append(choice)
        if len(by_value) > 1:
            return f"null, filled in by {other}: " + ", ".join(f"{'/'.join(names)} {value}"
                                                              for value, names in by_value.items())
    return f"null, filled in as {show_value(schema.get_key(schema.resolve(Config()), key))}"


# ---------------------------------------------------------------------------------------
# Formulas of each choice, from the module that registers it.


def formula_table(doc: str, names: tuple[str, ...]) -> tuple[dict[str, str], tuple[str, str]]:
    """The rows of a docstring's formula table (`  name   formula`, continued on deeper-indented
    lines) for the registered `names`, and the notes around it (each "" if none): the paragraph
    that introduces the table, and the lines that follow it up to a blank line. A row sets its name two spaces
    or more apart from its formula, so a line of prose that starts with a choice's name (a
    bullet's "  weight decay ...") is no row."""
    lines = inspect.cleandoc(doc or "").splitlines()
    rows: dict[str, str] = {}
    first = last = None
    current = None
    for i, line in enumerate(lines):
        match = re.match(r"^  (\S+)\s{2,}(\S.*)$", line)
        if match and match[1] in names:
            current, first, last = match[1], i if first is None else first, i
            rows[current] = match[2]
        elif current is not None and line.startswith("   ") and line.strip():
            rows[current] += " " + line.strip()
            last = i
        else:
            current = None
    if first is None:
        return {}, ("", "")
    intro_end = first
    while intro_end > 0 and not lines[intro_end - 1].strip():
        intro_end -= 1
    intro_start = max((i for i in range(intro_end) if not lines[i].strip()), default=-1) + 1
    after = []
    for line in lines[last + 1:]:
        if not line.strip():
            break
        after.append(line.strip())
    intro = " ".join(" ".join(lines[intro_start:intro_end]).split())
    return {name: " ".join(text.split()) for name, text in rows.items()}, (intro, " ".join(after))


def first_paragraph(obj: Any) -> str:
    """The first paragraph of `obj`'s own docstring (a class's is never inherited), on one line."""
    doc = obj.__doc__ if isinstance(obj.__doc__, str) else ""
    return " ".join(inspect.cleandoc(doc).split("\n\n")[0].split())


def choice_formulas(key: str) -> tuple[dict[str, str], tuple[str, str], str | None]:
    """Per choice of `key`, the formula trickrun uses; the notes before and after the module's
    formula table; and that module's file, relative to the checkout."""
    registry = REGISTRIES.get(key)
    if registry is None:
        return {}, ("", ""), None
    module = inspect.getmodule(registry.get(registry.names()[0]))
    table, notes = formula_table(module.__doc__, registry.names())
    formulas = {name: table.get(name) or first_paragraph(registry.get(name)) for name in registry.names()}
    source = Path(inspect.getfile(module)).resolve()
    try:
        where = str(source.relative_to(CHECKOUT))
    except ValueError:
        where = source.name
    return formulas, notes, where
