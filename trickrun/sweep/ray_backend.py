"""Cells on a Ray cluster: each a Ray task that trains a copy of its run directory in a
scratch folder of its worker (worker.train_copy).

Workers need not share a file system with the driver. The driver verifies each dataset the
cells use once, on its own machine, and puts the arrays in Ray's object store. It holds the
lock of every run directory it handed to Ray until the task ends, then writes the returned
files into that directory, summary.json last, so a reader never sees a finished summary
beside missing files. A task whose worker dies is retried once by Ray, then recorded as
failed. A cell stopped by Ctrl-C (ray.cancel raises KeyboardInterrupt in its worker) ends
interrupted there and its files come back; one whose task is ended at once, or whose worker
dies, loses its scratch copy: its run directory keeps what it held when the cell started,
says "running" with no process holding it (stale), and the next run of the sweep resumes it.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from ..errors import TrickrunError
from ..rundir.format import SUMMARY_FILE
from ..rundir.writer import write_atomic
from .backend import CellEnd, CellJob
from .local import threads_per_job
from .ray_cluster import LocalCluster, StdoutToLog, check_ray_version, connect, import_ray, ray_running
from .worker import run_files, train_copy

ERROR_TAIL = 600


class RayBackend:
    """The same protocol as LocalBackend (backend.Backend), on Ray."""

    def __init__(self, address: str | None, jobs: int, log_file: Path):
        check_ray_version()
        self.slots = jobs
        self.threads = threads_per_job(jobs) if address is None else 1
        self._ray_failed = False  # a cell lost to Ray itself: its logs are worth keeping
        self._cluster = LocalCluster() if address is None and not ray_running() else None
        self._stdout: StdoutToLog | None = None
        self._joined = False  # connected to a cluster by this backend (a notebook's Ray stays connected)
        try:
            self._stdout = StdoutToLog(log_file)
            self.ray = import_ray()
            if self._cluster is not None:
                self._cluster.start(self.ray)
            elif not self.ray.is_initialized():
                connect(self.ray, address)
                self._joined = True
        except BaseException:
            try:
                if self._cluster is not None:
                    self._cluster.stop(sys.modules.get("ray"))
            finally:
                if self._stdout is not None:
                    self._stdout.restore()
            raise
        self._remote = self.ray.remote(max_retries=1, retry_exceptions=False)(train_copy)
        self._data: dict[tuple, tuple[Any, str]] = {}  # (dataset, data.dir) -> (arrays' object ref, source)
        self._running: dict[Any, CellJob] = {}
        self._ended: list[CellEnd] = []  # cells that failed before they could be sent

    @property
    def running(self) -> int:
        return len(self._running) + len(self._ended)

    def _arrays(self, cfg) -> tuple[Any, str]:
        """The object-store reference of the verified arrays the cell's data config names."""
        from ..data.load import verified_arrays

        key = (cfg.data.dataset, cfg.data.dir)
        if key not in self._data:
            arrays, source = verified_arrays(cfg.data)
            self._data[key] = (self.ray.put(arrays), source)
        return self._data[key]

    def submit(self, job: CellJob) -> None:
        try:
            ref, source = self._arrays(job.config)
        except TrickrunError as err:  # e.g. this cell's data.dir holds no dataset: the cell fails
            job.lock.release()
            self._ended.append(CellEnd(job.index, None, f"{type(err).__name__}: {err}", err.exit_code))
            return
        future = self._remote.options(num_cpus=self.threads).remote(
            job.run_dir.name, run_files(job.run_dir), job.fresh, ref, source, job.config.data.dataset, self.threads)
        self._running[future] = job

    def poll(self, timeout: float = 0.2) -> list[CellEnd]:
        if self._ended:
            ended, self._ended = self._ended, []
            return ended
        if not self._running:
            return []
        done, _ = self.ray.wait(list(self._running), num_returns=1, timeout=timeout)
        return [self._collect(future) for future in done]

    def _collect(self, future) -> CellEnd:
        job = self._running.pop(future)
        try:
            try:
                result = self.ray.get(future)
            except self.ray.exceptions.TaskCancelledError:
                return CellEnd(job.index, None, None, 130)
            except Exception as err:  # RayTaskError (the cell raised) or a lost worker, after the retry
                self._ray_failed = True
                return CellEnd(job.index, None, f"{type(err).__name__}: {str(err)[-ERROR_TAIL:]}", None)
            _write_files(job.run_dir, result["files"])
            return CellEnd(job.index, result["summary"], result["error"], 0)
        finally:
            job.lock.release()

    def stop(self, signum: int) -> None:
        for future in list(self._running):
            self.ray.cancel(future)

    def kill(self) -> None:
        for future in list(self._running):
            self.ray.cancel(future, force=True)

    def close(self) -> None:
        """End the cells, stop the cluster and give stdout back, whichever of them raises."""
        try:
            self.kill()
            for future in list(self._running):
                self._collect(future)
        finally:
            try:
                if self._cluster is not None:
                    self._cluster.stop(self.ray, keep=self._ray_failed)
                    if self._ray_failed:
                        print(f"a cell failed in Ray: Ray's logs are kept in {self._cluster.folder}", file=sys.stderr)
                elif self._joined:  # Ray's threads print to fd 1 until it disconnects
                    self.ray.shutdown()
            finally:
                self._stdout.restore()


def _write_files(path: Path, files: dict[str, bytes]) -> None:
    """The returned run files into the run directory, summary.json last."""
    for name in sorted(files, key=lambda n: n == SUMMARY_FILE):
        write_atomic(path / name, files[name])
    for stale in set(run_files(path)) - set(files):  # e.g. the checkpoint of a run that finished
        (path / stale).unlink()
