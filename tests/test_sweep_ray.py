"""trickrun sweep --backend ray, on a local Ray instance the sweep starts and stops (one per
module: about 10 s here). Ray's session files and anything it writes under the home folder go
to this test's own temporary folders."""

from __future__ import annotations

import json
import os
import shutil
import signal
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
    ray_tmp = tempfile.mkdtemp(prefix="t", dir="/tmp")
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
        (folder,) = Path(env["TMPDIR"]).glob("trickrun-*")
        assert processes_naming(folder)  # Ray's processes say where their folder is
        proc.kill()
        proc.wait()
        wait_for(lambda: not processes_naming(folder) and not folder.exists(), timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()


# A cluster on this machine, as Ray's own tests simulate one: a head node with no CPU (no task
# runs there) and a worker node with one, each a set of processes of its own. It prints its
# address; when a line arrives on stdin it adds a second worker node, then kills the first as a
# lost machine dies (no graceful shutdown); it shuts down at end of input. A task can only be
# on the first node until it is lost, and only on the second after.
LOSE_A_NODE = """\
import sys
from ray.cluster_utils import Cluster
cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
first = cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
print(cluster.address, flush=True)
sys.stdin.readline()
cluster.add_node(num_cpus=1)
cluster.wait_for_nodes()
cluster.remove_node(first, allow_graceful=False)
print("removed", flush=True)
sys.stdin.read()
cluster.shutdown()
"""


def attempts(tmp: str) -> set[Path]:
    """The scratch copies of cells (worker.train_copy's, one per attempt at a task) that have
    trained an epoch: all the nodes here share the machine's temporary folder."""
    found = set()
    for metrics in Path(tmp).glob("trickrun-cell-*/*/metrics.jsonl"):
        try:
            if metrics.read_bytes().count(b"\n") >= 1:
                found.add(metrics)
        except OSError:  # an attempt that ended and removed its copy
            pass
    return found


def test_a_task_lost_with_its_node_is_retried_and_stdout_stays_trickruns(fake_data, tmp_path, ray_env):
    from subproc import _PRELUDE, foreground_sigint
    from trickrun.data import catalog

    env, _ = ray_env
    env = {**env, "TRICKRUN_DATA_DIR": str(fake_data), "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
           "TRICKRUN_TEST_SUMS": json.dumps(dict(catalog.DATASETS["mnist"].sha256))}
    earlier = attempts(env["TMPDIR"])  # copies another test's killed cells left behind
    cluster = subprocess.Popen([sys.executable, "-c", LOSE_A_NODE], env=env, text=True, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        address = cluster.stdout.readline().strip()
        assert address.startswith("127.0.0.1:"), address
        config = tmp_path / "lost.yaml"
        config.write_text(ENDLESS)  # the cell trains until the test stops it: never done before its node is lost
        runs = tmp_path / "ray"
        sweep_proc = subprocess.Popen([sys.executable, "-c", _PRELUDE, "sweep", str(config), "--grid", "optimizer.lr=0.01",
                                       "--backend", "ray", "--address", address, "--jobs", "1", "--runs-dir", str(runs),
                                       "--json"], env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      preexec_fn=foreground_sigint)
        try:
            wait_for(lambda: attempts(env["TMPDIR"]) - earlier or sweep_proc.poll() is not None)
            assert sweep_proc.poll() is None, sweep_proc.communicate()
            (first,) = attempts(env["TMPDIR"]) - earlier  # on the first node: the only one with a CPU
            cluster.stdin.write("lose it\n")
            cluster.stdin.flush()
            assert cluster.stdout.readline().strip() == "removed"
            # Without Ray's retry the cell fails here and the sweep ends; with it, a second
            # attempt trains on the node that is left.
            wait_for(lambda: attempts(env["TMPDIR"]) - earlier - {first} or sweep_proc.poll() is not None)
            assert sweep_proc.poll() is None, sweep_proc.communicate()
            sweep_proc.send_signal(signal.SIGINT)  # Ctrl-C
            out, err = sweep_proc.communicate(timeout=120)
        finally:
            if sweep_proc.poll() is None:
                sweep_proc.kill()
    finally:
        cluster.communicate("", timeout=120)
    assert sweep_proc.returncode == 130, err
    json.loads(out)  # stdout is trickrun's JSON alone, whatever Ray printed (see backend.log)
    assert [c["status"] for c in cells(runs, "lost")] == ["interrupted"]  # stopped by the test, not lost
