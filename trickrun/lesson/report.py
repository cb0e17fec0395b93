"""lesson.md: the machine and the rule at the top, then per claim what the lesson asserts,
the setup, a results table, its figure and the verdicts, in Markdown that reads on GitHub."""

from __future__ import annotations

import errno
import math
import os
import platform
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..analysis.analyze import config_diff, flatten
from ..analysis.stats import MAX_SEEDS, POWER
from ..atomic import replacing
from ..errors import ConfigError, RunDirError, TrickrunError
from ..rundir.files import finite_number
from ..rundir.reader import name_refused
from ..userinput import PATH_CHARS, short
from .claims import CLAIMS, Claim
from ..sweep.local import threads_per_job
from .figures import draw, forest
from .results import ClaimResult, LessonOptions
from .measures import clip_interval
from .verdicts import (ALPHA, CONFIDENCE, CONTRADICTED, INCONCLUSIVE, NO_PRACTICAL_EFFECT, SUPPORTED, T_ALPHA,
                       VERDICTS, Comparison, Outcome, SeedValues, seed_order)

REPORT_FILE = "lesson.md"
# The lesson's claims in the project's words, which the report links (docs/ of the checkout).
CLAIMS_PAGE = Path(__file__).resolve().parents[2] / "docs" / "lesson-claims.md"
FOREST_FILE = "verdicts.png"  # every comparison's effect and verdict in one figure
STAGING_PREFIX = ".lesson-staging-"  # a folder inside --out that holds the new report until it is complete
METRIC_LABELS = {
    "test_acc": "test acc",
    "val_acc": "val acc (scored epoch)",
    "gap": "train − val acc (scored epoch)",
    "score": "score (mean test acc over its lrs)",
    "grad_spread": "gradient spread (decades, epoch 1)",
}
SETUP_KEYS = (  # the setup's lines: (title, ((label, dotted config key), ...))
    ("data", (("", "data.dataset"), ("training examples", "data.train_limit"),
              ("validation examples", "data.val_size"), ("scale", "data.scale"))),
    ("model", (("hidden", "model.hidden"), ("activation", "model.activation"), ("init", "model.init"),
               ("norm", "model.norm"), ("dropout", "model.dropout"), ("residual", "model.residual"))),
    ("optimizer", (("", "optimizer.name"), ("lr", "optimizer.lr"), ("schedule", "schedule.name"),
                   ("clip norm", "clip.norm"), ("L2", "regularization.l2"))),
    ("training", (("epochs", "train.epochs"), ("batch", "train.batch_size"),
                  ("early stopping", "early_stopping.enabled"))),
)


def metric_label(metric: str, threshold: float | None) -> str:
    if metric == "epochs_to":
        return f"epochs to val acc ≥ {threshold:g}" if threshold is not None else "epochs to threshold"
    return METRIC_LABELS.get(metric, metric)


def md_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    def line(cells):
        return "| " + " | ".join(str(c).replace("|", "\\|") for c in cells) + " |"

    return [line(header), "|" + "|".join("---" for _ in header) + "|", *(line(r) for r in rows), ""]


def fmt(value: float | None, metric: str = "test_acc", signed: bool = False) -> str:
    if value is None:
        return "—"
    digits = 2 if metric in ("epochs_to", "grad_spread") else 4
    return f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def mean_sd(values: Sequence[float], metric: str) -> str:
    if not values:
        return "—"
    if len(values) == 1:
        return fmt(values[0], metric)
    return f"{fmt(statistics.fmean(values), metric)} ± {fmt(statistics.stdev(values), metric)}"


# ---------------------------------------------------------------------------------------
# The top: command, machine, rule, summary.


