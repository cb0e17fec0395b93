"""`trickrun compare`, `ls` and `show`: the pieces (diff, flags, sparklines, Welch's test) and
every output format through the CLI, on run directories the tests write themselves."""

from __future__ import annotations

import csv
import io
import json
import math
import struct
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from runfactory import DEAD_PID, LAYERS, curve_records, make_run
from trickrun.analysis import analyze
from trickrun.analysis.compare import flags_summary
from trickrun.analysis.render import SPARK_CHARS, SPARK_MISSING, fmt_delta, sparkline
from trickrun.analysis.significance import RULE
from trickrun.analysis.stats import welch_t_test
from trickrun.cli import app
from trickrun.rundir.reader import load_run

runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, [str(a) for a in args])


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """The runs folder the CLI sees through $TRICKRUN_RUNS_DIR (set in conftest)."""
    return tmp_path / "runs"


@pytest.fixture
def two(root: Path) -> tuple[Path, Path]:
    a = make_run(root, "adam", stamp="20240501-120000", final_acc=0.975, test_acc=0.973)
    b = make_run(root, "sgd", stamp="20240501-130000", final_acc=0.962, test_acc=0.960,
                 **{"optimizer.name": "sgd", "optimizer.lr": 0.1})
    return a, b


# --- config diff -------------------------------------------------------------------------


def test_flatten_makes_dotted_keys_and_keeps_lists() -> None:
    assert analyze.flatten({"a": 1, "m": {"hidden": [2, 3], "x": {"y": None}}}) == {
        "a": 1, "m.hidden": [2, 3], "m.x.y": None}


def test_config_diff_keeps_only_differing_keys_in_order() -> None:
    a = {"seed": 0, "optimizer": {"name": "adam", "lr": 0.001}, "model": {"hidden": [256]}}
    b = {"seed": 0, "optimizer": {"name": "sgd", "lr": 0.001}, "model": {"hidden": [256, 128]}}
    assert analyze.config_diff([a, b]) == [("optimizer.name", ["adam", "sgd"]),
                                       ("model.hidden", [[256], [256, 128]])]
    assert [k for k, _ in analyze.config_diff([a, b], all_keys=True)] == [
        "seed", "optimizer.name", "optimizer.lr", "model.hidden"]


def test_config_diff_shows_a_key_one_run_lacks() -> None:
    assert analyze.config_diff([{"a": 1}, {"a": 1, "b": 2}]) == [("b", [None, 2])]


# --- diagnostics -------------------------------------------------------------------------


def flags_of(tmp_path: Path, layer_fn, **kwargs) -> list[analyze.Flag]:
    return analyze.diagnose(load_run(make_run(tmp_path, records=curve_records(4, layer_fn=layer_fn), **kwargs)))


def test_a_healthy_run_has_no_flags(tmp_path: Path) -> None:
    assert flags_of(tmp_path, None) == []


def test_vanishing_gradient_is_flagged_below_the_ratio(tmp_path: Path) -> None:
    def fn(epoch: int, layer: dict) -> None:
        if layer["name"] == "hidden1" and epoch >= 3:
            layer["grad_norm"] = 0.9 * analyze.VANISHING_RATIO * (0.1 / epoch)  # others: 0.1/epoch

    (flag,) = flags_of(tmp_path, fn)
    assert (flag.kind, flag.layer, flag.epoch) == ("vanishing", "hidden1", 3)


def test_a_gradient_just_above_the_ratio_is_not_flagged(tmp_path: Path) -> None:
    def fn(epoch: int, layer: dict) -> None:
        if layer["name"] == "hidden1":
            layer["grad_norm"] = 1.1 * analyze.VANISHING_RATIO * (0.1 / epoch)

    assert flags_of(tmp_path, fn) == []


