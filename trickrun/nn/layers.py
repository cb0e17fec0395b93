"""Layers with explicit forward and backward passes, each backward beside its forward.

Conventions shared by every layer:
- `forward(x, train)` returns the output; `backward(grad)` takes dLoss/dOutput and returns
  dLoss/dInput (or None where nobody needs it), writing parameter gradients into the
  gradient views the layer was built with.
- Parameters and their gradients are views into the model's flat buffers (see model.py);
  running statistics are buffers, separate from parameters; `train` is an argument.
- Outputs are written into per-layer scratch arrays reused across batches of the same
  shape, so a returned array is valid until the same layer is called again. No layer writes
  into an array it was given.
- Activations and norms are registered by name (ACTIVATIONS, NORMS: the config's
  model.activation and model.norm); a norm class declares its arrays (see `Norm`), and
  the affine map its blocks use (`Norm.DENSE`: weight norm's WeightNormDense, else Dense).
- `backward` after `forward(x, train=False)` is the gradient of the evaluation-mode map.
- Weight norm (WeightNormDense) trains v and g in place of W. v takes the weight slot, so
  weight decay and the L1/L2 penalties act on v only and g, a scale, is never decayed;
  max-norm caps the effective weights' column norms, which are |g| (`max_norm_view`); clipping
  acts on the gradients of both.
"""

from __future__ import annotations

import math

import numpy as np

from ..registry import Registry
from .kernels import layers as K
from .kernels.optim import column_norms
from .kernels.pcg64 import RawWords

ACTIVATIONS: Registry = Registry("activation")
NORMS: Registry = Registry("norm")


