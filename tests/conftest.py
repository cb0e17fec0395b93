"""Shared fixtures. Every test gets a private cache and runs folder, and cannot download.

- XDG_CACHE_HOME -> tmp_path/"cache", so nothing is written to the real ~/.cache.
- TRICKRUN_RUNS_DIR -> tmp_path/"runs".
- TRICKRUN_MIRRORS -> a closed port on 127.0.0.1, so a test that finds no data fails at
  once instead of downloading from the internet (download tests set their own server).
- SIGINT raises KeyboardInterrupt, as the command line makes it, also under `pytest &`.
- TRICKRUN_DATA_DIR is left as it is: tests of real data use `real_data_dir()`,
  the `real_mnist` fixture or the `requires_real_mnist` marker (all in helpers.py or here)
  and skip without it.
"""

from __future__ import annotations

import dataclasses
import signal
from pathlib import Path
from typing import Callable, Iterator

import pytest

from helpers import closed_port_url, real_data_dir, requires_real_mnist, write_fake_dataset

__all__ = ["real_data_dir", "requires_real_mnist"]  # importable from helpers too


@pytest.fixture(autouse=True)
def _isolated_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setenv("TRICKRUN_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("TRICKRUN_MIRRORS", closed_port_url())


@pytest.fixture(autouse=True)
def _ctrl_c_as_in_the_foreground() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in every test, as the command line makes it (entry.py),
    also under `pytest &`, which inherits it ignored: trickrun keeps an ignored stop signal
    ignored, and a test's own Ctrl-C would never come."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


@pytest.fixture
def expect_sums(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`expect_sums(sums, dataset="mnist", **fields)`: until the test ends, the catalog expects
    the checksums `sums` (file name -> sha256) for `dataset`, and any other DatasetInfo
    `fields` given (e.g. system_dirs)."""
    from trickrun.data import catalog

    def expect(sums: dict[str, str], dataset: str = "mnist", **fields) -> None:
        info = dataclasses.replace(catalog.DATASETS[dataset], sha256=sums, **fields)
        monkeypatch.setitem(catalog.DATASETS, dataset, info)

    return expect


@pytest.fixture
def fake_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, expect_sums) -> Path:
    """A small fake mnist (600 train, 200 test) as TRICKRUN_DATA_DIR; returns the data root.

    The files are in <root>/mnist and the catalog expects their checksums for mnist
    (see `expect_sums`). Load it with e.g. DataConfig(val_size=100).
    """
    root = tmp_path / "data"
    sums = write_fake_dataset(root / "mnist")
    expect_sums(sums)
    monkeypatch.setenv("TRICKRUN_DATA_DIR", str(root))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return root


@pytest.fixture
def real_mnist() -> Path:
    """The real data root (holding mnist/), or skip the test."""
    root = real_data_dir()
    if root is None:
        pytest.skip("TRICKRUN_DATA_DIR does not hold mnist/ with the four IDX files")
    return root
