"""The fixed choices the commands' options offer: output formats, sort keys, export formats.

They live apart from the code that acts on them so that the command line can declare its
options without importing that code: `trickrun train` then loads none of the analysis,
ensemble or export modules before its first batch (start-up, the speed issue)."""

from __future__ import annotations

from enum import Enum


class OutputFormat(str, Enum):
    """How a report is written (analysis/render.py)."""

    table = "table"
    markdown = "markdown"
    csv = "csv"
    json = "json"


# The output formats but CSV: an ensemble's result is one nested object, not rows of records.
EnsembleFormat = Enum("EnsembleFormat", [(f.name, f.value) for f in OutputFormat if f is not OutputFormat.csv],
                      type=str)


class SortKey(str, Enum):
    """The columns `trickrun ls` sorts by (analysis/listing.py)."""

    name = "name"
    status = "status"
    epochs = "epochs"
    val_acc = "val_acc"
    test_acc = "test_acc"
    started = "started"
    duration = "duration"


class ExportFormat(str, Enum):
    """The files `trickrun export` writes (housekeeping/export.py)."""

    csv = "csv"
    jsonl = "jsonl"
    parquet = "parquet"
