"""The run-directory format as rundir/ owns it: file modes, the status strings on disk, the
"running" summary, which runs can be resumed, and the order and best epoch readers derive."""

from __future__ import annotations

import json
import os
import socket
import stat
from pathlib import Path

import numpy as np
import pytest

from helpers import InterruptAt
from runfactory import DEAD_PID, curve_records, make_run
from trickrun.errors import ConfigError, RunDirError
from trickrun.rundir.files import check_resumable, effective_status, read_summary
from trickrun.rundir.format import (
    CHECKPOINT_FILE,
    CONFIG_FILE,
    LOCK_FILE,
    METRICS_FILE,
    MODEL_FILE,
    RESUMABLE,
    SUMMARY_FILE,
    Status,
)
from trickrun.rundir.reader import load_run
from trickrun.rundir.writer import RunWriter


def can_resume(path: Path) -> bool:
    """Whether the run at `path` stopped part-way: interrupted, or no process trains it any more."""
    return effective_status(read_summary(path / "summary.json")[0], path) in RESUMABLE


@pytest.fixture(params=[0o022, 0o002, 0o077], ids=lambda m: f"umask{m:03o}")
def umask(request) -> int:
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def modes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): stat.S_IMODE(p.stat().st_mode) for p in folder.rglob("*") if p.is_file()}


# --- file modes --------------------------------------------------------------------------


def test_every_file_the_writer_makes_gets_0666_minus_the_umask(tmp_path: Path, umask: int) -> None:
    writer = RunWriter.create(tmp_path, "m", "seed: 1\n", seed=1)
    writer.append_metrics({"epoch": 1, "val_loss": 0.5})
    writer.save_model({"w": np.zeros(3)})
    writer.save_checkpoint({"w": np.zeros(3)})
    writer.finish({"status": Status.INTERRUPTED})
    found = modes(writer.path)
    assert set(found) == {CONFIG_FILE, SUMMARY_FILE, METRICS_FILE, MODEL_FILE, CHECKPOINT_FILE, LOCK_FILE}
    assert found == dict.fromkeys(found, 0o666 & ~umask)


def test_a_trained_run_and_the_data_cache_get_0666_minus_the_umask(fake_data, tmp_path, monkeypatch, umask):
    from trickrun.api import train

    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(2, 1))
    result = train({"data": {"val_size": 100}, "model": {"hidden": [8]}, "train": {"epochs": 3}}, progress="quiet")
    assert result.summary["status"] == "interrupted"
    run_files, cache_files = modes(result.run_dir), modes(tmp_path / "cache")
    assert {CONFIG_FILE, SUMMARY_FILE, METRICS_FILE, CHECKPOINT_FILE} <= set(run_files)
    assert cache_files  # the decoded arrays were cached
    for name, mode in {**run_files, **cache_files}.items():
        assert mode == 0o666 & ~umask, f"{name}: {mode:o}"


# --- summary.json ------------------------------------------------------------------------


def test_summary_json_holds_the_plain_status_strings(tmp_path: Path) -> None:
    writer = RunWriter.create(tmp_path, "s", "seed: 3\n", seed=3)
    assert '"status": "running"' in (writer.path / SUMMARY_FILE).read_text()
    writer.save_checkpoint({"w": np.zeros(1)})
    summary = writer.finish({"status": "completed", "epochs_run": 1})
    text = (writer.path / SUMMARY_FILE).read_text()
    assert '"status": "completed"' in text and json.loads(text)["status"] == "completed"
    assert type(summary["status"]) is str and summary["status"] == "completed"
    assert not (writer.path / CHECKPOINT_FILE).exists()  # final: nothing left to resume


def test_reopen_writes_the_same_running_summary_as_create_plus_the_resume_count(tmp_path: Path) -> None:
    writer = RunWriter.create(tmp_path, "r", "seed: 5\n", seed=5)
    first = json.loads((writer.path / SUMMARY_FILE).read_text())
    writer.save_checkpoint({"w": np.zeros(1)})
    writer.finish({"status": Status.INTERRUPTED, "epochs_run": 0})
    assert (writer.path / CHECKPOINT_FILE).exists()  # interrupted: kept for resume
    RunWriter.reopen(writer.path, 0)
    again = json.loads((writer.path / SUMMARY_FILE).read_text())
    assert list(again) == list(first) + ["earlier_wall_s", "earlier_train_s", "resumed"]
    assert {k: again[k] for k in first} == first
    assert again["resumed"] == 1


def test_a_resumed_run_times_its_training_from_where_it_left_off(tmp_path: Path) -> None:
    writer = RunWriter.create(tmp_path, "r", "seed: 5\n", seed=5)
    writer.append_metrics({"epoch": 1, "epoch_s": 3.25})  # epoch 1's record, then its checkpoint
    writer.save_checkpoint({"w": np.zeros(1)})
    first = writer.finish({"status": Status.INTERRUPTED, "epochs_run": 1, "train_s": 3.25})
    again = RunWriter.reopen(writer.path, 1)
    summary = again.finish({"status": Status.COMPLETED, "epochs_run": 2, "train_s": 2.5})
    assert summary["train_s"] == 5.75
    assert summary["wall_s"] >= first["wall_s"]  # the wall clock went on too


