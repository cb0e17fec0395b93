"""What a report is made of: the options it was run with, and per claim its runs, samples
and judged comparisons (filled in by runner.py, read by report.py and figures.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..rundir.reader import Run
from .claims import Claim, Samples
from .verdicts import Outcome


@dataclass
class LessonOptions:
    claims: str | None = None  # "1,4,9"; None: all
    seeds: int | None = None
    quick: bool = False
    jobs: int | None = None
    backend: str = "local"
    out: Path = Path("lesson-report")
    runs_dir: Path | None = None
    seed_list: str | None = None  # "8,9,10"; given instead of seeds
    first_seed: int = 0  # the seeds are first_seed, first_seed + 1, ... (not with seed_list)

    def command(self) -> str:
        """The command line these options stand for, as the report prints it."""
        parts = ["trickrun lesson"]
        if self.claims:
            parts.append(f"--claims {self.claims}")
        if self.seeds is not None:
            parts.append(f"--seeds {self.seeds}")
        if self.seed_list is not None:
            parts.append(f"--seed-list {self.seed_list}")
        if self.first_seed:
            parts.append(f"--first-seed {self.first_seed}")
        if self.quick:
            parts.append("--quick")
        if self.jobs is not None:
            parts.append(f"--jobs {self.jobs}")
        parts.append(f"--backend {self.backend}")
        if self.runs_dir is not None:
            parts.append(f"--runs-dir {shown_path(self.runs_dir)}")
        parts.append(f"--out {shown_path(self.out)}")
        return " ".join(parts)


def shown_path(path: Path) -> str:
    """`path` relative to the current folder, as a reader re-runs the command from there; absolute
    only when it is not under it (then no relative form would name the same place elsewhere)."""
    absolute = Path(os.path.abspath(path))
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


@dataclass
class ClaimResult:
    claim: Claim
    runs: list[Run]
    samples: Samples
    threshold: float | None
    outcomes: list[Outcome] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what went wrong while running
    failed: int = 0  # cells whose process failed
