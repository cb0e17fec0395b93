"""`trickrun lesson`: run every selected claim's sweeps through the sweep driver, measure the
runs, judge the comparisons, and write the report.

Sweeps run one after another on one backend, each with its cells up to `jobs` at a time.
A re-run skips the finished cells (the sweep driver's plan), so an interrupted report
resumes where it stopped. `--quick` renames every sweep `<name>-quick`, so that its small
runs never stand in for the full ones.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from rich.console import Console

from ..display import say
from ..errors import ConfigError
from ..rundir.format import FINAL
from ..rundir.reader import load_run
from ..sweep.backends import LazyBackend, check_backend
from ..sweep.driver import PreparedSweep, execute, prepare
from ..sweep.progress import make_sweep_progress
from ..sweep.record import BACKEND_LOG
from ..sweep.spec import SweepSpec, given_seeds, load_spec, seeds_from_count
from .claims import CLAIM_NUMBERS, CLAIMS, QUICK_SEEDS, Claim
from .results import ClaimResult, LessonOptions
from .samples import claim_samples
from .verdicts import judge, outcomes_for

CONFIG_FOLDER = Path("configs") / "lesson"


def parse_claims(text: str | None) -> list[Claim]:
    if text is None:
        return list(CLAIMS)
    numbers = []
    for part in text.split(","):
        try:
            number = int(part)
        except ValueError:
            number = None
        if number not in CLAIM_NUMBERS:
            raise ConfigError(f"--claims {text[:40]!r}: give claim numbers from "
                              f"{CLAIM_NUMBERS[0]} to {CLAIM_NUMBERS[-1]} separated by commas, e.g. 1,4,9")
        if number not in numbers:
            numbers.append(number)
    return [c for c in CLAIMS if c.number in numbers]


def config_folder() -> Path:
    """configs/lesson/ of the current folder, else of the checkout trickrun runs from."""
    for folder in (Path.cwd() / CONFIG_FOLDER, Path(__file__).resolve().parents[2] / CONFIG_FOLDER):
        if folder.is_dir():
            return folder
    raise ConfigError(f"no {CONFIG_FOLDER} folder here or beside the trickrun package; run from a checkout")


def claim_seeds(claim: Claim, quick: bool, seeds: int | None, seed_list: str | None, first_seed: int) -> list[int]:
    """`--seed-list`'s seeds, else N seeds from `--first-seed`: N is `--seeds`, else --quick's
    count, else the number the claim declares for the full report."""
    if (given := given_seeds(None, seed_list)) is not None:
        return given
    count = seeds if seeds is not None else QUICK_SEEDS if quick else claim.seeds
    return [first_seed + s for s in seeds_from_count(count)]


def claim_specs(claim: Claim, folder: Path, quick: bool, seeds: int | None,
                seed_list: str | None = None, first_seed: int = 0) -> list[SweepSpec]:
    """The claim's sweeps, with `--quick`'s overrides and the claim's seeds applied (claim_seeds)."""
    specs = []
    for file in claim.sweeps:
        spec = load_spec(folder / file, grid=[], fixed=list(claim.quick) if quick else [], seeds=None,
                         seed_list=None, name=None)
        spec.seeds = claim_seeds(claim, quick, seeds, seed_list, first_seed)
        if quick:
            spec.name = f"{spec.name}-quick"
        specs.append(spec)
    return specs


def check_options(opts: LessonOptions) -> int:
    check_backend(opts.backend, None)
    jobs = opts.jobs if opts.jobs is not None else (os.cpu_count() or 1)
    if jobs < 1:
        raise ConfigError(f"--jobs {jobs}: run at least one cell at a time (--jobs 1 or more)")
    given_seeds(opts.seeds, opts.seed_list)
    if opts.first_seed != 0 and opts.seed_list is not None:
        raise ConfigError("--first-seed and --seed-list: give one of them (--seed-list names every seed)")
    if opts.first_seed < 0:
        raise ConfigError(f"--first-seed {opts.first_seed}: seeds are whole numbers from 0")
    if os.path.exists(opts.out) and not os.path.isdir(opts.out):  # False, not OSError, for a name too long
        raise ConfigError(f"--out {opts.out}: is a file; give a folder for lesson.md and the figures")
    return jobs


