"""Claim 6's model-averaging arm: leave-one-out ensembles of the baseline arm's runs.

With n baseline runs (one per seed), ensemble i averages by soft voting (trickrun.ensemble)
every run but the i-th: n ensembles of n - 1 members, n values for the arm. Below
MIN_RUNS runs there would be fewer than two ensembles of two members, so the arm is left out.
"""

from __future__ import annotations

from ..errors import TrickrunError
from ..rundir.reader import Run
from .claims import Claim, Samples

BASELINE_ARM = "no help"
ENSEMBLE_ARM = "ensemble"
MIN_RUNS = 3


def leave_one_out(items: list) -> list[list]:
    """[[b, c], [a, c], [a, b]] for [a, b, c]."""
    return [items[:i] + items[i + 1:] for i in range(len(items))]


def add_ensemble_arm(claim: Claim, runs: list[Run], samples: Samples) -> list[str]:
    """Put the ensembles' test accuracies in samples[ENSEMBLE_ARM]; notes on what went wrong."""
    from ..ensemble import evaluate_runs

    base = sorted((r for r in runs if claim.arm(r.config) == BASELINE_ARM), key=lambda r: (str(r.seed), r.dirname))
    if len(base) < MIN_RUNS:
        return [f"the ensemble arm needs at least {MIN_RUNS} `{BASELINE_ARM}` runs (seeds) and has "
                f"{len(base)}: left out"]
    accs = []
    for members in leave_one_out(base):
        try:
            result = evaluate_runs([str(r.path) for r in members], members[0].path.parent)
        except TrickrunError as err:
            return [f"the ensemble arm could not be evaluated: {err}"]
        accs.append(result.ensemble.acc)
    samples[ENSEMBLE_ARM] = {"test_acc": accs}
    return []
