"""The same as `trickrun train` and `trickrun resume`, from Python (notebooks, scripts).

    >>> from trickrun.api import train
    >>> result = train("configs/baseline.yaml", ["optimizer.lr=0.01"], progress="quiet")
    >>> result.run_dir, result.summary["test"]["acc"]
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import Config, dump_yaml, load_config
from .data.load import load_dataset
from .errors import ConfigError
from .rundir.files import claim_for_resume
from .rundir.lock import RunLock
from .rundir.format import CHECKPOINT_FILE, CONFIG_FILE
from .rundir.writer import RunWriter, remove_if_never_trained, runs_root


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]
    stop_signal: int | None = None  # what interrupted the run: SIGINT (Ctrl-C), SIGTERM, SIGHUP

    @property
    def exit_code(self) -> int:
        """The CLI's exit code: 0, or 128 + the signal for an interrupted run (130 Ctrl-C,
        143 SIGTERM, 129 SIGHUP), as a shell reports a process that signal killed."""
        if self.summary["status"] != "interrupted":
            return 0
        return 128 + (self.stop_signal or signal.SIGINT)


class OutOfMemory(ConfigError):
    """A run ran out of memory part-way. Its directory was ended as "interrupted", so it can
    be resumed once there is more memory; `result` is what train/resume would have returned.
    A ConfigError (exit 2) like running out of memory while building the model."""

    def __init__(self, result: RunResult):
        s = result.summary
        super().__init__(
            f"ran out of memory in epoch {s.get('stopped_epoch')}; the run is kept as interrupted after "
            f"{s.get('epochs_run')} finished epoch(s). Free some memory (or use a smaller train.batch_size "
            f"or model.hidden in a new run), then resume with: trickrun resume {result.run_dir}")
        self.result = result


def _prepare(cfg: Config, progress: str):
    """Reporter, data and trainer: everything that can fail on the user's input, done
    before the run directory exists so that a failure leaves nothing behind."""
    from .memory import check_fits
    from .progress import RichReporter, make_reporter
    from .signals import SignalStop
    from .train import Trainer

    check_fits(cfg)  # arithmetic only: refuses a model that cannot fit before loading data
    reporter = make_reporter(progress)
    # SIGTERM or SIGHUP while the data downloads ends it as Ctrl-C does (StopSignal is a
    # KeyboardInterrupt), so the partial file is deleted, not left to an hour-long tidy-up.
    with SignalStop().installed():
        data = load_dataset(cfg.data, progress=isinstance(getattr(reporter, "display", reporter), RichReporter))
    try:
        trainer = Trainer(cfg, data, reporter)
    except MemoryError:
        raise ConfigError(
            f"model.hidden: {cfg.model.hidden} needs more memory than this machine has; use smaller layers"
        ) from None
    return reporter, trainer


def _run(trainer, writer: RunWriter, reporter, *, made_here: bool = False) -> RunResult:
    """Train into `writer`'s run directory. If the run fails before its first epoch is
    recorded, a directory `made_here` (by this call's `train`, not a sweep's driver, which
    records the failure itself) is removed: a run that never started is no run. The stop
    signals stay installed to the summary: one that comes once the loop has ended waits for the
    run's end to be written (ending.run_until_ended), which then says how the run ended."""
    try:
        with trainer.signals.installed():
            try:
                result = trainer.run(writer)
            finally:
                getattr(reporter, "close", lambda: None)()
            summary = writer.finish(result)
    except BaseException:
        if made_here:
            remove_if_never_trained(writer.path)  # under the lock the writer still holds
        raise
    finally:
        writer.close()  # lets go of the run's lock even when the run failed
    outcome = RunResult(writer.path, summary, trainer.stop_signal)
    if trainer.out_of_memory:
        raise OutOfMemory(outcome)
    return outcome


def train(
    config: str | Path | Mapping[str, Any] | Config,
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    seed: int | None = None,
    runs_dir: str | Path | None = None,
    progress: str = "auto",
) -> RunResult:
    """Train one run exactly as `trickrun train` does and return its directory and summary.

    `config` is a YAML path, a mapping with the same keys, or a loaded Config; `overrides`
    are `--set` strings such as "optimizer.lr=0.01" (a list, even of one); `name` and `seed`
    win over both. `progress` is "auto", "rich", "plain" or "quiet". Config and data problems raise
    ConfigError or DataError before any run directory is made; an error before the first
    epoch is recorded removes the run directory again before it is raised. A Ctrl-C, SIGTERM or SIGHUP
    while training ends the run with status "interrupted" (the summary says so, and
    `stop_signal` which) instead of raising; running out of memory ends it the same way and
    then raises OutOfMemory.
    """
    if isinstance(config, Config):
        config = config.to_dict()
    cfg = load_config(config, overrides, name=name, seed=seed)
    reporter, trainer = _prepare(cfg, progress)
    writer = RunWriter.create(runs_root(runs_dir), cfg.name, dump_yaml(cfg.to_dict()), cfg.seed)
    return _run(trainer, writer, reporter, made_here=True)


def resume(run_dir: str | Path, *, progress: str = "auto") -> RunResult:
    """Continue an interrupted run (or one whose process died) from its last checkpoint.

    The run goes on exactly as if it had never stopped: its metrics are appended to the same
    metrics.jsonl and equal, timings aside, those of an uninterrupted run of the same config
    and seed on the same machine. A finished run (completed, early_stopped, diverged) or one
    that another process is training is a ConfigError; an unreadable checkpoint a RunDirError,
    raised before anything in the run directory changes. The run's lock is taken before its
    status is checked and held until the run ends, so two resumes of one run cannot both go on.
    """
    path = Path(run_dir)
    lock, _ = claim_for_resume(path)
    try:
        return run_claimed(path, lock, fresh=False, progress=progress)
    finally:
        lock.release()


def run_claimed(path: Path, lock: RunLock, *, fresh: bool, progress: str = "quiet") -> RunResult:
    """Train the run directory `path`, whose lock this process holds: from its start when
    `fresh` (a sweep driver made it: config.yaml and a "running" summary, nothing else), else
    from its checkpoint (or its start, if it stopped before its first checkpoint)."""
    cfg = load_config(path / CONFIG_FILE)
    reporter, trainer = _prepare(cfg, progress)
    if not fresh and (path / CHECKPOINT_FILE).is_file():
        trainer.resume_from(path)
    return _run(trainer, RunWriter.reopen(path, trainer.epochs_done, lock, resumed=not fresh), reporter)
