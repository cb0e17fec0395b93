"""Datasets: find the four IDX files, download them if need be, verify, parse, split, scale.

MNIST and Fashion-MNIST are each four IDX files, `train-images-idx3-ubyte`,
`train-labels-idx1-ubyte`, `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`, each
plain or gzipped (`<name>.gz`). A folder "holds the dataset" when all four are there; a
folder with only some of them is an error naming the missing ones. If both forms of a file
are present, the plain one is read.

Where `load_dataset` looks, in this order (the first folder holding the dataset wins):

1. `data.dir` from the config. When it is set, nothing else is searched and nothing is
   downloaded: it must hold the four files.
2. `$TRICKRUN_DATA_DIR/<dataset>/`, i.e. TRICKRUN_DATA_DIR names a folder containing
   `mnist/` and `fashion-mnist/` folders.
3. For fashion-mnist only, `/usr/share/datasets/fashion-mnist/` (Debian's
   dataset-fashion-mnist package).
4. The user cache `${XDG_CACHE_HOME:-~/.cache}/trickrun/<dataset>/`.
5. Otherwise the files missing from that cache folder are downloaded into it from the
   mirrors torchvision uses (`MIRRORS`), tried in order, as `<base URL><name>.gz`. Each file
   is streamed into a temporary file in the cache folder and renamed into place only once
   it verifies, so the cache never holds a partial or wrong file; a cache folder holding
   only some of the files (an interrupted download) is completed, not an error. A mirror
   that served one file is tried first for the next ones.

   The environment variable TRICKRUN_MIRRORS, a comma-separated list of base URLs,
   replaces the built-in mirror list when set (set but empty: never download). Tests point
   it at a local server.

Verification: every file is checked by the SHA-256 of its *decompressed* bytes against
`SHA256`, so a re-gzipped or gunzipped copy verifies too. Whether a file is gzipped is read
from its first bytes, not its name (browsers often gunzip a download and keep the `.gz`).
The IDX parser then checks the magic number, the 28x28 image size and the exact length,
and the loader that images and labels agree in number. Any failure is a DataError naming
the file and what is wrong; unverified data is never returned.

Array cache: decompressing and hashing 47 MB takes about a second, so the decoded uint8
array of each verified file is kept as `<name>.npy` in the user cache folder, beside a
stamp `<name>.stamp.json` recording the source file's resolved path, size and mtime_ns, the
verified SHA-256, and the size and mtime_ns of the .npy itself. The .npy is reused only
while all of these match; otherwise the source is verified again and the cache rewritten
(temporary file + os.replace). If the cache folder cannot be written, nothing is cached and
nothing fails. Data folders themselves are never written to.

Split and scaling are described on `split` and `scale`.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import struct
import urllib.error
import urllib.request
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from .atomic import replacing
from .config import DataConfig
from .errors import ConfigError, DataError
from .registry import Registry

TRAIN_IMAGES = "train-images-idx3-ubyte"
TRAIN_LABELS = "train-labels-idx1-ubyte"
TEST_IMAGES = "t10k-images-idx3-ubyte"
TEST_LABELS = "t10k-labels-idx1-ubyte"
FILES: tuple[str, ...] = (TRAIN_IMAGES, TRAIN_LABELS, TEST_IMAGES, TEST_LABELS)
KIND = {TRAIN_IMAGES: "images", TRAIN_LABELS: "labels", TEST_IMAGES: "images", TEST_LABELS: "labels"}

# SHA-256 of each file's decompressed bytes (see shared/data/*/SOURCE.md for provenance).
SHA256: dict[str, dict[str, str]] = {
    "mnist": {
        TRAIN_IMAGES: "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        TRAIN_LABELS: "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        TEST_IMAGES: "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        TEST_LABELS: "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    },
    "fashion-mnist": {
        TRAIN_IMAGES: "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        TRAIN_LABELS: "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        TEST_IMAGES: "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        TEST_LABELS: "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    },
}

# The public mirrors torchvision downloads from, tried in order.
MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}

# Folders that system packages install a dataset into, searched after $TRICKRUN_DATA_DIR.
SYSTEM_DIRS: dict[str, tuple[Path, ...]] = {
    "fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),),
}

DATA_DIR_ENV = "TRICKRUN_DATA_DIR"
MIRRORS_ENV = "TRICKRUN_MIRRORS"
DOWNLOAD_TIMEOUT = 30.0  # seconds allowed for connecting and for each read
_CHUNK = 1 << 16  # bytes per read while downloading
_CACHE_FORMAT = 1  # bump when the .npy/stamp layout changes

IMAGE_SIDE = 28
NUM_FEATURES = IMAGE_SIDE * IMAGE_SIDE
NUM_CLASSES = 10
_MAGIC = {"images": 2051, "labels": 2049}  # 0x0803, 0x0801: unsigned bytes, 3 or 1 dims
_NDIM = {"images": 3, "labels": 1}
_GZIP_MAGIC = b"\x1f\x8b"


@dataclass(frozen=True, eq=False)
class Dataset:
    """A verified, split and scaled dataset, ready to batch."""

    name: str  # "mnist" | "fashion-mnist"
    x_train: np.ndarray  # float32, C-contiguous, (n_train, 784), scaled per data.scale
    y_train: np.ndarray  # np.intp labels 0..9, (n_train,)
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # folder the verified files came from


# ---------------------------------------------------------------------------------------
# Reading and verifying one file.


def parse_idx(raw: bytes, kind: str, source: str = "<bytes>") -> np.ndarray:
    """Decode an uncompressed IDX file: `kind` "images" gives uint8 (n, 28, 28), "labels" (n,).

    Checks the big-endian magic number (2051 images, 2049 labels), the 28x28 image size,
    that the length is exactly header + data, and that labels are 0..9. The result is a
    read-only view of `raw`. Raises DataError naming `source`.
    """
    magic_expected, ndim = _MAGIC[kind], _NDIM[kind]
    header = 4 * (1 + ndim)
    if len(raw) < 4:
        raise DataError(f"{source}: truncated: {len(raw)} bytes, too short for an IDX header")
    magic = int.from_bytes(raw[:4], "big")
    if magic != magic_expected:
        raise DataError(
            f"{source}: wrong magic number {magic} (0x{magic:08x}); an IDX {kind} file starts "
            f"with {magic_expected} (0x{magic_expected:08x})"
        )
    if len(raw) < header:
        raise DataError(f"{source}: truncated: {len(raw)} bytes, shorter than the {header}-byte IDX header")
    dims = struct.unpack(f">{ndim}I", raw[4:header])
    if kind == "images" and dims[1:] != (IMAGE_SIDE, IMAGE_SIDE):
        raise DataError(
            f"{source}: bad dimensions {'x'.join(map(str, dims))}: images must be "
            f"{IMAGE_SIDE}x{IMAGE_SIDE}"
        )
    expected_len = header + int(np.prod(dims))
    if len(raw) < expected_len:
        raise DataError(
            f"{source}: truncated: {len(raw)} bytes, expected {expected_len} for "
            f"{'x'.join(map(str, dims))} {kind}"
        )
    if len(raw) > expected_len:
        raise DataError(
            f"{source}: wrong length: {len(raw)} bytes, expected {expected_len} for "
            f"{'x'.join(map(str, dims))} {kind} ({len(raw) - expected_len} bytes too many)"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    if kind == "labels" and array.size and int(array.max()) >= NUM_CLASSES:
        raise DataError(f"{source}: label {int(array.max())} out of range; labels must be 0..{NUM_CLASSES - 1}")
    return array


def read_decompressed(path: Path) -> bytes:
    """The bytes of `path`, gunzipped when they start with the gzip magic; DataError if unreadable."""
    try:
        data = path.read_bytes()
    except OSError as err:
        raise DataError(f"{path}: cannot be read: {err.strerror or err}") from None
    if data[:2] == _GZIP_MAGIC:
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError, zlib.error) as err:  # BadGzipFile is an OSError
            raise DataError(f"{path}: corrupt gzip file: {err}") from None
    return data


def verify(path: Path, sha256: str) -> bytes:
    """Return the decompressed bytes of `path` if their SHA-256 is `sha256`, else DataError."""
    data = read_decompressed(path)
    got = hashlib.sha256(data).hexdigest()
    if got != sha256.lower():
        note = ""
        if path.name.endswith(".gz") and not data[:2] == _GZIP_MAGIC and len(data) >= 2:
            note = " (the file is not gzip-compressed although its name ends in .gz)"
        raise DataError(
            f"{path}: checksum mismatch: expected sha256 {sha256}, got {got} "
            f"(of the decompressed bytes){note}"
        )
    return data


# ---------------------------------------------------------------------------------------
# Where the files are.


def cache_dir(dataset: str) -> Path:
    """`${XDG_CACHE_HOME:-~/.cache}/trickrun/<dataset>` (a relative XDG_CACHE_HOME is ignored, as XDG says)."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    root = Path(base) if base and os.path.isabs(base) else Path.home() / ".cache"
    return root / "trickrun" / dataset


