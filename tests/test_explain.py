"""`trickrun explain THING`: a key's meaning, values, formulas and default, read from the code;
the lesson's claim and the committed report's verdict; a config file's comment and its
difference from the baseline; the nearest names for anything else. Every view fits 80
columns and uses the room at 120."""

from __future__ import annotations

import inspect
import math
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trickrun.analysis.analyze import config_diff
from trickrun.cli import app
from trickrun.config import ALIASES, CHOICES, REGISTRIES, load_config
from trickrun.configdoc import CHECKOUT, all_keys, choice_formulas, filled_in, first_paragraph, formula_table
from trickrun.errors import ConfigError
from trickrun.explain import explain, rendered_lines
from trickrun.lesson.claims import CLAIMS
from trickrun.lesson.published import COMMITTED_REPORT, load_verdicts, read_verdicts
from trickrun.lesson.runner import claim_specs, config_folder
from trickrun.nn import optim
from trickrun.nn.initializers import INITIALIZERS
from trickrun.nn.optim import OPTIMIZERS
from trickrun.sweep.plan import resolve_cells

runner = CliRunner()
WIDTHS = (80, 120)


def text_of(thing: str, width: int = 80, **kwargs) -> str:
    lines = rendered_lines(explain(thing, **kwargs), width)
    assert all(len(line) <= width for line in lines), [line for line in lines if len(line) > width]
    assert all(line == line.rstrip() for line in lines)  # no padding past the content
    return "\n".join(lines)


def flat(text: str) -> str:
    """Words only: what wrapping at any width leaves the same."""
    return " ".join(text.replace("\n", " ").split())


@pytest.mark.parametrize("width", WIDTHS)
def test_a_choice_key_shows_meaning_default_every_formula_and_the_verdict(width):
    text = flat(text_of("model.init", width))
    assert text.startswith("model.init how the weights are drawn before training")
    assert "default he" in text
    for name in INITIALIZERS.names():  # each formula, as the initializer's own docstring states it
        assert f"{name} {first_paragraph(INITIALIZERS.get(name))}" in text
    assert "(also accepted: xavier)" in text and "(also accepted: kaiming)" in text
    claim = next(c for c in CLAIMS if c.number == 2)
    assert f"The lesson, claim 2: {claim.title} {claim.lesson}" in text
    committed = COMMITTED_REPORT.read_text()
    head = re.search(r"## Claim 2:.*?\*\*Verdict: (\w+)\*\* (\([^)]*\))", committed, re.S)
    assert f"Verdict in docs/lesson.md: {head[1]} {head[2]}" in text  # e.g. "contradicted (3 supported, 2 contradicted)"
    section = committed.split("## Claim 2:")[1]
    effect = re.search(r"\| test acc: sigmoid glorot > sigmoid normal \| [^|]+ \| \d+ \| ([^|]+) \|", section)[1]
    assert effect.startswith("-0.")  # the contradicted row, as the report wrote it
    assert f"test acc: sigmoid glorot > sigmoid normal effect {effect.strip()}: contradicted" in text


def test_the_view_uses_the_room_of_a_wide_terminal():
    narrow, wide = text_of("model.init", 80), text_of("model.init", 120)
    assert len(wide.splitlines()) < len(narrow.splitlines())
    assert max(map(len, wide.splitlines())) > 80


def test_optimizer_formulas_come_from_the_module_docstring_table():
    formulas, notes, source = choice_formulas("optimizer.name")
    assert source == "trickrun/nn/optim.py"
    assert set(formulas) == set(OPTIMIZERS.names())
    assert formulas["sgd"] == "w <- w - lr g"
    assert formulas["momentum"].startswith("v <- gamma v - lr g; w <- w + v")
    assert formulas["adam"].startswith("m <- b1 m + (1 - b1) g; v <- b2 v + (1 - b2) g^2; w <- w - lr (m / (1 - b1^t))")
    assert notes == ("The formulas, in the conventions chosen (t counts steps from 1):", "")
    for line in optim.__doc__.splitlines():  # every table row's first words are in its formula
        name, _, rest = line.strip().partition(" ")
        if line.startswith("  ") and name in formulas:
            assert formulas[name].startswith(" ".join(rest.split()))


def test_formula_table_reads_continuation_lines_and_the_notes_around_it():
    doc = """Title.

    The rules:

      a   x + 1
          continued
      b   y
    where x is one.

    Other text.
    """
    assert formula_table(doc, ("a", "b")) == ({"a": "x + 1 continued", "b": "y"}, ("The rules:", "where x is one."))
    assert formula_table("No table here.", ("a",)) == ({}, ("", ""))


def test_a_line_of_prose_starting_with_a_choice_name_is_no_row():
    doc = """Title.

    - Weight norm trains v and g. v takes the
      weight slot, so decay acts on v only.
    """
    assert formula_table(doc, ("weight",)) == ({}, ("", ""))


