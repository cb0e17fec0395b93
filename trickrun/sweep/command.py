"""`trickrun sweep`: from the command's options to the printed leaderboard and the exit code."""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass, replace
from pathlib import Path

from rich.console import Console

from ..analysis.leaderboard import leaderboard_section
from ..analysis.render import Cell, OutputFormat, Section, render_sections
from ..display import say
from ..errors import ConfigError
from ..rundir.reader import load_run
from ..rundir.writer import runs_root, to_json
from .backends import LazyBackend, check_backend
from .driver import PreparedSweep, SweepResult, execute, prepare
from .progress import make_sweep_progress
from .record import BACKEND_LOG, cell_run_dirs, no_record, read_record, record_path
from .spec import SweepSpec, load_spec


@dataclass
class SweepOptions:
    source: Path
    grid: list[str]
    fixed: list[str]
    seeds: int | None = None
    seed_list: str | None = None
    jobs: int | None = None
    name: str | None = None
    runs_dir: Path | None = None
    fail_fast: bool = False
    rerun: bool = False
    dry_run: bool = False
    print_commands: bool = False
    quiet: bool = False
    json: bool = False
    backend: str = "local"
    address: str | None = None


def run_command(opts: SweepOptions, out: Console, err: Console) -> int:
    """Run the sweep the options describe; returns the exit code."""
    check_backend(opts.backend, opts.address)
    jobs = opts.jobs if opts.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: run at least one cell at a time (--jobs 1 or more)")
    spec = load_spec(opts.source, grid=opts.grid, fixed=opts.fixed, seeds=opts.seeds,
                     seed_list=opts.seed_list, name=opts.name)
    read_only = opts.print_commands or opts.dry_run
    sweep = prepare(spec, opts.runs_dir, opts.rerun, opts.backend, jobs, lock=not read_only)
    if opts.print_commands:
        out.out("\n".join(commands(sweep)), highlight=False)
        return 0
    if opts.dry_run:
        render_sections([dry_run_section(sweep)], OutputFormat.table, out)
        return 0
    backend = LazyBackend(opts.backend, jobs, sweep.record.path.parent / BACKEND_LOG, opts.address)
    progress = make_sweep_progress("quiet" if opts.quiet or opts.json else "auto")
    try:
        if any(p.action.runs for p in sweep.plans):
            backend.start()
        result = execute(sweep, backend, opts.fail_fast, progress)
    finally:
        try:
            backend.close()
        finally:
            sweep.release()
    return finish(result, opts, out, err)


def commands(sweep: PreparedSweep) -> list[str]:
    """One `trickrun train ...` line per cell, for GNU parallel, xargs or a job array: an
    export of the sweep, which itself hands each cell its resolved config."""
    spec: SweepSpec = sweep.spec
    lines = []
    for plan in sweep.plans:
        cell = plan.cell
        argv = ["train", str(spec.base)]
        for text in [*spec.fixed_overrides(), *cell.overrides()]:
            argv += ["--set", text]
        argv += ["--name", cell.name, "--seed", str(cell.seed), "--runs-dir", str(sweep.root), "--quiet"]
        lines.append(" ".join(shlex.quote(a) for a in ["trickrun", *argv]))
    return lines


PIPED_HINT = "a wider terminal, or the output piped (| less -S), shows them"  # sweep has no --format


def dry_run_section(sweep: PreparedSweep) -> Section:
    plans = sweep.plans
    rows = [[Cell(str(p.cell.index + 1)), Cell(p.cell.name), Cell(p.cell.label()), Cell(str(p.action)),
             Cell(p.run_dir.name if p.run_dir else "")] for p in plans]
    counts = {a: sum(p.action is a for p in plans) for a in dict.fromkeys(p.action for p in plans)}
    summary = ", ".join(f"{n} to {a}" for a, n in counts.items())
    return Section(f"{len(plans)} cell{'s' if len(plans) != 1 else ''} ({summary}); nothing was run", ["#", "run name", "cell", "action", "existing run"],
                   rows, [f"record: {sweep.record.path}"], label=1, optional=["existing run", "#"],
                   left_out_hint=PIPED_HINT)


def finish(result: SweepResult, opts: SweepOptions, out: Console, err: Console) -> int:
    record = result.record
    if opts.json:
        out.out(to_json(record.data, indent=2), highlight=False)
    else:
        runs = [load_run(path) for path in result.run_dirs if path.is_dir()]
        if runs:
            section = leaderboard_section(runs, f"sweep {record.data['name']}: {len(runs)} runs")
            render_sections([replace(section, left_out_hint=f"a wider terminal, or trickrun compare --sweep "
                                     f"{record.data['name']} --group, shows them")], OutputFormat.table, out)
        out.out(f"record: {record.path}", highlight=False)
    for index in result.failed:
        cell = record.cell(index)
        say(err, f"cell {index + 1} {cell['name']} failed: {cell['error']}")
    for index in result.busy:
        cell = record.cell(index)
        say(err, f"cell {index + 1} {cell['name']} was left alone: {cell['error']}; run the same command "
                 f"again once that process has ended")
    if result.stop_signal is not None:
        say(err, "sweep interrupted; run the same command again to finish it (finished cells are skipped, "
                 "interrupted ones resumed)")
        return 128 + result.stop_signal
    return 1 if result.failed or result.busy else 0


def sweep_run_dirs(name: str, runs_dir: Path | None) -> list[Path]:
    """The run directories a sweep's record lists, for `compare --sweep` and `ensemble --sweep`:
    each found by its name in the runs folder the record is in, wherever the sweep ran from
    (some perhaps removed since)."""
    root = runs_root(runs_dir)
    path = record_path(root, name)
    record = read_record(path)
    if record is None:
        raise no_record(root, name)
    dirs = cell_run_dirs(root, record)
    if not dirs:
        raise ConfigError(f"sweep {name[:60]!r} has no runs yet")
    return dirs
