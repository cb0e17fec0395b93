"""The sweep driver: plan the cells, run them on a backend, keep sweep.json current.

Every cell is validated before anything starts. Cells run up to `jobs` at a time; a cell
that fails is recorded and reported at once while the others go on (`fail_fast`: no new
cell starts after the first failure). Ctrl-C stops the sweep: the running cells end as
`interrupted`, resumable by running the same sweep command again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..rundir.writer import runs_root
from .local import Outcome, Task, shell_command
from .plan import BUSY, RESUME, TRAIN, Plan, newest_run, plan_cells, resolve_cells
from .record import FAILED, RUNNING, SweepRecord, record_path
from .spec import SweepSpec


@dataclass
class SweepResult:
    record: SweepRecord
    plans: list[Plan]
    root: Path
    failed: list[int] = field(default_factory=list)
    interrupted: bool = False
    run_dirs: list[Path] = field(default_factory=list)


class NullProgress:
    def start(self, total: int, done: int) -> None: ...
    def cell_started(self, plan: Plan) -> None: ...
    def cell_ended(self, plan: Plan, outcome: Outcome, status: str) -> None: ...
    def close(self) -> None: ...


def prepare(spec: SweepSpec, runs_dir: Path | None, rerun: bool, backend: str, jobs: int):
    """Validate every cell, find what each needs, and start the record (not yet written)."""
    root = runs_root(runs_dir)
    cells, configs, seeds = resolve_cells(spec)
    plans = plan_cells(cells, configs, root, rerun)
    record = SweepRecord(record_path(root, spec.name), spec, cells, seeds, backend, jobs)
    for plan in plans:
        if plan.run_dir is not None:
            record.update(plan.cell.index, run_dir=plan.run_dir, status=plan.status, action=plan.action)
    return root, plans, record


def commands(spec: SweepSpec, plans: list[Plan], root: Path) -> list[str]:
    """One `trickrun train ...` line per cell, for GNU parallel, xargs or a job array."""
    return [shell_command(_task(spec, Plan(p.cell, p.config, TRAIN), root)) for p in plans]


def _task(spec: SweepSpec, plan: Plan, root: Path) -> Task:
    cell = plan.cell
    return Task(cell.index, plan.action, spec.base, [*spec.fixed, *cell.overrides()], cell.name, cell.seed,
                root, plan.run_dir if plan.action == RESUME else None)


def execute(spec: SweepSpec, plans: list[Plan], record: SweepRecord, root: Path, backend,
            fail_fast: bool = False, progress=None) -> SweepResult:
    progress = progress or NullProgress()
    result = SweepResult(record, plans, root)
    todo = [p for p in plans if p.action in (TRAIN, RESUME)]
    for p in plans:
        if p.action == BUSY:
            record.update(p.cell.index, action=BUSY, error="another process is training this cell's run")
    record.save()
    progress.start(len(plans), len(plans) - len(todo))
    by_index = {p.cell.index: p for p in plans}
    pending = list(todo)
    try:
        while pending or backend.busy:
            while pending and backend.free_slots > 0 and not (fail_fast and result.failed):
                plan = pending.pop(0)
                backend.submit(_task(spec, plan, root))
                record.update(plan.cell.index, status=RUNNING, action=plan.action, error=None)
                progress.cell_started(plan)
            if fail_fast and result.failed and not backend.busy:
                break
            for outcome in backend.wait(0.2):
                _record_outcome(result, by_index[outcome.key], outcome, progress)
    except KeyboardInterrupt:
        result.interrupted = True
        backend.interrupt()
        for outcome in backend.drain():
            _record_outcome(result, by_index[outcome.key], outcome, progress)
    finally:
        progress.close()
        record.save()
    result.run_dirs = [Path(c["run_dir"]) for c in record.data["cells"] if c.get("run_dir")]
    return result


def _record_outcome(result: SweepResult, plan: Plan, outcome: Outcome, progress) -> None:
    record, index = result.record, plan.cell.index
    # a process killed or stopped early cannot say which run directory it made: take the
    # newest of the cell's name, which the next re-run resumes
    run_dir = outcome.run_dir or newest_run(result.root, plan.cell.name)
    if outcome.error is None:
        status = str(outcome.summary.get("status"))
        record.update(index, status=status, run_dir=run_dir, error=None)
    else:
        status = FAILED
        record.update(index, status=FAILED, run_dir=run_dir, error=outcome.error)
        result.failed.append(index)
    record.save()
    progress.cell_ended(plan, outcome, status)
