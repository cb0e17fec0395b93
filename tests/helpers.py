"""Test helpers: small synthetic IDX datasets, and where the real data is (if anywhere)."""

from __future__ import annotations

import gzip
import hashlib
import os
import socket
import struct
from pathlib import Path

import numpy as np
import pytest
from trickrun.train import NullReporter

FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)

# Read once at import, before any test's monkeypatch can change it.
_ENV_DATA_DIR = os.environ.get("TRICKRUN_DATA_DIR")


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of a uint8 array: (n, 28, 28) images or (n,) labels."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    magic = 2051 if array.ndim == 3 else 2049
    return struct.pack(f">{1 + array.ndim}I", magic, *array.shape) + array.tobytes()


def fake_arrays(n_train: int = 600, n_test: int = 200, seed: int = 0) -> dict[str, np.ndarray]:
    """Learnable synthetic data: each class is its own random template plus noise.

    Every image has pixels 0 and 255 somewhere, so value ranges are exact, and no two
    images are equal, so a row identifies its example.
    """
    rng = np.random.default_rng(seed)
    templates = rng.uniform(0, 255, size=(10, 28, 28))

    def make(n: int) -> tuple[np.ndarray, np.ndarray]:
        labels = rng.integers(0, 10, size=n).astype(np.uint8)
        noise = rng.normal(0, 40, size=(n, 28, 28))
        images = np.clip(templates[labels] + noise, 0, 255).round().astype(np.uint8)
        images[:, 0, 0], images[:, 0, 1] = 0, 255
        return images, labels

    train_x, train_y = make(n_train)
    test_x, test_y = make(n_test)
    return dict(zip(FILES, (train_x, train_y, test_x, test_y)))


def write_idx(folder: Path, name: str, raw: bytes, gz: bool = True) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (f"{name}.gz" if gz else name)
    path.write_bytes(gzip.compress(raw, mtime=0) if gz else raw)
    return path


def write_fake_dataset(
    folder, n_train: int = 600, n_test: int = 200, seed: int = 0, gz: bool = True
) -> dict[str, str]:
    """Write the four valid IDX files into `folder`; return their decompressed sha256 by name."""
    folder = Path(folder)
    sums = {}
    for name, array in fake_arrays(n_train, n_test, seed).items():
        raw = idx_bytes(array)
        write_idx(folder, name, raw, gz)
        sums[name] = hashlib.sha256(raw).hexdigest()
    return sums


def read_fake(folder: Path, name: str) -> np.ndarray:
    """Decode one file written by write_fake_dataset, independently of trickrun.data."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.exists():
            raw = path.read_bytes()
            raw = gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw
            ndim = 3 if "images" in name else 1
            dims = struct.unpack(f">{ndim}I", raw[4 : 4 + 4 * ndim])
            return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)
    raise FileNotFoundError(folder / name)


def closed_port_url() -> str:
    """An http:// URL on 127.0.0.1 where nothing listens: connecting fails at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def real_data_dir() -> Path | None:
    """$TRICKRUN_DATA_DIR (as set when the tests started) if its mnist/ folder holds the four files."""
    if not _ENV_DATA_DIR:
        return None
    root = Path(_ENV_DATA_DIR).expanduser()
    ok = all((root / "mnist" / n).is_file() or (root / "mnist" / f"{n}.gz").is_file() for n in FILES)
    return root if ok else None


requires_real_mnist = pytest.mark.skipif(
    real_data_dir() is None, reason="TRICKRUN_DATA_DIR does not hold mnist/ with the four IDX files"
)


class InterruptAt(NullReporter):
    """A progress reporter that raises KeyboardInterrupt, as Ctrl-C would, at one batch."""

    def __init__(self, epoch: int, batch: int):
        self.at = (epoch, batch)

    def batch(self, epoch, index, loss, correct, size):
        if (epoch, index) == self.at:
            raise KeyboardInterrupt
