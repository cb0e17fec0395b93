"""One registry of output formats: every format has exactly one renderer, and every command's
--format takes values from it."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from trickrun.analysis.render import RENDERERS, RICH_ROWS_MAX, Cell, OutputFormat, Report, Section, report_output
from trickrun.ensemble import EnsembleFormat


def render(report: Report, fmt) -> str:
    buf = io.StringIO()
    report_output(report, fmt, Console(file=buf, width=120, highlight=False, soft_wrap=False))
    return buf.getvalue()


def test_every_output_format_has_one_renderer():
    assert set(RENDERERS) == set(OutputFormat)


def test_ensemble_formats_are_the_registry_s_but_csv():
    assert [f.value for f in EnsembleFormat] == [f.value for f in OutputFormat if f is not OutputFormat.csv]


@pytest.mark.parametrize("fmt", list(OutputFormat))
def test_each_format_renders_a_report(fmt):
    report = Report([Section("T", ["a", "b"], [[Cell("1"), Cell("x")]])], [{"a": 1, "b": "x"}])
    out = render(report, fmt)
    expected = {"table": "x", "markdown": "| 1 | x |", "csv": "a,b\n1,x\n", "json": '{"a": 1, "b": "x"}'}
    assert expected[fmt.value] in out


def test_a_document_replaces_the_records_in_json_only():
    report = Report([Section("T", ["a"], [[Cell("1")]])], [{"a": 1}], document={"whole": True})
    assert render(report, OutputFormat.json) == '{\n  "whole": true\n}\n'
    assert render(report, OutputFormat.csv) == "a\n1\n"


def test_a_table_too_long_for_rich_is_plain_aligned_text_and_an_empty_one_says_so():
    rows = [[Cell(f"run{i}"), Cell("ok")] for i in range(RICH_ROWS_MAX + 1)]
    out = render(Report([Section("many", ["name", "status"], rows)]), OutputFormat.table)
    assert out.splitlines()[:2] == ["name    status", "run0    ok"]
    assert render(Report([Section("0 runs", ["name"], [], empty="no runs")]), OutputFormat.table) == "no runs\n"


def test_best_values_are_marked_where_bold_cannot_show():
    section = Section("Results", ["metric", "a", "b"], [[Cell("acc"), Cell("0.97", best=True), Cell("0.95")]],
                      footer=["best of each row in bold"])
    report = Report([section])

    def table(**console) -> str:
        buf = io.StringIO()
        report_output(report, OutputFormat.table, Console(file=buf, width=80, highlight=False, **console))
        return buf.getvalue()

    piped = table()  # a file: no styles
    assert "0.97*" in piped and "0.95*" not in piped and "best of each row marked *" in piped
    styled = table(force_terminal=True, color_system="standard")
    assert "\x1b[1" in styled and "*" not in styled and "best of each row in bold" in styled


def test_a_star_in_a_cell_or_a_note_is_text_in_markdown_and_never_doubled_when_piped():
    section = Section("Epochs", ["epoch", "val acc"], [[Cell("3 *", best=True), Cell("0.97")]], footer=["* best epoch"])
    md = render(Report([section]), OutputFormat.markdown)
    assert "| **3 \\*** | 0.97 |" in md and "\\* best epoch" in md  # not "**3 ***", not a list item
    piped = render(Report([section]), OutputFormat.table)
    assert "3 *" in piped and "3 **" not in piped
