"""Checkpoints and `trickrun resume`: a run stopped by Ctrl-C or kill -9 goes on exactly
where it stopped, and ends with the metrics of a run that never stopped."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from trickrun.api import resume, train
from trickrun.cli import app
from trickrun.rundir.format import CHECKPOINT_FILE
from trickrun.train import NullReporter
from helpers import InterruptAt

runner = CliRunner()
CFG = {"data": {"val_size": 100}, "model": {"hidden": [16], "dropout": 0.3, "input_dropout": 0.1, "norm": "batch"},
       "train": {"epochs": 5}, "schedule": {"name": "plateau", "patience": 1}}


def metrics_without_times(run_dir: Path) -> list[dict]:
    out = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        record.pop("epoch_s")
        out.append(record)
    return out


def test_resume_after_ctrl_c_matches_an_uninterrupted_run(fake_data, monkeypatch):
    whole = train(CFG, progress="quiet")
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(3, 2))
    cut = train(CFG, progress="quiet")
    assert cut.summary["status"] == "interrupted" and cut.summary["epochs_run"] == 2
    assert (cut.run_dir / CHECKPOINT_FILE).exists()
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    resumed = resume(cut.run_dir, progress="quiet")
    assert resumed.run_dir == cut.run_dir
    assert metrics_without_times(resumed.run_dir) == metrics_without_times(whole.run_dir)
    for key in ("status", "epochs_run", "best_epoch", "stopped_epoch", "best", "test"):
        assert resumed.summary[key] == whole.summary[key], key
    assert resumed.summary["resumed"] == 1
    assert not (resumed.run_dir / CHECKPOINT_FILE).exists()  # finished: nothing left to resume


def test_resume_drops_a_torn_last_line_and_records_past_the_checkpoint(fake_data, monkeypatch):
    whole = train(CFG, progress="quiet")
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(4, 1))
    cut = train(CFG, progress="quiet")
    metrics = cut.run_dir / "metrics.jsonl"
    lines = metrics.read_text().splitlines(keepends=True)
    # As if the process died after writing a record the checkpoint does not cover, mid-line.
    metrics.write_text("".join(lines) + lines[-1] + '{"epoch": 5, "lr": 0.0')
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    resumed = resume(cut.run_dir, progress="quiet")
    assert metrics_without_times(resumed.run_dir) == metrics_without_times(whole.run_dir)


@pytest.mark.parametrize(("edit", "said"), [
    (("lr: 0.001", "lr: 0.5"), "optimizer.lr 0.001 -> 0.5"),
    (("hidden: [16]", "hidden: [32]"), "model.hidden [16] -> [32]"),  # a shape: not blamed on the checkpoint
])
def test_resuming_a_run_whose_config_was_edited_is_refused_and_changes_nothing(fake_data, monkeypatch, edit, said):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(3, 2))
    cut = train({**CFG, "optimizer": {"lr": 0.001}}, progress="quiet")
    config = cut.run_dir / "config.yaml"
    assert edit[0] in config.read_text()
    config.write_text(config.read_text().replace(edit[0], edit[1]))
    before = {p.name: p.read_bytes() for p in cut.run_dir.iterdir() if p.is_file() and p.name != ".lock"}
    result = runner.invoke(app, ["resume", str(cut.run_dir)])
    assert result.exit_code == 2 and "Traceback" not in result.output
    message = " ".join(result.stderr.split())
    assert f"was edited since the run started ({said})" in message and "trickrun train" in message
    assert {p.name: p.read_bytes() for p in cut.run_dir.iterdir() if p.is_file() and p.name != ".lock"} == before
    name = config.read_text().replace("name: run", "name: renamed")  # the name trains nothing: allowed
    config.write_text(name.replace(edit[1], edit[0]))
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    assert resume(cut.run_dir, progress="quiet").summary["status"] != "interrupted"


def test_a_run_saved_with_a_relative_data_dir_before_it_was_saved_absolute_still_resumes(fake_data, monkeypatch):
    # Its config.yaml and checkpoint say `dir: data/mnist`; loaded, it resolves absolute, and the
    # run was refused as edited, with "put those values back" no help: they were never changed.
    monkeypatch.chdir(fake_data.parent)
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(3, 2))
    cut = train({**CFG, "data": {"val_size": 100, "dir": "data/mnist"}}, progress="quiet")
    config, checkpoint = cut.run_dir / "config.yaml", cut.run_dir / CHECKPOINT_FILE
    config.write_text(config.read_text().replace(f"dir: {fake_data / 'mnist'}\n", "dir: data/mnist\n"))
    with np.load(checkpoint) as npz:
        arrays = dict(npz)
    meta = json.loads(str(arrays["meta"]))
    meta["config"]["data"]["dir"] = "data/mnist"
    arrays["meta"] = np.array(json.dumps(meta))
    np.savez(checkpoint, **arrays)
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    assert resume(cut.run_dir, progress="quiet").summary["status"] != "interrupted"


@pytest.mark.parametrize("damage", ["a checkpoint from further on", "a damaged middle line"])
def test_a_checkpoint_that_metrics_jsonl_does_not_lead_up_to_is_refused_and_changes_nothing(fake_data, monkeypatch,
                                                                                          damage):
    # Resume kept metrics.jsonl's first records by position: a checkpoint copied from a run of
    # the same config cut later (or a line lost in the middle) left a run with epochs 1, 2, 4...
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(2, 2))
    early = train(CFG, progress="quiet")  # one epoch done
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(4, 2))
    later = train(CFG, progress="quiet")  # three epochs done
    if damage == "a checkpoint from further on":
        target = early.run_dir
        (target / CHECKPOINT_FILE).write_bytes((later.run_dir / CHECKPOINT_FILE).read_bytes())
    else:
        target = later.run_dir
        lines = (target / "metrics.jsonl").read_text().splitlines(keepends=True)
        (target / "metrics.jsonl").write_text(lines[0] + lines[1][:20] + "\n" + lines[2])
    before = {p.name: p.read_bytes() for p in target.iterdir() if p.is_file() and p.name != ".lock"}
    result = runner.invoke(app, ["resume", str(target)])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert "are not the record of one run" in " ".join(result.stderr.split())
    assert {p.name: p.read_bytes() for p in target.iterdir() if p.is_file() and p.name != ".lock"} == before


def test_resuming_a_finished_run_is_an_error(fake_data):
    done = train(CFG, progress="quiet")
    result = runner.invoke(app, ["resume", str(done.run_dir)])
    assert result.exit_code == 2
    assert "already finished" in result.stderr and "Traceback" not in result.output


def test_resuming_a_folder_that_is_not_a_run_is_an_error(tmp_path):
    result = runner.invoke(app, ["resume", str(tmp_path)])
    assert result.exit_code == 2 and "not a run directory" in result.stderr


# --- real processes: kill -9, SIGINT, two at once (need the real MNIST files) ----------------
QUICK_REAL = ["--set", "data.train_limit=12000", "--set", "model.hidden=[64]", "--set", "train.epochs=4",
              "--set", "model.dropout=0.2", "--quiet"]
BASELINE = str(Path(__file__).parents[1] / "configs" / "baseline.yaml")


def trickrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "trickrun", *args]


def start_and_wait_for_epochs(runs: Path, epochs: int, env: dict) -> tuple[subprocess.Popen, Path]:
    proc = subprocess.Popen(trickrun("train", BASELINE, "--runs-dir", str(runs), *QUICK_REAL), env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        dirs = list(runs.glob("baseline-*"))
        if dirs and (dirs[0] / "metrics.jsonl").exists():
            if len((dirs[0] / "metrics.jsonl").read_text().splitlines()) >= epochs:
                time.sleep(0.05)  # into the next epoch
                return proc, dirs[0]
        time.sleep(0.005)
    proc.kill()
    pytest.fail("training did not reach the expected epoch in time")


@pytest.mark.slow
def test_kill_9_in_the_third_epoch_then_resume_equals_an_uninterrupted_run(real_mnist, tmp_path):
    env = {**os.environ}
    whole = subprocess.run(trickrun("train", BASELINE, "--runs-dir", str(tmp_path / "a"), *QUICK_REAL, "--json"),
                           env=env, capture_output=True, text=True, timeout=300)
    assert whole.returncode == 0, whole.stderr
    whole_summary = json.loads(whole.stdout)

    proc, run_dir = start_and_wait_for_epochs(tmp_path / "b", 2, env)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    listing = subprocess.run(trickrun("ls", "--runs-dir", str(tmp_path / "b"), "--format", "json"),
                             env=env, capture_output=True, text=True, timeout=60)
    assert [row["status"] for row in json.loads(listing.stdout)] == ["stale"]

    resumed = subprocess.run(trickrun("resume", str(run_dir), "--json", "--quiet"), env=env,
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    summary = json.loads(resumed.stdout)
    assert summary["test"] == whole_summary["test"]
    assert metrics_without_times(run_dir) == metrics_without_times(Path(whole_summary["run_dir"]))


@pytest.mark.slow
def test_sigint_mid_epoch_exits_130_and_resumes(real_mnist, tmp_path):
    proc, run_dir = start_and_wait_for_epochs(tmp_path, 1, {**os.environ})
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=60) == 130
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["epochs_run"] >= 1
    resumed = subprocess.run(trickrun("resume", str(run_dir), "--json", "--quiet"),
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["epochs_run"] == 4


@pytest.mark.slow
def test_two_runs_started_together_get_two_complete_directories(real_mnist, tmp_path):
    args = trickrun("train", BASELINE, "--runs-dir", str(tmp_path), "--name", "same",
                    "--set", "data.train_limit=2000", "--set", "train.epochs=1", "--set", "model.hidden=[16]", "--quiet")
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    dirs = {Path(out.strip()) for out, _ in outs}
    assert len(dirs) == 2
    for d in dirs:
        assert json.loads((d / "summary.json").read_text())["status"] == "completed"


def test_resume_takes_a_run_name_under_the_runs_folder(fake_data, monkeypatch):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(2, 1))
    cut = train({**CFG, "name": "named"}, progress="quiet")
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    result = runner.invoke(app, ["resume", "named", "--quiet"])
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()) == cut.run_dir
    assert json.loads((cut.run_dir / "summary.json").read_text())["status"] == "completed"
