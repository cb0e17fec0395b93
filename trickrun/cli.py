"""The command line: thin Typer commands that parse options, call one function each, and turn
TrickrunError into its exit code with a one-line message on stderr (never a traceback)."""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from . import __version__
from .analysis.analyze import run_labels
from .analysis.compare import compare_report, load_compared
from .analysis.listing import SortKey, ls_output, sort_entries
from .analysis.render import OutputFormat, report_output, spark_width
from .analysis.show import show_output
from .config import dump_yaml, load_config
from .errors import ConfigError, TrickrunError
from .rundir.reader import load_run, resolve_run, scan_runs
from .rundir.writer import runs_root, to_json

# Heavy modules stay out of start-up: the training stack (.api) and matplotlib (.analysis.plots)
# are imported inside the commands that need them.

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
            err_console.print(f"[bold red]error:[/] {escape(str(err))}", markup=True, soft_wrap=True)
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


QuietOption = Annotated[bool, typer.Option("--quiet", "-q", help="Show only errors while training.")]
JsonOption = Annotated[bool, typer.Option("--json", help="Print only summary.json plus run_dir, as JSON, on stdout.")]


@app.command()
@reports_errors
def train(
    config: ConfigArg,
    set_: SetOption = None,
    name: Annotated[Optional[str], typer.Option("--name", help="Run name (default: config's name, else the file name).")] = None,
    runs_dir: RunsDirOption = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Random seed (overrides the config's seed).")] = None,
    quiet: QuietOption = False,
    json_: JsonOption = False,
) -> None:
    """Train the MLP of CONFIG and write a new run directory.

    Example: trickrun train configs/baseline.yaml --set optimizer.lr=0.01 --set model.hidden=[512,256]
    """
    from .api import train as train_run

    progress = "quiet" if quiet else "auto"
    try:
        result = train_run(config, set_ or [], name=name, seed=seed, runs_dir=runs_dir, progress=progress)
    except KeyboardInterrupt:  # before the run directory existed: nothing to keep
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    _print_result(result, quiet, json_)


def _print_result(result, quiet: bool, json_: bool) -> None:
    """The end of train and resume: the summary or run directory on stdout, exit 130 if interrupted."""
    summary = result.summary
    if json_:
        typer.echo(to_json({**summary, "run_dir": str(result.run_dir)}, indent=2))
    else:
        if not quiet:
            err_console.print(escape(_result_line(summary)), soft_wrap=True)
        typer.echo(str(result.run_dir))
    if summary["status"] == "interrupted":
        raise typer.Exit(130)


def _one_run(spec: str, runs_dir: Path | None, command: str) -> Path:
    """The single run directory `spec` names (a path, a name or a unique prefix)."""
    paths = resolve_run(spec, runs_root(runs_dir))
    if len(paths) != 1:
        raise ConfigError(f"{spec!r} matches {len(paths)} runs; {command} takes one")
    return paths[0]


def _result_line(summary: dict) -> str:
    test = summary.get("test") or {}
    acc = f"test acc {test['acc']:.4f}  loss {test['loss']:.4f}" if test else "no test evaluation"
    return (f"{summary['status']}: {summary['stop_reason']}; best epoch {summary['best_epoch']}; "
            f"{acc}; {summary['wall_s']:.1f}s")


@app.command()
@reports_errors
def resume(
    run: Annotated[str, typer.Argument(help="The run to continue: its directory, or its name or a unique prefix under the runs folder.", show_default=False)],
    runs_dir: RunsDirOption = None,
    quiet: QuietOption = False,
    json_: JsonOption = False,
) -> None:
    """Continue an interrupted run (or one whose process died) from its last checkpoint,
    appending to its metrics.

    Example: trickrun resume runs/baseline-20261127-151131
    """
    from .api import resume as resume_run

    path = _one_run(run, runs_dir, "resume")
    try:
        result = resume_run(path, progress="quiet" if quiet else "auto")
    except KeyboardInterrupt:
        err_console.print("interrupted")
        raise typer.Exit(130) from None
    _print_result(result, quiet, json_)


@app.command()
@reports_errors
def validate(config: ConfigArg, set_: SetOption = None) -> None:
    """Check CONFIG (with any --set overrides) and print the resolved config, every default filled in.

    Example: trickrun validate configs/baseline.yaml --set optimizer.name=sgd
    """
    cfg = load_config(config, set_ or [])
    typer.echo(dump_yaml(cfg.to_dict()), nl=False)


# --- compare, ls, show (runs inspection) ----------------------------------------------

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
        help="Also write a PNG figure of losses, accuracies, learning rate and per-layer gradient norms.",
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
        err_console.print(f"[yellow]warning:[/] {message}", markup=True, soft_wrap=True, highlight=False)


@app.command()
@reports_errors
def compare(
    runs: Annotated[
        list[str],
        typer.Argument(
            metavar="RUN...",
            help="Runs: a run directory, a run name or unique prefix under the runs folder, or a glob "
            "such as 'runs/adam-*'.",
            show_default=False,
        ),
    ],
    baseline: Annotated[
        Optional[str],
        typer.Option("--baseline", "-b", help="The run changes are measured against (default: the first).",
                     show_default=False),
    ] = None,
    metric: Annotated[
        str,
        typer.Option("--metric", "-m", help="Metric the results and curves emphasise: any numeric "
                     "metrics.jsonl key, e.g. val_acc, val_loss, train_loss, grad_norm, lr."),
    ] = "val_acc",
    group: Annotated[
        bool,
        typer.Option("--group", help="Merge runs that differ only in seed: mean ± sd and n; with two groups, "
                     "Welch's t-test on test accuracy."),
    ] = False,
    all_keys: Annotated[
        bool, typer.Option("--all", help="Show every config key, not only those that differ.")
    ] = False,
    fmt: FormatOption = OutputFormat.table,
    plot: PlotOption = None,
    runs_dir: RunsDirOption = None,
) -> None:
    """Compare runs: config diff, results, curves and gradient diagnostics.

    Example: trickrun compare 'runs/adam-*' sgd --baseline sgd --group --plot compare.png
    """
    loaded, base_index = load_compared(runs, baseline, runs_root(runs_dir))
    _warn(w for run in loaded for w in run.warnings)
    console = _stdout()
    report = compare_report(loaded, baseline=base_index, metric=metric, group=group, all_keys=all_keys,
                            spark_width=spark_width(console, 2 if metric in ("val_acc", "val_loss") else 3))
    if plot is not None:
        from .analysis.plots import plot_runs

        plot_runs(loaded, plot, labels=run_labels(loaded))
    report_output(report, fmt, console)
    if plot is not None:
        err_console.print(f"wrote {plot}", highlight=False)


@app.command("ls")
@reports_errors
def list_runs(
    runs_dir: RunsDirOption = None,
    sort: Annotated[
        SortKey,
        typer.Option("--sort", "-s", help="Order rows by this column (accuracies best first).",
                     case_sensitive=False),
    ] = SortKey.started,
    reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Reverse the order.")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List runs: name, status, epochs, best val acc, test acc, started, duration.

    Example: trickrun ls --sort test_acc --format csv
    """
    root = runs_root(runs_dir)
    entries, skipped = scan_runs(root)
    if skipped:
        shown = ", ".join(skipped[:10]) + (f", ... ({len(skipped) - 10} more)" if len(skipped) > 10 else "")
        err_console.print(f"note: skipped {len(skipped)} folder(s) in {root} that are not runs: {shown}",
                          highlight=False, soft_wrap=True)
    ls_output(sort_entries(entries, sort, reverse), fmt, _stdout())


@app.command()
@reports_errors
def show(
    run: Annotated[
        str,
        typer.Argument(metavar="RUN", help="A run directory, a run name or unique prefix under the runs folder.",
                       show_default=False),
    ],
    fmt: FormatOption = OutputFormat.table,
    plot: PlotOption = None,
    runs_dir: RunsDirOption = None,
) -> None:
    """Show one run in full: config, summary, per-epoch metrics, per-layer diagnostics, curves.

    Example: trickrun show adam --plot adam.png
    """
    loaded = load_run(_one_run(run, runs_dir, "show"))
    _warn(loaded.warnings)
    if plot is not None:
        from .analysis.plots import plot_runs

        plot_runs([loaded], plot, title=loaded.dirname)
    show_output(loaded, fmt, _stdout())
    if plot is not None:
        err_console.print(f"wrote {plot}", highlight=False)


def main() -> None:
    app(prog_name="trickrun")
