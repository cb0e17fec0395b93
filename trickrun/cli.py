"""The command line: thin Typer commands that parse options, call one function each, and turn
TrickrunError into its exit code with a one-line message on stderr (never a traceback)."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console

from . import __version__
from .errors import TrickrunError

app = typer.Typer(
    name="trickrun",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
err_console = Console(stderr=True, highlight=False)


def reports_errors(command: Callable) -> Callable:
    """Turn TrickrunError into `error: ...` on stderr and its exit code."""

    @functools.wraps(command)
    def run(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except TrickrunError as err:
            err_console.print(f"[bold red]error:[/] {err}", markup=True, soft_wrap=True)
            raise typer.Exit(err.exit_code) from None

    return run


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


RunsDirOption = Annotated[
    Optional[Path],
    typer.Option(
        "--runs-dir",
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


@app.command()
@reports_errors
def train(
    config: ConfigArg,
    set_: SetOption = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Run name (default: config's name, else the file name).")] = None,
    runs_dir: RunsDirOption = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides the config's seed).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Show only errors while training.")] = False,
    json_: Annotated[bool, typer.Option("--json", help="Print only summary.json plus run_dir, as JSON, on stdout.")] = False,
) -> None:
    """Train the MLP of CONFIG and write a new run directory.

    Example: trickrun train configs/baseline.yaml --set optimizer.lr=0.01 --set model.hidden=[512,256]
    """
    from .api import train as train_run
    from .runs import to_json

    progress = "quiet" if quiet else "auto"
    try:
        result = train_run(config, set_ or [], name=name, seed=seed, runs_dir=runs_dir, progress=progress)
    except KeyboardInterrupt:  # before the run directory existed: nothing to keep
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    summary = result.summary
    if json_:
        typer.echo(to_json({**summary, "run_dir": str(result.run_dir)}, indent=2))
    else:
        if not quiet:
            err_console.print(_result_line(summary))
        typer.echo(str(result.run_dir))
    if summary["status"] == "interrupted":
        raise typer.Exit(130)


def _result_line(summary: dict) -> str:
    test = summary.get("test") or {}
    acc = f"test acc {test['acc']:.4f}  loss {test['loss']:.4f}" if test else "no test evaluation"
    return (f"{summary['status']}: {summary['stop_reason']}; best epoch {summary['best_epoch']}; "
            f"{acc}; {summary['wall_s']:.1f}s")


@app.command()
@reports_errors
def validate(config: ConfigArg, set_: SetOption = None) -> None:
    """Check CONFIG (with any --set overrides) and print the resolved config, every default filled in.

    Example: trickrun validate configs/baseline.yaml --set optimizer.name=sgd
    """
    from .config import dump_yaml, load_config

    cfg = load_config(config, set_ or [])
    typer.echo(dump_yaml(cfg.to_dict()), nl=False)


# --- compare, ls, show (runs inspection) ----------------------------------------------


def main() -> None:
    app(prog_name="trickrun")
