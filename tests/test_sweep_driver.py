"""The sweep driver on an in-memory backend (no data, no training): each cell resolved once
and handed over with its run directory, the record at every transition, the sweep's lock,
busy cells, failures and stops. Each test here failed on the driver before the rebuild."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from rich.console import Console
from typer.testing import CliRunner

from fakebackend import FakeBackend, config_of
from trickrun.cli import app
from trickrun.errors import ConfigError, RunDirError, TrickrunError
from trickrun.rundir.lock import RunLock
from trickrun.rundir.writer import RunWriter
from trickrun.signals import StopSignal
from trickrun.sweep.command import SweepOptions, finish
from trickrun.sweep.driver import NullProgress, execute, prepare
from trickrun.sweep.record import lock_sweep, read_record
from trickrun.sweep.plan import resolve_cells
from trickrun.sweep.spec import SweepSpec, load_spec, safe_name

runner = CliRunner()
TINY = "data: {train_limit: 300, val_size: 200}\nmodel: {hidden: [16]}\ntrain: {epochs: 2}\n"


def spec_of(tmp_path: Path, *grid: str, seeds: int | None = None, text: str = TINY) -> SweepSpec:
    config = tmp_path / "tiny.yaml"
    if not config.exists():
        config.write_text(text)
    return load_spec(config, grid=list(grid), fixed=[], seeds=seeds, seed_list=None, name=None)


def run(tmp_path: Path, spec: SweepSpec, backend: FakeBackend, **kw):
    sweep = prepare(spec, tmp_path / "runs", False, "local", backend.slots)
    try:
        return execute(sweep, backend, **kw)
    finally:
        sweep.release()


def record(tmp_path: Path, name: str = "tiny") -> dict:
    return json.loads((tmp_path / "runs" / "sweeps" / name / "sweep.json").read_text())


def test_a_grid_over_seed_trains_each_cell_with_its_seed(tmp_path):
    backend = FakeBackend()
    run(tmp_path, spec_of(tmp_path, "seed=1,2"), backend)
    assert sorted("seed: 1\n" in config_of(j.run_dir) for j in backend.jobs) == [False, True]
    assert sorted("seed: 2\n" in config_of(j.run_dir) for j in backend.jobs) == [False, True]
    assert [c["seed"] for c in record(tmp_path)["cells"]] == [1, 2]


def test_seeds_given_twice_and_a_grid_over_name_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="seed axis"):
        spec_of(tmp_path, "seed=1,2", seeds=2)
    with pytest.raises(ConfigError, match="names each cell"):
        spec_of(tmp_path, "name=a,b")
    config = tmp_path / "tiny.yaml"
    for grid, seeds in (([], 2), (["seed=1,2"], None)):  # --set seed=4 would be silently ignored
        with pytest.raises(ConfigError, match=r"seed=4 is set in every cell, .* e.g. --seed-list 4"):
            load_spec(config, grid=grid, fixed=["seed=4"], seeds=seeds, seed_list=None, name=None)
    alone = load_spec(config, grid=[], fixed=["seed=4"], seeds=None, seed_list=None, name=None)
    assert [c.seed for c in resolve_cells(alone)[0]] == [4]  # alone, it is the sweep's seed


def test_each_cell_gets_the_config_resolved_when_the_sweep_was_planned(tmp_path):
    spec = spec_of(tmp_path, "optimizer.lr=0.1,0.01")
    sweep = prepare(spec, tmp_path / "runs", False, "local", 2)
    (tmp_path / "tiny.yaml").write_text(TINY.replace("[16]", "[99]"))  # edited while the sweep runs
    backend = FakeBackend()
    try:
        execute(sweep, backend)
    finally:
        sweep.release()
    for job in backend.jobs:
        assert yaml.safe_load(config_of(job.run_dir))["model"]["hidden"] == [16]
        assert job.config.model.hidden == [16]


def test_the_driver_hands_each_worker_a_directory_it_made_and_locked(tmp_path):
    backend = FakeBackend()
    run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01"), backend)
    assert backend.locked_at_submit == [True, True]
    assert all(j.fresh and j.run_dir.parent == tmp_path / "runs" for j in backend.jobs)
    assert len({j.run_dir for j in backend.jobs}) == 2


def test_a_users_finished_run_of_the_same_name_is_never_written_into(tmp_path):
    spec = spec_of(tmp_path, "optimizer.lr=0.1")
    name = spec.cells(0)[0].name
    users = RunWriter.create(tmp_path / "runs", name, "name: mine\n", 0)  # another config, same name
    users.finish({"status": "completed", "stop_reason": "done"})
    before = {p.name: p.read_bytes() for p in users.path.iterdir()}
    backend = FakeBackend()
    run(tmp_path, spec, backend)
    assert backend.jobs[0].run_dir != users.path
    assert {p.name: p.read_bytes() for p in users.path.iterdir()} == before


def test_the_record_says_running_exactly_while_a_cell_runs(tmp_path):
    seen = []
    backend = FakeBackend(slots=1, on_poll=lambda b: seen.append([c["status"] for c in record(tmp_path)["cells"]]))
    run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01"), backend)
    assert seen[0] == ["running", "pending"] and seen[1] == ["completed", "running"]
    assert [c["status"] for c in record(tmp_path)["cells"]] == ["completed", "completed"]


def test_a_record_left_running_by_a_killed_driver_reads_as_interrupted(tmp_path):
    run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01"), FakeBackend())
    path = tmp_path / "runs" / "sweeps" / "tiny" / "sweep.json"
    left = record(tmp_path)
    for cell in left["cells"]:
        cell["status"] = "running"  # as a driver killed with kill -9 leaves the file
    path.write_text(json.dumps(left))
    assert [c["status"] for c in read_record(path)["cells"]] == ["interrupted", "interrupted"]
    orphan = RunLock.acquire(Path(left["cells"][1]["run_dir"]))  # a worker that outlived its driver
    try:
        assert [c["status"] for c in read_record(path)["cells"]] == ["interrupted", "running"]
        driver = lock_sweep(tmp_path / "runs", "tiny")  # a live driver's record is as written
        try:
            assert [c["status"] for c in read_record(path)["cells"]] == ["running", "running"]
        finally:
            driver.release()
    finally:
        orphan.release()


def test_a_second_driver_of_the_same_sweep_is_refused_naming_the_holder(tmp_path):
    spec_of(tmp_path)
    held = lock_sweep(tmp_path / "runs", "tiny")
    try:
        result = runner.invoke(app, ["sweep", str(tmp_path / "tiny.yaml"), "--grid", "optimizer.lr=0.1",
                                     "--runs-dir", str(tmp_path / "runs")])
    finally:
        held.release()
    assert result.exit_code == 2 and "is being run by pid" in result.output
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name != "sweeps"]  # nothing trained


def test_a_cell_another_live_process_trains_is_busy_never_finished(tmp_path):
    spec = spec_of(tmp_path, "optimizer.lr=0.1,0.01")
    sweep = prepare(spec, tmp_path / "runs", False, "local", 2)
    sweep.release()
    # another process (this test, holding the lock) trains the first cell's run
    other = RunWriter.create(tmp_path / "runs", spec.cells(0)[0].name, sweep.plans[0].config_yaml, 0)
    try:
        backend = FakeBackend()
        result = run(tmp_path, spec, backend)
    finally:
        other.close()
    assert result.busy == [0] and [j.index for j in backend.jobs] == [1]
    assert [c["status"] for c in record(tmp_path)["cells"]] == ["busy", "completed"]


def interrupted_cell(tmp_path: Path):
    """A one-cell sweep stopped part-way, prepared again: its plan is to resume the run."""
    spec = spec_of(tmp_path, "optimizer.lr=0.1")
    run(tmp_path, spec, FakeBackend(script={0: "hang"}, on_poll=stop_with(signal.SIGINT)))
    sweep = prepare(spec, tmp_path / "runs", False, "local", 1)
    assert [str(p.action) for p in sweep.plans] == ["resume"]
    return sweep


def test_a_cell_whose_run_another_process_took_before_its_resume_is_busy_and_exit_1(tmp_path):
    sweep = interrupted_cell(tmp_path)
    other = RunLock.acquire(sweep.plans[0].run_dir)  # another process resumes it first
    try:
        result = execute(sweep, FakeBackend())
    finally:
        other.release()
        sweep.release()
    cell = record(tmp_path)["cells"][0]
    assert result.busy == [0] and cell["status"] == "busy" and "being trained by" in cell["error"]
    out = Console(file=io.StringIO())
    assert finish(result, SweepOptions(tmp_path / "tiny.yaml", [], []), out, out) == 1


def test_a_cell_whose_run_another_process_finished_before_its_resume_is_that_result(tmp_path):
    sweep = interrupted_cell(tmp_path)
    summary_file = sweep.plans[0].run_dir / "summary.json"
    summary_file.write_text(json.dumps({**json.loads(summary_file.read_text()), "status": "completed"}))
    try:
        result = execute(sweep, FakeBackend())
    finally:
        sweep.release()
    cell = record(tmp_path)["cells"][0]
    assert not result.busy and cell["status"] == "completed" and cell["error"] is None
    assert result.run_dirs == [sweep.plans[0].run_dir]


def test_a_finished_cell_is_skipped_and_only_the_missing_one_runs(tmp_path):
    spec = spec_of(tmp_path, "optimizer.lr=0.1,0.01")
    run(tmp_path, spec, FakeBackend(script={1: "fail"}))
    again = FakeBackend()
    result = run(tmp_path, spec, again)
    assert [j.index for j in again.jobs] == [1] and not result.failed


def test_a_failed_cell_is_recorded_and_leaves_no_directory_if_it_never_trained(tmp_path):
    backend = FakeBackend(script={0: "fail"})
    result = run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01"), backend)
    cells = record(tmp_path)["cells"]
    assert result.failed == [0] and cells[0]["status"] == "failed" and "no data" in cells[0]["error"]
    assert cells[0]["run_dir"] is None and not backend.jobs[0].run_dir.exists()
    assert cells[1]["status"] == "completed"


def stop_with(signum: int, after_polls: int = 1):
    polls = []

    def probe(backend):
        polls.append(1)
        if len(polls) == after_polls:
            raise StopSignal(signum)

    return probe


def test_sigterm_to_the_driver_interrupts_the_running_cells_in_the_record(tmp_path):
    backend = FakeBackend(script={0: "hang", 1: "hang"}, on_poll=stop_with(signal.SIGTERM))
    result = run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01,0.001"), backend)
    assert result.stop_signal == signal.SIGTERM and backend.stopped
    assert [c["status"] for c in record(tmp_path)["cells"]] == ["interrupted", "interrupted", "pending"]


def test_a_second_ctrl_c_ends_the_cells_at_once_and_the_record_is_not_left_running(tmp_path):
    polls = []

    def twice(backend):
        polls.append(1)
        if len(polls) in (1, 2):
            raise KeyboardInterrupt

    backend = FakeBackend(script={0: "hang-until-killed", 1: "hang-until-killed"}, on_poll=twice)
    result = run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01"), backend)
    assert backend.killed and result.stop_signal == signal.SIGINT
    assert [c["status"] for c in record(tmp_path)["cells"]] == ["interrupted", "interrupted"]


class CtrlCAtFirstEnd(NullProgress):
    """A real SIGINT to this process while the driver records the first cell's end, after
    the backend has already forgotten every cell its poll reported."""

    def cell_ended(self, plan, end, state) -> None:
        if not getattr(self, "sent", False):
            self.sent = True
            signal.raise_signal(signal.SIGINT)


def test_a_ctrl_c_while_cells_end_loses_none_of_their_ends(tmp_path):
    backend = FakeBackend()  # both cells end in the same poll
    result = run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01"), backend, progress=CtrlCAtFirstEnd())
    assert result.stop_signal == signal.SIGINT
    assert [c["status"] for c in record(tmp_path)["cells"]] == ["completed", "completed"]


def test_a_sweep_aborted_by_an_error_leaves_no_cell_running_in_the_record(tmp_path, monkeypatch):
    create, made = RunWriter.create, []

    def full_disk_at_the_second_cell(root, name, *args):
        if made:
            raise RunDirError(f"cannot create {root / name}: No space left on device")
        made.append(name)
        return create(root, name, *args)

    monkeypatch.setattr(RunWriter, "create", staticmethod(full_disk_at_the_second_cell))
    backend = FakeBackend(script={0: "hang"})
    with pytest.raises(RunDirError):
        run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01"), backend)
    assert backend.running == 1  # the caller's close() kills it next
    assert [c["status"] for c in record(tmp_path)["cells"]] == ["interrupted", "pending"]


def test_a_cell_that_dies_while_the_sweep_stops_is_interrupted_not_failed(tmp_path):
    backend = FakeBackend(script={0: "crash-on-stop"}, on_poll=stop_with(signal.SIGINT, after_polls=2))
    result = run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1"), backend)
    assert not result.failed and record(tmp_path)["cells"][0]["status"] == "interrupted"


def test_cells_whose_names_would_collide_get_distinct_names(tmp_path):
    spec = SweepSpec("s", tmp_path / "c.yaml", grid={"data.dir": ["a b", "a-b", "a/b"]})
    names = [c.name for c in spec.cells(0)]
    assert len(set(names)) == 3


def test_long_sweep_names_with_a_common_beginning_keep_two_records():
    a, b = safe_name("x" * 45 + "-first"), safe_name("x" * 45 + "-second")
    assert a != b and len(a) <= 40 and len(b) <= 40


@pytest.mark.parametrize(("args", "message"), [
    (["--grid", "optimizer.lr"], "expected KEY=VALUES"),
    (["--grid", "optimizer.lr=0.1", "--grid", "optimizer.lr=0.2"], "--grid optimizer.lr is given twice"),
    (["--grid", "optimizer.lr=" + ",".join(str(i) for i in range(1000)), "--grid",
      "optimizer.momentum=" + ",".join(str(i / 1000) for i in range(1000))], "1,000,000 cells"),
])
def test_bad_grids_are_a_clear_error_at_once(tmp_path, args, message):
    spec_of(tmp_path)
    result = runner.invoke(app, ["sweep", str(tmp_path / "tiny.yaml"), *args, "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and message in result.output and "Traceback" not in result.output


def test_a_sweep_file_whose_base_is_itself_is_named(tmp_path):
    (tmp_path / "loop.yaml").write_text("base: loop.yaml\ngrid: {optimizer.lr: [0.1]}\n")
    result = runner.invoke(app, ["sweep", str(tmp_path / "loop.yaml")])
    assert result.exit_code == 2 and "points at this sweep file itself" in result.output


@pytest.mark.parametrize("where", ["runs-dir", "sweeps"])
def test_a_file_in_the_way_of_the_runs_folder_is_a_clear_error(tmp_path, where):
    spec_of(tmp_path)
    runs = tmp_path / "runs"
    if where == "runs-dir":
        runs.write_text("")
    else:
        runs.mkdir()
        (runs / "sweeps").write_text("")
    result = runner.invoke(app, ["sweep", str(tmp_path / "tiny.yaml"), "--grid", "optimizer.lr=0.1",
                                 "--runs-dir", str(runs)])
    assert result.exit_code == 1 and "error:" in result.output and "Traceback" not in result.output


def test_compare_sweep_finds_the_runs_from_another_folder(tmp_path, monkeypatch):
    backend = FakeBackend()
    monkeypatch.chdir(tmp_path)
    spec = load_spec(Path("tiny.yaml") if (tmp_path / "tiny.yaml").exists() else spec_of(tmp_path).base,
                     grid=["optimizer.lr=0.1,0.01"], fixed=[], seeds=None, seed_list=None, name=None)
    sweep = prepare(spec, Path("runs"), False, "local", 2)  # a relative runs folder
    try:
        execute(sweep, backend)
    finally:
        sweep.release()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    from trickrun.sweep.command import sweep_run_dirs

    dirs = sweep_run_dirs("tiny", Path("../runs"))
    assert len(dirs) == 2 and all(d.is_dir() for d in dirs)


def test_the_run_lock_can_be_passed_on_without_a_gap(tmp_path):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    lock = RunLock.acquire(run_dir)
    twin = RunLock.adopt(run_dir, os.dup(lock.fileno()))
    lock.release()
    with pytest.raises(ConfigError):  # still held, by the adopted copy
        RunLock.acquire(run_dir)
    twin.release()
    RunLock.acquire(run_dir).release()


# --- the Ray backend's errors, without starting Ray ------------------------------------


def test_a_broken_ray_install_is_exit_2_before_any_run_directory(tmp_path, monkeypatch):
    spec_of(tmp_path)
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = runner.invoke(app, ["sweep", str(tmp_path / "tiny.yaml"), "--grid", "optimizer.lr=0.1",
                                 "--backend", "ray", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 2 and "trickrun[ray]" in result.output and "Traceback" not in result.output
    assert not [p for p in (tmp_path / "runs").iterdir() if p.name != "sweeps"]


@pytest.mark.parametrize("address", ["not an address", "http://x:1", "127.0.0.1", "host:port"])
def test_a_garbage_ray_address_is_a_clear_error(address):
    from trickrun.sweep.ray_cluster import check_reachable

    with pytest.raises(ConfigError, match="expected HOST:PORT"):
        check_reachable(address)


def test_an_address_where_nothing_listens_fails_at_once_instead_of_hanging():
    from helpers import closed_port_url
    from trickrun.sweep.ray_cluster import check_reachable

    port = closed_port_url().rsplit(":", 1)[1].strip("/")
    with pytest.raises(ConfigError, match="cannot reach a Ray cluster"):
        check_reachable(f"127.0.0.1:{port}")


class _RayWhoseInitFails:
    """A `ray` whose init raises `error`: as `--address auto` with no cluster running does, or
    a local Ray that cannot start (no port, no memory)."""

    def __init__(self, error: Exception):
        self.error = error

    @staticmethod
    def is_initialized() -> bool:
        return False

    def init(self, **kwargs) -> None:
        raise self.error


def test_address_auto_without_a_cluster_says_how_to_start_one():
    from trickrun.sweep.ray_cluster import connect

    with pytest.raises(ConfigError, match="ray start --head"):
        connect(_RayWhoseInitFails(ConnectionError("Could not find any running Ray instance")), "auto")


@pytest.fixture
def local_ray_folder(tmp_path, monkeypatch) -> Path:
    """RayBackend(None, ...) gets past the version check to the fake `ray` a test puts in
    sys.modules, and makes its LocalCluster's folder in the returned folder (not /tmp)."""
    from trickrun.sweep import ray_cluster

    monkeypatch.setattr(ray_cluster.metadata, "version", lambda name: "2.60.0")
    monkeypatch.setattr(ray_cluster, "SHORT_BASE", 10_000)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    for name in ray_cluster.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_a_local_ray_that_fails_to_start_keeps_its_logs_where_the_error_says(local_ray_folder, monkeypatch):
    from trickrun.sweep import ray_cluster
    from trickrun.sweep.ray_backend import RayBackend

    monkeypatch.setitem(sys.modules, "ray", _RayWhoseInitFails(RuntimeError("the raylet did not start")))
    with pytest.raises(ConfigError) as caught:
        RayBackend(None, 1, local_ray_folder / "backend.log")
    message = str(caught.value)
    (folder,) = local_ray_folder.glob("trickrun-*")
    assert message.endswith(f"kept in {folder}") and folder.is_dir()  # the error's folder is there
    assert not (folder / ray_cluster.TOKEN_FILE).exists()  # without the token
    assert "cannot start a local Ray (RuntimeError: the raylet did not start)" in message
    assert "address" not in message  # no address was given: no hint about one
    assert not any(name in os.environ for name in ray_cluster.ENVIRONMENT)


