"""Every table reads at 80 columns and uses the room at 120: each view of ls, show, compare (runs
and --group), the sweep's leaderboard and dry run, and the ensemble, rendered at both widths, has
every header word whole (or spelled out in a legend or a left-out line), every row label whole, no
line wider than the terminal and no padding after the last character."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from runfactory import curve_records, make_run
from trickrun.analysis import render
from trickrun.analysis.layout import fit
from trickrun.analysis.leaderboard import leaderboard_section
from trickrun.analysis.render import Cell, Section, draw_tables
from trickrun.cli import app
from trickrun.ensemble import EnsembleResult, Member, Score, ensemble_section
from trickrun.rundir.reader import load_run

runner = CliRunner()
WIDTHS = (80, 120)
DEEP = tuple(f"hidden{i}" for i in range(1, 7)) + ("output",)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """What a learner's runs folder holds after the tour and a small sweep."""
    root = tmp_path / "runs"
    make_run(root, "baseline", stamp="20261127-162050", epochs=30, final_acc=0.982, test_acc=0.9829,
             status="early_stopped")
    make_run(root, "normal-init", stamp="20261127-162653", epochs=40, final_acc=0.93, test_acc=0.9365,
             **{"model.init": "normal"})

    def vanish(epoch: int, layer: dict) -> None:
        layer["grad_norm"] = 10.0 ** (DEEP.index(layer["name"]) - 6)

    make_run(root, "sigmoid-deep", stamp="20261127-162840", final_acc=0.11, test_acc=0.0974,
             records=curve_records(9, layers=DEEP, activation="sigmoid", layer_fn=vanish),
             **{"model.hidden": [256] * 6, "model.activation": "sigmoid"})
    records = curve_records(12, overfit_after=6)
    for r in records:
        r["penalty"], r["clip_fraction"] = 1.234e-4 * r["epoch"], 0.25
    make_run(root, "weight-decay", stamp="20261127-162958", records=records, **{"regularization.l2": 1e-4})
    make_run(root, "live", stamp="20261127-170000", epochs=3, status="running")
    make_run(root, "boom", stamp="20261127-170500", epochs=2, status="diverged")
    for s in (0, 1):
        for lr in (0.01, 0.001):
            for norm in ("none", "batch"):
                make_run(root, f"lr_lr-{lr}_norm-{norm}_s{s}", seed=s, stamp=f"20261128-1{s}0000",
                         final_acc=0.97 + 0.004 * s + (0.005 if norm == "batch" else 0) - lr,
                         **{"optimizer.lr": lr, "model.norm": norm})
    return root


def tokens(text: str) -> set[str]:
    return {t.strip(",;:()") for t in text.split()}


def assert_readable(out: str, sections: list[Section], width: int, records: bool = False) -> None:
    """With `records`, the headers of a row's label (and the cells before it) may be missing:
    a record begins with the label itself."""
    lines = out.splitlines()
    too_wide = [line for line in lines if cell_len(line) > width]
    assert not too_wide, f"wider than {width}: {too_wide[:3]}"
    padded = [line for line in lines if line != line.rstrip()]
    assert not padded, f"padded: {padded[:3]}"
    cut = [t for t in out.split() if t.endswith("…") and t != "…"]
    assert not cut, f"cut short: {cut}"
    words = tokens(out)
    for section in sections:
        if not section.rows:
            continue
        forms = [section] + ([section.narrow] if section.narrow else [])  # either may be the one drawn
        whole = [form for form in forms
                 if all(w.strip(",;:()") in words for c in form.columns[form.label + 1 if records else 0:]
                        for w in c.split())
                 and all(tokens(row[form.label].text) <= words for row in form.rows)]
        assert whole, f"{section.title}: a header or row label lost a word at {width} columns"


def drawn(sections: list[Section], width: int) -> str:
    buf = io.StringIO()
    draw_tables(sections, Console(file=buf, width=width, highlight=False, soft_wrap=False, color_system=None))
    return buf.getvalue()


