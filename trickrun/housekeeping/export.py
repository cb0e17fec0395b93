"""`trickrun export`: every epoch of every run in one tidy table, one row per run and epoch.

Columns, in order:
  run      the run directory's name (unique; what show, compare and rm take)
  name     the run's name (its config's `name`)
  sweep    the sweep whose record lists the run (sweep/record.py), empty if none; several
           joined by `;`
  status   the run's status (completed, early_stopped, diverged, interrupted, running, stale, ...)
  seed
  the config keys whose values differ among the exported runs, dotted (`optimizer.lr`), sorted;
           `name` and `seed` have their own columns. A list value (model.hidden) is written as
           its JSON text, `[512, 256]`, so that every cell holds one value.
  epoch
  every per-epoch metric of metrics.jsonl (`train_loss`, `val_acc`, `lr`, `grad_norm`, ...)
  the per-layer diagnostics, one column per layer and value: `layers.hidden1.grad_norm`,
           layers in network order. Named by layer, not by position, so a column means the same
           layer in every run; a run without that layer leaves it empty.
A missing or non-finite value (metrics.jsonl stores NaN and inf as null) is an empty cell in
csv, null in jsonl and parquet. A run with no epoch records (an ensemble, a run that has not
finished an epoch) adds no rows and is named in a warning.
"""

from __future__ import annotations

import csv
import errno
import io
import json
import math
import sys
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterable, Mapping, Sequence

from ..analysis.analyze import config_diff
from ..atomic import replacing
from ..choices import ExportFormat
from ..errors import ConfigError, RunDirError
from ..rundir.format import SWEEPS_FOLDER, layer_order
from ..rundir.reader import Run, is_run_dir
from ..rundir.writer import to_json
from ..stdout import stdout_to_devnull
from ..sweep.record import sweeps_by_run

RUN_COLUMNS = ("run", "name", "sweep", "status", "seed")
OWN_COLUMNS = ("name", "seed")  # config keys that have a column of their own
LAYERS = "layers"


# ---------------------------------------------------------------------------------------
# The table.


def _cell(value: Any) -> Any:
    """A config value as one cell: scalars as they are, lists and mappings as JSON text."""
    return value if value is None or isinstance(value, (str, int, float, bool)) else json.dumps(value)


def _sweep_names(runs: Sequence[Run]) -> dict[Path, str | None]:
    """Each run's sweep(s), from the records in the runs folder it is in."""
    by_folder: dict[Path, dict[str, list[str]]] = {}
    out = {}
    for run in runs:
        found = by_folder.setdefault(run.path.parent, sweeps_by_run(run.path.parent))
        out[run.path] = ";".join(found.get(run.dirname, [])) or None
    return out


def _value(value: Any) -> Any:
    """A metric as exported: a non-finite number (NaN or inf written into metrics.jsonl by
    hand, which Python's JSON reader takes) is a missing value, as trickrun writes it."""
    return None if isinstance(value, float) and not math.isfinite(value) else value


def _layer_columns(record: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{LAYERS}.{entry['name']}.{key}": value
            for entry in record.get(LAYERS) or () for key, value in entry.items() if key != "name"}


def _ordered(keys: Iterable[str]) -> list[str]:
    """Layer columns in network order, each layer's values in the order first seen."""
    keys = list(dict.fromkeys(keys))
    return sorted(keys, key=lambda k: layer_order(k.split(".")[1]))  # stable: keeps first-seen order within


def table(runs: Sequence[Run]) -> tuple[list[str], list[dict[str, Any]], list[str]]:
    """(columns, rows, warnings): one row per run and epoch, as the module docstring says."""
    with_epochs = [run for run in runs if run.records]
    warnings = [f"{run.dirname} has no epoch records; it adds no rows" for run in runs if not run.records]
    varied = sorted(config_diff([run.config for run in with_epochs], ignore=OWN_COLUMNS))
    sweeps = _sweep_names(with_epochs)
    metrics: dict[str, None] = {}
    layers: list[str] = []
    rows = []
    for i, run in enumerate(with_epochs):
        fixed = {"run": run.dirname, "name": run.name, "sweep": sweeps[run.path], "status": str(run.status),
                 "seed": run.seed, **{key: _cell(values[i]) for key, values in varied}}
        for epoch, record in zip(run.epochs, run.records):
            values = {key: _value(value) for key, value in record.items() if key not in ("epoch", LAYERS)}
            per_layer = {key: _value(value) for key, value in _layer_columns(record).items()}
            metrics.update(dict.fromkeys(values))
            layers += per_layer
            rows.append({**fixed, "epoch": epoch, **values, **per_layer})
    columns = [*RUN_COLUMNS, *(key for key, _ in varied), "epoch", *metrics, *_ordered(layers)]
    return columns, rows, warnings


