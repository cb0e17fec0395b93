"""The sweep driver: spec -> plan -> backend -> worker -> run directory, each once.

`prepare` takes the sweep's lock, resolves every cell into its config (all validated before
anything starts) and plans each from the runs already there. `execute` then owns every cell
it runs: it makes (or claims, to resume) the cell's run directory and holds its lock, hands
the directory to the backend, and records each transition in sweep.json as it happens.
Cells run up to the backend's slots at a time; a cell that fails is recorded and reported at
once while the others go on (`fail_fast`: no new cell starts after the first failure).
Ctrl-C, SIGTERM or SIGHUP stop the sweep: the signal is passed on to the running cells,
which end as `interrupted`, resumable by running the same command again; a second Ctrl-C
ends them at once (they resume from their last finished epoch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, TrickrunError
from ..rundir.files import claim_for_resume, read_summary
from ..rundir.format import FINAL, SUMMARY_FILE, Status
from ..rundir.lock import RunLock
from ..rundir.writer import RunWriter, remove_if_never_trained, runs_root
from ..signals import SignalStop
from .backend import Backend, CellEnd, CellJob
from .plan import CONFIGURED_OTHERWISE, Plan, config_mismatch, plan_cells, resolve_cells
from .record import SweepRecord, lock_sweep, read_record, record_path, recorded_runs
from .spec import SweepSpec
from .states import Action, CellState, INTERRUPTED_EXIT_CODES

POLL_S = 0.2


@dataclass
class PreparedSweep:
    spec: SweepSpec
    root: Path
    plans: list[Plan]
    record: SweepRecord
    lock: RunLock | None  # the sweep's lock (None for a dry run, which changes nothing)

    def release(self) -> None:
        if self.lock is not None:
            self.lock.release()


@dataclass
class SweepResult:
    record: SweepRecord
    failed: list[int] = field(default_factory=list)
    busy: list[int] = field(default_factory=list)
    stop_signal: int | None = None  # the signal that stopped the sweep (SIGINT: Ctrl-C)
    run_dirs: list[Path] = field(default_factory=list)


class NullProgress:
    def start(self, total: int, done: int) -> None: ...
    def note(self, text: str) -> None: ...
    def cell_started(self, plan: Plan) -> None: ...
    def cell_ended(self, plan: Plan, end: CellEnd, state: CellState) -> None: ...
    def close(self) -> None: ...


def prepare(spec: SweepSpec, runs_dir: Path | None, rerun: bool, backend: str, jobs: int,
            *, lock: bool = True, replace_record: bool = False) -> PreparedSweep:
    """Validate every cell, take the sweep's lock (unless `lock` is False: a dry run), and
    plan each cell from the runs already in the runs folder. A sweep of the same name whose
    record lists runs of cells this one leaves out is a ConfigError, unless `replace_record`."""
    root = runs_root(runs_dir)
    old_record = read_record(record_path(root, spec.name))
    spec = _in_recorded_order(spec, old_record)
    cells, configs, seeds = resolve_cells(spec)
    sweep_lock = lock_sweep(root, spec.name) if lock else None
    try:
        recorded = recorded_runs(record_path(root, spec.name), root)
        left_out = [] if replace_record else _left_out(recorded, cells, configs, root, rerun)
        if left_out:
            raise _would_drop(spec.name, left_out, _other_base(spec, old_record))
        plans = plan_cells(cells, configs, root, rerun, recorded)
        record = SweepRecord(record_path(root, spec.name), spec, cells, seeds, backend, jobs)
        for plan in plans:
            _record_plan(record, plan)
    except BaseException:
        if sweep_lock is not None:
            sweep_lock.release()
        raise
    return PreparedSweep(spec, root, plans, record, sweep_lock)


def _in_recorded_order(spec: SweepSpec, record: dict | None) -> SweepSpec:
    """The spec with its grid's axes in the order its sweep's record has them: that order names
    the cells, and the same axes given in another order (`--grid` options swapped) are the
    same cells."""
    old = record.get("grid") if record else None
    if isinstance(old, dict) and list(old) != list(spec.grid) and set(old) == set(spec.grid):
        return dataclasses.replace(spec, grid={key: spec.grid[key] for key in old})
    return spec


LEFT_OUT = "a cell this command leaves out"


def _left_out(recorded: dict[str, str], cells, configs, root: Path, rerun: bool) -> list[tuple[str, str]]:
    """The runs the record lists that a new record would not, each with why: of cells no
    longer in the sweep, or (unless --rerun, which trains every cell afresh) whose config the
    cell no longer has, as when --set or the base file changed under the same grid, or whose
    config.yaml cannot be read, so that nothing tells it is the cell's."""
    wanted = {cell.name: cfg for cell, cfg in zip(cells, configs)}
    left = []
    for name, run in recorded.items():
        why = LEFT_OUT if name not in wanted else \
            None if rerun else config_mismatch(root / run, wanted[name])
        if why is not None:
            left.append((run, why))
    return left