def machine_lines() -> list[str]:
    import numpy
    from threadpoolctl import threadpool_info

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        cpu = platform.processor() or "unknown"
    blas = ", ".join(f"{i.get('internal_api')} {i.get('version')} ({i.get('architecture', '?')})"
                     for i in threadpool_info() if i.get("user_api") == "blas")
    return [f"- **CPU:** {cpu}, {os.cpu_count()} cores",
            f"- **BLAS:** {blas or 'none found by threadpoolctl'}",
            f"- **Software:** Python {platform.python_version()}, NumPy {numpy.__version__}, {platform.system()}",
            f"- **Date:** {time.strftime('%Y-%m-%d %H:%M %Z')}"]


def seeds_line(results: Sequence[ClaimResult], declared: bool) -> str:
    """How many seeds each claim ran, claims grouped by that number; `declared`: the numbers the
    claims declare for the full report."""
    by_count: dict[int, list[int]] = {}
    for r in results:
        by_count.setdefault(len({run.seed for run in r.runs}), []).append(r.claim.number)
    groups = ", ".join(f"{n} (claim{'s' if len(c) > 1 else ''} {', '.join(map(str, c))})"
                       for n, c in sorted(by_count.items()))
    why = ("; declared per claim before the runs, from the power each comparison had in pilot runs on other seeds "
           "(trickrun/lesson/claims.py)") if declared else ""
    return f"- **Seeds per arm:** {groups}{why}"


def rule_lines(results: Sequence[ClaimResult]) -> list[str]:
    m = sum(1 for r in results for o in r.outcomes if o.p is not None)
    lines = [
        "## The rule", "",
        "Every comparison below was declared before any run: a metric, an arm, the arm it is measured "
        "against, the direction the lesson predicts, and the smallest effect of interest (SESOI) in the "
        "metric's units. Runs of the same seed share their initial weights, batch order and dropout stream, "
        "so each comparison pairs the two arms on the seeds both have: the effect is the mean of the per-seed "
        f"differences (arm − baseline) with its {CONFIDENCE:.0%} paired t interval (n − 1 degrees of freedom), "
        "and *won* is the share of seeds on which the arm beats the baseline in the predicted direction. "
        "Whether the arms differ is asked of two tests declared together: the paired t-test, and the exact "
        "sign-flip permutation test, which assumes nothing about the differences' shape (when a few seeds of one "
        "arm collapse to chance, the differences are skewed and the t interval is wide, though the arm may win on "
        "every seed); a comparison's p is the smaller of the two, doubled (Bonferroni over the two tests). "
        f"Holm's correction is applied over all {m} testable comparisons of this report at α = {ALPHA:g}, once "
        "to that p and once to the equivalence tests' p. A comparison is "
        f"**{SUPPORTED}** when that test is significant in the predicted direction (marked *below "
        f"practical size* when the effect is smaller than the SESOI), **{CONTRADICTED}** when significant "
        f"against it, **{NO_PRACTICAL_EFFECT}** when otherwise the two one-sided tests against ±SESOI are "
        f"significant (the effect is shown to lie within ±SESOI), and *{INCONCLUSIVE}* otherwise, also when "
        f"fewer than two seeds pair (those take no part in the corrections). When every seed has the same "
        "difference (collapsed arms score the same accuracy on every seed), the t-test's p is 0 or 1 whatever "
        "the number of seeds, so the sign-flip test decides alone (its p doubled all the same), and equivalence "
        f"is its one-sided form, p = 1/2^n when the difference lies within ±SESOI. {CLAIM_HEAD_RULE} For an "
        f"inconclusive comparison the report gives the minimal detectable effect (MDE) at {POWER:.0%} power of "
        f"a two-sided paired t-test at α = {T_ALPHA:g} without Holm (the doubled p is below {ALPHA:g} only "
        f"when the t-test's own p is below {T_ALPHA:g}), for the seeds it had, and how many seeds would detect "
        f"the SESOI (“> {MAX_SEEDS}” beyond that). An accuracy cannot leave [0, 1]: an interval of an accuracy "
        "difference is cut where it would put the arm's mean outside that range given the baseline's mean "
        "over the same seeds, and marked ‡. A verdict whose smaller p is the sign-flip test's says *by the sign-flip "
        "test*: its t interval may then hold 0, and *won* shows the seeds the test counted. The verdicts are "
        "applied by code (trickrun/lesson/verdicts.py).", "",
        "Measures: *test acc* is the test accuracy of the weights the run ended with (the best epoch's "
        "where early stopping restores them); a run that diverged counts as chance, 0.1. The *scored epoch* "
        "is the epoch of those weights; *train − val acc* is the training accuracy recorded during that "
        "epoch minus the validation accuracy after it. *Epochs to val acc ≥ t* is when the validation accuracy "
        "first reaches t, in epochs, read off the straight line from the last validation below t to the first at or "
        "above it (an untrained net, epoch 0, is taken at chance, 0.1), so that two runs that cross within the same "
        "epoch still differ by how far into it; a run that never reaches t counts as its maximum epochs + 1.", "",
    ]
    rows = []
    for r in results:
        for o in r.outcomes:
            rows.append([f"[{r.claim.number}](#{_anchor(heading(r.claim))})", _expect(o.comparison, r.threshold),
                         *_outcome_cells(o)])
    return lines + ["### Verdicts", ""] + md_table(["claim", "predicted", *OUTCOME_HEADER], rows)


