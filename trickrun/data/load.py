"""The entry point: find (or download) the dataset, verify it, split it, scale it.

Any failure is a DataError naming the file and what is wrong; unverified data is never
returned. Where the files are looked for is described in `lookup`, downloading in
`download`, verification and the array cache in `idx`, the scalings in `scaling`.
"""

from __future__ import annotations

import os
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError, DataError
from .catalog import DATASETS, FILES, NUM_FEATURES, TEST_IMAGES, TEST_LABELS, TRAIN_IMAGES, TRAIN_LABELS
from .download import DownloadError, download
from .idx import load_verified
from .lookup import DATA_DIR_ENV, NO_CACHE, cache_dir, describe, locate, present, search_dirs
from .images import ScaledImages
from .scaling import SCALES


@dataclass(frozen=True, eq=False)
class Dataset:
    """A verified, split and scaled dataset, ready to batch."""

    name: str  # "mnist" | "fashion-mnist"
    x_train: ScaledImages  # (n_train, 784) uint8 pixels, read as float32 scaled per data.scale
    y_train: np.ndarray  # np.intp labels 0..9, (n_train,)
    x_val: np.ndarray  # float32, C-contiguous, (n_val, 784), scaled the same way
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str  # folder the verified files came from


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


def _places(cfg: DataConfig) -> list[str]:
    """One line per place searched, with what was found there (for the not-found message)."""
    cache = cache_dir(cfg.dataset)
    looked = ["data.dir: not set"]
    if not os.environ.get(DATA_DIR_ENV):
        looked.append(f"${DATA_DIR_ENV}/{cfg.dataset}: {DATA_DIR_ENV} not set")
    env = os.environ.get(DATA_DIR_ENV)
    for folder in search_dirs(cfg.dataset):
        label = " (user cache)" if folder == cache else ""
        hint = ""
        if env and folder == Path(env).expanduser() / cfg.dataset and not folder.is_dir() and present(folder.parent):
            # set to the dataset's own folder, not to the one holding it; the folder above holds
            # it as <dataset>/ only when the folder has the dataset's name
            instead = (f"set it to the folder above, {folder.parent.parent}, or data.dir to {folder.parent}"
                       if folder.parent.name == cfg.dataset else
                       f"move them into {folder}, or set data.dir to {folder.parent}")
            hint = f"; {DATA_DIR_ENV} itself holds dataset files: {instead}"
        looked.append(f"{folder}{label}: {describe(folder)}{hint}")
    if cache is None:
        looked.append(f"user cache: {NO_CACHE}")
    return looked


def _not_found(cfg: DataConfig, looked: Sequence[str], err: DownloadError) -> DataError:
    tried = err.attempts or [str(err)]
    cache = cache_dir(cfg.dataset)
    into_cache = f"\n  - copy the four files into {cache}" if cache is not None else ""
    return DataError(
        f"{cfg.dataset}: the files {', '.join(FILES)} (plain or .gz) were not found and "
        "could not be downloaded.\n"
        "Looked in:\n" + "".join(f"  - {line}\n" for line in looked) +
        "Download:\n" + "".join(f"  - {line}\n" for line in tried) +
        "To supply the files, do one of:\n"
        f"  - set data.dir to a folder holding the four files (e.g. --set data.dir=/path/to/{cfg.dataset})\n"
        f"  - set {DATA_DIR_ENV}=/path to a folder containing mnist/ and fashion-mnist/ folders"
        f"{into_cache}"
    )


def _find_or_download(cfg: DataConfig, progress: bool) -> tuple[Path, dict[str, Path]]:
    found = locate(cfg)
    if found is not None:
        return found
    cache = cache_dir(cfg.dataset)
    looked = _places(cfg)  # before downloading creates the cache folder
    if cache is None:
        nowhere = DownloadError("not tried: there is no user cache folder to download into", [])
        raise _not_found(cfg, looked, nowhere)
    have = present(cache)
    missing = [name for name in FILES if name not in have]
    try:
        fetched = download(cfg.dataset, cache, missing, progress=progress)
    except DownloadError as err:
        raise _not_found(cfg, looked, err) from None
    files = {**have, **fetched}
    return cache, {name: files[name] for name in FILES}


# Verified arrays handed over by a sweep driver (a Ray worker gets them from the object store
# and has no data folder of its own): dataset name -> (arrays by file name, source folder).
_SUPPLIED: dict[str, tuple[dict[str, np.ndarray], str]] = {}


def supply_verified(dataset: str, arrays: dict[str, np.ndarray], source: str) -> None:
    """Use these already verified arrays for `dataset` in this process instead of files."""
    _SUPPLIED[dataset] = (arrays, source)


def verified_arrays(cfg: DataConfig, *, progress: bool = False) -> tuple[dict[str, np.ndarray], str]:
    """The four verified arrays of `cfg.dataset` by file name, and the folder they came from."""
    if cfg.dataset not in DATASETS:
        raise ConfigError(f"data.dataset: unknown dataset {cfg.dataset!r}; choose one of: {', '.join(DATASETS)}")
    if cfg.dataset in _SUPPLIED:
        return _SUPPLIED[cfg.dataset]
    folder, files = _find_or_download(cfg, progress)
    sums, cache = DATASETS[cfg.dataset].sha256, cache_dir(cfg.dataset)
    arrays = {}
    for name, path in files.items():
        try:
            arrays[name] = load_verified(path, name, sums[name], cache)
        except DataError as err:
            if folder != cache:
                raise
            # trickrun's own folder: downloads never leave a bad file there, but a copy may
            raise DataError(f"{err}\nThe file is in trickrun's download cache: delete it, and the next run "
                            f"downloads it again (rm {shlex.quote(str(path))})") from None
    for images, labels in ((TRAIN_IMAGES, TRAIN_LABELS), (TEST_IMAGES, TEST_LABELS)):
        if len(arrays[images]) != len(arrays[labels]):
            raise DataError(
                f"{folder}: {files[images].name} holds {len(arrays[images])} images but "
                f"{files[labels].name} holds {len(arrays[labels])} labels"
            )
    return arrays, str(folder.resolve())


def load_dataset(cfg: DataConfig, *, progress: bool = False) -> Dataset:
    """Find (or download), verify, split and scale the dataset named by `cfg.dataset`.

    `progress` shows a download progress bar on stderr. Raises DataError (exit code 3)
    for missing, corrupt or undownloadable files, ConfigError (exit code 2) for a bad
    data.dataset, data.val_size or data.scale.
    """
    fit_scaling = SCALES.get(cfg.scale)  # fail on a bad name before any slow work
    arrays, source = verified_arrays(cfg, progress=progress)
    arrays = dict(arrays)  # ours to drop from (a supplied dict stays whole)
    x_all = arrays.pop(TRAIN_IMAGES).reshape(-1, NUM_FEATURES)
    x_test_raw = arrays.pop(TEST_IMAGES).reshape(-1, NUM_FEATURES)
    x_tr, y_tr, x_val, y_val = split(x_all, arrays[TRAIN_LABELS], cfg.val_size, cfg.split_seed, cfg.train_limit)
    del x_all  # the split made its own copies: free the whole image array before the float32 ones exist
    scaling = fit_scaling(x_tr)
    return Dataset(
        name=cfg.dataset,
        x_train=ScaledImages(x_tr, scaling),
        y_train=y_tr.astype(np.intp),
        x_val=scaling.apply(x_val),
        y_val=y_val.astype(np.intp),
        x_test=scaling.apply(x_test_raw),
        y_test=arrays[TEST_LABELS].astype(np.intp),
        source=source,
    )