def _other_base(spec: SweepSpec, record: dict | None) -> str:
    """A sentence naming the base config the sweep's record was written from, when it is not this
    command's: two files whose names clean to one sweep name (`lr sweep.yaml`, `lr-sweep.yaml`)
    meet so."""
    old = record.get("base") if record else None
    if not isinstance(old, str) or Path(old).resolve() == spec.base.resolve():
        return ""
    if not Path(old).is_absolute() and Path(old).name == spec.base.name:
        return ""  # given from a folder the record does not keep (`../lr.yaml` from a subfolder): maybe this one
    return f" Its record was written from the base config {old}, not {spec.base}."


def _would_drop(name: str, runs: list[tuple[str, str]], other_base: str = "") -> ConfigError:
    shown = "; ".join(f"{run}: {why}" for run, why in runs[:3]) + \
        (f"; ... ({len(runs) - 3} more)" if len(runs) > 3 else "")
    unreadable = any(why not in (LEFT_OUT, CONFIGURED_OTHERWISE) for _, why in runs)  # config.yaml's own warning
    repair = "restore the run's config.yaml, " if unreadable else ""
    return ConfigError(
        f"sweep {name!r} already has {len(runs)} run{'s' if len(runs) > 1 else ''} this command would drop from "
        f"its record ({shown}); the record would no longer list them, and --sweep {name} would no longer take "
        f"them.{other_base} Keep their values, seeds and settings (finished cells are skipped), {repair}give this sweep "
        f"another --name, or remove the old one first: trickrun rm --sweep {name}")


def _record_plan(record: SweepRecord, plan: Plan) -> None:
    """What the plan found, before anything runs (not yet saved)."""
    index, action = plan.cell.index, plan.action
    if action is Action.SKIP:
        record.set(index, CellState.of_run(plan.status), save=False, run_dir=plan.run_dir, action=action)
    elif action is Action.RESUME:
        record.set(index, CellState.INTERRUPTED, save=False, run_dir=plan.run_dir, action=action)
    elif action is Action.BUSY:
        record.set(index, CellState.BUSY, save=False, run_dir=plan.run_dir, action=action,
                   error="another process is training this cell's run")


def execute(sweep: PreparedSweep, backend: Backend, fail_fast: bool = False, progress=None) -> SweepResult:
    """Run every cell the plan says to run; the record is saved at every transition."""
    progress = progress or NullProgress()
    record = sweep.record
    result = SweepResult(record, busy=[p.cell.index for p in sweep.plans if p.action is Action.BUSY])
    pending = [p for p in sweep.plans if p.action.runs]
    by_index = {p.cell.index: p for p in sweep.plans}
    record.save()
    progress.start(len(sweep.plans), sum(p.action is Action.SKIP for p in sweep.plans))
    for index in result.busy:
        progress.note(f"cell {index + 1} {record.cell(index)['name']}: busy (another process is training its run "
                      f"{record.cell(index)['run_dir']}); left alone")
    stops = SignalStop()
    jobs: dict[int, CellJob] = {}
    try:
        with stops.installed():
            try:
                while pending or backend.running:
                    while pending and backend.running < backend.slots and not (fail_fast and result.failed):
                        with stops.held():  # a cell is handed over whole, or not at all
                            _start(sweep, pending.pop(0), backend, jobs, result, progress)
                    if fail_fast and result.failed and not backend.running:
                        break
                    # poll forgets the cells it reports: their ends are recorded before a stop lands
                    with stops.held():
                        for end in backend.poll(POLL_S):
                            _end(sweep, by_index[end.index], jobs.pop(end.index), end, result, progress)
            except KeyboardInterrupt as stop:  # Ctrl-C, or a StopSignal (SIGTERM, SIGHUP)
                result.stop_signal = getattr(stop, "signum", 2)
                _stop(sweep, backend, stops, jobs, by_index, result, progress)
    finally:
        try:
            _interrupt_running(record)  # the record first: a display that fails to close must not leave it "running"
            record.save()
        finally:
            progress.close()
    result.run_dirs = [Path(c["run_dir"]) for c in record.data["cells"] if c.get("run_dir")]
    return result


def _claim(sweep: PreparedSweep, plan: Plan) -> CellJob:
    """Make the cell's run directory (config.yaml, a "running" summary, its lock held here),
    or lock the run it resumes."""
    index = plan.cell.index
    if plan.action is Action.RESUME:
        lock, _ = claim_for_resume(plan.run_dir)
        return CellJob(index, plan.run_dir, lock, False, plan.config)
    writer = RunWriter.create(sweep.root, plan.cell.name, plan.config_yaml, plan.config.seed)
    lock, writer.lock = writer.lock, None  # the lock outlives the writer: it goes to the worker
    writer.close()
    return CellJob(index, writer.path, lock, True, plan.config)


