"""Downloading through a real HTTP server on 127.0.0.1: success, bad bytes, drops, 404s."""

from __future__ import annotations

import gzip
import signal
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from trickrun.data import download, load
from helpers import FILES, fake_arrays, idx_bytes, write_fake_dataset
from subproc import children, start  # noqa: F401 (children: a fixture)
from trickrun.config import DataConfig
from trickrun.errors import DataError

SMALL = dict(val_size=100)


class Mirror:
    """A local HTTP server: `files` maps a URL path to its bytes, `behaviour` to how to serve it.

    behaviours: "ok" (default), "drop" (send a full Content-Length, then half the body
    and close), "hang" (the same, then send nothing more until the mirror closes), "trickle"
    (a full Content-Length, then a byte every 0.05 s, 60 in all, and close), "404",
    "flood" (no Content-Length, then 5 MB of zeros, far more than any copy of the file, or
    less if the client hangs up). `requests` records every path asked for.
    """

    def __init__(self, files: dict[str, bytes]):
        self.files = dict(files)
        self.behaviour: dict[str, str] = {}
        self.requests: list[str] = []
        self.closing = threading.Event()
        mirror = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                mirror.requests.append(self.path)
                body = mirror.files.get(self.path)
                how = mirror.behaviour.get(self.path, "ok")
                if body is None or how == "404":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/gzip")
                if how == "flood":
                    self.end_headers()
                    try:
                        for _ in range(80):
                            self.wfile.write(bytes(65536))
                    except OSError:  # the client hung up
                        pass
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if how == "trickle":
                    for k in range(min(len(body), 60)):  # 60 bytes over 3 s, then it hangs up
                        self.wfile.write(body[k : k + 1])
                        self.wfile.flush()
                        if mirror.closing.wait(0.05):
                            break
                    self.close_connection = True
                elif how in ("drop", "hang"):
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    if how == "hang":
                        mirror.closing.wait()
                    self.close_connection = True
                else:
                    self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/mnist/"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05})
        self.thread.start()

    def close(self):
        self.closing.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def served(tmp_path, monkeypatch, expect_sums):
    """The gzipped bytes of a fake mnist by file name, with the catalog's checksums patched to match."""
    sums = write_fake_dataset(tmp_path / "source")
    expect_sums(sums)
    monkeypatch.delenv("TRICKRUN_DATA_DIR", raising=False)
    return {name: (tmp_path / "source" / f"{name}.gz").read_bytes() for name in FILES}


@pytest.fixture
def start_mirror():
    started = []

    def start(files: dict[str, bytes]) -> Mirror:
        mirror = Mirror({f"/mnist/{name}.gz": body for name, body in files.items()})
        started.append(mirror)
        return mirror

    yield start
    for mirror in started:
        mirror.close()


@pytest.fixture
def cache(tmp_path) -> Path:
    return tmp_path / "cache" / "trickrun" / "mnist"


def use_mirrors(monkeypatch, *mirrors: Mirror) -> None:
    monkeypatch.setenv("TRICKRUN_MIRRORS", ",".join(m.url for m in mirrors))


def test_download_lands_in_cache_verifies_and_loads(served, start_mirror, cache, monkeypatch, capsys):
    mirror = start_mirror(served)
    use_mirrors(monkeypatch, mirror)
    ds = load.load_dataset(DataConfig(**SMALL), progress=True)
    assert mirror.requests == [f"/mnist/{name}.gz" for name in FILES]
    assert ds.source == str(cache)
    for name in FILES:
        assert (cache / f"{name}.gz").read_bytes() == served[name]
    assert not list(cache.glob(".*")), "no temporary file left"
    assert ds.x_train.shape == (500, 784) and ds.x_test.shape == (200, 784)
    assert "t10k-labels-idx1-ubyte.gz" in capsys.readouterr().err  # the progress bar's rows
    mirror.close()  # served once, then the cache answers
    again = load.load_dataset(DataConfig(**SMALL))
    np.testing.assert_array_equal(again.x_train, ds.x_train)


def test_wrong_bytes_are_rejected_and_leave_nothing(served, start_mirror, tmp_path, monkeypatch):
    other = idx_bytes(fake_arrays(seed=1)["train-images-idx3-ubyte"])
    mirror = start_mirror({**served, "train-images-idx3-ubyte": gzip.compress(other)})
    use_mirrors(monkeypatch, mirror)
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    assert err.value.exit_code == 3
    assert f"{mirror.url}train-images-idx3-ubyte.gz: checksum mismatch: expected sha256 " in str(err.value)
    assert ".tmp" not in str(err.value)  # not the temporary file, deleted by then
    assert not (tmp_path / "cache").exists(), "no file, temporary file or folder the attempt created is kept"
    assert mirror.requests == ["/mnist/train-images-idx3-ubyte.gz"]  # gave up at the first file


