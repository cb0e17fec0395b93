"""Cells on this machine: each in a worker process of its own (worker.py).

A process per cell, not a thread: a cell that raises, runs out of memory or is killed with
kill -9 takes nothing else down, and the BLAS thread count can be set before the process
starts (it cannot be changed reliably once NumPy is loaded). Each process gets
cores // jobs threads (at least one) through the variables every common BLAS reads.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from typing import IO, Any

from .backend import CellEnd, CellJob
from .states import INTERRUPTED_EXIT_CODES

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
                    "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")
STDERR_TAIL = 600  # characters of a failed cell's stderr kept as its error
# The worker's command line before its arguments (tests start it through a prelude).
WORKER_COMMAND = [sys.executable, "-m", "trickrun.sweep.worker"]


def _worker_setup(parent: int) -> None:
    """In the worker, before exec: ask Linux to send SIGTERM when the sweep process dies (even
    by kill -9), so no cell trains on unwatched; SIGTERM ends it as `interrupted`, resumable
    by the next run of the sweep. A sweep that died before the request was made sends
    nothing: then the worker never starts. And SIGINT as in a foreground job: a sweep
    started in the background inherits SIGINT ignored, and its cells would then ignore the
    stop the sweep passes on to them. SIGTERM too: a sweep that inherited it ignored keeps it
    so (signals.SignalStop), and its cells would then train on after it died."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass
    if os.getppid() != parent:
        os._exit(128 + signal.SIGTERM)


def threads_per_job(jobs: int, cores: int | None = None) -> int:
    return max(1, (cores or os.cpu_count() or 1) // max(1, jobs))


class _Worker:
    def __init__(self, job: CellJob, proc: subprocess.Popen, out: IO[bytes], err: IO[bytes]):
        self.job, self.proc, self.out, self.err = job, proc, out, err


class LocalBackend:
    """Runs up to `jobs` cells at once as worker processes."""

    def __init__(self, jobs: int):
        self.slots = jobs
        self.threads = threads_per_job(jobs)
        self._workers: dict[int, _Worker] = {}

    @property
    def running(self) -> int:
        return len(self._workers)

    def submit(self, job: CellJob) -> None:
        env = dict(os.environ, **{v: str(self.threads) for v in THREAD_VARIABLES})
        env["PYTHONUNBUFFERED"] = "1"
        out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        fd = job.lock.fileno()
        proc = subprocess.Popen([*WORKER_COMMAND, str(job.run_dir), str(fd), "fresh" if job.fresh else "resume"],
                                stdout=out, stderr=err, stdin=subprocess.DEVNULL, env=env, pass_fds=(fd,),
                                preexec_fn=functools.partial(_worker_setup, os.getpid())
                                if sys.platform == "linux" else None,
                                start_new_session=True)  # a terminal's Ctrl-C reaches only the sweep
        job.lock.release()  # the worker holds the same lock now
        self._workers[job.index] = _Worker(job, proc, out, err)

    def poll(self, timeout: float = 0.2) -> list[CellEnd]:
        deadline = time.monotonic() + timeout
        while True:
            done = [i for i, w in self._workers.items() if w.proc.poll() is not None]
            if done or time.monotonic() >= deadline:
                return [self._collect(i) for i in done]
            time.sleep(0.05)

    def _collect(self, index: int) -> CellEnd:
        w = self._workers.pop(index)
        texts = []
        for f in (w.out, w.err):
            f.seek(0)
            texts.append(f.read().decode(errors="replace"))
            f.close()
        return cell_end(index, w.proc.returncode, *texts)

    def stop(self, signum: int) -> None:
        """Pass the sweep's stop on to each running cell, once: the workers run in sessions of
        their own, so a terminal's Ctrl-C reaches only the sweep. Each ends its epoch's
        record and writes `interrupted`."""
        self._signal_all(signum)

    def kill(self) -> None:
        self._signal_all(signal.SIGKILL)

    def _signal_all(self, signum: int) -> None:
        for w in self._workers.values():
            if w.proc.poll() is None:
                try:
                    w.proc.send_signal(signum)
                except ProcessLookupError:
                    pass

    def close(self) -> None:
        """Nothing is left running: a cell still running is killed (resumable)."""
        self.kill()
        for index in list(self._workers):
            self._workers[index].proc.wait()
            self._collect(index)


def _summary(stdout: str) -> dict[str, Any] | None:
    try:
        parsed = json.loads(stdout) if stdout.strip() else None
    except ValueError:
        return None
    return parsed if isinstance(parsed, dict) else None


def why_failed(stderr: str, limit: int = STDERR_TAIL) -> str:
    """What a failed worker said, in at most `limit` characters cut between words: from its last
    `error:` line on (trickrun's own message, whose start names the problem), else the end of
    what it printed (a traceback's last lines)."""
    text = stderr.strip()
    last_error = text.rfind("\nerror: ")
    if last_error >= 0 or text.startswith("error: "):
        text = text[last_error + 1:]
        if len(text) <= limit:
            return text
        words = text[: limit - 1].rsplit(None, 1)[0]  # cut between words, unless one word fills it
        return (words if len(words) > len("error:") else text[: limit - 1]) + "…"
    if len(text) <= limit:
        return text
    words = text[-(limit - 1):].split(None, 1)
    return "…" + words[-1]


def cell_end(index: int, code: int, stdout: str, stderr: str) -> CellEnd:
    """What a worker process left: its summary (exit 0, or interrupted), else why it failed."""
    summary = _summary(stdout)
    tail = why_failed(stderr)
    if summary is not None and (code == 0 or code in INTERRUPTED_EXIT_CODES):
        return CellEnd(index, summary, None, code)
    if code in INTERRUPTED_EXIT_CODES:  # stopped before training began: resumable, not failed
        return CellEnd(index, None, None, code)
    if code < 0:
        known = -code in signal.Signals._value2member_map_
        why = f"killed by signal {signal.Signals(-code).name if known else -code}"
    else:
        why = f"exit code {code}"
    return CellEnd(index, summary, f"{why}: {tail}" if tail else why, code)