class _RayThatRuns:
    """A `ray` that starts at once and whose tasks all end, for RayBackend's own behaviour."""

    class exceptions:
        TaskCancelledError = type("TaskCancelledError", (Exception,), {})

    def __init__(self) -> None:
        self.up = False

    def is_initialized(self) -> bool:
        return self.up

    def init(self, **kwargs) -> None:
        self.up = True

    def shutdown(self) -> None:
        self.up = False

    def remote(self, **options):
        return lambda function: function

    def cancel(self, future, force: bool = False) -> None:
        pass

    def get(self, future) -> dict:
        return {"files": {"summary.json": b"{}"}, "summary": {}, "error": None}


class _Lock:
    def release(self) -> None:
        pass


class _RayStoppedHalfWay(_RayThatRuns):
    """A `ray` that a Ctrl-C reaches half-way through its start and through its shutdown (where a
    second Ctrl-C lands while a stopped sweep ends); each is recorded once it has finished."""

    def __init__(self) -> None:
        super().__init__()
        self.finished: list[str] = []

    def init(self, **kwargs) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        super().init(**kwargs)
        self.finished.append("init")

    def shutdown(self) -> None:
        os.kill(os.getpid(), signal.SIGINT)
        super().shutdown()
        self.finished.append("shutdown")