def test_weight_norm_is_explained_by_its_own_docstring_and_no_note_is_prose():
    from trickrun.nn.layers import NORMS

    formulas, notes, _ = choice_formulas("model.norm")
    assert formulas["weight"] == first_paragraph(NORMS.get("weight"))
    assert "w = g v / ||v||" in formulas["weight"] and "Conventions" not in " ".join(notes)


@pytest.mark.parametrize("key", sorted(REGISTRIES))
def test_every_formula_is_its_choices_docstring_or_a_table_row(key):
    """A formula from the module's table sits on a line `  NAME  formula`: no prose."""
    registry = REGISTRIES[key]
    formulas, _, _ = choice_formulas(key)
    doc = inspect.getmodule(registry.get(registry.names()[0])).__doc__
    for name, text in formulas.items():
        if text != first_paragraph(registry.get(name)):
            assert re.search(rf"^  {re.escape(name)}  +{re.escape(text.split()[0])}", inspect.cleandoc(doc), re.M), \
                (name, text)


@pytest.mark.parametrize("key", sorted(REGISTRIES))
def test_every_choice_of_every_registry_has_a_formula(key):
    formulas, _, source = choice_formulas(key)
    assert source and (CHECKOUT / source).is_file()
    assert set(formulas) == set(CHOICES[key]) and all(formulas.values()), formulas


def test_every_key_has_a_meaning_and_says_what_it_accepts():
    keys = all_keys()
    assert "model.init" in keys and "early_stopping.enabled" in keys
    missing = [key for key, (_, _, meaning) in keys.items() if not meaning]
    assert not missing
    assert "a number in [0, 1)" in flat(text_of("model.dropout"))
    assert "a list of whole numbers, each in [1, 65536]" in flat(text_of("model.hidden"))


def test_an_unbounded_end_of_a_range_is_shown_open_as_validation_refuses_infinity():
    from trickrun.ranges import RANGES, Bounds

    assert str(Bounds(0, lo_open=True)) == "(0, inf)" and str(Bounds(1)) == "[1, inf)"
    assert str(Bounds(hi=1)) == "(-inf, 1]" and str(Bounds(0, 1, hi_open=True)) == "[0, 1)"
    assert not [key for key, bounds in RANGES.items() if "inf]" in str(bounds) or "[-inf" in str(bounds)]
    assert "a number in (0, inf), or null" in flat(text_of("optimizer.lr"))


def test_a_default_resolve_fills_in_is_given_per_choice_it_depends_on():
    text = filled_in("optimizer.lr")
    assert text.startswith("null, filled in by optimizer.name: ")
    for name in OPTIMIZERS.names():
        group = next(part for part in text.split(": ", 1)[1].split(", ") if name in part.split(" ")[0].split("/"))
        assert math.isclose(float(group.rsplit(" ", 1)[1]), OPTIMIZERS.get(name).default_lr)
    assert filled_in("optimizer.momentum") == "null, filled in as 0.9"
    assert filled_in("data.train_limit") is None  # null stays null: all the examples
    assert "default null, filled in by schedule.name:" in flat(text_of("schedule.gamma"))


def test_a_key_the_lesson_does_not_test_says_so():
    assert "The lesson makes no claim about optimizer.lr" in flat(text_of("optimizer.lr"))


def test_a_unique_last_part_names_its_key():
    assert text_of("init").startswith("model.init")
    assert "init is also" not in text_of("init")


def test_a_last_part_that_is_also_a_choice_and_a_config_says_so(monkeypatch):
    monkeypatch.chdir(CHECKOUT)
    text = flat(text_of("momentum"))
    assert text.startswith("optimizer.momentum")
    assert ("momentum is also a value of optimizer.name (trickrun explain optimizer.name) and a config "
            "(trickrun explain configs/momentum.yaml).") in text


def test_a_last_part_several_keys_share_is_said_to_be_ambiguous():
    with pytest.raises(ConfigError, match=r"'patience' is the last part of 2 keys: schedule.patience, "
                                          r"early_stopping.patience; give one in full"):
        explain("patience")


@pytest.mark.parametrize("width", WIDTHS)
def test_a_config_file_shows_its_comment_and_its_difference_from_the_baseline(width, monkeypatch):
    monkeypatch.chdir(CHECKOUT)
    text = text_of("configs/dropout.yaml", width)
    comment = " ".join(line.lstrip("# ") for line in Path("configs/dropout.yaml").read_text().splitlines()
                       if line.startswith("#"))
    assert flat(comment) in flat(text)
    rows = [line.split() for line in text.splitlines() if line.startswith("  model.")]
    assert [row[:3] for row in rows] == [["model.dropout", "0.2", "0.5"]]  # one key differs
    assert "Against configs/baseline.yaml" in text