def make_out_folder(out: Path) -> None:
    """Before any training: a report that cannot be written is no reason to train."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        from .report import out_folder_error  # the report module brings matplotlib

        raise out_folder_error(out, err) from None


def run_claims(claims: list[Claim], opts: LessonOptions, jobs: int, err: Console) -> tuple[list[ClaimResult], int | None]:
    """Every claim's sweeps, all validated and locked before the first cell starts;
    (results, the signal that stopped them or None)."""
    folder = config_folder()
    prepared: list[tuple[Claim, PreparedSweep]] = []
    try:
        for claim in claims:
            for spec in claim_specs(claim, folder, opts.quick, opts.seeds, opts.seed_list, opts.first_seed):
                # Another seed range replaces a claim's record; its runs stay, reused when asked again.
                prepared.append((claim, prepare(spec, opts.runs_dir, False, opts.backend, jobs, replace_record=True)))
        backend = LazyBackend(opts.backend, jobs, prepared[0][1].record.path.parent / BACKEND_LOG)
        try:
            if any(p.action.runs for _, sweep in prepared for p in sweep.plans):
                backend.start()
            return _run_prepared(prepared, backend, err)
        finally:
            backend.close()
    finally:
        for _, sweep in prepared:
            sweep.release()


def _run_prepared(prepared, backend, err: Console) -> tuple[list[ClaimResult], int | None]:
    results: dict[int, ClaimResult] = {}
    for claim, sweep in prepared:
        say(err, f"claim {claim.number} ({claim.title}): sweep {sweep.spec.name}, {len(sweep.plans)} cells")
        outcome = execute(sweep, backend, False, make_sweep_progress("auto"))
        result = results.setdefault(claim.number, ClaimResult(claim, [], {}, None))
        _gather(result, outcome)
        if outcome.stop_signal is not None:
            return list(results.values()), outcome.stop_signal
    return list(results.values()), None


def _gather(result: ClaimResult, outcome) -> None:
    """The finished runs of one sweep; a note for every cell that has none."""
    result.failed += len(outcome.failed)
    for index in outcome.failed:
        cell = outcome.record.cell(index)
        result.notes.append(f"cell {cell['name']} failed: {str(cell['error']).splitlines()[0][:200]}")
    for path in outcome.run_dirs:
        if not path.is_dir():
            continue
        run = load_run(path)
        if run.status in FINAL:
            result.runs.append(run)
        else:
            result.notes.append(f"run {path.name} has status {run.status}: left out")


def measure_claim(result: ClaimResult, quick: bool) -> None:
    claim = result.claim
    result.threshold = claim.quick_threshold if quick else claim.threshold
    result.samples, notes = claim_samples(claim, result.runs, result.threshold)
    result.notes += notes


def run_lesson(opts: LessonOptions, err: Console) -> int:
    """Run, measure, judge, write; the exit code (128 + the signal when stopped: 130 for Ctrl-C;
    1 when cells failed)."""
    jobs = check_options(opts)
    claims = parse_claims(opts.claims)
    make_out_folder(opts.out)
    started = time.monotonic()
    results, stop_signal = run_claims(claims, opts, jobs, err)
    if stop_signal is not None:
        say(err, "interrupted; run the same command again to go on (finished runs are skipped)")
        return 128 + stop_signal
    outcomes = []
    for result in results:
        measure_claim(result, opts.quick)
        result.outcomes = outcomes_for(result.claim.number, result.claim.comparisons, result.samples)
        outcomes += result.outcomes
    judge(outcomes)
    from .report import write_report  # matplotlib, only once there is something to draw

    path = write_report(results, opts, jobs, time.monotonic() - started)
    say(err, f"wrote {path}")
    return 1 if any(r.failed for r in results) else 0
