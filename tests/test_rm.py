"""`trickrun rm`: runs named as compare takes them, a sweep with its record, listed and asked
for; never a run a live process trains, a running sweep, anything outside the runs folder,
anything through a symbolic link, or a folder that is not a run; and never a half-deleted run."""

from __future__ import annotations

import json
import os
import signal
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

import trickrun.cli_runs
from runfactory import make_run, write_record
from subproc import LONG_RUN, children, start, wait_for_epochs, wait_for_run_dir  # noqa: F401 (children: a fixture)
from trickrun.cli import app
from trickrun.housekeeping import remove
from trickrun.rundir.format import LOCK_FILE
from trickrun.rundir.lock import RunLock
from trickrun.sweep.record import lock_sweep

runner = CliRunner()
QUICK = "data: {val_size: 100}\nmodel: {hidden: [8]}\ntrain: {epochs: 2, batch_size: 64}\n"


def rm(*args: str):
    return runner.invoke(app, ["rm", *args])


def listing(root: Path) -> list[str]:
    """Every entry of the runs folder, hidden ones included."""
    return sorted(p.name for p in root.iterdir())


def ls_is_clean(root: Path) -> list[str]:
    """The run names `trickrun ls` shows, after checking it notes no folder that is not a run."""
    result = runner.invoke(app, ["ls", "--runs-dir", str(root), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert "not runs" not in result.stderr, result.stderr
    return sorted(row["name"] for row in json.loads(result.stdout))


def files_of(path: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(path.iterdir()) if p.is_file()}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "runs"  # the runs folder conftest points TRICKRUN_RUNS_DIR at


# ---------------------------------------------------------------------------------------
# A sweep, trained for real on the fake data.


def test_rm_of_a_sweep_removes_its_runs_and_record_and_leaves_every_other_run_and_ls_clean(
        fake_data, tmp_path, root, children):
    config = tmp_path / "quick.yaml"
    config.write_text(QUICK)
    proc = start("sweep", str(config), "--grid", "optimizer.lr=0.01,0.001", "--jobs", "1", "--quiet",
                 "--runs-dir", str(root))
    children.append(proc)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    cells = sorted(p for p in root.iterdir() if p.name.startswith("quick_"))
    assert len(cells) == 2
    other = make_run(root, "baseline")
    # A run named like a cell that the record does not list (e.g. from before a --rerun): no
    # run is taken by its name.
    namesake = make_run(root, cells[0].name.rsplit("-", 2)[0], stamp="20200101-000000")
    before = {p: files_of(p) for p in (other, namesake)}

    result = rm("--sweep", "quick", "--yes")
    assert result.exit_code == 0, result.output
    assert all(cell.name in result.stdout for cell in cells) and "sweeps/quick/" in result.stdout
    assert "removed 2 runs and the record of sweep quick" in result.stdout
    assert listing(root) == sorted([other.name, namesake.name, "sweeps"])
    assert list((root / "sweeps").iterdir()) == []
    assert {p: files_of(p) for p in (other, namesake)} == before
    assert ls_is_clean(root) == sorted([other.name, namesake.name])
    again = runner.invoke(app, ["compare", "--sweep", "quick"])
    assert again.exit_code == 2 and "no sweep named 'quick'" in again.stderr


def test_rm_of_a_sweep_whose_runs_are_partly_gone_removes_the_rest_and_the_record(root):
    runs = [make_run(root, f"s_lr-{i}_s0") for i in range(3)]
    write_record(root, "s", runs)
    shutil.rmtree(runs[0])
    result = rm("--sweep", "s", "-y")
    assert result.exit_code == 0, result.output
    assert "removed 2 runs and the record of sweep s" in result.stdout
    assert listing(root) == ["sweeps"] and ls_is_clean(root) == []


def test_a_sweep_with_no_runs_left_still_has_its_record_removed(root):
    run = make_run(root, "s_lr-1_s0")
    write_record(root, "s", [run])
    shutil.rmtree(run)
    result = rm("--sweep", "s", "-y")
    assert result.exit_code == 0, result.output
    assert not (root / "sweeps" / "s").exists()


def test_removing_one_run_of_a_sweep_says_the_record_still_lists_it_and_compare_and_export_take_the_rest(root):
    runs = [make_run(root, f"s_lr-{i}_s0") for i in range(3)]
    write_record(root, "s", runs)
    result = rm(runs[0].name, "-y")
    assert result.exit_code == 0, result.output
    said = " ".join(result.stderr.split())
    assert "the record of sweep s still lists 1 run(s) removed here" in said
    assert "compare --sweep s and export --sweep s take the runs still there, with a warning" in said
    assert "trickrun rm --sweep s" in said
    for command in ("compare", "export"):
        taken = runner.invoke(app, [command, "--sweep", "s", "--format", "json" if command == "compare" else "csv"])
        assert taken.exit_code == 0, (command, taken.output)
        warned = " ".join(taken.stderr.split())
        assert f"warning: 1 of the 3 runs the record of sweep s lists is gone from {root}" in warned
        assert "using the 2 still there" in warned
        assert runs[1].name in taken.stdout and runs[2].name in taken.stdout and runs[0].name not in taken.stdout


def test_compare_of_a_sweep_whose_runs_are_all_gone_is_exit_2_saying_so(root):
    runs = [make_run(root, f"s_lr-{i}_s0") for i in range(2)]
    write_record(root, "s", runs)
    assert rm(*[run.name for run in runs], "-y").exit_code == 0
    for command in ("compare", "export"):
        result = runner.invoke(app, [command, "--sweep", "s"])
        assert result.exit_code == 2, result.output
        assert "every run the record of sweep s lists (2) is gone" in " ".join(result.stderr.split())


def test_a_running_sweep_is_refused_and_nothing_is_deleted(root):
    runs = [make_run(root, f"s_lr-{i}_s0") for i in range(2)]
    write_record(root, "s", runs)
    lock = lock_sweep(root, "s")  # as `trickrun sweep` holds it while it runs
    try:
        for args in (["--sweep", "s", "-y"], ["--sweep", "s", "--dry-run"]):
            result = rm(*args)
            assert result.exit_code == 2, result.output
            assert f"sweep 's' is being run by pid {os.getpid()}" in result.stderr
    finally:
        lock.release()
    assert all(run.is_dir() for run in runs) and (root / "sweeps" / "s" / "sweep.json").is_file()


def test_a_sweep_whose_run_is_busy_keeps_its_record_and_exits_1(root):
    runs = [make_run(root, f"s_lr-{i}_s0") for i in range(3)]
    write_record(root, "s", runs)
    lock = RunLock.acquire(runs[1])
    try:
        result = rm("--sweep", "s", "-y")
    finally:
        lock.release()
    assert result.exit_code == 1, result.output
    assert not runs[0].exists() and runs[1].is_dir() and not runs[2].exists()
    assert f"{runs[1].name} is being trained by pid {os.getpid()}" in result.stderr
    assert "the record of sweep s is kept, since 1 of its 3 runs stayed" in " ".join(result.stderr.split())
    assert (root / "sweeps" / "s" / "sweep.json").is_file()


def test_a_sweep_record_rewritten_before_rm_takes_the_lock_is_read_as_it_is_under_the_lock(root, monkeypatch):
    """A `--rerun` ending just before rm locks the sweep: its cell 0 failed before its first
    epoch (no run directory), so the record no longer lists runs[0], which must stay."""
    runs = [make_run(root, f"s_lr-{i}_s0") for i in range(2)]
    folder = write_record(root, "s", runs)
    record = json.loads((folder / "sweep.json").read_text())

    class RerunEndsInTheGap(RunLock):
        @classmethod
        def acquire(cls, run_dir, busy=None):
            if run_dir == folder:
                record["cells"][0]["run_dir"] = str(root / "s_lr-0_s0-20240601-120000")
                (folder / "sweep.json").write_text(json.dumps(record))
            return RunLock.acquire(run_dir, busy)

    monkeypatch.setattr(remove, "RunLock", RerunEndsInTheGap)
    result = rm("--sweep", "s", "-y")
    assert result.exit_code == 0, result.output
    assert runs[0].is_dir() and not runs[1].exists()
    assert runs[0].name not in result.stdout and "removed 1 run and the record of sweep s" in result.stdout
    assert listing(root) == sorted([runs[0].name, "sweeps"])


def test_a_run_named_beside_a_sweep_that_stays_does_not_keep_the_sweeps_record(root):
    runs = [make_run(root, f"s_lr-{i}_s0") for i in range(2)]
    write_record(root, "s", runs)
    other = make_run(root, "other")
    lock = RunLock.acquire(other)
    try:
        result = rm(other.name, "--sweep", "s", "-y")
    finally:
        lock.release()
    assert result.exit_code == 1, result.output
    assert other.is_dir() and not any(run.exists() for run in runs)
    assert "removed 2 runs and the record of sweep s" in result.stdout
    assert "is kept" not in result.stderr and not (root / "sweeps" / "s").exists()


# ---------------------------------------------------------------------------------------
# Naming runs.


def test_an_ambiguous_name_is_refused_listing_the_matches_and_nothing_is_deleted(root):
    runs = [make_run(root, "adam", stamp=s) for s in ("20240501-120000", "20240502-120000")]
    for spec in ("adam", "ada"):  # a run name, a prefix
        result = rm(spec, "-y")
        assert result.exit_code == 2, result.output
        assert "matches 2 runs" in result.stderr and all(r.name in result.stderr for r in runs)
        assert "full directory name" in result.stderr or "more of the name" in result.stderr
    assert all(run.is_dir() for run in runs)
    result = rm(runs[0].name, "-y")  # the full directory name names one
    assert result.exit_code == 0 and not runs[0].exists() and runs[1].is_dir()


def test_a_glob_takes_every_run_it_matches_and_nothing_else(root):
    adams = [make_run(root, "adam", stamp=s) for s in ("20240501-120000", "20240502-120000")]
    sgd = make_run(root, "sgd")
    result = rm(str(root / "adam-*"), "-y")
    assert result.exit_code == 0, result.output
    assert not any(run.exists() for run in adams) and sgd.is_dir()
    assert ls_is_clean(root) == [sgd.name]


def test_dry_run_lists_and_deletes_nothing(root):
    runs = [make_run(root, "adam"), make_run(root, "sgd")]
    before = {run: files_of(run) for run in runs}
    result = rm("adam", "sgd", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "would remove" in result.stdout and all(run.name in result.stdout for run in runs)
    assert "nothing was removed" in result.stdout
    assert {run: files_of(run) for run in runs} == before


def test_the_listing_says_1_epoch_not_1_epochs(root):
    one, six = make_run(root, "adam", epochs=1), make_run(root, "sgd")
    result = rm("adam", "sgd", "--dry-run")
    assert result.exit_code == 0, result.output
    assert f"{one.name}  (completed, 1 epoch)" in result.stdout
    assert f"{six.name}  (completed, 6 epochs)" in result.stdout


# ---------------------------------------------------------------------------------------
# Asking.


def test_without_yes_and_no_terminal_rm_refuses_with_exit_2_and_says_to_pass_yes(root):
    run = make_run(root, "adam")
    result = runner.invoke(app, ["rm", "adam"], input="y\n")  # even a "y" on a pipe is no answer
    assert result.exit_code == 2, result.output
    assert "pass --yes" in result.stderr and run.name in result.stdout
    assert run.is_dir()


def test_on_a_terminal_rm_asks_and_only_a_yes_deletes(root, monkeypatch):
    monkeypatch.setattr(trickrun.cli_runs, "_stdin_is_terminal", lambda: True)
    run = make_run(root, "adam")
    result = runner.invoke(app, ["rm", "adam"], input="n\n")
    assert result.exit_code == 1 and "Remove 1 run?" in result.stdout and "nothing was removed" in result.stdout
    assert run.is_dir()
    result = runner.invoke(app, ["rm", "adam"], input="y\n")
    assert result.exit_code == 0, result.output
    assert not run.exists()


# ---------------------------------------------------------------------------------------
# Runs a live process holds.


def test_a_run_a_live_training_trains_is_left_named_with_its_holder_and_the_others_go(
        fake_data, tmp_path, root, children):
    config = tmp_path / "long.yaml"
    config.write_text("name: long\n")
    proc = start("train", str(config), *LONG_RUN, "--quiet", "--runs-dir", str(root))
    children.append(proc)
    live = wait_for_run_dir(root, proc)
    wait_for_epochs(live, 1, proc)
    done = make_run(root, "done")
    result = rm(live.name, done.name, "-y")
    assert result.exit_code == 1, result.output
    assert f"left: {live.name} is being trained by pid {proc.pid}" in result.stderr
    assert not done.exists() and live.is_dir()
    assert proc.poll() is None  # still training, its directory whole
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=60)
    assert (live / "summary.json").is_file() and (live / "config.yaml").is_file()


def test_a_run_locked_by_this_process_is_refused(root):
    run = make_run(root, "held")
    lock = RunLock.acquire(run)
    try:
        result = rm("held", "-y")
    finally:
        lock.release()
    assert result.exit_code == 1 and f"is being trained by pid {os.getpid()}" in result.stderr
    assert run.is_dir()


def test_a_run_from_before_locks_whose_process_lives_is_left_without_a_lock_file(root):
    run = make_run(root, "old", status="running", pid=os.getpid())  # no .lock: an older trickrun's, alive
    result = rm("old", "-y")
    assert result.exit_code == 1 and "from before run locks" in result.stderr
    assert run.is_dir() and not (run / LOCK_FILE).exists()  # no lock file says it is free
    dead = make_run(root, "dead", status="running", pid=2**30)
    assert rm("dead", "-y").exit_code == 0 and not dead.exists()


# ---------------------------------------------------------------------------------------
# Only runs, only in the runs folder, never through a link.


def test_a_run_outside_the_runs_folder_is_refused(tmp_path, root):
    make_run(root, "inside")
    outside = make_run(tmp_path / "elsewhere", "adam")
    result = rm(str(outside), "-y")
    assert result.exit_code == 2, result.output
    assert "not in the runs folder" in result.stderr and f"--runs-dir {outside.parent}" in result.stderr
    assert outside.is_dir()
    assert rm(str(outside), "-y", "--runs-dir", str(outside.parent)).exit_code == 0 and not outside.exists()


def test_a_symlinked_run_directory_is_refused_and_nothing_behind_it_is_touched(tmp_path, root):
    target = make_run(tmp_path / "elsewhere", "adam")
    root.mkdir()
    link = root / "linked-20240501-120000"
    link.symlink_to(target, target_is_directory=True)
    keep = make_run(root, "keep")
    for spec in ("linked", str(link), str(root / "*")):  # by name, by path, in a glob
        result = rm(spec, "-y")
        assert result.exit_code == 2, result.output
        assert "symbolic link" in result.stderr
    assert link.is_symlink() and target.is_dir() and (target / "config.yaml").is_file() and keep.is_dir()


def test_links_inside_a_run_are_unlinked_and_what_they_point_to_stays(tmp_path, root):
    run = make_run(root, "adam")
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "data.txt").write_text("keep me")
    (run / "folder-link").symlink_to(precious, target_is_directory=True)
    (run / "file-link").symlink_to(precious / "data.txt")
    result = rm("adam", "-y")
    assert result.exit_code == 0, result.output
    assert not run.exists() and (precious / "data.txt").read_text() == "keep me"


def test_a_symlinked_lock_file_is_refused(tmp_path, root):
    run = make_run(root, "adam")
    victim = tmp_path / "victim.txt"
    victim.write_text("not a lock")
    (run / LOCK_FILE).symlink_to(victim)
    result = rm("adam", "-y")
    assert result.exit_code == 2 and "symbolic link" in result.stderr
    assert run.is_dir() and victim.read_text() == "not a lock"


def test_a_runs_folder_that_is_a_link_works(tmp_path):
    real = tmp_path / "real-runs"
    run = make_run(real, "adam")
    keep = make_run(real, "keep")
    (tmp_path / "linked-runs").symlink_to(real, target_is_directory=True)
    result = rm("adam", "-y", "--runs-dir", str(tmp_path / "linked-runs"))
    assert result.exit_code == 0, result.output
    assert not run.exists() and keep.is_dir()


def test_a_project_folder_holding_a_config_and_its_runs_is_never_taken_for_a_run(tmp_path, root):
    """A folder with a config.yaml looks like a run at first sight; one that holds folders (here
    the project's runs folder) never is one, from inside another runs folder or not."""
    project = tmp_path / "project"
    (project / "config.yaml").parent.mkdir()
    (project / "config.yaml").write_text(QUICK)
    finished = make_run(project / "runs", "adam")
    make_run(root, "mine")
    result = rm(str(project), "-y")
    assert result.exit_code == 2 and "not in the runs folder" in result.stderr, result.output
    assert "--runs-dir" not in result.stderr  # no hint that leads to deleting it
    result = rm("project", "-y", "--runs-dir", str(tmp_path))
    assert result.exit_code == 2 and "holds folders (runs)" in result.stderr, result.output
    assert finished.is_dir() and (project / "config.yaml").is_file()


def test_folders_that_are_not_runs_and_staging_folders_are_refused(root):
    make_run(root, "adam")
    junk = root / "notes"
    junk.mkdir()
    (junk / "todo.txt").write_text("x")
    staging = root / ".creating-adam-123-abcd"
    staging.mkdir()
    (staging / "config.yaml").write_text("name: adam\n")
    for spec, why in ((str(junk), "not a run directory"), (str(staging), "staging folder"),
                      (str(root), "not a run directory")):
        result = rm(spec, "-y")
        assert result.exit_code == 2 and why in result.stderr, (spec, result.output)
    assert (junk / "todo.txt").is_file() and (staging / "config.yaml").is_file()
    assert rm("adam", "-y").exit_code == 0
    assert staging.is_dir()  # a removal never touches a run being made


def test_one_bad_name_among_good_ones_deletes_nothing(root):
    good = make_run(root, "adam")
    result = rm("adam", "nosuchrun", "-y")
    assert result.exit_code == 2 and "nosuchrun" in result.stderr
    assert good.is_dir()


# ---------------------------------------------------------------------------------------
# A removal is whole: a crash leaves a hidden folder, never a half run, and the next rm ends it.


def test_a_removal_that_fails_part_way_leaves_no_half_run_and_the_next_rm_finishes_it(root, monkeypatch):
    run = make_run(root, "adam")
    other = make_run(root, "sgd")
    real_rmtree = shutil.rmtree

    def crash(path, ignore_errors=False, **kwargs):  # deletes a file, then the disk fails
        (Path(path) / "summary.json").unlink(missing_ok=True)
        if not ignore_errors:
            raise OSError(5, "Input/output error")

    monkeypatch.setattr(remove.shutil, "rmtree", crash)
    result = rm("adam", "-y")
    assert result.exit_code == 1 and "the next trickrun rm deletes the rest" in result.stderr
    assert not run.exists()
    leftovers = [p for p in root.iterdir() if p.name.startswith(".removing-")]
    assert len(leftovers) == 1
    assert ls_is_clean(root) == [other.name]  # hidden: no run, and no "not a run" note
    bad = runner.invoke(app, ["show", "adam"])
    assert bad.exit_code == 2  # not found as a run either

    monkeypatch.setattr(remove.shutil, "rmtree", real_rmtree)
    assert rm("sgd", "-y").exit_code == 0
    assert listing(root) == []


def test_a_runs_folder_that_is_a_file_is_said_to_be_one(tmp_path):
    afile = tmp_path / "notes.txt"
    afile.write_text("not runs\n")
    result = rm("x", "--yes", "--runs-dir", str(afile))
    assert result.exit_code == 2 and f"runs folder {str(afile)!r} is not a folder" in result.output
    assert afile.read_text() == "not runs\n"


@pytest.mark.parametrize("spec", [".", "./", ""])
def test_the_runs_folder_itself_is_never_removed_even_when_it_looks_like_a_run(root, monkeypatch, spec):
    # A flat runs folder holding a config.yaml passed every check a run passes, and `rm .`
    # renamed it out of itself and deleted it, with whatever else it held.
    root.mkdir(parents=True)
    (root / "config.yaml").write_text("name: mine\n")
    (root / "notes.txt").write_text("keep")
    monkeypatch.chdir(root)
    result = rm(spec, "--runs-dir", str(root), "-y")
    assert result.exit_code == 2 and "is the runs folder" in result.stderr, result.output
    assert (root / "notes.txt").read_text() == "keep" and (root / "config.yaml").is_file()


def test_a_lock_file_that_is_a_pipe_is_refused_without_a_traceback(root):
    run = make_run(root, "adam")
    (run / LOCK_FILE).unlink(missing_ok=True)
    os.mkfifo(run / LOCK_FILE)
    for command, code in ((["rm", "adam", "-y"], 1), (["resume", "adam"], 2)):  # rm: the run is left
        result = runner.invoke(app, command)
        assert result.exit_code == code and "is not a regular file" in " ".join(result.stderr.split()), result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
    assert run.is_dir() and (run / "config.yaml").is_file()


def test_a_half_deleted_run_left_by_a_killed_rm_is_never_found_by_a_name(root):
    run = make_run(root, "adam")
    hidden = root / ".removing-adam-20240501-120000-abcd"
    run.rename(hidden)  # as rm renames a run before deleting it
    for spec in (".rem", ".removing-adam", "adam"):
        result = runner.invoke(app, ["show", spec])
        assert result.exit_code == 2 and "matches no run" in result.stderr, (spec, result.output)


def test_an_exact_hidden_folder_name_is_said_to_be_hidden(root):
    run = make_run(root, "adam")
    hidden = root / ".removing-adam-x"
    run.rename(hidden)
    result = runner.invoke(app, ["show", ".removing-adam-x"])
    assert result.exit_code == 2 and "is a hidden folder" in result.stderr
