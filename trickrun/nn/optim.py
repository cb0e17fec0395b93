"""Update rules as plain functions over flat arrays and explicit state, with thin classes
around them, global-norm clipping in one place, and the max-norm weight constraint.

Every rule updates `p` in place from the gradient `g` at learning rate `lr`; `tmp` is a
scratch array of the same size, so a step allocates nothing.

The formulas, in the conventions chosen (t counts steps from 1):

  sgd       w <- w - lr g
  momentum  v <- gamma v - lr g;  w <- w + v                      (the lesson's form)
  nesterov  v <- gamma v - lr g;  w <- w + gamma v - lr g         (Sutskever's look-ahead
            form, as Keras writes it; equals PyTorch's nesterov=True up to the scale of v)
  adagrad   G <- G + g^2;  w <- w - lr g / (sqrt(G) + eps)        (G starts at 0)
  rmsprop   E <- rho E + (1 - rho) g^2;  w <- w - lr g / (sqrt(E) + eps)
  adam      m <- b1 m + (1 - b1) g;  v <- b2 v + (1 - b2) g^2;
            w <- w - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)   (Kingma & Ba; eps
            outside the square root, as PyTorch and Keras do)
  adamw     w <- w - lr wd w on the weight matrices (decoupled, before the Adam step;
            Loshchilov & Hutter, as PyTorch's AdamW), then the Adam step.
  normalized  w <- w - lr g / ||g||, ||g|| the global L2 norm over every parameter's
            gradient (the norm clipping uses); no step when ||g|| = 0. A step of length lr
            along the gradient, whatever its size: the lesson's formula under the name
            Adagrad, which is not Adagrad's.
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import Registry
from .kernels import optim as kernels

OPTIMIZERS: Registry = Registry("optimizer")
EPS = 1e-8  # added to the denominator of adagrad, rmsprop, adam and adamw


# --- the rules ----------------------------------------------------------------------------
def sgd_update(p, g, lr, tmp):
    np.multiply(g, lr, out=tmp)
    p -= tmp


def momentum_update(p, g, v, lr, gamma, tmp):
    v *= gamma
    np.multiply(g, lr, out=tmp)
    v -= tmp
    p += v


def nesterov_update(p, g, v, lr, gamma, tmp):
    v *= gamma
    np.multiply(g, lr, out=tmp)
    v -= tmp
    p -= tmp
    np.multiply(v, gamma, out=tmp)
    p += tmp


def _scaled_step(p, numerator, squares, lr, eps, tmp):
    """p <- p - lr * numerator / (sqrt(squares) + eps): the tail of adagrad, rmsprop and adam."""
    np.sqrt(squares, out=tmp)
    tmp += eps
    np.divide(numerator, tmp, out=tmp)
    tmp *= lr
    p -= tmp


def adagrad_update(p, g, G, lr, eps, tmp):
    np.multiply(g, g, out=tmp)
    G += tmp
    _scaled_step(p, g, G, lr, eps, tmp)


def rmsprop_update(p, g, E, lr, rho, eps, tmp):
    np.multiply(g, g, out=tmp)  # E += (1 - rho) (g^2 - E) is rho E + (1 - rho) g^2
    tmp -= E
    tmp *= 1.0 - rho
    E += tmp
    _scaled_step(p, g, E, lr, eps, tmp)


def normalized_update(p, g, lr, tmp):
    norm = math.sqrt(float(np.dot(g, g)))
    if norm > 0.0:  # a zero gradient has no direction to step along
        sgd_update(p, g, lr / norm, tmp)


def adam_update(p, g, m, v, t, lr, beta1, beta2, eps, tmp):
    np.subtract(g, m, out=tmp)  # m += (1 - b1)(g - m) is b1 m + (1 - b1) g
    tmp *= 1.0 - beta1
    m += tmp
    np.multiply(g, g, out=tmp)
    tmp -= v
    tmp *= 1.0 - beta2
    v += tmp
    # lr (m/bc1) / (sqrt(v/bc2) + eps) = [lr sqrt(bc2)/bc1] m / (sqrt(v) + eps sqrt(bc2))
    bc1, bc2 = 1.0 - beta1**t, 1.0 - beta2**t
    _scaled_step(p, m, v, lr * math.sqrt(bc2) / bc1, eps * math.sqrt(bc2), tmp)


# --- thin classes holding the state -----------------------------------------------------
class Optimizer:
    """Holds hyper-parameters and state arrays; `step` applies the rule to flat arrays.

    `defaults` names a rule's hyper-parameters (the config keys it reads) with their default
    values, and `default_lr` is its usual starting learning rate: config.py reads both, so
    each default is written here only. `n_weights` marks `p[:n_weights]` as the weight
    matrices (for decoupled weight decay).

    Given `segment_ends`, each step also leaves in `squares[k]` the sum of squares of the
    gradient it was given over segment k of the flat vector: [0, segment_ends[0]),
    [segment_ends[0], segment_ends[1]), ... The kernel sums them in the pass it makes anyway
    (kernels/optim.py), so a trainer reads its gradient norms there instead of reading the
    gradient again; `step` may be given another array of the same size to fill instead (the
    trainer gives each batch its row of an epoch's table). Without (the default), `squares`
    is empty and nothing is summed. `chunks` is the kernels' table of pieces
    (kernels.optim.chunk_table).
    """

    state_names: tuple[str, ...] = ()
    defaults: dict[str, float] = {}
    default_lr: float

    def __init__(self, size: int, dtype=np.float32, n_weights: int | None = None,
                 segment_ends: list[int] | None = None, **hyper: float):
        unknown = set(hyper) - set(self.defaults)
        if unknown:
            raise TypeError(f"{type(self).__name__} takes no hyper-parameter {', '.join(sorted(unknown))}")
        for name, value in {**self.defaults, **hyper}.items():
            setattr(self, name, value)
        self.size, self.dtype = size, np.dtype(dtype)
        self.n_weights = size if n_weights is None else n_weights
        self.t = 0
        self.state = {name: np.zeros(size, self.dtype) for name in self.state_names}
        ends = [size] if segment_ends is None else list(segment_ends)
        if not ends or ends[-1] != size or any(b < a for a, b in zip([0, *ends], ends)):
            raise ValueError(f"segment ends {ends} do not cut a vector of {size} values")
        self.chunks = kernels.chunk_table(ends)
        self.squares = np.zeros(0 if segment_ends is None else len(ends), self.dtype)

    def step(self, p: np.ndarray, g: np.ndarray, lr: float, squares: np.ndarray | None = None) -> float:
        """One update in place, by a fused kernel (nn/kernels/optim.py): the rules above
        are its reference, to float32 rounding. Fills `squares` (default: self.squares)
        and returns their sum in float64, 0.0 when there are none: not finite exactly
        when the gradient is not."""
        self.t += 1
        return self._update(p, g, lr, self.squares if squares is None else squares)

    def _cast(self, *scalars: float):
        """Scalars in the parameters' dtype: float32 arithmetic for a float32 model, as
        NumPy does with Python floats beside float32 arrays."""
        cast = self.dtype.type
        return cast(scalars[0]) if len(scalars) == 1 else tuple(cast(s) for s in scalars)

    def _update(self, p, g, lr, squares) -> float:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def get_config(self) -> dict:
        return {name: getattr(self, name) for name in self.defaults}

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"t": np.array(self.t), **{k: v.copy() for k, v in self.state.items()}}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state["t"])
        for k, v in self.state.items():
            v[...] = state[k]


@OPTIMIZERS.register("sgd")
class SGD(Optimizer):
    default_lr = 0.1
    def _update(self, p, g, lr, squares):
        return kernels.sgd(p, g, self._cast(lr), self.chunks, squares)


@OPTIMIZERS.register("momentum")
class Momentum(Optimizer):
    state_names = ("velocity",)
    defaults = {"momentum": 0.9}
    default_lr = 0.01

    def _update(self, p, g, lr, squares):
        return kernels.momentum(p, g, self.state["velocity"], *self._cast(lr, self.momentum), self.chunks, squares)


@OPTIMIZERS.register("nesterov")
class Nesterov(Momentum):
    def _update(self, p, g, lr, squares):
        return kernels.nesterov(p, g, self.state["velocity"], *self._cast(lr, self.momentum), self.chunks, squares)


@OPTIMIZERS.register("adagrad")
class Adagrad(Optimizer):
    state_names = ("sum_sq",)
    defaults = {"eps": EPS}
    default_lr = 0.01

    def _update(self, p, g, lr, squares):
        return kernels.adagrad(p, g, self.state["sum_sq"], *self._cast(lr, self.eps), self.chunks, squares)


@OPTIMIZERS.register("rmsprop")
class RMSProp(Optimizer):
    state_names = ("mean_sq",)
    defaults = {"rho": 0.9, "eps": EPS}
    default_lr = 0.001

    def _update(self, p, g, lr, squares):
        return kernels.rmsprop(p, g, self.state["mean_sq"], *self._cast(lr, 1.0 - self.rho, self.eps),
                               self.chunks, squares)


@OPTIMIZERS.register("adam")
class Adam(Optimizer):
    state_names = ("m", "v")
    defaults = {"beta1": 0.9, "beta2": 0.999, "eps": EPS}
    default_lr = 0.001

    def _update(self, p, g, lr, squares):
        return self._adam(p, g, lr, squares, decay=1.0, n_decay=0)

    def _adam(self, p, g, lr, squares, decay: float, n_decay: int) -> float:
        """adam_update's step in one kernel, with AdamW's decay of the first n_decay values."""
        bc1, bc2 = 1.0 - self.beta1**self.t, 1.0 - self.beta2**self.t
        lr_t, eps_t = lr * math.sqrt(bc2) / bc1, self.eps * math.sqrt(bc2)
        return kernels.adam(p, g, self.state["m"], self.state["v"],
                            *self._cast(lr_t, 1.0 - self.beta1, 1.0 - self.beta2, eps_t, decay), n_decay,
                            self.chunks, squares)


@OPTIMIZERS.register("adamw")
class AdamW(Adam):
    defaults = {**Adam.defaults, "weight_decay": 0.01}

    def _update(self, p, g, lr, squares):
        return self._adam(p, g, lr, squares, decay=1.0 - lr * self.weight_decay, n_decay=self.n_weights)


@OPTIMIZERS.register("normalized")
class Normalized(Optimizer):
    """The lesson's formula, which is not Adagrad's: w <- w - lr g / ||g||, a step of
    length lr along the gradient, ||g|| over all parameters at once; no step when g = 0."""

    # Each step moves the whole parameter vector by exactly lr, however small the gradient
    # gets. 0.1 is about the length of SGD's default step on MNIST (lr 0.1, gradient norms
    # near 1); measured on 10,000 examples, 0.01 and below lag far behind after 10 epochs.
    default_lr = 0.1

    def _update(self, p, g, lr, squares):
        with np.errstate(over="ignore", invalid="ignore"):  # a gradient gone wrong: the trainer says so
            norm = math.sqrt(float(np.dot(g, g)))
        if norm > 0.0:  # a zero gradient has no direction to step along
            return kernels.sgd(p, g, self._cast(lr / norm), self.chunks, squares)
        if squares.size:  # no step (g = 0, or NaN, which a trainer must still see)
            return kernels.sum_squares(g, self.chunks, squares)
        return 0.0


def hyper_defaults() -> dict[tuple[str, str], float]:
    """Each rule's default for each hyper-parameter it takes, keyed by (optimizer name, key):
    two rules may give a key of one name different defaults (say eps for adam and adagrad),
    and each run gets its own rule's."""
    return {(name, key): value for name in OPTIMIZERS.names()
            for key, value in OPTIMIZERS.get(name).defaults.items()}


def make_optimizer(opt_cfg, size: int, dtype, n_weights: int, segment_ends: list[int] | None = None) -> Optimizer:
    """Build the optimizer named in the config section, passing the keys its rule uses."""
    cls = OPTIMIZERS.get(opt_cfg.name)
    return cls(size, dtype, n_weights, segment_ends, **{k: getattr(opt_cfg, k) for k in cls.defaults})


# --- clipping -----------------------------------------------------------------------------
def clip_gradients(g: np.ndarray, norm: float, max_norm: float | None, max_value: float | None) -> bool:
    """Clip `g` in place: elementwise to [-max_value, max_value], then rescale to global L2
    norm `max_norm` when above it. `norm` is the norm of `g` as given (computed by the
    caller, who also logs it). Returns whether anything changed."""
    clipped = False
    if max_value is not None and kernels.clip_values(g, g.dtype.type(max_value)):
        norm = math.sqrt(float(np.dot(g, g)))
        clipped = True
    if max_norm is not None and norm > max_norm:
        g *= max_norm / norm
        clipped = True
    return clipped


# --- the max-norm constraint ---------------------------------------------------------------
def apply_max_norm(weights: list[np.ndarray], max_norm: float) -> int:
    """Max-norm (Srivastava et al. 2014): rescale, in place, each column of each (n_in, n_out)
    matrix in `weights` (unit j's incoming weights) whose L2 norm exceeds `max_norm` to norm
    `max_norm`. Biases and normalization parameters are not passed, so never touched; under
    weight norm each layer's g is passed as a 1 x n_out row, since |g_j| is the norm of unit
    j's effective weights (model.MLP.max_norm_views). Returns how many columns were rescaled."""
    rescaled = 0
    for W in weights:
        norms = np.empty(W.shape[1], W.dtype)
        kernels.column_norms(W, norms)  # one pass over W, no W-sized temporary
        over = norms > max_norm
        if over.any():
            W[:, over] *= (max_norm / norms[over]).astype(W.dtype)
            rescaled += int(over.sum())
    return rescaled
