"""The sweep leaderboard ranks best first by the monitored validation metric: the highest
val_acc, or the lowest val_loss, never by test accuracy."""

from __future__ import annotations

import pytest

from runfactory import make_run
from trickrun.analysis.leaderboard import leaderboard, leaderboard_section
from trickrun.rundir.reader import load_run

# (learning rate, final val accuracy, test accuracy): the better validation, the worse test,
# so a ranking by test accuracy or in the wrong direction gives another order.
GROUPS = ((0.1, 0.95, 0.90), (0.01, 0.97, 0.80), (0.001, 0.93, 0.99))


@pytest.mark.parametrize("monitor", ["val_acc", "val_loss"])
def test_the_leaderboard_puts_the_best_validation_first(tmp_path, monitor):
    runs = [load_run(make_run(tmp_path, f"lr{lr:g}", seed=seed, stamp=f"20240501-12000{seed}", final_acc=acc,
                              test_acc=test, **{"optimizer.lr": lr, "early_stopping.monitor": monitor}))
            for lr, acc, test in GROUPS for seed in (0, 1)]
    chosen, ranked = leaderboard(runs)
    assert chosen == monitor
    assert [s.label for s in ranked] == ["optimizer.lr=0.01", "optimizer.lr=0.1", "optimizer.lr=0.001"]
    means = [s.monitored.mean for s in ranked]
    assert means == sorted(means, reverse=monitor == "val_acc")  # higher accuracy / lower loss first
    section = leaderboard_section(runs, "leaderboard")
    assert [row[1].text for row in section.rows][0] == "optimizer.lr=0.01" and section.rows[0][2].best
