"""The same as `trickrun train`, from Python (for notebooks and scripts).

    >>> from trickrun import train
    >>> result = train("configs/baseline.yaml", ["optimizer.lr=0.01"], progress="quiet")
    >>> result.run_dir, result.summary["test"]["acc"]
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import Config, dump_yaml, load_config
from .data import load_dataset
from .runs import RunWriter, runs_root


@dataclass
class RunResult:
    run_dir: Path
    summary: dict[str, Any]


def train(
    config: str | Path | Mapping[str, Any] | Config,
    overrides: Sequence[str] = (),
    *,
    name: str | None = None,
    seed: int | None = None,
    runs_dir: str | Path | None = None,
    progress: str = "auto",
) -> RunResult:
    """Train one run exactly as `trickrun train` does and return its directory and summary.

    `config` is a YAML path, a mapping with the same keys, or a loaded Config; `overrides`
    are `--set` strings such as "optimizer.lr=0.01"; `name` and `seed` win over both.
    `progress` is "auto", "rich", "plain" or "quiet". Config and data problems raise
    ConfigError or DataError before any run directory is made. A Ctrl-C ends the run with
    status "interrupted" (the summary says so) instead of raising.
    """
    from .progress import RichReporter, make_reporter
    from .train import Trainer

    if isinstance(config, Config):
        config = config.to_dict()
    cfg = load_config(config, overrides, name=name, seed=seed)
    reporter = make_reporter(progress)
    data = load_dataset(cfg.data, progress=isinstance(reporter, RichReporter))
    writer = RunWriter.create(runs_root(runs_dir), cfg.name, dump_yaml(cfg.to_dict()), cfg.seed)
    try:
        result = Trainer(cfg, data, writer, reporter).run()
    finally:
        getattr(reporter, "close", lambda: None)()
    return RunResult(writer.path, writer.finish(result))
