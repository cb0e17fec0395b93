"""One PNG per claim, drawn with matplotlib's Agg backend from the claim's runs.

Curves are means over seeds with a band of ± one sample standard deviation (mean_band says at
which epochs); per-layer profiles are geometric means over seeds at the first and at the last
epoch. Bars of an accuracy start at 0, so their lengths compare (a dotted line marks chance, each bar is
labelled with its mean); an arm whose runs diverged says how many in its label, and an arm
with nothing finite to draw is named in the panel. FIGURES maps the name a claim declares
(claims.Claim.figure) to the function that draws it.
"""

from __future__ import annotations

import math
import statistics
from pathlib import Path
from typing import Any, Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..analysis.analyze import values_by_shared_epoch  # noqa: E402
from ..rundir.format import layer_order  # noqa: E402
from ..rundir.reader import Run  # noqa: E402
from .measures import CHANCE, clip_interval, diverged  # noqa: E402
from .verdicts import CONTRADICTED, INCONCLUSIVE, NO_PRACTICAL_EFFECT, SUPPORTED, Outcome  # noqa: E402
from .results import ClaimResult  # noqa: E402

DPI = 100
PANEL = (5.2, 3.6)  # inches per panel


def palette(names: Sequence[str]) -> dict[str, Any]:
    """One colour per name, the same in every panel of a figure."""
    colours = plt.get_cmap("tab10").colors
    return {name: colours[i % len(colours)] for i, name in enumerate(names)}


def arm_label(arm: str, runs: Sequence[Run]) -> str:
    """The arm's name, with how many of its runs diverged when any did."""
    count = sum(diverged(r) for r in runs)
    return f"{arm} ({count}/{len(runs)} diverged)" if count else arm


def note_not_drawn(ax, labels: Sequence[str]) -> None:
    """Name, inside the panel, the arms it could not draw (no finite value: they diverged)."""
    if labels:
        ax.text(0.02, 0.98, "not drawn, no finite value: " + "; ".join(labels), transform=ax.transAxes,
                va="top", fontsize=7, color="tab:red", wrap=True)


def arm_runs(result: ClaimResult) -> dict[str, list[Run]]:
    """The claim's runs by arm, in the claim's arm order."""
    groups: dict[str, list[Run]] = {arm: [] for arm in result.claim.arms}
    for run in result.runs:
        groups.setdefault(result.claim.arm(run.config), []).append(run)
    return {arm: runs for arm, runs in groups.items() if runs}


def mean_band(runs: Sequence[Run], key: str) -> tuple[list[int], list[float], list[float]]:
    """(epochs, mean, sd) of `key` over the runs with a finite value at each epoch, at the epochs
    every run that did not diverge recorded: where early stopping ended some runs sooner, a mean
    over those still going would follow the survivors. A diverged run counts until it diverged
    (its arm's label says how many did); an arm whose runs all diverged is drawn as far as any
    run went."""
    going = [r for r in runs if not diverged(r)]
    shared = set.intersection(*(set(r.epochs) for r in going)) if going else set().union(*(r.epochs for r in runs))
    by_epoch = values_by_shared_epoch([(r.epochs, r.series(key)) for r in runs], shared)
    epochs = [e for e, values in by_epoch.items() if values]
    means = [statistics.fmean(by_epoch[e]) for e in epochs]
    sds = [statistics.stdev(by_epoch[e]) if len(by_epoch[e]) > 1 else 0.0 for e in epochs]
    return epochs, means, sds


def curve_panel(ax, groups: dict[str, list[Run]], key: str, title: str, log: bool = False) -> None:
    colours = palette(list(groups))
    missing = []
    for arm, runs in groups.items():
        epochs, mean, sd = mean_band(runs, key)
        if not epochs:
            missing.append(arm_label(arm, runs))
            continue
        count = sum(diverged(r) for r in runs)
        ax.plot(epochs, mean, label=f"{arm} (n={len(runs)}" + (f", {count} diverged)" if count else ")"),
                color=colours[arm])
        ax.fill_between(epochs, [m - s for m, s in zip(mean, sd)], [m + s for m, s in zip(mean, sd)],
                        color=colours[arm], alpha=0.2, linewidth=0)
    ax.set_title(title)
    ax.set_xlabel("epoch")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if log:
        ax.set_yscale("log")
    ax.grid(alpha=0.3)
    note_not_drawn(ax, missing)


def layer_profile(runs: list[Run], key: str, last: bool) -> tuple[list[str], list[float | None]]:
    """Per layer (network order), the mean over runs of `key` at the first or last epoch."""
    layers = sorted({name for r in runs for name in r.layer_names()}, key=layer_order)
    means = []
    for layer in layers:
        values = []
        for run in runs:
            finite = [v for v in run.layer_series(layer, key) if v is not None and v > 0]
            if finite:
                values.append(finite[-1] if last else run.layer_series(layer, key)[0])
        values = [v for v in values if v is not None and math.isfinite(v) and v > 0]
        means.append(math.exp(statistics.fmean(math.log(v) for v in values)) if values else None)
    return layers, means


