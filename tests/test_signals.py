"""SIGINT, SIGTERM and SIGHUP (Ctrl-C, a scheduler, a closed terminal) end a run the same way:
status interrupted, metrics kept, resumable, exit 128 + the signal, and how to go on."""

from __future__ import annotations

import json
import signal
from contextlib import nullcontext
from pathlib import Path

import pytest

from subproc import LONG_RUN, children, start, wait_for_epochs, wait_for_run_dir  # noqa: F401 (children: a fixture)
from trickrun.rundir.files import check_resumable, effective_status, read_summary
from trickrun.rundir.format import RESUMABLE
from trickrun.rundir.lock import is_locked


def can_resume(path: Path) -> bool:
    """Whether the run at `path` stopped part-way: interrupted, or no process trains it any more."""
    return effective_status(read_summary(path / "summary.json")[0], path) in RESUMABLE


SIGNALS = [
    pytest.param(signal.SIGINT, 130, "Ctrl-C", id="SIGINT",
                 marks=pytest.mark.skipif(signal.getsignal(signal.SIGINT) is signal.SIG_IGN,
                                          reason="SIGINT is ignored in this session (a background job)")),
    pytest.param(signal.SIGTERM, 143, "SIGTERM", id="SIGTERM"),
    pytest.param(signal.SIGHUP, 129, "SIGHUP", id="SIGHUP"),
]


@pytest.mark.parametrize(("signum", "code", "label"), SIGNALS)
def test_a_stop_signal_while_training_interrupts_the_run_resumably(fake_data, tmp_path, children, signum, code, label):
    config = tmp_path / "long.yaml"
    config.write_text("name: long\n")
    proc = start("train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet", *LONG_RUN)
    children.append(proc)
    run_dir = wait_for_run_dir(tmp_path / "runs", proc)
    wait_for_epochs(run_dir, 2, proc)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)

    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert err.count(f"trickrun resume {run_dir}") == 1  # how to go on, said once
    assert out.strip() == str(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted"
    # during the epoch in progress, or (rarely) in the moment between two epochs
    where = "during" if summary["epochs_run"] < summary["stopped_epoch"] else "after"
    assert summary["stop_reason"] == f"interrupted ({label}) {where} epoch {summary['stopped_epoch']}"
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    assert len(lines) == summary["epochs_run"] >= 2  # every finished epoch kept
    assert (run_dir / "checkpoint.npz").exists() and (run_dir / "model.npz").exists()
    assert is_locked(run_dir) is False and can_resume(run_dir) and check_resumable(run_dir)


def test_a_stop_signal_while_resuming_interrupts_it_again(fake_data, tmp_path, children):
    config = tmp_path / "long.yaml"
    config.write_text("name: long\n")
    proc = start("train", str(config), "--runs-dir", str(tmp_path / "runs"), "--quiet", *LONG_RUN)
    children.append(proc)
    run_dir = wait_for_run_dir(tmp_path / "runs", proc)
    wait_for_epochs(run_dir, 2, proc)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    first = json.loads((run_dir / "summary.json").read_text())["epochs_run"]

    again = start("resume", str(run_dir), "--quiet")
    children.append(again)
    wait_for_epochs(run_dir, first + 2, again)
    again.send_signal(signal.SIGHUP)
    _, err = again.communicate(timeout=60)
    assert again.returncode == 129, err
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "interrupted" and summary["resumed"] == 1
    assert summary["stop_reason"].startswith(("interrupted (SIGHUP) during epoch", "interrupted (SIGHUP) after epoch"))
    epochs = [json.loads(line)["epoch"] for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, summary["epochs_run"] + 1)) and len(epochs) >= first + 2


def test_a_signal_inside_nested_held_blocks_waits_for_the_outermost(fake_data):
    from trickrun.signals import SignalStop, StopSignal

    stops, done = SignalStop(), []
    with stops.installed():
        with pytest.raises(StopSignal):
            with stops.held():
                with stops.held():
                    signal.raise_signal(signal.SIGTERM)
                    done.append("checkpoint")
                done.append("progress line")
    assert done == ["checkpoint", "progress line"]


