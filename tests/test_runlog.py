"""Reading run directories back: tolerant readers, statuses, derived results, finding runs."""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path

import pytest

from runfactory import DEAD_PID, curve_records, make_run
from trickrun.errors import ConfigError
from trickrun.rundir.files import effective_status, read_config, read_metrics, read_summary
from trickrun.rundir.reader import load_run, resolve_run, resolve_runs, scan_runs, split_dir_name


# --- metrics.jsonl -----------------------------------------------------------------------


def test_read_metrics_skips_a_torn_last_line_quietly(tmp_path: Path) -> None:
    path = make_run(tmp_path, epochs=3, torn_tail='{"epoch": 4, "lr": 0.00')
    records, warnings = read_metrics(path / "metrics.jsonl")
    assert [r["epoch"] for r in records] == [1, 2, 3]
    assert warnings == []


def test_read_metrics_warns_about_garbage_in_the_middle_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\nnot json\n[1, 2]\n\n{"epoch": 2}\n', encoding="utf-8")
    records, warnings = read_metrics(path)
    assert records == [{"epoch": 1}, {"epoch": 2}]
    assert len(warnings) == 2
    assert "line 2" in warnings[0] and "line 3" in warnings[1]
    assert str(path) in warnings[0]


def test_read_metrics_accepts_a_complete_last_line_without_newline(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2}', encoding="utf-8")
    assert read_metrics(path) == ([{"epoch": 1}, {"epoch": 2}], [])


def test_read_metrics_of_a_missing_file_is_empty(tmp_path: Path) -> None:
    assert read_metrics(tmp_path / "nope.jsonl") == ([], [])


def test_null_metrics_read_as_none(tmp_path: Path) -> None:
    records = curve_records(2)
    records[1]["val_loss"] = None
    run = load_run(make_run(tmp_path, records=records))
    assert run.series("val_loss")[1] is None
    assert run.series("val_loss")[0] == pytest.approx(records[0]["val_loss"])


# --- summary and config ------------------------------------------------------------------


def test_read_summary_unparsable_is_missing_with_warning(tmp_path: Path) -> None:
    path = tmp_path / "summary.json"
    path.write_text("{broken", encoding="utf-8")
    summary, warnings = read_summary(path)
    assert summary is None and "not valid JSON" in warnings[0]


def test_read_config_reads_yaml_12_floats_and_warns_when_missing(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("optimizer:\n  lr: 1e-3\n", encoding="utf-8")
    assert read_config(path) == ({"optimizer": {"lr": 0.001}}, [])
    config, warnings = read_config(tmp_path / "none.yaml")
    assert config == {} and "missing" in warnings[0]


@pytest.mark.parametrize(
    ("summary", "expected"),
    [
        (None, "incomplete"),
        ({"status": "completed"}, "completed"),
        ({"status": "diverged"}, "diverged"),
        ({"status": "running", "pid": os.getpid()}, "running"),
        ({"status": "running", "pid": DEAD_PID}, "stale"),
        ({"status": "running", "pid": DEAD_PID, "host": "some-other-machine"}, "running"),
    ],
)
def test_effective_status(summary: dict | None, expected: str) -> None:
    import socket

    if summary is not None and "pid" in summary:
        summary.setdefault("host", socket.gethostname())
    assert effective_status(summary) == expected


def test_split_dir_name() -> None:
    assert split_dir_name("adam-lr-20240501-120000") == ("adam-lr", datetime(2024, 5, 1, 12, 0, 0))
    assert split_dir_name("adam-20240501-120000-3") == ("adam", datetime(2024, 5, 1, 12, 0, 0))
    assert split_dir_name("no-stamp") == ("no-stamp", None)


# --- results -----------------------------------------------------------------------------


def test_results_of_a_completed_run_come_from_the_summary(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, epochs=5, test_acc=0.9512))
    summary = json.loads((run.path / "summary.json").read_text())
    res = run.results()
    assert res["status"] == "completed"
    assert res["epochs_run"] == 5
    assert res["best_epoch"] == summary["best_epoch"]
    assert res["best_val_acc"] == summary["best"]["val_acc"]
    assert res["best_val_loss"] == summary["best"]["val_loss"]
    assert res["test_acc"] == 0.9512
    assert res["wall_s"] == summary["wall_s"]
    assert res["s_per_epoch"] == pytest.approx(2.0)


def test_results_of_an_unfinished_run_come_from_metrics(tmp_path: Path) -> None:
    records = curve_records(8, overfit_after=3)  # val_loss is lowest at epoch 3 or 4
    best = min(records, key=lambda r: r["val_loss"])
    run = load_run(make_run(tmp_path, records=records, status="running", pid=DEAD_PID))
    res = run.results()
    assert res["status"] == "stale"
    assert res["epochs_run"] == 8
    assert res["best_epoch"] == best["epoch"]  # the config's monitor is val_loss
    assert res["best_val_loss"] == pytest.approx(best["val_loss"])
    assert res["best_val_acc"] == pytest.approx(best["val_acc"])
    assert res["test_acc"] is None and res["test_loss"] is None
    assert res["wall_s"] == pytest.approx(16.0)  # the sum of epoch_s


