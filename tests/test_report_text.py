"""The lesson report says what the code does and points only at what the repository holds: it
links the claims page (docs/lesson-claims.md) wherever it is written, the committed
docs/lesson.md names no missing file and carries the generator's current notes, and the
notes agree with the scaling and the sweeps they describe."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest

from test_report_files import claim_results
from trickrun.config import read_config_file
from trickrun.data import scaling
from trickrun.lesson.claims import CLAIMS
from trickrun.lesson.report import CLAIMS_PAGE, _anchor, claims_link, heading, write_report
from trickrun.lesson.results import ClaimResult, LessonOptions
from trickrun.lesson.runner import config_folder

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
COMMITTED = (DOCS / "lesson.md").read_text(encoding="utf-8")
LINK = re.compile(r"\]\(([^)#\s]+)(#[^)]*)?\)")
CODE_PATH = re.compile(r"`((?:trickrun|configs|docs|tests)/[^`\s]+)`")


@pytest.mark.parametrize("out", ["report", "docs", "deep/er/report"])
def test_the_report_links_the_claims_page_from_wherever_it_is_written(tmp_path, monkeypatch, out):
    monkeypatch.chdir(tmp_path)
    path = write_report(claim_results(tmp_path), LessonOptions(quick=True, out=Path(out)), 1, 1.0)
    text = path.read_text()
    assert "LESSON.md" not in text
    (target,) = [m[1] for m in LINK.finditer(text.split("\n## ")[0]) if m[1].endswith("lesson-claims.md")]
    assert (path.parent / target).resolve() == CLAIMS_PAGE


def test_without_the_checkout_the_report_names_the_page_without_a_link(monkeypatch, tmp_path):
    monkeypatch.setattr("trickrun.lesson.report.CLAIMS_PAGE", tmp_path / "missing.md")
    assert claims_link(tmp_path) == "`docs/lesson-claims.md` of trickrun's repository"


def test_the_committed_report_names_no_file_the_repository_lacks():
    targets = [m[1] for m in LINK.finditer(COMMITTED) if not m[1].startswith("http")]
    assert "lesson-claims.md" in {Path(t).name for t in targets}
    for target in targets:
        assert (DOCS / target).is_file(), target
    for path in CODE_PATH.findall(COMMITTED):
        assert (ROOT / path).exists(), path
    assert "LESSON.md" not in COMMITTED


def test_the_committed_report_links_the_page_as_the_generator_would_from_its_folder():
    command = re.search(r"--out (\S+)`", COMMITTED)[1]  # the folder it was written to, from the checkout
    assert claims_link(ROOT / command) in COMMITTED.splitlines()[2]


def test_the_committed_report_carries_every_note_the_generator_writes():
    for claim in CLAIMS:
        for note in claim.notes:
            assert f"> {note}" in COMMITTED, (claim.number, note)


def test_no_report_text_calls_standard_scaling_a_per_pixel_z_score():
    pixels = np.array([[0, 200], [0, 100], [0, 255]], dtype=np.uint8)  # a border pixel always 0
    (scaled,) = scaling.scale("standard", pixels)
    assert abs(scaled.mean()) < 1e-6 and abs(scaled.std() - 1) < 1e-6  # one mean and sd over all pixels
    assert scaled[:, 0].std() < 1e-6 and scaled[:, 0].mean() < -0.5  # not per pixel: the border is not 0
    for text in (COMMITTED, *(n for c in CLAIMS for n in c.notes), (ROOT / "README.md").read_text()):
        assert "z-score per pixel" not in text
    (note,) = [n for n in CLAIMS[0].notes if "`standard`" in n]
    assert "one mean" in note and "all training pixels" in note


def test_the_early_stopping_note_names_what_the_sweep_monitors():
    claim = next(c for c in CLAIMS if c.number == 6)
    sweep = read_config_file(config_folder() / "claim6-early-stopping.yaml")
    monitored = {"val_acc": "a higher validation accuracy", "val_loss": "a lower validation loss"}
    (note,) = [n for n in claim.notes if n.startswith("The early-stopping arm")]
    assert monitored[sweep["set"]["early_stopping.monitor"]] in note


def test_the_claims_page_has_each_claim_under_the_report_s_number_and_title():
    page = CLAIMS_PAGE.read_text(encoding="utf-8")
    titles = re.findall(r"^## (Claim \d+: .+)$", page, re.M)
    assert titles == [heading(c) for c in CLAIMS]
    for claim in CLAIMS:
        assert f"## {heading(claim)}" in COMMITTED  # the report's section the page's numbers refer to
        section = page.split(f"## {heading(claim)}")[1].split("\n## ")[0]
        for key in claim.keys:
            assert f"`{key}`" in section, (claim.number, key)
    assert "[the report that tests them](lesson.md)" in page and os.path.isfile(DOCS / "lesson.md")
    assert _anchor("Claim 1: Input scaling") == "claim-1-input-scaling"


def test_a_p_value_is_never_rounded_across_alpha():
    from trickrun.lesson.report import _p
    from trickrun.lesson.verdicts import ALPHA

    assert ALPHA == 0.05
    assert _p(0.0497) == "0.0497"  # two digits would print 0.05 beside a "significant" verdict
    assert _p(0.04999999) == "0.04999999"
    assert _p(0.0504) == "0.05" and _p(0.052) == "0.052" and _p(0.012) == "0.012"
    assert _p(1.7e-5) == "1.7e-05" and _p(0.0) == "0" and _p(None) == "—"
    for p in np.linspace(0.03, 0.07, 4001):
        assert (float(_p(p)) < ALPHA) == (p < ALPHA), p


def test_a_difference_the_same_on_every_seed_is_marked_beside_its_verdict():
    from trickrun.lesson.report import _verdict
    from trickrun.lesson.verdicts import Comparison, Outcome

    comparison = Comparison("epochs_to", "weight", "none", False, 1.0)
    # no spread: the t-test has nothing to say (p_t None), the sign-flip test decided alone
    tied = Outcome(4, comparison, 8, 7.9, 7.9, 0.0, (0.0, 0.0), 0.0, 1.0, None, 1.0, verdict="no practical effect")
    assert _verdict(tied) == "**no practical effect** (the same difference on every seed)"
    spread = Outcome(4, comparison, 8, 7.9, 8.0, -0.1, (-0.4, 0.2), 0.1, 0.5, 0.001, verdict="no practical effect")
    assert _verdict(spread) == "**no practical effect**"


def test_the_header_says_how_many_seeds_each_claim_ran_and_whether_they_were_declared(tmp_path):
    from trickrun.lesson.report import seeds_line

    (result,) = claim_results(tmp_path)
    n = len({run.seed for run in result.runs})
    assert n >= 2
    assert seeds_line([result], declared=False) == f"- **Seeds per arm:** {n} (claim 9)"
    assert seeds_line([result], declared=True).startswith(f"- **Seeds per arm:** {n} (claim 9); declared per claim")
    fewer = ClaimResult(CLAIMS[0], [r for r in result.runs if r.seed == result.runs[0].seed], {}, None)
    assert seeds_line([result, fewer], declared=False) == f"- **Seeds per arm:** 1 (claim 1), {n} (claim 9)"
    path = write_report([result], LessonOptions(quick=True, out=tmp_path / "r"), 1, 1.0)
    assert f"- **Seeds per arm:** {n} (claim 9)\n" in path.read_text()  # --quick: not the declared numbers


def test_every_verdict_of_the_committed_report_follows_from_its_row_by_the_stated_rule():
    table = COMMITTED.split("### Verdicts")[1].split("![")[0]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in table.splitlines() if line.startswith("| [")]
    assert len(rows) == sum(len(c.comparisons) for c in CLAIMS)
    for _, predicted, _, effect, sesoi, _, p, p_tost, verdict in rows:
        diff, sesoi = float(effect.split()[0]), float(sesoi)
        toward = diff > 0 if " > " in predicted else diff < 0
        if p != "—" and float(p) < 0.05:
            expected = "**supported**" if toward else "**contradicted**"
            assert verdict.startswith(expected), (predicted, verdict)
            printed = 0.5 * 10.0 ** -len(effect.split()[0].split(".")[1])  # the rounding of the printed effect
            if abs(abs(diff) - sesoi) > printed:  # too close to the SESOI to tell from the printed digits
                assert ("below practical size" in verdict) == (toward and abs(diff) < sesoi), (predicted, verdict)
        elif p_tost != "—" and float(p_tost) < 0.05:
            assert verdict == "**no practical effect**", (predicted, verdict)
        else:
            assert verdict.startswith("*inconclusive*"), (predicted, verdict)


def test_the_setup_sums_each_run_s_training_time_not_its_wall_time(tmp_path):
    from dataclasses import replace

    from trickrun.lesson.report import run_seconds, setup_lines

    (result,) = claim_results(tmp_path)
    # train_s (the training loop alone) well below wall_s (which adds loading and the test set);
    # the last run's summary lacks train_s, as an older one may: its wall_s stands in.
    runs = [replace(run, summary={**run.summary, "train_s": 1.25, "wall_s": 100.0}) for run in result.runs[:-1]]
    older = {k: v for k, v in result.runs[-1].summary.items() if k != "train_s"}
    runs.append(replace(result.runs[-1], summary={**older, "wall_s": 3.5}))
    expected = 1.25 * (len(runs) - 1) + 3.5
    assert expected < 60  # shown in seconds below
    assert run_seconds(runs) == pytest.approx(expected)
    result.runs = runs
    (seeds,) = [line for line in setup_lines(result, quick=True) if line.startswith("- **seeds:**")]
    assert f"({len(runs)} runs, {expected:.0f} s of training summed over them)" in seeds
    broken = replace(runs[0], summary={"train_s": float("nan"), "wall_s": True})  # neither a time
    assert run_seconds([broken, runs[-1]]) == 3.5


# An inconclusive comparison (differences 0.010, -0.005, 0.002 over 3 pairs) and its MDE at 80%
# power of a two-sided paired t at α 0.025, with the fewest seeds whose MDE reaches the SESOI
# 0.002, by scipy (at α 0.05 they were 0.0232 and 113):
#   d = np.subtract(a, b); sd = d.std(ddof=1)
#   mde = lambda n: (stats.t.ppf(1 - 0.025 / 2, n - 1) + stats.t.ppf(0.8, n - 1)) * sd / np.sqrt(n)
#   next(n for n in range(2, 10000) if mde(n) <= 0.002)
MDE_AT_T_ALPHA, SEEDS_AT_T_ALPHA = 0.031486030282852316, 137


def test_the_mde_is_quoted_at_the_level_the_doubled_p_needs_before_holm(tmp_path):
    from trickrun.analysis.stats import either_test_p
    from trickrun.lesson.report import _why, rule_lines
    from trickrun.lesson.verdicts import ALPHA, INCONCLUSIVE, T_ALPHA, Comparison, SeedValues, judge, outcomes_for

    assert T_ALPHA == 0.025
    # The rule doubles the smaller p: the t-test alone must reach T_ALPHA for the comparison to reach ALPHA.
    assert either_test_p(0.0249, 1.0) < ALPHA <= either_test_p(0.0251, 1.0)
    comparison = Comparison("test_acc", "arm", "base", True, 0.002)
    samples = {"arm": {"test_acc": SeedValues({0: 0.950, 1: 0.941, 2: 0.948})},
               "base": {"test_acc": SeedValues({0: 0.940, 1: 0.946, 2: 0.946})}}
    (outcome,) = judge(outcomes_for(1, [comparison], samples))
    assert outcome.verdict == INCONCLUSIVE
    assert outcome.mde == pytest.approx(MDE_AT_T_ALPHA, abs=1e-10)
    assert outcome.seeds_for_sesoi == SEEDS_AT_T_ALPHA
    why = _why(outcome)
    assert f"3 pairs detect {MDE_AT_T_ALPHA:.4f} at 80% power, {SEEDS_AT_T_ALPHA} seeds would detect 0.0020" in why
    assert "(both at α = 0.025 before Holm" in why and "α = 0.05 before Holm" not in why
    rule = " ".join(rule_lines(claim_results(tmp_path)))
    assert "at 80% power of a two-sided paired t-test at α = 0.025 without Holm" in rule


def _head_as_stated(verdicts: list[str]) -> str:
    """The claim's verdict by the sentence of the rule, written out apart from report.py."""
    if all(v == "supported" for v in verdicts):
        return "supported"
    if "contradicted" in verdicts:
        return "contradicted"
    if "supported" in verdicts:
        return "partly supported"
    return "no practical effect" if all(v == "no practical effect" for v in verdicts) else "inconclusive"


