"""The command line: thin Typer commands that parse options, call one function each, and turn
TrickrunError into its exit code with a one-line message on stderr (never a traceback)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Callable, Optional

import typer
from rich.console import Console

from .choices import EnsembleFormat, OutputFormat
from .cliapp import (ConfigArg, FormatOption, JsonOption, PlotOption, QuietOption, RunsDirOption, SetOption,
                     SweepOption, _note, _one_run, _stdout, _warn, _with_sweep, app, err_console, reports_errors)
from .clihelp import Command
from .config import dump_yaml, load_config
from .display import say
from .errors import ConfigError
from .rundir.writer import runs_root, to_json
from .signals import SignalStop, stop_exit_code

# Each command imports what does its work inside itself: `trickrun train` loads no analysis,
# ensemble or export code before its first batch (start-up), and no command loads the
# training stack (.api) or matplotlib (.analysis.plots) unless it needs them. The options'
# choices come from .choices, which imports nothing.


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
    _run_and_print(lambda: train_run(config, set_ or [], name=name, seed=seed, runs_dir=runs_dir, progress=progress),
                   quiet, json_)


def _run_and_print(run: Callable[[], Any], quiet: bool, json_: bool) -> None:
    """Train or resume, then print the result. A stop before the run began ends the command
    (`interrupted`, nothing to keep); one that comes once the run has ended, while its result is
    printed, waits and is dropped: the run is finished, its directory is printed and the exit
    code is its summary's (a completed run's 0, not 130 with nothing on stdout)."""
    stops = SignalStop()
    with stops.installed():
        try:
            result = run()
        except KeyboardInterrupt as stop:  # before the run directory existed: nothing to keep
            err_console.print("interrupted")
            raise typer.Exit(stop_exit_code(stop)) from None
        stops.hold_to_the_end()
        _print_result(result, quiet, json_)


def _print_result(result, quiet: bool, json_: bool) -> None:
    """The end of train and resume: the summary or run directory on stdout; if interrupted,
    how to go on (on stderr) and exit 128 + the signal (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP)."""
    summary = result.summary
    if json_:
        typer.echo(to_json({**summary, "run_dir": str(result.run_dir)}, indent=2))
    else:
        if not quiet:
            say(err_console, _result_line(summary))
        typer.echo(str(result.run_dir))
    if result.exit_code:
        if not json_:  # --json is for scripts, which read the status
            say(err_console, f"to continue: trickrun resume {result.run_dir}")
        raise typer.Exit(result.exit_code)


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
    _run_and_print(lambda: resume_run(path, progress="quiet" if quiet else "auto"), quiet, json_)


@app.command(cls=Command)
@reports_errors
def validate(config: ConfigArg, set_: SetOption = None) -> None:
    """Check CONFIG (with any --set overrides) and print the resolved config, every default filled in.

    Example: trickrun validate configs/baseline.yaml --set optimizer.name=sgd
    """
    cfg = load_config(config, set_ or [])
    typer.echo(dump_yaml(cfg.to_dict()), nl=False)



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
                                                 help="N seeds per arm for every claim (default: the number each "
                                                 "claim declares, 8 to 32; 2 with --quick).")] = None,
    seed_list: Annotated[Optional[str], typer.Option("--seed-list", metavar="8,9,10", show_default=False,
                                                     help="These seeds per arm instead.")] = None,
    first_seed: Annotated[int, typer.Option("--first-seed", metavar="S",
                                            help="Count the seeds from S (fresh seeds for a new report).")] = 0,
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
    arms by seed and is decided by a paired t-test and a sign-flip permutation test, and an
    equivalence test (TOST) against its smallest effect of interest, with Holm's correction.
    The full report takes about 50 minutes on 2 cores; --quick, a few minutes.

    Example: trickrun lesson --quick --claims 1,9 --jobs 2
    """
    from .lesson.runner import run_lesson
    from .lesson.results import LessonOptions

    opts = LessonOptions(claims, seeds, quick, jobs, backend, out, runs_dir, seed_list, first_seed)
    code = run_lesson(opts, err_console)
    if code:
        raise typer.Exit(code)


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
    from .analysis.compare import compare_report, load_compared
    from .analysis.render import report_output

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
        say(err_console, f"wrote {plot}")


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
    from .rundir.reader import runs_named

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
        say(err_console, f"wrote {saved}")
        if others := len(runs_named(save, saved.parent)) - 1:  # a name means its newest run: this one now
            _warn([f"{others} other run(s) are named {save}: the name {save} now means this ensemble (the newest); "
                   f"{save}~1 names the run before it"])


from . import cli_runs  # noqa: E402,F401  ls, show, rm, export: registered after the commands above


def main() -> None:
    app(prog_name="trickrun")
