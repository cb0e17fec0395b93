"""Reading what a user hands us, on the assumption that it may be hostile: YAML parsed with
bounds (no alias bombs, no self-referring aliases, no duplicate keys), files read up to a
cap, and `short()` for every message that echoes a user's value.

PyYAML follows YAML 1.1, where `1e-3` is a string. Users write learning rates that way, so
floats are resolved with the YAML 1.2 rule instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from .errors import ConfigError

MAX_NODES = 10_000  # values a document may expand to, aliases counted at every use
MAX_CONFIG_BYTES = 1 << 20  # 1 MiB: a real config is under 2 KiB
PATH_CHARS = 200  # paths are echoed longer than values: a deep tmp folder is still a path


def _cut(text: str, limit: int, length: int | None = None) -> str:
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) if length is None else length:,} characters)"


def short(value: Any, limit: int = 60) -> str:
    """`repr(value)` cut to about `limit` characters: what a message may echo of user input.
    A cut string says how long it was."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond Python's digit limit for str()
        return f"<a number of about {int(value.bit_length() * 0.30103):,} digits>"
    return _cut(text, limit, len(value) if isinstance(value, str) else None)


def read_capped(path: str | Path, limit: int = MAX_CONFIG_BYTES) -> str:
    """The text of `path` (UTF-8), never reading more than `limit` + 1 bytes: a huge file or
    /dev/zero is a ConfigError stating the limit, not a MemoryError. OSError and
    UnicodeDecodeError pass to the caller."""
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise ConfigError(f"config file {short(str(path), PATH_CHARS)} is larger than {limit:,} bytes "
                          f"({limit / 2**20:g} MiB), the most a config may hold")
    return data.decode("utf-8")


class _TooLarge(Exception):
    """A document that expands beyond MAX_NODES values (or without end)."""


def _expanded_sizes(root: Node) -> dict[int, int]:
    """Values under each node, an alias counted in full at every use; linear time, since
    the composed graph shares each anchored node. A node inside itself is _TooLarge."""
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()

    def size(node: Node) -> int:
        key = id(node)
        if key in sizes:
            return sizes[key]
        if key in open_nodes:
            raise _TooLarge(f"the YAML alias at line {node.start_mark.line + 1} refers to a value that "
                            "contains it, which would be infinite")
        open_nodes.add(key)
        if isinstance(node, SequenceNode):
            children = node.value
        elif isinstance(node, MappingNode):
            children = [n for pair in node.value for n in pair]
        else:
            children = []
        sizes[key] = 1 + sum(size(child) for child in children)
        open_nodes.discard(key)
        return sizes[key]

    size(root)
    return sizes


def _largest_key_path(node: Node, sizes: dict[int, int]) -> str:
    """The dotted key path down to the largest over-limit value (the last of equals: an
    anchor is defined before the key that uses it)."""
    parts = []
    while isinstance(node, MappingNode):
        big = [(k, v) for k, v in node.value if sizes[id(v)] > MAX_NODES]
        if not big:
            break
        key, node = max(reversed(big), key=lambda kv: sizes[id(kv[1])])
        parts.append(str(key.value) if isinstance(key, ScalarNode) else "(a complex key)")
    return ".".join(parts)


def check_expansion(root: Node) -> None:
    """Raise _TooLarge if `root` expands to more than MAX_NODES values."""
    sizes = _expanded_sizes(root)
    if sizes[id(root)] > MAX_NODES:
        where = _largest_key_path(root, sizes)
        raise _TooLarge(f"{_cut(where, 80) if where else 'the value'} expands to {sizes[id(root)]:,} values "
                        f"through YAML aliases (&anchor / *anchor); at most {MAX_NODES:,} are allowed")


_SPECIAL_KEYS = ("tag:yaml.org,2002:merge", "tag:yaml.org,2002:value")  # `<<` and `=`


class _Loader(yaml.SafeLoader):
    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            check_expansion(node)  # before construction, which would expand it
        return node

    def construct_mapping(self, node, deep=False):
        """Refuse a key given twice in one mapping; keys a merge (`<<`) brings in may be
        overridden, as YAML intends."""
        if isinstance(node, MappingNode):
            first: dict[Any, int] = {}
            for key_node, _ in node.value:
                if not isinstance(key_node, ScalarNode) or key_node.tag in _SPECIAL_KEYS:
                    continue
                key = self.construct_object(key_node)
                line = key_node.start_mark.line + 1
                if key in first:
                    raise yaml.constructor.ConstructorError(
                        None, None, f"duplicate key {short(key)} (first given at line {first[key]}); "
                        "keep only one", key_node.start_mark)
                first[key] = line
        return super().construct_mapping(node, deep=deep)


_FLOAT_12 = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_Loader.yaml_implicit_resolvers = {
    k: [(tag, rx) for tag, rx in v if tag != "tag:yaml.org,2002:float"]
    for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver("tag:yaml.org,2002:float", _FLOAT_12, list("-+0123456789."))
_INT = re.compile(r"^[-+]?[0-9]+$")


def _construct_float_or_int(loader: yaml.SafeLoader, node: yaml.Node) -> Any:
    text = loader.construct_scalar(node)
    return int(text) if _INT.match(text) else loader.construct_yaml_float(node)


_Loader.add_constructor("tag:yaml.org,2002:float", _construct_float_or_int)


def parse_yaml(text: str, source: str) -> Any:
    """The value of YAML `text`, or a ConfigError naming `source` (a file or `--set KEY`)."""
    source = _cut(source, PATH_CHARS)
    try:
        return yaml.load(text, Loader=_Loader)
    except _TooLarge as err:
        raise ConfigError(f"{source}: {err}") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err)
        raise ConfigError(f"{source}: malformed YAML{where}: {_cut(problem, 200)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: malformed YAML: nested too deeply") from None
    except Exception as err:  # PyYAML's constructors raise bare errors on some scalars and tags
        # (ValueError for 2001-13-45 or an int of 5000 digits, AttributeError for `!!timestamp 1`)
        why = str(err) if isinstance(err, ValueError) else "a tagged value that cannot be constructed"
        raise ConfigError(f"{source}: unreadable YAML value: {_cut(why, 200)}") from None


class _Dumper(yaml.SafeDumper):
    """Block style for sections, flow style for lists: `hidden: [512, 256]`."""


# Quote strings such as "1e5" that our loader would read as numbers, so dump/load round-trips.
_Dumper.yaml_implicit_resolvers = _Loader.yaml_implicit_resolvers
_Dumper.add_representer(
    list, lambda dumper, data: dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)
)


def dump_yaml(data: Mapping[str, Any], flow: bool = False) -> str:
    """Block style for sections (flow style for lists); everything on one line with `flow`."""
    return yaml.dump(dict(data), Dumper=_Dumper, sort_keys=False, default_flow_style=flow, width=float("inf"))
