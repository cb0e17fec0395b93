"""trickrun sweep: grid and seed expansion, cell names, validation before anything runs, and,
on a slice of real MNIST, cells in parallel processes, failures, kill -9 and re-runs that
finish only what is missing, Ctrl-C, the leaderboard and sweep.json."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from helpers import requires_real_mnist
from subproc import foreground_sigint
from trickrun.cli import app
from trickrun.errors import ConfigError
from trickrun.rundir.lock import is_locked
from trickrun.sweep.local import cell_end, threads_per_job
from trickrun.sweep.record import read_record
from trickrun.sweep.spec import SweepSpec, cell_name, load_spec, parse_grid_option, parse_seed_list, spec_from_file

runner = CliRunner()

TINY = """\
data: {train_limit: 300, val_size: 200}
model: {hidden: [16]}
train: {epochs: 2, batch_size: 64}
"""
# Trains until it is stopped: a test that stops it waits on a state, never on a duration.
ENDLESS = """\
data: {train_limit: 600, val_size: 100}
model: {hidden: [8]}
train: {epochs: 100000, batch_size: 64}
early_stopping: {enabled: false}
schedule: {name: constant}
"""



def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


# ---------------------------------------------------------------------------------------
# The sweep's shape, without training.


def test_grid_values_as_yaml_list_or_comma_separated_scalars():
    assert parse_grid_option("model.hidden=[[256],[512,256]]") == ("model.hidden", [[256], [512, 256]])
    assert parse_grid_option("optimizer.lr=[0.1, 0.01]") == ("optimizer.lr", [0.1, 0.01])
    assert parse_grid_option("optimizer.name=sgd,adam") == ("optimizer.name", ["sgd", "adam"])
    assert parse_grid_option("model.dropout=0,0.5") == ("model.dropout", [0, 0.5])


@pytest.mark.parametrize("text", ["optimizer.lr=", "optimizer.lr=[]", "optimizer.lr=0.1,0.1", "bad key=1",
                                  "optimizer.lr=[0.1"])
def test_bad_grid_options_are_config_errors(text):
    with pytest.raises(ConfigError):
        parse_grid_option(text)


@pytest.mark.parametrize(("text", "said"), [
    ("model.init=glorot,xavier,he", "--grid model.init: the values glorot and xavier name the same choice"),
    ("optimizer.name=sgd,adam,sgd", "--grid optimizer.name: the value sgd is listed twice"),
    ("model.hidden=[[8],[16],[8]]", "--grid model.hidden: the value [8] is listed twice"),
    ("optimizer.lr=0.1,,0.2", "--grid optimizer.lr: the values '0.1,,0.2' have an empty one between commas; "
                              "write null for the key's default"),
    ("=1,2", "--grid '': expected a dotted config key"),
])
def test_a_grid_value_that_would_train_one_configuration_twice_or_by_mistake_is_named(text, said):
    with pytest.raises(ConfigError) as info:
        parse_grid_option(text)
    assert str(info.value).startswith(said)
    assert parse_grid_option("optimizer.lr=null,0.1")[1] == [None, 0.1]  # the default, asked for by name


def test_a_sweep_file_grid_with_two_names_of_one_choice_is_refused(tmp_path):
    path = tmp_path / "s.yaml"
    data = {"base": "c.yaml", "grid": {"model.init": ["he", "kaiming"]}}
    with pytest.raises(ConfigError, match="the values he and kaiming name the same choice"):
        spec_from_file(path, data)
    with pytest.raises(ConfigError, match="grid: '': expected a dotted config key"):
        spec_from_file(path, {"base": "c.yaml", "grid": {"": [1]}})


def test_cells_are_seed_major_with_distinct_file_safe_names():
    spec = SweepSpec("s", Path("c.yaml"), grid={"optimizer.lr": [0.1, 0.01], "model.hidden": [[256], [512, 256]]},
                     seeds=[0, 7])
    cells = spec.cells(default_seed=0)
    assert [c.seed for c in cells] == [0, 0, 0, 0, 7, 7, 7, 7]
    assert [dict(c.values) for c in cells[:4]] == [
        {"optimizer.lr": 0.1, "model.hidden": [256]}, {"optimizer.lr": 0.1, "model.hidden": [512, 256]},
        {"optimizer.lr": 0.01, "model.hidden": [256]}, {"optimizer.lr": 0.01, "model.hidden": [512, 256]}]
    assert cells[1].name == "s_lr-0.1_hidden-512x256_s0"
    assert cells[1].overrides() == ["optimizer.lr=0.1", "model.hidden=[512, 256]"]  # for --print-commands
    assert len({c.name for c in cells}) == len(cells)
    assert all(all(ch.isalnum() or ch in "._+-" for ch in c.name) for c in cells)


def test_without_seeds_a_sweep_uses_the_configs_seed():
    assert [c.seed for c in SweepSpec("s", Path("c.yaml"), grid={"a.b": [1, 2]}).cells(default_seed=5)] == [5, 5]


def test_long_cell_names_are_cut_and_stay_distinct():
    a = cell_name("x" * 40, [("name", "y" * 80 + "a")], 0)
    b = cell_name("x" * 40, [("name", "y" * 80 + "b")], 0)
    assert len(a) == len(b) == 100 and a != b


def test_seed_options():
    assert parse_seed_list("0,3,7") == [0, 3, 7]
    for bad in ("0,x", "1,1", "-1"):
        with pytest.raises(ConfigError):
            parse_seed_list(bad)


def test_sweep_file_with_base_set_grid_and_seeds_and_the_command_line_over_it(tmp_path):
    write(tmp_path / "base.yaml", TINY)
    sweep = write(tmp_path / "lr.yaml", "base: base.yaml\nset: {train.epochs: 1}\n"
                                        "grid: {optimizer.lr: [0.1, 0.01]}\nseeds: 2\n")
    spec = load_spec(sweep, grid=[], fixed=[], seeds=None, seed_list=None, name=None)
    assert (spec.name, spec.base, spec.fixed, spec.grid, spec.seeds) == (
        "lr", tmp_path / "base.yaml", [("train.epochs", 1)], {"optimizer.lr": [0.1, 0.01]}, [0, 1])
    spec = load_spec(sweep, grid=["optimizer.lr=0.5", "model.dropout=0,0.2"], fixed=["train.epochs=2"],
                     seeds=None, seed_list="4", name="other")
    assert spec.grid == {"optimizer.lr": [0.5], "model.dropout": [0, 0.2]}
    assert spec.fixed == [("train.epochs", 1), ("train.epochs", 2)] and spec.seeds == [4] and spec.name == "other"


def test_a_bad_value_in_any_cell_is_exit_2_naming_the_cell_and_nothing_starts(tmp_path):
    config = write(tmp_path / "c.yaml", TINY)
    runs = tmp_path / "runs"
    result = runner.invoke(app, ["sweep", str(config), "--grid", "optimizer.lr=0.1,-1", "--seeds", "2",
                                 "--runs-dir", str(runs)])
    assert result.exit_code == 2
    assert "cell 2 of 4 (optimizer.lr=-1 seed 0)" in result.output and "optimizer.lr" in result.output
    assert not runs.exists()
    result = runner.invoke(app, ["sweep", str(config), "--grid", "optimizer.lrr=0.1", "--runs-dir", str(runs)])
    assert result.exit_code == 2 and "optimizer.lrr" in result.output and not runs.exists()


def test_ray_without_the_extra_or_a_bad_backend_is_exit_2(tmp_path):
    config = write(tmp_path / "c.yaml", TINY)
    result = runner.invoke(app, ["sweep", str(config), "--backend", "slurm"])
    assert result.exit_code == 2 and "local, ray" in result.output


def test_blas_threads_are_shared_out_between_jobs():
    assert threads_per_job(2, cores=2) == 1
    assert threads_per_job(1, cores=2) == 2
    assert threads_per_job(3, cores=2) == 1
    assert threads_per_job(2, cores=8) == 4


def test_a_worker_that_was_killed_or_failed_is_a_failure_and_a_diverged_one_is_not():
    killed = cell_end(0, -signal.SIGKILL, "", "")
    assert killed.error == "killed by signal SIGKILL"
    failed = cell_end(0, 3, "", "error: mnist: missing\n")
    assert failed.error.startswith("exit code 3") and "mnist: missing" in failed.error
    diverged = cell_end(0, 0, json.dumps({"status": "diverged", "run_dir": "runs/n-1"}), "")
    assert diverged.error is None and diverged.summary["status"] == "diverged"
    stopped_early = cell_end(0, 130, "", "")  # stopped before training began: not a failure
    assert stopped_early.error is None and stopped_early.summary is None


@pytest.mark.skipif(sys.platform != "linux", reason="the worker asks Linux for its death signal")
def test_a_worker_takes_sigterm_even_when_its_sweep_inherited_it_ignored():
    """Its death signal (the sweep died, even by kill -9) is SIGTERM: a sweep that keeps an inherited
    ignored SIGTERM ignored (as it keeps SIGHUP under nohup) passed that on, and its cells trained on."""
    from trickrun.sweep.local import _worker_setup

    parent = os.getpid()

    def as_the_sweep_starts_a_worker():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # inherited by the sweep
        _worker_setup(parent)

    proc = subprocess.run([sys.executable, "-c", "import signal; print(signal.getsignal(signal.SIGTERM) == signal.SIG_DFL)"],
                          preexec_fn=as_the_sweep_starts_a_worker, capture_output=True, text=True, timeout=60)
    assert proc.stdout.strip() == "True", proc.stderr


def test_a_failed_cells_error_keeps_the_start_of_trickruns_message_and_cuts_between_words():
    from trickrun.sweep.local import why_failed

    looked = "; ".join(f"/place/number/{i}: no such folder" for i in range(40))
    said = why_failed(f"note: something first\nerror: mnist: the files were not found. Looked in: {looked}\n", 120)
    assert said.startswith("error: mnist: the files were not found.") and said.endswith("…")
    assert len(said) <= 120 and said[:-1] == said[:-1].rstrip() and said[:-1].endswith("folder;")
    traceback = "Traceback (most recent call last):\n" + "  frame line\n" * 60 + "MemoryError: cannot allocate"
    said = why_failed(traceback, 100)
    assert said.startswith("…frame") and said.endswith("MemoryError: cannot allocate") and len(said) <= 100
    assert why_failed("error: short\n") == "error: short"
    assert why_failed("error: /" + "x" * 200, 50) == "error: /" + "x" * 41 + "…"  # one word past the limit


# ---------------------------------------------------------------------------------------
# Real sweeps, on a slice of MNIST (each cell is a process, which finds the data itself).


def trickrun(*args: str) -> list[str]:
    return [sys.executable, "-m", "trickrun", *args]


def run_dirs(runs: Path) -> list[Path]:
    return sorted(p for p in runs.iterdir() if p.is_dir() and p.name != "sweeps")


def record(runs: Path, name: str) -> dict:
    return json.loads((runs / "sweeps" / name / "sweep.json").read_text())


@requires_real_mnist
def test_a_grid_with_seeds_runs_in_parallel_then_a_rerun_skips_everything(tmp_path):
    config = write(tmp_path / "tiny.yaml", TINY)
    runs = tmp_path / "runs"
    args = ["sweep", str(config), "--grid", "optimizer.lr=0.01,0.001", "--seeds", "2", "--jobs", "2",
            "--runs-dir", str(runs)]
    done = subprocess.run(trickrun(*args), capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    dirs = run_dirs(runs)
    assert len(dirs) == 4
    rec = record(runs, "tiny")
    assert [c["seed"] for c in rec["cells"]] == [0, 0, 1, 1]
    assert {c["status"] for c in rec["cells"]} <= {"completed", "early_stopped"}
    assert sorted(Path(c["run_dir"]).name for c in rec["cells"]) == [d.name for d in dirs]
    for cell in rec["cells"]:  # each cell is an ordinary run with its own values and seed
        cfg = (Path(cell["run_dir"]) / "config.yaml").read_text()
        assert f"lr: {cell['overrides']['optimizer.lr']}" in cfg and f"seed: {cell['seed']}" in cfg
    assert "optimizer.lr=0.01" in done.stdout and "optimizer.lr=0.001" in done.stdout  # the leaderboard
    assert "best" in done.stdout and "record:" in done.stdout
    again = subprocess.run(trickrun(*args), capture_output=True, text=True, timeout=300)
    assert again.returncode == 0 and run_dirs(runs) == dirs
    assert "4 of 4 cells already finished: skipped" in again.stderr
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0 and dry.output.count("skip") >= 4
    listed = runner.invoke(app, ["ls", "--runs-dir", str(runs)])
    assert listed.exit_code == 0 and "sweeps" not in listed.output
    grouped = runner.invoke(app, ["compare", "--sweep", "tiny", "--group", "--runs-dir", str(runs)])
    assert grouped.exit_code == 0, grouped.output
    assert "n" in grouped.output and "tiny_lr-0.01" in grouped.output
    averaged = runner.invoke(app, ["ensemble", "--sweep", "tiny", "--format", "json", "--runs-dir", str(runs)])
    assert averaged.exit_code == 0, averaged.output
    assert len(json.loads(averaged.output)["members"]) == 4


@requires_real_mnist
def test_print_commands_gives_one_train_line_per_cell(tmp_path):
    config = write(tmp_path / "tiny.yaml", TINY)
    result = runner.invoke(app, ["sweep", str(config), "--grid", "optimizer.name=sgd,adam", "--seed-list", "3,4",
                                 "--runs-dir", str(tmp_path / "runs"), "--print-commands"])
    lines = result.output.strip().splitlines()
    assert result.exit_code == 0 and len(lines) == 4
    assert lines[0] == (f"trickrun train {config} --set optimizer.name=sgd --name tiny_name-sgd_s3 --seed 3 "
                        f"--runs-dir {tmp_path / 'runs'} --quiet")
    assert not (tmp_path / "runs").exists()


@requires_real_mnist
def test_a_failing_cell_is_reported_and_the_others_go_on(tmp_path):
    config = write(tmp_path / "tiny.yaml", TINY)
    runs = tmp_path / "runs"
    # The second data.dir holds no MNIST: that cell fails with exit 3 when it loads its data.
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run(trickrun("sweep", str(config), "--grid", f"data.dir=[null, {empty}]",
                                   "--grid", "optimizer.lr=0.01,0.001", "--jobs", "2", "--runs-dir", str(runs)),
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    rec = record(runs, "tiny")
    statuses = [c["status"] for c in rec["cells"]]
    assert statuses[2:] == ["failed", "failed"] and all(s != "failed" for s in statuses[:2])
    assert "exit code 3" in rec["cells"][2]["error"]
    assert "failed" in done.stderr and "FAILED" in done.stderr  # reported as it happened and at the end
    assert len(run_dirs(runs)) == 2


def wait_for(predicate, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.1)


def epochs(run_dir: Path) -> int:
    """The epochs the run has recorded (0 while its worker starts)."""
    try:
        return (run_dir / "metrics.jsonl").read_bytes().count(b"\n")
    except OSError:
        return 0


def kill_lock_holders(runs: Path) -> None:
    """Cleanup after a failed test: a cell that outlived its sweep would train on for ever;
    kill it by the pid its run's lock file names."""
    for d in run_dirs(runs) if runs.exists() else []:
        if is_locked(d):
            try:
                os.kill(json.loads((d / ".lock").read_text())["pid"], signal.SIGKILL)
            except (OSError, ValueError, KeyError, TypeError):
                pass


