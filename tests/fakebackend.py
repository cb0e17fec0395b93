"""An in-memory sweep backend: it trains nothing, and checks what the driver hands it.

Each submitted cell "trains" by writing a finished summary into exactly the run directory
it was given, after checking that the directory holds the cell's config.yaml and that the
driver is not also its writer (the lock went with the job). `script` says how each cell
ends, by cell index: "completed" (default), "fail", "hang" (ends only when stopped or
killed), "hang-until-killed", "crash-on-stop" (runs until stopped or killed, then its
process dies with a traceback), "stopped-while-starting" (runs until stopped, then exits 130
having written nothing, as a worker stopped before its training began does).
"""

from __future__ import annotations

import json
from pathlib import Path

from trickrun.rundir.lock import is_locked
from trickrun.sweep.backend import CellEnd, CellJob


class FakeBackend:
    def __init__(self, slots: int = 2, script: dict[int, str] | None = None, on_poll=None):
        self.slots = slots
        self.script = script or {}
        self.on_poll = on_poll  # called with the backend at each poll: a test's probe or fault
        self.jobs: list[CellJob] = []
        self.live: dict[int, CellJob] = {}
        self.stopped = self.killed = self.closed = False
        self.locked_at_submit: list[bool] = []

    @property
    def running(self) -> int:
        return len(self.live)

    def submit(self, job: CellJob) -> None:
        assert (job.run_dir / "config.yaml").is_file(), "the worker gets a directory with its config"
        self.locked_at_submit.append(bool(is_locked(job.run_dir)))
        job.lock.release()  # the "worker" has it now
        self.jobs.append(job)
        self.live[job.index] = job

    def poll(self, timeout: float) -> list[CellEnd]:
        if self.on_poll is not None:
            self.on_poll(self)
        ends = []
        for index, job in list(self.live.items()):
            how = self.script.get(index, "completed")
            if how in ("hang", "crash-on-stop", "stopped-while-starting") and not (self.killed or self.stopped):
                continue
            if how == "hang-until-killed" and not self.killed:
                continue
            del self.live[index]
            ends.append(self._end(job, how))
        return ends

    def _end(self, job: CellJob, how: str) -> CellEnd:
        if how == "fail":
            return CellEnd(job.index, None, "exit code 3: error: no data", 3)
        if how == "stopped-while-starting":
            return CellEnd(job.index, None, None, 130)
        if how == "crash-on-stop" or (self.killed and how.startswith("hang")):
            return CellEnd(job.index, None, "Traceback ...\nKeyboardInterrupt", 1)
        status = "interrupted" if self.stopped else "completed"
        summary = {**json.loads((job.run_dir / "summary.json").read_text()), "status": status,
                   "epochs_run": 1, "best_epoch": 1, "stop_reason": status}
        (job.run_dir / "summary.json").write_text(json.dumps(summary))
        return CellEnd(job.index, summary, None, 130 if self.stopped else 0)

    def stop(self, signum: int) -> None:
        self.stopped = True

    def kill(self) -> None:
        self.killed = True

    def close(self) -> None:
        self.closed = True


def config_of(run_dir: Path) -> str:
    return (run_dir / "config.yaml").read_text()
