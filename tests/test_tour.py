"""The README's short tour, run line by line in a fresh folder as written, on a small slice of
real MNIST (options that shrink the data and the network are added to its train and sweep
lines): the second line trains a second run named `baseline` and is stopped by Ctrl-C, and from
then on `baseline` means that newer run, so `resume baseline` and `compare baseline normal-init`
work, each with a note naming the run."""

from __future__ import annotations

import shlex
from pathlib import Path

from typer.testing import CliRunner

from helpers import InterruptAt, real_data_dir, requires_real_mnist
from trickrun.cli import app
from trickrun.train import NullReporter

REPO = Path(__file__).resolve().parents[1]
SMALL = ["--set", "data.train_limit=300", "--set", "data.val_size=200", "--set", "train.epochs=3",
         "--set", "model.hidden=[16]"]
runner = CliRunner()


def tour_lines() -> list[list[str]]:
    """The commands of the README's "A short tour" block, comments dropped."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    block = readme[readme.index("## A short tour"):].split("\n\n")[1]
    return [shlex.split(line, comments=True)[1:] for line in block.splitlines()]


def test_the_tour_is_the_one_this_test_runs():
    lines = tour_lines()
    assert [argv[0] for argv in lines] == ["train", "train", "train", "validate", "explain", "explain", "resume",
                                           "compare", "sweep", "compare", "ensemble"]
    assert lines[6] == ["resume", "baseline"] and lines[7][:3] == ["compare", "baseline", "normal-init"]


@requires_real_mnist
def test_the_readme_tour_works_line_by_line_in_a_fresh_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(real_data_dir()))
    monkeypatch.setenv("TRICKRUN_RUNS_DIR", str(tmp_path / "runs"))
    results = []
    for i, argv in enumerate(tour_lines()):
        stopped = i == 1  # "Ctrl-C it mid-run"
        reporter = (lambda mode: InterruptAt(2, 1)) if stopped else (lambda mode: NullReporter())
        monkeypatch.setattr("trickrun.progress.make_reporter", reporter)
        result = runner.invoke(app, argv + (SMALL if argv[0] in ("train", "sweep") else []))
        assert result.exit_code == (130 if stopped else 0), (argv, result.output)
        results.append(result)
    newest = results[1].stdout.strip()
    assert "trickrun resume" in results[1].stderr
    assert "The lesson, claim 2" in results[4].stdout  # explain model.init ends with the lesson's verdict
    assert results[6].stdout.strip() == newest  # resume baseline: the newer run, the one stopped
    for resumed_or_compared in (results[6], results[7]):
        assert f"'baseline' matches 2 runs: using the newest, {Path(newest).name}" in resumed_or_compared.stderr
    assert (tmp_path / "cmp.png").is_file()
    groups = results[9].stdout
    assert "optimizer.lr=0.01" in groups and "optimizer.lr=0.001" in groups and "test acc vs baseline" in groups
    assert list((tmp_path / "runs").glob("baseline-avg-*"))
