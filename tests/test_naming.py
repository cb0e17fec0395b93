"""Run names as people reuse them: a name (or prefix) that several runs share means the newest
of them for the commands that read or continue runs, said in one line on stderr; `NAME~K`
names the K-th older; a glob or --sweep takes them all; a deleting command can ask for the
strict reading that refuses an ambiguous name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import InterruptAt
from runfactory import make_run
from trickrun.api import train
from trickrun.cli import app
from trickrun.errors import ConfigError
from trickrun.rundir.reader import Ambiguous, resolve_run, resolve_runs
from trickrun.train import NullReporter

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """Three runs named baseline (the newest made second, in the same second as the first
    made, so -2 breaks the tie), one normal-init; the runs folder the CLI sees."""
    root = tmp_path / "runs"
    make_run(root, "baseline", stamp="20261127-162050", test_acc=0.981)
    make_run(root, "baseline", stamp="20261127-170000", test_acc=0.982, **{"optimizer.lr": 0.01})
    make_run(root, "baseline", stamp="20261127-170000-2", test_acc=0.983, **{"optimizer.lr": 0.003})
    make_run(root, "normal-init", stamp="20261127-162653", test_acc=0.93, **{"model.init": "normal"})
    return root


NEWEST, MIDDLE, OLDEST = "baseline-20261127-170000-2", "baseline-20261127-170000", "baseline-20261127-162050"


# --- the reader ----------------------------------------------------------------------------


def test_a_shared_name_means_the_newest_and_the_note_says_which_and_how_many_are_older(root):
    notes = []
    assert resolve_run("baseline", root, ambiguous="newest", note=notes.append) == [root / NEWEST]
    (note,) = notes
    assert NEWEST in note and "3 runs" in note and "2 older ones share the name" in note
    assert "baseline~1" in note


def test_a_shared_prefix_means_the_newest_run_it_starts(root):
    notes = []
    assert resolve_run("base", root, ambiguous=Ambiguous.NEWEST, note=notes.append) == [root / NEWEST]
    assert "prefix" in notes[0]


def test_a_unique_name_says_nothing(root):
    notes = []
    assert resolve_run("normal-init", root, ambiguous="newest", note=notes.append) == [
        root / "normal-init-20261127-162653"]
    assert notes == []


@pytest.mark.parametrize(("spec", "expected"), [("baseline~0", NEWEST), ("baseline~1", MIDDLE),
                                                ("baseline~2", OLDEST), ("base~2", OLDEST)])
def test_name_tilde_k_is_the_k_th_older_in_either_reading(root, spec, expected):
    for ambiguous in Ambiguous:
        notes = []
        assert resolve_run(spec, root, ambiguous=ambiguous, note=notes.append) == [root / expected]
        assert notes == [f"{spec!r} is {expected}"]


def test_name_tilde_k_past_the_oldest_is_an_error_naming_the_oldest(root):
    with pytest.raises(ConfigError, match=r"'baseline~3'.*matches 3 runs.*baseline~2 is the oldest"):
        resolve_run("baseline~3", root, ambiguous="newest")
    with pytest.raises(ConfigError, match="has no older run"):
        resolve_run("normal-init~1", root, ambiguous="newest")


def test_the_strict_reading_refuses_a_shared_name_listing_the_runs_and_the_ways_to_name_one(root):
    with pytest.raises(ConfigError) as err:
        resolve_run("baseline", root, ambiguous=Ambiguous.REFUSE)
    message = str(err.value)
    assert "run name 'baseline' matches 3 runs" in message
    assert all(name in message for name in (NEWEST, MIDDLE, OLDEST))
    assert "baseline~K" in message and "-*" in message
    with pytest.raises(ConfigError, match="prefix 'base' matches 3 runs"):
        resolve_run("base", root)  # strict is the default: a deleting command cannot forget it


def test_a_glob_takes_every_run_it_matches_in_either_reading(root):
    for ambiguous in Ambiguous:
        assert {p.name for p in resolve_run("baseline-*", root, ambiguous=ambiguous)} == {NEWEST, MIDDLE, OLDEST}


def test_resolve_runs_passes_the_reading_on(root):
    notes = []
    found = resolve_runs(["baseline", "normal-init", "baseline~2"], root, ambiguous="newest", note=notes.append)
    assert [p.name for p in found] == [NEWEST, "normal-init-20261127-162653", OLDEST]
    assert len(notes) == 2


# --- the commands that read or continue runs ------------------------------------------------


def test_show_takes_the_newest_with_one_line_on_stderr(root):
    result = invoke("show", "baseline", "-f", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["run"] == NEWEST
    assert result.stderr.count("\n") == 1 and result.stderr.startswith("note: 'baseline' matches 3 runs")
    assert json.loads(invoke("show", "baseline~1", "-f", "json").stdout)["run"] == MIDDLE


def test_compare_takes_the_newest_of_each_shared_name_and_the_baseline_option_too(root):
    result = invoke("compare", "baseline", "normal-init", "-f", "json")
    assert result.exit_code == 0, result.output
    assert [r["run"] for r in json.loads(result.stdout)] == [NEWEST, "normal-init-20261127-162653"]
    assert "note: 'baseline' matches 3 runs" in result.stderr
    result = invoke("compare", "normal-init", "--baseline", "baseline~2", "-f", "json")
    assert [r["run"] for r in json.loads(result.stdout)] == [OLDEST, "normal-init-20261127-162653"]


def test_compare_of_a_glob_takes_every_run_without_a_note(root):
    result = invoke("compare", "baseline-*", "-f", "json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)) == 3 and "note" not in result.stderr


CFG = {"data": {"val_size": 100}, "model": {"hidden": [16]}, "train": {"epochs": 3}, "name": "tour"}


def test_resume_continues_the_newest_run_of_a_shared_name(fake_data, monkeypatch):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(2, 1))
    older = train(CFG, progress="quiet")
    newer = train(CFG, progress="quiet")
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: NullReporter())
    result = invoke("resume", "tour", "--quiet")
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()) == newer.run_dir
    assert f"using the newest, {newer.run_dir.name}" in result.stderr
    assert json.loads((newer.run_dir / "summary.json").read_text())["status"] == "completed"
    assert json.loads((older.run_dir / "summary.json").read_text())["status"] == "interrupted"
    result = invoke("resume", "tour~1", "--quiet")  # and the older one, by K
    assert result.exit_code == 0 and Path(result.stdout.strip()) == older.run_dir


def test_ensemble_takes_the_newest_of_a_shared_name(fake_data, tmp_path):
    from test_ensemble import member

    root = tmp_path / "runs"
    member(root, "m", 0, stamp="20240501-120000")
    member(root, "m", 1, stamp="20240501-130000")
    member(root, "other", 2)
    result = invoke("ensemble", "m", "other", "-f", "json")
    assert result.exit_code == 0, result.output
    assert [m["run"] for m in json.loads(result.stdout)["members"]] == ["m-20240501-130000", "other-20240501-120000"]
    assert "note: 'm' matches 2 runs" in result.stderr


def test_a_folder_named_with_a_tilde_is_taken_as_it_is(root):
    make_run(root, "odd", stamp="20261127-180000")
    (root / "odd-20261127-180000").rename(root / "odd~1")
    assert resolve_run("odd~1", root, ambiguous="newest") == [root / "odd~1"]