def test_exploding_and_non_finite_gradients_are_flagged(tmp_path: Path) -> None:
    def fn(epoch: int, layer: dict) -> None:
        if layer["name"] == "hidden2" and epoch == 2:
            layer["grad_norm"] = analyze.EXPLODING_GRAD_NORM * 2
        if layer["name"] == "output" and epoch == 4:
            layer["grad_norm"] = None  # how a non-finite value is written

    flags = flags_of(tmp_path, fn)
    assert [(f.kind, f.layer, f.epoch) for f in flags] == [("exploding", "hidden2", 2), ("exploding", "output", 4)]
    assert "non-finite" in flags[1].text


@pytest.mark.parametrize(("key", "kind"), [("dead_frac", "dead"), ("saturated_frac", "saturated")])
def test_dead_and_saturated_units_are_flagged_at_the_last_epoch(tmp_path: Path, key: str, kind: str) -> None:
    def fn(epoch: int, layer: dict) -> None:
        if layer["name"] == "hidden1":
            layer[key] = 0.75 if epoch == 4 else 0.0
        if layer["name"] == "hidden2":
            layer[key] = 0.5  # exactly the threshold: not flagged

    (flag,) = flags_of(tmp_path, fn)
    assert (flag.kind, flag.layer) == (kind, "hidden1") and "75%" in flag.text


def test_all_zero_gradients_are_one_flag(tmp_path: Path) -> None:
    def fn(epoch: int, layer: dict) -> None:
        layer["grad_norm"] = 0.0

    flags = flags_of(tmp_path, fn)
    assert [(f.kind, f.layer, f.epoch) for f in flags] == [("vanishing", None, 1)]


def test_flags_summary_groups_by_kind() -> None:
    flags = [
        analyze.Flag("exploding", "hidden1", 1, "exploding grad hidden1 @ep1 (2.0e+03)"),
        analyze.Flag("exploding", "output", 2, "exploding grad output @ep2 (non-finite)"),
        analyze.Flag("dead", "hidden2", None, "dead hidden2 80%"),
    ]
    assert flags_summary(flags) == "exploding grad: hidden1@ep1, output@ep2; dead: hidden2 80%"


def test_divergence_from_the_summary_is_flagged(tmp_path: Path) -> None:
    path = make_run(tmp_path, epochs=3, status="diverged")
    summary = json.loads((path / "summary.json").read_text())
    summary["divergence"] = {"epoch": 4, "batch": 17, "layer": "hidden2", "where": "weights", "lr": 3.0}
    (path / "summary.json").write_text(json.dumps(summary))
    (flag,) = analyze.diagnose(load_run(path))
    assert flag.kind == "diverged" and flag.text == "diverged @ep4 batch 17 (weights of hidden2, lr 3)"


# --- sparklines --------------------------------------------------------------------------


def test_sparkline_scales_values_and_marks_the_best() -> None:
    line, pos = sparkline([0.0, 0.5, 1.0, None], 0.0, 1.0, mark=2)
    assert line == "▁▅█" + SPARK_MISSING and pos == 2


def test_sparkline_buckets_long_runs_to_its_width() -> None:
    values = [float(i) for i in range(100)]
    line, pos = sparkline(values, 0.0, 99.0, mark=99, width=10)
    assert len(line) == 10 and line[0] == "▁" and line[-1] == "█" and pos == 9
    assert sparkline(values, 0.0, 99.0, mark=0, width=10)[1] == 0


