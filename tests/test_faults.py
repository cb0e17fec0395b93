"""Faults from outside: corrupt or missing data, a runs folder that cannot be written, a disk
that fills up mid-run, an interrupted atomic write, a garbage checkpoint. Each ends with its
documented exit code and a one-line message naming what is wrong, never a traceback, and
leaves only complete files behind."""

from __future__ import annotations

import dataclasses
import errno
import gzip
import hashlib
import io
import json
import os
import subprocess
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

import trickrun.rundir.writer
from helpers import InterruptAt, fake_arrays, idx_bytes, write_fake_dataset
from trickrun.api import train
from trickrun.cli import app
from trickrun.config import load_config
from trickrun.data import catalog
from trickrun.errors import RunDirError
from trickrun.rundir.format import LOCK_FILE
from trickrun.train import NullReporter

runner = CliRunner()
QUICK = {"data": {"val_size": 100}, "model": {"hidden": [8]}, "train": {"epochs": 3},
         "early_stopping": {"enabled": False}}


def run_dirs(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir()) if root.exists() else []


def write_config(tmp_path: Path, data: dict) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def assert_no_traceback(result) -> None:
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.output


# --- corrupt data -------------------------------------------------------------------------------


def _truncate_gz(folder: Path, sums: dict) -> str:
    path = folder / "train-labels-idx1-ubyte.gz"
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "train-labels-idx1-ubyte"


def _flip_gz(folder: Path, sums: dict) -> str:
    path = folder / "train-images-idx3-ubyte.gz"
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = bytes(b ^ 0xFF for b in data[middle : middle + 16])
    path.write_bytes(bytes(data))
    return "train-images-idx3-ubyte"


def _wrong_magic(folder: Path, sums: dict) -> str:
    """Valid gzip, checksum patched to the bad bytes: only the IDX parser can catch it."""
    name = "t10k-images-idx3-ubyte"
    raw = bytearray(idx_bytes(fake_arrays()[name]))
    raw[:4] = (2049).to_bytes(4, "big")  # the labels' magic on an images file
    (folder / f"{name}.gz").write_bytes(gzip.compress(bytes(raw), mtime=0))
    sums[name] = hashlib.sha256(bytes(raw)).hexdigest()
    return name


def _truncated_idx(folder: Path, sums: dict) -> str:
    """A plain IDX file cut short, whose checksum matches: the parser's length check catches it."""
    name = "t10k-labels-idx1-ubyte"
    raw = idx_bytes(fake_arrays()[name])[:-7]
    (folder / f"{name}.gz").unlink()
    (folder / name).write_bytes(raw)
    sums[name] = hashlib.sha256(raw).hexdigest()
    return name


def _fewer_labels(folder: Path, sums: dict) -> str:
    name = "train-labels-idx1-ubyte"
    raw = idx_bytes(fake_arrays()[name][:-1])
    (folder / f"{name}.gz").write_bytes(gzip.compress(raw, mtime=0))
    sums[name] = hashlib.sha256(raw).hexdigest()
    return name


def _missing(folder: Path, sums: dict) -> str:
    (folder / "t10k-labels-idx1-ubyte.gz").unlink()
    return "t10k-labels-idx1-ubyte"


CORRUPTIONS = {
    "truncated-gz": (_truncate_gz, "corrupt gzip"),
    "flipped-gz": (_flip_gz, ""),  # a zlib error, a CRC error or a checksum mismatch
    "wrong-magic": (_wrong_magic, "wrong magic number"),
    "truncated-idx": (_truncated_idx, "truncated"),
    "fewer-labels": (_fewer_labels, "holds 599 labels"),
    "missing-file": (_missing, "missing"),
}


def data_folder(tmp_path: Path, monkeypatch) -> tuple[Path, dict]:
    folder = tmp_path / "mnist-copy"
    sums = write_fake_dataset(folder)
    monkeypatch.setitem(catalog.DATASETS, "mnist", dataclasses.replace(catalog.DATASETS["mnist"], sha256=sums))
    return folder, sums


def test_intact_data_folder_trains(tmp_path, monkeypatch):
    """The set-up of the corruption tests below, uncorrupted, is a working run."""
    folder, _ = data_folder(tmp_path, monkeypatch)
    cfg = write_config(tmp_path, {**QUICK, "data": {"dir": str(folder), "val_size": 100}, "train": {"epochs": 1}})
    result = runner.invoke(app, ["train", str(cfg), "--quiet"])
    assert result.exit_code == 0, result.output
    assert len(run_dirs(tmp_path / "runs")) == 1


