"""One process at a time trains a run directory (rundir/lock.py), and the lock, not the pid,
tells a run that is training from one whose process is gone."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest

import trickrun.rundir.writer
from helpers import InterruptAt
from runfactory import make_run
from subproc import children, start, wait_for_epochs  # noqa: F401 (children: a fixture)
from trickrun.api import train
from trickrun.errors import ConfigError
from trickrun.rundir import files
from trickrun.rundir.files import check_resumable, effective_status, read_summary
from trickrun.rundir.format import LOCK_FILE, RESUMABLE, Status
from trickrun.rundir.lock import RunLock, is_locked
from trickrun.rundir.reader import load_run, scan_runs
from trickrun.rundir.writer import RunWriter
from trickrun.train import NullReporter


def can_resume(path: Path) -> bool:
    """Whether the run at `path` stopped part-way: interrupted, or no process trains it any more."""
    return effective_status(read_summary(path / "summary.json")[0], path) in RESUMABLE


CFG = {"data": {"val_size": 100}, "model": {"hidden": [8]}, "train": {"epochs": 100000},
       "early_stopping": {"enabled": False}, "schedule": {"name": "constant"}}


def test_two_resumes_of_one_run_at_once_one_trains_and_the_other_exits_2_naming_it(fake_data, monkeypatch, children):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(3, 1))
    cut = train(CFG, progress="quiet")
    assert cut.summary["status"] == "interrupted" and cut.summary["epochs_run"] == 2

    procs = [start("resume", str(cut.run_dir), "--quiet") for _ in range(2)]
    children.extend(procs)
    deadline, loser = time.monotonic() + 60, None
    while loser is None and time.monotonic() < deadline:  # the one without the lock ends at once
        time.sleep(0.01)
        loser = next((p for p in procs if p.poll() is not None), None)
    assert loser is not None, "neither resume ended: both are training"
    winner = procs[1 - procs.index(loser)]
    _, loser_err = loser.communicate(timeout=60)
    assert loser.returncode == 2, loser_err
    assert f"is being trained by pid {winner.pid}" in loser_err and "Traceback" not in loser_err

    wait_for_epochs(cut.run_dir, 5, winner)
    winner.send_signal(signal.SIGTERM)
    winner.communicate(timeout=60)
    assert winner.returncode == 143
    epochs = [json.loads(line)["epoch"] for line in (cut.run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, len(epochs) + 1)) and len(epochs) >= 5  # no epoch twice
    summary = json.loads((cut.run_dir / "summary.json").read_text())
    assert summary["resumed"] == 1 and summary["epochs_run"] == len(epochs)


def test_a_running_summary_with_a_live_pid_but_no_lock_held_is_stale(tmp_path: Path) -> None:
    # The pid is alive (this test's own process): only the unheld lock tells that the run is dead.
    path = make_run(tmp_path, "reused", status="running", pid=os.getpid())
    (path / LOCK_FILE).write_text(json.dumps({"pid": os.getpid(), "host": "here"}))
    summary = json.loads((path / "summary.json").read_text())
    assert effective_status(summary, path) is Status.STALE
    assert load_run(path).status is Status.STALE
    assert [row.status for row in scan_runs(tmp_path)[0]] == [Status.STALE]
    assert can_resume(path)
    assert check_resumable(path)["pid"] == os.getpid()


def test_a_run_whose_lock_is_held_is_running_and_cannot_be_taken(tmp_path: Path) -> None:
    path = make_run(tmp_path, "held", status="running", pid=2**30)  # a dead pid: the lock wins over it
    lock = RunLock.acquire(path)
    try:
        assert is_locked(path) is True
        assert load_run(path).status is Status.RUNNING and not can_resume(path)
        with pytest.raises(ConfigError, match="still running"):
            check_resumable(path)
        with pytest.raises(ConfigError, match=f"is being trained by pid {os.getpid()} on host"):
            RunLock.acquire(path)
    finally:
        lock.release()
    assert is_locked(path) is False and load_run(path).status is Status.STALE


def test_a_run_from_before_the_lock_falls_back_to_its_pid(tmp_path: Path) -> None:
    alive = make_run(tmp_path, "alive", status="running")  # this process, no lock file
    assert is_locked(alive) is None
    assert load_run(alive).status is Status.RUNNING and not can_resume(alive)
    dead = make_run(tmp_path, "dead", status="running", pid=2**30)
    assert load_run(dead).status is Status.STALE and can_resume(dead)


def test_train_locks_the_directory_before_writing_anything_and_holds_it_while_training(fake_data, monkeypatch):
    seen = []
    real_write = trickrun.rundir.writer.write_atomic

    def write_atomic(path, data):
        seen.append((path.name, is_locked(path.parent)))
        real_write(path, data)

    class Probe(NullReporter):
        def batch(self, epoch, index, loss, correct, size):
            seen.append(("batch", is_locked(self.run_dir)))
            raise KeyboardInterrupt

        def start(self, *, epochs, batches, run_dir):
            self.run_dir = run_dir

    monkeypatch.setattr(trickrun.rundir.writer, "write_atomic", write_atomic)
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: Probe())
    result = train(CFG, progress="quiet")
    assert seen[:3] == [("config.yaml", True), ("summary.json", True), ("batch", True)]
    assert is_locked(result.run_dir) is False  # let go when the run ended


def test_a_failed_run_lets_go_of_its_lock(fake_data, monkeypatch):
    class Broken(NullReporter):  # fails after the first epoch: the run is kept (a failure before is no run)
        def epoch(self, record):
            self.recorded = True

        def batch(self, *args):
            if getattr(self, "recorded", False):
                raise RuntimeError("a bug")

    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: Broken())
    with pytest.raises(RuntimeError):
        train(CFG, progress="quiet")
    (run_dir,) = (Path(os.environ["TRICKRUN_RUNS_DIR"])).iterdir()
    assert is_locked(run_dir) is False


def test_ls_asks_the_lock_only_of_runs_whose_summary_says_running(tmp_path: Path, monkeypatch) -> None:
    for i in range(20):
        make_run(tmp_path, f"done{i}")
    for i in range(3):
        make_run(tmp_path, f"live{i}", status="running")
    asked = []
    monkeypatch.setattr(files, "is_locked", lambda path: asked.append(path.name) or None)
    rows, _ = scan_runs(tmp_path)
    assert len(rows) == 23 and sorted(asked) == [f"live{i}-20240501-120000" for i in range(3)]


def test_reopen_without_a_lock_takes_it_and_refuses_a_held_run(tmp_path: Path) -> None:
    writer = RunWriter.create(tmp_path, "r", "seed: 5\n", seed=5)
    with pytest.raises(ConfigError, match="is being trained by"):
        RunWriter.reopen(writer.path, 0)
    writer.finish({"status": Status.INTERRUPTED, "epochs_run": 0})
    again = RunWriter.reopen(writer.path, 0)
    assert is_locked(writer.path) is True
    again.close()
    assert is_locked(writer.path) is False


def test_resume_takes_the_lock_before_it_reads_the_status(fake_data, monkeypatch):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(2, 1))
    cut = train({**CFG, "train": {"epochs": 3}}, progress="quiet")
    real_read = files.read_summary
    locked_when_read = []

    def read_summary(path):
        locked_when_read.append(is_locked(path.parent))
        return real_read(path)

    monkeypatch.setattr(files, "read_summary", read_summary)
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    from trickrun.api import resume

    assert resume(cut.run_dir, progress="quiet").summary["status"] == "completed"
    assert locked_when_read and all(locked_when_read)  # no other process could act between check and training


def test_a_lock_file_that_is_a_link_or_a_pipe_is_never_written_through_or_waited_on(tmp_path: Path) -> None:
    run_dir = make_run(tmp_path, "linked", status="interrupted")
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (run_dir / LOCK_FILE).unlink(missing_ok=True)
    (run_dir / LOCK_FILE).symlink_to(victim)
    with pytest.raises(ConfigError, match="is a symbolic link, which trickrun does not write through"):
        RunLock.acquire(run_dir)
    assert victim.read_text() == "precious\n"
    assert is_locked(run_dir) is None  # a reader does not follow it either

    piped = make_run(tmp_path, "piped", status="interrupted")
    (piped / LOCK_FILE).unlink(missing_ok=True)
    os.mkfifo(piped / LOCK_FILE)
    assert is_locked(piped) in (None, False)  # at once: opening a pipe to read would wait for a writer