def _start(sweep: PreparedSweep, plan: Plan, backend: Backend, jobs: dict[int, CellJob],
           result: SweepResult, progress) -> None:
    record, index = sweep.record, plan.cell.index
    try:
        job = _claim(sweep, plan)
    except ConfigError as err:  # its run was taken, finished or removed since the plan was made
        _unclaimed(sweep, plan, err, result, progress)
        return
    record.set(index, CellState.RUNNING, run_dir=job.run_dir, action=plan.action, error=None)
    try:
        backend.submit(job)
    except (OSError, TrickrunError) as err:
        job.lock.release()
        _end(sweep, plan, job, CellEnd(index, None, f"could not start: {err}", None), result, progress)
        return
    jobs[index] = job
    progress.cell_started(plan)


def _unclaimed(sweep: PreparedSweep, plan: Plan, err: ConfigError, result: SweepResult, progress) -> None:
    """A cell whose run could not be claimed: its final state if another process finished
    the run it was to resume, else busy with the reason (exit 1), never silently skipped."""
    index = plan.cell.index
    summary, _ = read_summary(plan.run_dir / SUMMARY_FILE) if plan.run_dir else (None, [])
    status = summary.get("status") if summary else None
    if isinstance(status, str) and status in FINAL:  # a final status never changes again
        sweep.record.set(index, CellState.of_run(status), action=Action.SKIP, error=None)
        progress.note(f"cell {index + 1} {plan.cell.name}: another process finished its run ({status}); skipped")
        return
    sweep.record.set(index, CellState.BUSY, action=Action.BUSY, error=str(err))
    result.busy.append(index)
    progress.note(f"cell {index + 1} {plan.cell.name}: {err}")


def _end_state(end: CellEnd, stopping: bool) -> tuple[CellState, str | None]:
    summary = end.summary or {}
    status = summary.get("status")
    if status in (Status.COMPLETED, Status.EARLY_STOPPED, Status.DIVERGED):
        return CellState(status), None
    if status == Status.INTERRUPTED:
        return CellState.INTERRUPTED, end.error
    if end.exit_code in INTERRUPTED_EXIT_CODES or stopping:  # stopped before it could say more
        return CellState.INTERRUPTED, None
    return CellState.FAILED, end.error or f"exit code {end.exit_code}"


def _end(sweep: PreparedSweep, plan: Plan, job: CellJob, end: CellEnd, result: SweepResult, progress,
         stopping: bool = False) -> None:
    state, error = _end_state(end, stopping)
    run_dir: Path | None = job.run_dir
    if state is CellState.FAILED:
        result.failed.append(plan.cell.index)
    # A new run directory its worker never began to train (it failed, or was stopped while it
    # started: no summary) is no run; left, `ls` would list it as stale for good.
    never_began = state is CellState.FAILED or (state is CellState.INTERRUPTED and end.summary is None)
    if job.fresh and never_began and _remove_if_never_trained(job.run_dir):
        run_dir = None
    sweep.record.set(plan.cell.index, state, run_dir=run_dir, error=error)
    progress.cell_ended(plan, end, state)


def _remove_if_never_trained(run_dir: Path) -> bool:
    """Remove a fresh run directory in which no epoch was recorded (under its lock, so never
    while a process trains it)."""
    try:
        lock = RunLock.acquire(run_dir)
    except TrickrunError:
        return False
    try:
        return remove_if_never_trained(run_dir)
    finally:
        lock.release()


def _stop(sweep: PreparedSweep, backend: Backend, stops: SignalStop, jobs: dict[int, CellJob],
          by_index: dict[int, Plan], result: SweepResult, progress) -> None:
    """Pass the stop on, then wait for every running cell to end; a second stop ends them at once."""
    if backend.running:
        progress.note(f"stopping: {backend.running} running cell(s) save their last epoch; "
                      f"press Ctrl-C again to end them at once")
    backend.stop(result.stop_signal)
    while backend.running:
        try:
            with stops.held():  # as in execute: no reported end is lost to the second stop
                for end in backend.poll(POLL_S):
                    _end(sweep, by_index[end.index], jobs.pop(end.index), end, result, progress, stopping=True)
        except KeyboardInterrupt:
            backend.kill()


def _interrupt_running(record: SweepRecord) -> None:
    """A sweep that ends with cells still running was aborted by an error (a full disk, say):
    the caller's backend.close() kills those cells, which are then resumable, not running."""
    for cell in record.data["cells"]:
        if cell["status"] == CellState.RUNNING:
            record.set(cell["index"], CellState.INTERRUPTED, save=False)