@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_corrupt_data_exits_3_naming_the_file(tmp_path, monkeypatch, corruption):
    folder, sums = data_folder(tmp_path, monkeypatch)
    corrupt, expected = CORRUPTIONS[corruption]
    name = corrupt(folder, sums)
    cfg = write_config(tmp_path, {**QUICK, "data": {"dir": str(folder), "val_size": 100}})
    result = runner.invoke(app, ["train", str(cfg), "--quiet"])
    assert result.exit_code == 3, result.output
    assert_no_traceback(result)
    assert "error:" in result.stderr and name in result.stderr and expected in result.stderr
    assert run_dirs(tmp_path / "runs") == []


def test_a_file_corrupted_after_it_was_cached_is_still_caught(tmp_path, monkeypatch):
    """The decoded-array cache must notice that its source changed."""
    folder, sums = data_folder(tmp_path, monkeypatch)
    cfg = write_config(tmp_path, {**QUICK, "data": {"dir": str(folder), "val_size": 100}, "train": {"epochs": 1}})
    assert runner.invoke(app, ["train", str(cfg), "--quiet"]).exit_code == 0
    name = _truncate_gz(folder, sums)
    result = runner.invoke(app, ["train", str(cfg), "--quiet"])
    assert result.exit_code == 3 and name in result.stderr, result.output
    assert len(run_dirs(tmp_path / "runs")) == 1


# --- a runs folder that cannot be written ----------------------------------------------------------


def _sys_path(tmp_path: Path) -> Path:
    return Path("/sys/trickrun-test")  # mkdir fails with EPERM, even as root


def _under_a_file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file" / "runs"


def _is_a_file(tmp_path: Path) -> Path:
    (tmp_path / "a-file").write_text("not a folder")
    return tmp_path / "a-file"


@pytest.mark.parametrize("where,why", [(_sys_path, "permission denied"), (_under_a_file, "not a folder"),
                                       (_is_a_file, "not a folder")], ids=["sys", "under-a-file", "a-file"])
def test_unwritable_runs_folder_exits_1_naming_it(fake_data, tmp_path, where, why):
    runs = where(tmp_path)
    if runs.parts[1] == "sys" and not Path("/sys").is_dir():
        pytest.skip("no /sys here")
    cfg = write_config(tmp_path, QUICK)
    result = runner.invoke(app, ["train", str(cfg), "--quiet", "--runs-dir", str(runs)])
    assert result.exit_code == 1, result.output
    assert_no_traceback(result)
    assert "error:" in result.stderr and str(runs) in result.stderr and why in result.stderr
    assert not runs.is_dir()


# --- a full disk ------------------------------------------------------------------------------


def _target_of(fd: int) -> str:
    """The run-directory file an fsync'd descriptor belongs to (a temporary file counts as its target)."""
    name = Path(os.readlink(f"/proc/self/fd/{fd}")).name
    if name.startswith(".") and name.endswith(".tmp"):  # write_atomic's .<name>.<random>.tmp
        name = name[1:].rsplit(".", 2)[0]
    return name


def fill_disk_at(monkeypatch, target: str, nth: int, tear: bool = False) -> Counter:
    """Make the `nth` fsync of `target` fail with ENOSPC, as a full disk would; with `tear`,
    the last 10 bytes written to it are lost first (a torn line)."""
    real_fsync = os.fsync
    calls: Counter = Counter()

    def fsync(fd: int) -> None:
        name = _target_of(fd)
        calls[name] += 1
        if name == target and calls[name] == nth:
            if tear:
                os.ftruncate(fd, os.fstat(fd).st_size - 10)
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    return calls


def assert_complete_files(run_dir: Path, torn_metrics: bool = False) -> None:
    names = {p.name for p in run_dir.iterdir()} - {LOCK_FILE}
    assert not [n for n in names if n.startswith(".") or n.endswith(".tmp")], names
    assert names <= {"config.yaml", "summary.json", "metrics.jsonl", "checkpoint.npz", "model.npz"}, names
    if "config.yaml" in names:
        load_config(run_dir / "config.yaml")
    if "summary.json" in names:
        assert json.loads((run_dir / "summary.json").read_text())["status"] == "running"
    for npz in ("checkpoint.npz", "model.npz"):
        if npz in names:
            with np.load(run_dir / npz, allow_pickle=False) as arrays:
                assert arrays.files and all(arrays[k] is not None for k in arrays.files)
    if "metrics.jsonl" in names:
        lines = (run_dir / "metrics.jsonl").read_text().splitlines()
        for line in lines[:-1] if torn_metrics else lines:
            json.loads(line)
        if torn_metrics:
            with pytest.raises(ValueError):
                json.loads(lines[-1])


