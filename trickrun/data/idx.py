"""One dataset file: read it (gunzipping if need be, never past its size), verify, parse, cache.

Whether a file is gzipped is read from its first bytes, not its name (browsers often
gunzip a download and keep the `.gz`). Every file is checked by the SHA-256 of its
*decompressed* bytes, so a re-gzipped or gunzipped copy verifies too. Decompression stops
one byte past the largest size a genuine file has, so a gzip bomb costs no more memory
than the real file. The IDX parser then checks the magic number, the 28x28 image size
and the exact length.

Array cache: decompressing and hashing 47 MB takes about a second, so the decoded uint8
array of each verified file is kept as `<name>.npy` in the user cache folder, beside a
stamp `<name>.stamp.json` recording the source file's resolved path, size and mtime_ns, the
verified SHA-256, and the size and mtime_ns of the .npy itself. The .npy is reused only
while all of these match; otherwise the source is verified again and the cache rewritten
(temporary file + os.replace). If the cache folder cannot be written, or there is none,
nothing is cached and nothing fails. Data folders themselves are never written to.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import struct
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from ..atomic import replacing
from ..errors import DataError
from .catalog import DATASETS, IMAGE_SIDE, KIND, NUM_CLASSES, SIZE

_MAGIC = {"images": 2051, "labels": 2049}  # 0x0803, 0x0801: unsigned bytes, 3 or 1 dims
_NDIM = {"images": 3, "labels": 1}
_GZIP_MAGIC = b"\x1f\x8b"
_CACHE_FORMAT = 1  # bump when the .npy/stamp layout changes


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


def _gunzip(f: BinaryIO, limit: int, path: Path) -> bytes:
    # GzipFile.read(n) inflates at most n bytes; it checks the CRC only on reaching the end,
    # which it does whenever the content is no longer than n.
    try:
        return gzip.GzipFile(fileobj=f).read(limit)
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        raise DataError(f"{path}: corrupt gzip file: {err}") from None


def read_decompressed(path: Path, size: int) -> bytes:
    """The bytes of `path`, gunzipped when they start with the gzip magic.

    `size` is the most a genuine file holds: reading stops one byte past it, and a longer
    content is a DataError, as is an unreadable file or a corrupt gzip stream.
    """
    try:
        with path.open("rb") as f:
            gzipped = f.read(2) == _GZIP_MAGIC
            f.seek(0)
            data = _gunzip(f, size + 1, path) if gzipped else f.read(size + 1)
    except OSError as err:
        raise DataError(f"{path}: cannot be read: {err.strerror or err}") from None
    if len(data) > size:
        what = "decompresses to" if gzipped else "holds"
        raise DataError(f"{path}: too large: {what} more than {size} bytes, the size of the genuine file")
    return data


def _starts_gzipped(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(2) == _GZIP_MAGIC
    except OSError:
        return False


def verify(path: Path, sha256: str, size: int, name: str | None = None) -> bytes:
    """Return the decompressed bytes of `path` if their SHA-256 is `sha256`, else DataError.

    `size` bounds the decompressed length (see `read_decompressed`). `name`: the file's name
    when `path` is a temporary file standing for it (a download, renamed once it verifies).
    """
    data = read_decompressed(path, size)
    got = hashlib.sha256(data).hexdigest()
    if got != sha256.lower():
        note = ""
        if (name or path.name).endswith(".gz") and not _starts_gzipped(path):  # the file, not `data`, gunzipped
            note = " (the file is not gzip-compressed although its name ends in .gz)"
        known = [(dataset, file_name) for dataset, info in DATASETS.items()
                 for file_name, digest in info.sha256.items() if digest == got]
        if known:  # folders mixed up: another dataset's file, or another of the four
            dataset, file_name = known[0]
            note += (f"; these are the bytes of {dataset}'s {file_name}: a folder or file mixed up, "
                     "or data.dataset not the one meant")
        raise DataError(
            f"{path}: checksum mismatch: expected sha256 {sha256}, got {got} "
            f"(of the decompressed bytes){note}"
        )
    return data


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


def load_verified(path: Path, name: str, sha256: str, cache: Path | None) -> np.ndarray:
    """The parsed uint8 array of dataset file `name` at `path`, verified against `sha256`.

    Taken from the .npy cache in folder `cache` when its stamp matches, and stored there
    otherwise; `cache` None means no cache.
    """
    if cache is None:
        return parse_idx(verify(path, sha256, SIZE[name]), KIND[name], str(path))
    try:
        source = {**_stat_record(path), "sha256": sha256}
    except OSError as err:
        raise DataError(f"{path}: cannot be read: {err.strerror or err}") from None
    npy, stamp = cache / f"{name}.npy", cache / f"{name}.stamp.json"
    array = _read_cached(npy, stamp, source)
    if array is None:
        array = parse_idx(verify(path, sha256, SIZE[name]), KIND[name], str(path))
        _write_cached(npy, stamp, source, array)
    return array