def test_handlers_are_only_installed_while_training(fake_data, monkeypatch):
    from helpers import InterruptAt
    from trickrun.api import train

    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    seen = {}

    class Look(InterruptAt):
        def batch(self, epoch, index, loss, correct, size):
            seen.update({s: signal.getsignal(s) for s in before})
            super().batch(epoch, index, loss, correct, size)

    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: Look(1, 1))
    result = train({"data": {"val_size": 100}, "model": {"hidden": [8]}}, progress="quiet")
    assert result.stop_signal == signal.SIGINT and result.exit_code == 130
    assert all(seen[s] is not before[s] for s in before)  # ours while training
    assert {s: signal.getsignal(s) for s in before} == before  # given back afterwards


def test_a_signal_inside_held_waits_for_the_end_of_the_block():
    from trickrun.signals import SignalStop, StopSignal

    stops, done = SignalStop(), []
    # Outside `installed()` these handlers get the signals (and keep pytest alive if it fails).
    previous = {s: signal.signal(s, lambda signum, frame: done.append(signum))
                for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with stops.installed():
            with pytest.raises(StopSignal) as info:
                with stops.held():
                    signal.raise_signal(signal.SIGTERM)
                    done.append("record")
                    done.append("checkpoint")
            assert info.value.signum == signal.SIGTERM and done == ["record", "checkpoint"]
            with pytest.raises(StopSignal):  # outside held: at once
                signal.raise_signal(signal.SIGHUP)
                done.append("never")
        signal.raise_signal(signal.SIGHUP)  # the test's handler is back
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert done == ["record", "checkpoint", signal.SIGHUP]


# --- the command's start ----------------------------------------------------------------------
# A child that inherited SIGINT ignored, as a job a script starts in the background does, and
# that says when it begins to load the command line, then loads it slowly.
SLOW_START = """
import builtins, signal, sys, time
signal.signal(signal.SIGINT, signal.SIG_IGN)
real_import = builtins.__import__

def slow_import(name, globals=None, locals=None, fromlist=(), level=0):
    if name == "cli" and level == 1:
        print("loading", flush=True)
        time.sleep(60)
    return real_import(name, globals, locals, fromlist, level)

builtins.__import__ = slow_import
sys.argv = ["trickrun", "ls"]
from trickrun.entry import main
main()
"""


def test_ctrl_c_while_the_command_loads_exits_130_even_from_the_background():
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", SLOW_START], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        assert proc.stdout.readline() == "loading\n"
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 130 and err == "interrupted\n"


def test_ctrl_c_inside_a_command_that_does_not_take_it_exits_130(monkeypatch, tmp_path):
    from typer.testing import CliRunner

    from trickrun.cli import app

    def interrupted(root):
        raise KeyboardInterrupt

    monkeypatch.setattr("trickrun.cli_runs.scan_runs", interrupted)
    result = CliRunner().invoke(app, ["ls", "--runs-dir", str(tmp_path)])
    assert result.exit_code == 130 and "interrupted" in result.stderr and "Aborted" not in result.output


def test_a_signal_inherited_ignored_stays_ignored_while_training():
    """`nohup trickrun train ...`: the run goes on when its terminal closes (SIGHUP)."""
    from trickrun.signals import SignalStop

    stops = SignalStop()
    previous = signal.signal(signal.SIGHUP, signal.SIG_IGN)
    try:
        with stops.installed():
            assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
            signal.raise_signal(signal.SIGHUP)  # ignored: no StopSignal
        assert signal.getsignal(signal.SIGHUP) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGHUP, previous)