# (file whose fsync fails, which fsync of it, when): set-up, mid-training (2nd epoch), the end.
FULL_DISK = [
    ("config.yaml", 1, "set-up"),
    ("summary.json", 1, "set-up"),
    ("metrics.jsonl", 2, "epoch 2"),
    ("checkpoint.npz", 2, "epoch 2"),
    ("model.npz", 1, "end"),
    ("summary.json", 2, "end"),
]


@pytest.mark.parametrize("target,nth,when", FULL_DISK, ids=[f"{t}-{w}" for t, _, w in FULL_DISK])
def test_full_disk_exits_1_and_leaves_complete_files(fake_data, tmp_path, monkeypatch, target, nth, when):
    calls = fill_disk_at(monkeypatch, target, nth, tear=target == "metrics.jsonl")
    result = runner.invoke(app, ["train", str(write_config(tmp_path, QUICK)), "--quiet"])
    assert calls[target] == nth  # the fault really happened where intended
    assert result.exit_code == 1, result.output
    assert_no_traceback(result)
    assert "error:" in result.stderr and "disk is full" in result.stderr and target in result.stderr
    dirs = run_dirs(tmp_path / "runs")
    assert len(dirs) <= 1
    for run_dir in dirs:
        assert_complete_files(run_dir, torn_metrics=target == "metrics.jsonl")
    if when == "epoch 2":  # epoch 1's checkpoint survived
        with np.load(dirs[0] / "checkpoint.npz") as arrays:
            assert json.loads(str(arrays["meta"]))["epochs_done"] == 1


def _dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("target", ["metrics.jsonl", "checkpoint.npz"])
def test_a_run_stopped_by_a_full_disk_resumes_once_there_is_space(fake_data, tmp_path, monkeypatch, target):
    with monkeypatch.context() as patch:
        fill_disk_at(patch, target, 2, tear=target == "metrics.jsonl")
        failed = runner.invoke(app, ["train", str(write_config(tmp_path, QUICK)), "--quiet"])
    assert failed.exit_code == 1, failed.output
    (run_dir,) = run_dirs(tmp_path / "runs")
    # The process that hit the full disk has exited (here it is the test's own process).
    summary = json.loads((run_dir / "summary.json").read_text())
    (run_dir / "summary.json").write_text(json.dumps({**summary, "pid": _dead_pid()}))
    result = runner.invoke(app, ["resume", str(run_dir), "--quiet", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "completed"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]


# --- atomic writes ----------------------------------------------------------------------------


def _fail_replace(exc: BaseException):
    def replace(src, dst):
        raise exc

    return replace


@pytest.mark.parametrize("exc", [OSError(errno.ENOSPC, "No space left on device"), OSError(errno.EIO, "I/O error"),
                                 KeyboardInterrupt()], ids=["ENOSPC", "EIO", "ctrl-c"])
def test_interrupted_atomic_write_keeps_the_old_file_and_no_temporary(tmp_path, monkeypatch, exc):
    path = tmp_path / "summary.json"
    trickrun.rundir.writer.write_atomic(path, b"old, complete")
    monkeypatch.setattr(os, "replace", _fail_replace(exc))
    with pytest.raises(RunDirError if isinstance(exc, OSError) else KeyboardInterrupt) as info:
        trickrun.rundir.writer.write_atomic(path, b"new")
    assert path.read_bytes() == b"old, complete"
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]
    if isinstance(exc, OSError):
        assert str(path) in str(info.value)
    if getattr(exc, "errno", None) == errno.ENOSPC:
        assert "disk is full" in str(info.value)


def test_atomic_write_syncs_the_data_before_renaming(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append(("fsync", _target_of(fd))), real_fsync(fd)))
    monkeypatch.setattr(os, "replace", lambda a, b: (events.append(("replace", Path(b).name)), real_replace(a, b)))
    trickrun.rundir.writer.write_atomic(tmp_path / "model.npz", b"weights")
    assert events == [("fsync", "model.npz"), ("replace", "model.npz")]
    assert (tmp_path / "model.npz").read_bytes() == b"weights"
    assert [p.name for p in tmp_path.iterdir()] == ["model.npz"]


# --- resuming from a garbage checkpoint ---------------------------------------------------------------


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _flip_middle(data: bytes) -> bytes:
    middle = len(data) // 2
    return data[:middle] + bytes(b ^ 0xFF for b in data[middle : middle + 32]) + data[middle + 32 :]


