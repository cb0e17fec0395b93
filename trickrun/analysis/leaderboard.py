"""A sweep's leaderboard: its runs grouped across seeds, best first, each judged against the best.

Groups are ranked by the mean of their best validation value of the monitored metric
(early_stopping.monitor: the highest mean val_acc, or the lowest mean val_loss), never by
test accuracy, so that picking the winner does not peek at the test set. Each group is then
compared with the best one by Welch's t-test on that same per-run value: *tied* when
p >= 0.05 (or fewer than two runs on a side), *worse* when p < 0.05.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from ..metrics import higher_is_better
from ..rundir.reader import Run
from .analyze import GROUP_IGNORES, Stat, config_diff, group_runs, run_results
from .render import Cell, Section, fmt_config, fmt_number
from .stats import WelchResult, mean_sd, welch_t_test


@dataclass
class Standing:
    label: str  # the differing config values, e.g. "optimizer.lr=0.1 model.hidden=[256]"
    runs: list[Run]
    monitored: Stat  # best validation value of the monitor, over seeds
    test_acc: Stat
    failed: int  # runs without a result (interrupted, no finished epoch)
    welch: WelchResult | None  # against the leader; None for the leader or too few runs


def _monitor(runs: Sequence[Run]) -> str:
    monitors = {r.monitor() for r in runs}
    return monitors.pop() if len(monitors) == 1 else "val_loss"


def leaderboard(runs: Sequence[Run]) -> tuple[str, list[Standing]]:
    """(the monitored metric, the groups best first)."""
    monitor = _monitor(runs)
    key = f"best_{monitor}"
    groups = group_runs(runs)
    diff = dict(config_diff([g.config for g in groups], ignore=GROUP_IGNORES))
    standings = []
    for i, group in enumerate(groups):
        results = [run_results(r) for r in group.runs]
        label = " ".join(f"{k}={fmt_config(v[i])}" for k, v in diff.items()) or group.label
        standings.append(Standing(label, group.runs, Stat(*mean_sd([r.get(key) for r in results])),
                                  Stat(*mean_sd([r.get("test_acc") for r in results])),
                                  sum(r.get(key) is None for r in results), None))
    higher = higher_is_better(monitor)
    ranked = sorted(standings, key=lambda s: (s.monitored.mean is None,
                                              -(s.monitored.mean or 0) if higher else (s.monitored.mean or 0)))
    if ranked:
        leader = _values(ranked[0].runs, key)
        for s in ranked[1:]:
            mine = _values(s.runs, key)
            s.welch = welch_t_test(mine, leader) if len(mine) > 1 and len(leader) > 1 else None
    return monitor, ranked


def _values(runs: Sequence[Run], key: str) -> list[float]:
    return [v for v in (run_results(r).get(key) for r in runs) if isinstance(v, float)]


def verdict(s: Standing, rank: int) -> str:
    if rank == 0:
        return "best"
    if s.welch is None:
        return "n < 2"
    return f"worse (p={s.welch.p:.3g})" if s.welch.significant else f"tied (p={s.welch.p:.3g})"


def _mean_sd(stat: Stat, key: str) -> str:
    if stat.mean is None:
        return "—"
    sd = f" ± {fmt_number(stat.sd, key)}" if stat.sd is not None else ""
    return f"{fmt_number(stat.mean, key)}{sd}"


def leaderboard_section(runs: Sequence[Run], title: str) -> Section:
    monitor, ranked = leaderboard(runs)
    rows = []
    for rank, s in enumerate(ranked):
        rows.append([Cell(str(rank + 1)), Cell(s.label), Cell(_mean_sd(s.monitored, monitor), best=rank == 0),
                     Cell(_mean_sd(s.test_acc, "test_acc")), Cell(str(s.monitored.n)), Cell(verdict(s, rank))])
    footer = [f"ranked by the mean best {monitor} over seeds (mean ± sample sd, n runs); verdict: Welch's t-test "
              f"of each group's best {monitor} against the leader's, p < 0.05 = worse beyond seed noise"]
    return Section(title, ["#", "group", f"best {monitor}", "test acc", "n", "verdict"], rows, footer)
