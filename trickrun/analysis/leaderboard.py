"""A sweep's leaderboard: its runs grouped across seeds, best first, each judged against the best.

Groups are ranked by the mean of their best validation value of the monitored metric
(early_stopping.monitor: the highest mean val_acc, or the lowest mean val_loss), never by
test accuracy, so that picking the winner does not peek at the test set. Each group is then
judged against the leader by the rule of significance.py on that same per-run value: *worse*
or *tied* (or *n < 2*). The rank is by the mean alone, while the verdict also weighs the seeds'
spread, so a steady group can rank above a noisy one and yet be *worse* while the noisy one is
*tied*; the table says so when it happens.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..metrics import higher_is_better
from ..rundir.reader import Run
from .analyze import Stat, finished_run, group_runs, run_results
from .document import BEST_IN_BOLD
from .render import Cell, Section, fmt_number
from .significance import Verdict, judge, rule_line
from .stats import mean_sd


@dataclass
class Standing:
    label: str  # the differing config values, e.g. "optimizer.lr=0.1 model.hidden=[256]"
    runs: list[Run]
    values: list[float]  # best validation value of the monitor of each finished run: the verdict's sample
    monitored: Stat  # those values' mean, sd and n
    test_acc: Stat
    failed: int  # runs without a result (not finished, or no finished epoch): left out
    verdict: Verdict | None  # against the leader; None for the leader
    unfinished: int = 0  # of `failed`, those not finished (interrupted, running, stale): a re-run finishes them


def _monitor(runs: Sequence[Run]) -> str:
    monitors = {r.monitor() for r in runs}
    return monitors.pop() if len(monitors) == 1 else "val_loss"


def leaderboard(runs: Sequence[Run]) -> tuple[str, list[Standing]]:
    """(the monitored metric, the groups best first)."""
    monitor = _monitor(runs)
    key = f"best_{monitor}"
    standings = []
    for group in group_runs(runs):
        results = [run_results(r) for r in group.runs if finished_run(r)]
        values = [v for v in (r.get(key) for r in results) if isinstance(v, float)]
        standings.append(Standing(group.label, group.runs, values, Stat(*mean_sd(values)),
                                  Stat(*mean_sd([r.get("test_acc") for r in results])),
                                  len(group.runs) - len(values), None, len(group.runs) - len(results)))
    higher = higher_is_better(monitor)
    ranked = sorted(standings, key=lambda s: (s.monitored.mean is None,
                                              -(s.monitored.mean or 0) if higher else (s.monitored.mean or 0)))
    for s in ranked[1:]:
        s.verdict = judge(s.values, ranked[0].values, bool(higher))
    return monitor, ranked


def verdict(s: Standing, rank: int) -> str:
    if not s.values:  # ranked last, with nothing to rank it by
        return "no result"
    return "best" if rank == 0 or s.verdict is None else str(s.verdict)


def _mean_sd(stat: Stat, key: str) -> str:
    if stat.mean is None:
        return "—"
    sd = f" ± {fmt_number(stat.sd, key)}" if stat.sd is not None else ""
    return f"{fmt_number(stat.mean, key)}{sd}"


def rank_inversions(ranked: Sequence[Standing]) -> list[tuple[Standing, Standing]]:
    """(worse, tied) pairs where a group judged worse ranks above one judged tied."""
    words = [s.verdict.word if s.verdict else "best" for s in ranked]
    return [(ranked[i], ranked[j]) for i in range(len(ranked)) for j in range(i + 1, len(ranked))
            if words[i] == "worse" and words[j] == "tied"][:1]


def leaderboard_section(runs: Sequence[Run], title: str) -> Section:
    monitor, ranked = leaderboard(runs)
    rows = []
    for rank, s in enumerate(ranked):
        rows.append([Cell(str(rank + 1)), Cell(s.label), Cell(_mean_sd(s.monitored, monitor), best=rank == 0),
                     Cell(_mean_sd(s.test_acc, "test_acc")), Cell(str(s.monitored.n)), Cell(verdict(s, rank))])
    footer = [f"ranked by the mean best {monitor} over seeds alone, never by test acc (mean ± sample sd, "
              f"n runs; the leader {BEST_IN_BOLD})",
              rule_line(f"best {monitor}", "the leader (#1)")]
    unfinished = sum(s.unfinished for s in ranked)
    if unfinished:
        footer.append(f"left out: {unfinished} run{'s' if unfinished > 1 else ''} without a result (interrupted, "
                      f"running or stale); a run's best so far is not a result: run the sweep again to finish "
                      f"{'them' if unfinished > 1 else 'it'}")
    empty = sum(s.failed - s.unfinished for s in ranked)
    if empty:  # finished for good: a re-run skips them
        footer.append(f"left out: {empty} finished run{'s' if empty > 1 else ''} with no {monitor} to rank "
                      f"(diverged before an epoch ended); running the sweep again does not change that")
    for worse, tied in rank_inversions(ranked):
        footer.append(f"#{ranked.index(worse) + 1} ranks above #{ranked.index(tied) + 1} by its mean, yet is worse "
                      f"while #{ranked.index(tied) + 1} is tied: the verdict also weighs the seeds' spread, and "
                      f"#{ranked.index(tied) + 1}'s runs vary too much to tell it from the leader")
    # On a narrow terminal test acc and n go first: the label, the ranked value and the verdict are the answer.
    return Section(title, ["#", "group", f"best {monitor}", "test acc", "n", "verdict"], rows, footer, label=1,
                   optional=["test acc", "n"])