OUTCOME_HEADER = ("n pairs", f"effect [{CONFIDENCE:.0%} CI]", "SESOI", "won", "Holm p", "Holm TOST p", "verdict")


def _outcome_cells(o: Outcome) -> list[str]:
    metric = o.comparison.metric
    won = "—" if o.won is None else f"{round(o.won * o.n_pairs)}/{o.n_pairs}"
    return [str(o.n_pairs), _effect(o), fmt(o.comparison.sesoi, metric), won, _p(o.p_holm), _p(o.p_tost_holm),
            _verdict(o)]


def heading(claim: Claim) -> str:
    return f"Claim {claim.number}: {claim.title}"


def _anchor(title: str) -> str:
    """GitHub's anchor of a heading."""
    return "".join(c for c in title.lower().replace(" ", "-") if c.isalnum() or c == "-")


def _expect(c: Comparison, threshold: float | None) -> str:
    return f"{metric_label(c.metric, threshold)}: {c.arm} {'>' if c.higher else '<'} {c.baseline}"


def clipped_interval(o: Outcome) -> tuple[tuple[float, float], bool] | None:
    """The effect's interval, cut to what the measure's range allows the arm's mean given the
    baseline's (accuracies in [0, 1]); and whether it was cut."""
    return None if o.ci is None else clip_interval(o.comparison.metric, o.ci, o.mean_base)


def _effect(o: Outcome) -> str:
    metric = o.comparison.metric
    if o.diff is None:
        return "—"
    text = fmt(o.diff, metric, signed=True)
    interval = clipped_interval(o)
    if interval is not None:
        (low, high), cut = interval
        text += f" [{fmt(low, metric, signed=True)}, {fmt(high, metric, signed=True)}]" + ("‡" if cut else "")
    return text


def _p(p: float | None) -> str:
    """Two significant digits, more where rounding would put p on the other side of
    ALPHA (0.0497 is not shown as 0.05); 0 when the differences do not vary at all."""
    if p is None:
        return "—"
    if p == 0:
        return "0"
    text, digits = (f"{p:.2g}" if p >= 1e-4 else f"{p:.1e}"), 2
    while (float(text) < ALPHA) != (p < ALPHA) and digits < 17:
        digits += 1
        text = f"{p:.{digits}g}"
    return text


def _seeds(n: int | None) -> str:
    return f"> {MAX_SEEDS}" if n is None else str(n)