def test_dropped_connection_is_an_error(served, start_mirror, cache, monkeypatch):
    mirror = start_mirror(served)
    mirror.behaviour["/mnist/train-labels-idx1-ubyte.gz"] = "drop"
    use_mirrors(monkeypatch, mirror)
    size = len(served["train-labels-idx1-ubyte"])
    with pytest.raises(DataError, match=f"connection closed after {size // 2} of {size} bytes") as err:
        load.load_dataset(DataConfig(**SMALL))
    assert err.value.exit_code == 3
    assert sorted(p.name for p in cache.iterdir()) == ["train-images-idx3-ubyte.gz"]  # verified one stays


def test_a_server_sending_more_than_any_genuine_copy_is_stopped(served, start_mirror, cache, monkeypatch):
    from trickrun.data.catalog import SIZE

    mirror = start_mirror(served)
    mirror.behaviour["/mnist/train-labels-idx1-ubyte.gz"] = "flood"
    use_mirrors(monkeypatch, mirror)
    with pytest.raises(DataError, match="the server sends more than .* bytes, more than any genuine copy") as err:
        load.load_dataset(DataConfig(**SMALL))
    assert err.value.exit_code == 3
    assert SIZE["train-labels-idx1-ubyte"] < 80 * 65536 // 10  # the flood is far past any genuine copy
    assert sorted(p.name for p in cache.iterdir()) == ["train-images-idx3-ubyte.gz"]  # no part of it kept


def test_a_server_that_trickles_bytes_is_given_up_on_for_the_next_mirror(served, start_mirror, cache, monkeypatch):
    """Each byte arrives well within the read timeout, so only the pace tells a stalled server."""
    monkeypatch.setattr(download, "LOW_SPEED_WINDOW", 0.5)  # the 1,000 bytes a second over 0.5 s
    slow, good = start_mirror(served), start_mirror(served)
    slow.behaviour["/mnist/train-images-idx3-ubyte.gz"] = "trickle"
    use_mirrors(monkeypatch, slow)
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    assert f"{slow.url}train-images-idx3-ubyte.gz: the server is too slow: " in str(err.value)
    assert "less than 1,000 bytes a second (try again later)" in str(err.value)
    assert not cache.exists() or not list(cache.iterdir()), "no partial file kept"
    use_mirrors(monkeypatch, slow, good)
    ds = load.load_dataset(DataConfig(**SMALL))
    assert ds.source == str(cache) and good.requests[0] == "/mnist/train-images-idx3-ubyte.gz"


def test_a_second_download_into_the_same_cache_waits_and_takes_the_files_the_first_stored(served, start_mirror,
                                                                                         cache, capsys):
    import fcntl
    import os

    mirror = start_mirror(served)
    cache.mkdir(parents=True)
    first = os.open(cache, os.O_RDONLY)  # another process downloading into the cache: its lock
    fcntl.flock(first, fcntl.LOCK_EX)
    done: dict = {}
    second = threading.Thread(target=lambda: done.update(download.download("mnist", cache, urls=[mirror.url],
                                                                           progress=True)))
    second.start()
    try:
        waited = time.monotonic() + 30
        while "note: waiting for another process downloading into" not in capsys.readouterr().err:
            assert time.monotonic() < waited and second.is_alive(), "the second download did not wait"
            time.sleep(0.01)
        for name, body in served.items():  # the first one stores the files, then lets go
            (cache / f"{name}.gz").write_bytes(body)
    finally:
        os.close(first)
        second.join(timeout=60)
    assert mirror.requests == []  # nothing downloaded twice
    assert done == {name: cache / f"{name}.gz" for name in FILES}


def test_dropped_connection_falls_through_to_the_next_mirror(served, start_mirror, cache, monkeypatch):
    first, second = start_mirror(served), start_mirror(served)
    first.behaviour["/mnist/train-images-idx3-ubyte.gz"] = "drop"
    use_mirrors(monkeypatch, first, second)
    ds = load.load_dataset(DataConfig(**SMALL))
    assert first.requests == ["/mnist/train-images-idx3-ubyte.gz"]
    # the mirror that worked is asked first for the remaining files
    assert second.requests == [f"/mnist/{name}.gz" for name in FILES]
    assert sorted(p.name for p in cache.glob("*.gz")) == sorted(f"{n}.gz" for n in FILES)
    assert not list(cache.glob(".*"))
    assert ds.x_val.shape == (100, 784)


