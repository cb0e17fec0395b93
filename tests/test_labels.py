"""Labels that say what they show: compare's value at the best epoch is called so and explained,
the ▶ mark has a legend, a run called baseline is not headed `baseline (baseline)`; `show`
writes each column in one number format, seconds as seconds and nested summary fields one per
row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runfactory import curve_records, make_run
from trickrun.analysis.render import fmt_column
from trickrun.cli import app

runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], env={"COLUMNS": "120"})


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    records = curve_records(6)  # val loss is lowest at epoch 3, val acc highest at epoch 5
    for record, loss in zip(records, [0.5, 0.3, 0.1, 0.2, 0.3, 0.4]):
        record["val_loss"] = loss
    records[4]["val_acc"] = 0.99
    make_run(root, "baseline", records=records)
    make_run(root, "normal-init", stamp="20240501-130000", **{"model.init": "normal"})
    return root


def test_compare_calls_the_value_at_the_best_epoch_so_and_explains_it(root):
    out = invoke("compare", "baseline", "normal-init", "-f", "markdown").stdout
    summary = json.loads((root / "baseline-20240501-120000" / "summary.json").read_text())
    assert summary["best_epoch"] == 3 and summary["best"]["val_acc"] < 0.99  # not the best val acc (0.99)
    assert f"| ▶ val acc @best | {summary['best']['val_acc']:.4f} |" in out.replace("**", "")
    assert "best val acc" not in out
    assert "@best: at the best epoch, the one early stopping kept (by early_stopping.monitor, val_loss); " \
           "another epoch may have been better" in out
    assert "▶: the metric --metric emphasises (val_acc)" in out


def test_a_run_called_baseline_is_not_headed_baseline_baseline(root):
    out = invoke("compare", "baseline", "normal-init", "-f", "markdown").stdout
    assert "baseline (baseline)" not in out and "|  | baseline | normal-init |" in out
    out = invoke("compare", "baseline", "normal-init", "--baseline", "normal-init", "-f", "markdown").stdout
    assert "| normal-init (baseline) |" in out


def test_ls_calls_its_value_at_the_best_epoch_so(root):
    out = invoke("ls", "-f", "markdown").stdout
    assert "| name | status | epochs | val acc @best | test acc | started | duration |" in out
    assert "val acc @best: at the run's best epoch" in out
    assert json.loads(invoke("ls", "-f", "json").stdout)[0]["best_val_acc"] is not None  # the field keeps its name


def test_show_writes_each_column_in_one_format(root):
    out = invoke("show", "baseline", "-f", "markdown").stdout
    epochs = out[out.index("### Epochs"):out.index("### Layers")]
    rows = [line.split(" | ") for line in epochs.splitlines() if line.startswith("| ") and "epoch" not in line]
    lrs = [r[1] for r in rows]
    assert len(lrs) == 6 and all("e-0" in lr for lr in lrs), lrs  # 0.001 falls to 9.04e-04: all scientific
    grads = [r[-2] for r in rows]
    assert len({len(g) for g in grads}) == 1, grads  # one number of decimals


def test_show_writes_seconds_as_seconds_and_nested_fields_one_per_row(root):
    path = root / "baseline-20240501-120000" / "summary.json"
    summary = json.loads(path.read_text())
    summary["train_s"] = 5.80232
    summary["divergence"] = {"epoch": 4, "batch": 17, "layer": "hidden2"}
    summary["members"] = [{"run": "m0", "test": {"acc": 0.98}}]  # as an ensemble's summary lists them
    path.write_text(json.dumps(summary))
    out = invoke("show", "baseline", "-f", "markdown").stdout
    assert "| train time (s) | 5.8 |" in out and "5.80232" not in out
    assert "| members[0].run | m0 |" in out and "| members[0].test.acc | 0.9800 |" in out
    assert "| versions.numpy | 2 |" in out and "| divergence.layer | hidden2 |" in out
    assert "{" not in out[out.index("### Summary"):out.index("### Epochs")]


def test_fmt_column_picks_one_format_for_a_column():
    assert fmt_column([0.001, 0.00098, 0.000904], "lr") == ["1.00e-03", "9.80e-04", "9.04e-04"]
    assert fmt_column([0.2, 0.1, 1 / 30], "grad_norm") == ["0.2000", "0.1000", "0.0333"]
    assert fmt_column([11.0, 16.5, None, 0.0], "weight_norm") == ["11.0", "16.5", "—", "0.0"]
    assert fmt_column([1200.0, 0.5], "grad_norm") == ["1.20e+03", "5.00e-01"]  # three decades apart
    assert fmt_column([0.8, 0.97], "val_acc") == ["0.8000", "0.9700"]
    assert fmt_column([3, 12], "epoch") == ["3", "12"]