# ---------------------------------------------------------------------------------------
# The formats: each turns (columns, rows) into the file's bytes.


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)  # a missing key or None is an empty cell
    return text.getvalue().encode()


def _jsonl(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    return "".join(to_json({c: row.get(c) for c in columns}) + "\n" for row in rows).encode()


def _column_kind(value: Any) -> str:
    return "bool" if isinstance(value, bool) else "number" if isinstance(value, (int, float)) else "text"


def _parquet(columns: list[str], rows: list[dict[str, Any]]) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    data = {}
    for column in columns:
        values = [row.get(column) for row in rows]
        if len({_column_kind(v) for v in values if v is not None}) > 1:  # one type a column
            values = [None if v is None else str(v) for v in values]
        data[column] = values
    sink = pa.BufferOutputStream()
    pq.write_table(pa.table(data), sink)
    return sink.getvalue().to_pybytes()


WRITERS: dict[ExportFormat, Callable[[list[str], list[dict[str, Any]]], bytes]] = {
    ExportFormat.csv: _csv,
    ExportFormat.jsonl: _jsonl,
    ExportFormat.parquet: _parquet,
}


def choose_format(fmt: ExportFormat | None, output: Path | None) -> ExportFormat:
    """--format, else the output file's suffix (.csv, .jsonl, .parquet), else csv; parquet
    only with pyarrow installed and to a file (ConfigError, exit 2, otherwise)."""
    if fmt is None:
        suffix = output.suffix.lower().lstrip(".") if output is not None else ""
        fmt = ExportFormat(suffix) if suffix in ExportFormat.__members__ else ExportFormat.csv
    if fmt is ExportFormat.parquet:
        try:
            import pyarrow  # noqa: F401
            import pyarrow.parquet  # noqa: F401
        except ImportError:
            raise ConfigError("--format parquet needs pyarrow, which is not installed: pip install pyarrow "
                              "(or export as --format csv or jsonl)") from None
        if output is None:
            raise ConfigError("parquet is a binary format: give the file to write with -o FILE.parquet")
    return fmt


def export_bytes(runs: Sequence[Run], fmt: ExportFormat) -> tuple[bytes, int, list[str]]:
    """The table of `runs` in `fmt`, its number of rows, and warnings; ConfigError when no
    run has an epoch to export."""
    columns, rows, warnings = table(runs)
    if not rows:
        raise ConfigError("none of these runs has an epoch record (metrics.jsonl): nothing to export")
    return WRITERS[fmt](columns, rows), len(rows), warnings


def write_output(path: Path, data: bytes, runs_root: Path) -> None:
    """Write the export to `path`: a new or regular file at once (readers see the old file or
    the new one); a link, a pipe or a device written into as the shell's `>` would, never
    replaced. Never a file of a run directory or of the sweeps' records."""
    if path.is_dir():
        raise ConfigError(f"-o {path} is a folder; give a file name such as {path / 'runs.csv'}")
    if not path.parent.is_dir():
        raise ConfigError(f"-o {path}: the folder {path.parent} does not exist")
    target = path.resolve()
    if is_run_dir(target.parent):  # its files are the run's record: never replaced by a table
        raise ConfigError(f"-o {path}: {target.parent} is a run directory; write the export outside it")
    if (runs_root.resolve() / SWEEPS_FOLDER) in target.parents:
        raise ConfigError(f"-o {path} is among the sweeps' records in {runs_root / SWEEPS_FOLDER}; write the "
                          f"export outside that folder")
    try:
        if path.is_symlink() or (path.exists() and not path.is_file()):
            with open(path, "wb") as f:
                f.write(data)
        else:
            with replacing(path) as (f, _):
                f.write(data)
    except OSError as err:
        raise RunDirError(f"cannot write {path}: {err.strerror or err}") from None


def write_stdout(data: bytes, stream: BinaryIO | None = None) -> None:
    """Write the export to stdout (`stream`, for tests); RunDirError when it cannot take it
    (a full disk, /dev/full). stdout is then pointed at /dev/null, so the bytes still
    buffered do not fail again, with a traceback, when Python exits. A reader that closed the
    pipe (`| head -1`) is click's, as for every command: exit 1, silently."""
    out = stream if stream is not None else sys.stdout.buffer
    try:
        out.write(data)
        out.flush()
    except OSError as err:
        if stream is None:
            stdout_to_devnull()
        if err.errno == errno.EPIPE:
            raise
        raise RunDirError(f"cannot write the table to stdout: {err.strerror or err}; nothing more was written. "
                          "Free some space, or write it to a file with -o FILE") from None
