"""The sweep leaderboard ranks best first by the monitored validation metric: the highest
val_acc, or the lowest val_loss, never by test accuracy; it states its rule of significance (the
one `compare --group` states) and explains a worse group ranked above a tied one."""

from __future__ import annotations

import pytest

from runfactory import make_run
from trickrun.analysis.leaderboard import leaderboard, leaderboard_section
from trickrun.analysis.significance import RULE
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


def test_a_worse_group_ranked_above_a_tied_one_is_explained(tmp_path):
    # best val_loss = 0.0299 + 2 (1 - final_acc): A leads; B is a little behind with almost no
    # spread (worse); C's mean is further behind but its two seeds disagree (tied)
    accs = {"a": (0.950, 0.9501, 0.9502), "b": (0.945, 0.9451, 0.9452), "c": (0.97, 0.90, 0.93)}
    runs = [load_run(make_run(tmp_path, f"g{key}", seed=seed, stamp=f"20240501-12000{seed}", final_acc=acc,
                              **{"optimizer.lr": 0.1 * (1 + "abc".index(key))}))
            for key, pair in accs.items() for seed, acc in enumerate(pair)]
    _, ranked = leaderboard(runs)
    assert [s.label for s in ranked] == ["optimizer.lr=0.1", "optimizer.lr=0.2", "optimizer.lr=0.3"]
    assert [s.verdict.word for s in ranked[1:]] == ["worse", "tied"]
    section = leaderboard_section(runs, "leaderboard")
    footer = " ".join(section.footer)
    assert "ranked by the mean best val_loss over seeds alone" in footer
    assert RULE in footer and "against the leader (#1)" in footer
    assert "#2 ranks above #3 by its mean, yet is worse while #3 is tied" in footer


def test_without_an_inversion_the_table_says_only_the_rule(tmp_path):
    runs = [load_run(make_run(tmp_path, f"g{lr}", seed=seed, stamp=f"20240501-12000{seed}",
                              final_acc=0.95 - lr / 10 + seed / 1000, **{"optimizer.lr": lr}))
            for lr in (0.1, 0.2) for seed in (0, 1)]
    footer = " ".join(leaderboard_section(runs, "leaderboard").footer)
    assert RULE in footer and "ranks above" not in footer


def test_a_run_that_has_not_finished_is_left_out_of_the_statistics_and_said(tmp_path):
    from trickrun.analysis import analyze

    def run(name, seed, acc, status="completed"):
        return load_run(make_run(tmp_path, name, seed=seed, stamp=f"20240501-12000{seed}", final_acc=acc,
                                 test_acc=acc, status=status, **{"optimizer.lr": 0.1 if name == "a" else 0.2}))

    finished = [run("a", 0, 0.95), run("a", 1, 0.951), run("b", 0, 0.90), run("b", 1, 0.901)]
    cut = run("b", 2, 0.30, status="interrupted")  # stopped after a few epochs: its best so far
    _, alone = leaderboard(finished)
    _, ranked = leaderboard(finished + [cut])
    assert [(s.monitored, s.test_acc, s.verdict) for s in ranked] == [(s.monitored, s.test_acc, s.verdict) for s in alone]
    assert ranked[1].monitored.n == 2 and ranked[1].failed == 1
    assert "left out: 1 run without a result (interrupted" in " ".join(leaderboard_section(finished + [cut], "l").footer)
    # diverged in its first epoch: finished for good, with nothing to rank; a re-run skips it
    boom = load_run(make_run(tmp_path, "b", seed=3, stamp="20240501-120003", records=[], status="diverged",
                             **{"optimizer.lr": 0.2}))
    footer = " ".join(leaderboard_section(finished + [cut, boom], "l").footer)
    assert "left out: 1 run without a result (interrupted, running or stale)" in footer
    assert "run the sweep again to finish it" in footer
    assert "left out: 1 finished run with no val_loss to rank (diverged before an epoch ended)" in footer

    grouped = analyze.compare_groups(finished + [cut])
    b = grouped.groups[1]
    assert len(b.counted) == 2 and len(b.results) == 3  # its status row still shows the interrupted run
    assert b.stats["test_acc"] == analyze.compare_groups(finished).groups[1].stats["test_acc"]
    assert [str(v) for v in grouped.verdicts] == [str(v) for v in analyze.compare_groups(finished).verdicts]


def test_at_60_columns_the_leaderboard_leaves_out_test_acc_before_it_folds_a_label(tmp_path):
    import io

    from rich.console import Console

    from trickrun.analysis.render import draw_tables

    runs = [load_run(make_run(tmp_path, f"s_lr-{lr}", seed=seed, stamp=f"20240501-12000{seed}",
                              final_acc=0.9 + 0.01 * seed + lr, **{"optimizer.lr": lr}))
            for lr in (0.01, 0.001) for seed in (0, 1, 2)]
    buf = io.StringIO()
    draw_tables([leaderboard_section(runs, "leaderboard")], Console(file=buf, width=60, color_system=None))
    text = buf.getvalue()
    assert "optimizer.lr=0.001" in text and "left out to fit 60 columns: test acc" in text
    assert max(len(line) for line in text.splitlines()) <= 60
    assert "test acc is shown" not in " ".join(text.split())  # it is not, here


def test_a_group_without_a_finished_run_is_no_result_never_best(tmp_path):
    def run(lr, seed, status):
        return load_run(make_run(tmp_path, f"s_lr-{lr}", seed=seed, stamp=f"20240501-12000{seed}", status=status,
                                 **{"optimizer.lr": lr}))

    all_cut = [run(0.1, 0, "interrupted"), run(0.2, 1, "interrupted")]
    section = leaderboard_section(all_cut, "l")
    assert [row[-1].text for row in section.rows] == ["no result", "no result"]
    some = [run(0.1, 2, "completed"), run(0.1, 3, "completed"), run(0.2, 4, "interrupted")]
    assert [row[-1].text for row in leaderboard_section(some, "l").rows] == ["best", "no result"]


def test_the_leaders_mark_is_explained_where_it_shows(tmp_path):
    import io

    from rich.console import Console

    from trickrun.analysis.render import draw_tables

    runs = [load_run(make_run(tmp_path, f"s_lr-{lr}", seed=seed, stamp=f"20240501-12000{seed}",
                              final_acc=0.9 + 0.01 * seed + lr, **{"optimizer.lr": lr}))
            for lr in (0.01, 0.001) for seed in (0, 1)]
    buf = io.StringIO()
    draw_tables([leaderboard_section(runs, "leaderboard")], Console(file=buf, width=120, color_system=None))
    text = " ".join(buf.getvalue().split())
    assert "*" in text and "the leader marked *" in text  # piped: a star, and what it means
