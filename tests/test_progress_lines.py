"""The live displays fit the terminal: train's epoch line and bars, and the sweep's cell lines
and bar, at 80 columns keep what matters whole and at 120 show everything; below 80 the bars
drop their live numbers before their counts."""

from __future__ import annotations

import io
import re
from types import SimpleNamespace

import pytest
from rich.cells import cell_len
from rich.console import Console

from trickrun.progress import RichReporter, epoch_line
from trickrun.sweep.progress import RichSweepProgress, cell_line
from trickrun.sweep.states import CellState

RECORD = {"epoch": 12, "lr": 0.000904, "train_loss": 0.0593, "train_acc": 0.9829, "val_loss": 0.0659,
          "val_acc": 0.9729, "grad_norm": 0.0333, "epoch_s": 1.52}
LONG_CELL = "grid_lr-0.001_hidden-512x256_norm-batch_s1"


def console(width: int) -> Console:
    return Console(file=io.StringIO(), width=width, color_system=None, highlight=False)


def lines_of(con: Console) -> list[str]:
    return con.file.getvalue().splitlines()


def test_the_epoch_line_keeps_the_validation_numbers_at_80_and_shows_all_at_120():
    narrow, wide = epoch_line(RECORD, 30, 80), epoch_line(RECORD, 30, 120)
    assert len(narrow) <= 80 and len(wide) <= 120
    for text in ("epoch  12/30", "val loss 0.0659 acc 0.9729", "train loss 0.0593 acc 0.9829", "1.5s"):
        assert text in narrow and text in wide
    assert "grad" not in narrow and "grad 0.0333" in wide and "lr 0.000904" in wide
    assert epoch_line(RECORD, 30) == wide  # no width: everything, for logs
    assert epoch_line(RECORD, 30, 30).startswith("epoch  12/30")  # the epoch always stays


@pytest.mark.parametrize("width", [36, 40, 50, 80, 120])
def test_train_bars_and_epoch_lines_fit_the_terminal(width):
    con = console(width)
    reporter = RichReporter(con)
    reporter.start(epochs=30, batches=430, run_dir="runs/baseline-20261127-162050")
    reporter.batch(12, 200, 0.0593, 120, 128)
    reporter.epoch(RECORD)
    reporter.batch(13, 10, 0.0612, 121, 128)
    reporter.REDRAW_S = 0
    reporter.batch(13, 20, 0.0612, 121, 128)
    con.print(reporter.progress.get_renderable())
    reporter.close()
    out = lines_of(con)
    assert all(cell_len(line) <= width for line in out), out
    assert any(line.startswith("epoch  12/30") for line in out)
    bar = next(line for line in out if line.startswith("epoch 13"))
    epochs = next(line for line in out if line.startswith("epochs"))
    assert " 20/430 " in bar and " 12/30 " in epochs  # the counts stay whole at any width
    assert ("loss 0.0612" in bar) == ("val acc 0.9729" in epochs) == (width >= 50)  # as the room allows
    assert ("acc 0.9453" in bar) == (width >= 80)


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_train_bars_keep_their_length_from_frame_to_frame(width):
    con = console(width)
    reporter = RichReporter(con)
    reporter.REDRAW_S = 0
    reporter.start(epochs=30, batches=430, run_dir="runs/r")
    frames = []

    def frame():
        con.print(reporter.progress.get_renderable())
        frames.append([line for line in lines_of(con)[-2:]])

    frame()  # nothing measured yet
    reporter.batch(1, 200, 0.0593, 120, 128)
    frame()
    reporter.epoch(dict(RECORD, epoch=1))
    frame()  # the batch row starts over, the epoch row has its validation accuracy
    reporter.batch(2, 10, 0.0612, 121, 128)
    frame()
    reporter.close()
    counts = {tuple(re.search(r"\d+/\d+ ", line).end() for line in f) for f in frames}
    assert len(counts) == 1, frames  # the bars end, and the counts sit, in the same columns in every frame


def plan(name: str = LONG_CELL, index: int = 6):
    return SimpleNamespace(cell=SimpleNamespace(index=index, name=name))


def end(error: str | None = None, **summary):
    return SimpleNamespace(summary=summary, error=error)


def test_a_cell_line_leaves_out_time_then_epochs_to_fit():
    done = end(test={"acc": 0.9735}, epochs_run=12, wall_s=14.2)
    line = f"cell 7 {LONG_CELL}: early_stopped"
    assert cell_line(plan(), done, CellState.EARLY_STOPPED) == f"{line}, 12 epochs, test acc 0.9735, 14s"
    assert cell_line(plan(), done, CellState.EARLY_STOPPED, 95) == f"{line}, 12 epochs, test acc 0.9735"
    assert cell_line(plan(), done, CellState.EARLY_STOPPED, 85) == f"{line}, test acc 0.9735"
    # the name, its state and its accuracy stay even when they do not fit: the terminal wraps them
    assert cell_line(plan(), done, CellState.EARLY_STOPPED, 70) == f"{line}, test acc 0.9735"
    one = end(test={"acc": 0.9735}, epochs_run=1, wall_s=1.2)
    assert cell_line(plan(), one, CellState.COMPLETED) == f"cell 7 {LONG_CELL}: completed, 1 epoch, test acc 0.9735, 1s"


def test_an_interrupted_cell_without_a_summary_claims_nothing_about_its_epochs():
    # its worker killed by a second Ctrl-C may have finished epochs, which the re-run resumes
    line = cell_line(plan(), end(), CellState.INTERRUPTED)
    assert line == f"cell 7 {LONG_CELL}: interrupted before its worker could report (a re-run of the sweep goes on with it)"


def test_a_failed_cell_line_cuts_its_reason_to_the_room_left():
    failed = end("worker exited with code 1: " + "MemoryError " * 30)
    line = cell_line(plan(), failed, CellState.FAILED, 80)
    assert len(line) <= 80 and line.startswith(f"cell 7 {LONG_CELL}: FAILED (worker exited") and line.endswith("…)")
    assert len(cell_line(plan(), failed, CellState.FAILED)) > 200  # whole (to 200) in a log


@pytest.mark.parametrize("width", [40, 80, 120])
def test_the_sweep_bar_and_cell_lines_fit_the_terminal(width):
    con = console(width)
    progress = RichSweepProgress(con)
    progress.start(total=12, done=7)
    progress.cell_started(plan())
    progress.cell_ended(plan(), end(test={"acc": 0.9735}, epochs_run=12, wall_s=14.2), CellState.COMPLETED)
    con.print(progress.progress.get_renderable())
    progress.close()
    out = lines_of(con)
    assert all(cell_len(line) <= width for line in out), out
    assert out[1].startswith("cell 7 ") and "test acc 0.9735" in " ".join(out)
    bar = next(line for line in out if line.startswith("cells"))
    assert " 8/12 " in bar and "running 0" in bar and ("failed 0" in bar) == (width >= 80)


def test_a_display_quiet_after_a_gone_stderr_still_closes(monkeypatch):
    # close stops rich's live display (its refresh thread, the streams it redirected)
    from trickrun.display import QuietOnFailure

    monkeypatch.setattr("trickrun.display.stream_to_devnull", lambda stream: None)
    calls = []

    class Display:
        def note(self, text):
            calls.append("note")
            raise BrokenPipeError(32, "Broken pipe")

        def close(self):
            calls.append("close")

    display = QuietOnFailure(Display())
    display.note("a")
    display.note("b")  # quiet now: not tried again
    display.close()
    assert calls == ["note", "close"]