def test_results_use_val_acc_when_it_is_the_monitor(tmp_path: Path) -> None:
    records = curve_records(6)
    records[1]["val_acc"] = 0.999
    run = load_run(make_run(tmp_path, records=records, summary=False,
                            **{"early_stopping.monitor": "val_acc"}))
    assert run.status == "incomplete"
    assert run.results()["best_epoch"] == 2


def test_a_run_without_epochs_has_empty_results(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, records=[], status="running"))
    res = run.results()
    assert res["status"] == "running"
    assert res["epochs_run"] == 0 and res["best_epoch"] is None and res["best_val_acc"] is None


# --- finding runs ------------------------------------------------------------------------


@pytest.fixture
def runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(root, "adam", stamp="20240501-120000")
    make_run(root, "adamw", stamp="20240501-120000")
    make_run(root, "sgd", stamp="20240501-130000")
    make_run(root, "sgd", stamp="20240501-140000")
    (root / "notes").mkdir()
    return root


def test_resolve_by_run_name(runs: Path) -> None:
    assert resolve_run("adam", runs) == [runs / "adam-20240501-120000"]


def test_resolve_by_full_directory_name_even_with_a_numbered_sibling(runs: Path) -> None:
    make_run(runs, "adam", stamp="20240501-120000-2")
    assert resolve_run("adam-20240501-120000", runs) == [runs / "adam-20240501-120000"]


def test_resolve_by_unique_prefix(runs: Path) -> None:
    assert resolve_run("adamw-2024", runs) == [runs / "adamw-20240501-120000"]
    assert resolve_run("sgd-20240501-13", runs) == [runs / "sgd-20240501-130000"]


def test_resolve_by_path(runs: Path) -> None:
    path = runs / "sgd-20240501-130000"
    assert resolve_run(str(path), runs) == [path]


def test_resolve_glob_relative_to_cwd_and_to_runs_folder(runs: Path, monkeypatch) -> None:
    monkeypatch.chdir(runs.parent)
    expected = [runs / "sgd-20240501-130000", runs / "sgd-20240501-140000"]
    assert resolve_run("runs/sgd-*", runs) == [Path("runs/sgd-20240501-130000"), Path("runs/sgd-20240501-140000")]
    assert resolve_run("sgd-*", runs) == expected


def test_resolve_glob_skips_folders_that_are_not_runs(runs: Path) -> None:
    found = resolve_run(str(runs / "*"), runs)
    assert runs / "notes" not in found and len(found) == 4


def test_a_name_matching_several_runs_is_an_error_listing_them(runs: Path) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_run("sgd", runs)
    message = str(err.value)
    assert "'sgd'" in message and "sgd-20240501-130000" in message and "sgd-20240501-140000" in message


def test_an_ambiguous_prefix_is_an_error(runs: Path) -> None:
    with pytest.raises(ConfigError, match="prefix 'ada' matches 2 runs"):
        resolve_run("ada", runs)


def test_no_match_is_an_error_naming_it(runs: Path) -> None:
    with pytest.raises(ConfigError, match="'rmsprop' matches no run"):
        resolve_run("rmsprop", runs)
    with pytest.raises(ConfigError, match="glob 'rms\\*' matches nothing"):
        resolve_run("rms*", runs)


def test_a_folder_that_is_not_a_run_is_an_error_naming_it(runs: Path) -> None:
    with pytest.raises(ConfigError, match="notes.*not a run directory"):
        resolve_run(str(runs / "notes"), runs)
    with pytest.raises(ConfigError, match="notes.*not a run directory"):
        resolve_run("notes", runs)


def test_missing_runs_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_run("adam", tmp_path / "nowhere")


def test_resolve_runs_keeps_order_and_drops_duplicates(runs: Path) -> None:
    found = resolve_runs(["sgd-20240501-14", "adam", str(runs / "adam-20240501-120000")], runs)
    assert [p.name for p in found] == ["sgd-20240501-140000", "adam-20240501-120000"]


# --- ls ----------------------------------------------------------------------------------


