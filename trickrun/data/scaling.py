"""Scaling pixels to float32: the `data.scale` methods, registered by name in `SCALES`."""

from __future__ import annotations

from typing import Callable

import numpy as np

from ..registry import Registry


def _as_float32(x: np.ndarray) -> np.ndarray:
    return x.astype(np.float32, order="C")  # always a new array, so scaling in place is safe


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


SCALES: Registry[Callable[..., list[np.ndarray]]] = Registry("data.scale")


@SCALES.register("unit")
def _unit(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """x / 255, in [0, 1]."""
    out = [_as_float32(x) for x in (train, *others)]
    for x in out:
        x /= np.float32(255)
    return out


@SCALES.register("symmetric")
def _symmetric(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """x / 127.5 - 1, in [-1, 1]."""
    out = [_as_float32(x) for x in (train, *others)]
    for x in out:
        x /= np.float32(127.5)
        x -= np.float32(1)
    return out


@SCALES.register("standard")
def _standard(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """(x - mean) / std with one global mean and population std of the training pixels.

    The statistics come from `train` only (after train_limit) and are applied to every
    array, so validation and test see the same transform. A constant training set
    (std 0) is only centred.
    """
    mean, std = _mean_std(train)
    std = std or 1.0
    out = [_as_float32(x) for x in (train, *others)]
    for x in out:
        x -= np.float32(mean)
        x /= np.float32(std)
    return out


@SCALES.register("none")
def _none(train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Raw 0..255 as float32."""
    return [_as_float32(x) for x in (train, *others)]


def scale(method: str, train: np.ndarray, *others: np.ndarray) -> list[np.ndarray]:
    """Scale `train` and each of `others` by data.scale `method`, to new float32 C-contiguous arrays.

    unit: x/255 in [0, 1]; symmetric: x/127.5 - 1 in [-1, 1]; standard: z-score with one
    global mean and std of `train`; none: raw 0..255. Statistics never come from `others`.
    """
    return SCALES.get(method)(train, *others)
