"""When stdout stops taking output (a full disk, /dev/full): point it at /dev/null, so the
bytes still buffered do not fail again, with a traceback, when Python exits. (A reader that
closed the pipe, `trickrun ls | head`, is click's to handle: exit 1, silently.)"""

from __future__ import annotations

import errno
import os
import sys

# An OSError with one of these, raised while a command prints, is stdout failing.
STDOUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EIO})


# An OSError with one of these, raised while a live display writes to stderr, is stderr gone:
# the terminal closed, or the reader of its pipe ended.
STDERR_ERRNOS = STDOUT_ERRNOS | {errno.EPIPE}


def stdout_to_devnull() -> None:
    stream_to_devnull(sys.stdout)


def stdout_failed(err: OSError) -> str:
    """What a command says (after `error:`) when stdout stopped taking its output, once it has
    pointed stdout at os.devnull."""
    return (f"cannot write to stdout: {err.strerror}; the output is incomplete. Free some space, "
            "or send it elsewhere")


def stream_to_devnull(stream) -> None:
    """Point `stream`'s file descriptor at os.devnull, so that what it still holds, and all
    that is written to it later, goes nowhere instead of failing again."""
    try:
        target = stream.fileno()
    except (OSError, ValueError):  # no file descriptor (a test's captured stdout): nothing buffered to fail
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    try:
        os.dup2(devnull, target)
    except OSError:
        pass
    finally:
        os.close(devnull)  # fd `target` now refers to /dev/null; this second descriptor is not needed
