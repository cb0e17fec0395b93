"""Scaling pixels to float32: the `data.scale` methods, registered by name in `SCALES`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..registry import Registry


@dataclass(frozen=True)
class Scaling:
    """x -> (x - shift) / divisor - offset in float32, one IEEE operation per step, the
    constants fitted on the training pixels. A step with a neutral constant (shift or
    offset 0, divisor 1) changes no bit, so `apply` skips it and a kernel may apply all
    three: both give the same float32 values (nn/kernels/batches.py relies on it)."""

    shift: np.float32 = np.float32(0)
    divisor: np.float32 = np.float32(1)
    offset: np.float32 = np.float32(0)

    def apply(self, x: np.ndarray) -> np.ndarray:
        """`x` scaled, as a new float32 C-contiguous array."""
        out = x.astype(np.float32, order="C")  # always a new array, so scaling in place is safe
        if self.shift:
            out -= self.shift
        if self.divisor != 1:
            out /= self.divisor
        if self.offset:
            out -= self.offset
        return out


def _mean_std(x: np.ndarray) -> tuple[float, float]:
    """Population mean and std of integer pixels, exact, without a float64 copy of `x`."""
    flat = x.reshape(-1)
    total = total_sq = 0
    step = 1 << 20
    for start in range(0, flat.size, step):
        chunk = flat[start : start + step].astype(np.float64)  # integers: sums stay exact below 2**53
        total += int(chunk.sum())
        total_sq += int(np.dot(chunk, chunk))
    n = flat.size
    mean = total / n
    var = (total_sq * n - total * total) / (n * n)  # exact integer arithmetic before dividing
    return mean, var**0.5


# Each method fits its Scaling on the training pixels (after train_limit) only; the same
# transform then applies to validation and test.
SCALES: Registry[Callable[[np.ndarray], Scaling]] = Registry("data.scale")


@SCALES.register("unit")
def _unit(train: np.ndarray) -> Scaling:
    """x / 255, in [0, 1]."""
    return Scaling(divisor=np.float32(255))


@SCALES.register("symmetric")
def _symmetric(train: np.ndarray) -> Scaling:
    """x / 127.5 - 1, in [-1, 1]."""
    return Scaling(divisor=np.float32(127.5), offset=np.float32(1))


@SCALES.register("standard")
def _standard(train: np.ndarray) -> Scaling:
    """(x - mean) / std with one global mean and population std of the training pixels.
    A constant training set (std 0) is only centred."""
    mean, std = _mean_std(train)
    return Scaling(shift=np.float32(mean), divisor=np.float32(std or 1.0))


@SCALES.register("none")
def _none(train: np.ndarray) -> Scaling:
    """Raw 0..255 as float32."""
    return Scaling()


def scale(method: str, train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale `train` and each of `others` by data.scale `method`, to new float32 C-contiguous arrays.

    unit: x/255 in [0, 1]; symmetric: x/127.5 - 1 in [-1, 1]; standard: z-score with one
    global mean and std of `train`; none: raw 0..255. Statistics never come from `others`.
    """
    scaling = SCALES.get(method)(train)
    return [scaling.apply(x) for x in (train, *others)]