def _verdict(o: Outcome) -> str:
    metric = o.comparison.metric
    # A difference the same on every seed has no spread: the sign-flip test alone judged it.
    marks = " (the same difference on every seed)" if o.no_spread else ""
    marks += " (by the sign-flip test)" if o.by_sign_flip else ""
    if o.verdict == SUPPORTED:
        return f"**{SUPPORTED}**" + (" (below practical size)" if o.below_practical_size else "") + marks
    if o.verdict == INCONCLUSIVE:
        if o.p is None:
            return f"*{INCONCLUSIVE}* (untestable)"
        if o.no_spread:
            return f"*{INCONCLUSIVE}*{marks} ({o.seeds_for_sesoi} seeds for the sign-flip test)"
        return f"*{INCONCLUSIVE}* (MDE {fmt(o.mde, metric)}; {_seeds(o.seeds_for_sesoi)} seeds for the SESOI)"
    return f"**{o.verdict}**" + marks


# ---------------------------------------------------------------------------------------
# A claim's section.


def setup_lines(result: ClaimResult, quick: bool) -> list[str]:
    runs = result.runs
    if not runs:
        return ["No run of this claim finished."]
    varied = dict(config_diff([r.config for r in runs], ignore=("seed", "name")))
    flat = flatten(runs[0].config)
    parts = []
    for title, keys in SETUP_KEYS:
        shown = [f"{label} {_value(flat[k])}".strip() for label, k in keys if k in flat and k not in varied]
        extra = ", 10000 test examples (the MNIST test set)" if title == "data" else ""
        parts.append(f"- **{title}:** " + ", ".join(shown) + extra)
    seeds = sorted({r.seed for r in runs}, key=seed_order)
    parts.append("- **varied:** " + ("; ".join(f"`{k}` ∈ {{{', '.join(dict.fromkeys(map(_value, vs)))}}}"
                                               for k, vs in varied.items()) or "nothing"))
    parts.append(f"- **seeds:** {', '.join(map(str, seeds))} ({len(runs)} runs, {_duration(run_seconds(runs))} "
                 "of training summed over them); sweep files: "
                 + ", ".join(f"`configs/lesson/{f}`" for f in result.claim.sweeps)
                 + (" with the `--quick` overrides " + ", ".join(f"`{o}`" for o in result.claim.quick) if quick else ""))
    return parts + [""]


def run_seconds(runs: Sequence[Any]) -> float:
    """The runs' own training time (summary.json), so a resumed report still counts every run:
    `train_s`, the training loop alone; `wall_s` for a run whose summary lacks it."""
    total = 0.0
    for run in runs:
        summary = run.summary or {}
        seconds = finite_number(summary.get("train_s"))
        total += seconds if seconds is not None else (finite_number(summary.get("wall_s")) or 0.0)
    return total


def _duration(seconds: float) -> str:
    return f"{seconds / 60:.1f} min" if seconds >= 60 else f"{seconds:.0f} s"


def _value(value: Any) -> str:
    """As YAML writes it: null, true, false."""
    if isinstance(value, bool) or value is None:
        return {None: "null", True: "true", False: "false"}[value]
    return str(value)


def arms_table(result: ClaimResult) -> list[str]:
    claim = result.claim
    header = ["arm", "n", *(metric_label(m, result.threshold) for m in claim.metrics), "diverged"]
    rows = []
    for arm in claim.arms:
        metrics = result.samples.get(arm)
        if metrics is None:
            rows.append([arm, "0", *("—" for _ in claim.metrics), "—"])
            continue
        n = max(len(v) for v in metrics.values())
        diverged = metrics.get("diverged")
        rows.append([arm, str(n), *(_counted(metrics.get(m, []), m, n) for m in claim.metrics),
                     f"{int(sum(diverged))}/{len(diverged)}" if diverged else "—"])
    return md_table(header, rows)


def _counted(values: Sequence[float], metric: str, n: int) -> str:
    """mean_sd, with its own count when fewer of the arm's n runs have the measure (a run that
    diverged in its first epoch has no validation accuracy, one with a zero gradient no spread)."""
    return mean_sd(values, metric) + (f" (n={len(values)})" if 0 < len(values) < n else "")


