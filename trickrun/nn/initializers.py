"""Weight initializers of the lesson, as pure functions `(shape, rng) -> float64 array`.

`shape` is `(n_in, n_out)` of a Dense weight matrix; N(0, s) means mean 0 and standard
deviation s (not variance). Biases always start at zero and are not drawn here.
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import Registry

INITIALIZERS: Registry = Registry("initializer")


@INITIALIZERS.register("normal")
def normal(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """N(0, 1): standard deviation 1, the naive choice; pre-activations grow like sqrt(n_in)
    layer after layer."""
    return rng.standard_normal(shape)


@INITIALIZERS.register("uniform")
def uniform(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """U(-1/sqrt(n_in), 1/sqrt(n_in)): variance 1/(3 n_in)."""
    limit = 1.0 / math.sqrt(shape[0])
    return rng.uniform(-limit, limit, size=shape)


@INITIALIZERS.register("gaussian")
def gaussian(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """N(0, 1/n_in): standard deviation 1/n_in, as the lesson writes it (shrinks signals)."""
    return rng.standard_normal(shape) * (1.0 / shape[0])


@INITIALIZERS.register("lecun")
def lecun(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """N(0, 1/sqrt(n_in)): standard deviation 1/sqrt(n_in) (variance 1/n_in); keeps the pre-activation
    variance for unit inputs."""
    return rng.standard_normal(shape) * (1.0 / math.sqrt(shape[0]))


@INITIALIZERS.register("glorot", aliases=("xavier",))
def glorot(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Xavier/Glorot normal, N(0, sqrt(2/(n_in+n_out))): standard deviation sqrt(2/(n_in+n_out));
    balances forward and backward variance."""
    return rng.standard_normal(shape) * math.sqrt(2.0 / (shape[0] + shape[1]))


@INITIALIZERS.register("he", aliases=("kaiming",))
def he(shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """He/Kaiming normal, N(0, sqrt(2/n_in)): standard deviation sqrt(2/n_in); makes up for ReLU
    zeroing half the units."""
    return rng.standard_normal(shape) * math.sqrt(2.0 / shape[0])
