"""Reaching Ray: the sweep's own local cluster, secured and cleaned up, or an existing one.

A local cluster that trickrun starts (no `--address`) always requires a token: a fresh random
one per cluster (`secrets`), written with mode 0600 into a private folder (mode 0700) that
also holds every file Ray writes for the cluster, and handed to the cluster's processes
through the environment (RAY_AUTH_MODE=token, RAY_AUTH_TOKEN_PATH) and to nothing else. A
watchdog process waits for the sweep process to end, however it ends (kill -9 included),
then kills every process whose command line names the folder and removes the folder (after
a failure it keeps Ray's logs there, without the token, and the error says where).

While Ray runs, file descriptor 1 points at the sweep's backend.log: Ray's own messages (its
processes inherit the descriptor) never mix with trickrun's output on stdout, which is printed
once Ray is done; one line on stderr then says whether Ray printed anything, and where.

The local cluster's start and shutdown are never cut short by a stop signal: Ray interrupted
half-way through either leaves its core worker half made or half torn down, and the process
then exits 1 or crashes at its end (a second Ctrl-C lands there easily), leaving Ray's
processes behind. A stop that arrives meanwhile is raised as soon as Ray is done.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import ConfigError, RunDirError
from ..signals import SignalStop

INSTALL = "pip install --upgrade 'trickrun[ray]'"
# The first Ray that authenticates a local cluster by default (ray.init turns token mode on):
# checked in the 2.58.1 and 2.59.0 wheels. trickrun turns it on itself, but an older Ray may
# not honour the switch.
RAY_FLOOR = (2, 59)
CONNECT_TIMEOUT_S = 10.0  # an address that does not answer in this long is an error, not a hang
TOKEN_FILE = "auth_token"
FOLDER_PREFIX = "trickrun-"
# Ray's unix sockets live about 70 characters deep in its folder, and a socket's path may not
# exceed 107 bytes: a temporary folder with a longer path than this is not used.
SHORT_BASE = 24
# Ray gives a single-machine cluster its node a loopback address only when it is told that
# this is no multi-machine cluster (it is read at import, hence set before Ray is imported).
LOOPBACK_SWITCH = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
ENVIRONMENT = ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN_PATH", "RAY_AUTH_TOKEN", LOOPBACK_SWITCH)

_WATCHDOG = """\
import os, shutil, signal, sys
folder = sys.argv[1]
keep = sys.stdin.buffer.read() == b"keep"
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            ray_of_ours = folder.encode() in f.read() and int(pid) != os.getpid()
        if ray_of_ours:
            os.kill(int(pid), signal.SIGKILL)
    except OSError:
        pass
if keep:
    try:
        os.unlink(os.path.join(folder, sys.argv[2]))
    except OSError:
        pass
else:
    shutil.rmtree(folder, ignore_errors=True)
"""


def _version(text: str) -> tuple[int, ...]:
    parts = []
    for part in text.split(".")[:3]:
        digits = "".join(c for c in part if c.isdigit()) or "0"
        parts.append(int(digits))
    return tuple(parts)


def check_ray_version() -> None:
    """ConfigError (exit 2) with the fix unless a Ray of at least RAY_FLOOR is installed; it
    reads the installed version without importing Ray."""
    try:
        found = metadata.version("ray")
    except metadata.PackageNotFoundError:
        raise ConfigError(f"--backend ray needs the ray extra: {INSTALL}") from None
    if _version(found) < RAY_FLOOR:
        needed = ".".join(map(str, RAY_FLOOR))
        raise ConfigError(f"--backend ray: ray {found} is installed; trickrun needs ray >= {needed} (it secures "
                          f"its local cluster with a token): {INSTALL}") from None


def ray_running() -> bool:
    """Whether this process is already connected to a Ray (a notebook's, a benchmark's)."""
    ray = sys.modules.get("ray")
    return bool(ray is not None and getattr(ray, "is_initialized", lambda: False)())


def import_ray():
    """`ray`, importable; else ConfigError (exit 2) with the fix."""
    try:
        import ray
    except ImportError as err:
        raise ConfigError(f"--backend ray needs the ray extra ({INSTALL}); importing it failed: "
                          f"{str(err)[:200]}") from None
    except Exception as err:  # a broken install raises anything at import
        raise ConfigError(f"--backend ray: the installed ray cannot be imported ({type(err).__name__}: "
                          f"{str(err)[:200]}); reinstall it: {INSTALL}") from None
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


def _init(ray, address: str | None, **kwargs: Any) -> None:
    # ray.init replaces the SIGTERM handler with sys.exit: the sweep's own, which stops the
    # cells and exits 143, is put back.
    sigterm = signal.getsignal(signal.SIGTERM)
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=False, logging_level="ERROR",
                 configure_logging=False, **kwargs)
    except (ConnectionError, OSError, ValueError, RuntimeError, TimeoutError) as err:
        why = f"{type(err).__name__}: {str(err)[:200]}"
        if address is None:  # LocalCluster.start adds where Ray's logs are kept
            raise ConfigError(f"--backend ray: cannot start a local Ray ({why})") from None
        hint = ("no Ray cluster is running on this machine; start one with `ray start --head`, or leave out "
                "--address for a local Ray" if address == "auto" else "check the address and the cluster")
        raise ConfigError(f"--backend ray: cannot connect to {address} ({why}); {hint}") from None
    finally:
        if sigterm is not None and threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, sigterm)


@contextmanager
def _whole():
    """A stop signal (Ctrl-C, SIGTERM, SIGHUP) inside waits for the block's end, then is raised."""
    stops = SignalStop()
    with stops.installed(), stops.held():
        yield


