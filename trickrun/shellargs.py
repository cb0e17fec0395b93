"""Values the shell cut at their spaces, found before the options are parsed.

`--set model.hidden=[512, 256]` typed without quotes reaches trickrun as the two arguments
`model.hidden=[512,` and `256]`; the parser would then complain about an "unexpected extra
argument (256])" or take `256]` for the config file. A `--set` or `--grid` value whose
brackets only close in the arguments after it is that mistake, and the fix is to quote it.
"""

from __future__ import annotations

import re
from typing import Sequence

# The options whose values are YAML (and so may hold brackets), by every spelling.
YAML_OPTIONS = {"--set": "--set", "-s": "--set", "--grid": "--grid", "-g": "--grid"}
_OPTION = re.compile(r"--?[A-Za-z]")  # "-0.5]" is a value, "--seed" an option


def _depth(text: str) -> int:
    """Brackets opened minus brackets closed."""
    return text.count("[") + text.count("{") - text.count("]") - text.count("}")


def _option_values(args: Sequence[str]):
    """(option, its value, index of the argument after it) for every --set and --grid."""
    for i, arg in enumerate(args):
        if arg == "--":
            return
        name, sep, attached = arg.partition("=")
        if sep and name in YAML_OPTIONS and name.startswith("--"):
            yield YAML_OPTIONS[name], attached, i + 1
        elif arg in YAML_OPTIONS and i + 1 < len(args):
            yield YAML_OPTIONS[arg], args[i + 1], i + 2


def split_value_message(args: Sequence[str]) -> str | None:
    """What to say about the first --set or --grid value the shell split, or None."""
    for option, value, after in _option_values(args):
        depth = _depth(value)
        if depth <= 0:
            continue
        parts = [value]
        for extra in args[after:]:
            if _OPTION.match(extra):
                break
            parts.append(extra)
            depth += _depth(extra)
            if depth <= 0:
                break
        if depth == 0 and len(parts) > 1:
            joined = " ".join(parts)
            return (f"{option} {joined}: the shell cut this value at its spaces into {len(parts)} arguments; "
                    f"quote it to keep it whole: {option} '{joined}'")
    return None
