"""`trickrun export`: one tidy table, one row per run and epoch, with the run, its sweep, its
seed, the config keys that differ among the runs, and every metric of metrics.jsonl."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import closed_port_url, write_fake_dataset
from runfactory import curve_records, make_run, write_record
from subproc import start
from trickrun.cli import app
from trickrun.data import catalog

runner = CliRunner()
QUICK = "data: {val_size: 100}\nmodel: {hidden: [8]}\ntrain: {epochs: 3, batch_size: 64}\n"


def export(*args: str):
    return runner.invoke(app, ["export", *args])


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def metrics_of(run_dir: Path) -> list[dict]:
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture(scope="module")
def sweep_root(tmp_path_factory) -> Path:
    """A sweep trained for real on the fake data, once for this module: optimizer.lr over two
    values times two seeds, 3 epochs each. Returns its runs folder."""
    tmp = tmp_path_factory.mktemp("sweep")
    root = tmp / "runs"
    config = tmp / "quick.yaml"
    config.write_text(QUICK)
    with pytest.MonkeyPatch.context() as patch:  # as the fake_data fixture, for a whole module
        sums = write_fake_dataset(tmp / "data" / "mnist")
        patch.setitem(catalog.DATASETS, "mnist", dataclasses.replace(catalog.DATASETS["mnist"], sha256=sums))
        for name, value in (("TRICKRUN_DATA_DIR", tmp / "data"), ("XDG_CACHE_HOME", tmp / "cache"),
                            ("TRICKRUN_MIRRORS", closed_port_url())):
            patch.setenv(name, str(value))
        proc = start("sweep", str(config), "--grid", "optimizer.lr=0.01,0.001", "--seeds", "2", "--jobs", "1",
                     "--quiet", "--runs-dir", str(root))
        try:
            _, err = proc.communicate(timeout=300)
        finally:
            if proc.poll() is None:
                proc.kill()
    assert proc.returncode == 0, err
    return root


def export_sweep(root: Path) -> tuple[str, dict[str, dict], set[tuple[str, int]]]:
    """The csv of `trickrun export --sweep quick`, the sweep's cells by run directory name, and
    the (run, epoch) pairs their metrics.jsonl hold."""
    cells = json.loads((root / "sweeps" / "quick" / "sweep.json").read_text())["cells"]
    run_dirs = {Path(c["run_dir"]).name: c for c in cells}
    assert len(run_dirs) == 4
    result = export("--sweep", "quick", "--runs-dir", str(root))
    assert result.exit_code == 0, result.output
    pairs = {(name, record["epoch"]) for name in run_dirs for record in metrics_of(root / name)}
    assert len(pairs) == sum(len(metrics_of(root / name)) for name in run_dirs) == 12
    return result.stdout, run_dirs, pairs


def test_export_of_a_sweep_has_one_row_per_run_and_epoch_with_the_varied_keys_as_columns(sweep_root):
    text, run_dirs, pairs = export_sweep(sweep_root)
    rows = csv_rows(text)
    assert len(rows) == len(pairs)
    assert {(row["run"], int(row["epoch"])) for row in rows} == pairs
    header = list(rows[0])
    assert header[:6] == ["run", "name", "sweep", "status", "seed", "optimizer.lr"]
    assert "model.hidden" not in header and "train.epochs" not in header  # the same in every run
    assert {"train_loss", "val_acc", "lr", "layers.hidden1.grad_norm", "layers.output.weight_norm"} <= set(header)
    for row in rows:
        cell = run_dirs[row["run"]]
        record = metrics_of(sweep_root / row["run"])[int(row["epoch"]) - 1]
        assert row["sweep"] == "quick" and row["status"] == "completed"
        assert int(row["seed"]) == cell["seed"]
        assert float(row["optimizer.lr"]) == cell["overrides"]["optimizer.lr"]
        assert float(row["val_acc"]) == record["val_acc"]  # every digit kept
        grad = {layer["name"]: layer["grad_norm"] for layer in record["layers"]}
        assert float(row["layers.hidden1.grad_norm"]) == grad["hidden1"]


def test_export_of_a_sweep_loads_in_pandas(sweep_root):
    pd = pytest.importorskip("pandas")
    text, run_dirs, pairs = export_sweep(sweep_root)
    frame = pd.read_csv(io.StringIO(text))
    assert frame.shape[0] == len(pairs) and frame.groupby(["run", "epoch"]).size().max() == 1
    assert set(zip(frame["run"], frame["epoch"])) == pairs
    assert set(frame["optimizer.lr"]) == {0.01, 0.001} and set(frame["seed"]) == {0, 1}
    assert frame["val_acc"].dtype.kind == "f" and frame["epoch"].dtype.kind == "i"


def test_only_the_keys_that_differ_become_columns_and_lists_are_json_text(root_with_runs):
    result = export("adam", "sgd")
    assert result.exit_code == 0, result.output
    rows = csv_rows(result.stdout)
    header = list(rows[0])
    config_columns = header[header.index("seed") + 1:header.index("epoch")]
    assert config_columns == ["model.hidden", "optimizer.lr", "optimizer.name"]
    assert "name" not in config_columns and "seed" not in config_columns  # columns of their own
    sgd = [row for row in rows if row["name"] == "sgd"]
    assert len(sgd) == 2 and {row["model.hidden"] for row in sgd} == {"[512, 256]"}
    assert json.loads(sgd[0]["model.hidden"]) == [512, 256]
    assert {row["sweep"] for row in rows} == {""}  # in no sweep


def test_missing_and_non_finite_values_are_empty_cells_in_csv_and_null_in_jsonl(tmp_path):
    root = tmp_path / "runs"
    records = curve_records(2)
    records[1]["val_loss"] = None  # how metrics.jsonl stores a NaN
    del records[1]["layers"][0]["grad_norm"]
    run = make_run(root, "adam", records=records)
    records[0]["train_loss"] = float("nan")  # as a hand-edited file may hold them (Python's JSON takes them)
    records[0]["layers"][1]["grad_norm"] = float("inf")
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    rows = csv_rows(export("adam").stdout)
    assert rows[1]["val_loss"] == "" and rows[1]["layers.hidden1.grad_norm"] == ""
    assert rows[0]["train_loss"] == "" and rows[0]["layers.hidden2.grad_norm"] == ""
    assert rows[1]["layers.hidden1.dead_frac"] == "0.05"
    lines = export("adam", "--format", "jsonl").stdout.splitlines()
    objects = [json.loads(line) for line in lines]
    assert len(objects) == 2 and objects[1]["val_loss"] is None and objects[1]["layers.hidden1.grad_norm"] is None
    assert list(objects[0]) == list(rows[0])  # the same columns in the same order


def test_a_runs_sweep_is_found_from_the_records_when_it_is_named_on_its_own(tmp_path):
    root = tmp_path / "runs"
    cell = make_run(root, "lr_lr-0.1_s0")
    loose = make_run(root, "loose")
    (root / "sweeps" / "lr").mkdir(parents=True)
    (root / "sweeps" / "lr" / "sweep.json").write_text(json.dumps(
        {"name": "lr", "cells": [{"index": 0, "run_dir": f"/somewhere/else/{cell.name}"}]}))
    rows = csv_rows(export(cell.name, loose.name).stdout)
    assert {row["run"]: row["sweep"] for row in rows} == {cell.name: "lr", loose.name: ""}


def test_runs_without_epochs_are_named_and_none_at_all_is_exit_2(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "adam", epochs=2)
    make_run(root, "empty", records=[])
    result = export("adam", "empty")
    assert result.exit_code == 0 and "has no epoch records" in result.stderr
    assert {row["run"] for row in csv_rows(result.stdout)} == {"adam-20240501-120000"}
    result = export("adam", "empty", "-o", str(tmp_path / "t.csv"))
    assert "wrote 2 rows (1 run) to" in result.stderr  # the run that adds no rows is not counted
    result = export("empty")
    assert result.exit_code == 2 and "nothing to export" in result.stderr


def test_output_file_is_replaced_whole_and_its_suffix_chooses_the_format(tmp_path):
    make_run(tmp_path / "runs", "adam", epochs=3)
    out = tmp_path / "table.jsonl"
    out.write_text("old\n")
    result = export("adam", "-o", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and "wrote 3 rows (1 run)" in result.stderr
    assert [json.loads(line)["epoch"] for line in out.read_text().splitlines()] == [1, 2, 3]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left
    result = export("nosuchrun", "-o", str(out))
    assert result.exit_code == 2 and [json.loads(line)["epoch"] for line in out.read_text().splitlines()] == [1, 2, 3]
    assert export("adam", "-o", str(tmp_path)).exit_code == 2  # a folder
    assert export("adam", "-o", str(tmp_path / "no" / "t.csv")).exit_code == 2


def test_parquet_without_pyarrow_is_exit_2_saying_how_to_install_it(tmp_path, monkeypatch):
    make_run(tmp_path / "runs", "adam")
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # `import pyarrow` raises ImportError
    out = tmp_path / "t.parquet"
    for args in (["-o", str(out)], ["--format", "parquet", "-o", str(out)]):
        result = export("adam", *args)
        assert result.exit_code == 2 and "pip install pyarrow" in result.stderr
        assert not out.exists()


def test_parquet_holds_the_same_table(tmp_path):
    pq = pytest.importorskip("pyarrow.parquet")
    root = tmp_path / "runs"
    make_run(root, "adam", epochs=3)
    make_run(root, "sgd", epochs=2, **{"optimizer.name": "sgd"})
    out = tmp_path / "t.parquet"
    result = export("adam", "sgd", "-o", str(out))
    assert result.exit_code == 0, result.output
    table = pq.read_table(out).to_pylist()
    rows = csv_rows(export("adam", "sgd").stdout)
    assert len(table) == len(rows) == 5
    assert [(r["run"], r["epoch"], r["optimizer.name"]) for r in table] == \
        [(r["run"], int(r["epoch"]), r["optimizer.name"]) for r in rows]
    assert export("adam", "--format", "parquet").exit_code == 2  # binary: only to a file


@pytest.fixture
def root_with_runs(tmp_path: Path) -> Path:
    root = tmp_path / "runs"
    make_run(root, "adam", epochs=3)
    make_run(root, "sgd", seed=1, epochs=2, **{"optimizer.name": "sgd", "optimizer.lr": 0.1,
                                                "model.hidden": [512, 256]})
    return root


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full, a device that is always full")
def test_a_stdout_that_is_full_is_exit_1_saying_so_without_a_traceback(tmp_path):
    run = make_run(tmp_path / "runs", "a")
    with open("/dev/full", "wb") as full:
        proc = subprocess.run([sys.executable, "-m", "trickrun", "export", str(run)], stdout=full,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    assert proc.returncode == 1, proc.stderr
    said = " ".join(proc.stderr.split())
    assert said.startswith("error: cannot write the table to stdout: No space left on device"), said
    assert "-o FILE" in said and "Traceback" not in said and "Exception ignored" not in said


def test_a_reader_that_closed_the_pipe_is_exit_1_silently_as_for_every_command(tmp_path):
    """`trickrun export | head -1`: as `trickrun ls | head -1` (README, exit codes), not an error
    telling to free some space."""
    import os

    run = make_run(tmp_path / "runs", "a")
    read, write = os.pipe()
    os.close(read)  # the reader is gone before the first byte
    try:
        proc = subprocess.run([sys.executable, "-m", "trickrun", "export", str(run)], stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=120)
    finally:
        os.close(write)
    assert proc.returncode == 1 and proc.stderr == ""


def test_a_reader_gone_mid_table_is_exit_1_also_under_pythonunbuffered(tmp_path):
    """With PYTHONUNBUFFERED=1 a write cut short by the reader leaving lost the rest of the table
    without an error, and the export exited 0."""
    import os

    run = make_run(tmp_path / "runs", "a", epochs=600)  # a table far larger than a pipe holds
    proc = subprocess.Popen([sys.executable, "-m", "trickrun", "export", str(run)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout.read(1) == b"r"  # the table is being written, and fills the pipe
        proc.stdout.close()
        err = proc.stderr.read()
        assert proc.wait(timeout=120) == 1 and err == b""
    finally:
        proc.kill()
        proc.wait()


def test_an_export_is_never_written_into_a_run_directory(root_with_runs):
    (adam,) = root_with_runs.glob("adam-*")
    before = (adam / "summary.json").read_bytes()
    result = export("adam", "-o", str(adam / "summary.json"))
    assert result.exit_code == 2 and "is a run directory; write the export outside it" in result.output
    assert (adam / "summary.json").read_bytes() == before


def test_a_run_that_is_a_link_is_exported_under_the_link_s_name(tmp_path):
    root = tmp_path / "runs"
    real = make_run(tmp_path / "elsewhere", "real")
    (root).mkdir()
    (root / "linked-20240501-120000").symlink_to(real)
    result = export("linked")
    assert result.exit_code == 0, result.output
    assert {row["run"] for row in csv_rows(result.stdout)} == {"linked-20240501-120000"}  # what show takes


def test_a_shared_name_exports_its_newest_run_with_a_note_as_compare_takes_it(tmp_path):
    root = tmp_path / "runs"
    make_run(root, "baseline", stamp="20240501-120000", epochs=2)
    newer = make_run(root, "baseline", stamp="20240502-120000", epochs=3)
    result = export("baseline")
    assert result.exit_code == 0, result.output
    assert {row["run"] for row in csv_rows(result.stdout)} == {newer.name}
    assert "matches 2 runs" in result.stderr and newer.name in result.stderr
    assert len({row["run"] for row in csv_rows(export("baseline-*").stdout)}) == 2  # a pattern takes all


def test_an_export_never_replaces_a_sweep_record(tmp_path):
    root = tmp_path / "runs"
    run = make_run(root, "adam")
    folder = write_record(root, "sq", [run])
    before = (folder / "sweep.json").read_bytes()
    result = export("adam", "-o", str(folder / "sweep.json"))
    assert result.exit_code == 2 and "among the sweeps' records" in result.stderr
    assert (folder / "sweep.json").read_bytes() == before


def test_an_export_into_a_pipe_or_through_a_link_writes_into_it_and_never_replaces_it(tmp_path):
    import os
    import threading

    root = tmp_path / "runs"
    make_run(root, "adam")
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    got = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    result = export("adam", "-o", str(fifo))
    reader.join(timeout=30)
    assert result.exit_code == 0, result.output
    assert got and got[0].startswith(b"run,") and fifo.is_fifo()  # the reader got the table; the pipe stays
    target, link = tmp_path / "real.csv", tmp_path / "link.csv"
    target.write_text("old")
    link.symlink_to(target)
    assert export("adam", "-o", str(link)).exit_code == 0
    assert link.is_symlink() and target.read_text().startswith("run,")