def _present(folder: Path) -> dict[str, Path]:
    """The dataset files found in `folder`, plain preferred over .gz (no error if some are missing)."""
    found = {}
    for name in FILES:
        for candidate in (folder / name, folder / f"{name}.gz"):
            if candidate.is_file():
                found[name] = candidate
                break
    return found


def find_files(folder: Path) -> dict[str, Path] | None:
    """The four files in `folder` by name; None if it holds none; DataError if only some."""
    found = _present(folder)
    if not found:
        return None
    missing = [name for name in FILES if name not in found]
    if missing:
        raise DataError(
            f"{folder} holds only some of the dataset files; missing: {', '.join(missing)} "
            "(each may be plain or .gz)"
        )
    return found


def search_dirs(dataset: str) -> list[Path]:
    """The folders searched when data.dir is not set, in order (the cache folder last)."""
    dirs = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser() / dataset)
    dirs.extend(SYSTEM_DIRS.get(dataset, ()))
    dirs.append(cache_dir(dataset))
    return dirs


def locate(cfg: DataConfig) -> tuple[Path, dict[str, Path]] | None:
    """The first folder holding all four files, with their paths; None: download them.

    An explicit `cfg.dir` must hold them. A searched folder holding only some is an error,
    except the cache folder, whose missing files `load_dataset` downloads.
    """
    if cfg.dir is not None:
        folder = Path(cfg.dir).expanduser()
        if not folder.is_dir():
            raise DataError(f"data.dir: {folder} is not a folder")
        try:
            files = find_files(folder)
        except DataError as err:
            raise DataError(f"data.dir: {err}") from None
        if files is None:
            hint = ""
            if (folder / cfg.dataset).is_dir():
                hint = (
                    f"; it has a {cfg.dataset}/ folder: set data.dir to {folder / cfg.dataset}, "
                    f"or {DATA_DIR_ENV}={folder}"
                )
            raise DataError(f"data.dir: {folder} holds none of the files {', '.join(FILES)}{hint}")
        return folder, files
    cache = cache_dir(cfg.dataset)
    for folder in search_dirs(cfg.dataset):
        if folder == cache:
            found = _present(folder)
            return (folder, found) if len(found) == len(FILES) else None
        files = find_files(folder)
        if files is not None:
            return folder, files
    return None