def test_404_falls_through_to_the_next_mirror(served, start_mirror, cache, monkeypatch):
    first, second = start_mirror({}), start_mirror(served)
    use_mirrors(monkeypatch, first, second)
    ds = load.load_dataset(DataConfig(**SMALL))
    assert first.requests == ["/mnist/train-images-idx3-ubyte.gz"]
    assert len(second.requests) == 4
    assert ds.source == str(cache)


def test_all_mirrors_failing_lists_each_url_and_error(served, start_mirror, monkeypatch):
    first, second = start_mirror({}), start_mirror(served)
    second.behaviour["/mnist/train-images-idx3-ubyte.gz"] = "drop"
    use_mirrors(monkeypatch, first, second)
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    message = str(err.value)
    assert f"{first.url}train-images-idx3-ubyte.gz: HTTP 404" in message
    assert f"{second.url}train-images-idx3-ubyte.gz: connection closed after" in message
    assert "To supply the files" in message


def test_interrupted_download_in_cache_is_completed(served, start_mirror, cache, monkeypatch):
    cache.mkdir(parents=True)
    for name in FILES[:2]:
        (cache / f"{name}.gz").write_bytes(served[name])
    mirror = start_mirror(served)
    use_mirrors(monkeypatch, mirror)
    ds = load.load_dataset(DataConfig(**SMALL))
    assert mirror.requests == [f"/mnist/{name}.gz" for name in FILES[2:]]
    assert ds.x_test.shape == (200, 784)


def test_a_mirror_sending_no_gzip_for_a_gz_url_is_told_so(served, start_mirror, tmp_path, monkeypatch):
    # An error page served with 200: the temporary file's name ends in .tmp, so the note about a
    # .gz that is not gzip-compressed, meant for exactly this, was never given for a download.
    mirror = start_mirror({**served, "train-images-idx3-ubyte": b"<html>moved</html>"})
    use_mirrors(monkeypatch, mirror)
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    assert "(the file is not gzip-compressed although its name ends in .gz)" in str(err.value)


def test_download_function_directly(served, start_mirror, tmp_path):
    mirror = start_mirror(served)
    dest = tmp_path / "dest"
    paths = download.download("mnist", dest, ["t10k-labels-idx1-ubyte"], urls=[mirror.url])
    assert paths == {"t10k-labels-idx1-ubyte": dest / "t10k-labels-idx1-ubyte.gz"}
    assert sorted(p.name for p in dest.iterdir()) == ["t10k-labels-idx1-ubyte.gz"]