def test_a_key_the_chosen_schedule_or_optimizer_does_not_read_is_no_change(tmp_path, monkeypatch):
    monkeypatch.chdir(CHECKOUT)
    rows = [line.split() for line in text_of("configs/constant-lr.yaml", 120).splitlines() if line.startswith("  schedule.")]
    assert [row[:3] for row in rows] == [["schedule.name", "exponential", "constant"],
                                         ["schedule.gamma", "0.9", "unused"]]  # not 0.98: constant reads none
    (tmp_path / "baseline.yaml").write_text("schedule: {name: constant, gamma: 0.5}\noptimizer: {name: sgd}\n")
    (tmp_path / "same.yaml").write_text("schedule: {name: constant, gamma: 0.7, step_size: 3}\n"
                                        "optimizer: {name: sgd, beta1: 0.5}\n")
    assert "The same experiment as" in text_of(str(tmp_path / "same.yaml"), 120)


def test_unused_keys_are_those_the_chosen_rule_and_schedule_never_read():
    from trickrun.config import unused_keys

    cfg = load_config({"optimizer": {"name": "adamw"}, "schedule": {"name": "step"}})
    unused = unused_keys(cfg)
    assert {"optimizer.beta1", "optimizer.beta2", "optimizer.eps", "optimizer.weight_decay"}.isdisjoint(unused)
    assert {"optimizer.momentum", "optimizer.rho", "schedule.min_lr", "schedule.factor", "schedule.patience"} <= unused
    assert {"schedule.gamma", "schedule.step_size"}.isdisjoint(unused)