def test_sparkline_of_a_constant_is_flat() -> None:
    assert sparkline([2.0, 2.0], 2.0, 2.0)[0] == SPARK_CHARS[len(SPARK_CHARS) // 2] * 2


# --- seed groups -------------------------------------------------------------------------


def test_group_runs_merges_seeds_only(tmp_path: Path) -> None:
    runs = [load_run(make_run(tmp_path, "adam", seed=s, stamp=f"20240501-12000{s}")) for s in range(3)]
    runs.append(load_run(make_run(tmp_path, "adam-wd", seed=0, **{"regularization.l2": 1e-4})))
    groups = analyze.group_runs(runs)
    assert [(g.label, len(g.runs)) for g in groups] == [("regularization.l2=0.0", 3), ("regularization.l2=0.0001", 1)]


# --- compare through the CLI -------------------------------------------------------------


def test_compare_json_is_one_record_per_run_with_differing_keys_then_results(two) -> None:
    a, b = two
    result = invoke("compare", "adam", "sgd", "--format", "json")
    assert result.exit_code == 0, result.stderr
    records = json.loads(result.stdout)
    assert [r["run"] for r in records] == [a.name, b.name]
    first = records[0]
    keys = list(first)
    assert keys[:3] == ["run", "name", "path"]
    assert keys.index("optimizer.name") < keys.index("status") < keys.index("test_acc")
    assert "seed" not in first and "model.hidden" not in first  # equal in both runs
    assert (first["optimizer.name"], records[1]["optimizer.name"]) == ("adam", "sgd")
    assert (first["optimizer.lr"], records[1]["optimizer.lr"]) == (0.001, 0.1)
    summary = json.loads((a / "summary.json").read_text())
    assert first["status"] == "completed" and first["test_acc"] == 0.973
    assert first["best_val_acc"] == summary["best"]["val_acc"]
    assert first["best_epoch"] == summary["best_epoch"] and first["epochs_run"] == 6
    assert first["wall_s"] == summary["wall_s"] and first["flags"] == ""


def test_compare_all_lists_every_config_key(two) -> None:
    records = json.loads(invoke("compare", "adam", "sgd", "--all", "-f", "json").stdout)
    assert records[0]["seed"] == 0 and records[0]["model.hidden"] == [256, 128]
    assert records[0]["early_stopping.monitor"] == "val_loss"


def test_compare_csv_parses_with_the_same_values(two) -> None:
    result = invoke("compare", "adam", "sgd", "-f", "csv")
    assert result.exit_code == 0, result.stderr
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["name"] for r in rows] == ["adam", "sgd"]
    assert rows[1]["optimizer.lr"] == "0.1" and float(rows[1]["test_acc"]) == 0.960
    assert rows[0]["status"] == "completed" and int(rows[0]["epochs_run"]) == 6