VIEWS = {
    "ls": ["ls"],
    "show": ["show", "weight-decay"],
    "show-deep": ["show", "sigmoid-deep"],
    "compare-2": ["compare", "baseline", "normal-init"],
    "compare-deep": ["compare", "baseline", "normal-init", "sigmoid-deep"],
    "compare-metric": ["compare", "baseline", "weight-decay", "live", "boom", "--metric", "train_loss"],
    "compare-6": ["compare", "lr_lr-0.01_norm-none_s0", "lr_lr-0.01_norm-batch_s0", "lr_lr-0.001_norm-none_s0",
                  "lr_lr-0.001_norm-batch_s0", "lr_lr-0.01_norm-none_s1", "lr_lr-0.01_norm-batch_s1"],
    "compare-8": ["compare", "lr_*"],
    "group-2": ["compare", "lr_lr-0.01_*", "--group"],
    "group-4": ["compare", "lr_*", "--group"],
    "group-all": ["compare", "lr_*", "--group", "--all"],
}


def view_at(monkeypatch, view: str, width: int) -> tuple[str, list[Section]]:
    """The view's stdout at `width` columns, and the sections it drew."""
    seen: list[Section] = []
    original = render.draw_tables
    monkeypatch.setattr(render, "draw_tables", lambda sections, console: (seen.extend(sections),
                                                                          original(sections, console)))
    result = runner.invoke(app, VIEWS[view], env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    assert seen
    return result.stdout, seen


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("view", list(VIEWS))
def test_every_view_reads_at_80_and_120_columns(root, monkeypatch, view, width):
    assert_readable(*view_at(monkeypatch, view, width), width)


def test_the_room_is_used_when_there_is_more(root):
    narrow = runner.invoke(app, ["ls"], env={"COLUMNS": "80"}).stdout
    wide = runner.invoke(app, ["ls"], env={"COLUMNS": "120"}).stdout
    assert "left out to fit 80 columns: started, duration" in " ".join(narrow.split())
    assert "started" in wide.splitlines()[1] and "left out" not in wide
    compare = {w: runner.invoke(app, VIEWS["compare-2"], env={"COLUMNS": str(w)}).stdout for w in WIDTHS}
    assert "grad first → last" in compare[80] and "hidden1 grad first → last" in compare[120]  # long form at 80
    longest = {w: max(len(t) for t in compare[w].split() if set(t) <= set(render.SPARK_CHARS)) for w in WIDTHS}
    assert longest[120] > longest[80]  # longer sparklines


@pytest.mark.parametrize("width", WIDTHS)
def test_the_sweep_leaderboard_and_dry_run_read_at_both_widths(root, tmp_path, width):
    runs = [load_run(p) for p in sorted(root.glob("lr_*"))]
    section = leaderboard_section(runs, f"sweep lr: {len(runs)} runs")
    assert_readable(drawn([section], width), [section], width)
    config = tmp_path / "baseline-with-a-long-name.yaml"
    config.write_text("model:\n  hidden: [16]\n")
    result = runner.invoke(app, ["sweep", str(config), "--grid", "optimizer.lr=0.01,0.001",
                                 "--grid", "model.hidden=[[256,128],[512,256]]", "--seeds", "2", "--dry-run"],
                           env={"COLUMNS": str(width)})
    assert result.exit_code == 0, result.output
    rows = [line for line in result.stdout.splitlines() if "baseline-with-a-long-name_lr" in line]
    assert len(rows) == 8 and all(cell_len(line) <= width for line in result.stdout.splitlines())


@pytest.mark.parametrize("width", WIDTHS)
def test_the_ensemble_table_reads_at_both_widths(width):
    members = [Member(Path(f"runs/lr_lr-0.001_norm-batch_s{s}-20261128-100000"), {"seed": s}, None) for s in range(3)]
    result = EnsembleResult(members, [Score(0.06 + s / 100, 0.9826 + s / 1000) for s in range(3)],
                            Score(0.0496, 0.9856), {}, 10000, 1.0)
    section = ensemble_section(result)
    assert_readable(drawn([section], width), [section], width)


# --- the fitting itself --------------------------------------------------------------------


def section_of(widths: list[int], **options) -> Section:
    columns = ["name"] + [f"column number {i}" for i in range(1, len(widths))]
    row = [Cell("x" * w) for w in widths]
    return Section("T", columns, [row], **options)


def test_headers_wrap_at_spaces_before_anything_is_abbreviated_or_left_out():
    section = section_of([10, 6, 6, 6], short={"column number 3": "c3"}, optional=["column number 2"])
    assert [c.header for c in fit(section, 70).columns][1:] == ["column number 1", "column number 2",
                                                               "column number 3"]
    # 34 cells with every header on three lines; the 6 left give three headers a line back each
    layout = fit(section, 40)
    assert [c.header for c in layout.columns][1:] == ["column\nnumber 1", "column\nnumber 2", "column\nnumber 3"]
    assert layout.notes == [] and layout.least_width == 40


def test_abbreviations_come_with_a_legend_and_left_out_columns_are_named():
    section = section_of([10, 2, 2, 2], short={"column number 3": "c3"}, optional=["column number 2"])
    layout = fit(section, 30)  # stacked headers need 34 cells, "c3" 30
    assert [c.header.replace("\n", " ") for c in layout.columns] == ["name"] + ["column number 1",
                                                                                "column number 2", "c3"]
    assert layout.notes == ["short headers: c3 = column number 3"]
    layout = fit(section, 24)
    assert [c.header.replace("\n", " ") for c in layout.columns] == ["name", "column number 1", "c3"]
    assert layout.notes == ["short headers: c3 = column number 3",
                            "left out to fit 24 columns: column number 2 (a wider terminal, or --format "
                            "markdown, shows them)"]


def test_the_narrow_form_is_taken_before_any_column_is_left_out():
    narrow = Section("T", ["name", "all"], [[Cell("x"), Cell("y")]])
    layout = fit(section_of([10, 30, 30], optional=["column number 2"], narrow=narrow), 50)
    assert layout.section is not None and layout.section.columns == ["name", "all"] and layout.notes == []


def test_a_row_label_wraps_at_its_spaces_and_is_never_left_out():
    section = Section("T", ["group", "value"], [[Cell("model.norm=batch optimizer.lr=0.01"), Cell("0.9" * 10)]],
                      optional=["group"])
    out = drawn([section], 60)
    assert "model.norm=batch" in out and "optimizer.lr=0.01" in out and "left out" not in out
    assert max(cell_len(line) for line in out.splitlines()) <= 60


def test_a_label_wider_than_the_terminal_folds_rather_than_losing_characters():
    section = Section("T", ["run", "acc"], [[Cell("r" * 70), Cell("0.9766")]])
    out = drawn([section], 40)
    assert out.count("r") == 70  # every character of the label (a record's, with no header)
    assert "acc  0.9766" in out and max(cell_len(line) for line in out.splitlines()) <= 40


def test_a_table_too_long_for_rich_is_plain_text_fitted_too():
    rows = [[Cell(f"lr_lr-0.001_norm-batch_s{i}-20261128-100000"), Cell("completed"), Cell("12"), Cell("0.9766"),
             Cell("0.9771"), Cell("2026-11-28 10:00:00"), Cell("14s")] for i in range(render.RICH_ROWS_MAX + 1)]
    from trickrun.analysis.listing import COLUMNS, OPTIONAL, SHORT

    section = Section("many", COLUMNS, rows, short=SHORT, optional=OPTIONAL)
    out = drawn([section], 80)
    assert max(cell_len(line) for line in out.splitlines()) <= 80
    assert "left out to fit 80 columns: started, duration" in " ".join(out.split())


# --- narrower than any table ---------------------------------------------------------------


@pytest.mark.parametrize("width", (44, 50, 60))
@pytest.mark.parametrize("view", list(VIEWS))
def test_below_80_columns_a_view_too_wide_for_any_table_is_drawn_as_records(root, monkeypatch, view, width):
    """Every header and label whole, no line wider than the terminal, nothing cut with …, and
    every column shown: a table that cannot fit becomes a block per row."""
    assert_readable(*view_at(monkeypatch, view, width), width, records=True)


def test_a_left_out_line_names_only_what_the_command_takes(tmp_path):
    # sweep has no --format: its hint must not send a user to an option it refuses
    config = tmp_path / "baseline-with-a-long-name.yaml"
    config.write_text("model:\n  hidden: [16]\n")
    result = runner.invoke(app, ["sweep", str(config), "--grid", "optimizer.lr=0.01,0.001", "--dry-run",
                                 "--runs-dir", str(tmp_path / "runs")], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    text = " ".join(result.stdout.split())
    assert "left out to fit 80 columns" in text and "(a wider terminal, or the output piped" in text
    assert "--format" not in text


# --- records -------------------------------------------------------------------------------


def test_records_put_a_value_beside_its_name_or_under_it_and_skip_empty_fields():
    from trickrun.analysis.render import record_lines

    section = Section("T", ["run", "status", "path", "flags", "note"],
                      [[Cell("baseline"), Cell("completed"), Cell("runs/baseline-20261127-162050"), Cell(""),
                        Cell("a note of several words")]])
    plain = lambda cell, room: render.wrap_cells(render.cell_text(cell), room, fold=True)  # noqa: E731
    assert record_lines(section, 36, plain) == [
        "baseline",
        "   status  completed",
        "   path",  # its one word does not fit beside its name: under it, whole
        "     runs/baseline-20261127-162050",
        "   note    a note of several words",  # the empty flags: no line
    ]
    value_only = Section("Summary", ["field", "value"], [[Cell("status"), Cell("completed")]])
    assert record_lines(value_only, 40, plain) == ["status", "   completed"]  # no "value" name to repeat


def test_records_of_many_rows_are_plain_lines_reading_as_the_rich_ones():
    rows = [[Cell(f"run-{i}"), Cell("completed"), Cell(f"{0.9 + i / 10000:.4f}"), Cell("2026-11-27 16:20:50")]
            for i in range(render.RICH_ROWS_MAX + 1)]
    section = Section("many", ["run", "status", "test acc", "started"], rows)
    many = drawn([section], 30)
    few = drawn([Section("many", section.columns, rows[:3])], 30)
    assert many.splitlines()[:13] == few.splitlines()[:13]


def test_record_values_are_not_drawn_in_their_names_dim_style():
    buf = io.StringIO()
    section = Section("T", ["run", "status", "epochs", "path"],
                      [[Cell("baseline"), Cell("completed"), Cell("30"), Cell("runs/baseline-20261127-162050")]])
    draw_tables([section], Console(file=buf, width=30, force_terminal=True, color_system="standard"))
    assert "\x1b[2m   epochs  \x1b[0m30" in buf.getvalue()  # the name dim, the value not


def test_a_table_that_would_leave_out_more_columns_than_it_keeps_is_drawn_as_records():
    columns = ["name", *(f"column {i}" for i in range(1, 7))]
    section = Section("T", columns, [[Cell("x" * 30), *(Cell("12345678") for _ in range(6))]],
                      optional=columns[1:])
    assert fit(section, 55).fits is False  # a table of the name and two columns would fit: records instead
    wider = fit(section, 70)
    kept = len(wider.section.columns) - 1
    assert wider.fits and 0 < 6 - kept <= kept  # a table again once it keeps at least what it leaves out


def test_on_a_very_narrow_terminal_a_short_value_stays_beside_its_name():
    from trickrun.analysis.render import record_lines

    section = Section("T", ["run", "val acc @best", "status"], [[Cell("b"), Cell("0.9820"), Cell("early_stopped")]])
    plain = lambda cell, room: render.wrap_cells(render.cell_text(cell), room, fold=True)  # noqa: E731
    # 8 columns beside the names: too few to wrap prose in, enough for a number
    assert record_lines(section, 26, plain) == ["b", "   val acc @best  0.9820", "   status", "     early_stopped"]