# A child that runs `trickrun ARGS` and stops itself with a signal at the moment a file being
# replaced is complete, before it is renamed into place.
SIGNAL_WHILE_REPLACING = """
import os, signal, sys
from trickrun import atomic

def stop(fd):
    os.kill(os.getpid(), int(os.environ["STOP_WITH"]))

atomic.os.fsync = stop
sys.argv = ["trickrun", *sys.argv[1:]]
from trickrun.entry import main
main()
"""


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_outside_training_ends_the_command_as_ctrl_c_does(tmp_path, signum, code):
    """export -o: the old file stays whole and no temporary file is left beside it (SIGTERM and
    SIGHUP used to kill the command where it stood)."""
    import os
    import subprocess
    import sys

    from runfactory import make_run

    make_run(tmp_path / "runs", "adam")
    out = tmp_path / "out"
    out.mkdir()
    (out / "t.csv").write_text("old\n")
    proc = subprocess.run([sys.executable, "-c", SIGNAL_WHILE_REPLACING, "export", "adam", "-o", str(out / "t.csv"),
                           "--runs-dir", str(tmp_path / "runs")], env={**os.environ, "STOP_WITH": str(int(signum))},
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert proc.returncode == code and proc.stderr == "interrupted\n"
    assert [p.name for p in out.iterdir()] == ["t.csv"] and (out / "t.csv").read_text() == "old\n"


# `trickrun train` in a child that stops itself with a signal as it is about to save model.npz,
# once its last epoch is recorded: the moment a run writes its end.
SIGNAL_AT_THE_END = """
import os, sys
from trickrun.rundir import writer

save_model = writer.RunWriter.save_model

def stop_then_save(self, arrays):
    os.kill(os.getpid(), int(os.environ["STOP_WITH"]))
    save_model(self, arrays)

writer.RunWriter.save_model = stop_then_save
"""


def _train_stopped_by(patch: str, signum: int, tmp_path: Path, epochs: int):
    """`trickrun train` of a tiny net on the fake data, in a process where `patch` (run before the
    entry point) sends the signal $STOP_WITH at the moment it chooses."""
    import os
    import subprocess
    import sys

    import subproc

    prelude = subproc._PRELUDE.replace("from trickrun.entry import main", patch + "from trickrun.entry import main")
    env = {**os.environ, "STOP_WITH": str(int(signum)),
           "TRICKRUN_TEST_SUMS": json.dumps(dict(subproc.catalog.DATASETS["mnist"].sha256))}
    config = tmp_path / "short.yaml"
    config.write_text("name: short\n")
    return subprocess.run([sys.executable, "-c", prelude, "train", str(config), "--runs-dir", str(tmp_path / "runs"),
                           "--quiet", "--set", "data.val_size=100", "--set", "model.hidden=[8]",
                           "--set", f"train.epochs={epochs}"], env=env, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, preexec_fn=subproc.foreground_sigint, timeout=120)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_while_a_run_writes_its_end_waits_for_it(fake_data, tmp_path, signum):
    """The run's end (test result, model.npz, summary) is written whole: it used to be left
    "running" (stale), with no word of how to go on, or killed outright by SIGTERM."""
    proc = _train_stopped_by(SIGNAL_AT_THE_END, signum, tmp_path, epochs=2)
    assert proc.returncode == 0, proc.stderr
    run_dir = Path(proc.stdout.strip())
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs_run"] == 2
    assert sorted(p.name for p in run_dir.iterdir()) == [".lock", "config.yaml", "metrics.jsonl", "model.npz",
                                                         "summary.json"]


SIGNAL_WHILE_PRINTING = """\
import os
from trickrun import cli
print_result = cli._print_result
def stop_then_print(*args, **kwargs):
    os.kill(os.getpid(), int(os.environ["STOP_WITH"]))
    print_result(*args, **kwargs)

cli._print_result = stop_then_print
"""


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_once_the_run_has_ended_leaves_its_result_and_exit_code(fake_data, tmp_path, signum):
    """A stop while the finished run's result is printed said `interrupted`, exit 130 or 143,
    and printed no run directory, while the summary said completed."""
    proc = _train_stopped_by(SIGNAL_WHILE_PRINTING, signum, tmp_path, epochs=1)
    assert proc.returncode == 0 and "interrupted" not in proc.stderr, proc.stderr
    run_dir = Path(proc.stdout.strip())
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "completed"


def test_a_signal_the_moment_a_temporary_file_is_made_leaves_none(tmp_path, monkeypatch):
    """atomic.replacing: a Ctrl-C (or SIGTERM) right after the temporary file is created, before
    anything is written into it, still deletes it."""
    import os

    from trickrun import atomic

    real_open = os.open

    def open_then_stop(*args, **kwargs):
        real_open(*args, **kwargs)
        raise KeyboardInterrupt

    path = tmp_path / "table.csv"
    path.write_text("old\n")
    monkeypatch.setattr(atomic.os, "open", open_then_stop)
    with pytest.raises(KeyboardInterrupt):
        with atomic.replacing(path) as (f, _):
            f.write(b"new\n")
    monkeypatch.undo()
    assert [p.name for p in tmp_path.iterdir()] == ["table.csv"] and path.read_text() == "old\n"


@pytest.mark.parametrize("last_epoch", ["ends the run", "runs out of memory", "is stopped by Ctrl-C"])
def test_a_stop_signal_once_the_runs_ending_is_decided_waits(last_epoch):
    """However the loop ended, a signal while the caller writes the run's end waits: after a
    MemoryError it raised there and left the summary "running" instead of `interrupted`, resumable."""
    from trickrun.ending import Ending, run_until_ended
    from trickrun.rundir.format import Status
    from trickrun.signals import SignalStop

    def next_epoch():
        if last_epoch == "runs out of memory":
            raise MemoryError
        if last_epoch == "is stopped by Ctrl-C":
            raise KeyboardInterrupt
        return Ending(Status.COMPLETED, "completed")

    signals = SignalStop()
    try:
        with signals.installed():  # as api._run keeps them to the summary
            run_until_ended(next_epoch, lambda: "during epoch 1", signals)
            signal.raise_signal(signal.SIGTERM)  # while the test result, model.npz and summary are written
    except KeyboardInterrupt:
        pytest.fail("the signal was raised while the run's end was being written")


@pytest.mark.parametrize("handler", ["command", "training loop"])
def test_a_stop_signal_during_a_numba_compile_waits_for_the_compile_to_end(handler):
    """Raised inside a compile, the stop lands in one of LLVM's callbacks, which swallows it and
    leaves numba half-done (a traceback of numba's). It waits for the compile's end instead: the
    function is then compiled, and the stop is raised as at any other moment."""
    import numba
    import numba.core.event

    import trickrun.nn.kernels  # noqa: F401 (registers the listener that makes stops wait)
    from trickrun.signals import SignalStop, StopSignal, raise_stop

    class SignalMidCompile(numba.core.event.Listener):
        def on_start(self, event) -> None:
            signal.raise_signal(signal.SIGTERM)  # its handler runs before this returns

        def on_end(self, event) -> None: ...

    def fresh(x):
        return x * 2

    jitted = numba.njit(fresh)
    previous = signal.signal(signal.SIGTERM, raise_stop)
    try:
        with SignalStop().installed() if handler == "training loop" else nullcontext():
            with numba.core.event.install_listener("numba:compile", SignalMidCompile()):
                with pytest.raises(StopSignal) as stop:
                    jitted(3)
            assert stop.value.signum == signal.SIGTERM
            assert len(jitted.signatures) == 1  # compiled whole before the stop was raised
            assert jitted(3) == 6
            with pytest.raises(StopSignal):  # no compile under way: a stop is raised at once
                signal.raise_signal(signal.SIGTERM)
    finally:
        signal.signal(signal.SIGTERM, previous)

