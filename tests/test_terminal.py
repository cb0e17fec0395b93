"""What a person sees on the terminal at the end of a run and from the inspection commands:
an interruption said once with the command that continues it, a divergence in trickrun's own
words (no NumPy warnings, no "None"), and plain characters on a stdout that cannot encode
the sparklines."""

from __future__ import annotations

import io
import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from helpers import InterruptAt, write_fake_dataset
from runfactory import make_run
from trickrun.analysis.render import SPARK_CHARS, encodable
from trickrun.cli import app

runner = CliRunner()


def write_config(tmp_path: Path) -> Path:
    path = tmp_path / "exp.yaml"
    path.write_text("data:\n  val_size: 100\nmodel:\n  hidden: [16]\ntrain:\n  epochs: 3\n")
    return path


def test_ctrl_c_is_said_once_with_the_command_that_continues_the_run(fake_data, monkeypatch, tmp_path):
    monkeypatch.setattr("trickrun.progress.make_reporter", lambda mode: InterruptAt(2, 2))
    result = runner.invoke(app, ["train", str(write_config(tmp_path))])
    assert result.exit_code == 130
    run_dir = result.stdout.strip()
    assert "interrupted: interrupted" not in result.stderr
    assert result.stderr.count("interrupted") == 1
    assert "interrupted (Ctrl-C) during epoch 2; best epoch 1; test acc" in result.stderr
    assert f"trickrun resume {run_dir}" in result.stderr
    assert "None" not in result.stderr


# Run the CLI in a child process with the fake dataset's checksums: NumPy's warnings and
# encoding errors reach a real stderr there, not pytest's capture.
CHILD = """
import dataclasses, json, sys
from trickrun.data import catalog
catalog.DATASETS["mnist"] = dataclasses.replace(catalog.DATASETS["mnist"], sha256=json.loads(sys.argv[1]))
from trickrun.entry import main
sys.argv = ["trickrun", *sys.argv[2:]]
main()
"""


def trickrun_child(args: list[str], env: dict[str, str], sums: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", CHILD, json.dumps(sums or {}), *args], capture_output=True,
                          text=True, env={**os.environ, **env}, timeout=120)


def test_divergence_is_reported_in_trickruns_words_only(tmp_path):
    sums = write_fake_dataset(tmp_path / "data" / "mnist")
    # layer norm with a huge step overflowed inside numpy before trickrun's own check saw it
    result = trickrun_child(["train", str(write_config(tmp_path)), "--set", "optimizer.name=sgd",
                             "--set", "optimizer.lr=1e20", "--set", "model.norm=layer"],
                            {"TRICKRUN_DATA_DIR": str(tmp_path / "data"), "PYTHONWARNINGS": "default"}, sums)
    assert result.returncode == 0, result.stderr
    assert "diverged: non-finite value in epoch 1" in result.stderr
    assert "no epoch finished" in result.stderr
    assert "RuntimeWarning" not in result.stderr and "None" not in result.stderr


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(root, "adam", seed=0)
    make_run(root, "adam", seed=1, stamp="20240501-130000")
    make_run(root, "sgd", stamp="20240501-140000", final_acc=0.95, **{"optimizer.name": "sgd"})
    return root


@pytest.mark.parametrize("args", [
    ["compare", "adam-20240501-120000", "sgd"],
    ["compare", "adam-20240501-120000", "adam-20240501-130000", "sgd", "--group"],
    ["compare", "adam-20240501-120000", "sgd", "--format", "markdown"],
    ["show", "sgd"],
    ["show", "sgd", "--format", "markdown"],
    ["ls"],
], ids=["compare", "compare-group", "compare-md", "show", "show-md", "ls"])
@pytest.mark.parametrize("columns", ["200", "60"])
def test_a_stdout_that_cannot_encode_the_marks_gets_plain_characters(runs, args, columns):
    result = trickrun_child([*args, "--runs-dir", str(runs)], {"PYTHONIOENCODING": "ascii", "COLUMNS": columns})
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout.isascii() and result.stdout.strip()


def test_encodable_substitutes_only_what_the_console_cannot_encode():
    ascii_console = Console(file=open(os.devnull, "w", encoding="ascii"))
    utf8_console = Console(file=open(os.devnull, "w", encoding="utf-8"))
    line = SPARK_CHARS + "×"
    assert encodable(line, utf8_console) == line
    assert encodable(line, ascii_console) == "_.:-=+*#x"  # one for one: the best-epoch mark stays put
    assert encodable("▶ val acc ± sd … é", ascii_console) == "> val acc +/- sd ... ?"
    assert encodable("plain", ascii_console) == "plain"


@pytest.mark.parametrize("closed", [1, 2])
def test_a_command_with_stdout_or_stderr_closed_still_trains_without_a_traceback(tmp_path, closed):
    sums = write_fake_dataset(tmp_path / "data" / "mnist")
    other = 2 if closed == 1 else 1
    proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(sums), "train", str(write_config(tmp_path)),
                           "--runs-dir", str(tmp_path / "runs")], preexec_fn=lambda: os.close(closed),
                          stdout=subprocess.PIPE if other == 1 else None, stderr=subprocess.PIPE if other == 2 else None,
                          text=True, env={**os.environ, "TRICKRUN_DATA_DIR": str(tmp_path / "data")}, timeout=120)
    said = proc.stdout if other == 1 else proc.stderr
    assert proc.returncode == 0, said
    assert "Traceback" not in said
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert json.loads((run_dir / "summary.json").read_text())["status"] in ("completed", "early_stopped")
    if closed == 1:
        assert "note: stdout is closed: what this command prints there is lost" in said
    else:
        assert said.strip() == str(run_dir)  # the run directory, on the stdout that is open


def test_with_no_color_the_best_values_are_marked_as_in_a_pipe():
    from trickrun.analysis.document import Cell, Report, Section
    from trickrun.analysis.render import report_output

    section = Section("Results", ["metric", "a", "b"], [[Cell("acc", style="bold"), Cell("0.97", best=True), Cell("0.95")]],
                      footer=["best of each row in bold"])
    buf = __import__("io").StringIO()
    report_output(Report([section]), "table", Console(file=buf, width=80, force_terminal=True, no_color=True))
    assert "0.97*" in buf.getvalue() and "best of each row marked *" in buf.getvalue()


def test_messages_wrap_between_words_on_a_terminal_and_stay_one_line_in_a_pipe():
    from trickrun.display import say

    path = "/home/someone/" + "x" * 50 + "/runs"
    message = f"3 problems in the config:\n  - model.hidden: expected a list of widths, got 7 {path}"
    tty = Console(file=io.StringIO(), width=40, force_terminal=True, color_system="standard")
    say(tty, message, "error:", "bold red")
    shown = tty.file.getvalue()
    assert shown.startswith("\x1b[1;31merror:\x1b[0m 3 problems")  # the prefix styled, not the text
    lines = re.sub(r"\x1b\[[0-9;]*m", "", shown).splitlines()
    assert lines == ["error: 3 problems in the config:", "  - model.hidden: expected a list of",
                     "    widths, got 7", "    " + path]  # between words; the item's continuation under it; the path whole
    piped = Console(file=io.StringIO(), width=40)
    say(piped, message, "error:", "bold red")
    assert piped.file.getvalue() == f"error: {message}\n"
