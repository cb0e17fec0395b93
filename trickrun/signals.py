"""Stop signals (Ctrl-C, SIGTERM from a scheduler, SIGHUP from a closed terminal) turned into
an orderly end: the training loop and the sweep driver both stop through `SignalStop`."""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Iterator

# Signals that stop a run as Ctrl-C does (schedulers send SIGTERM, closing a terminal SIGHUP).
STOP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGINT", "SIGTERM", "SIGHUP") if hasattr(signal, name))


class StopSignal(KeyboardInterrupt):
    """A stop signal arrived while training; the loop ends the run as it does for Ctrl-C."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class _Compiles:
    """numba compiles under way in the main thread (they nest: a kernel compiles the functions
    it calls) and a stop signal that arrived during one. Raised there, the exception lands in
    one of LLVM's callbacks, which swallows it ("Exception ignored") and leaves the compile
    half-done: numba then fails with a traceback of its own. So the signal waits for the end
    of the outermost compile (the kernels' listener calls compile_started/compile_ended)."""

    depth = 0
    pending: int | None = None


def compile_started() -> None:
    if threading.current_thread() is threading.main_thread():
        _Compiles.depth += 1


def compile_ended() -> None:
    """Raises the stop signal that waited for the compiles, once the last of them ends (its
    kernel is then compiled for this process, though not saved to the disk cache)."""
    if threading.current_thread() is not threading.main_thread() or not _Compiles.depth:
        return
    _Compiles.depth -= 1
    if not _Compiles.depth and _Compiles.pending is not None:
        signum, _Compiles.pending = _Compiles.pending, None
        raise StopSignal(signum)


def _waits_for_compile(signum: int) -> bool:
    """Whether a stop signal arriving now waits for a compile's end (and is kept for it)."""
    if _Compiles.depth:
        _Compiles.pending = signum
        return True
    return False


def raise_stop(signum: int, frame) -> None:
    """A handler for the whole command (entry.py): a stop signal raises StopSignal wherever the
    command is, so that it ends as Ctrl-C ends it (temporary files deleted, no half-made run),
    except inside a numba compile, whose end it waits for."""
    if not _waits_for_compile(signum):
        raise StopSignal(signum)


def stop_exit_code(stop: KeyboardInterrupt) -> int:
    """128 + the signal behind `stop`, as a shell reports a process it killed: 130 for Ctrl-C
    (a plain KeyboardInterrupt), 143 for SIGTERM, 129 for SIGHUP."""
    return 128 + getattr(stop, "signum", signal.SIGINT)


def signal_label(signum: int) -> str:
    return "Ctrl-C" if signum == signal.SIGINT else signal.Signals(signum).name


class SignalStop:
    """While `installed()`, STOP_SIGNALS raise StopSignal, which the loop takes as Ctrl-C, instead
    of killing the process with the summary still "running". Inside `held()` a signal waits for
    the end of the outermost such block, so that an epoch's record, its checkpoint and its
    progress line come out together.
    Handlers can only be set in the main thread; elsewhere the signals keep theirs."""

    def __init__(self) -> None:
        self._holding = 0  # how many held() blocks are open: they nest
        self._pending: int | None = None

    def _handle(self, signum: int, frame) -> None:
        if self._holding:
            self._pending = signum
        elif not _waits_for_compile(signum):
            raise StopSignal(signum)

    @contextmanager
    def installed(self) -> Iterator[None]:
        """A signal this process inherited ignored stays ignored: `nohup trickrun train ...` goes on
        when its terminal closes (SIGHUP). (The command line takes an ignored SIGINT back: entry.py.)"""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = {s: signal.getsignal(s) for s in STOP_SIGNALS}
        previous = {s: handler for s, handler in previous.items() if handler is not signal.SIG_IGN}
        for s in previous:
            signal.signal(s, self._handle)
        try:
            yield
        finally:
            for s, handler in previous.items():
                signal.signal(s, signal.SIG_DFL if handler is None else handler)

    def hold_to_the_end(self) -> None:
        """From now on a signal only waits, and is never raised: for a run whose ending is
        decided (the ending says whether a signal stopped it), so that its test result, model.npz
        and summary are written whole however often Ctrl-C is pressed meanwhile."""
        self._holding += 1

    @contextmanager
    def held(self) -> Iterator[None]:
        self._holding += 1
        try:
            yield
        finally:
            self._holding -= 1
        if not self._holding and self._pending is not None:
            signum, self._pending = self._pending, None
            raise StopSignal(signum)
