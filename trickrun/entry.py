"""The `trickrun` command's entry point, kept free of heavy imports: from its first instant a
stop signal ends the command as Ctrl-C does (exit 130, no traceback), even while the
command line's modules are still loading."""

from __future__ import annotations

import signal
import sys


def take_ctrl_c() -> None:
    """Let SIGINT raise KeyboardInterrupt even when this process inherited it ignored (a job a
    script started in the background): `kill -INT` is a stop, as the training loop and the
    sweep driver take it once they run."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


def main() -> None:
    take_ctrl_c()
    try:
        from .cli import main as run_command

        run_command()
    except KeyboardInterrupt:  # while loading or parsing: the commands handle their own
        print("interrupted", file=sys.stderr)
        sys.exit(130)
