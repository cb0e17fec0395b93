"""`trickrun sweep` end to end on the small fake dataset (no MNIST): the driver in a process
of its own, each cell in a worker process that takes over the run directory the driver made.
Every wait is on a state (epochs recorded, locks held), never on a duration."""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import pytest
import yaml

from subproc import children, start  # noqa: F401 (children: a fixture)
from trickrun.rundir.lock import is_locked

QUICK = "data: {val_size: 100}\nmodel: {hidden: [8]}\ntrain: {epochs: 2, batch_size: 64}\n"
ENDLESS = ("data: {val_size: 100}\nmodel: {hidden: [8]}\ntrain: {epochs: 100000, batch_size: 64}\n"
           "early_stopping: {enabled: false}\nschedule: {name: constant}\n")


def run_dirs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.is_dir() and p.name != "sweeps") if runs.exists() else []


def record(runs: Path, name: str) -> dict:
    return json.loads((runs / "sweeps" / name / "sweep.json").read_text())


def epochs(run_dir: Path) -> int:
    try:
        return (run_dir / "metrics.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def wait_until(predicate, proc, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if proc.poll() is not None:
            raise AssertionError(f"the sweep ended early ({proc.returncode}): {proc.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def test_cells_train_with_their_own_seeds_and_a_rerun_skips_them(fake_data, tmp_path, children):
    config = tmp_path / "quick.yaml"
    config.write_text(QUICK)
    runs = tmp_path / "runs"
    args = ["sweep", str(config), "--grid", "seed=1,2", "--grid", "optimizer.lr=0.01,0.001", "--jobs", "2",
            "--runs-dir", str(runs)]
    proc = start(*args)
    children.append(proc)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    dirs = run_dirs(runs)
    assert len(dirs) == 4
    for cell in record(runs, "quick")["cells"]:
        run_dir = runs / Path(cell["run_dir"]).name
        saved = yaml.safe_load((run_dir / "config.yaml").read_text())
        summary = json.loads((run_dir / "summary.json").read_text())
        assert saved["seed"] == cell["seed"] == summary["seed"] and saved["optimizer"]["lr"] == cell["overrides"]["optimizer.lr"]
        assert cell["status"] == summary["status"] == "completed" and "resumed" not in summary
        assert not is_locked(run_dir)
    assert sorted({c["seed"] for c in record(runs, "quick")["cells"]}) == [1, 2]
    again = start(*args)
    children.append(again)
    _, err = again.communicate(timeout=300)
    assert again.returncode == 0 and "4 of 4 cells already finished: skipped" in err
    assert run_dirs(runs) == dirs


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_stopped_sweep_records_its_cells_interrupted_and_a_second_driver_is_refused(
        fake_data, tmp_path, children, signum, code):
    config = tmp_path / "endless.yaml"
    config.write_text(ENDLESS)
    runs = tmp_path / "runs"
    args = ["sweep", str(config), "--grid", "optimizer.lr=0.01,0.001,0.0001", "--jobs", "2", "--runs-dir", str(runs)]
    proc = start(*args, "--quiet")
    children.append(proc)
    wait_until(lambda: len(run_dirs(runs)) == 2 and all(epochs(d) >= 1 for d in run_dirs(runs)), proc)
    assert [c["status"] for c in record(runs, "endless")["cells"]] == ["running", "running", "pending"]

    second = start(*args)  # the same sweep, while the first runs
    children.append(second)
    _, err2 = second.communicate(timeout=120)
    assert second.returncode == 2 and "is being run by pid" in err2 and len(run_dirs(runs)) == 2

    proc.send_signal(signum)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == code, err
    assert "Traceback" not in err and "run the same command again" in err
    assert [c["status"] for c in record(runs, "endless")["cells"]] == ["interrupted", "interrupted", "pending"]
    for d in run_dirs(runs):
        assert json.loads((d / "summary.json").read_text())["status"] == "interrupted" and not is_locked(d)


def test_a_sweep_whose_stderr_reader_goes_away_finishes_its_cells(fake_data, tmp_path, children):
    # The review's case: a terminal closed, or `trickrun sweep ... 2>&1 | head -1`. The driver's
    # next progress line fails with EPIPE; the sweep goes on, quiet, and ends as it would have.
    config = tmp_path / "quick.yaml"
    config.write_text(QUICK)
    runs = tmp_path / "runs"
    proc = start("sweep", str(config), "--grid", "optimizer.lr=0.01,0.001,0.0001", "--jobs", "1",
                 "--runs-dir", str(runs))
    children.append(proc)
    first = proc.stderr.readline()  # the first cell's line: cells 2 and 3 are still to come
    assert first.startswith("[1/3] cell 1 "), first
    proc.stderr.close()  # the reader goes away
    out = proc.stdout.read()
    assert proc.wait(timeout=300) == 0
    assert [c["status"] for c in record(runs, "quick")["cells"]] == ["completed"] * 3
    assert "record:" in out  # stdout, still open, got the leaderboard as usual


def test_a_killed_ray_workers_scratch_copy_is_deleted_once_old_and_unlocked(tmp_path):
    from trickrun.atomic import ABANDONED_AFTER_S
    from trickrun.rundir.lock import RunLock
    from trickrun.sweep.worker import remove_abandoned_scratch

    def scratch(name: str, age_s: float) -> Path:
        run = tmp_path / f"trickrun-cell-{name}" / "cell_s0-20261207-120000"
        run.mkdir(parents=True)
        (run / "checkpoint.npz").write_bytes(b"x")
        old = time.time() - age_s
        os.utime(run.parent, (old, old))
        return run

    killed = scratch("killed", ABANDONED_AFTER_S + 60)
    live = scratch("live", ABANDONED_AFTER_S + 60)  # a cell training for more than an hour
    young = scratch("young", 5)  # may not have taken its lock yet
    other = tmp_path / "someone-elses"
    other.mkdir()
    lock = RunLock.acquire(live)
    try:
        remove_abandoned_scratch(tmp_path)
    finally:
        lock.release()
    assert not killed.parent.exists() and live.exists() and young.exists() and other.exists()


def test_a_run_whose_stderr_reader_goes_away_finishes_and_prints_its_run_directory(fake_data, tmp_path, children):
    config = tmp_path / "quick.yaml"
    config.write_text(QUICK.replace("epochs: 2", "epochs: 4"))
    proc = start("train", str(config), "--runs-dir", str(tmp_path / "runs"))
    children.append(proc)
    first = proc.stderr.readline()  # "run directory: ..." is said before the first epoch
    assert first.startswith("run directory: "), first
    proc.stderr.close()  # the reader goes away: each epoch line after this fails with EPIPE
    out = proc.stdout.read()
    assert proc.wait(timeout=300) == 0
    (run_dir,) = run_dirs(tmp_path / "runs")
    assert out.strip() == str(run_dir)
    assert json.loads((run_dir / "summary.json").read_text())["epochs_run"] == 4