def test_scan_runs_reads_every_kind_of_run_and_names_the_rest(tmp_path: Path) -> None:
    root = tmp_path / "runs"
    make_run(root, "done", stamp="20240501-120000", epochs=4, test_acc=0.95)
    make_run(root, "live", stamp="20240501-130000", epochs=2, status="running")
    make_run(root, "dead", stamp="20240501-140000", epochs=3, status="running", pid=DEAD_PID,
             torn_tail='{"epo')
    make_run(root, "bare", stamp="20240501-150000", epochs=1, summary=False)
    (root / "scratch").mkdir()
    (root / "stray.txt").write_text("x")
    entries, skipped = scan_runs(root)
    by_name = {e.name.split("-")[0]: e for e in entries}
    assert skipped == ["scratch"]
    assert by_name["done"].status == "completed" and by_name["done"].epochs == 4
    assert by_name["done"].test_acc == 0.95 and by_name["done"].duration_s == pytest.approx(9.5)
    assert by_name["live"].status == "running" and by_name["live"].epochs == 2
    assert by_name["live"].duration_s > 0
    assert by_name["dead"].status == "stale" and by_name["dead"].epochs == 3  # torn line not counted
    assert by_name["bare"].status == "incomplete"
    assert by_name["bare"].started == datetime(2024, 5, 1, 15, 0, 0)  # from the folder name


def write_many_runs(root: Path, n: int) -> None:
    """`n` finished runs holding the one file `ls` reads of them, summary.json, written
    directly because make_run is too slow for thousands."""
    root.mkdir(parents=True)
    for i in range(n):
        path = root / f"run{i % 40}-20240501-{i // 3600:02d}{i // 60 % 60:02d}{i % 60:02d}"
        path.mkdir()
        summary = {"status": "completed", "epochs_run": 30, "best_epoch": 20, "wall_s": 60.0 + i,
                   "best": {"monitor": "val_loss", "val_loss": 0.1, "val_acc": 0.9 + i / 1e5},
                   "test": {"loss": 0.1, "acc": 0.9 + i / 1e5}, "started": "2024-05-01T12:00:00+0000"}
        (path / "summary.json").write_text(json.dumps(summary))


# --- records of the wrong shape, paths with glob characters --------------------------------

BAD_RECORDS = {
    "layers not a list": {"layers": 5},
    "layer not a dict": {"layers": [3]},
    "layer name not a string": {"layers": [{"name": 7, "grad_norm": 0.1}]},
    "layer value not a number": {"layers": [{"name": "hidden1", "grad_norm": "big"}]},
    "epoch null": {"epoch": None},
    "epoch a string": {"epoch": "2"},
    "metric a string": {"val_acc": "0.9"},
    "metric a list": {"val_loss": [0.1]},
    "metric a bool": {"train_acc": True},
}


@pytest.mark.parametrize("change", list(BAD_RECORDS.values()), ids=list(BAD_RECORDS))
def test_show_and_compare_skip_a_record_of_the_wrong_shape_with_a_warning(tmp_path: Path, change: dict) -> None:
    from typer.testing import CliRunner

    from trickrun.cli import app

    root = tmp_path / "runs"
    records = curve_records(4)
    bad = make_run(root, "bad", records=records)
    records[1] = {**records[1], **change}
    (bad / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    make_run(root, "good")
    runner = CliRunner()
    for args in (["show", "bad"], ["compare", "bad", "good"], ["show", "bad", "-f", "json"]):
        result = runner.invoke(app, [*args, "--runs-dir", str(root)])
        assert result.exit_code == 0, (args, result.output, result.exception)
        assert "Traceback" not in result.output
        assert f"{bad / 'metrics.jsonl'}: line 2 is not a valid epoch record" in result.stderr.replace("\n", "")
    assert [r["epoch"] for r in load_run(bad).records] == [1, 3, 4]


def test_read_metrics_keeps_records_of_the_right_shape(tmp_path: Path) -> None:
    path = tmp_path / "metrics.jsonl"
    good = [{"epoch": 1, "val_loss": None, "layers": None}, {"lr": 0.1, "layers": [{"name": "output", "x": 1}]}]
    path.write_text("".join(json.dumps(r) + "\n" for r in good), encoding="utf-8")
    assert read_metrics(path) == (good, [])


def test_a_path_with_glob_characters_that_exists_is_taken_as_it_is(tmp_path: Path, monkeypatch) -> None:
    run = make_run(tmp_path / "exp[1]", "adam")
    assert resolve_run(str(run), tmp_path) == [run]
    assert resolve_runs([str(run)], tmp_path) == [run.resolve()]
    named = make_run(tmp_path / "runs", "lr[0.1]")
    assert resolve_run(named.name, tmp_path / "runs") == [named]  # a directory name under the runs folder
    monkeypatch.chdir(tmp_path)
    assert resolve_run("exp[1]/adam-20240501-120000", tmp_path / "runs") == [Path("exp[1]/adam-20240501-120000")]
    assert resolve_run("runs/lr[[]0.1]-*", tmp_path / "runs") == [Path("runs/lr[0.1]-20240501-120000")]  # still a glob