class Scratch:
    """Reusable output arrays, one per (purpose, shape): no allocation per batch."""

    def __init__(self) -> None:
        self._arrays: dict[tuple, np.ndarray] = {}

    def get(self, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        # Keyed on the dtype as given: np.dtype(dtype) per call cost more than the dictionary
        # lookup itself, and a layer asks some 30 times a batch. (np.float32 and
        # np.dtype("float32") would key two arrays; each caller passes one form.)
        full = (key, shape, dtype)
        arr = self._arrays.get(full)
        if arr is None:
            arr = self._arrays[full] = np.empty(shape, dtype)
        return arr

    def zeros(self, key: str, shape: tuple[int, ...], dtype) -> np.ndarray:
        """A read-only array of zeros, made once."""
        full = ("zeros:" + key, shape, np.dtype(dtype).str)
        arr = self._arrays.get(full)
        if arr is None:
            arr = self._arrays[full] = np.zeros(shape, dtype)
            arr.flags.writeable = False
        return arr


class Dense:
    """y = x W + b, with W of shape (n_in, n_out).

    Backward: dW = x^T g, db = sum over the batch of g, dx = g W^T. The input gradient is
    skipped for the first layer (`input_grad=False`): nothing upstream needs it.
    With `bias_in_activation` the block's activation adds b in its forward and fills gb in
    its backward (see Activation): one pass over the output instead of two.

    What a block reads to lay out a Dense's arrays (WeightNormDense declares others):
    `WEIGHT` the weight matrix's short name, `UNIT_PARAMS` further parameters, one value per
    output unit (short name -> initial value), `FLOATS_PER_WEIGHT` the floats the layer keeps
    per weight besides the parameter and its gradient (memory.py's estimate).
    """

    WEIGHT = "W"
    UNIT_PARAMS: dict[str, float] = {}
    FLOATS_PER_WEIGHT = 0

    @classmethod
    def build(cls, W, gW, params: dict, grads: dict, b=None, gb=None, *, input_grad: bool = True) -> "Dense":
        """The layer on views of the flat buffers; `params`/`grads` hold UNIT_PARAMS by short name."""
        return cls(W, gW, b, gb, input_grad=input_grad)

    def init_params(self) -> None:
        """Set the parameters that start from the initialized weight (a plain Dense has none)."""

    def max_norm_view(self) -> np.ndarray:
        """What max-norm rescales column by column: column j's L2 norm is unit j's
        incoming-weight norm. Here W itself."""
        return self.W

    def __init__(self, W, gW, b=None, gb=None, *, input_grad: bool = True):
        self.W, self.gW, self.b, self.gb = W, gW, b, gb
        self.input_grad = input_grad
        self.bias_in_activation = False
        self._scratch = Scratch()
        self._x: np.ndarray | None = None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self._x = x
        out = self._scratch.get("out", (x.shape[0], self.W.shape[1]), self.W.dtype)
        np.matmul(x, self.W, out=out)
        if self.b is not None and not self.bias_in_activation:
            K.add_bias(out, self.b)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        np.matmul(self._x.T, grad, out=self.gW)
        if self.gb is not None and not self.bias_in_activation:
            K.column_sums(grad, self.gb)
        if not self.input_grad:
            return None
        dx = self._scratch.get("dx", self._x.shape, grad.dtype)
        return np.matmul(grad, self.W.T, out=dx)


class WeightNormDense(Dense):
    """Weight normalization (Salimans & Kingma 2016): y = x W + b with unit j's incoming
    weights W[:, j] = g_j v[:, j] / ||v[:, j]||, so ||W[:, j]|| = |g_j|. The trained
    parameters are v (n_in, n_out, in the weight slot) and g (n_out,); W is recomputed from
    them at every forward, in training and evaluation alike. This is PyTorch's
    `weight_norm(nn.Linear(n_in, n_out))` with its default dim=0: torch's weight is
    (n_out, n_in), normalized row by row, ours its transpose, normalized column by column.

    g starts at ||v|| of the initialized weights (`init_params`, PyTorch's convention, no
    data-dependent init): W then equals v bit for bit, and the layer computes what a plain
    Dense of the same weights does.

    Forward: n_j = ||v[:, j]||, W = v * (g / n) column by column, then Dense's product.
    Backward: Dense's gives dW (and db, dx = grad W^T); with s_j = sum_i dW[i, j] v[i, j],
      dg_j = s_j / n_j,   dv[:, j] = (g_j / n_j) (dW[:, j] - v[:, j] s_j / n_j^2).
    A column of v at exactly zero has no direction: its W is NaN, and the run diverges.
    """

    WEIGHT = "v"
    UNIT_PARAMS = {"g": 1.0}  # placeholder until init_params sets g = ||v||
    FLOATS_PER_WEIGHT = 2  # W and dW; the per-unit norms, scales and sums (3 a unit) fit memory.py's margin

    def __init__(self, v, gv, g, gg, b=None, gb=None, *, input_grad: bool = True):
        super().__init__(np.empty_like(v), np.empty_like(v), b, gb, input_grad=input_grad)
        self.v, self.gv, self.g, self.gg = v, gv, g, gg
        self._norms = np.empty_like(g)  # n: ||v[:, j]|| of the last forward
        self._scale = np.empty_like(g)  # g / n
        self._sums = np.empty_like(g)  # s, then s / n^2

    @classmethod
    def build(cls, W, gW, params: dict, grads: dict, b=None, gb=None, *,
              input_grad: bool = True) -> "WeightNormDense":
        return cls(W, gW, params["g"], grads["g"], b, gb, input_grad=input_grad)

    def init_params(self) -> None:
        """g <- ||v||, column by column (the same sum as forward's, so g / n is exactly 1)."""
        column_norms(self.v, self.g)

    def max_norm_view(self) -> np.ndarray:
        """g as a 1 x n_out row: its column norms |g_j| are the norms of the effective
        weights, so max-norm caps ||W[:, j]|| at c by setting g_j to sign(g_j) c, v untouched."""
        return self.g.reshape(1, -1)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        column_norms(self.v, self._norms)
        with np.errstate(divide="ignore", invalid="ignore"):  # a zero column: NaN, which the loop reports
            np.divide(self.g, self._norms, out=self._scale)
            np.multiply(self.v, self._scale, out=self.W)
        return super().forward(x, train)

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        dx = super().backward(grad)  # fills self.gW with dL/dW, and the bias gradient
        s = np.einsum("ij,ij->j", self.gW, self.v, out=self._sums)
        np.divide(s, self._norms, out=self.gg)
        s /= self._norms
        s /= self._norms
        np.multiply(self.v, s, out=self.gv)  # dv = (g / n) (dW - v s / n^2)
        np.subtract(self.gW, self.gv, out=self.gv)
        self.gv *= self._scale
        return dx


class Activation:
    """An elementwise nonlinearity; backward uses the cached `output` of forward.
    `saturating` tells the diagnostics which statistic applies: saturated units (tanh,
    sigmoid) or dead units (the ReLU family).

    A block fuses its neighbours in: `forward(x, train, bias)` computes f(x + bias), a
    Dense's bias added in the same pass; `backward(grad, mask, bias_grad)` multiplies grad
    by dropout's `mask` first and writes the column sums of the result (that bias's
    gradient) into `bias_grad`, all in one pass (kernels.layers.activation_backward)."""

    saturating = False
    KIND: int  # the kernels' code for this activation
    slope = 0.0

    def __init__(self) -> None:
        self._scratch = Scratch()
        self.output: np.ndarray | None = None

    def backward(self, grad: np.ndarray, mask: np.ndarray | None = None,
                 bias_grad: np.ndarray | None = None) -> np.ndarray:
        dx = self._scratch.get("dx", grad.shape, grad.dtype)
        no_mask = self._scratch.get("none", (0, 0), grad.dtype)  # empty: the kernel skips it
        no_sums = self._scratch.get("none", (0,), grad.dtype)
        K.activation_backward(grad, self.output, no_mask if mask is None else mask, self.KIND,
                              self.slope, dx, no_sums if bias_grad is None else bias_grad)
        return dx


class _ReLUFamily(Activation):
    def forward(self, x: np.ndarray, train: bool, bias: np.ndarray | None = None) -> np.ndarray:
        if bias is None:
            bias = self._scratch.zeros("bias", x.shape[1:], x.dtype)
        self.output = self._scratch.get("out", x.shape, x.dtype)
        K.relu_forward(x, bias, self.slope, self.output)
        return self.output


@ACTIVATIONS.register("relu")
class ReLU(_ReLUFamily):
    """y = max(x, 0); dy/dx = 1 where y > 0, else 0."""

    KIND = K.RELU


@ACTIVATIONS.register("leaky_relu")
class LeakyReLU(_ReLUFamily):
    """y = x for x > 0, slope * x otherwise (slope 0.01); dy/dx = 1 or slope."""

    KIND = K.LEAKY_RELU

    def __init__(self, slope: float = 0.01) -> None:
        super().__init__()
        self.slope = slope


def _biased(x: np.ndarray, bias: np.ndarray | None, out: np.ndarray) -> np.ndarray:
    """x + bias into `out` (x itself without a bias)."""
    return x if bias is None else np.add(x, bias, out=out)


@ACTIVATIONS.register("tanh")
class Tanh(Activation):
    """y = tanh(x); dy/dx = 1 - y^2. Saturated where |y| > 0.99.

    The forward stays NumPy's (its SIMD tanh; numba's is libm's, 25x slower here)."""

    saturating = True
    KIND = K.TANH

    def forward(self, x: np.ndarray, train: bool, bias: np.ndarray | None = None) -> np.ndarray:
        out = self._scratch.get("out", x.shape, x.dtype)
        self.output = np.tanh(_biased(x, bias, out), out=out)
        return self.output

    @staticmethod
    def saturated(output: np.ndarray) -> np.ndarray:
        return np.abs(output) > 0.99


@ACTIVATIONS.register("sigmoid")
class Sigmoid(Activation):
    """y = 1 / (1 + exp(-x)); dy/dx = y (1 - y). Saturated where y < 0.01 or y > 0.99.

    The forward stays NumPy's (its SIMD exp; numba's is libm's, 2.5x slower here)."""

    saturating = True
    KIND = K.SIGMOID

    def forward(self, x: np.ndarray, train: bool, bias: np.ndarray | None = None) -> np.ndarray:
        out = self._scratch.get("out", x.shape, x.dtype)
        np.negative(_biased(x, bias, out), out=out)
        with np.errstate(over="ignore"):  # exp(-x) -> inf gives y = 0, which is right
            np.exp(out, out=out)
        out += 1
        self.output = np.reciprocal(out, out=out)
        return self.output

    @staticmethod
    def saturated(output: np.ndarray) -> np.ndarray:
        return (output < 0.01) | (output > 0.99)


class Norm:
    """What a registered norm declares, so a block can lay out its arrays before building it:
    `PARAMS` and `BUFFERS` map short names to initial values (one value per feature, in
    flat-buffer order), `REPLACES_BIAS` says the norm's shift makes the preceding Dense
    bias redundant. `build` receives dicts of views by short name and the model config.
    `FLOATS_PER_UNIT` is (training, evaluation): the floats the built layer keeps per example
    and unit (outputs, gradients, scratch), which memory.py's estimate adds up.
    `DENSE` is the affine map of every block, the output block's included: a norm that
    reparameterizes the weights (weight norm) names its own Dense class here, which declares
    its arrays in turn (see Dense)."""

    PARAMS: dict[str, float] = {}
    BUFFERS: dict[str, float] = {}
    REPLACES_BIAS = False
    FLOATS_PER_UNIT = (0, 0)
    DENSE: type[Dense] = Dense

    @classmethod
    def build(cls, params: dict, grads: dict, buffers: dict, cfg):
        raise NotImplementedError


@NORMS.register("none")
class NoNorm(Norm):
    """No normalization: no arrays, and `build` gives no layer."""

    @classmethod
    def build(cls, params: dict, grads: dict, buffers: dict, cfg) -> None:
        return None


@NORMS.register("batch")
class BatchNorm(Norm):
    """Batch normalization over the batch axis, between the affine map and the activation:
    xhat = (x - mean_B) / sqrt(var_B + eps), y = gamma * xhat + beta, with the batch's mean and
    biased variance in training and the running statistics in evaluation.

    Running statistics follow running = momentum * running + (1 - momentum) * batch (Keras's
    convention; PyTorch's momentum is 1 minus this).
    Backward (training): dx = (1/N) / sqrt(var+eps) * (N dxhat - sum dxhat - xhat sum(dxhat xhat)),
    with dxhat = g * gamma. Backward (evaluation): the map is affine in x, so
    dx = g * gamma / sqrt(running_var + eps). Both: dgamma = sum(g xhat), dbeta = sum(g).
    """

    PARAMS = {"gamma": 1.0, "beta": 0.0}
    BUFFERS = {"running_mean": 0.0, "running_var": 1.0}
    REPLACES_BIAS = True
    FLOATS_PER_UNIT = (4, 2)  # x-hat and output; in training also the gradient and its scratch

    def __init__(self, gamma, g_gamma, beta, g_beta, running_mean, running_var,
                 *, momentum: float = 0.9, eps: float = 1e-5):
        self.gamma, self.g_gamma, self.beta, self.g_beta = gamma, g_gamma, beta, g_beta
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum, self.eps = momentum, eps
        self._scratch = Scratch()
        self._train = True

    @classmethod
    def build(cls, params: dict, grads: dict, buffers: dict, cfg) -> "BatchNorm":
        return cls(params["gamma"], grads["gamma"], params["beta"], grads["beta"],
                   buffers["running_mean"], buffers["running_var"], momentum=cfg.bn_momentum)

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        """One kernel (kernels.layers.batchnorm_forward); the batch statistics are summed row
        by row as NumPy's x.mean(0) and x.var(0) do."""
        xhat = self._scratch.get("xhat", x.shape, x.dtype)
        out = self._scratch.get("out", x.shape, x.dtype)
        if train:
            mean = self._scratch.get("mean", x.shape[1:], x.dtype)
            var = self._scratch.get("var", x.shape[1:], x.dtype)
        else:
            mean, var = self.running_mean, self.running_var
        self._inv_std = self._scratch.get("inv_std", x.shape[1:], x.dtype)
        K.batchnorm_forward(x, self.gamma, self.beta, mean, var, train, self.momentum, self.eps,
                            self.running_mean, self.running_var, self._inv_std, xhat, out)
        self._train, self._xhat = train, xhat
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx = self._scratch.get("dx", grad.shape, grad.dtype)
        K.batchnorm_backward(grad, self._xhat, self.gamma, self._inv_std, self._train,
                             self.g_gamma, self.g_beta, dx)
        return dx


@NORMS.register("layer")
class LayerNorm(Norm):
    """Layer normalization over the features of each example, in batch norm's place:
    xhat = (x - mean_row) / sqrt(var_row + eps), y = gamma * xhat + beta; the same in
    training and evaluation (no running statistics).

    Backward: dx = (1/F) / sqrt(var+eps) * (F dxhat - sum_row dxhat - xhat sum_row(dxhat xhat)).
    """

    PARAMS = {"gamma": 1.0, "beta": 0.0}
    FLOATS_PER_UNIT = (5, 3)  # batch norm's, and one more for the row statistics' temporaries

    def __init__(self, gamma, g_gamma, beta, g_beta, *, eps: float = 1e-5):
        self.gamma, self.g_gamma, self.beta, self.g_beta = gamma, g_gamma, beta, g_beta
        self.eps = eps
        self._scratch = Scratch()

    @classmethod
    def build(cls, params: dict, grads: dict, buffers: dict, cfg) -> "LayerNorm":
        return cls(params["gamma"], grads["gamma"], params["beta"], grads["beta"])

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        self._inv_std = self._scratch.get("inv_std", x.shape[:1], x.dtype)
        self._xhat = self._scratch.get("xhat", x.shape, x.dtype)
        out = self._scratch.get("out", x.shape, x.dtype)
        K.layernorm_forward(x, self.gamma, self.beta, self.eps, self._inv_std, self._xhat, out)
        return out

    def backward(self, grad: np.ndarray) -> np.ndarray:
        dx = self._scratch.get("dx", grad.shape, grad.dtype)
        K.layernorm_backward(grad, self._xhat, self.gamma, self._inv_std, self.g_gamma, self.g_beta, dx)
        return dx


@NORMS.register("weight")
class WeightNorm(Norm):
    """Weight normalization: every Dense layer, the output layer's included, is a
    WeightNormDense (w = g v / ||v|| per unit); no layer sits between the Dense and the
    activation, and the Dense keeps its bias."""

    DENSE = WeightNormDense

    @classmethod
    def build(cls, params: dict, grads: dict, buffers: dict, cfg) -> None:
        return None


# Bit generators whose raw draws (`random_raw`) carry 64 random bits each.
_RAW_64_BIT = (np.random.PCG64, np.random.PCG64DXSM, np.random.SFC64, np.random.Philox)


class Dropout:
    """Inverted dropout: in training each unit is kept with probability 1 - rate and scaled
    by 1 / (1 - rate), so evaluation is the identity. The mask comes from `rng`: a unit is
    dropped when its uniform 32-bit word from `rng` is below ceil(rate * 2^32), so the drop
    probability is `rate` to within 2^-32."""

    def __init__(self, rate: float, rng: np.random.Generator):
        self.rate, self.rng = rate, rng
        self._scratch = Scratch()
        self._mask: np.ndarray | None = None
        self._raw_words: RawWords | None = None  # made at the first draw from rng's PCG64

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if not train or self.rate == 0:
            self._mask = None
            return x
        mask = self._scratch.get("mask", x.shape, x.dtype)
        out = self._scratch.get("out", x.shape, x.dtype)
        threshold = np.uint32(min(math.ceil(self.rate * 2.0**32), 2**32 - 1))
        # mask = (words >= threshold) * (1 / (1 - rate)) in x's dtype, out = x * mask
        K.dropout_forward(x, self._words(x.shape), threshold, 1.0 / (1.0 - self.rate), mask, out)
        self._mask = mask
        return out

    @property
    def mask(self) -> np.ndarray | None:
        """The last training forward's mask (0 or 1 / (1 - rate) per unit); None after an
        evaluation forward, which is the identity."""
        return self._mask

    def _words(self, shape: tuple[int, ...]) -> np.ndarray:
        """Uniform uint32 words from `rng`, one per unit. Raw 64-bit draws split in two take
        half the time of rng.random(dtype=float32), which spends a call per 32-bit word;
        PCG64's (every run's: default_rng) are drawn by kernels.pcg64, twice as fast again at
        128 x 512 units, into a buffer reused batch after batch: the same words as random_raw's."""
        n = math.prod(shape)
        bits = self.rng.bit_generator
        if type(bits) is np.random.PCG64:
            if self._raw_words is None or self._raw_words.bit_generator is not bits:  # rng replaced
                self._raw_words = RawWords(bits)
            raw = self._scratch.get("raw", (-(-n // 2),), np.uint64)
            self._raw_words.fill(raw)
            words = raw.view(np.uint32)[:n]
        elif isinstance(bits, _RAW_64_BIT):
            words = bits.random_raw(-(-n // 2)).view(np.uint32)[:n]
        else:  # e.g. MT19937, whose raw draws hold 32 bits
            words = self.rng.integers(0, 2**32, size=n, dtype=np.uint32)
        return words.reshape(shape)

    def backward(self, grad: np.ndarray) -> np.ndarray:
        if self._mask is None:
            return grad
        return np.multiply(grad, self._mask, out=self._scratch.get("dx", grad.shape, grad.dtype))