def test_a_ctrl_c_while_the_local_ray_starts_or_shuts_down_waits_for_ray_then_stops(local_ray_folder):
    # Real Ray cut short there leaves its core worker half made or half torn down: the sweep
    # then exited 1 or crashed (139) instead of 130, and left Ray's processes behind.
    from trickrun.signals import stop_exit_code
    from trickrun.sweep.ray_cluster import ENVIRONMENT, LocalCluster

    ray = _RayStoppedHalfWay()
    cluster = LocalCluster()
    try:
        with pytest.raises(KeyboardInterrupt):
            cluster.start(ray)
        assert ray.finished == ["init"] and ray.up
        with pytest.raises(KeyboardInterrupt) as stop:
            cluster.stop(ray)
    finally:
        cluster.stop(None)  # only the first call acts: the test's own clean-up
    assert ray.finished == ["init", "shutdown"] and not ray.up
    assert stop_exit_code(stop.value) == 130
    assert not list(local_ray_folder.glob("trickrun-*"))  # the watchdog still removed the folder
    assert not any(name in os.environ for name in ENVIRONMENT)


def test_close_stops_the_local_ray_and_gives_stdout_back_when_collecting_a_cell_fails(local_ray_folder,
                                                                                     monkeypatch):
    from trickrun.sweep.backend import CellJob
    from trickrun.sweep.ray_backend import RayBackend

    ray = _RayThatRuns()
    monkeypatch.setitem(sys.modules, "ray", ray)
    stdout = os.fstat(1).st_ino
    backend = RayBackend(None, 1, local_ray_folder / "backend.log")
    gone = local_ray_folder / "gone"  # the cell's returned files cannot be written here
    backend._running["future"] = CellJob(0, gone, _Lock(), True, None)
    with pytest.raises(TrickrunError, match="cannot write"):
        backend.close()
    left = list(local_ray_folder.glob("trickrun-*"))
    restored = os.fstat(1).st_ino == stdout
    backend._stdout.restore()  # the test's own clean-up, should close not have done it
    backend._cluster.stop(ray)
    assert restored and not left and not ray.up