def test_a_config_of_the_checkout_is_found_from_another_folder(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    text = text_of("configs/dropout.yaml", 120)
    assert text.startswith(str(CHECKOUT / "configs" / "dropout.yaml")) and "model.dropout  0.2" in text


def test_the_baseline_and_a_sweep_file_say_what_they_are(monkeypatch):
    monkeypatch.chdir(CHECKOUT)
    assert "This is the baseline" in text_of("configs/baseline.yaml")
    sweep = flat(text_of("configs/lesson/claim2-init.yaml"))
    assert "A sweep file" in sweep and "model.init: [normal, gaussian, lecun, glorot, he]" in sweep


def test_the_section_lists_its_keys_with_defaults():
    text = text_of("model")
    for key, (_, _, meaning) in all_keys().items():
        if key.startswith("model."):
            assert key in text
    assert "model.hidden [256, 128] hidden layer widths" in flat(text)


def test_cli_explain_prints_and_an_unknown_thing_gets_the_nearest_names(monkeypatch):
    monkeypatch.chdir(CHECKOUT)
    result = runner.invoke(app, ["explain", "model.init"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("model.init\n") and "glorot" in result.stdout
    result = runner.invoke(app, ["explain", "dropuot"])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert result.stderr.startswith("error: nothing called 'dropuot' to explain; nearest: model.dropout")
    assert "configs/dropout.yaml" in result.stderr
    result = runner.invoke(app, ["explain", "configs/dropuot.yaml"])
    assert result.exit_code == 2 and "nearest: configs/dropout.yaml" in result.stderr


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_a_folder_is_a_folder_with_or_without_its_slash(where, tmp_path, monkeypatch):
    monkeypatch.chdir(CHECKOUT if where == "checkout" else tmp_path)  # elsewhere: the checkout's, as for files
    for thing in ("configs", "configs/"):
        result = runner.invoke(app, ["explain", thing])
        assert result.exit_code == 2 and "Traceback" not in result.output
        assert result.stderr.startswith(f"error: {thing!r} is a folder; give a config file in it"), result.stderr


def test_a_report_the_user_names_must_be_a_lesson_report(tmp_path):
    (tmp_path / "notes.md").write_text("# Notes\n\nNo verdicts here.\n")
    (tmp_path / "binary.md").write_bytes(b"\xff\xfe\x00")
    cases = {tmp_path / "no-such.md": "no such file", tmp_path / "notes.md": "not a lesson report",
             tmp_path / "binary.md": "not a lesson report", tmp_path: "is a folder"}
    for path, why in cases.items():
        result = runner.invoke(app, ["explain", "model.init", "--report", str(path)])
        assert result.exit_code == 2, (path, result.output)
        assert f"error: --report {str(path)!r}: {why}" in " ".join(result.stderr.split()), result.stderr
        assert "trickrun lesson wrote" in result.stderr or "is a folder" in result.stderr
    good = runner.invoke(app, ["explain", "model.init", "--report", str(COMMITTED_REPORT)])
    assert good.exit_code == 0 and "Verdict in" in good.stdout


def test_without_report_the_committed_one_missing_is_said_quietly(monkeypatch, tmp_path):
    import trickrun.explain as explain_module

    monkeypatch.setattr(explain_module, "COMMITTED_REPORT", tmp_path / "gone.md")
    result = runner.invoke(app, ["explain", "model.init"])
    assert result.exit_code == 0 and "No lesson report at" in result.stdout


def test_an_alias_is_hinted_with_its_key():
    result = runner.invoke(app, ["explain", "xavier"])
    assert result.exit_code == 2
    assert "'xavier' is another name for 'glorot', a value of model.init" in result.stderr
    assert ALIASES["model.init"] == {"xavier": "glorot", "kaiming": "he"}


def test_verdicts_read_back_from_the_committed_report():
    verdicts = load_verdicts()
    assert sorted(verdicts) == [c.number for c in CLAIMS]
    for claim in CLAIMS:
        assert len(verdicts[claim.number].comparisons) == len(claim.comparisons)
        assert verdicts[claim.number].head
    assert [c.verdict for c in verdicts[2].comparisons] == ["supported", "contradicted", "supported", "supported",
                                                             "contradicted"]
    assert load_verdicts(Path("no/such/lesson.md")) is None


def test_verdicts_read_back_what_the_report_writes(tmp_path):
    """write_report, then read_verdicts: the same predictions, effects and verdicts."""
    from test_report_files import claim_results
    from trickrun.lesson.report import REPORT_FILE, _effect, _expect, write_report
    from trickrun.lesson.results import LessonOptions

    results = claim_results(tmp_path)
    path = write_report(results, LessonOptions(quick=True, out=tmp_path / "report"), 1, 1.0)
    assert path.name == REPORT_FILE
    (read,) = read_verdicts(path.read_text()).values()
    (result,) = results
    assert read.claim == result.claim.number and read.head
    assert [(c.predicted, c.effect) for c in read.comparisons] == [
        (_expect(o.comparison, result.threshold), _effect(o)) for o in result.outcomes]
    assert [c.verdict.split(" (")[0] for c in read.comparisons] == [o.verdict for o in result.outcomes]
    text = flat(text_of("schedule.name", 120, report=path))  # --report: that report's verdicts
    assert f"Verdict in {path}: {read.head}" in text
    missing = flat(text_of("schedule.name", 120, report=tmp_path / "none.md"))
    assert "No lesson report at" in missing


def test_every_claim_names_keys_its_sweeps_vary():
    for claim in CLAIMS:
        configs = [cfg.to_dict() for spec in claim_specs(claim, config_folder(), False, None)
                   for cfg in resolve_cells(spec)[1]]
        varied = {key for key, _ in config_diff(configs, ignore=("seed", "name"))}
        assert claim.keys and set(claim.keys) <= varied, (claim.number, claim.keys, varied)


def test_a_formula_table_s_preface_comes_before_it_and_choice_names_are_whole():
    text = " ".join(text_of("schedule.name", 80).split())
    assert text.index("on epoch W + 1:") < text.index("constant lr") < text.index("where k = e - W")
    for width in (60, 80, 120):
        assert "fashion-mnist" in text_of("data.dataset", width).split()
        assert "val_loss" in text_of("early_stopping.monitor", width).split()


@pytest.mark.parametrize("config", sorted(p.name for p in (CHECKOUT / "configs").glob("*.yaml")))
def test_every_config_of_the_checkout_is_explained_without_a_cut_word(config, monkeypatch):
    # A table squeezed its meaning column to a few letters a line ("mean…", "hidd…") where a
    # config changes long values; then each key gets a block of its own instead.
    monkeypatch.chdir(CHECKOUT)
    meanings, keys = all_keys(), config_diff_keys(f"configs/{config}")
    for width in (60, 80):
        text = text_of(f"configs/{config}", width)
        assert "…" not in text
        for key in keys:
            assert flat(meanings[key][2]) in flat(text), (key, width)  # every word of each meaning, whole


def config_diff_keys(path: str) -> list[str]:
    from trickrun.analysis.analyze import config_diff
    from trickrun.config import load_config, unused_keys

    configs = [load_config("configs/baseline.yaml"), load_config(path)]
    unused = [unused_keys(c) for c in configs]
    return [key for key, _ in config_diff([c.to_dict() for c in configs], ignore=("name",))
            if not all(key in u for u in unused)]


@pytest.mark.parametrize("section", ["model", "optimizer", "schedule", "early_stopping"])
def test_a_section_is_explained_without_a_cut_word_on_a_narrow_terminal(section):
    # At 40 columns the section's table left its meaning column a few letters ("mea…", "lea…").
    meanings = {k: m for k, (_, _, m) in all_keys().items() if k.startswith(section + ".")}
    for width in (30, 40, 80):
        text = text_of(section, width)
        assert "…" not in text
        for key, meaning in meanings.items():
            assert key in text.split() and flat(meaning) in flat(text), (key, width)
