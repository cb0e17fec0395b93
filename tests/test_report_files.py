"""`trickrun lesson`'s report on disk: a bad --out folder is a one-line error with its exit
code, the report replaces the previous one all at once (a full disk leaves it intact), and the
command line it prints has the folders relative to the current one."""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from test_lesson import _synthetic_runs
from trickrun.cli import app
from trickrun.errors import ConfigError, RunDirError
from trickrun.lesson.claims import CLAIMS
from trickrun.lesson.report import FOREST_FILE, REPORT_FILE, write_report
from trickrun.lesson.results import ClaimResult, LessonOptions
from trickrun.lesson.runner import measure_claim
from trickrun.lesson.verdicts import judge, outcomes_for

runner = CliRunner()
UNWRITABLE = Path("/sys/trickrun-test/report")  # mkdir fails with EPERM, even as root


def claim_results(tmp_path: Path) -> list[ClaimResult]:
    """Claim 9 measured and judged on synthetic runs: one section and one figure."""
    claim = next(c for c in CLAIMS if c.slug == "lr-decay")
    result = ClaimResult(claim, _synthetic_runs(claim, tmp_path), {}, None)
    measure_claim(result, quick=True)
    result.outcomes = outcomes_for(claim.number, claim.comparisons, result.samples)
    judge(result.outcomes)
    return [result]


def lesson_without_training(monkeypatch, *args: str):
    """`trickrun lesson ARGS` with no sweep run: straight to writing an empty report."""
    monkeypatch.setattr("trickrun.lesson.runner.run_claims", lambda claims, opts, jobs, err: ([], None))
    return runner.invoke(app, ["lesson", "--jobs", "1", *args])


def test_out_under_a_file_exits_2_naming_the_file(tmp_path, monkeypatch):
    blocker = tmp_path / "somefile"
    blocker.write_text("not a folder")
    result = lesson_without_training(monkeypatch, "--out", str(blocker / "report"))
    assert result.exit_code == 2, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.output
    assert line.startswith(f"error: --out {blocker / 'report'}: {blocker} is a file, not a folder; give a folder")
    assert blocker.read_text() == "not a folder"


@pytest.mark.skipif(not Path("/sys").is_dir(), reason="no /sys here")
def test_an_unwritable_out_exits_1_naming_the_folder(monkeypatch):
    result = lesson_without_training(monkeypatch, "--out", str(UNWRITABLE))
    assert result.exit_code == 1, result.output
    line = result.stderr.strip()
    assert "\n" not in line and "Traceback" not in result.output
    assert line.startswith(f"error: cannot write the report in {UNWRITABLE}: ") and "--out DIR" in line


def test_write_report_turns_os_errors_into_trickrun_errors(tmp_path):
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="is a file"):
        write_report([], LessonOptions(out=tmp_path / "file" / "report"), 1, 1.0)
    with pytest.raises(ConfigError, match="is a file"):
        write_report([], LessonOptions(out=tmp_path / "file"), 1, 1.0)


def test_a_full_disk_leaves_the_previous_report_and_figures_intact(tmp_path, monkeypatch):
    out = tmp_path / "report"
    results = claim_results(tmp_path)
    write_report(results, LessonOptions(quick=True, out=out), 1, 60.0)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    assert set(before) == {REPORT_FILE, FOREST_FILE, results[0].claim.figure_file}

    def full_disk(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full_disk)
    with pytest.raises(RunDirError, match="no space left on the device; the previous report is unchanged"):
        write_report(results, LessonOptions(quick=True, out=out), 1, 120.0)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing torn, nothing left over
    monkeypatch.undo()
    text = write_report(results, LessonOptions(quick=True, out=out), 1, 120.0).read_text()
    assert "2.0 min for this command" in text and sorted(p.name for p in out.iterdir()) == sorted(before)


def test_the_time_line_says_1_cell_at_a_time_not_1_cells(tmp_path):
    results = claim_results(tmp_path)
    one = write_report(results, LessonOptions(quick=True, out=tmp_path / "one"), 1, 60.0).read_text()
    two = write_report(results, LessonOptions(quick=True, out=tmp_path / "two"), 2, 60.0).read_text()
    assert "1.0 min for this command (finished runs it found are not counted), 1 cell at a time," in one
    assert "2 cells at a time," in two


def test_the_command_line_shows_folders_relative_to_the_current_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    opts = LessonOptions(out=tmp_path / "lessons" / "report", runs_dir=tmp_path / "runs")
    assert opts.command().endswith("--runs-dir runs --out lessons/report")
    assert LessonOptions(out=Path("report")).command().endswith("--out report")
    elsewhere = tmp_path.parent / "elsewhere"
    assert LessonOptions(out=elsewhere).command().endswith(f"--out {elsewhere}")


def test_the_report_prints_no_absolute_folder_under_the_current_one(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write_report([], LessonOptions(out=tmp_path / "report", runs_dir=tmp_path / "runs"), 1, 1.0)
    assert "`trickrun lesson --backend local --runs-dir runs --out report`" in path.read_text()
    assert str(tmp_path) not in path.read_text()