def profile_panel(ax, groups: dict[str, list[Run]], key: str, title: str) -> None:
    """Solid: epoch 1; dashed: last epoch. Geometric means (the values span decades)."""
    colours = palette(list(groups))
    missing = []
    for arm, runs in groups.items():
        drawn = False
        for last, style in ((False, "-"), (True, "--")):
            layers, means = layer_profile(runs, key, last)
            xs = [i for i, m in enumerate(means) if m is not None]
            if xs:
                ax.plot(xs, [means[i] for i in xs], style, marker=".", color=colours[arm],
                        label=arm_label(arm, runs) if not drawn else None)
                ax.set_xticks(range(len(layers)), [n.replace("hidden", "h") for n in layers], fontsize=7)
                drawn = True
        if not drawn:
            missing.append(arm_label(arm, runs))
    ax.set_yscale("log")
    ax.set_title(title + " (solid: epoch 1, dashed: last)")
    ax.set_xlabel("layer")
    ax.grid(alpha=0.3)
    note_not_drawn(ax, missing)


BAR_BASELINE = 0.0  # accuracy bars start here, so a bar's length is its accuracy


def bar_panel(ax, values: dict[str, list[float]], title: str) -> None:
    """Mean ± sd per arm of an accuracy, each value a dot: bars from 0 to the full range
    [0, 1], so no axis cut magnifies a gap; each bar labelled with its mean, chance dotted."""
    names = list(values)
    colours = palette(names)
    for i, name in enumerate(names):
        vals = values[name]
        if not vals:
            continue
        mean = statistics.fmean(vals)
        sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
        ax.bar(i, mean - BAR_BASELINE, bottom=BAR_BASELINE, yerr=sd, alpha=0.6, capsize=4, color=colours[name])
        ax.plot([i] * len(vals), vals, "k.", markersize=4)
        ax.text(i, min(mean + sd, 1.0) + 0.01, f"{mean:.4f}", ha="center", va="bottom", fontsize=6)
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.axhline(CHANCE, color="grey", linestyle=":", linewidth=1, label=f"chance ({CHANCE:g})")
    ax.set_ylim(BAR_BASELINE, 1.08)  # room for the labels above 1
    ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_ylabel(f"axis from {BAR_BASELINE:g}; labels: means", fontsize=7)
    ax.set_title(title)
    ax.grid(axis="y", alpha=0.3)


def _figure(panels: int, rows: int = 1):
    cols = math.ceil(panels / rows)
    fig, axes = plt.subplots(rows, cols, figsize=(PANEL[0] * cols, PANEL[1] * rows), squeeze=False)
    return fig, [ax for row in axes for ax in row]


def _save(fig, axes, path: Path, title: str) -> None:
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)


def _test_accs(result: ClaimResult) -> dict[str, list[float]]:
    """Per arm present, in the claim's order (so colours match the curves'), labelled with its
    diverged runs."""
    groups = arm_runs(result)
    return {arm_label(arm, groups.get(arm, [])): result.samples[arm].get("test_acc", [])
            for arm in result.claim.arms if arm in result.samples}


# Three-panel figures, as (kind, metrics key, title[, log scale]): "curve" is a mean curve per
# arm, "profile" a per-layer profile, "bar" the test accuracy per arm (the key is unused).
PANELS: dict[str, tuple[tuple, ...]] = {
    "curves": (("curve", "val_acc", "validation accuracy"), ("curve", "train_loss", "training loss", True),
               ("bar", "", "test accuracy (last epoch)")),
    "threshold": (("curve", "val_acc", "validation accuracy"), ("curve", "train_loss", "training loss", True),
                  ("bar", "", "test accuracy (last epoch)")),
    "residual": (("profile", "grad_norm", "weight-gradient norm"), ("profile", "act_std", "activation std"),
                 ("curve", "val_acc", "validation accuracy")),
    "overfitting": (("curve", "train_acc", "training accuracy"), ("curve", "val_acc", "validation accuracy"),
                    ("bar", "", "test accuracy")),
}
TITLES = {"residual": "Claim 3: plain vs residual deep MLP",
          "overfitting": "Claim 6: overfitting 1,000 examples, and four remedies"}


def panels(name: str) -> Callable[[ClaimResult, Path], None]:
    """The drawing function of the three-panel figure `name`."""

    def draw_panels(result: ClaimResult, path: Path) -> None:
        groups = arm_runs(result)
        fig, axes = _figure(3)
        for ax, (kind, key, title, *log) in zip(axes, PANELS[name]):
            if kind == "curve":
                curve_panel(ax, groups, key, title, log=bool(log and log[0]))
            elif kind == "profile":
                profile_panel(ax, groups, key, title)
            else:
                bar_panel(ax, _test_accs(result), title)
        if name == "threshold" and result.threshold is not None:
            axes[0].axhline(result.threshold, color="grey", linestyle=":", label=f"threshold {result.threshold:g}")
        _save(fig, axes, path, TITLES.get(name, f"Claim {result.claim.number}: {result.claim.title}"))

    draw_panels.__name__ = name
    return draw_panels


