"""Cells on a Ray cluster: each a Ray task that trains in a scratch folder of its worker.

Workers need not share a file system with the driver. The driver verifies each dataset the
cells use once, on its own machine, and puts the arrays in Ray's object store; a task builds
its split and scaling from them, trains (or resumes from the run files it was sent) in a
temporary folder, and returns every file of the run directory. The driver writes them into
the sweep's runs folder, summary.json last, so a reader never sees a finished summary beside
missing files. A task whose worker dies is retried once by Ray, then recorded as failed.
A cell stopped by Ctrl-C loses its scratch folder: the next run of the sweep trains it again.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

from ..config import read_config_file
from ..errors import ConfigError, TrickrunError
from ..rundir.format import SUMMARY_FILE
from ..rundir.writer import write_atomic
from .local import Outcome, Task, threads_per_job

INSTALL_HINT = "the ray backend needs the ray extra: pip install 'trickrun[ray]'"


def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError(f"--backend ray: {INSTALL_HINT}") from None
    return ray


def run_cell(task: Task, base: dict | None, arrays: dict, source: str, dataset: str,
             run_files: dict[str, bytes] | None, threads: int) -> dict[str, Any]:
    """In the worker: train or resume one cell in a scratch folder; return its files."""
    from threadpoolctl import threadpool_limits

    from .. import api
    from ..data.load import supply_verified

    supply_verified(dataset, arrays, source)
    with threadpool_limits(threads), tempfile.TemporaryDirectory(prefix="trickrun-cell-") as scratch:
        if task.action == "resume":
            path = Path(scratch) / task.run_dir.name
            path.mkdir()
            for name, data in run_files.items():
                (path / name).write_bytes(data)
            result = api.resume(path, progress="quiet")
        else:
            result = api.train(base, task.overrides, name=task.name, seed=task.seed, runs_dir=scratch,
                               progress="quiet")
        files = _run_files(result.run_dir)
    return {"dir_name": result.run_dir.name, "files": files, "summary": result.summary}


def _run_files(path: Path) -> dict[str, bytes]:
    """A run directory's files (not its lock file, which belongs to this machine's process)."""
    return {f.name: f.read_bytes() for f in path.iterdir() if f.is_file() and not f.name.startswith(".")}


class RayBackend:
    """The same interface as LocalBackend: submit, wait, interrupt, drain, close."""

    def __init__(self, address: str | None, jobs: int, root: Path):
        self.ray = _import_ray()
        self.root, self.jobs = root, jobs
        self.threads = threads_per_job(jobs) if address is None else 1
        if not self.ray.is_initialized():
            kwargs = {"num_cpus": os.cpu_count()} if address is None else {}
            self.ray.init(address=address, include_dashboard=False, log_to_driver=False,
                          logging_level="ERROR", configure_logging=False, **kwargs)
        self._remote = self.ray.remote(max_retries=1, retry_exceptions=False)(run_cell)
        self._data: dict[tuple, tuple[Any, str]] = {}  # (dataset, data.dir) -> (arrays' object ref, source)
        self._running: dict[Any, Task] = {}
        self._failed: list[Outcome] = []  # cells that failed before they could be sent

    @property
    def free_slots(self) -> int:
        return self.jobs - len(self._running) - len(self._failed)

    @property
    def busy(self) -> bool:
        return bool(self._running or self._failed)

    def _arrays(self, cfg) -> tuple[Any, str]:
        """The object-store reference of the verified arrays the cell's data config names."""
        from ..data.load import verified_arrays

        key = (cfg.data.dataset, cfg.data.dir)
        if key not in self._data:
            arrays, source = verified_arrays(cfg.data)
            self._data[key] = (self.ray.put(arrays), source)
        return self._data[key]

    def submit(self, task: Task) -> None:
        from ..config import load_config

        base = run_files = None
        try:
            if task.action == "resume":
                run_files = _run_files(task.run_dir)
                cfg = load_config(task.run_dir / "config.yaml")
            else:
                base = read_config_file(task.base)
                cfg = load_config(base, task.overrides)
            ref, source = self._arrays(cfg)
        except TrickrunError as err:  # e.g. this cell's data.dir holds no dataset: the cell fails
            self._failed.append(Outcome(task.key, None, task.run_dir, f"{type(err).__name__}: {err}", None))
            return
        future = self._remote.options(num_cpus=self.threads).remote(task, base, ref, source, cfg.data.dataset,
                                                                      run_files, self.threads)
        self._running[future] = task

    def wait(self, timeout: float = 0.2) -> list[Outcome]:
        if self._failed:
            failed, self._failed = self._failed, []
            return failed
        if not self._running:
            return []
        done, _ = self.ray.wait(list(self._running), num_returns=1, timeout=timeout)
        return [self._collect(future) for future in done]

    def _collect(self, future) -> Outcome:
        task = self._running.pop(future)
        try:
            result = self.ray.get(future)
        except self.ray.exceptions.TaskCancelledError:
            return Outcome(task.key, {"status": "interrupted"}, None, None, 130)
        except Exception as err:  # RayTaskError (the cell raised) or a lost worker, after the retry
            return Outcome(task.key, None, task.run_dir, f"{type(err).__name__}: {str(err)[-600:]}", None)
        run_dir = self._write(result)
        return Outcome(task.key, {**result["summary"], "run_dir": str(run_dir)}, run_dir, None, 0)

    def _write(self, result: dict[str, Any]) -> Path:
        """The returned run files into the runs folder, summary.json last."""
        path = self.root / result["dir_name"]
        path.mkdir(parents=True, exist_ok=True)
        files = result["files"]
        for name in sorted(files, key=lambda n: n == SUMMARY_FILE):
            write_atomic(path / name, files[name])
        for stale in set(_run_files(path)) - set(files):  # e.g. the checkpoint of a run that finished
            (path / stale).unlink()
        return path

    def interrupt(self) -> None:
        for future in list(self._running):
            self.ray.cancel(future)

    def drain(self, timeout: float = 120.0) -> list[Outcome]:
        outcomes = []
        while self._running:
            done, _ = self.ray.wait(list(self._running), num_returns=len(self._running), timeout=timeout)
            if not done:
                break
            outcomes += [self._collect(f) for f in done]
        return outcomes

    def close(self) -> None:
        self.drain(0)