def test_the_rule_states_how_a_claim_s_verdict_follows_from_its_comparisons(tmp_path):
    from itertools import product

    from trickrun.lesson.report import CLAIM_HEAD_RULE, verdict_lines
    from trickrun.lesson.verdicts import VERDICTS, Comparison, Outcome

    def written_head(verdicts: list[str]) -> str:
        """The claim's verdict as its section writes it, for comparisons judged `verdicts`."""
        comparison = Comparison("test_acc", "arm", "base", True, 0.002)
        outcomes = [Outcome(9, comparison, 8, 0.9, 0.9, 0.01, (0.005, 0.015), 1.0, 0.001, verdict=v)
                    for v in verdicts]
        (head,) = [line for line in verdict_lines(ClaimResult(CLAIMS[-1], [], {}, None, outcomes))
                   if line.startswith("**Verdict: ")]
        return re.match(r"\*\*Verdict: ([^*]+)\*\*", head)[1]

    text = write_report(claim_results(tmp_path), LessonOptions(quick=True, out=tmp_path / "r"), 1, 1.0).read_text()
    rule = text.split("## The rule")[1].split("### Verdicts")[0]
    assert CLAIM_HEAD_RULE in rule
    assert ("**supported** when every one is supported (below practical size or not), else **contradicted** when "
            "any one is contradicted, else **partly supported** when any one is supported, else **no practical "
            "effect** when every one is no practical effect, and *inconclusive* otherwise.") in CLAIM_HEAD_RULE
    for n in (1, 2, 3):
        for verdicts in map(list, product(VERDICTS, repeat=n)):
            assert written_head(verdicts) == _head_as_stated(verdicts), verdicts
    assert written_head(["supported", "supported", "supported", "contradicted"]) == "contradicted"  # one is enough