def test_compare_markdown_has_the_four_sections_in_order(two) -> None:
    result = invoke("compare", "adam", "sgd", "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    titles = ["### Config diff", "### Results", "### Curves", "### Diagnostics"]
    assert [out.index(t) for t in titles] == sorted(out.index(t) for t in titles)
    assert "| optimizer.lr | 0.001 | 0.1 |" in out
    assert "| test acc | **0.9730** | 0.9600 (-0.0130) |" in out  # best bold, change vs baseline
    table_lines = [line for line in out.splitlines() if line.startswith("|")]
    assert all(line.count(" | ") == table_lines[0].count(" | ") or line.startswith("|--")
               for line in table_lines[:5])


def test_compare_table_prints_all_sections(two) -> None:
    result = invoke("compare", "adam", "sgd")
    assert result.exit_code == 0, result.stderr
    for text in ("Config diff", "Results", "Curves", "Diagnostics", "optimizer.lr", "0.9730", "(-0.0130)"):
        assert text in result.stdout


def test_compare_baseline_outside_the_list_is_shown_first(root: Path, two) -> None:
    make_run(root, "rms", stamp="20240501-140000", test_acc=0.963, **{"optimizer.name": "rmsprop"})
    result = invoke("compare", "adam", "rms", "--baseline", "sgd", "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    assert "| test acc | 0.9600 | **0.9730** (+0.0130) | 0.9630 (+0.0030) |" in result.stdout
    assert "sgd (baseline)" in result.stdout


def test_compare_accepts_a_glob_and_one_run(root: Path, two) -> None:
    one = json.loads(invoke("compare", "adam", "-f", "json").stdout)
    assert len(one) == 1 and one[0]["name"] == "adam"
    both = json.loads(invoke("compare", str(root / "*"), "-f", "json").stdout)
    assert {r["name"] for r in both} == {"adam", "sgd"}


def test_compare_metric_adds_its_row(two) -> None:
    records = json.loads(invoke("compare", "adam", "sgd", "--metric", "train_loss", "-f", "json").stdout)
    expected = min(r["train_loss"] for r in curve_records(6, final_acc=0.975))
    assert records[0]["best_train_loss"] == pytest.approx(expected)
    records = json.loads(invoke("compare", "adam", "--metric", "lr", "-f", "json").stdout)
    assert records[0]["last_lr"] == pytest.approx(0.001 * 0.98**5)


def test_compare_unknown_metric_is_exit_2_listing_valid_ones(two) -> None:
    result = invoke("compare", "adam", "--metric", "val_accuracy")
    assert result.exit_code == 2
    assert "val_accuracy" in result.stderr and "val_acc" in result.stderr and "grad_norm" in result.stderr
    assert "Traceback" not in result.output


def test_compare_shows_incomplete_runs_with_their_status(root: Path, two) -> None:
    make_run(root, "live", stamp="20240501-150000", epochs=3, status="running")
    make_run(root, "dead", stamp="20240501-160000", epochs=2, status="running", pid=DEAD_PID,
             torn_tail='{"epoch": 3, "lr": 0.0')
    make_run(root, "bare", stamp="20240501-170000", epochs=4, summary=False)
    records = curve_records(3, final_acc=0.5)
    records[2]["val_loss"] = None
    make_run(root, "boom", stamp="20240501-180000", records=records, status="diverged")
    result = invoke("compare", "adam", "live", "dead", "bare", "boom", "-f", "json")
    assert result.exit_code == 0, result.stderr
    got = {r["name"]: r for r in json.loads(result.stdout)}
    assert [got[n]["status"] for n in ("live", "dead", "bare", "boom")] == [
        "running", "stale", "incomplete", "diverged"]
    assert [got[n]["epochs_run"] for n in ("live", "dead", "bare", "boom")] == [3, 2, 4, 3]
    assert got["live"]["test_acc"] is None and got["live"]["best_val_acc"] is not None
    assert got["boom"]["test_acc"] is None
    table = invoke("compare", "adam", "live", "dead", "bare", "boom")
    assert table.exit_code == 0 and "stale" in table.stdout and SPARK_MISSING in table.stdout


def test_compare_warns_about_a_garbage_line_and_goes_on(root: Path, two) -> None:
    path = two[0] / "metrics.jsonl"
    lines = path.read_text().splitlines()
    path.write_text("\n".join(lines[:2] + ["garbage"] + lines[2:]) + "\n")
    result = invoke("compare", "adam", "-f", "json")
    assert result.exit_code == 0
    assert "line 3" in result.stderr and json.loads(result.stdout)[0]["epochs_run"] == 6


def test_compare_and_show_mark_no_other_epoch_when_the_best_epochs_line_is_lost(root: Path) -> None:
    records = curve_records(4)
    for record, loss in zip(records, (0.5, 0.2, 0.3, 0.4)):
        record["val_loss"] = loss
    path = make_run(root, "edited", records=records)
    assert json.loads((path / "summary.json").read_text())["best_epoch"] == 2
    lines = (path / "metrics.jsonl").read_text().splitlines()
    lines[1] = '{"epoch": 2, "val_acc": "edited by hand"}'
    (path / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    compared = invoke("compare", "edited")
    assert compared.exit_code == 0 and "line 2" in compared.stderr
    assert "best epoch       2" in compared.stdout  # the results: the summary's best epoch
    assert "@ep" not in compared.stdout  # the curves mark no other epoch as that one
    shown = invoke("show", "edited")
    assert " *" not in shown.stdout.split("Epochs", 1)[1].split("Layers", 1)[0]
    assert "no epoch marked: the best epoch has no valid record here" in shown.stdout


def test_compare_diagnostics_flag_in_output(root: Path) -> None:
    def fn(epoch: int, layer: dict) -> None:
        if layer["name"] == "hidden2":
            layer["dead_frac"] = 0.8

    make_run(root, "deadly", records=curve_records(3, layer_fn=fn))
    records = json.loads(invoke("compare", "deadly", "-f", "json").stdout)
    assert records[0]["flags"] == "dead: hidden2 80%"
    assert "dead: hidden2 80%" in invoke("compare", "deadly").stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["nothing"], "'nothing' matches no run"),
        (["adam~1"], "'adam~1': run name 'adam' matches 1 run"),
        (["notes"], "not a run directory"),
        (["adam", "nothing*"], "glob 'nothing*' matches nothing"),
        (["adam", "--baseline", "zzz"], "'zzz' matches no run"),
    ],
)
def test_compare_errors_are_exit_2_naming_the_culprit(root: Path, two, args, needle) -> None:
    make_run(root, "another", stamp="20240501-190000")
    (root / "notes").mkdir()
    result = invoke("compare", *args)
    assert result.exit_code == 2, result.output
    assert needle in result.stderr and result.stdout == ""
    assert "Traceback" not in result.output


