"""How a claim's runs become its samples, a value per arm, measure and seed: each claim's
`derived` names one entry of DERIVED (no name: the plain arms), so a claim whose arms are
computed from runs says so as data. Comparisons pair arms by seed, so an arm keeps one run
per seed (the first by folder name) and the others are named in a note."""

from __future__ import annotations

from typing import Callable

from ..rundir.reader import Run
from .claims import CLAIMS, Claim, Samples, by_arm, lr_average
from .ensembles import add_ensemble_arm

# (claim, its runs, its threshold) -> (samples, notes on what was left out)
Deriver = Callable[[Claim, list[Run], "float | None"], tuple[Samples, list[str]]]


def _repeated_note(repeated: list[str]) -> list[str]:
    if not repeated:
        return []
    return [f"left out {len(repeated)} run(s) whose arm already had a run of the same seed "
            f"(a comparison pairs one value per seed): {', '.join(repeated)}"]


def _arms(claim: Claim, runs: list[Run], threshold: float | None) -> tuple[Samples, list[str]]:
    repeated: list[str] = []
    return by_arm(claim, runs, threshold, repeated), _repeated_note(repeated)


def _lr_average(claim: Claim, runs: list[Run], threshold: float | None) -> tuple[Samples, list[str]]:
    repeated: list[str] = []
    return lr_average(claim, runs, threshold, repeated), _repeated_note(repeated)


def _with_ensembles(claim: Claim, runs: list[Run], threshold: float | None) -> tuple[Samples, list[str]]:
    samples, notes = _arms(claim, runs, threshold)
    return samples, notes + add_ensemble_arm(claim, runs, samples)


DERIVED: dict[str | None, Deriver] = {None: _arms, "lr_average": _lr_average, "ensembles": _with_ensembles}
_unknown = [c.number for c in CLAIMS if c.derived not in DERIVED]
if _unknown:  # a typo in claims.py fails at import, not in the middle of a report
    raise KeyError(f"claims {_unknown}: derived must be one of {sorted(k for k in DERIVED if k)}")


def claim_samples(claim: Claim, runs: list[Run], threshold: float | None) -> tuple[Samples, list[str]]:
    return DERIVED[claim.derived](claim, runs, threshold)
