"""The command line: thin Typer commands that parse options, call one function each, and turn
TrickrunError into its exit code with a one-line message on stderr (never a traceback)."""

from __future__ import annotations

import difflib
import functools
import os
import sys
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.console import Console
from rich.markup import escape

from .version import __version__
from .analysis.compare import compare_report, load_compared
from .analysis.listing import SortKey, ls_output, sort_entries
from .analysis.render import OutputFormat, report_output
from .analysis.show import show_output
from .clihelp import Command
from .config import dump_yaml, load_config, short
from .ensemble import EnsembleFormat
from .errors import ConfigError, TrickrunError
from .housekeeping.export import ExportFormat
from .rundir.reader import Ambiguous, load_run, resolve_run, resolve_runs, scan_runs
from .rundir.writer import runs_root, to_json

# Heavy modules stay out of start-up: the training stack (.api) and matplotlib (.analysis.plots)
# are imported inside the commands that need them.

app = typer.Typer(
    name="trickrun",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,  # click's plain layout: see clihelp.py
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


@app.command(cls=Command)
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
    """The end of train and resume: the summary or run directory on stdout; if interrupted,
    how to go on (on stderr) and exit 128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
    summary = result.summary
    if json_:
        typer.echo(to_json({**summary, "run_dir": str(result.run_dir)}, indent=2))
    else:
        if not quiet:
            err_console.print(escape(_result_line(summary)), soft_wrap=True)
        typer.echo(str(result.run_dir))
    if result.exit_code:
        if not json_:  # --json is for scripts, which read the status
            err_console.print(f"to continue: trickrun resume {escape(str(result.run_dir))}", soft_wrap=True)
        raise typer.Exit(result.exit_code)


def _note(message: str) -> None:
    err_console.print(f"note: {escape(message)}", soft_wrap=True, highlight=False)


def _one_run(spec: str, runs_dir: Path | None, command: str) -> Path:
    """The single run directory `spec` names (a path, a name or prefix: its newest run, NAME~K)."""
    paths = resolve_run(spec, runs_root(runs_dir), ambiguous=Ambiguous.NEWEST, note=_note)
    if len(paths) != 1:
        raise ConfigError(f"{spec!r} matches {len(paths)} runs; {command} takes one")
    return paths[0]


def _result_line(summary: dict) -> str:
    """`diverged: <reason>; best epoch 3; test acc ...; 1.2s`, the status said once (reasons
    such as "interrupted (Ctrl-C) during epoch 2" begin with it) and no best epoch when no
    epoch finished (the reason says so)."""
    status, reason = str(summary["status"]), summary["stop_reason"]
    parts = [reason if reason.startswith(status) else f"{status}: {reason}"]
    if summary["best_epoch"] is not None:
        test = summary.get("test") or {}
        parts += [f"best epoch {summary['best_epoch']}",
                  f"test acc {test['acc']:.4f}  loss {test['loss']:.4f}" if test else "no test evaluation"]
    return "; ".join(parts + [f"{summary['wall_s']:.1f}s"])


@app.command(cls=Command)
@reports_errors
def resume(
    run: Annotated[str, typer.Argument(help="The run to continue: its directory, or its name or a prefix under the runs folder (the newest run of a shared name; NAME~1 the one before it).", show_default=False)],
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


@app.command(cls=Command)
@reports_errors
def validate(config: ConfigArg, set_: SetOption = None) -> None:
    """Check CONFIG (with any --set overrides) and print the resolved config, every default filled in.

    Example: trickrun validate configs/baseline.yaml --set optimizer.name=sgd
    """
    cfg = load_config(config, set_ or [])
    typer.echo(dump_yaml(cfg.to_dict()), nl=False)



SweepOption = Annotated[
    Optional[str],
    typer.Option("--sweep", metavar="NAME", show_default=False,
                 help="Add every run of the sweep NAME (its sweep.json under the runs folder)."),
]


def _with_sweep(runs: list[str] | None, sweep: str | None, runs_dir: Path | None,
                present_only: bool = False) -> list[str]:
    """The RUN arguments, plus the run directories of `--sweep NAME`; at least one run
    (`present_only`, for rm: the sweep's runs still there, perhaps none)."""
    specs = list(runs or [])
    if sweep is not None:
        from .sweep.command import sweep_run_dirs

        specs += [str(p) for p in sweep_run_dirs(sweep, runs_dir, present_only=present_only)]
    elif not specs:
        raise ConfigError("give at least one RUN, or --sweep NAME")
    return specs


# --- sweep -----------------------------------------------------------------------------
@app.command(cls=Command)
@reports_errors
def sweep(
    source: Annotated[Path, typer.Argument(metavar="CONFIG", show_default=False,
                                           help="A config (then give --grid) or a sweep file with base:, set:, grid: and seeds:.")],
    grid: Annotated[Optional[list[str]], typer.Option("--grid", "-g", metavar="KEY=VALUES", show_default=False,
                    help="A grid axis; repeatable. VALUES: comma-separated scalars (optimizer.name=sgd,adam) or a "
                    "quoted YAML list ('model.hidden=[[256],[512,256]]').")] = None,
    set_: SetOption = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", help="Seeds 0..N-1 for every grid point.",
                                                 show_default=False)] = None,
    seed_list: Annotated[Optional[str], typer.Option("--seed-list", metavar="0,3,7", show_default=False,
                                                     help="These seeds for every grid point.")] = None,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", show_default=False,
                                                help="Cells at once (default: the number of cores).")] = None,
    name: Annotated[Optional[str], typer.Option("--name", show_default=False,
                                                help="Sweep name (default: the file's name).")] = None,
    runs_dir: RunsDirOption = None,
    fail_fast: Annotated[bool, typer.Option("--fail-fast", help="Start no cell after the first failure.")] = False,
    rerun: Annotated[bool, typer.Option("--rerun", help="Train every cell afresh, even finished ones.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="List the cells and what would happen to each; run nothing.")] = False,
    print_commands: Annotated[bool, typer.Option("--print-commands", help="Print one trickrun train line per cell; run nothing.")] = False,
    quiet: QuietOption = False,
    json_: Annotated[bool, typer.Option("--json", help="Print sweep.json instead of the leaderboard.")] = False,
    backend: Annotated[str, typer.Option("--backend", metavar="local|ray", help="Where cells run.")] = "local",
    address: Annotated[Optional[str], typer.Option("--address", show_default=False,
                                                   help="Ray cluster address ('auto': a running cluster; default: a local Ray).")] = None,
) -> None:
    """Train a grid of configs times seeds, several at once, and print the leaderboard.

    Example: trickrun sweep configs/baseline.yaml --grid optimizer.lr=0.01,0.001 --seeds 3 --jobs 2
    """
    from .sweep.command import SweepOptions, run_command

    opts = SweepOptions(source, grid or [], set_ or [], seeds, seed_list, jobs, name, runs_dir, fail_fast, rerun,
                        dry_run, print_commands, quiet, json_, backend, address)
    code = run_command(opts, _stdout(), err_console)
    if code:
        raise typer.Exit(code)


# --- explain ---------------------------------------------------------------------------
@app.command(cls=Command)
@reports_errors
def explain(
    thing: Annotated[str, typer.Argument(metavar="THING", show_default=False,
                     help="A config key (model.init), a section (model) or a config file (configs/dropout.yaml).")],
    report: Annotated[Optional[Path], typer.Option("--report", metavar="LESSON.md", show_default=False,
                      help="The lesson report to read verdicts from (default: docs/lesson.md of this checkout).")]
    = None,
) -> None:
    """Explain a config key, a section or a config file: meaning, values, formulas, default, and
    what the lesson claims about it with its verdict.

    Example: trickrun explain model.init
    """
    from .explain import explain_output

    explain_output(thing, Console(highlight=False), report)


# --- lesson ----------------------------------------------------------------------------
@app.command(cls=Command)
@reports_errors
def lesson(
    claims: Annotated[Optional[str], typer.Option("--claims", metavar="1,4,...", show_default=False,
                      help="Only these claims (numbers 1 to 9, comma-separated; default: all).")] = None,
    seeds: Annotated[Optional[int], typer.Option("--seeds", show_default=False,
                                                 help="Seeds per arm (default: 3, or 2 with --quick).")] = None,
    quick: Annotated[bool, typer.Option("--quick", help="A smoke test: 2,000 training examples, 3 epochs, "
                                        "2 seeds; every section, table, figure and verdict in minutes.")] = False,
    jobs: Annotated[Optional[int], typer.Option("--jobs", "-j", show_default=False,
                                                help="Cells at once (default: the number of cores).")] = None,
    backend: Annotated[str, typer.Option("--backend", metavar="local|ray", help="Where cells run.")] = "local",
    out: Annotated[Path, typer.Option("--out", metavar="DIR", help="Folder for lesson.md and one PNG per claim.")]
    = Path("lesson-report"),
    runs_dir: RunsDirOption = None,
) -> None:
    """Run the experiment behind every claim of the lesson and write a report with verdicts.

    Each claim's sweeps (configs/lesson/) run through the sweep driver (finished runs are
    skipped, so an interrupted report resumes); each pre-declared comparison pairs its two
    arms by seed and is decided by a paired t-test and an equivalence test (TOST) against its
    smallest effect of interest, with Holm's correction.

    Example: trickrun lesson --quick --claims 1,9 --jobs 2
    """
    from .lesson.runner import run_lesson
    from .lesson.results import LessonOptions

    opts = LessonOptions(claims, seeds, quick, jobs, backend, out, runs_dir)
    code = run_lesson(opts, err_console)
    if code:
        raise typer.Exit(code)


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
        err_console.print(f"[yellow]warning:[/] {message}", markup=True, soft_wrap=True, highlight=False)


@app.command(cls=Command)
@reports_errors
def compare(
    runs: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="[RUN]...",
            help="Runs: a run directory, a run name or prefix under the runs folder (the newest run of a "
            "shared name; NAME~1 the one before it), or a glob such as 'runs/adam-*' (every run it matches).",
            show_default=False,
        ),
    ] = None,
    sweep: SweepOption = None,
    baseline: Annotated[
        Optional[str],
        typer.Option("--baseline", "-b", help="The run changes are measured against (default: the first).",
                     show_default=False),
    ] = None,
    metric: Annotated[
        str,
        typer.Option("--metric", "-m", help="Metric the results and curves emphasise: any numeric "
                     "metrics.jsonl key, e.g. val_acc, val_loss, train_loss, grad_norm, lr; or test_acc, "
                     "test_loss (one value per run, as ls --sort takes them)."),
    ] = "val_acc",
    group: Annotated[
        bool,
        typer.Option("--group", help="Merge runs that differ only in seed into groups labelled by the config "
                     "values that differ: mean ± sd and n, each group's test accuracy against the baseline's "
                     "(Welch's t-test); --plot draws one line per group with a ± sd band."),
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
    specs = _with_sweep(runs, sweep, runs_dir)
    loaded, base_index = load_compared(specs, baseline, runs_root(runs_dir), _note)
    if len(loaded) == 1 and len(specs) > 1:
        raise ConfigError(_one_run_named(specs, loaded[0].dirname))
    _warn(w for run in loaded for w in run.warnings)
    console = _stdout()
    report = compare_report(loaded, baseline=base_index, metric=metric, group=group, all_keys=all_keys,
                            width=console.width)
    if plot is not None:
        from .analysis.plots import plot_comparison

        plot_comparison(loaded, plot, group)
    report_output(report, fmt, console)
    if plot is not None:
        err_console.print(f"wrote {plot}", highlight=False)


def _one_run_named(specs: list[str], dirname: str) -> str:
    """Why `compare A A` compares nothing, and how to name two runs of one config."""
    named = " and ".join(repr(s) for s in specs) if len(specs) == 2 else ", ".join(repr(s) for s in specs)
    return (f"{named} {'both' if len(specs) == 2 else 'all'} name the same run, {dirname}: nothing to compare. "
            "To compare two runs of one config, name each by its directory, as 'trickrun ls' lists them "
            f"(trickrun compare {dirname} ANOTHER-DIRECTORY), or give runs their own names when you train "
            "them (--name)")


@app.command(cls=Command)
@reports_errors
def ensemble(
    runs: Annotated[
        Optional[list[str]],
        typer.Argument(
            metavar="[RUN]...",
            help="Two or more trained runs, named as for compare: run directories, run names or "
            "prefixes under the runs folder (the newest of a shared name; NAME~1 the one before it), or globs such as 'runs/adam-*'. They must share data.dataset, "
            "data.scale, data.val_size, data.split_seed (and data.train_limit with scale standard).",
            show_default=False,
        ),
    ] = None,
    sweep: SweepOption = None,
    save: Annotated[
        Optional[str],
        typer.Option("--save", metavar="NAME", show_default=False,
                     help="Also write an ensemble run directory NAME-<stamp> in the runs folder "
                     "(config.yaml with kind: ensemble and the members; summary.json), shown by ls and compare."),
    ] = None,
    fmt: Annotated[
        EnsembleFormat,
        typer.Option("--format", "-f", case_sensitive=False,
                     help="table (terminal), markdown, or json: one object with members (run, path, seed, "
                     "test {loss, acc}), mean_of_members, test (the ensemble's), seeds, n_test, saved."),
    ] = EnsembleFormat.table,
    runs_dir: RunsDirOption = None,
) -> None:
    """Average trained runs by soft voting: the mean of their predicted class probabilities on
    the test set. Prints each run's test accuracy and loss, their mean, and the ensemble's; the
    ensemble's loss is the mean cross-entropy of the averaged probabilities (clipped at 1e-12
    before the log).

    Example: trickrun ensemble 'runs/baseline-*' --save baseline-ensemble
    """
    from .ensemble import check_save_name, ensemble_output, evaluate_runs, save_ensemble, sweep_members

    root = runs_root(runs_dir)
    if save is not None:
        check_save_name(save)  # before the slow part
    specs = list(runs or [])
    if sweep is not None:  # its finished runs; a warning for each one left out
        usable, left_out = sweep_members(sweep, runs_dir)
        specs += [str(p) for p in usable]
        _warn(left_out)
    result = evaluate_runs(specs, root, _note)
    _warn(result.warnings)
    saved = save_ensemble(root, save, result) if save is not None else None
    ensemble_output(result, fmt, _stdout(), saved)
    if saved is not None:
        err_console.print(f"wrote {saved}", highlight=False)


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
    key = _sort_key(sort)  # before reading any run
    root = runs_root(runs_dir)
    entries, skipped = scan_runs(root)
    if skipped:
        shown = ", ".join(skipped[:10]) + (f", ... ({len(skipped) - 10} more)" if len(skipped) > 10 else "")
        err_console.print(f"note: skipped {len(skipped)} folder(s) in {root} that are not runs: {shown}",
                          highlight=False, soft_wrap=True)
    ls_output(sort_entries(entries, key, reverse), fmt, _stdout())


# What each `ls --sort` column holds, for the message that refuses another name.
SORT_MEANINGS = {
    SortKey.name: "run name", SortKey.status: "status", SortKey.epochs: "epochs run",
    SortKey.val_acc: "best validation accuracy", SortKey.test_acc: "test accuracy",
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
    loaded = load_run(_one_run(run, runs_dir, "show"))
    _warn(loaded.warnings)
    if plot is not None:
        from .analysis.plots import plot_runs

        plot_runs([loaded], plot, title=loaded.dirname)
    show_output(loaded, fmt, _stdout())
    if plot is not None:
        err_console.print(f"wrote {plot}", highlight=False)


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

    specs = _with_sweep(runs, sweep, runs_dir, present_only=True)
    code = run_rm(specs, runs_root(runs_dir), sweep, dry_run=dry_run, ask=None if yes else _confirm,
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
    from .housekeeping.export import choose_format, export_bytes, write_output

    chosen = choose_format(fmt, output)
    specs = _with_sweep(runs, sweep, runs_dir)
    loaded = [load_run(path) for path in resolve_runs(specs, runs_root(runs_dir))]
    _warn(w for run in loaded for w in run.warnings)
    data, n_rows, warnings = export_bytes(loaded, chosen)
    _warn(warnings)
    if output is None:
        sys.stdout.buffer.write(data)
        sys.stdout.flush()
    else:
        write_output(output, data)
        err_console.print(f"wrote {n_rows} rows ({len(loaded)} runs) to {output}", highlight=False,
                          markup=False, soft_wrap=True)


def main() -> None:
    app(prog_name="trickrun")
