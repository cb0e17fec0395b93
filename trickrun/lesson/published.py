"""The verdicts of a written lesson report, read back from its Markdown (for `trickrun explain`).

report.py writes them twice: every comparison as a row of the table under "### Verdicts"
(claim, predicted, ..., effect [95% CI], ..., verdict), and each claim's own verdict as a
line `**Verdict: <head>** ...` in its section. This module reads both, by the table's header
names, so a report written by any version with those columns reads back. The committed
report is docs/lesson.md of the checkout.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError
from ..userinput import PATH_CHARS, short

COMMITTED_REPORT = Path(__file__).resolve().parents[2] / "docs" / "lesson.md"
MAX_REPORT_BYTES = 16 << 20  # 16 MiB: a report is under 100 KiB
_CELL_SPLIT = re.compile(r"(?<!\\)\|")
_SECTION = re.compile(r"^## Claim (\d+):")
_CLAIM_VERDICT = re.compile(r"^\*\*Verdict: (?P<head>[^*]+)\*\*(?P<rest>.*)$")
_CLAIM_LINK = re.compile(r"^\[(\d+)\]")


@dataclass
class ComparisonVerdict:
    predicted: str  # e.g. "test acc: tanh glorot > tanh normal"
    effect: str  # e.g. "+0.8445 [+0.8378, +0.8511]"
    verdict: str  # e.g. "supported", "inconclusive (MDE 0.0048; 36 seeds for the SESOI)"


@dataclass
class ClaimVerdict:
    claim: int
    head: str = ""  # the claim's own verdict, e.g. "contradicted (2 supported, 1 contradicted)"
    comparisons: list[ComparisonVerdict] = field(default_factory=list)


def _plain(cell: str) -> str:
    """A table cell without Markdown emphasis or escapes."""
    return cell.replace("\\|", "|").replace("**", "").replace("*", "").strip()


def _cells(line: str) -> list[str]:
    return [_plain(c) for c in _CELL_SPLIT.split(line.strip())[1:-1]]


def read_verdicts(text: str) -> dict[int, ClaimVerdict]:
    """Claim number -> its verdict and its comparisons' verdicts, from a report's Markdown."""
    verdicts: dict[int, ClaimVerdict] = {}
    lines = text.splitlines()
    try:
        start = lines.index("### Verdicts")
    except ValueError:
        start = None
    if start is not None:
        rows = [line for line in lines[start + 1:] if line.startswith("|")]
        header = _cells(rows[0]) if rows else []
        column = {name.split(" ", 1)[0]: i for i, name in enumerate(header)}
        if {"claim", "predicted", "effect", "verdict"} <= set(column):
            for line in rows[2:]:
                cells = _cells(line)
                number = _CLAIM_LINK.match(cells[column["claim"]]) if len(cells) == len(header) else None
                if number is None:
                    break  # the table has ended
                claim = verdicts.setdefault(int(number[1]), ClaimVerdict(int(number[1])))
                claim.comparisons.append(ComparisonVerdict(
                    cells[column["predicted"]], cells[column["effect"]], cells[column["verdict"]]))
    section = None
    for line in lines:
        if match := _SECTION.match(line):
            section = int(match[1])
        elif section is not None and (match := _CLAIM_VERDICT.match(line)):
            summary = re.match(r"\s*(\([^)]*\))", match["rest"])
            head = match["head"].strip() + (f" {summary[1]}" if summary else "")
            verdicts.setdefault(section, ClaimVerdict(section)).head = head
            section = None
    return verdicts


def load_verdicts(path: Path = COMMITTED_REPORT) -> dict[int, ClaimVerdict] | None:
    """The verdicts of the report at `path`; None when there is no report there."""
    try:
        return read_verdicts(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        return None


def check_given_report(path: Path) -> None:
    """For a report the user named (`explain --report`): ConfigError saying what is wrong
    unless `path` is a readable lesson report with verdicts. (The committed report is read
    quietly: without it, explain says there is none.)"""
    shown = f"--report {short(str(path), PATH_CHARS)}"
    fix = "give a lesson.md that trickrun lesson wrote (or leave --report out for docs/lesson.md)"
    try:
        if path.is_dir():
            hint = f"; give {path / 'lesson.md'}" if (path / "lesson.md").is_file() else f"; {fix}"
            raise ConfigError(f"{shown}: is a folder{hint}")
        if not path.is_file():
            raise ConfigError(f"{shown}: {'no such file' if not path.exists() else 'not a regular file'}; {fix}")
        with open(path, "rb") as f:
            data = f.read(MAX_REPORT_BYTES + 1)
    except OSError as err:
        raise ConfigError(f"{shown}: cannot be read ({err.strerror or err}); {fix}") from None
    if len(data) > MAX_REPORT_BYTES:
        raise ConfigError(f"{shown}: larger than {MAX_REPORT_BYTES >> 20} MiB, so no lesson report; {fix}")
    try:
        verdicts = read_verdicts(data.decode("utf-8"))
    except UnicodeDecodeError:
        verdicts = {}
    if not verdicts:
        raise ConfigError(f"{shown}: not a lesson report (it has no verdicts); {fix}")