def test_an_unwritable_backend_log_is_an_error_line_and_leaves_no_local_ray(tmp_path, local_ray_folder,
                                                                           monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", _RayThatRuns())
    spec_of(tmp_path)
    (tmp_path / "runs" / "sweeps" / "tiny" / "backend.log").mkdir(parents=True)  # a folder: cannot be opened
    result = runner.invoke(app, ["sweep", str(tmp_path / "tiny.yaml"), "--grid", "optimizer.lr=0.1",
                                 "--backend", "ray", "--runs-dir", str(tmp_path / "runs")])
    assert result.exit_code == 1 and "Traceback" not in result.output, result.output
    text = " ".join(result.output.split())
    assert text.startswith("error: --backend ray: cannot open") and "backend.log for Ray's messages" in text
    assert not list(tmp_path.glob("trickrun-*"))  # the cluster's folder went with it


@pytest.mark.parametrize("connected_before", [False, True], ids=["joined-by-the-sweep", "a-notebook-s-stays"])
def test_a_cluster_joined_by_address_is_left_before_stdout_is_given_back(
        local_ray_folder, monkeypatch, connected_before):
    from trickrun.sweep.ray_backend import RayBackend

    ray = _RayThatRuns()
    ray.up = connected_before
    monkeypatch.setitem(sys.modules, "ray", ray)
    backend = RayBackend("auto", 1, local_ray_folder / "backend.log")
    shut_down_while_redirected = []
    monkeypatch.setattr(ray, "shutdown", lambda: shut_down_while_redirected.append(backend._stdout._saved is not None))
    backend.close()
    assert shut_down_while_redirected == ([] if connected_before else [True])


def test_ray_init_leaves_the_sweep_s_sigterm_handler_in_place():
    """ray.init installs a SIGTERM handler that calls sys.exit; the sweep's own, which stops the
    cells and exits 143, must survive it."""
    import signal as signals
    from types import SimpleNamespace

    from trickrun.sweep import ray_cluster

    def init(**_):
        signals.signal(signals.SIGTERM, lambda signum, frame: sys.exit(signum))  # as Ray does

    def ours(signum, frame):
        pass

    before = signals.signal(signals.SIGTERM, ours)
    try:
        ray_cluster._init(SimpleNamespace(init=init), "127.0.0.1:1")
        assert signals.getsignal(signals.SIGTERM) is ours
    finally:
        signals.signal(signals.SIGTERM, before)


def test_a_sweep_that_would_drop_recorded_runs_from_its_record_is_refused(tmp_path):
    run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01"), FakeBackend())
    first = [c["run_dir"] for c in record(tmp_path)["cells"]]
    with pytest.raises(ConfigError, match=r"sweep 'tiny' already has 2 runs this command would drop from its "
                                          r"record \(tiny_lr-0.1_s0-\S+: a cell this command leaves out; "
                                          r"tiny_lr-0.01_s0-\S+: a cell .*trickrun rm --sweep tiny"):
        prepare(spec_of(tmp_path, "optimizer.lr=0.05"), tmp_path / "runs", False, "local", 1)
    assert [c["run_dir"] for c in record(tmp_path)["cells"]] == first  # the record is as it was

    run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01,0.05"), FakeBackend())  # extended: all listed
    cells = record(tmp_path)["cells"]
    assert [c["run_dir"] for c in cells[:2]] == first and cells[2]["status"] == "completed"
    # the lesson's sweeps may replace their records (another seed range)
    prepare(spec_of(tmp_path, "optimizer.lr=0.05"), tmp_path / "runs", False, "local", 1,
            lock=False, replace_record=True)


def test_a_cell_stopped_before_its_training_began_leaves_no_stale_run(tmp_path):
    spec = spec_of(tmp_path, "optimizer.lr=0.1,0.01")
    backend = FakeBackend(script={0: "stopped-while-starting", 1: "hang"}, on_poll=stop_with(signal.SIGINT))
    run(tmp_path, spec, backend)
    cells = record(tmp_path)["cells"]
    assert [c["status"] for c in cells] == ["interrupted", "interrupted"]
    assert cells[0]["run_dir"] is None and not backend.jobs[0].run_dir.exists()  # nothing to resume: gone
    assert backend.jobs[1].run_dir.exists()  # its worker said it was interrupted: kept to resume
    sweep = prepare(spec, tmp_path / "runs", False, "local", 1, lock=False)
    assert [str(p.action) for p in sweep.plans] == ["train", "resume"]


def test_a_sweep_whose_settings_changed_under_the_same_grid_is_refused(tmp_path):
    # The same cell names with another config: the new record would list new runs only.
    run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01"), FakeBackend())
    first = [c["run_dir"] for c in record(tmp_path)["cells"]]
    changed = load_spec(tmp_path / "tiny.yaml", grid=["optimizer.lr=0.1,0.01"], fixed=["train.epochs=1"],
                        seeds=None, seed_list=None, name=None)
    with pytest.raises(ConfigError, match=r"already has 2 runs this command would drop from its record "
                                          r"\(tiny_lr-0.1_s0-\S+: its cell is now configured otherwise;"):
        prepare(changed, tmp_path / "runs", False, "local", 1)
    assert [c["run_dir"] for c in record(tmp_path)["cells"]] == first
    sweep = prepare(changed, tmp_path / "runs", True, "local", 1)  # --rerun trains every cell afresh
    sweep.release()


def test_runs_saved_with_a_relative_data_dir_before_it_was_saved_absolute_are_still_the_cells(tmp_path, monkeypatch):
    # trickrun saved `dir: d` as given until resolve() made it absolute; the same command from the
    # same folder then refused every such run as "configured otherwise".
    monkeypatch.chdir(tmp_path)
    spec = load_spec(spec_of(tmp_path).base, grid=["optimizer.lr=0.1,0.01"], fixed=["data.dir=d"], seeds=None,
                     seed_list=None, name=None)
    run(tmp_path, spec, FakeBackend())
    for cell in record(tmp_path)["cells"]:
        config = tmp_path / "runs" / cell["run_dir"] / "config.yaml"
        assert f"dir: {tmp_path / 'd'}\n" in config.read_text()
        config.write_text(config.read_text().replace(f"dir: {tmp_path / 'd'}\n", "dir: d\n"))
    sweep = prepare(spec, tmp_path / "runs", False, "local", 1)
    sweep.release()
    assert [str(p.action) for p in sweep.plans] == ["skip", "skip"]


def test_a_re_run_with_its_grid_axes_in_another_order_skips_the_same_cells(tmp_path):
    run(tmp_path, spec_of(tmp_path, "optimizer.lr=0.1,0.01", "train.batch_size=8"), FakeBackend())
    first = [(c["name"], c["run_dir"]) for c in record(tmp_path)["cells"]]
    swapped = FakeBackend()
    run(tmp_path, spec_of(tmp_path, "train.batch_size=8,4", "optimizer.lr=0.1,0.01"), swapped)
    cells = {c["name"]: c["run_dir"] for c in record(tmp_path)["cells"]}
    assert set(first) <= set(cells.items())  # the axes keep the record's order, so the names
    assert set(cells) - {name for name, _ in first} == {"tiny_lr-0.1_batch-size-4_s0", "tiny_lr-0.01_batch-size-4_s0"}
    assert len(swapped.jobs) == 2  # only the new values train


def test_two_files_whose_names_clean_to_one_sweep_name_are_told_apart_in_the_refusal(tmp_path):
    from trickrun.sweep.spec import load_spec

    spec_of(tmp_path, "optimizer.lr=0.1")  # writes tiny.yaml
    specs = []
    for name in ("lr sweep.yaml", "lr-sweep.yaml"):
        (tmp_path / name).write_text((tmp_path / "tiny.yaml").read_text())
        specs.append(load_spec(tmp_path / name, grid=[f"optimizer.lr={0.1 if not specs else 0.2}"], fixed=[],
                               seeds=None, seed_list=None, name=None))
    assert specs[0].name == specs[1].name == "lr-sweep"
    run(tmp_path, specs[0], FakeBackend())
    with pytest.raises(ConfigError, match=r"Its record was written from the base config .*lr sweep.yaml, not "
                                          r".*lr-sweep.yaml\. Keep"):
        prepare(specs[1], tmp_path / "runs", False, "local", 1)


def test_the_same_base_config_given_from_another_folder_is_not_told_to_be_another(tmp_path, monkeypatch):
    # The record keeps the base as given, `tiny.yaml`; from a subfolder it is `../tiny.yaml`, and
    # the refusal said the record was written from another base config.
    monkeypatch.chdir(tmp_path)
    spec_of(tmp_path, "optimizer.lr=0.1")  # writes tiny.yaml
    run(tmp_path, load_spec(Path("tiny.yaml"), grid=["optimizer.lr=0.1"], fixed=[], seeds=None, seed_list=None,
                            name=None), FakeBackend())
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    other = load_spec(Path("../tiny.yaml"), grid=["optimizer.lr=0.2"], fixed=[], seeds=None, seed_list=None, name=None)
    with pytest.raises(ConfigError) as err:
        prepare(other, tmp_path / "runs", False, "local", 1)
    assert "a cell this command leaves out" in str(err.value) and "base config" not in str(err.value)


def test_a_recorded_run_whose_config_cannot_be_read_is_named_as_such(tmp_path):
    spec = spec_of(tmp_path, "optimizer.lr=0.1")
    run(tmp_path, spec, FakeBackend())
    (own,) = [c["run_dir"] for c in record(tmp_path)["cells"]]
    (Path(own) / "config.yaml").write_bytes(b"\xff\xfe not yaml")
    with pytest.raises(ConfigError, match=r"1 run this command would drop from its record \(tiny_lr-0.1_s0-\S+: "
                                          r".*config.yaml: cannot be read .*restore the run's config.yaml"):
        prepare(spec, tmp_path / "runs", False, "local", 1)
    assert [c["run_dir"] for c in record(tmp_path)["cells"]] == [own]


def test_a_re_run_keeps_the_run_its_record_lists_over_a_newer_one_of_the_same_name(tmp_path):
    spec = spec_of(tmp_path, "optimizer.lr=0.1")
    run(tmp_path, spec, FakeBackend())
    (own,) = [c["run_dir"] for c in record(tmp_path)["cells"]]
    # a user trains the same cell again by hand (a --print-commands line): same name and config
    users = RunWriter.create(tmp_path / "runs", spec.cells(0)[0].name, config_of(Path(own)), 0)
    users.finish({"status": "completed", "stop_reason": "done"})
    again = FakeBackend()
    result = run(tmp_path, spec, again)
    assert not again.jobs and [c["run_dir"] for c in record(tmp_path)["cells"]] == [own]
    assert result.run_dirs == [Path(own)]


def test_a_cell_without_a_recorded_run_takes_a_finished_run_a_shell_loop_trained(tmp_path):
    spec = spec_of(tmp_path, "optimizer.lr=0.1")
    dry = prepare(spec, tmp_path / "runs", False, "local", 1, lock=False)
    users = RunWriter.create(tmp_path / "runs", spec.cells(0)[0].name, dry.plans[0].config_yaml, 0)
    users.finish({"status": "completed", "stop_reason": "done"})
    again = FakeBackend()
    run(tmp_path, spec, again)
    assert not again.jobs and [c["run_dir"] for c in record(tmp_path)["cells"]] == [str(users.path)]


class GoneStream:
    """A stderr whose reader went away after `good` writes (a closed terminal, a dead pipe)."""

    def __init__(self, good: int):
        self.good, self.lines = good, []

    def write(self, text: str) -> int:
        if len(self.lines) >= self.good:
            raise BrokenPipeError(32, "Broken pipe")
        self.lines.append(text)
        return len(text)

    def flush(self) -> None:
        pass


def test_a_sweep_whose_stderr_goes_away_finishes_every_cell(tmp_path, monkeypatch):
    from trickrun.display import QuietOnFailure
    from trickrun.sweep.progress import PlainSweepProgress

    silenced = []
    monkeypatch.setattr("trickrun.display.stream_to_devnull", silenced.append)
    spec = spec_of(tmp_path, "optimizer.lr=0.1,0.01,0.001")
    backend = FakeBackend(slots=1)
    result = run(tmp_path, spec, backend, progress=QuietOnFailure(PlainSweepProgress(GoneStream(good=1))))
    assert len(backend.jobs) == 3 and not result.failed and result.stop_signal is None
    assert [c["status"] for c in record(tmp_path)["cells"]] == ["completed"] * 3
    assert len(silenced) == 1  # stderr pointed at os.devnull once, the display quiet from then on


def test_a_display_error_that_is_not_a_gone_stream_still_raises():
    from trickrun.display import QuietOnFailure

    class Broken:
        def note(self, text):
            raise OSError(13, "Permission denied")

    with pytest.raises(OSError):
        QuietOnFailure(Broken()).note("x")
