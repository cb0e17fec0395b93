"""Cells on a Ray cluster: each a Ray task that trains a copy of its run directory in a
scratch folder of its worker (worker.train_copy).

Workers need not share a file system with the driver. The driver verifies each dataset the
cells use once, on its own machine, and puts the arrays in Ray's object store. It holds the
lock of every run directory it handed to Ray until the task ends, then writes the returned
files into that directory, summary.json last, so a reader never sees a finished summary
beside missing files. A task whose worker dies is retried once by Ray, then recorded as
failed. A cell stopped by Ctrl-C loses its scratch copy; its run directory still says
"running" with no process holding it (stale), and the next run of the sweep resumes it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, TrickrunError
from ..rundir.format import SUMMARY_FILE
from ..rundir.writer import write_atomic
from .backend import CellEnd, CellJob
from .local import threads_per_job
from .worker import _files, train_copy

INSTALL_HINT = "pip install 'trickrun[ray]'"
CONNECT_TIMEOUT_S = 10.0  # an address that does not answer in this long is an error, not a hang
ERROR_TAIL = 600


def _import_ray():
    try:
        import ray
    except ImportError as err:
        raise ConfigError(f"--backend ray needs the ray extra ({INSTALL_HINT}); importing it failed: "
                          f"{str(err)[:200]}") from None
    except Exception as err:  # a broken install raises anything at import
        raise ConfigError(f"--backend ray: the installed ray cannot be imported ({type(err).__name__}: "
                          f"{str(err)[:200]}); reinstall it: {INSTALL_HINT}") from None
    return ray


def _host_port(address: str) -> tuple[str, int]:
    """`HOST:PORT` or `ray://HOST:PORT` -> (host, port); ConfigError for anything else."""
    parts = urlsplit(address if "://" in address else f"//{address}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if parts.scheme not in ("", "ray") or not parts.hostname or port is None:
        raise ConfigError(f"--address {address[:80]!r}: expected HOST:PORT (a Ray head node, e.g. 127.0.0.1:6379), "
                          f"ray://HOST:PORT (Ray client) or auto (a cluster started on this machine)")
    return parts.hostname, port


def check_reachable(address: str) -> None:
    """Fail in CONNECT_TIMEOUT_S, with the fix, where ray.init would wait much longer."""
    host, port = _host_port(address)
    try:
        socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as err:
        raise ConfigError(f"--address {address}: cannot reach a Ray cluster there ({err.strerror or err}); "
                          f"start one with `ray start --head` or check the address") from None


# Waits for the sweep process to end (its stdin closes, however the sweep ended, kill -9
# included), then kills every process of the local Ray whose command line names the Ray
# folder, and removes the folder: a local Ray started by trickrun dies with the sweep.
_WATCHDOG = """\
import os, shutil, signal, sys
folder = sys.argv[1].encode()
sys.stdin.buffer.read()
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            mine = folder in f.read() and int(pid) != os.getpid()
        if mine:
            os.kill(int(pid), signal.SIGKILL)
    except OSError:
        pass
shutil.rmtree(sys.argv[1], ignore_errors=True)
"""


def start_watchdog(folder: str) -> subprocess.Popen | None:
    """The process that ends a local Ray when the sweep ends (Linux: it reads /proc)."""
    if not os.path.isdir("/proc"):
        return None
    return subprocess.Popen([sys.executable, "-c", _WATCHDOG, folder], stdin=subprocess.PIPE,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)


def connect(ray, address: str | None, **extra: Any) -> None:
    """ray.init for a local Ray (address None) or an existing cluster, its errors as trickrun's."""
    if ray.is_initialized():
        return
    kwargs: dict[str, Any] = {"num_cpus": os.cpu_count()} if address is None else {}
    if address not in (None, "auto"):
        check_reachable(address)
    if address is not None and address.startswith("ray://"):
        try:
            import ray.util.client  # noqa: F401  (the client extra)
            import grpc  # noqa: F401
        except ImportError:
            raise ConfigError(f"--address {address}: a ray:// address needs Ray's client: "
                              f"pip install 'ray[client]'") from None
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 configure_logging=False, **kwargs, **extra)
    except (ConnectionError, ValueError, RuntimeError, TimeoutError) as err:
        hint = ("no Ray cluster is running on this machine; start one with `ray start --head`, or leave out "
                "--address for a local Ray" if address == "auto" else "check the address and the cluster")
        raise ConfigError(f"--backend ray: cannot connect to {address or 'a local Ray'} "
                          f"({type(err).__name__}: {str(err)[:200]}); {hint}") from None


class RayBackend:
    """The same protocol as LocalBackend (backend.Backend), on Ray."""

    def __init__(self, address: str | None, jobs: int):
        self.ray = _import_ray()
        self.slots = jobs
        self.threads = threads_per_job(jobs) if address is None else 1
        self._local = address is None and not self.ray.is_initialized()
        self._watchdog = None
        if self._local:  # Ray's files in a folder of this sweep's, and a watchdog that ends it all
            folder = tempfile.mkdtemp(prefix="trickrun-ray-")
            self._watchdog = start_watchdog(folder)
            connect(self.ray, None, _temp_dir=folder)
        else:
            connect(self.ray, address)
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
            job.run_dir.name, _files(job.run_dir), job.fresh, ref, source, job.config.data.dataset, self.threads)
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
        self.kill()
        for future in list(self._running):
            self._collect(future)
        if self._local:
            self.ray.shutdown()
        if self._watchdog is not None:
            self._watchdog.communicate()  # closes its stdin: it ends what is left, then itself


def _write_files(path: Path, files: dict[str, bytes]) -> None:
    """The returned run files into the run directory, summary.json last."""
    for name in sorted(files, key=lambda n: n == SUMMARY_FILE):
        write_atomic(path / name, files[name])
    for stale in set(_files(path)) - set(files):  # e.g. the checkpoint of a run that finished
        (path / stale).unlink()
