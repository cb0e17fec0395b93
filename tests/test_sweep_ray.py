"""trickrun sweep --backend ray, on a local Ray instance the sweep starts and stops (one per
module: about 10 s here). Ray's session files and anything it writes under the home folder go
to this test's own temporary folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from helpers import requires_real_mnist

pytest.importorskip("ray", reason="the ray extra is not installed")

TINY = """\
data: {train_limit: 300, val_size: 200}
model: {hidden: [16]}
train: {epochs: 2, batch_size: 64}
"""


@pytest.fixture(scope="module")
def ray_env(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    # Ray's unix sockets live under its temp folder, whose path must stay short.
    ray_tmp = tempfile.mkdtemp(prefix="tr-ray-", dir="/tmp")
    env = dict(os.environ, HOME=str(home), RAY_TMPDIR=ray_tmp, TMPDIR=ray_tmp, RAY_USAGE_STATS_ENABLED="0")
    real_home = Path(os.path.expanduser("~"))
    before = sorted(os.listdir(real_home))
    yield env, home
    shutil.rmtree(ray_tmp, ignore_errors=True)
    assert sorted(os.listdir(real_home)) == before, "Ray wrote into the real home folder"


def sweep(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "trickrun", "sweep", *args], env=env, capture_output=True,
                          text=True, timeout=600)


def cells(runs: Path, name: str) -> list[dict]:
    return json.loads((runs / "sweeps" / name / "sweep.json").read_text())["cells"]


@requires_real_mnist
def test_a_sweep_on_local_ray_matches_the_local_backend_and_reports_its_failed_cell(tmp_path, ray_env):
    env, home = ray_env
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY)
    empty = tmp_path / "empty"  # no MNIST here: that cell fails in its worker
    empty.mkdir()
    # One sweep, one Ray start: the cells whose data.dir is empty fail (their data cannot be
    # verified, so they are never sent), the others run on Ray.
    grid = ["--grid", f"data.dir=[null, {empty}]", "--grid", "optimizer.lr=0.01,0.001", "--seeds", "2",
            "--jobs", "2", "--name", "tiny"]
    local = sweep(env, str(config), *grid, "--runs-dir", str(tmp_path / "local"), "--quiet")
    assert local.returncode == 1, local.stderr

    runs = tmp_path / "ray"
    done = sweep(env, str(config), *grid, "--runs-dir", str(runs), "--backend", "ray")
    assert done.returncode == 1, done.stderr
    on_ray, on_local = cells(runs, "tiny"), cells(tmp_path / "local", "tiny")
    assert [c["status"] for c in on_ray] == [c["status"] for c in on_local]
    assert [c["status"] == "failed" for c in on_ray] == [False, False, True, True] * 2
    assert all("holds none of the files" in c["error"] for c in on_ray if c["status"] == "failed")
    assert "failed" in done.stderr
    for a, b in zip(on_ray, on_local):  # the same cell gives the same numbers, wherever it ran
        if a["status"] == "failed":
            continue
        sa = json.loads((Path(a["run_dir"]) / "summary.json").read_text())
        sb = json.loads((Path(b["run_dir"]) / "summary.json").read_text())
        assert sa["test"] == sb["test"] and sa["epochs_run"] == sb["epochs_run"]
        files = sorted(p.name for p in Path(a["run_dir"]).iterdir() if not p.name.startswith("."))
        assert files == ["config.yaml", "metrics.jsonl", "model.npz", "summary.json"]
    assert "optimizer.lr=0.01" in done.stdout  # the leaderboard

    # Finished cells are skipped; the failed ones are tried again (and fail again).
    again = sweep(env, str(config), *grid, "--runs-dir", str(runs), "--backend", "ray")
    assert again.returncode == 1 and "4 of 8 cells already finished: skipped" in again.stderr


ENDLESS = ("data: {val_size: 100}\nmodel: {hidden: [8]}\ntrain: {epochs: 100000, batch_size: 64}\n"
           "early_stopping: {enabled: false}\nschedule: {name: constant}\n")


def processes_naming(folder: Path) -> list[int]:
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if str(folder).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
        except OSError:
            pass
    return found


def wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_kill_9_of_the_sweep_ends_the_local_ray_it_started(fake_data, tmp_path, ray_env):
    from subproc import _PRELUDE
    from trickrun.data import catalog

    env, _ = ray_env
    env = {**env, "TRICKRUN_DATA_DIR": str(fake_data),
           "TRICKRUN_TEST_SUMS": json.dumps(dict(catalog.DATASETS["mnist"].sha256))}
    config = tmp_path / "endless.yaml"
    config.write_text(ENDLESS)
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-c", _PRELUDE, "sweep", str(config), "--grid", "optimizer.lr=0.01,0.001",
                             "--backend", "ray", "--jobs", "2", "--runs-dir", str(runs), "--quiet"],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(lambda: (runs / "sweeps" / "endless" / "sweep.json").exists()
                 and [c["status"] for c in cells(runs, "endless")] == ["running", "running"])
        (folder,) = Path(env["TMPDIR"]).glob("trickrun-ray-*")
        assert processes_naming(folder)  # Ray's processes say where their folder is
        proc.kill()
        proc.wait()
        wait_for(lambda: not processes_naming(folder) and not folder.exists(), timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