def test_failed_download_removes_the_folders_it_created(served, start_mirror, tmp_path):
    mirror = start_mirror({})
    dest = tmp_path / "new" / "cache" / "mnist"
    with pytest.raises(download.DownloadError, match="HTTP 404"):
        download.download("mnist", dest, urls=[mirror.url])
    assert mirror.requests == ["/mnist/train-images-idx3-ubyte.gz"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["source"], "no empty folder left behind"


def test_failed_download_keeps_a_folder_that_was_already_there(served, start_mirror, tmp_path):
    mirror = start_mirror({})
    dest = tmp_path / "existing"
    dest.mkdir()
    with pytest.raises(download.DownloadError):
        download.download("mnist", dest, urls=[mirror.url])
    assert dest.is_dir() and not any(dest.iterdir())


@pytest.mark.parametrize("xdg", [None, "", "relative/cache"])
def test_without_a_usable_home_nothing_is_downloaded(served, start_mirror, monkeypatch, xdg):
    mirror = start_mirror(served)
    use_mirrors(monkeypatch, mirror)
    monkeypatch.setenv("HOME", "")  # would make ~/.cache the root's /.cache
    if xdg is None:
        monkeypatch.delenv("XDG_CACHE_HOME")
    else:
        monkeypatch.setenv("XDG_CACHE_HOME", xdg)
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    assert err.value.exit_code == 3
    assert mirror.requests == []
    message = str(err.value)
    assert "user cache: none: HOME is unset, empty, relative or /" in message
    assert "not tried: there is no user cache folder to download into" in message
    assert "copy the four files into" not in message
    assert "/.cache" not in message


def test_a_killed_download_s_old_temporary_file_is_removed_and_a_live_one_kept(served, start_mirror, cache, monkeypatch):
    import os
    import time

    from trickrun.atomic import ABANDONED_AFTER_S

    cache.mkdir(parents=True)
    dead, live = cache / ".train-labels-idx1-ubyte.gz.dead0000.tmp", cache / ".train-labels-idx1-ubyte.gz.live0000.tmp"
    for part in (dead, live):
        part.write_bytes(b"half a file")
    long_ago = time.time() - ABANDONED_AFTER_S - 60  # its process was killed an hour ago
    os.utime(dead, (long_ago, long_ago))
    use_mirrors(monkeypatch, start_mirror(served))
    load.load_dataset(DataConfig(**SMALL))
    assert not dead.exists() and live.exists()  # another process may still be writing that one


def test_a_mirror_that_is_no_url_is_a_failed_attempt_not_a_traceback(served, start_mirror, cache, monkeypatch):
    monkeypatch.setenv("TRICKRUN_MIRRORS", "127.0.0.1/mnist/")  # the scheme forgotten
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    assert err.value.exit_code == 3
    assert "127.0.0.1/mnist/train-images-idx3-ubyte.gz: ValueError: unknown url type" in str(err.value)
    mirror = start_mirror(served)
    monkeypatch.setenv("TRICKRUN_MIRRORS", f"127.0.0.1/mnist/,{mirror.url}")  # the next mirror is tried
    assert load.load_dataset(DataConfig(**SMALL)).source == str(cache)


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_while_downloading_leaves_no_partial_file(served, start_mirror, tmp_path, monkeypatch,
                                                                children, signum, code):
    mirror = start_mirror(served)
    mirror.behaviour["/mnist/train-images-idx3-ubyte.gz"] = "hang"
    use_mirrors(monkeypatch, mirror)
    config = tmp_path / "small.yaml"
    config.write_text("name: small\ndata:\n  val_size: 100\n")
    proc = start("train", str(config), "--quiet")
    children.append(proc)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "cache").rglob(".train-images-idx3-ubyte.gz.*.tmp")):  # downloading
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.01)
    dispositions = signal_state(proc.pid)  # what the child did with signals just before
    sent = time.monotonic()
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=60)
    assert not (tmp_path / "cache").exists(), "no partial file, and no folder the download made"
    # as the shell reports a process the signal killed
    assert proc.returncode == code, (err, f"exited {time.monotonic() - sent:.1f} s after the signal", dispositions)
    assert err.strip() == "interrupted"


def signal_state(pid: int) -> list[str]:
    """Each thread's signal masks in hex (Linux's /proc: blocked, ignored, caught), for a failure
    message: a stop signal that a child neither blocks nor ignores must end it."""
    lines = []
    for status in sorted(Path(f"/proc/{pid}/task").glob("*/status")):
        try:
            fields = dict(line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line)
        except OSError:  # the thread has ended
            continue
        lines.append(" ".join(f"{k}={fields.get(k, '?').strip()}" for k in ("Name", "SigBlk", "SigIgn", "SigCgt")))
    return lines


def test_a_bad_file_in_the_cache_says_to_delete_it_and_then_downloads_it(served, start_mirror, cache, monkeypatch):
    cache.mkdir(parents=True)
    for name in FILES:
        (cache / f"{name}.gz").write_bytes(served[name])
    bad = cache / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(served["train-labels-idx1-ubyte"][:-20])  # a copy cut short
    mirror = start_mirror(served)
    use_mirrors(monkeypatch, mirror)
    with pytest.raises(DataError) as err:
        load.load_dataset(DataConfig(**SMALL))
    assert err.value.exit_code == 3
    assert str(err.value).startswith(f"{bad}: corrupt gzip file")
    assert f"in trickrun's download cache: delete it, and the next run downloads it again (rm {bad})" in str(err.value)
    assert mirror.requests == []  # nothing is deleted or fetched unasked
    bad.unlink()
    assert load.load_dataset(DataConfig(**SMALL)).source == str(cache)
    assert mirror.requests == ["/mnist/train-labels-idx1-ubyte.gz"]


def test_a_bad_file_elsewhere_gets_no_cache_advice(fake_data):
    bad = fake_data / "mnist" / "train-labels-idx1-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:-20])
    with pytest.raises(DataError, match=f"^{bad}: corrupt gzip file") as err:
        load.load_dataset(DataConfig(**SMALL))
    assert "download cache" not in str(err.value)