GARBAGE = {
    "garbage": lambda good: b"this is not a checkpoint\n" * 10,
    "empty": lambda good: b"",
    "truncated": lambda good: good[: len(good) // 2],
    "flipped": _flip_middle,
    "no-meta": lambda good: _npz(model=np.zeros(3, np.float32)),
    "wrong-shapes": lambda good: _npz(**{**dict(np.load(io.BytesIO(good))),
                                        "model": np.zeros(3, np.float32)}),
}


@pytest.mark.parametrize("kind", list(GARBAGE))
def test_resume_from_a_garbage_checkpoint_is_a_clear_error(fake_data, monkeypatch, kind):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(2, 1))
    cut = train(QUICK, progress="quiet")
    assert cut.summary["status"] == "interrupted"
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    checkpoint = cut.run_dir / "checkpoint.npz"
    checkpoint.write_bytes(GARBAGE[kind](checkpoint.read_bytes()))
    before = {p.name: p.read_bytes() for p in cut.run_dir.iterdir() if p.name != LOCK_FILE}

    result = runner.invoke(app, ["resume", str(cut.run_dir)])
    assert result.exit_code in (1, 2), result.output
    assert_no_traceback(result)
    assert "error:" in result.stderr and "checkpoint.npz" in result.stderr
    # Rejected before anything was touched: the run can still be inspected as it was.
    assert {p.name: p.read_bytes() for p in cut.run_dir.iterdir() if p.name != LOCK_FILE} == before


@pytest.mark.parametrize("text", ["", "{not json", "[]", "null", '"running"'])
def test_resume_with_a_garbage_summary_is_a_clear_error(fake_data, monkeypatch, text):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(2, 1))
    cut = train(QUICK, progress="quiet")
    (cut.run_dir / "summary.json").write_text(text)
    result = runner.invoke(app, ["resume", str(cut.run_dir)])
    assert result.exit_code in (1, 2), result.output
    assert_no_traceback(result)
    assert "error:" in result.stderr and "summary.json" in result.stderr


# --- out of memory mid-run ----------------------------------------------------------------------


def oom_in_epoch(monkeypatch, epoch: int) -> None:
    """The first forward pass of `epoch` raises MemoryError, as a numpy allocation would."""
    from trickrun.nn.model import MLP

    state = {"epoch": 0, "raised": False}

    class Count(NullReporter):
        def epoch(self, record):
            state["epoch"] = record["epoch"]

    real_forward = MLP.forward

    def forward(self, x, train):
        if train and state["epoch"] == epoch - 1 and not state["raised"]:
            state["raised"] = True
            raise MemoryError
        return real_forward(self, x, train)

    monkeypatch.setattr(MLP, "forward", forward)
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: Count())


def assert_ran_out_of_memory_in_epoch_2(result, tmp_path) -> tuple[Path, dict]:
    """`trickrun train` ended with exit 2 and the resume hint; the run directory and its summary."""
    assert result.exit_code == 2, result.output
    assert_no_traceback(result)
    (run_dir,) = run_dirs(tmp_path / "runs")
    message = result.stderr.replace("\n", "")
    assert "error: ran out of memory in epoch 2" in message
    assert f"resume with: trickrun resume {run_dir}" in message
    return run_dir, json.loads((run_dir / "summary.json").read_text())


def assert_resumes_to_the_end(run_dir: Path, monkeypatch) -> None:
    """`trickrun resume` completes the run, its metrics one record per epoch 1..3."""
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    resumed = runner.invoke(app, ["resume", str(run_dir), "--quiet", "--json"])
    assert resumed.exit_code == 0, resumed.output
    assert json.loads(resumed.stdout)["status"] == "completed"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records] == [1, 2, 3]


def test_running_out_of_memory_mid_run_ends_it_resumably_with_exit_2(fake_data, tmp_path, monkeypatch):
    with monkeypatch.context() as patch:
        oom_in_epoch(patch, 2)
        result = runner.invoke(app, ["train", str(write_config(tmp_path, QUICK)), "--quiet"])
    run_dir, summary = assert_ran_out_of_memory_in_epoch_2(result, tmp_path)
    assert summary["status"] == "interrupted" and summary["epochs_run"] == 1
    assert summary["stop_reason"] == "ran out of memory during epoch 2"
    assert summary["test"]["weights_of_epoch"] == 1  # the best weights were still evaluated

    assert_resumes_to_the_end(run_dir, monkeypatch)


