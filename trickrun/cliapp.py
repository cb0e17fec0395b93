"""The command line's shared parts: the Typer app every command registers on, the error
handling that turns TrickrunError into its exit code, the options several commands take, and
the consoles they print to."""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console

from .choices import OutputFormat
from .clihelp import Group
from .display import say
from .errors import ConfigError, TrickrunError
from .rundir.reader import Ambiguous, resolve_run
from .rundir.writer import runs_root
from .signals import stop_exit_code
from .stdout import STDOUT_ERRNOS, stdout_failed, stdout_to_devnull
from .version import __version__

# Heavy modules stay out of start-up: the training stack (.api) and matplotlib (.analysis.plots)
# are imported inside the commands that need them.

app = typer.Typer(
    name="trickrun",
    cls=Group,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain layout: see clihelp.py
    context_settings={"help_option_names": ["-h", "--help"]},
)
# Markup off: what is printed holds paths and names the user chose ("runs[old]", "p[/x].png");
# messages go through display.say, which styles their prefix (error:, warning:) without markup.
err_console = Console(stderr=True, highlight=False, markup=False)


def reports_errors(command: Callable) -> Callable:
    """Turn TrickrunError into `error: ...` on stderr and its exit code, and a Ctrl-C (or
    SIGTERM, SIGHUP) that the command does not take itself into `interrupted` and 128 + the
    signal (click would say "Aborted!" and exit 1)."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            result = command(*args, **kwargs)
            sys.stdout.flush()  # here, not at exit, so that a failing stdout is reported below
            return result
        except TrickrunError as err:
            _error(str(err))
            raise typer.Exit(err.exit_code) from None
        except KeyboardInterrupt as stop:  # Ctrl-C, or SIGTERM or SIGHUP (entry.py)
            err_console.print("interrupted")
            raise typer.Exit(stop_exit_code(stop)) from None
        except OSError as err:
            if err.errno not in STDOUT_ERRNOS:
                raise
            stdout_to_devnull()
            _error(stdout_failed(err))
            raise typer.Exit(1) from None

    return run


def _error(message: str) -> None:
    say(err_console, message, "error:", "bold red")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"trickrun {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: Annotated[
        Optional[bool],
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit."),
    ] = None,
) -> None:
    """Train a NumPy MLP on MNIST with the classic deep-learning tricks, and compare runs.

    Example: trickrun train configs/baseline.yaml --set optimizer.lr=0.01
    """


def _runs_dir(text: str) -> Path:
    """--runs-dir's value; an empty one would be the current folder, never what was meant."""
    if not text.strip():
        raise typer.BadParameter("is empty; give a folder, e.g. --runs-dir runs, or leave the option out")
    return Path(text)


RunsDirOption = Annotated[
    Optional[Path],
    typer.Option(
        "--runs-dir",
        parser=_runs_dir,
        metavar="PATH",
        help="Folder of run directories (default: $TRICKRUN_RUNS_DIR, else ./runs).",
        show_default=False,
    ),
]

# --- train and validate ----------------------------------------------------------------
ConfigArg = Annotated[Path, typer.Argument(help="YAML config file, e.g. configs/baseline.yaml.", show_default=False)]
SetOption = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", metavar="KEY=VALUE",
                 help="Override a config key (dotted, YAML value); repeatable: --set optimizer.lr=0.01"),
]


QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Show only errors while training.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print only summary.json plus run_dir, as JSON, on stdout.")]


# --- reports -----------------------------------------------------------------------------
PIPED_WIDTH = 200  # columns of report tables when stdout is not a terminal

FormatOption = Annotated[
    OutputFormat,
    typer.Option(
        "--format",
        "-f",
        help="table (terminal), markdown (for a README), csv or json (one record per row, for scripts).",
        case_sensitive=False,
    ),
]
PlotOption = Annotated[
    Optional[Path],
    typer.Option(
        "--plot",
        help="Also write a PNG figure: training and validation loss on one panel and accuracy on another, "
        "the learning rate, and per-layer gradient norms.",
        show_default=False,
        dir_okay=False,
    ),
]


def _stdout() -> Console:
    """stdout for reports: the terminal's width, or a wide page when piped (rich would
    otherwise squeeze tables into 80 columns); $COLUMNS wins over both."""
    console = Console(highlight=False, soft_wrap=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console = Console(highlight=False, soft_wrap=False, width=PIPED_WIDTH)
    return console


def _warn(messages) -> None:
    for message in messages:
        say(err_console, str(message), "warning:", "yellow")


def _note(message: str) -> None:
    say(err_console, message, "note:")


def _one_run(spec: str, runs_dir: Path | None, command: str) -> Path:
    """The single run directory `spec` names (a path, a name or prefix: its newest run, NAME~K)."""
    paths = resolve_run(spec, runs_root(runs_dir), ambiguous=Ambiguous.NEWEST, note=_note)
    if len(paths) != 1:
        raise ConfigError(f"{spec!r} matches {len(paths)} runs; {command} takes one")
    return paths[0]



SweepOption = Annotated[
    Optional[str],
    typer.Option("--sweep", metavar="NAME", show_default=False,
                 help="Add every run of the sweep NAME (its sweep.json under the runs folder)."),
]


def _with_sweep(runs: list[str] | None, sweep: str | None, runs_dir: Path | None) -> list[str]:
    """The RUN arguments, plus the run directories of `--sweep NAME`; at least one run.
    The sweep's runs are those still in the runs folder, with a warning saying how many its
    record lists that are gone (`rm` of some of them); none left is a ConfigError. (rm reads
    a sweep's runs itself, under the sweep's lock.)"""
    specs = list(runs or [])
    if sweep is not None:
        from .sweep.command import sweep_run_dirs

        listed = sweep_run_dirs(sweep, runs_dir)
        present = [p for p in listed if os.path.isdir(p)]
        if len(present) < len(listed):
            _sweep_runs_gone(sweep, len(listed), len(present), runs_root(runs_dir))
        specs += [str(p) for p in present]
    elif not specs:
        raise ConfigError("give at least one RUN, or --sweep NAME")
    return specs


def _sweep_runs_gone(sweep: str, listed: int, present: int, root: Path) -> None:
    """Warn that `listed - present` runs of the sweep's record are gone; none left is an error."""
    if not present:
        raise ConfigError(f"every run the record of sweep {sweep} lists ({listed}) is gone from {root} (removed, "
                          f"e.g. by trickrun rm): nothing to take; trickrun rm --sweep {sweep} removes the record")
    gone = listed - present
    _warn([f"{gone} of the {listed} runs the record of sweep {sweep} lists {'is' if gone == 1 else 'are'} gone "
           f"from {root} (removed, e.g. by trickrun rm); using the {present} still there"])