def layers(result: ClaimResult, path: Path) -> None:
    """Claim 2: a row per activation; act_std and grad_norm per layer for each init."""
    groups = arm_runs(result)
    activations = list(dict.fromkeys(arm.split()[0] for arm in groups))
    fig, axes = _figure(3 * len(activations), rows=len(activations))
    for row, act in enumerate(activations):
        mine = {arm.split()[1]: runs for arm, runs in groups.items() if arm.split()[0] == act}
        profile_panel(axes[3 * row], mine, "act_std", f"{act}: activation std")
        profile_panel(axes[3 * row + 1], mine, "grad_norm", f"{act}: weight-gradient norm")
        bar_panel(axes[3 * row + 2], {arm_label(i, runs): result.samples.get(f"{act} {i}", {}).get("test_acc", [])
                                      for i, runs in mine.items()}, f"{act}: test accuracy (diverged = 0.1)")
    _save(fig, axes, path, "Claim 2: per-layer statistics by initializer")


def over_rates(result: ClaimResult, path: Path) -> None:
    """Claims judged over a range of rates: test accuracy against learning rate per arm, and
    the arms' scores."""
    fig, axes = _figure(2)
    for name in result.claim.arms:
        points = []
        for arm, metrics in result.samples.items():
            if arm.startswith(f"{name} lr="):
                vals = metrics.get("test_acc", [])
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                points.append((float(arm.split("=", 1)[1]), statistics.fmean(vals), sd))
        if points:
            points.sort()
            axes[0].errorbar([p[0] for p in points], [p[1] for p in points], yerr=[p[2] for p in points],
                             marker="o", capsize=3, label=name)
    axes[0].set_xscale("log")
    axes[0].set_xlabel("learning rate")
    axes[0].set_title("test accuracy (diverged = 0.1)")
    axes[0].grid(alpha=0.3)
    bar_panel(axes[1], {n: result.samples.get(n, {}).get("score", []) for n in result.claim.arms},
              "score: mean test accuracy over the lr range")
    _save(fig, axes, path, f"Claim {result.claim.number}: {result.claim.title.split(':')[0].lower()} "
                           "over a range of learning rates")


FIGURES: dict[str, Callable[[ClaimResult, Path], None]] = {
    "layers": layers, "over_rates": over_rates, **{name: panels(name) for name in PANELS},
}


def draw(result: ClaimResult, folder: Path) -> Path:
    path = folder / result.claim.figure_file
    FIGURES[result.claim.figure](result, path)
    return path


VERDICT_COLORS = {SUPPORTED: "tab:green", CONTRADICTED: "tab:red", NO_PRACTICAL_EFFECT: "tab:blue",
                  INCONCLUSIVE: "tab:gray"}


def _in_sesoi_units(o: Outcome) -> tuple[float, float, float]:
    """The effect and its interval (cut at the measure's range, as the report's tables show it)
    in units of the comparison's SESOI, signed so that the predicted direction is positive:
    one axis for comparisons of any metric."""
    sign = (1.0 if o.comparison.higher else -1.0) / o.comparison.sesoi
    (ci_low, ci_high), _ = clip_interval(o.comparison.metric, o.ci, o.mean_base)
    low, high = sorted((ci_low * sign, ci_high * sign))
    return o.diff * sign, low, high


def forest(labelled: Sequence[tuple[str, Outcome]], path: Path) -> Path:
    """Every comparison's paired effect with its 95% interval, in SESOI units, the band of
    no practical effect (±1 SESOI) shaded and each verdict in its colour; a symmetric-log axis
    keeps effects of 0.5 and of 80 SESOIs legible on one figure."""
    shown = [(label + (" ‡" if clip_interval(o.comparison.metric, o.ci, o.mean_base)[1] else "")
              + (" §" if o.by_sign_flip else ""), o)
             for label, o in labelled if o.diff is not None and o.ci is not None]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(shown) + 1.4))
    ax.axvspan(-1, 1, color="0.9", label="within ±SESOI")
    ax.axvline(0, color="0.4", linewidth=0.8)
    for row, (label, o) in enumerate(reversed(shown)):
        effect, low, high = _in_sesoi_units(o)
        color = VERDICT_COLORS[o.verdict]
        ax.plot([low, high], [row, row], color=color, linewidth=2)
        ax.plot([effect], [row], "o", color=color, markersize=5)
    ax.set_yticks(range(len(shown)), [label for label, _ in reversed(shown)], fontsize=7)
    ax.set_xscale("symlog", linthresh=2)
    notes = [note for mark, note in (("‡", "‡ cut at the accuracy range [0, 1]"),
                                     ("§", "§ verdict by the sign-flip test"))
             if any(mark in label for label, _ in shown)]
    ax.set_xlabel("paired effect in the predicted direction, in units of its SESOI (95% CI)"
                  + "".join("\n" + note for note in notes))
    for verdict, color in VERDICT_COLORS.items():
        ax.plot([], [], color=color, linewidth=2, label=verdict)
    ax.legend(fontsize=7, loc="best")  # where it hides the fewest effects
    ax.set_title("Every comparison at a glance")
    fig.tight_layout()
    fig.savefig(path, dpi=DPI)
    plt.close(fig)
    return path
