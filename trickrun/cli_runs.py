"""The commands that look after the runs folder: `ls` and `show` (inspection), `rm` and
`export` (housekeeping). They register on the shared app (cliapp.py); cli.py imports this
module after its own commands, so that `--help` lists them last. As in cli.py, each command
imports the code that does its work inside itself."""

from __future__ import annotations

import difflib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from .choices import ExportFormat, OutputFormat, SortKey
from .cliapp import (FormatOption, PlotOption, RunsDirOption, SweepOption, _note, _one_run, _stdout, _warn, _with_sweep, app,
                     err_console, reports_errors)
from .clihelp import Command
from .config import short
from .display import say
from .errors import ConfigError
from .rundir.reader import Ambiguous, load_run, resolve_runs, scan_runs
from .rundir.writer import runs_root


@app.command("ls", cls=Command)
@reports_errors
def list_runs(
    runs_dir: RunsDirOption = None,
    sort: Annotated[
        str,
        typer.Option("--sort", metavar="COLUMN",
                     help=f"Order rows by this column (accuracies best first): {', '.join(k.value for k in SortKey)}."),
    ] = SortKey.started.value,
    reverse: Annotated[bool, typer.Option("--reverse", "-r", help="Reverse the order.")] = False,
    fmt: FormatOption = OutputFormat.table,
) -> None:
    """List runs: name, status, epochs, val acc @best, test acc, started, duration.

    Example: trickrun ls --sort test_acc --format csv
    """
    from .analysis.listing import ls_output, sort_entries

    key = _sort_key(sort)  # before reading any run
    root = runs_root(runs_dir)
    entries, skipped = scan_runs(root)
    if skipped:
        shown = ", ".join(skipped[:10]) + (f", ... ({len(skipped) - 10} more)" if len(skipped) > 10 else "")
        say(err_console, f"skipped {len(skipped)} folder(s) in {root} that are not runs: {shown}", "note:")
    ls_output(sort_entries(entries, key, reverse), fmt, _stdout())


# What each `ls --sort` column holds, for the message that refuses another name.
SORT_MEANINGS = {
    SortKey.name: "run name", SortKey.status: "status", SortKey.epochs: "epochs run",
    SortKey.val_acc: "validation accuracy at the best epoch", SortKey.test_acc: "test accuracy",
    SortKey.started: "start time", SortKey.duration: "duration",
}


def _sort_key(text: str) -> SortKey:
    """--sort's column (any case), or a ConfigError listing the columns with what each holds
    and the ones whose meaning has the word given (accuracy: test_acc, val_acc)."""
    try:
        return SortKey(text.strip().lower())
    except ValueError:
        pass
    word = text.strip().lower().replace("-", "_")
    hits = [k.value for k, meaning in SORT_MEANINGS.items() if word and word in meaning.replace(" ", "_")]
    hits = hits or difflib.get_close_matches(word, [k.value for k in SortKey], n=2, cutoff=0.5)
    columns = ", ".join(f"{k.value} ({meaning})" if meaning != k.value else k.value
                        for k, meaning in SORT_MEANINGS.items())
    hint = f"; for {text.strip()!r}, did you mean {' or '.join(hits)}?" if hits else ""
    raise ConfigError(f"--sort {short(text)}: ls sorts by one of its columns: {columns}{hint}")


@app.command(cls=Command)
@reports_errors
def show(
    run: Annotated[
        str,
        typer.Argument(metavar="RUN", help="A run directory, or a run name or prefix under the runs folder (the newest run of a shared "
                       "name; NAME~1 the one before it).",
                       show_default=False),
    ],
    fmt: FormatOption = OutputFormat.table,
    plot: PlotOption = None,
    runs_dir: RunsDirOption = None,
) -> None:
    """Show one run in full: config, summary, per-epoch metrics, per-layer diagnostics, curves.

    Example: trickrun show adam --plot adam.png
    """
    from .analysis.show import show_output

    loaded = load_run(_one_run(run, runs_dir, "show"))
    _warn(loaded.warnings)
    if plot is not None:
        from .analysis.plots import plot_runs

        plot_runs([loaded], plot, title=loaded.dirname)
    show_output(loaded, fmt, _stdout())
    if plot is not None:
        say(err_console, f"wrote {plot}")


