"""One process at a time trains a run directory: it holds an exclusive flock on the run's
lock file (format.LOCK_FILE) from the moment the directory is created or resumed until the
run ends. The OS drops the lock when the process dies, however it dies, so the lock also
tells a run that is training from one whose process is gone, where a pid cannot (pids are
reused).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import stat
import time
from pathlib import Path
from typing import Callable

from ..errors import ConfigError, RunDirError
from .format import LOCK_FILE

# A reader's probe holds a shared lock for microseconds; a few short retries keep it from
# being taken for a training process.
_TRIES, _PAUSE_S = 10, 0.02
# Filesystems that cannot lock (some network mounts) say so with one of these.
_NO_LOCKING = (errno.ENOLCK, errno.EOPNOTSUPP, errno.ENOSYS, errno.EINVAL)
# Readers only ask: never through a link, and never waiting on a .lock that is a pipe.
_READ_ONLY = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK


def _holder(fd: int) -> str:
    """Who the lock file says holds it: "pid 123 on host x", or a vaguer phrase."""
    try:
        data = json.loads(os.pread(fd, 4096, 0) or b"null")
        return f"pid {int(data['pid'])} on host {data['host']}"
    except (OSError, ValueError, TypeError, KeyError):  # written a moment after locking
        return "another process"


def _write_holder(fd: int) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps({"pid": os.getpid(), "host": socket.gethostname()}) + "\n").encode(), 0)


class RunLock:
    """The exclusive lock of one run directory, held by this process until `release()`."""

    def __init__(self, path: Path, fd: int | None, created: bool):
        self.path = path
        self._fd = fd
        # The lock file did not exist before: the run was last written by a trickrun that
        # did not lock, so only its pid can tell whether it still trains.
        self.created = created

    @classmethod
    def acquire(cls, run_dir: Path, busy: Callable[[str], str] | None = None) -> "RunLock":
        """Lock `run_dir` for this process; ConfigError naming the holder if another has it
        (`busy(holder)`: the message for a folder that is not a run, e.g. a sweep's)."""
        path = run_dir / LOCK_FILE
        created = not path.exists()
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o666)
        except OSError as err:
            if err.errno == errno.ELOOP:  # the holder is written into it: never through a link
                raise ConfigError(f"{path} is a symbolic link, which trickrun does not write through; "
                                  f"remove it (rm {path}) and run the command again") from None
            raise RunDirError(f"cannot open the lock file {path}: {err.strerror or err}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):  # a pipe or a device: no holder can be written into it
            os.close(fd)
            raise ConfigError(f"{path} is not a regular file (a pipe or a device), which trickrun does not use as "
                              f"a lock; remove it (rm {path}) and run the command again")
        for attempt in range(_TRIES):
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if attempt == _TRIES - 1:
                    holder = _holder(fd)
                    os.close(fd)
                    raise ConfigError(busy(holder) if busy else f"{run_dir} is being trained by {holder}; "
                                      f"wait for it to end or stop that process first") from None
                time.sleep(_PAUSE_S)
            except OSError as err:
                if err.errno not in _NO_LOCKING:
                    os.close(fd)
                    raise RunDirError(f"cannot lock {path}: {err.strerror or err}") from None
                return cls(path, fd, created)  # cannot lock here: train unprotected, as before
        _write_holder(fd)
        return cls(path, fd, created)

    @classmethod
    def adopt(cls, run_dir: Path, fd: int) -> "RunLock":
        """The lock a parent process took and passed to this one as the open file `fd` (an
        flock belongs to the open file, so it is held without a moment's gap); the lock file
        then names this process."""
        _write_holder(fd)
        return cls(run_dir / LOCK_FILE, fd, False)

    def fileno(self) -> int:
        """The locked open file, to pass to a child process that takes the lock over."""
        if self._fd is None:
            raise ValueError("the lock was released")
        return self._fd

    def release(self) -> None:
        """Let go of the lock (closing the file drops it); safe to call twice."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def holder(run_dir: Path) -> str:
    """Who the lock file of `run_dir` names (as a busy message gives it), read-only."""
    try:
        fd = os.open(run_dir / LOCK_FILE, _READ_ONLY)
    except OSError:
        return "another process"
    try:
        return _holder(fd)
    finally:
        os.close(fd)


def is_locked(run_dir: Path) -> bool | None:
    """Whether a process holds `run_dir`'s lock, i.e. trains it now. None when the run has no
    lock file (written by a trickrun from before the lock) or locks cannot be tried here."""
    try:
        fd = os.open(run_dir / LOCK_FILE, _READ_ONLY)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return None
    finally:
        os.close(fd)  # also drops the shared lock just taken
    return False