def over_rates_table(result: ClaimResult) -> list[str]:
    """Claims judged over a range of rates: per arm, the test accuracy at each rate (those of its
    score in bold) and its score."""
    cells = {}
    for arm, metrics in result.samples.items():
        if " lr=" in arm:
            name, lr = arm.split(" lr=")
            cells[(name, float(lr))] = metrics
    rates = sorted({lr for _, lr in cells})
    rows = []
    for name in result.claim.arms:
        scored = (result.claim.rates or {}).get(name, ())
        accs = []
        for lr in rates:
            text = mean_sd(cells.get((name, lr), {}).get("test_acc", []), "test_acc")
            accs.append(f"**{text}**" if any(math.isclose(lr, r) for r in scored) and text != "—" else text)
        diverged = [d for (n, _), m in cells.items() if n == name for d in m.get("diverged", [])]
        score = result.samples.get(name, {}).get("score", [])
        rows.append([name, str(len(score)), *accs, mean_sd(score, "score"), f"{int(sum(diverged))}/{len(diverged)}"])
    return md_table(["arm", "n", *(f"lr {lr:g}" for lr in rates), "score", "diverged"], rows)


TABLES: dict[str, Callable[[ClaimResult], list[str]]] = {"arms": arms_table, "over_rates": over_rates_table}


def verdict_lines(result: ClaimResult) -> list[str]:
    rows = [[_expect(o.comparison, result.threshold), f"{fmt(o.mean_arm, o.comparison.metric)} vs "
             f"{fmt(o.mean_base, o.comparison.metric)}", *_outcome_cells(o)] for o in result.outcomes]
    lines = md_table(["predicted", "means (paired seeds)", *OUTCOME_HEADER], rows) + unpaired_lines(result)
    verdicts = [o.verdict for o in result.outcomes]
    caveats = [o for o in result.outcomes if o.verdict != SUPPORTED or o.below_practical_size]
    if verdicts and all(v == SUPPORTED for v in verdicts):
        lines.append(f"**Verdict: supported** — all {len(verdicts)} comparisons hold beyond seed noise"
                     + (":" if caveats else "."))
    else:
        summary = ", ".join(f"{verdicts.count(v)} {v}" for v in VERDICTS if v in verdicts)
        lines.append(f"**Verdict: {_claim_head(verdicts)}** ({summary}). The data do not support the lesson "
                     "here in full:")
    lines.append("")
    for o in caveats:
        lines.append(f"- {_expect(o.comparison, result.threshold)}: {_why(o)}")
    if caveats:
        lines.append(f"- see the table above and the figure, which show the {len(result.runs)} runs behind it.")
    return lines + [""]


def unpaired_lines(result: ClaimResult) -> list[str]:
    """A line per comparison whose two arms have values on different seeds: it pairs only the
    seeds both have, so the others are named, each with the arm that has it."""
    lines = []
    for o in result.outcomes:
        c = o.comparison
        seeds = {arm: set(result.samples.get(arm, {}).get(c.metric, SeedValues()).seeds) for arm in (c.arm, c.baseline)}
        alone = [(arm, sorted(seeds[arm] - seeds[other], key=seed_order))
                 for arm, other in ((c.arm, c.baseline), (c.baseline, c.arm))]
        left_out = [f"{', '.join(map(str, s))} of {arm}" for arm, s in alone if s]
        if left_out:
            lines.append(f"- {_expect(c, result.threshold)}: paired on the {o.n_pairs} seed(s) both arms have; "
                         f"left out, without a value of the other arm: seed(s) {' and '.join(left_out)}")
    return lines + [""] if lines else []


# How _claim_head (and verdict_lines, for all supported) derive a claim's verdict, as the rule states it.
CLAIM_HEAD_RULE = (f"A claim's own verdict follows from its comparisons': **{SUPPORTED}** when every one is "
                   f"{SUPPORTED} (below practical size or not), else **{CONTRADICTED}** when any one is "
                   f"{CONTRADICTED}, else **partly {SUPPORTED}** when any one is {SUPPORTED}, else "
                   f"**{NO_PRACTICAL_EFFECT}** when every one is {NO_PRACTICAL_EFFECT}, and *{INCONCLUSIVE}* "
                   "otherwise.")