# --- rm, export (housekeeping) -----------------------------------------------------------
RunsArg = Annotated[
    Optional[list[str]],
    typer.Argument(metavar="[RUN]...", show_default=False,
                   help="Runs, named as for compare: run directories, run names or unique prefixes under the "
                   "runs folder, or globs such as 'runs/adam-*'."),
]


def _stdin_is_terminal() -> bool:
    return sys.stdin.isatty()


def _confirm(question: str) -> bool:
    """Ask on the terminal; with no terminal to ask on, refuse (exit 2) rather than guess."""
    if not _stdin_is_terminal():
        raise ConfigError("stdin is not a terminal, so rm cannot ask before deleting; pass --yes to remove "
                          "the runs listed above (or --dry-run to only list them)")
    return typer.confirm(question, default=False)


@app.command(cls=Command)
@reports_errors
def rm(
    runs: Annotated[
        Optional[list[str]],
        typer.Argument(metavar="[RUN]...", show_default=False,
                       help="Runs to delete, named as for compare: run directories, run names or unique prefixes "
                       "under the runs folder (a name or prefix matching several runs is refused), or globs such "
                       "as 'runs/adam-*' (all they match)."),
    ] = None,
    sweep: Annotated[
        Optional[str],
        typer.Option("--sweep", metavar="NAME", show_default=False,
                     help="Delete every run of the sweep NAME and then its record (runs/sweeps/NAME/)."),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Delete without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only list what would be deleted.")] = False,
    runs_dir: RunsDirOption = None,
) -> None:
    """Delete runs (and a sweep's record) after listing them and asking.

    Each run is deleted under its lock: a run a live process trains is left and named (exit 1).
    Only run directories directly in the runs folder are deleted, never through a symbolic link.

    Example: trickrun rm --sweep lr --dry-run
    """
    from .housekeeping.remove import run_rm

    if not runs and sweep is None:
        raise ConfigError("give at least one RUN, or --sweep NAME")
    # a sweep's runs are read in plan_removal, under the sweep's lock
    code = run_rm(list(runs or []), runs_root(runs_dir), sweep, dry_run=dry_run, ask=None if yes else _confirm,
                  out=_stdout(), err=err_console)
    if code:
        raise typer.Exit(code)


@app.command(cls=Command)
@reports_errors
def export(
    runs: RunsArg = None,
    sweep: SweepOption = None,
    fmt: Annotated[
        Optional[ExportFormat],
        typer.Option("--format", "-f", case_sensitive=False, show_default=False,
                     help="csv, jsonl (one JSON object a line) or parquet (needs pyarrow and -o); default: "
                     "from -o's suffix, else csv."),
    ] = None,
    output: Annotated[
        Optional[Path],
        typer.Option("--output", "-o", metavar="FILE", dir_okay=False, show_default=False,
                     help="Write the table to FILE (replaced at once) instead of stdout."),
    ] = None,
    runs_dir: RunsDirOption = None,
) -> None:
    """Export every epoch of the runs as one table: run, sweep, seed, the config keys that differ, epoch, metrics.

    One row per run and epoch, for pandas, R or a spreadsheet; per-layer diagnostics as
    columns such as layers.hidden1.grad_norm.

    Example: trickrun export --sweep lr -o lr.csv
    """
    from .housekeeping.export import choose_format, export_bytes, write_output, write_stdout

    chosen = choose_format(fmt, output)
    specs = _with_sweep(runs, sweep, runs_dir)
    # as compare: a shared name is its newest run, said in a note (export deletes nothing)
    paths = resolve_runs(specs, runs_root(runs_dir), ambiguous=Ambiguous.NEWEST, note=_note)
    loaded = [load_run(path) for path in paths]
    _warn(w for run in loaded for w in run.warnings)
    data, n_rows, warnings = export_bytes(loaded, chosen)
    _warn(warnings)
    if output is None:
        write_stdout(data)
    else:
        write_output(output, data, runs_root(runs_dir))
        with_rows = sum(bool(run.records) for run in loaded)  # a run without epochs adds none (warned)
        say(err_console, f"wrote {n_rows} rows ({with_rows} run{'s' if with_rows != 1 else ''}) to {output}")
