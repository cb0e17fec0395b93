"""No import cycles inside the trickrun package, counting imports made inside functions:
a cycle hidden in a function body still ties two modules together."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import trickrun

PACKAGE = trickrun.__name__


def package_sources() -> tuple[dict[str, str], set[str]]:
    """Every module of the package by dotted name (a package by its own name) with its source,
    and the names that are packages."""
    root = Path(trickrun.__file__).parent
    sources = {PACKAGE: (root / "__init__.py").read_text(encoding="utf-8")}
    packages = {PACKAGE}
    for info in pkgutil.walk_packages([str(root)], prefix=f"{PACKAGE}."):
        folder = Path(info.module_finder.path)
        leaf = info.name.rsplit(".", 1)[-1]
        path = folder / leaf / "__init__.py" if info.ispkg else folder / f"{leaf}.py"
        sources[info.name] = path.read_text(encoding="utf-8")
        if info.ispkg:
            packages.add(info.name)
    return sources, packages


def _imported(module: str, is_package: bool, node: ast.AST) -> list[str]:
    """The dotted names one import statement asks for, relative ones made absolute."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        parts = module.split(".") if is_package else module.split(".")[:-1]
        base = ".".join(parts[: len(parts) - (node.level - 1)])
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    return [base] + [f"{base}.{alias.name}" for alias in node.names]


def import_graph(sources: dict[str, str], packages: set[str]) -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body. `from x import y` counts
    as importing x.y when that is a module, and x otherwise."""
    graph: dict[str, set[str]] = {}
    for module, source in sources.items():
        edges: set[str] = set()
        for node in ast.walk(ast.parse(source)):
            names = _imported(module, module in packages, node)
            if isinstance(node, ast.ImportFrom) and any(n in sources for n in names[1:]):
                names = names[1:]  # `from pkg import submodule`: the submodule is what is used
            edges |= {n for n in names if n in sources and n != module}
        graph[module] = edges
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle as [a, b, ..., a], or None."""
    state: dict[str, str] = {}  # "open" while on the current path, "done" after
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = "open"
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = "done"
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_the_package_has_no_import_cycle() -> None:
    sources, packages = package_sources()
    assert {"trickrun.rundir.writer", "trickrun.rundir.reader", "trickrun.cli"} <= set(sources)
    assert {"trickrun.rundir", "trickrun.nn"} <= packages
    cycle = find_cycle(import_graph(sources, packages))
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_a_cycle_through_an_import_inside_a_function_is_found() -> None:
    # The writer <-> reader cycle this package once had: the writer imported the reader's
    # tolerant metrics reader inside a method, the reader took the file names from the writer.
    sources = {
        "trickrun": "",
        "trickrun.rundir": "",
        "trickrun.rundir.writer": (
            "from ..errors import RunDirError\n"
            "class RunWriter:\n"
            "    def reopen(self):\n"
            "        from .reader import read_metrics\n"
        ),
        "trickrun.rundir.reader": "from .writer import CONFIG_FILE\n",
        "trickrun.errors": "",
    }
    graph = import_graph(sources, {"trickrun", "trickrun.rundir"})
    assert graph["trickrun.rundir.writer"] == {"trickrun.rundir.reader", "trickrun.errors"}
    cycle = find_cycle(graph)
    assert cycle is not None and set(cycle) == {"trickrun.rundir.writer", "trickrun.rundir.reader"}


def test_relative_and_absolute_imports_resolve_to_the_same_module() -> None:
    sources = {name: "" for name in ("trickrun", "trickrun.metrics", "trickrun.rundir", "trickrun.rundir.format")}
    sources["trickrun.rundir.reader"] = (
        "import trickrun.metrics\n"
        "from .. import metrics\n"
        "from . import format\n"
        "from trickrun.rundir.format import Status\n"
        "from .. import __version__\n"
    )
    graph = import_graph(sources, {"trickrun", "trickrun.rundir"})
    assert graph["trickrun.rundir.reader"] == {"trickrun.metrics", "trickrun.rundir.format", "trickrun"}


def test_the_command_line_and_the_training_stack_load_no_analysis_code() -> None:
    # `trickrun train` reaches its first batch having imported the command line and the
    # training stack: the analysis, ensemble, export, sweep and lesson code stays unloaded
    # (start-up under 1 s; each command imports its own code inside itself).
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, trickrun.cli, trickrun.api, trickrun.train, trickrun.progress, "
         "trickrun.memory; print(' '.join(sorted(sys.modules)))"],
        capture_output=True, text=True, check=True).stdout.split()
    assert "trickrun.train" in loaded and "trickrun.cli_runs" in loaded
    heavy = ("trickrun.analysis", "trickrun.ensemble", "trickrun.housekeeping", "trickrun.sweep",
             "trickrun.lesson", "trickrun.explain", "matplotlib")
    assert [m for m in loaded if m.startswith(heavy)] == []
