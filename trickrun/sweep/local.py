"""Cells on this machine: each in its own `trickrun train` or `trickrun resume` process.

A process per cell, not a thread: a cell that raises, runs out of memory or is killed with
kill -9 takes nothing else down, and the BLAS thread count can be set before the process
starts (it cannot be changed reliably once NumPy is loaded). Each process gets
cores // jobs threads (at least one) through the variables every common BLAS reads.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
INTERRUPTED = (130, 143, 129)  # trickrun's exit codes after SIGINT (Ctrl-C), SIGTERM, SIGHUP
STDERR_TAIL = 600  # characters of a failed cell's stderr kept as its error


@dataclass
class Task:
    """One cell's work: train it afresh, or resume its run directory."""

    key: int  # the cell's index
    action: str  # "train" | "resume"
    base: Path | None  # the config file (train)
    overrides: list[str]  # --set strings (train)
    name: str
    seed: int
    runs_dir: Path
    run_dir: Path | None = None  # the directory to resume

    def argv(self) -> list[str]:
        """The trickrun arguments, after the program name."""
        if self.action == "resume":
            return ["resume", str(self.run_dir), "--quiet", "--json"]
        argv = ["train", str(self.base)]
        for text in self.overrides:
            argv += ["--set", text]
        return argv + ["--name", self.name, "--seed", str(self.seed), "--runs-dir", str(self.runs_dir),
                       "--quiet", "--json"]


@dataclass
class Outcome:
    key: int
    summary: dict[str, Any] | None  # the run's summary.json, when the process printed it
    run_dir: Path | None
    error: str | None  # why the cell failed; None when it ran (diverged included)
    exit_code: int | None


def shell_command(task: Task) -> str:
    """The line to type for one cell (for --print-commands), without --json."""
    return " ".join(shlex.quote(a) for a in ["trickrun", *(a for a in task.argv() if a != "--json")])


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to send SIGTERM when the sweep process dies (even
    by kill -9), so no cell trains on unwatched; SIGTERM ends it as `interrupted`, resumable
    by the next run of the sweep. Elsewhere a no-op. And SIGINT as in a foreground job: a
    sweep started in the background inherits SIGINT ignored, and its cells would then
    ignore the Ctrl-C the sweep passes on to them."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // max(1, jobs))


class LocalBackend:
    """Runs up to `jobs` tasks at once as child processes."""

    def __init__(self, jobs: int):
        self.jobs = jobs
        self.threads = threads_per_job(jobs)
        self._running: dict[int, tuple[subprocess.Popen, Task, Any, Any]] = {}

    @property
    def free_slots(self) -> int:
        return self.jobs - len(self._running)

    @property
    def busy(self) -> bool:
        return bool(self._running)

    def submit(self, task: Task) -> None:
        env = dict(os.environ, **{v: str(self.threads) for v in THREAD_VARIABLES})
        env["PYTHONUNBUFFERED"] = "1"
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        proc = subprocess.Popen([sys.executable, "-m", "trickrun", *task.argv()], stdout=out, stderr=err,
                                stdin=subprocess.DEVNULL, env=env,
                                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
                                start_new_session=True)
        self._running[task.key] = (proc, task, out, err)

    def wait(self, timeout: float = 0.2) -> list[Outcome]:
        """The tasks that ended, waiting up to `timeout` seconds for one."""
        deadline = time.monotonic() + timeout
        while True:
            done = [key for key, (proc, *_) in self._running.items() if proc.poll() is not None]
            if done or time.monotonic() >= deadline:
                return [self._collect(key) for key in done]
            time.sleep(0.05)

    def _collect(self, key: int) -> Outcome:
        proc, task, out, err = self._running.pop(key)
        out.seek(0)
        err.seek(0)
        stdout = out.read().decode(errors="replace")
        stderr = err.read().decode(errors="replace")
        out.close()
        err.close()
        return outcome_of(task, proc.returncode, stdout, stderr)

    def interrupt(self) -> None:
        """Pass the sweep's Ctrl-C on to each running cell, once: the cells run in sessions of
        their own, so a terminal's Ctrl-C reaches only the sweep (a second SIGINT would cut a
        cell's orderly end short). Each cell ends its epoch and writes `interrupted`."""
        for proc, *_ in self._running.values():
            if proc.poll() is None:
                try:
                    proc.send_signal(signal.SIGINT)
                except ProcessLookupError:
                    pass

    def drain(self, timeout: float = 120.0) -> list[Outcome]:
        deadline = time.monotonic() + timeout
        outcomes = []
        while self._running and time.monotonic() < deadline:
            outcomes += self.wait(0.5)
        for key, (proc, *_) in list(self._running.items()):
            proc.kill()
            proc.wait()
            outcomes.append(self._collect(key))
        return outcomes

    def close(self) -> None:
        self.drain(0)


def outcome_of(task: Task, code: int, stdout: str, stderr: str) -> Outcome:
    """What a cell's process left: its summary (exit 0, or 130 when interrupted), else why it failed."""
    summary = None
    try:
        parsed = json.loads(stdout) if stdout.strip() else None
        summary = parsed if isinstance(parsed, dict) else None
    except ValueError:
        pass
    run_dir = Path(summary["run_dir"]) if summary and isinstance(summary.get("run_dir"), str) else task.run_dir
    if summary is not None and (code == 0 or code in INTERRUPTED):
        return Outcome(task.key, summary, run_dir, None, code)
    if code in INTERRUPTED:  # stopped before it could print a summary: resumable, not failed
        return Outcome(task.key, {"status": "interrupted"}, run_dir, None, code)
    if code < 0:
        why = f"killed by signal {signal.Signals(-code).name}" if -code in signal.Signals._value2member_map_ else f"killed by signal {-code}"
    else:
        why = f"exit code {code}"
    tail = stderr.strip()[-STDERR_TAIL:]
    return Outcome(task.key, None, run_dir, f"{why}: {tail}" if tail else why, code)
