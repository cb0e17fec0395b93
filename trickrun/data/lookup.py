"""Where the dataset files are: the folders searched, in order, and the user cache.

A folder "holds the dataset" when all four files are there, each plain or gzipped
(`<name>.gz`); a folder with only some of them is an error naming the missing ones. If
both forms of a file are present, the plain one is read.

The order (the first folder holding the dataset wins):

1. `data.dir` from the config. When it is set, nothing else is searched and nothing is
   downloaded: it must hold the four files.
2. `$TRICKRUN_DATA_DIR/<dataset>/`, i.e. TRICKRUN_DATA_DIR names a folder containing
   `mnist/` and `fashion-mnist/` folders.
3. For fashion-mnist only, `/usr/share/datasets/fashion-mnist/` (Debian's
   dataset-fashion-mnist package; see `DatasetInfo.system_dirs`).
4. The user cache `${XDG_CACHE_HOME:-~/.cache}/trickrun/<dataset>/`, where downloads go.
   Without a usable home (HOME empty, relative or `/`) and an absolute XDG_CACHE_HOME
   there is no user cache: nothing is cached or downloaded, rather than a cache at `/.cache`.
"""

from __future__ import annotations

import os
from pathlib import Path

from ..config import DataConfig
from ..errors import DataError
from .catalog import DATASETS, FILES

DATA_DIR_ENV = "TRICKRUN_DATA_DIR"
NO_CACHE = "none: HOME is unset, empty, relative or / and XDG_CACHE_HOME is not an absolute path"


def cache_dir(dataset: str) -> Path | None:
    """`${XDG_CACHE_HOME:-~/.cache}/trickrun/<dataset>`, or None when there is no usable home.

    A relative or empty XDG_CACHE_HOME is ignored, as XDG says.
    """
    base = os.environ.get("XDG_CACHE_HOME", "")
    if base and os.path.isabs(base):
        return Path(base) / "trickrun" / dataset
    home = os.path.expanduser("~")  # HOME="" gives "/", an unknown user "~"
    if not os.path.isabs(home) or Path(home) == Path(home).parent:
        return None
    return Path(home) / ".cache" / "trickrun" / dataset


def present(folder: Path) -> dict[str, Path]:
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
    found = present(folder)
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
    """The folders searched when data.dir is not set, in order (the cache folder, if any, last)."""
    dirs = []
    env = os.environ.get(DATA_DIR_ENV)
    if env:
        dirs.append(Path(env).expanduser() / dataset)
    dirs.extend(DATASETS[dataset].system_dirs)
    cache = cache_dir(dataset)
    if cache is not None:
        dirs.append(cache)
    return dirs


def _explicit(cfg: DataConfig) -> tuple[Path, dict[str, Path]]:
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


def locate(cfg: DataConfig) -> tuple[Path, dict[str, Path]] | None:
    """The first folder holding all four files, with their paths; None: download them.

    An explicit `cfg.dir` must hold them. A searched folder holding only some is an error,
    except the cache folder, whose missing files `load_dataset` downloads.
    """
    if cfg.dir is not None:
        return _explicit(cfg)
    cache = cache_dir(cfg.dataset)
    for folder in search_dirs(cfg.dataset):
        if folder == cache:
            found = present(folder)
            return (folder, found) if len(found) == len(FILES) else None
        files = find_files(folder)
        if files is not None:
            return folder, files
    return None


def describe(folder: Path) -> str:
    """What `folder` holds of the dataset, for the not-found message."""
    if not folder.is_dir():
        return "no such folder"
    found = present(folder)
    if not found:
        return "none of the files"
    missing = [name for name in FILES if name not in found]
    return f"missing {', '.join(missing)}" if missing else "all four files"
