"""Downloading the dataset files into the user cache folder, verified, from public mirrors.

The files missing from the cache folder are downloaded from the mirrors torchvision uses
(`DatasetInfo.mirrors`), tried in order, as `<base URL><name>.gz`. Each file is streamed
into a temporary file in the cache folder and renamed into place only once it verifies,
so the cache never holds a partial or wrong file; a cache folder holding only some of the
files (an interrupted download) is completed, not an error. A mirror that served one file
is tried first for the next ones. A failed download removes the folders it created, if
nothing was stored in them.

The environment variable TRICKRUN_MIRRORS, a comma-separated list of base URLs, replaces
the built-in mirror list when set (set but empty: never download). Tests point it at a
local server.
"""

from __future__ import annotations

import fcntl
import os
import sys
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from http.client import HTTPException
from pathlib import Path
from typing import Iterator, Sequence

from ..atomic import remove_abandoned, replacing
from ..errors import DataError
from .catalog import DATASETS, FILES, SIZE
from .idx import verify

MIRRORS_ENV = "TRICKRUN_MIRRORS"
DOWNLOAD_TIMEOUT = 30.0  # seconds allowed for connecting and for each read
# A server that trickles bytes (one every few seconds, each read within the timeout) would
# hold a download forever: one that sends less than LOW_SPEED bytes a second over a window of
# LOW_SPEED_WINDOW seconds is given up on, as curl's --speed-limit/--speed-time do.
LOW_SPEED = 1000
LOW_SPEED_WINDOW = 60.0
_CHUNK = 1 << 16  # bytes per read while downloading


class DownloadError(DataError):
    """No mirror served a verified copy of a file; `attempts` lists "URL: error" lines."""

    def __init__(self, message: str, attempts: Sequence[str]):
        super().__init__(message)
        self.attempts = list(attempts)


def mirrors(dataset: str) -> list[str]:
    """Base URLs to download from: $TRICKRUN_MIRRORS when set, else the dataset's own."""
    env = os.environ.get(MIRRORS_ENV)
    if env is None:
        return list(DATASETS[dataset].mirrors)
    return [url.strip() for url in env.split(",") if url.strip()]


class _Silent:
    """Stands in for a rich Progress when no bar is wanted."""

    def add_task(self, *args, **kwargs) -> int:
        return 0

    def update(self, *args, **kwargs) -> None:
        pass

    def remove_task(self, *args, **kwargs) -> None:
        pass


@contextmanager
def _progress_bar(enabled: bool) -> Iterator:
    if not enabled:
        yield _Silent()
        return
    # Imported here: rich costs start-up time that a cached load does not need.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
        TransferSpeedColumn,
    )

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=Console(stderr=True)) as bar:
        yield bar


class _Pace:
    """Gives up on a download that has sent less than LOW_SPEED bytes a second over the last
    LOW_SPEED_WINDOW seconds (windows one after the other, from the first byte's read)."""

    def __init__(self) -> None:
        self.start, self.received = time.monotonic(), 0

    def check(self, received: int) -> None:
        elapsed = time.monotonic() - self.start
        if elapsed < LOW_SPEED_WINDOW:
            return
        sent = received - self.received
        if sent < LOW_SPEED * elapsed:
            raise DataError(f"the server is too slow: {sent:,} bytes in {elapsed:.0f} s, less than "
                            f"{LOW_SPEED:,} bytes a second (try again later)")
        self.start, self.received = time.monotonic(), received


