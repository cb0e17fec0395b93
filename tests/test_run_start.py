"""A run whose start fails leaves nothing behind, and a script run from the folder that holds a
clone named `trickrun` (which Python then takes for a namespace package `trickrun`, so
trickrun/__init__.py never runs) trains as from anywhere else."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trickrun import api
from trickrun.cli import app
from trickrun.data import catalog
from trickrun.errors import RunDirError
from trickrun.rundir.reader import scan_runs
from trickrun.train import Trainer

runner = CliRunner()
TINY = {"model": {"hidden": [8]}, "data": {"val_size": 100}, "train": {"epochs": 3},
        "early_stopping": {"enabled": False}}
PACKAGE = Path(api.__file__).resolve().parent


def everything_in(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def fail_in_epoch(monkeypatch, epoch: int, error: BaseException) -> None:
    original = Trainer._run_epoch

    def run_epoch(self, saver):
        if self.epoch + 1 == epoch:
            raise error
        return original(self, saver)

    monkeypatch.setattr(Trainer, "_run_epoch", run_epoch)


def test_a_run_that_fails_in_its_first_epoch_leaves_no_run_directory(fake_data, tmp_path, monkeypatch):
    fail_in_epoch(monkeypatch, 1, RuntimeError("the kernels failed to compile"))
    with pytest.raises(RuntimeError, match="compile"):
        api.train(TINY, runs_dir=tmp_path / "runs", progress="quiet")
    assert everything_in(tmp_path / "runs") == []  # no run, and no hidden staging folder either


def test_the_cli_reports_a_start_failure_and_leaves_nothing(fake_data, tmp_path, monkeypatch):
    fail_in_epoch(monkeypatch, 1, RunDirError("cannot write runs/x/checkpoint.npz: the disk is full; free some space"))
    config = tmp_path / "c.yaml"
    config.write_text(json.dumps(TINY))
    result = runner.invoke(app, ["train", str(config), "--quiet"])
    assert result.exit_code == 1 and result.stderr.startswith("error: cannot write"), result.output
    entries, skipped = scan_runs(tmp_path / "runs")
    assert entries == [] and skipped == []  # `ls` has nothing to call "not a run"


@pytest.mark.parametrize(("call", "said"), [
    (dict(progress="silent"), "progress: unknown mode 'silent'; choose one of: auto, quiet, plain, rich"),
    (dict(overrides="optimizer.lr=0.01"), "overrides: give a list of KEY=VALUE strings, such as ['optimizer.lr=0.01']"),
])
def test_a_mistaken_api_call_is_a_config_error_and_leaves_nothing(fake_data, tmp_path, call, said):
    from trickrun.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        api.train(TINY, runs_dir=tmp_path / "runs", **call)
    assert str(info.value).startswith(said)
    assert everything_in(tmp_path / "runs") == []


def test_a_run_that_fails_after_an_epoch_keeps_its_directory_to_resume(fake_data, tmp_path, monkeypatch):
    original = Trainer._run_epoch
    fail_in_epoch(monkeypatch, 2, RuntimeError("boom"))
    with pytest.raises(RuntimeError):
        api.train(TINY, runs_dir=tmp_path / "runs", progress="quiet")
    (run,) = (tmp_path / "runs").iterdir()
    assert (run / "metrics.jsonl").read_text().count("\n") == 1 and (run / "checkpoint.npz").is_file()
    monkeypatch.setattr(Trainer, "_run_epoch", original)
    resumed = api.resume(run, progress="quiet")
    assert resumed.summary["status"] == "completed" and resumed.summary["epochs_run"] == 3


SHADOWED = """
import dataclasses, importlib.machinery, importlib.util, json, os, sys
# What Python makes of ./trickrun (a clone, no __init__.py) ahead of an editable install: a
# namespace package whose submodules come from the real package, and no __version__.
spec = importlib.machinery.ModuleSpec("trickrun", None, is_package=True)
spec.submodule_search_locations = [sys.argv[1]]
sys.modules["trickrun"] = importlib.util.module_from_spec(spec)
assert not hasattr(sys.modules["trickrun"], "__version__")
from trickrun.data import catalog
info = catalog.DATASETS["mnist"]
catalog.DATASETS["mnist"] = dataclasses.replace(info, sha256=json.loads(os.environ["TRICKRUN_TEST_SUMS"]))
from trickrun.api import train
result = train({"model": {"hidden": [8]}, "data": {"val_size": 100}, "train": {"epochs": 1}},
               runs_dir=sys.argv[2], progress="quiet")
print(result.summary["status"], result.summary["versions"]["trickrun"])
"""


def test_a_script_beside_a_clone_named_trickrun_trains(fake_data, tmp_path):
    from trickrun.version import __version__

    env = {**os.environ, "TRICKRUN_TEST_SUMS": json.dumps(dict(catalog.DATASETS["mnist"].sha256))}
    done = subprocess.run([sys.executable, "-c", SHADOWED, str(PACKAGE), str(tmp_path / "runs")], env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["completed", __version__]
