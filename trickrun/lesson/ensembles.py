"""Claim 6's model-averaging arm: leave-one-out ensembles of the baseline arm's runs, each
paired with its own members.

With n baseline runs (one per seed), ensemble i averages by soft voting (trickrun.ensemble)
every run but seed i's: n ensembles of n - 1 members. Pairing by seed: the ensemble arm's
value for seed i is ensemble i's test accuracy, and the members arm's value for seed i is the
mean test accuracy of ensemble i's members, so the paired difference is what averaging adds
over the models averaged. (Disjoint members would make independent pairs, but need at least
2 x 2 runs per pair; with 3 seeds the ensembles share members, so the n differences are
correlated and the paired test is optimistic: the report says so.) Below MIN_RUNS runs there
would be fewer than two ensembles of two members, so both arms are left out.
"""

from __future__ import annotations

import statistics

from ..errors import TrickrunError
from ..rundir.reader import Run
from .claims import ENSEMBLE_ARM, MEMBERS_ARM, Claim, Samples, in_seed_order
from .verdicts import SeedValues

BASELINE_ARM = "no help"
DERIVED_ARMS = (ENSEMBLE_ARM, MEMBERS_ARM)
MIN_RUNS = 3


def leave_one_out(items: list) -> list[list]:
    """[[b, c], [a, c], [a, b]] for [a, b, c]."""
    return [items[:i] + items[i + 1:] for i in range(len(items))]


def _one_run_per_seed(runs: list[Run]) -> list[Run]:
    first: dict = {}
    for run in in_seed_order(runs):
        first.setdefault(run.seed, run)
    return list(first.values())


def add_ensemble_arm(claim: Claim, runs: list[Run], samples: Samples) -> list[str]:
    """Put the ensembles' test accuracies in samples[ENSEMBLE_ARM] and their members' mean test
    accuracy in samples[MEMBERS_ARM], each by the seed the ensemble leaves out; notes on what
    went wrong."""
    from ..ensemble import evaluate_runs

    base = _one_run_per_seed([r for r in runs if claim.arm(r.config) == BASELINE_ARM])
    if len(base) < MIN_RUNS:
        return [f"the ensemble arm needs at least {MIN_RUNS} `{BASELINE_ARM}` runs (seeds) and has "
                f"{len(base)}: left out"]
    member_accs = samples.get(BASELINE_ARM, {}).get("test_acc", SeedValues()).by_seed
    ensembles, members_mean = SeedValues(), SeedValues()
    for left_out, members in zip(base, leave_one_out(base)):
        try:
            result = evaluate_runs([str(r.path) for r in members], members[0].path.parent)
        except TrickrunError as err:
            return [f"the ensemble arm could not be evaluated: {err}"]
        ensembles.add(left_out.seed, result.ensemble.acc)
        members_mean.add(left_out.seed, statistics.fmean(member_accs[r.seed] for r in members))
    samples[ENSEMBLE_ARM] = {"test_acc": ensembles}
    samples[MEMBERS_ARM] = {"test_acc": members_mean}
    return []