def _describe(folder: Path) -> str:
    if not folder.is_dir():
        return "no such folder"
    found = _present(folder)
    if not found:
        return "none of the files"
    missing = [name for name in FILES if name not in found]
    return f"missing {', '.join(missing)}" if missing else "all four files"


# ---------------------------------------------------------------------------------------
# Downloading.


class DownloadError(DataError):
    """No mirror served a verified copy of a file; `attempts` lists "URL: error" lines."""

    def __init__(self, message: str, attempts: Sequence[str]):
        super().__init__(message)
        self.attempts = list(attempts)


def mirrors(dataset: str) -> list[str]:
    """Base URLs to download from: $TRICKRUN_MIRRORS when set, else the built-in `MIRRORS`."""
    env = os.environ.get(MIRRORS_ENV)
    if env is None:
        return list(MIRRORS[dataset])
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


def _fetch(url: str, target: Path, sha256: str, bar) -> Path:
    """Download `url` into a temporary file beside `target`, verify it, rename it to `target`."""
    with replacing(target) as (out, tmp):
        request = urllib.request.Request(url, headers={"User-Agent": "trickrun"})
        try:
            with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                task = bar.add_task(target.name, total=total)
                received = 0
                try:
                    while chunk := response.read(_CHUNK):
                        out.write(chunk)
                        received += len(chunk)
                        bar.update(task, completed=received)
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
        verify(tmp, sha256)  # a wrong file raises here, and `replacing` deletes it
    return target


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
    its checksum matches; on failure no file or temporary file is left behind. Stops at
    the first file no mirror could serve, raising DownloadError with every URL tried.
    """
    order = list(mirrors(dataset) if urls is None else urls)
    if not order:
        raise DownloadError(f"no mirrors to download from ({MIRRORS_ENV} is set but empty)", [])
    try:
        dest.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise DownloadError(f"cannot create the cache folder {dest}: {err.strerror or err}", []) from None
    attempts: list[str] = []
    paths: dict[str, Path] = {}
    with _progress_bar(progress) as bar:
        for name in names:
            for base in list(order):
                url = f"{base.rstrip('/')}/{name}.gz"
                try:
                    paths[name] = _fetch(url, dest / f"{name}.gz", SHA256[dataset][name], bar)
                except DataError as err:
                    attempts.append(f"{url}: {err}")
                except OSError as err:  # the temporary file could not be created or written
                    attempts.append(f"{url}: cannot write into {dest}: {err.strerror or err}")
                else:
                    order.remove(base)
                    order.insert(0, base)
                    break
            else:
                lines = "\n".join(f"  - {line}" for line in attempts)
                raise DownloadError(f"could not download {name}.gz from any mirror:\n{lines}", attempts)
    return paths


# ---------------------------------------------------------------------------------------
# The .npy cache of verified arrays.


def _stat_record(path: Path) -> dict:
    st = path.stat()
    return {"path": str(path.resolve()), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _read_cached(npy: Path, stamp: Path, source: dict) -> np.ndarray | None:
    try:
        record = json.loads(stamp.read_text(encoding="utf-8"))
        st = npy.stat()
        if (
            record.get("format") != _CACHE_FORMAT
            or record.get("source") != source
            or record.get("npy") != {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
        ):
            return None
        array = np.load(npy, allow_pickle=False)
    except (OSError, ValueError, TypeError, AttributeError):
        return None
    if array.dtype != np.uint8 or list(array.shape) != record.get("shape"):
        return None
    return array


def _write_cached(npy: Path, stamp: Path, source: dict, array: np.ndarray) -> None:
    """Store `array` and its stamp; an unwritable cache is silently skipped."""
    try:
        npy.parent.mkdir(parents=True, exist_ok=True)
        with replacing(npy) as (f, _):
            np.save(f, array, allow_pickle=False)
        st = npy.stat()
        record = {
            "format": _CACHE_FORMAT,
            "source": source,
            "shape": list(array.shape),
            "npy": {"size": st.st_size, "mtime_ns": st.st_mtime_ns},
        }
        with replacing(stamp) as (f, _):
            f.write(json.dumps(record, indent=1).encode("utf-8"))
    except OSError:
        pass


def load_verified(path: Path, dataset: str, name: str) -> np.ndarray:
    """The parsed uint8 array of one dataset file, from the .npy cache when its stamp matches."""
    sha256 = SHA256[dataset][name]
    try:
        source = {**_stat_record(path), "sha256": sha256}
    except OSError as err:
        raise DataError(f"{path}: cannot be read: {err.strerror or err}") from None
    cache = cache_dir(dataset)
    npy, stamp = cache / f"{name}.npy", cache / f"{name}.stamp.json"
    array = _read_cached(npy, stamp, source)
    if array is None:
        array = parse_idx(verify(path, sha256), KIND[name], str(path))
        _write_cached(npy, stamp, source, array)
    return array


# ---------------------------------------------------------------------------------------
# Split and scaling.


def split(
    x: np.ndarray,
    y: np.ndarray,
    val_size: int,
    seed: int,
    train_limit: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Hold out `val_size` examples; return (x_train, y_train, x_val, y_val).

    The order is `np.random.default_rng(seed).permutation(len(x))`: its first `val_size`
    indices are the validation set, the rest the training set, both in permuted order. The
    seed is data.split_seed, independent of the run seed, so runs with different seeds
    share one split. `train_limit` keeps the first `train_limit` training examples (so
    smaller limits give nested subsets); a limit larger than the training set keeps all of
    it. Raises ConfigError if `val_size` leaves no training example.
    """
    n = len(x)
    if len(y) != n:
        raise ValueError(f"x has {n} rows but y has {len(y)}")
    if val_size < 1 or val_size >= n:
        raise ConfigError(
            f"data.val_size: {val_size} out of {n} training examples; it must be between 1 "
            f"and {n - 1} so that both parts are non-empty"
        )
    if train_limit is not None and train_limit < 1:
        raise ConfigError(f"data.train_limit: must be at least 1, got {train_limit}")
    order = np.random.default_rng(seed).permutation(n)
    val_idx, train_idx = order[:val_size], order[val_size:]
    if train_limit is not None:
        train_idx = train_idx[:train_limit]
    return x[train_idx], y[train_idx], x[val_idx], y[val_idx]