# --- compare --group ---------------------------------------------------------------------

ADAM_ACCS = [0.974, 0.976, 0.973]
SGD_ACCS = [0.965, 0.968, 0.962]


@pytest.fixture
def seeds(root: Path) -> None:
    for s, acc in enumerate(ADAM_ACCS):
        make_run(root, "adam", seed=s, stamp=f"20240501-12000{s}", test_acc=acc)
    for s, acc in enumerate(SGD_ACCS):
        make_run(root, "sgd", seed=s, stamp=f"20240501-13000{s}", test_acc=acc,
                 **{"optimizer.name": "sgd", "optimizer.lr": 0.1})


def test_group_json_has_mean_sd_n_and_welch(root: Path, seeds) -> None:
    result = invoke("compare", str(root / "*"), "--group", "-f", "json")
    assert result.exit_code == 0, result.stderr
    adam, sgd = json.loads(result.stdout)
    assert (adam["group"], adam["n"], adam["seeds"]) == ("optimizer.name=adam optimizer.lr=0.001", 3, [0, 1, 2])
    assert adam["test_acc_mean"] == pytest.approx(sum(ADAM_ACCS) / 3)
    assert adam["test_acc_sd"] == pytest.approx(math.sqrt(7e-6 / 3))
    assert "optimizer.name" in adam and "seed" not in adam
    expected = welch_t_test(SGD_ACCS, ADAM_ACCS)  # the other group minus the baseline
    assert adam["welch_p"] is None and adam["verdict"] is None
    assert sgd["welch_t"] == pytest.approx(expected.t) and sgd["welch_t"] < 0
    assert sgd["welch_df"] == pytest.approx(expected.df)
    assert sgd["welch_p"] == pytest.approx(expected.p) and sgd["beyond_seed_noise"] is True
    assert sgd["verdict"] == "worse"


def test_a_group_statistic_over_fewer_runs_than_its_n_says_its_own_n(root: Path, seeds) -> None:
    make_run(root, "adam", seed=3, stamp="20240501-120003", status="diverged", records=[])  # no epoch: no value
    out = invoke("compare", "adam-*", "--group", "-f", "markdown").stdout
    assert "| n | 4 |" in out
    assert "| test acc (mean ± sd) | 0.9743 ± 0.0015 (n=3) |" in out
    (adam,) = json.loads(invoke("compare", "adam-*", "--group", "-f", "json").stdout)
    assert (adam["n"], adam["test_acc_n"]) == (4, 3)