def _fetch(url: str, target: Path, sha256: str, size: int, bar) -> Path:
    """Download `url` into a temporary file beside `target`, verify it, rename it to `target`."""
    # No genuine copy is larger (gzip adds a little to bytes it cannot compress, and a plain
    # copy is `size`): a server sending more is stopped before it fills the disk.
    limit = size + size // 100 + 4096
    too_big = f"the server sends more than {limit:,} bytes, more than any genuine copy of {target.name}"
    with replacing(target) as (out, tmp):
        try:
            # Inside the try: a mirror that is no URL ("example.com/mnist", a typo in
            # TRICKRUN_MIRRORS) is an attempt that failed, not a traceback.
            request = urllib.request.Request(url, headers={"User-Agent": "trickrun"})
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                if total is not None and total > limit:
                    raise DataError(too_big)
                task = bar.add_task(target.name, total=total)
                received = 0
                pace = _Pace()
                try:
                    # read1: what has arrived, so that a trickle is seen between reads (read
                    # waits for the whole chunk, byte after byte within the timeout)
                    while chunk := response.read1(_CHUNK):
                        received += len(chunk)
                        if received > limit:
                            raise DataError(too_big)
                        out.write(chunk)
                        bar.update(task, completed=received)
                        pace.check(received)
                    if total is not None and received != total:
                        raise DataError(f"connection closed after {received} of {total} bytes")
                except BaseException:
                    bar.remove_task(task)  # a failed attempt leaves no half-full bar
                    raise
        except urllib.error.HTTPError as err:
            raise DataError(f"HTTP {err.code} {err.reason}") from None
        except urllib.error.URLError as err:
            raise DataError(str(err.reason)) from None
        except (OSError, HTTPException, ValueError) as err:
            raise DataError(f"{type(err).__name__}: {err}") from None
        out.flush()
        try:
            verify(tmp, sha256, size, target.name)  # a wrong file raises here, and `replacing` deletes it
        except DataError as err:  # said of what the URL sent, not of the temporary file, gone by then
            raise DataError(str(err).removeprefix(f"{tmp}: ")) from None
    return target


def _make_folder(dest: Path) -> list[Path]:
    """Create `dest` with its parents; return the folders that did not exist, deepest first."""
    missing = []
    for folder in (dest, *dest.parents):
        if folder.exists():
            break
        missing.append(folder)
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        _remove_empty(missing)
        raise DownloadError(f"cannot create the cache folder {dest}: {err.strerror or err}", []) from None
    return missing


def _remove_empty(folders: Sequence[Path]) -> None:
    for folder in folders:
        try:
            folder.rmdir()  # fails, as it should, on a folder that holds a downloaded file
        except OSError:
            pass


def download(
    dataset: str,
    dest: Path,
    names: Sequence[str] = FILES,
    *,
    urls: Sequence[str] | None = None,
    progress: bool = False,
) -> dict[str, Path]:
    """Download each of `names` as `dest/<name>.gz`, verified, from the first mirror that serves it.

    `urls` are the base URLs (default: `mirrors(dataset)`). A file is written only after
    its checksum matches; on failure no file, temporary file or newly created empty folder
    is left behind. Stops at the first file no mirror could serve, raising DownloadError
    with every URL tried.
    """
    order = list(mirrors(dataset) if urls is None else urls)
    if not order:
        raise DownloadError(f"no mirrors to download from ({MIRRORS_ENV} is set but empty)", [])
    created = _make_folder(dest)
    try:
        with _one_download_at_a_time(dest, progress):
            done = {name: dest / f"{name}.gz" for name in names if (dest / f"{name}.gz").exists()}
            with _progress_bar(progress) as bar:
                attempts: list[str] = []  # every failed URL so far, all listed if one file fails
                return {name: done.get(name) or _download_one(dataset, name, dest, order, attempts, bar)
                        for name in names}
    except BaseException:
        _remove_empty(created)
        raise


@contextmanager
def _one_download_at_a_time(dest: Path, say_so: bool) -> Iterator[None]:
    """An exclusive flock on the cache folder itself while downloading into it. Processes
    starting together on an empty cache (a sweep's workers) would each download every file;
    the later ones wait, then find the files the first one stored (a file appears only once
    verified). Where the folder cannot be opened, no lock: each downloads, as before."""
    try:
        fd = os.open(dest, os.O_RDONLY)
    except OSError:
        yield
        return
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if say_so:
                print(f"note: waiting for another process downloading into {dest}", file=sys.stderr, flush=True)
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _download_one(dataset: str, name: str, dest: Path, order: list[str], attempts: list[str], bar) -> Path:
    """Fetch `name` from the first of `order` that serves it, and move that mirror to the front."""
    remove_abandoned(dest / f"{name}.gz")  # what downloads killed outright left
    for base in list(order):
        url = f"{base.rstrip('/')}/{name}.gz"
        try:
            path = _fetch(url, dest / f"{name}.gz", DATASETS[dataset].sha256[name], SIZE[name], bar)
        except DataError as err:
            attempts.append(f"{url}: {err}")
        except OSError as err:  # the temporary file could not be created or written
            attempts.append(f"{url}: cannot write into {dest}: {err.strerror or err}")
        else:
            order.remove(base)
            order.insert(0, base)
            return path
    lines = "\n".join(f"  - {line}" for line in attempts)
    raise DownloadError(f"could not download {name}.gz from any mirror:\n{lines}", attempts)