def _as_float32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32, order="C")  # always a new array, so scaling in place is safe


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    """Population mean and std of integer pixels, exact, without a float64 copy of `x`."""
    flat = x.reshape(-1)
    total = total_sq = 0
    step = 1 << 20
    for start in range(0, flat.size, step):
        chunk = flat[start : start + step].astype(np.float64)  # integers: sums stay exact below 2**53
        total += int(chunk.sum())
        total_sq += int(np.dot(chunk, chunk))
    n = flat.size
    mean = total / n
    var = (total_sq * n - total * total) / (n * n)  # exact integer arithmetic before dividing
    return mean, var**0.5


SCALES: Registry[Callable[..., list[np.ndarray]]] = Registry("data.scale")


@SCALES.register("unit")
def _unit(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """x / 255, in [0, 1]."""
    out = [_as_float32(x) for x in (train, *others)]
    for x in out:
        x /= np.float32(255)
    return out


@SCALES.register("symmetric")
def _symmetric(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """x / 127.5 - 1, in [-1, 1]."""
    out = [_as_float32(x) for x in (train, *others)]
    for x in out:
        x /= np.float32(127.5)
        x -= np.float32(1)
    return out


@SCALES.register("standard")
def _standard(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """(x - mean) / std with one global mean and population std of the training pixels.

    The statistics come from `train` only (after train_limit) and are applied to every
    array, so validation and test see the same transform. A constant training set
    (std 0) is only centred.
    """
    mean, std = _mean_std(train)
    std = std or 1.0
    out = [_as_float32(x) for x in (train, *others)]
    for x in out:
        x -= np.float32(mean)
        x /= np.float32(std)
    return out


@SCALES.register("none")
def _none(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Raw 0..255 as float32."""
    return [_as_float32(x) for x in (train, *others)]


def scale(method: str, train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale `train` and each of `others` by data.scale `method`, to new float32 C-contiguous arrays.

    unit: x/255 in [0, 1]; symmetric: x/127.5 - 1 in [-1, 1]; standard: z-score with one
    global mean and std of `train`; none: raw 0..255. Statistics never come from `others`.
    """
    return SCALES.get(method)(train, *others)


# ---------------------------------------------------------------------------------------
# The entry point.


def _places(cfg: DataConfig) -> list[str]:
    """One line per place searched, with what was found there (for the not-found message)."""
    cache = cache_dir(cfg.dataset)
    looked = ["data.dir: not set"]
    if not os.environ.get(DATA_DIR_ENV):
        looked.append(f"${DATA_DIR_ENV}/{cfg.dataset}: {DATA_DIR_ENV} not set")
    for folder in search_dirs(cfg.dataset):
        label = " (user cache)" if folder == cache else ""
        looked.append(f"{folder}{label}: {_describe(folder)}")
    return looked


def _not_found(cfg: DataConfig, looked: Sequence[str], err: DownloadError) -> DataError:
    tried = err.attempts or [str(err)]
    return DataError(
        f"{cfg.dataset}: the files {', '.join(FILES)} (plain or .gz) were not found and "
        "could not be downloaded.\n"
        "Looked in:\n" + "".join(f"  - {line}\n" for line in looked) +
        "Download:\n" + "".join(f"  - {line}\n" for line in tried) +
        "To supply the files, do one of:\n"
        f"  - set data.dir to a folder holding the four files (e.g. --set data.dir=/path/to/{cfg.dataset})\n"
        f"  - set {DATA_DIR_ENV}=/path to a folder containing mnist/ and fashion-mnist/ folders\n"
        f"  - copy the four files into {cache_dir(cfg.dataset)}"
    )


def _find_or_download(cfg: DataConfig, progress: bool) -> tuple[Path, dict[str, Path]]:
    found = locate(cfg)
    if found is not None:
        return found
    cache = cache_dir(cfg.dataset)
    present = _present(cache)
    missing = [name for name in FILES if name not in present]
    looked = _places(cfg)  # before downloading creates the cache folder
    try:
        fetched = download(cfg.dataset, cache, missing, progress=progress)
    except DownloadError as err:
        raise _not_found(cfg, looked, err) from None
    files = {**present, **fetched}
    return cache, {name: files[name] for name in FILES}


def load_dataset(cfg: DataConfig, *, progress: bool = False) -> Dataset:
    """Find (or download), verify, split and scale the dataset named by `cfg.dataset`.

    `progress` shows a download progress bar on stderr. Raises DataError (exit code 3)
    for missing, corrupt or undownloadable files, ConfigError (exit code 2) for a bad
    data.dataset, data.val_size or data.scale.
    """
    if cfg.dataset not in SHA256:
        raise ConfigError(f"data.dataset: unknown dataset {cfg.dataset!r}; choose one of: {', '.join(SHA256)}")
    scale_fn = SCALES.get(cfg.scale)  # fail on a bad name before any slow work
    folder, files = _find_or_download(cfg, progress)
    arrays = {name: load_verified(path, cfg.dataset, name) for name, path in files.items()}
    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        if len(arrays[images]) != len(arrays[labels]):
            raise DataError(
                f"{folder}: {files[images].name} holds {len(arrays[images])} images but "
                f"{files[labels].name} holds {len(arrays[labels])} labels"
            )
    x_all = arrays[TRAIN_IMAGES].reshape(-1, NUM_FEATURES)
    x_test_raw = arrays[TEST_IMAGES].reshape(-1, NUM_FEATURES)
    x_tr, y_tr, x_val, y_val = split(x_all, arrays[TRAIN_LABELS], cfg.val_size, cfg.split_seed, cfg.train_limit)
    x_tr, x_val, x_test = scale_fn(x_tr, x_val, x_test_raw)
    return Dataset(
        name=cfg.dataset,
        x_train=x_tr,
        y_train=y_tr.astype(np.intp),
        x_val=x_val,
        y_val=y_val.astype(np.intp),
        x_test=x_test,
        y_test=arrays[TEST_LABELS].astype(np.intp),
        source=str(folder.resolve()),
    )
