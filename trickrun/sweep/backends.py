"""The backends by name (`--backend`), and a backend started only when a cell needs it."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from ..errors import ConfigError
from .backend import Backend, CellEnd, CellJob


def _local(jobs: int, log_file: Path, address: str | None) -> Backend:
    from .local import LocalBackend

    return LocalBackend(jobs)


def _ray(jobs: int, log_file: Path, address: str | None) -> Backend:
    from .ray_backend import RayBackend  # the optional extra: imported only when asked for

    return RayBackend(address, jobs, log_file)


BACKENDS: dict[str, Callable[[int, Path, str | None], Backend]] = {"local": _local, "ray": _ray}
TAKES_ADDRESS = frozenset({"ray"})


def check_backend(name: str, address: str | None) -> None:
    """The backend options' mistakes, found before anything is planned or started."""
    if name not in BACKENDS:
        raise ConfigError(f"--backend {name[:40]!r}: choose one of: {', '.join(BACKENDS)}")
    if address is not None and name not in TAKES_ADDRESS:
        raise ConfigError(f"--address goes with --backend {' or '.join(sorted(TAKES_ADDRESS))}")


class LazyBackend:
    """A backend started when the first cell is submitted: a sweep whose cells are all done
    starts nothing (no Ray start-up)."""

    def __init__(self, name: str, jobs: int, log_file: Path, address: str | None = None):
        """`log_file`: where a backend puts what its machinery prints (Ray's messages)."""
        check_backend(name, address)
        self.slots = jobs
        self._make = lambda: BACKENDS[name](jobs, log_file, address)
        self._backend: Backend | None = None

    @property
    def running(self) -> int:
        return self._backend.running if self._backend else 0

    def start(self) -> None:
        """Start the backend now, so that its errors (no Ray, no cluster) come before any
        cell's run directory is made."""
        if self._backend is None:
            self._backend = self._make()

    def submit(self, job: CellJob) -> None:
        self.start()
        self._backend.submit(job)

    def poll(self, timeout: float) -> list[CellEnd]:
        return self._backend.poll(timeout) if self._backend else []

    def stop(self, signum: int) -> None:
        if self._backend:
            self._backend.stop(signum)

    def kill(self) -> None:
        if self._backend:
            self._backend.kill()

    def close(self) -> None:
        if self._backend:
            self._backend.close()
