"""Replacing a file all at once: readers see the old file or the new one, never a part."""

from __future__ import annotations

import os
import secrets
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator

# Exclusive, never through a symlink, not inherited by child processes (as tempfile.mkstemp).
_CREATE_FLAGS = (os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
                 | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
# Like open(path, "w"): the kernel takes the umask off, so the file ends up 0666 & ~umask.
# (tempfile.mkstemp would make it 0600, and the rename would keep that.)
_MODE = 0o666


def _create_temporary(path: Path) -> tuple[int, Path]:
    """A new, empty file beside `path` with a name no other writer uses."""
    while True:
        tmp = path.parent / f".{path.name}.{secrets.token_hex(4)}.tmp"
        try:
            return os.open(tmp, _CREATE_FLAGS, _MODE), tmp
        except FileExistsError:
            continue


@contextmanager
def replacing(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """Yield (file, its path): a temporary file beside `path` to write into.

    When the block ends normally the file is flushed, fsynced and renamed over `path`; when
    it raises (a full disk, a failed checksum, Ctrl-C) the temporary file is deleted and
    `path` is left as it was. The file gets the mode any new file gets: 0666 minus the umask.
    """
    fd, tmp = _create_temporary(path)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
