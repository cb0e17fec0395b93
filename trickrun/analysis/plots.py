"""Figures of runs, written as PNG files with matplotlib's Agg backend (no display needed).

One figure, six panels: training loss, validation loss, training accuracy, validation
accuracy, learning rate, and per-layer gradient norm, all per epoch. Every run is overlaid in
its own colour, its best epoch marked with a star on the loss and accuracy panels; in the
gradient panel the layers are told apart by line style (by colour when there is one run).
Losses, learning rate and gradient norms use a log scale when their range calls for it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
from matplotlib.ticker import MaxNLocator  # noqa: E402

from ..errors import ConfigError, RunDirError  # noqa: E402
from ..rundir.reader import Run  # noqa: E402
from .analyze import layer_union  # noqa: E402

PANELS = (
    ("train_loss", "training loss"),
    ("val_loss", "validation loss"),
    ("train_acc", "training accuracy"),
    ("val_acc", "validation accuracy"),
    ("lr", "learning rate"),
)
LINE_STYLES = ("-", "--", ":", "-.")
LABEL_MAX = 40  # legend labels are cut to this many characters
LEGEND_COLUMNS = 5  # runs per legend row, below the panels
DPI = 110


def _positive_span(values: Sequence[float | None]) -> float:
    finite = [v for v in values if v is not None and v > 0]
    return max(finite) / min(finite) if finite else 1.0


def _plot_series(ax, epochs, values, **style):
    xs = [e for e, v in zip(epochs, values) if v is not None]
    ys = [v for v in values if v is not None]
    if xs:
        ax.plot(xs, ys, **style)
    return bool(xs)


def plot_runs(runs: Sequence[Run], path: str | Path, labels: Sequence[str] | None = None,
              title: str | None = None) -> Path:
    """Write the six-panel figure of `runs` to `path` (a .png) and return the path."""
    path = Path(path)
    if path.suffix.lower() != ".png":
        raise ConfigError(f"--plot {str(path)!r}: the figure is written as PNG; give a file name ending in .png")
    labels = list(labels) if labels is not None else [r.dirname for r in runs]
    labels = [lab if len(lab) <= LABEL_MAX else lab[: LABEL_MAX - 1] + "…" for lab in labels]
    colours = plt.get_cmap("tab10" if len(runs) <= 10 else "tab20").colors
    single = len(runs) == 1

    fig, axes = plt.subplots(2, 3, figsize=(15, 8.5), dpi=DPI)
    flat = axes.ravel()
    try:
        for ax, (metric, label) in zip(flat, PANELS):
            all_values: list[float | None] = []
            for i, run in enumerate(runs):
                values = run.series(metric)
                all_values += values
                colour = colours[i % len(colours)]
                _plot_series(ax, run.epochs, values, color=colour, lw=1.4, label=labels[i])
                best = run.best_index()
                if metric != "lr" and best is not None and values[best] is not None:
                    ax.plot(run.epochs[best], values[best], marker="*", ms=11, color=colour,
                            mec="black", mew=0.6, ls="none", zorder=5)
            ax.set_title(label, fontsize=10)
            ax.set_xlabel("epoch", fontsize=9)
            if (metric.endswith("loss") or metric == "lr") and _positive_span(all_values) > 50:
                ax.set_yscale("log")
            ax.grid(True, alpha=0.3)
            ax.tick_params(labelsize=8)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        _grad_panel(flat[5], runs, colours, single)
        handles, names = flat[0].get_legend_handles_labels()
        if not handles:  # the first run may have no training loss; take any panel's
            for ax in flat[:5]:
                handles, names = ax.get_legend_handles_labels()
                if handles:
                    break
        star = plt.Line2D([], [], marker="*", ms=10, color="grey", mec="black", ls="none")
        if single:
            handles, names = [], []
        ncol = min(len(handles) + 1, LEGEND_COLUMNS)
        rows = math.ceil((len(handles) + 1) / ncol)
        fig.legend(handles + [star], names + ["best epoch"], loc="lower center", ncol=ncol,
                   fontsize=8 if len(runs) <= 10 else 7, frameon=False)
        bottom = min(0.4, 0.015 + 0.03 * rows)
        fig.suptitle(title or (labels[0] if single else f"{len(runs)} runs"), fontsize=12)
        fig.tight_layout(rect=(0, bottom, 1, 0.97))
        try:
            fig.savefig(path, format="png")
        except FileNotFoundError:
            raise ConfigError(f"--plot {str(path)!r}: folder {str(path.parent)!r} does not exist") from None
        except OSError as err:
            raise RunDirError(f"cannot write the figure {path}: {err.strerror or err}") from None
    finally:
        plt.close(fig)
    return path


def _grad_panel(ax, runs: Sequence[Run], colours, single: bool) -> None:
    layer_names = layer_union(runs)  # network order, so a layer keeps its style across depths
    drew = False
    for i, run in enumerate(runs):
        for j, layer in enumerate(run.layer_names()):
            index = layer_names.index(layer)
            if single:
                style = dict(color=colours[index % len(colours)], ls="-", label=layer)
            else:
                style = dict(color=colours[i % len(colours)], ls=LINE_STYLES[index % len(LINE_STYLES)])
            values = [v if v is not None and v > 0 else None for v in run.layer_series(layer, "grad_norm")]
            drew |= _plot_series(ax, run.epochs, values, lw=1.2, **style)
    ax.set_title("gradient norm per layer", fontsize=10)
    ax.set_xlabel("epoch", fontsize=9)
    if drew:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if single:
        if drew:
            ax.legend(fontsize=7, frameon=False)
    elif layer_names:
        keys = [plt.Line2D([], [], color="black", ls=LINE_STYLES[k % len(LINE_STYLES)], label=name)
                for k, name in enumerate(layer_names)]
        ax.legend(handles=keys, fontsize=7, frameon=False, title="layer", title_fontsize=7)