def test_out_of_memory_from_the_api_raises_with_the_result(fake_data, monkeypatch):
    from trickrun.api import OutOfMemory

    oom_in_epoch(monkeypatch, 3)
    with pytest.raises(OutOfMemory) as info:
        train(QUICK, progress="quiet")
    assert info.value.exit_code == 2
    result = info.value.result
    assert result.summary["status"] == "interrupted" and result.summary["epochs_run"] == 2
    assert json.loads((result.run_dir / "summary.json").read_text())["status"] == "interrupted"


class FullBuffer(io.BytesIO):
    """The in-memory buffer write_npz fills: raises MemoryError, as a BytesIO that cannot grow
    does, while `fail["count"]` is positive and a write is made (each failure uses one)."""

    fail = {"count": 0}

    def write(self, data):
        if self.fail["count"] > 0:
            self.fail["count"] -= 1
            raise MemoryError
        return super().write(data)


def test_running_out_of_memory_writing_a_checkpoint_ends_the_run_resumably(fake_data, tmp_path, monkeypatch):
    class FailSecondCheckpoint(NullReporter):
        """Arms the buffer as epoch 1 ends: epoch 2's checkpoint (the next .npz) cannot be written."""

        def epoch(self, record):
            if record["epoch"] == 1:
                FullBuffer.fail["count"] = 1

    monkeypatch.setattr(io, "BytesIO", FullBuffer)
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: FailSecondCheckpoint())
    result = runner.invoke(app, ["train", str(write_config(tmp_path, QUICK)), "--quiet"])
    run_dir, summary = assert_ran_out_of_memory_in_epoch_2(result, tmp_path)
    assert summary["status"] == "interrupted" and summary["epochs_run"] == 1
    assert summary["stop_reason"].startswith("ran out of memory during epoch 2")
    # the checkpoint is epoch 1's, whole; epoch 2's record, which it does not cover, goes on resume
    with np.load(run_dir / "checkpoint.npz") as npz:
        assert json.loads(str(npz["meta"]))["epochs_done"] == 1

    assert_resumes_to_the_end(run_dir, monkeypatch)


def test_an_error_set_off_by_a_memory_error_in_savez_is_a_memory_error(tmp_path, monkeypatch):
    """zipfile closing a buffer that ran out of memory can raise a ValueError chained to the
    MemoryError; write_npz raises the MemoryError, and the file it would replace stays whole."""
    target = tmp_path / "checkpoint.npz"
    trickrun.rundir.writer.write_npz(target, {"a": np.arange(3)})
    before = target.read_bytes()

    def savez(file, **arrays):
        try:
            raise MemoryError
        except MemoryError:
            raise ValueError("I/O operation on closed file.")

    monkeypatch.setattr(np, "savez", savez)
    with pytest.raises(MemoryError, match="checkpoint.npz"):
        trickrun.rundir.writer.write_npz(target, {"a": np.arange(4)})
    assert target.read_bytes() == before
    monkeypatch.setattr(np, "savez", lambda file, **arrays: (_ for _ in ()).throw(ValueError("bad")))
    with pytest.raises(ValueError, match="bad"):  # other errors pass through unchanged
        trickrun.rundir.writer.write_npz(target, {"a": np.arange(4)})


def test_a_full_disk_at_the_first_checkpoint_leaves_no_run(fake_data, tmp_path, monkeypatch):
    # epoch 1's metrics line was written, its checkpoint not: no epoch was saved, and a resume
    # would start from scratch, so the directory is no run (ls would list it stale for good)
    calls = fill_disk_at(monkeypatch, "checkpoint.npz", 1)
    result = runner.invoke(app, ["train", str(write_config(tmp_path, QUICK)), "--quiet"])
    assert calls["checkpoint.npz"] == 1 and calls["metrics.jsonl"] == 1
    assert result.exit_code == 1 and "disk is full" in result.stderr
    assert run_dirs(tmp_path / "runs") == []


def test_a_resume_deletes_the_half_written_checkpoint_a_killed_writer_left(tmp_path):
    from trickrun.rundir.writer import RunWriter

    writer = RunWriter.create(tmp_path / "runs", "cut", "name: cut\n", 0)
    writer.close()
    left = writer.path / ".checkpoint.npz.0a1b2c3d.tmp"  # as atomic.replacing names it
    left.write_bytes(b"\0" * 1000)
    RunWriter.reopen(writer.path, 0).close()
    assert not left.exists() and (writer.path / "config.yaml").exists()