def test_a_run_killed_outright_then_resumed_keeps_at_least_its_epochs_times(tmp_path: Path) -> None:
    writer = RunWriter.create(tmp_path, "r", "seed: 5\n", seed=5)
    writer.finish({"status": Status.INTERRUPTED, "epochs_run": 1, "train_s": 3.0})  # a Ctrl-C after epoch 1
    again = RunWriter.reopen(writer.path, 0)
    for epoch, seconds in [(1, 2.5), (2, 4.0), (3, 1.5)]:
        again.append_metrics({"epoch": epoch, "epoch_s": seconds})
    again.close()  # then kill -9 in epoch 4: the summary still says "running"
    assert json.loads((writer.path / SUMMARY_FILE).read_text())["earlier_train_s"] == 3.0
    last = RunWriter.reopen(writer.path, 3)  # the checkpoint covers epochs 1-3
    summary = last.finish({"status": Status.COMPLETED, "epochs_run": 4, "train_s": 1.0})
    assert summary["train_s"] == 2.5 + 4.0 + 1.5 + 1.0  # the epochs kept, not 3.0 + 1.0
    assert summary["wall_s"] >= 8.0 and "earlier_train_s" not in summary


# --- statuses and resuming ---------------------------------------------------------------


def test_effective_status_gives_status_members_and_keeps_an_unknown_status_as_written() -> None:
    here = socket.gethostname()
    assert effective_status({"status": "completed"}) is Status.COMPLETED
    assert effective_status({"status": "running", "pid": DEAD_PID, "host": here}) is Status.STALE
    assert effective_status({"status": ["completed"]}) is Status.INCOMPLETE
    assert effective_status({"status": "paused"}) == "paused"


def test_check_resumable_returns_the_summary_of_an_interrupted_or_stale_run(tmp_path: Path) -> None:
    cut = make_run(tmp_path, "cut", status="interrupted")
    assert check_resumable(cut)["status"] == "interrupted"
    dead = make_run(tmp_path, "dead", status="running", pid=DEAD_PID)
    assert check_resumable(dead)["pid"] == DEAD_PID
    elsewhere = make_run(tmp_path, "elsewhere", summary={"status": "running", "pid": os.getpid(), "host": "other"})
    assert check_resumable(elsewhere)["host"] == "other"  # cannot be checked from here: let through


@pytest.mark.parametrize(
    ("kind", "error", "message"),
    [
        ("no summary", ConfigError, "is not a run directory (it needs config.yaml and summary.json)"),
        ("garbage summary", RunDirError, "summary.json is not a readable JSON object; the run cannot be resumed"),
        ("completed", ConfigError, "already finished (status completed); nothing to resume. To train it again"),
        ("diverged", ConfigError, "already finished (status diverged)"),
        ("alive", ConfigError, f"is still running (pid {os.getpid()}); stop it first"),
    ],
)
def test_check_resumable_refuses_with_the_reason(tmp_path: Path, kind: str, error: type, message: str) -> None:
    if kind == "no summary":
        path = make_run(tmp_path, summary=False)
    elif kind == "garbage summary":
        path = make_run(tmp_path)
        (path / SUMMARY_FILE).write_text("[1, 2")
    elif kind == "alive":
        path = make_run(tmp_path, status="running")
    else:
        path = make_run(tmp_path, status=kind)
    with pytest.raises(error) as info:
        check_resumable(path)
    assert message in str(info.value)


def test_resuming_a_saved_ensemble_does_not_advise_training_its_config(tmp_path: Path) -> None:
    # its config.yaml lists members, which `trickrun train` refuses as unknown keys
    path = make_run(tmp_path, "avg", config={"kind": "ensemble", "name": "avg", "members": {}},
                    records=[], summary={"status": "completed", "kind": "ensemble"})
    with pytest.raises(ConfigError) as info:
        check_resumable(path)
    assert "is an ensemble saved by trickrun ensemble --save" in str(info.value)
    assert "trickrun train" not in str(info.value)


def test_only_interrupted_or_stale_runs_count_as_resumable(tmp_path: Path) -> None:
    assert can_resume(make_run(tmp_path, "cut", status="interrupted"))
    assert can_resume(make_run(tmp_path, "dead", status="running", pid=DEAD_PID))
    assert not can_resume(make_run(tmp_path, "done", status="completed"))
    assert not can_resume(make_run(tmp_path, "stopped", status="early_stopped"))
    assert not can_resume(make_run(tmp_path, "alive", status="running"))
    assert not can_resume(make_run(tmp_path, "bare", summary=False))


# --- derived by readers ------------------------------------------------------------------


def test_layer_names_come_in_network_order(tmp_path: Path) -> None:
    records = curve_records(2, layers=("output", "hidden10", "hidden2"))
    records[1]["layers"].append({"name": "hidden1"})
    run = load_run(make_run(tmp_path, records=records))
    assert run.layer_names() == ["hidden1", "hidden2", "hidden10", "output"]


def test_best_index_takes_the_first_of_equal_values_and_the_summary_epoch_by_default(tmp_path: Path) -> None:
    records = curve_records(5)
    for record, loss, acc in zip(records, (0.5, 0.3, 0.3, 0.4, None), (0.8, 0.9, 0.9, 0.7, None)):
        record["val_loss"], record["val_acc"] = loss, acc
    run = load_run(make_run(tmp_path, records=records, summary={"status": "completed", "best_epoch": 4}))
    assert run.best_index() == 3  # the summary's best epoch wins when no metric is asked for
    assert run.best_index("val_loss") == 1 and run.best_index("val_acc") == 1
    assert run.best_index("lr") == 4  # no better direction: the last finite value


def test_best_index_marks_no_epoch_when_the_summarys_best_epoch_has_no_record(tmp_path: Path) -> None:
    records = curve_records(4)
    lost = make_run(tmp_path, records=[r for r in records if r["epoch"] != 2],
                    summary={"status": "early_stopped", "best_epoch": 2})
    assert load_run(lost).best_index() is None  # not the best of the epochs left, which the results are not of
    assert load_run(lost).best_index("val_loss") is not None