def test_group_markdown_says_whether_the_difference_beats_seed_noise(root: Path, seeds) -> None:
    out = invoke("compare", "adam-*", "sgd-*", "--group", "-f", "markdown").stdout
    assert "| n | 3 | 3 |" in out
    assert "| test acc (mean ± sd) | **0.9743 ± 0.0015** | 0.9650 ± 0.0030 (-0.0093) |" in out
    p = welch_t_test(SGD_ACCS, ADAM_ACCS).p
    assert f"| test acc vs baseline | baseline | worse (p={p:.2g}) |" in out
    assert RULE in " ".join(out.split()) and "against the baseline group" in out


def test_group_with_single_runs_cannot_test(root: Path, two) -> None:
    out = invoke("compare", "adam", "sgd", "--group", "-f", "markdown").stdout
    assert "| test acc vs baseline | baseline | n < 2 |" in out and "n < 2: too few runs" in out


def test_group_csv_parses(root: Path, seeds) -> None:
    rows = list(csv.DictReader(io.StringIO(invoke("compare", "adam-*", "sgd-*", "--group", "-f", "csv").stdout)))
    assert [r["group"] for r in rows] == ["optimizer.name=adam optimizer.lr=0.001", "optimizer.name=sgd optimizer.lr=0.1"]
    assert rows[1]["beyond_seed_noise"] == "true"
    assert json.loads(rows[0]["runs"])[0].startswith("adam-")


# --- plots -------------------------------------------------------------------------------


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_compare_plot_writes_a_png(root: Path, tmp_path: Path) -> None:
    for i in range(10):
        make_run(root, f"r{i}", stamp="20240501-120000", final_acc=0.9 + i / 100, epochs=4 + i)
    out = tmp_path / "fig.png"
    result = invoke("compare", str(root / "*"), "--plot", out, "-f", "csv")
    assert result.exit_code == 0, result.stderr
    width, height = png_size(out)
    assert width >= 1000 and height >= 600
    assert 30_000 < out.stat().st_size < 5_000_000


def test_show_plot_writes_a_png(two, tmp_path: Path) -> None:
    out = tmp_path / "one.png"
    assert invoke("show", "adam", "--plot", out, "-f", "json").exit_code == 0
    assert png_size(out)[0] >= 1000 and out.stat().st_size > 20_000


def test_plot_needs_a_png_name(two, tmp_path: Path) -> None:
    result = invoke("compare", "adam", "--plot", tmp_path / "fig.pdf")
    assert result.exit_code == 2 and "png" in result.stderr.lower()


# --- ls ----------------------------------------------------------------------------------


def test_ls_json_and_csv(root: Path, two) -> None:
    make_run(root, "live", stamp="20240501-150000", epochs=2, status="running")
    (root / "scratch").mkdir()
    result = invoke("ls", "-f", "json")
    assert result.exit_code == 0
    rows = json.loads(result.stdout)
    assert [r["name"] for r in rows] == ["adam-20240501-120000", "sgd-20240501-130000", "live-20240501-150000"]
    assert rows[0] == {"name": "adam-20240501-120000", "status": "completed", "epochs": 6,
                       "best_val_acc": rows[0]["best_val_acc"], "test_acc": 0.973,
                       "started": "2024-05-01T12:00:00", "duration_s": 13.5}
    assert rows[2]["status"] == "running" and rows[2]["test_acc"] is None
    assert "scratch" in result.stderr
    csv_rows = list(csv.DictReader(io.StringIO(invoke("ls", "-f", "csv", "--sort", "test_acc").stdout)))
    assert [r["name"][:3] for r in csv_rows] == ["ada", "sgd", "liv"]  # best first, missing last
    assert csv_rows[2]["test_acc"] == ""


def test_ls_sort_and_reverse(root: Path, two) -> None:
    names = [r["name"][:3] for r in json.loads(invoke("ls", "-f", "json", "--sort", "name", "-r").stdout)]
    assert names == ["sgd", "ada"]


