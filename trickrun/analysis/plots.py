"""Figures of runs or of seed groups, written as PNG files with matplotlib's Agg backend (no
display needed).

One figure, four panels, all per epoch: loss and accuracy, each with training (dashed) and
validation (solid) on the same axes, so the gap between them (overfitting) shows; the learning
rate; and the per-layer gradient norm. Every run, or every seed group, is one colour. A group is
drawn as the mean over its finished runs with a band of ± one sample standard deviation, at the
epochs every one of them recorded. The best epoch is starred on the validation curves: a run's own
(its early-stopping monitor's), or for a group the best of its mean monitor curve. In the
gradient panel the layers are told apart by line style (by colour when there is one line).
Losses, learning rate and gradient norms use a log scale when their range calls for it.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..atomic import replacing  # noqa: E402
from ..errors import ConfigError, RunDirError  # noqa: E402
from ..metrics import best_index  # noqa: E402
from ..rundir.format import layer_order  # noqa: E402
from ..rundir.reader import Run  # noqa: E402
from .analyze import curve_runs, group_runs, layer_union, run_labels, values_by_shared_epoch  # noqa: E402

PANELS = (  # (title, (training metric, validation metric)) or (title, (metric,))
    ("loss", ("train_loss", "val_loss")),
    ("accuracy", ("train_acc", "val_acc")),
    ("learning rate", ("lr",)),
)
TRAIN_STYLE, VAL_STYLE = "--", "-"
LINE_STYLES = ("-", "--", ":", "-.")
LABEL_MAX = 40  # legend labels are cut to this many characters
LEGEND_COLUMNS = 4  # entries per legend row, below the panels
BAND_ALPHA = 0.18
DPI = 110

Points = tuple[list[int], list[float | None], list[float | None]]  # epochs, values (mean), sd (None: one run)


@dataclass
class Line:
    """What the figure draws for one run or one seed group."""

    label: str
    curves: dict[str, Points]  # by metric
    grads: dict[str, Points]  # by layer
    best_epoch: int | None  # starred on the validation curves
    runs: int = 1
    layers: list[str] = field(default_factory=list)


def _mean_sd(series: Sequence[tuple[list[int], list[float | None]]]) -> Points:
    """The mean and sample sd of several runs' values at each epoch all of them recorded (None
    where no run has a finite value; sd None where fewer than two have)."""
    by_epoch = values_by_shared_epoch(series)
    epochs = list(by_epoch)
    means = [statistics.fmean(by_epoch[e]) if by_epoch[e] else None for e in epochs]
    sds = [statistics.stdev(by_epoch[e]) if len(by_epoch[e]) > 1 else None for e in epochs]
    return epochs, means, sds


def _metrics() -> list[str]:
    return [m for _, metrics in PANELS for m in metrics]


def run_line(run: Run, label: str) -> Line:
    best = run.best_index()
    return Line(label, {m: (run.epochs, run.series(m), [None] * len(run.epochs)) for m in _metrics()},
                {layer: (run.epochs, run.layer_series(layer, "grad_norm"), [None] * len(run.epochs))
                 for layer in run.layer_names()},
                None if best is None else run.epochs[best], 1, run.layer_names())


def group_line(label: str, runs: Sequence[Run]) -> Line:
    """The mean ± sd over `runs` (one seed group; its finished ones, analyze.curve_runs), starred
    at the best epoch of its mean monitor curve."""
    runs = curve_runs(runs)
    curves = {m: _mean_sd([(r.epochs, r.series(m)) for r in runs]) for m in _metrics()}
    layers = layer_union(runs)
    grads = {layer: _mean_sd([(r.epochs, r.layer_series(layer, "grad_norm")) for r in runs]) for layer in layers}
    monitor = runs[0].monitor()
    epochs, means, _ = curves.get(monitor) or _mean_sd([(r.epochs, r.series(monitor)) for r in runs])
    best = best_index(means, monitor)
    return Line(label, curves, grads, None if best is None else epochs[best], len(runs), layers)


def _positive_span(values: Sequence[float | None]) -> float:
    finite = [v for v in values if v is not None and v > 0]
    return max(finite) / min(finite) if finite else 1.0


def _draw(ax, points: Points, colour, style: str, band: bool, label: str | None = None, positive: bool = False) -> bool:
    epochs, values, sds = points
    keep = [i for i, v in enumerate(values) if v is not None and (not positive or v > 0)]
    if not keep:
        return False
    xs, ys = [epochs[i] for i in keep], [values[i] for i in keep]
    ax.plot(xs, ys, color=colour, ls=style, lw=1.4, label=label)
    spread = [i for i in keep if sds[i] is not None]
    if band and spread:
        lo = [values[i] - sds[i] for i in spread]
        hi = [values[i] + sds[i] for i in spread]
        if positive:  # a log axis cannot show a band reaching zero or below
            lo = [max(v, values[i] / 10) for v, i in zip(lo, spread)]
        ax.fill_between([epochs[i] for i in spread], lo, hi, color=colour, alpha=BAND_ALPHA, lw=0)
    return True


def build_figure(lines: Sequence[Line], title: str):
    """The four-panel figure of `lines` (runs or groups); the caller saves and closes it."""
    colours = plt.get_cmap("tab10" if len(lines) <= 10 else "tab20").colors
    grouped = any(line.runs > 1 for line in lines)
    fig, axes = plt.subplots(2, 2, figsize=(13, 9), dpi=DPI)
    flat = axes.ravel()
    for ax, (panel, metrics) in zip(flat, PANELS):
        all_values: list[float | None] = []
        for i, line in enumerate(lines):
            colour = colours[i % len(colours)]
            for metric in metrics:
                points = line.curves[metric]
                all_values += points[1]
                style = TRAIN_STYLE if metric.startswith("train") else VAL_STYLE
                label = line.label if metric == metrics[-1] else None
                _draw(ax, points, colour, style, grouped, label)
                if metric.startswith("val") and line.best_epoch in points[0]:
                    value = points[1][points[0].index(line.best_epoch)]
                    if value is not None:
                        ax.plot(line.best_epoch, value, marker="*", ms=11, color=colour, mec="black", mew=0.6,
                                ls="none", zorder=5)
        _style_axes(ax, panel, log=(panel != "accuracy") and _positive_span(all_values) > 50)
    _grad_panel(flat[3], lines, colours, grouped)
    _legend(fig, flat, lines, grouped)
    fig.suptitle(title, fontsize=12)
    return fig


def _style_axes(ax, title: str, log: bool) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel("epoch", fontsize=9)
    if log:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))


def _grad_panel(ax, lines: Sequence[Line], colours, grouped: bool) -> None:
    names = sorted({layer for line in lines for layer in line.layers}, key=layer_order)
    single = len(lines) == 1
    drew = False
    for i, line in enumerate(lines):
        for layer in line.layers:
            index = names.index(layer)
            if single:  # one line: the layers by colour, each named in the panel's legend
                colour, style, label = colours[index % len(colours)], "-", layer
            else:
                colour, style, label = colours[i % len(colours)], LINE_STYLES[index % len(LINE_STYLES)], None
            drew |= _draw(ax, line.grads[layer], colour, style, False, label, positive=True)
    _style_axes(ax, "gradient norm per layer" + (" (mean over seeds)" if grouped else ""), log=drew)
    if single and drew:
        ax.legend(fontsize=7, frameon=False)
    elif names:
        keys = [plt.Line2D([], [], color="black", ls=LINE_STYLES[k % len(LINE_STYLES)], label=name)
                for k, name in enumerate(names)]
        ax.legend(handles=keys, fontsize=7, frameon=False, title="layer", title_fontsize=7)


def _legend(fig, axes, lines: Sequence[Line], grouped: bool) -> None:
    handles, names = [], []
    if len(lines) > 1:
        for ax in axes[:3]:
            handles, names = ax.get_legend_handles_labels()
            if handles:
                break
    keys = [plt.Line2D([], [], color="grey", ls=TRAIN_STYLE), plt.Line2D([], [], color="grey", ls=VAL_STYLE),
            plt.Line2D([], [], marker="*", ms=10, color="grey", mec="black", ls="none")]
    key_names = ["training", "validation", "best epoch"]
    if grouped:
        keys.append(plt.Rectangle((0, 0), 1, 1, color="grey", alpha=BAND_ALPHA * 2, lw=0))
        key_names.append("± 1 sd over seeds")
    entries = len(handles) + len(keys)
    ncol = min(entries, LEGEND_COLUMNS)
    rows = math.ceil(entries / ncol)
    fig.legend(handles + keys, names + key_names, loc="lower center", ncol=ncol,
               fontsize=8 if len(lines) <= 10 else 7, frameon=False)
    fig.tight_layout(rect=(0, min(0.4, 0.015 + 0.03 * rows), 1, 0.97))


def _short(label: str) -> str:
    return label if len(label) <= LABEL_MAX else label[: LABEL_MAX - 1] + "…"


def save_figure(fig, path: str | Path) -> Path:
    """Write `fig` as the PNG `path` and close it; ConfigError for a name that is no .png or
    a folder that does not exist, RunDirError when it cannot be written. A new or regular file
    is replaced at once, so a Ctrl-C or a full disk mid-write leaves the previous figure, not
    part of one; a link, a pipe or a device is written into (as export -o does)."""
    path = Path(path)
    try:
        check_png(path)
        if path.is_symlink() or (path.exists() and not path.is_file()):
            fig.savefig(path, format="png")
        else:
            with replacing(path) as (f, _):
                fig.savefig(f, format="png")
    except FileNotFoundError:
        raise ConfigError(f"--plot {str(path)!r}: folder {str(path.parent)!r} does not exist") from None
    except OSError as err:
        raise RunDirError(f"cannot write the figure {path}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
    return path


def check_png(path: str | Path) -> None:
    if Path(path).suffix.lower() != ".png":
        raise ConfigError(f"--plot {str(path)!r}: the figure is written as PNG; give a file name ending in .png")


def plot_runs(runs: Sequence[Run], path: str | Path, labels: Sequence[str] | None = None,
              title: str | None = None) -> Path:
    """Write the figure of `runs`, one line each, to `path` (a .png) and return the path."""
    check_png(path)
    labels = [_short(lab) for lab in (labels if labels is not None else [r.dirname for r in runs])]
    lines = [run_line(run, label) for run, label in zip(runs, labels)]
    return save_figure(build_figure(lines, title or (labels[0] if len(runs) == 1 else f"{len(runs)} runs")), path)


def plot_groups(groups: Sequence[tuple[str, Sequence[Run]]], path: str | Path, title: str | None = None) -> Path:
    """Write the figure of seed groups (label, runs), one line each with its ± sd band."""
    check_png(path)
    lines = [group_line(_short(label), runs) for label, runs in groups]
    n = sum(len(runs) for _, runs in groups)
    return save_figure(build_figure(lines, title or f"{len(groups)} groups of {n} runs (mean ± sd over seeds)"), path)


def plot_comparison(runs: Sequence[Run], path: str | Path, group: bool) -> Path:
    """`compare --plot`: one line per run, or with `group` one per seed group (the labels of
    `compare --group`)."""
    if group:
        return plot_groups([(g.label, g.runs) for g in group_runs(runs)], path)
    return plot_runs(runs, path, labels=run_labels(runs))
