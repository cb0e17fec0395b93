"""`trickrun` in a real child process, on the fake dataset of the `fake_data` fixture.

The child cannot see the test's monkeypatched catalog, so it is started through a short
prelude that gives the catalog the fake files' checksums (passed in the environment) and
then runs the command line as `trickrun` would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

import pytest

from trickrun.data import catalog

_CATALOG = """\
import dataclasses, json, os, sys
from trickrun.data import catalog
info = catalog.DATASETS["mnist"]
catalog.DATASETS["mnist"] = dataclasses.replace(info, sha256=json.loads(os.environ["TRICKRUN_TEST_SUMS"]))
"""
# A sweep's workers are processes of their own: they get the same prelude.
_WORKER = _CATALOG + "from trickrun.sweep.worker import main\nsys.exit(main())\n"
_PRELUDE = _CATALOG + f"""\
from trickrun.sweep import local
local.WORKER_COMMAND = [sys.executable, "-c", {_WORKER!r}]
from trickrun.entry import main
main()
"""

# Many tiny epochs: training goes on until the test stops it.
LONG_RUN = ["--set", "data.val_size=100", "--set", "model.hidden=[8]", "--set", "train.epochs=100000",
            "--set", "early_stopping.enabled=false", "--set", "schedule.name=constant"]


def foreground_sigint() -> None:
    """In a child before exec: SIGINT as in a terminal's foreground job. A job started in the
    background (`pytest &`) inherits SIGINT ignored, and Python then never turns it into
    KeyboardInterrupt: the child would ignore the test's Ctrl-C."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start(*args: str) -> subprocess.Popen:
    """`trickrun ARGS` as a child process (with the fake data the test set up)."""
    env = {**os.environ, "TRICKRUN_TEST_SUMS": json.dumps(dict(catalog.DATASETS["mnist"].sha256))}
    return subprocess.Popen([sys.executable, "-c", _PRELUDE, *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL,
                            preexec_fn=foreground_sigint)


def wait_for_epochs(run_dir: Path, epochs: int, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Until `run_dir`'s metrics.jsonl has at least `epochs` lines (the child still running)."""
    deadline = time.monotonic() + timeout
    metrics = run_dir / "metrics.jsonl"
    while time.monotonic() < deadline:
        if metrics.exists() and metrics.read_bytes().count(b"\n") >= epochs:
            return
        if proc.poll() is not None:
            raise AssertionError(f"the child ended early ({proc.returncode}): {proc.communicate()}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"{run_dir} did not reach epoch {epochs} in time")


def wait_for_run_dir(root: Path, proc: subprocess.Popen, timeout: float = 60) -> Path:
    """The run directory the child `trickrun train` makes under `root` (not the hidden folder it
    is staged in before it appears, writer.create_run_dir's)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [p for p in root.glob("*") if p.is_dir() and not p.name.startswith(".")] if root.exists() else []
        if found:
            return found[0]
        if proc.poll() is not None:
            raise AssertionError(f"the child ended early ({proc.returncode}): {proc.communicate()}")
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"no run directory under {root} in time")


@pytest.fixture
def children() -> Iterator[list[subprocess.Popen]]:
    """A list to put started children in; any still running when the test ends is killed."""
    procs: list[subprocess.Popen] = []
    yield procs
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