@requires_real_mnist
def test_kill_9_of_the_sweep_ends_its_cells_interrupted_and_the_same_command_resumes_them(tmp_path):
    config = write(tmp_path / "slow.yaml", ENDLESS)
    runs = tmp_path / "runs"
    args = ["sweep", str(config), "--grid", "optimizer.lr=0.01,0.001,0.0001", "--jobs", "2",
            "--runs-dir", str(runs), "--quiet"]
    proc = subprocess.Popen(trickrun(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    path = runs / "sweeps" / "slow" / "sweep.json"
    try:
        wait_for(lambda: runs.exists() and len(run_dirs(runs)) == 2 and all(epochs(d) >= 1 for d in run_dirs(runs)))
        proc.kill()
        proc.wait()
        # The cells train until stopped: only dying with their driver (SIGTERM) ends them, each
        # as interrupted, and lets go of its run's lock; the record the driver left then reads
        # as interrupted too.
        wait_for(lambda: not any(is_locked(d) for d in run_dirs(runs))
                 and [c["status"] for c in read_record(path)["cells"]] == ["interrupted", "interrupted", "pending"],
                 timeout=60)
    finally:
        kill_lock_holders(runs)
    assert [c["status"] for c in record(runs, "slow")["cells"]] == ["running", "running", "pending"]  # the file as left
    assert not is_locked(path.parent)
    for d in run_dirs(runs):
        assert json.loads((d / "summary.json").read_text())["status"] == "interrupted"
    dry = runner.invoke(app, [*args, "--dry-run"])
    assert dry.exit_code == 0 and "2 to resume, 1 to train" in dry.output, dry.output


@requires_real_mnist
def test_ctrl_c_stops_the_sweep_with_130_and_leaves_the_running_cells_resumable(tmp_path):
    config = write(tmp_path / "slow.yaml", ENDLESS)
    runs = tmp_path / "runs"
    proc = subprocess.Popen(trickrun("sweep", str(config), "--grid", "optimizer.lr=0.01,0.001,0.0001",
                                     "--jobs", "2", "--runs-dir", str(runs), "--quiet"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=foreground_sigint)
    wait_for(lambda: runs.exists() and len(run_dirs(runs)) == 2 and all(epochs(d) >= 1 for d in run_dirs(runs)))
    os.killpg(proc.pid, signal.SIGINT)  # what the terminal does: the whole foreground group
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "run the same command again" in err
    statuses = [c["status"] for c in record(runs, "slow")["cells"]]
    assert statuses.count("interrupted") == 2 and statuses[2] == "pending"
    for d in run_dirs(runs):
        assert json.loads((d / "summary.json").read_text())["status"] == "interrupted"
