"""`trickrun sweep`: from the command's options to the printed leaderboard and the exit code."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from ..analysis.leaderboard import leaderboard_section
from ..analysis.render import OutputFormat, Section, render_sections
from ..errors import ConfigError
from ..rundir.reader import load_run
from ..rundir.writer import to_json
from .driver import SweepResult, commands, execute, prepare
from .local import LocalBackend
from .plan import RESUME, TRAIN, Plan
from .progress import make_sweep_progress
from .record import read_record, record_path
from .spec import load_spec

BACKENDS = ("local", "ray")


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


def _backend(opts: SweepOptions, jobs: int, root: Path):
    if opts.backend == "ray":
        from .ray_backend import RayBackend  # optional extra: imported only when asked for

        return RayBackend(opts.address, jobs, root)
    return LocalBackend(jobs)


class IdleBackend:
    free_slots, busy = 0, False

    def close(self) -> None: ...


def run_command(opts: SweepOptions, out: Console, err: Console) -> int:
    """Run the sweep the options describe; returns the exit code."""
    if opts.backend not in BACKENDS:
        raise ConfigError(f"--backend {opts.backend[:40]!r}: choose one of: {', '.join(BACKENDS)}")
    if opts.address is not None and opts.backend != "ray":
        raise ConfigError("--address goes with --backend ray")
    jobs = opts.jobs if opts.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: run at least one cell at a time (--jobs 1 or more)")
    spec = load_spec(opts.source, grid=opts.grid, fixed=opts.fixed, seeds=opts.seeds,
                     seed_list=opts.seed_list, name=opts.name)
    root, plans, record = prepare(spec, opts.runs_dir, opts.rerun, opts.backend, jobs)
    if opts.print_commands:
        out.out("\n".join(commands(spec, plans, root)), highlight=False)
        return 0
    if opts.dry_run:
        render_sections([dry_run_section(plans, record.path)], OutputFormat.table, out)
        return 0
    # No backend (no Ray start-up) when every cell is already done.
    backend = _backend(opts, jobs, root) if any(p.action in (TRAIN, RESUME) for p in plans) else IdleBackend()
    progress = make_sweep_progress("quiet" if opts.quiet or opts.json else "auto")
    try:
        result = execute(spec, plans, record, root, backend, opts.fail_fast, progress)
    finally:
        backend.close()
    return finish(result, opts, out, err)


def dry_run_section(plans: list[Plan], record_file: Path) -> Section:
    from ..analysis.render import Cell

    rows = [[Cell(str(p.cell.index + 1)), Cell(p.cell.name), Cell(p.cell.label()), Cell(p.action),
             Cell(p.run_dir.name if p.run_dir else "")] for p in plans]
    counts = {a: sum(p.action == a for p in plans) for a in dict.fromkeys(p.action for p in plans)}
    summary = ", ".join(f"{n} to {a}" for a, n in counts.items())
    return Section(f"{len(plans)} cells ({summary}); nothing was run", ["#", "run name", "cell", "action", "existing run"],
                   rows, [f"record: {record_file}"])


def finish(result: SweepResult, opts: SweepOptions, out: Console, err: Console) -> int:
    record = result.record
    if opts.json:
        out.out(to_json(record.data, indent=2), highlight=False)
    else:
        runs = [load_run(path) for path in result.run_dirs if path.is_dir()]
        if runs:
            section = leaderboard_section(runs, f"sweep {record.data['name']}: {len(runs)} runs")
            render_sections([section], OutputFormat.table, out)
        out.out(f"record: {record.path}", highlight=False)
    for index in result.failed:
        cell = record.cell(index)
        err.print(f"cell {index + 1} {cell['name']} failed: {cell['error']}", markup=False, highlight=False)
    if result.interrupted:
        err.print("sweep interrupted; run the same command again to finish it (finished cells are skipped, "
                  "interrupted ones resumed)", markup=False, highlight=False)
        return 130
    return 1 if result.failed else 0


def sweep_run_dirs(name: str, runs_dir: Path | None) -> list[Path]:
    """The run directories a sweep's record lists, for `compare --sweep` and `ensemble --sweep`."""
    from ..rundir.writer import runs_root

    path = record_path(runs_root(runs_dir), name)
    record = read_record(path)
    if record is None:
        raise ConfigError(f"no sweep named {name[:60]!r}: {path} is missing or unreadable")
    dirs = [Path(c["run_dir"]) for c in record["cells"] if isinstance(c, dict) and isinstance(c.get("run_dir"), str)]
    if not dirs:
        raise ConfigError(f"sweep {name[:60]!r} has no runs yet")
    return dirs
