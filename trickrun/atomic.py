"""Replacing a file all at once: readers see the old file or the new one, never a part; and
tidying the temporary files a writer killed outright left beside it."""

from __future__ import annotations

import glob as globlib
import os
import secrets
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

# Exclusive, never through a symlink, not inherited by child processes (as tempfile.mkstemp).
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
# Like open(path, "w"): the kernel takes the umask off, so the file ends up 0666 & ~umask.
# (tempfile.mkstemp would make it 0600, and the rename would keep that.)
_MODE = 0o666
# A temporary file or folder untouched this long was left by a process killed outright: a
# live writer touches its own far more often (a download at least every read timeout).
ABANDONED_AFTER_S = 3600.0
_TEMPORARY = ".{name}.{tag}.tmp"  # beside the file it will replace; hidden, and a name no one else uses


def remove_abandoned(path: Path) -> None:
    """Delete the temporary files of `path` that writers killed outright (kill -9) left beside
    it, once untouched for ABANDONED_AFTER_S: a younger one may be another process's."""
    for tmp in path.parent.glob(_TEMPORARY.format(name=globlib.escape(path.name), tag="*")):
        try:
            if time.time() - tmp.stat().st_mtime > ABANDONED_AFTER_S:
                tmp.unlink()
        except OSError:  # gone meanwhile, or not ours to delete: tidying is a courtesy
            pass


def remove_temporaries(folder: Path) -> None:
    """Delete every temporary file in `folder`, whatever its age: for a caller holding the
    folder's lock, so that no live writer can own one (a run whose writer was killed while it
    saved a checkpoint)."""
    for tmp in folder.glob(_TEMPORARY.format(name="*", tag="*")):
        try:
            tmp.unlink()
        except OSError:  # tidying is a courtesy
            pass


@contextmanager
def replacing(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """Yield (file, its path): a temporary file beside `path` to write into.

    When the block ends normally the file is flushed, fsynced and renamed over `path`; when
    it raises (a full disk, a failed checksum, Ctrl-C) the temporary file is deleted and
    `path` is left as it was. The file gets the mode any new file gets: 0666 minus the umask.
    """
    tmp: Path | None = None
    try:
        # Named before it is made: a Ctrl-C the moment it is made still finds it to delete.
        while True:
            tmp = path.parent / _TEMPORARY.format(name=path.name, tag=secrets.token_hex(4))
            try:
                fd = os.open(tmp, _CREATE_FLAGS, _MODE)
                break
            except FileExistsError:  # another writer's: never ours to delete
                tmp = None
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if tmp is not None:
            try:
                tmp.unlink(missing_ok=True)
            except OSError:  # the error being raised says what went wrong
                pass
        raise
