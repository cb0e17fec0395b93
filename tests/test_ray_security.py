"""The local Ray a sweep starts: only its token opens it, the token is never readable by
others nor left behind, and a Ray below the floor is refused before anything starts.
Everything talks to 127.0.0.1 only; Ray's files stay in this module's temporary folders."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from trickrun.cli import app

pytest.importorskip("ray", reason="the ray extra is not installed")

# A sweep's Ray backend, started as a sweep starts it; it writes what a test needs to know
# into the file argv[1], then holds the cluster until its stdin closes.
OWNER = """\
import json, sys
from pathlib import Path
import ray
from trickrun.sweep.ray_backend import RayBackend
backend = RayBackend(None, 1, Path(sys.argv[1]).with_suffix(".log"))
info = {"gcs": ray.get_runtime_context().gcs_address, "folder": str(backend._cluster.folder), "ray_folder": str(backend._cluster.ray_folder),
        "token_file": str(backend._cluster.token_file)}
with open(sys.argv[1], "w") as f:
    json.dump(info, f)
sys.stdin.read()
backend.close()
"""

CLIENT = """\
import ray, sys
ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False, logging_level="ERROR")
print("answer", ray.get(ray.remote(lambda: 41 + 1).remote()))
"""


@pytest.fixture(scope="module")
def owned_cluster(tmp_path_factory):
    home = tmp_path_factory.mktemp("home")
    ray_tmp = tempfile.mkdtemp(prefix="t", dir="/tmp")  # Ray's socket paths must stay short
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env.update(HOME=str(home), TMPDIR=ray_tmp, RAY_TMPDIR=ray_tmp, RAY_USAGE_STATS_ENABLED="0")
    info_file = tmp_path_factory.mktemp("info") / "cluster.json"
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(info_file)], env=env, stdin=subprocess.PIPE,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not info_file.exists() or not info_file.read_text():
        if owner.poll() is not None or time.monotonic() > deadline:
            owner.kill()
            raise AssertionError(f"the sweep's Ray did not start: {owner.communicate()[1][-2000:]}")
        time.sleep(0.2)
    info = json.loads(info_file.read_text())
    yield env, home, info, owner
    if owner.poll() is None:
        owner.communicate(b"", timeout=120)
    import shutil

    shutil.rmtree(ray_tmp, ignore_errors=True)


def client(env: dict, gcs: str, **extra: str) -> subprocess.CompletedProcess:
    """A second process, sharing no file with the cluster, that joins it at `gcs` (on this
    machine, as the cluster's node does: at the loopback address) and runs a task."""
    env = {**env, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", **extra}
    try:
        return subprocess.run([sys.executable, "-c", CLIENT, gcs], env=env, capture_output=True,
                              text=True, timeout=90)
    except subprocess.TimeoutExpired as timeout:  # still trying to get in after 90 s: it did not
        return subprocess.CompletedProcess(timeout.cmd, -1, "", "timed out")


def test_a_client_without_the_token_is_refused_and_one_with_it_is_served(owned_cluster):
    env, _, info, _ = owned_cluster
    assert info["gcs"].startswith("127.0.0.1:")  # the node's address is the loopback one
    refused = client(env, info["gcs"])
    assert refused.returncode != 0 and "answer" not in refused.stdout
    assert "auth" in refused.stderr.lower(), refused.stderr[-2000:]  # refused for want of the token
    served = client(env, info["gcs"], RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=info["token_file"])
    assert served.returncode == 0 and "answer 42" in served.stdout, served.stderr[-2000:]


def test_the_token_is_private_while_the_cluster_runs_and_gone_after(owned_cluster):
    env, home, info, owner = owned_cluster
    token, folder = Path(info["token_file"]), Path(info["folder"])
    assert stat.S_IMODE(token.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    assert len(token.read_text()) >= 64
    assert not (home / ".ray").exists()  # nothing in the home folder: no world-readable default token
    owner.communicate(b"", timeout=120)  # a clean end of the sweep
    assert owner.returncode == 0
    assert not folder.exists()


def test_a_ray_below_the_floor_is_exit_2_before_anything_starts(tmp_path, monkeypatch):
    from trickrun.sweep import ray_cluster

    monkeypatch.setattr(ray_cluster.metadata, "version", lambda name: "2.50.0")
    config = tmp_path / "c.yaml"
    config.write_text("model: {hidden: [8]}\n")
    result = CliRunner().invoke(app, ["sweep", str(config), "--grid", "optimizer.lr=0.1", "--backend", "ray",
                                      "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2, result.output
    text = " ".join(result.output.split())
    assert "ray 2.50.0 is installed" in text and ">= 2.59" in text and "pip install" in text
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name != "sweeps"]