def _claim_head(verdicts: list[str]) -> str:
    if CONTRADICTED in verdicts:
        return CONTRADICTED
    if SUPPORTED in verdicts:
        return "partly supported"
    return NO_PRACTICAL_EFFECT if all(v == NO_PRACTICAL_EFFECT for v in verdicts) else INCONCLUSIVE


def _why(o: Outcome) -> str:
    sesoi = fmt(o.comparison.sesoi, o.comparison.metric)
    if o.p is None:
        return (f"cannot be tested ({o.n_pairs} seed(s) both arms have; the paired tests need two)")
    if o.verdict == SUPPORTED:
        return f"the effect {_effect(o)} holds beyond seed noise but is smaller than the SESOI {sesoi}"
    if o.verdict == CONTRADICTED:
        return f"the effect {_effect(o)} goes against the lesson, beyond seed noise (Holm p {_p(o.p_holm)})"
    if o.verdict == NO_PRACTICAL_EFFECT:
        return f"the effect {_effect(o)} lies within ±{sesoi} (Holm TOST p {_p(o.p_tost_holm)} < {ALPHA:g})"
    predicted = (o.diff or 0) * (1 if o.comparison.higher else -1) > 0
    direction = "points the predicted way" if predicted else "does not point the predicted way"
    if o.no_spread:
        return (f"the effect {_effect(o)} {direction}, the same on each of the {o.n_pairs} seeds, so the sign-flip "
                f"test decides alone: neither it (Holm p {_p(o.p_holm)}) nor its equivalence form against ±{sesoi} "
                f"(Holm TOST p {_p(o.p_tost_holm)}) is below {ALPHA:g}; {o.seeds_for_sesoi} seeds the same would "
                "decide it before Holm")
    mde = fmt(o.mde, o.comparison.metric)
    return (f"the effect {_effect(o)} {direction}, within seed noise (Holm p {_p(o.p_holm)} ≥ "
            f"{ALPHA:g}) and not shown within ±{sesoi}; {o.n_pairs} pairs detect {mde} at {POWER:.0%} power, "
            f"{_seeds(o.seeds_for_sesoi)} seeds would detect {sesoi} (both at α = {T_ALPHA:g} before Holm, the "
            f"t-test's level for a doubled p below {ALPHA:g})")


def claim_lines(result: ClaimResult, quick: bool, figure: Path) -> list[str]:
    claim = result.claim
    lines = [f"## {heading(claim)}", "", f"**The lesson:** {claim.lesson}", "",
             "**Setup:**", "", *setup_lines(result, quick), "**Results** (mean ± sample sd over seeds, n runs):", "",
             *TABLES[claim.table](result), f"![Claim {claim.number}]({figure.name})", ""]
    for note in claim.notes:
        lines += [f"> {note}", ""]
    if result.notes:
        lines += ["**Problems while running:**", "", *(f"- {n}" for n in result.notes), ""]
    return lines + ["**Verdict:**", "", *verdict_lines(result)]


def claims_link(out: Path) -> str:
    """A Markdown link to the claims page from the report's folder `out`; only its name when
    trickrun runs without its checkout (an installed copy has no docs/)."""
    if not CLAIMS_PAGE.is_file():
        return "`docs/lesson-claims.md` of trickrun's repository"
    return f"[docs/lesson-claims.md]({os.path.relpath(CLAIMS_PAGE, Path(out).resolve())})"


