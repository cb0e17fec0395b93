"""How a claim's runs become its samples: each claim's `derived` names one entry of DERIVED
(no name: the plain arms), so a claim whose arms are computed from runs says so as data."""

from __future__ import annotations

from typing import Callable

from ..rundir.reader import Run
from .claims import CLAIMS, Claim, Samples, by_arm, lr_average
from .ensembles import add_ensemble_arm

# (claim, its runs, its threshold) -> (samples, notes on what was left out)
Deriver = Callable[[Claim, list[Run], "float | None"], tuple[Samples, list[str]]]


def _arms(claim: Claim, runs: list[Run], threshold: float | None) -> tuple[Samples, list[str]]:
    return by_arm(claim, runs, threshold), []


def _lr_average(claim: Claim, runs: list[Run], threshold: float | None) -> tuple[Samples, list[str]]:
    return lr_average(claim, runs, threshold), []


def _with_ensembles(claim: Claim, runs: list[Run], threshold: float | None) -> tuple[Samples, list[str]]:
    samples = by_arm(claim, runs, threshold)
    return samples, add_ensemble_arm(claim, runs, samples)


DERIVED: dict[str | None, Deriver] = {None: _arms, "lr_average": _lr_average, "ensembles": _with_ensembles}
_unknown = [c.number for c in CLAIMS if c.derived not in DERIVED]
if _unknown:  # a typo in claims.py fails at import, not in the middle of a report
    raise KeyError(f"claims {_unknown}: derived must be one of {sorted(k for k in DERIVED if k)}")


def claim_samples(claim: Claim, runs: list[Run], threshold: float | None) -> tuple[Samples, list[str]]:
    return DERIVED[claim.derived](claim, runs, threshold)