def connect(ray, address: str) -> None:
    """Join an existing cluster (`--address`): its security is its owner's (see the README)."""
    if address != "auto":
        check_reachable(address)
    if address.startswith("ray://"):
        try:
            import grpc  # noqa: F401  (Ray's client extra)
        except ImportError:
            raise ConfigError(f"--address {address}: a ray:// address needs Ray's client: "
                              f"pip install 'ray[client]'") from None
    _init(ray, address)


class StdoutToLog:
    """File descriptor 1 points at the end of `log_file` until `restore()`; then, if anything
    was written there, one line on stderr says where."""

    def __init__(self, log_file: Path):
        self.log_file = log_file
        sys.stdout.flush()
        try:
            self._start = log_file.stat().st_size if log_file.exists() else 0
            fd = os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            try:
                self._saved = os.dup(1)
                os.dup2(fd, 1)
            finally:
                os.close(fd)
        except OSError as err:
            raise RunDirError(f"--backend ray: cannot open {log_file} for Ray's messages: "
                              f"{err.strerror or err}") from None

    def restore(self) -> None:
        if self._saved is None:
            return
        sys.stdout.flush()
        os.dup2(self._saved, 1)
        os.close(self._saved)
        self._saved = None
        written = self.log_file.stat().st_size - self._start
        if written > 0:
            print(f"Ray printed {written} bytes of messages: see {self.log_file}", file=sys.stderr)


class LocalCluster:
    """A local Ray of this sweep's own, reachable only with its token; see the module docstring.
    `folder` (mode 0700) holds the token and, in `ray/`, Ray's files (Ray makes its own folder
    world-writable; the private parent keeps everyone else out of it)."""

    def __init__(self) -> None:
        base = tempfile.gettempdir()
        if len(base) > SHORT_BASE and os.path.isdir("/tmp"):  # Ray's socket paths must stay short
            base = "/tmp"
        self.folder = Path(tempfile.mkdtemp(prefix=FOLDER_PREFIX, dir=base))  # mode 0700
        self.token_file = self.folder / TOKEN_FILE
        self.ray_folder = self.folder / "r"
        fd = os.open(self.token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
        self._watchdog = None
        self._stopped = False
        if os.path.isdir("/proc"):  # Linux: the watchdog reads /proc
            self._watchdog = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, str(self.folder), TOKEN_FILE], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        self._env = {name: os.environ.get(name) for name in ENVIRONMENT}
        os.environ.pop("RAY_AUTH_TOKEN", None)
        os.environ.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(self.token_file),
                          **{LOOPBACK_SWITCH: "0"})

    def start(self, ray) -> None:
        """ray.init of a new local cluster: token mode on, the token from our file, every
        file of Ray's in our folder, the node's address the loopback one. (The environment
        was set in __init__, before Ray was imported: Ray reads some of it at import.)"""
        try:
            from ray._private import ray_constants
            from ray._raylet import Config

            ray_constants.ENABLE_RAY_CLUSTER = False  # when Ray was imported before us
            Config.initialize("")  # Ray caches its config: read the variables again
        except (ImportError, AttributeError):
            pass
        try:
            with _whole():
                _init(ray, None, num_cpus=os.cpu_count(), _temp_dir=str(self.ray_folder),
                      _node_ip_address="127.0.0.1")
        except ConfigError as err:
            self.stop(ray, keep=True)
            raise ConfigError(f"{err}; Ray's logs, which may say why, are kept in {self.folder}") from None

    def stop(self, ray, keep: bool = False) -> None:  # ray: None if it could not be imported
        """Shut the cluster down and let the watchdog clear up (keeping the logs if `keep`).
        Only the first call acts: a failed start keeps the logs, and the caller's clean-up
        after that failure must not remove them."""
        if self._stopped:
            return
        self._stopped = True
        with _whole():
            if ray is not None and ray.is_initialized():
                ray.shutdown()
            for name, value in self._env.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value
            if self._watchdog is not None:
                self._watchdog.communicate(b"keep" if keep else b"")
                self._watchdog = None
            elif not keep:
                import shutil

                shutil.rmtree(self.folder, ignore_errors=True)
            else:
                self.token_file.unlink(missing_ok=True)