def report_text(results: Sequence[ClaimResult], opts: LessonOptions, jobs: int, wall_s: float,
                figures: Path) -> str:
    """lesson.md's text; each claim's figure is drawn into the folder `figures`."""
    order = {c.number: i for i, c in enumerate(CLAIMS)}
    results = sorted(results, key=lambda r: order[r.claim.number])
    lines = ["# What the lesson claims, tested", "",
             f"Each claim of the lesson on training tricks ({claims_link(opts.out)} states them in trickrun's "
             "words), tested on MNIST with trickrun.", "",
             f"- **Command:** `{opts.command()}`",
             f"- **Time:** {wall_s / 60:.1f} min for this command (finished runs it found are not counted), "
             f"{jobs} cell{'' if jobs == 1 else 's'} at a time"
             + (f", each with {threads_per_job(jobs)} BLAS thread(s)" if opts.backend == "local" else ""),
             seeds_line(results, declared=opts.seeds is None and opts.seed_list is None and not opts.quick),
             *machine_lines()]
    if opts.quick:
        seeds = len({run.seed for result in results for run in result.runs})
        lines += ["", f"> **Quick mode:** a small subset of the data, few epochs and {seeds} seed(s): a smoke test "
                  "of the report, whose verdicts say little about the lesson."]
    lines += ["", *rule_lines(results)]
    labelled = [(f"{r.claim.number}: {_expect(o.comparison, r.threshold)}", o) for r in results for o in r.outcomes]
    lines += [f"![Every comparison at a glance]({forest(labelled, figures / FOREST_FILE).name})", ""]
    for result in results:
        lines += claim_lines(result, opts.quick, draw(result, figures))
    return "\n".join(lines) + "\n"


def write_report(results: Sequence[ClaimResult], opts: LessonOptions, jobs: int, wall_s: float) -> Path:
    """Write lesson.md and the figures into opts.out, all or nothing: everything is written into
    a staging folder inside it first, so a full disk or a crash leaves the previous report as it
    was (and no part of a file); the figures, then lesson.md, are then renamed into place.
    ConfigError when opts.out cannot be a folder, RunDirError when it cannot be written."""
    out = opts.out
    try:
        out.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=STAGING_PREFIX, dir=out))
    except OSError as err:
        raise out_folder_error(out, err) from None
    try:
        text = report_text(results, opts, jobs, wall_s, staging)
        with replacing(staging / REPORT_FILE) as (f, _):
            f.write(text.encode("utf-8"))
        staged = sorted(p for p in staging.iterdir() if p.name != REPORT_FILE)
        for figure in staged:
            _fsync(figure)  # durable before it replaces the previous figure
        for figure in [*staged, staging / REPORT_FILE]:  # lesson.md last: it refers to the figures
            os.replace(figure, out / figure.name)
    except OSError as err:
        raise out_folder_error(out, err) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out / REPORT_FILE


def _fsync(path: Path) -> None:
    with open(path, "rb") as f:
        os.fsync(f.fileno())


def out_folder_error(out: Path, err: OSError) -> TrickrunError:
    """The error to show when the report folder `out` cannot be made or written, with the fix."""
    if err.errno == errno.ENAMETOOLONG:
        return ConfigError(f"--out {short(str(out), PATH_CHARS)}: {name_refused(err)}; give a shorter one, "
                           "e.g. --out lesson-report")
    blocker = next((p for p in (out, *out.parents) if os.path.exists(p) and not os.path.isdir(p)), None)
    if blocker is not None or isinstance(err, (NotADirectoryError, FileExistsError)):
        where = f"{blocker} is a file" if blocker is not None else f"{err.strerror.lower()}"
        return ConfigError(f"--out {out}: {where}, not a folder; give a folder for lesson.md and the figures, "
                           "e.g. --out lesson-report")
    if err.errno == errno.ENOSPC:
        return RunDirError(f"cannot write the report in {out}: no space left on the device; the previous report "
                           "is unchanged. Free some space and run the same command again (finished runs are skipped)")
    return RunDirError(f"cannot write the report in {out}: {err.strerror or err}; give a folder you can write "
                       "to with --out DIR (finished runs are skipped when you run it again)")