def test_ls_sorts_runs_started_under_other_time_zones_in_the_order_they_began(root: Path, monkeypatch) -> None:
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        summaries = {"east": "2026-12-07T14:30:00+02:00",  # 12:30 UTC: first
                     "west": "2026-12-07T09:59:00-05:00",  # 14:59 UTC: last, though "09:59" reads earliest
                     "here": "2026-12-07T13:00:00+00:00"}
        for name, started in summaries.items():
            run = make_run(root, name)
            summary = json.loads((run / "summary.json").read_text())
            (run / "summary.json").write_text(json.dumps({**summary, "started": started}))
        listed = json.loads(invoke("ls", "-f", "json", "--sort", "started").stdout)
        assert [r["name"].split("-")[0] for r in listed] == ["east", "here", "west"]
        assert "2026-12-07 14:59:00" in invoke("ls").stdout  # shown on this machine's clock
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()


def test_ls_table_and_markdown(root: Path, two) -> None:
    table = invoke("ls")
    assert table.exit_code == 0 and "adam-20240501-120000" in table.stdout and "0.9730" in table.stdout
    md = invoke("ls", "-f", "markdown").stdout
    assert "| adam-20240501-120000 | completed | 6 |" in md


def test_ls_of_a_missing_folder_is_exit_2(tmp_path: Path) -> None:
    result = invoke("ls", "--runs-dir", tmp_path / "nowhere")
    assert result.exit_code == 2 and "nowhere" in result.stderr


def test_ls_of_two_thousand_runs_is_fast(tmp_path: Path) -> None:
    import time

    from test_runlog import write_many_runs

    write_many_runs(tmp_path / "many", 2000)
    for fmt in ("table", "json"):
        start = time.perf_counter()
        result = invoke("ls", "--runs-dir", tmp_path / "many", "-f", fmt)
        elapsed = time.perf_counter() - start
        assert result.exit_code == 0 and result.stdout.count("\n") >= 2000
        assert elapsed < 1.5, f"ls -f {fmt} took {elapsed:.2f} s"


# --- show --------------------------------------------------------------------------------


def test_show_table_has_config_summary_epochs_layers_curves(two) -> None:
    result = invoke("show", "adam")
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    for text in ("Config", "optimizer:", "Summary", "Epochs", "Layers", "Curves", "Diagnostics",
                 "hidden1", "6 *"):
        assert text in out


def test_show_json_holds_config_summary_and_epochs(two) -> None:
    data = json.loads(invoke("show", "sgd", "-f", "json").stdout)
    assert data["config"]["optimizer"]["name"] == "sgd"
    assert data["summary"]["status"] == "completed" and data["results"]["test_acc"] == 0.96
    assert [e["epoch"] for e in data["epochs"]] == [1, 2, 3, 4, 5, 6]


def test_show_csv_is_one_row_per_epoch_with_layer_columns(two) -> None:
    rows = list(csv.DictReader(io.StringIO(invoke("show", "adam", "-f", "csv").stdout)))
    assert len(rows) == 6
    assert float(rows[0]["hidden1.grad_norm"]) == pytest.approx(0.1)
    assert {f"{layer}.update_ratio" for layer in LAYERS} <= set(rows[0])


def test_show_markdown_has_a_yaml_block(two) -> None:
    out = invoke("show", "adam", "-f", "markdown").stdout
    assert "```yaml\nname: adam\n" in out and "### Epochs" in out


def test_show_of_a_run_with_no_summary(root: Path) -> None:
    make_run(root, "bare", epochs=2, summary=False)
    result = invoke("show", "bare")
    assert result.exit_code == 0 and "incomplete" in result.stdout and "no summary.json" in result.stdout


def test_show_of_a_shared_name_shows_the_newest_and_says_so(root: Path, two) -> None:
    make_run(root, "adam", stamp="20240601-120000")
    result = invoke("show", "adam", "-f", "json")
    assert result.exit_code == 0 and json.loads(result.stdout)["run"] == "adam-20240601-120000"
    assert "matches 2 runs: using the newest" in result.stderr


