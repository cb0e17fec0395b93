"""Replacing a file all at once: readers see the old file or the new one, never a part."""

from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Iterator


@contextmanager
def replacing(path: Path) -> Iterator[tuple[BinaryIO, Path]]:
    """Yield (file, its path): a temporary file beside `path` to write into.

    When the block ends normally the file is flushed, fsynced and renamed over `path`; when
    it raises (a full disk, a failed checksum, Ctrl-C) the temporary file is deleted and
    `path` is left as it was.
    """
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f, tmp
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
