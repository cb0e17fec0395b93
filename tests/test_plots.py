"""`--plot`: training and validation loss on the same axes, and with `compare --group` one line
per seed group, the mean over its seeds, with a band of ± one sample standard deviation."""

from __future__ import annotations

import statistics
from contextlib import nullcontext
from pathlib import Path

import matplotlib.pyplot as plt
import pytest
from matplotlib.collections import PolyCollection
from typer.testing import CliRunner

from runfactory import make_run
from trickrun.analysis import plots
from trickrun.analysis.analyze import group_runs
from trickrun.cli import app
from trickrun.rundir.reader import load_run

runner = CliRunner()


@pytest.fixture
def sweep(tmp_path: Path) -> list:
    """Two groups (norm none, batch) of three seeds each, the seeds' accuracies apart."""
    return [load_run(make_run(tmp_path / "runs", f"lr_norm-{norm}_s{s}", seed=s, stamp=f"20240501-1{s}0000",
                              final_acc=0.95 + 0.01 * s + (0.02 if norm == "batch" else 0), **{"model.norm": norm}))
            for norm in ("none", "batch") for s in range(3)]


def curves(ax) -> list:
    return [line for line in ax.get_lines() if line.get_linestyle() != "None"]


def test_one_line_per_group_with_its_sd_band(sweep):
    groups = group_runs(sweep)
    fig = plots.build_figure([plots.group_line(g.label, g.runs) for g in groups], "t")
    try:
        loss, acc, lr, grad = fig.axes[:4]
        assert [ax.get_title() for ax in (loss, acc, lr)] == ["loss", "accuracy", "learning rate"]
        # per group: a training and a validation curve, each with a band; not one line per run
        assert len(curves(loss)) == 2 * len(groups) == 4
        assert len([c for c in loss.collections if isinstance(c, PolyCollection)]) == 4
        val = [line for line in curves(acc) if line.get_linestyle() == "-"]
        assert [line.get_label() for line in val] == ["model.norm=none", "model.norm=batch"]
        expected = statistics.fmean(r.series("val_acc")[-1] for r in groups[0].runs)
        assert val[0].get_ydata()[-1] == pytest.approx(expected)
        band = [c for c in acc.collections if isinstance(c, PolyCollection)][1]  # group 1's validation band
        sd = statistics.stdev(r.series("val_acc")[-1] for r in groups[0].runs)
        tops = band.get_paths()[0].vertices[:, 1]
        assert max(tops) == pytest.approx(expected + sd)
        assert len(curves(grad)) == 2 * 3  # a mean gradient curve per group and layer
    finally:
        plt.close(fig)


def test_a_group_s_line_ends_at_the_last_epoch_all_its_runs_reached(tmp_path):
    runs = [load_run(make_run(tmp_path, "x", seed=s, stamp=f"20240501-12000{s}", epochs=e))
            for s, e in ((0, 6), (1, 3))]  # one stopped early
    line = plots.group_line("g", runs)
    epochs, means, sds = line.curves["val_acc"]
    assert epochs == [1, 2, 3]
    assert means[-1] == pytest.approx(statistics.fmean(r.series("val_acc")[2] for r in runs))
    assert all(sd is not None for sd in sds)  # both runs at every epoch drawn


def test_training_and_validation_loss_share_the_axes_of_a_single_run(sweep):
    fig = plots.build_figure([plots.run_line(sweep[0], "one")], "t")
    try:
        loss = fig.axes[0]
        styles = sorted(line.get_linestyle() for line in curves(loss))
        assert styles == ["-", "--"]  # validation solid, training dashed
        assert not [c for c in loss.collections if isinstance(c, PolyCollection)]  # one run: no band
        assert any(line.get_marker() == "*" for line in loss.get_lines())  # the best epoch
    finally:
        plt.close(fig)


def test_compare_group_plot_writes_the_group_figure(sweep, tmp_path, monkeypatch):
    drawn = []
    monkeypatch.setattr(plots, "save_figure", lambda fig, path: (drawn.append(fig), plt.close(fig), Path(path))[-1])
    result = runner.invoke(app, ["compare", "lr_*", "--group", "--plot", str(tmp_path / "g.png"), "-f", "csv"])
    assert result.exit_code == 0, result.output
    (fig,) = drawn
    assert len(curves(fig.axes[0])) == 4 and "2 groups of 6 runs" in fig._suptitle.get_text()
    result = runner.invoke(app, ["compare", "lr_*", "--plot", str(tmp_path / "r.png"), "-f", "csv"])
    assert len(curves(drawn[-1].axes[0])) == 2 * 6  # without --group: one line per run


def test_the_group_figure_is_a_png(sweep, tmp_path):
    out = plots.plot_groups([(g.label, g.runs) for g in group_runs(sweep)], tmp_path / "groups.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 20_000


def test_a_figure_stopped_mid_write_leaves_the_previous_one(tmp_path, monkeypatch):
    """Ctrl-C (or a full disk) while the PNG is written: the previous figure stays whole, no
    part of the new one and no temporary file is left (it used to be truncated in place)."""
    from matplotlib.figure import Figure

    def part_then_stop(self, target, **kwargs):
        with open(target, "wb") if isinstance(target, (str, Path)) else nullcontext(target) as f:
            f.write(b"\x89PNG part")
        raise KeyboardInterrupt

    path = tmp_path / "cmp.png"
    path.write_bytes(b"old figure")
    fig = plt.figure()
    monkeypatch.setattr(Figure, "savefig", part_then_stop)
    with pytest.raises(KeyboardInterrupt):
        plots.save_figure(fig, path)
    assert [p.name for p in tmp_path.iterdir()] == ["cmp.png"] and path.read_bytes() == b"old figure"