def test_every_inspection_option_has_help() -> None:
    for command in ("compare", "ls", "show"):
        result = invoke(command, "--help")
        assert result.exit_code == 0 and "Example: trickrun " + command in " ".join(result.stdout.split())


def test_diagnostics_columns_follow_the_layers_of_the_deepest_run(tmp_path):
    make_run(tmp_path, "shallow", records=curve_records(3, layers=("hidden1", "output")))
    make_run(tmp_path, "deep", stamp="20240501-130000",
             records=curve_records(3, layers=("hidden1", "hidden2", "hidden3", "output")))
    result = invoke("compare", "shallow", "deep", "--runs-dir", tmp_path, "--format", "markdown")
    assert result.exit_code == 0, result.output
    header = next(line for line in result.stdout.splitlines() if line.startswith("| run | hidden1 grad"))
    assert [c.split()[0] for c in header.strip("|").split("|")[1:-1]] == ["hidden1", "hidden2", "hidden3", "output"]


def test_an_ensemble_beside_a_trained_run_shows_what_differs_not_its_members_training_keys(root: Path) -> None:
    member = make_run(root, "adam", epochs=3)
    other = make_run(root, "sgd", stamp="20240501-130000", epochs=2, **{"optimizer.name": "sgd"})
    config = {"kind": "ensemble", "name": "avg", "members": {member.name: str(member), other.name: str(other)},
              "seeds": [0, 0], "data": {"dataset": "mnist", "train_limit": None}}
    summary = {"status": "completed", "kind": "ensemble", "test": {"acc": 0.98, "loss": 0.05}, "wall_s": 1.0}
    make_run(root, "avg", stamp="20240501-140000", config=config, records=[], summary=summary)
    out = invoke("compare", "avg", "adam", "-f", "markdown").stdout
    rows = [line.split(" | ")[0].strip("| ") for line in out.splitlines() if line.startswith("| ")]
    assert "kind" in rows and "seeds" in rows
    assert "optimizer.name" not in rows and "model.hidden" not in rows  # only the members have them
    assert "an ensemble trained nothing" in out
    (avg, adam) = json.loads(invoke("compare", "avg", "adam", "-f", "json").stdout)
    assert (avg["epochs_run"], avg["wall_s"], avg["s_per_epoch"]) == (None, None, None)
    assert adam["epochs_run"] == 3 and avg["test_acc"] == 0.98
    out = invoke("compare", "avg", "adam", "sgd", "-f", "markdown").stdout  # the runs' own difference stays
    assert "| optimizer.name | null | adam | sgd |" in out


def test_a_change_that_rounds_to_zero_has_no_minus_sign():
    # 1.2 s against 1.2 s was shown "(-0.0)", as if the second run were faster
    assert fmt_delta(1.18 - 1.22 + 0.01, "wall_s") == "+0.0"
    assert fmt_delta(-0.00004, "acc") == "+0.0000"
    assert fmt_delta(-0.04, "wall_s") == "+0.0"
    assert fmt_delta(-0.06, "wall_s") == "-0.1"
    assert fmt_delta(-0.0530, "acc") == "-0.0530"
    assert fmt_delta(-2e-5, "lr") == "-2.00e-05"


def test_curves_of_runs_with_no_epochs_claim_no_range(root: Path) -> None:
    # an interrupted run before its first epoch was shown "val_acc  —  0.0000 … 1.0000"
    make_run(root, "early", status="interrupted", records=[])
    make_run(root, "late", stamp="20240501-130000", status="interrupted", records=[])
    out = invoke("show", "early").stdout
    curves = out[out.index("Curves"):out.index("Diagnostics")]
    assert "0.0000" not in curves and "1.0000" not in curves and "1.00" not in curves
    assert [line.split() for line in curves.splitlines()[3:7]] == [[m, "—", "—"] for m in
                                                                   ("val_acc", "val_loss", "train_loss", "lr")]
    out = invoke("compare", "early", "late").stdout
    assert "val_acc: ▁" not in out and "val_loss: ▁" not in out
