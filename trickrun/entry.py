"""The `trickrun` command's entry point, kept free of heavy imports: from its first instant a
stop signal (Ctrl-C, SIGTERM, SIGHUP) ends the command in order (exit 128 + the signal, no
traceback, no temporary file left), even while the command line's modules are still loading,
and a closed stdout or stderr is a sink, not a crash."""

from __future__ import annotations

import io
import os
import signal
import sys

from .signals import raise_stop, stop_exit_code
from .stdout import STDOUT_ERRNOS, stdout_failed, stdout_to_devnull


def take_ctrl_c() -> None:
    """Let SIGINT raise KeyboardInterrupt even when this process inherited it ignored (a job a
    script started in the background): `kill -INT` is a stop, as the training loop and the
    sweep driver take it once they run."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def take_stop_signals() -> None:
    """SIGTERM (a scheduler, `kill`) and SIGHUP (a closed terminal) stop any command as Ctrl-C
    does, instead of killing it where it stands: a file being replaced keeps its old content and
    loses its temporary, a run directory being made is not left half-made. One inherited ignored
    (nohup) stays ignored."""
    for name in ("SIGTERM", "SIGHUP"):
        signum = getattr(signal, name, None)
        if signum is not None and signal.getsignal(signum) is not signal.SIG_IGN:
            signal.signal(signum, raise_stop)


def give_closed_streams_a_sink() -> None:
    """A command started with stdout or stderr closed (`>&-`) gets os.devnull there, so that
    it still does its work (a training, a sweep) instead of failing on its first print; what
    it would have printed on a closed stdout is said to be lost, on stderr if it is open."""
    if sys.stderr is None:
        sys.stderr = open(os.devnull, "w", encoding="utf-8")
    if sys.stdout is None:
        sys.stdout = open(os.devnull, "w", encoding="utf-8")
        print("note: stdout is closed: what this command prints there is lost", file=sys.stderr)


def whole_writes_on_stdout() -> None:
    """Under PYTHONUNBUFFERED (python -u, common in containers and CI) stdout writes straight to
    its file descriptor, and a write cut short (a disk filling up, a reader gone mid-table) loses
    the rest without an error: a truncated table and exit 0. A buffer in between writes all of
    it or raises, as without -u; lines still go out as they are printed."""
    stream = sys.stdout
    if not isinstance(getattr(stream, "buffer", None), io.RawIOBase):
        return
    try:
        raw = io.FileIO(stream.fileno(), "w", closefd=False)
    except (OSError, ValueError):
        return
    sys.stdout = io.TextIOWrapper(io.BufferedWriter(raw), encoding=stream.encoding, errors=stream.errors,
                                  line_buffering=True)


def main() -> None:
    take_ctrl_c()
    take_stop_signals()
    give_closed_streams_a_sink()
    whole_writes_on_stdout()
    try:
        from .cli import main as run_command

        run_command()
    except KeyboardInterrupt as stop:  # while loading or parsing: the commands handle their own
        print("interrupted", file=sys.stderr)
        sys.exit(stop_exit_code(stop))
    except OSError as err:  # --help or --version on a full stdout: the commands handle their own
        if err.errno not in STDOUT_ERRNOS:
            raise
        stdout_to_devnull()
        print(f"error: {stdout_failed(err)}", file=sys.stderr)
        sys.exit(1)
