"""The MLP's blocks: each a short chain of layers with its own forward and backward, the unit
the model loops over and the diagnostics report on.

A block is made in two steps, because the model lays out every weight matrix before any
other parameter: the constructor declares the arrays the block needs (`weight`,
`param_slots`, `buffer_slots`, full names as in model.npz), and `bind(arrays)` builds its
layers on views of the model's flat buffers once they exist.

What the model and the diagnostics use of a block:
  name               "hidden1", ..., "output"
  weight_slice       where its weight matrix (v under weight norm) lives in the flat buffers
  param_names        its parameters, weight matrix first, in flat-buffer order
  forward(x, train)  its output; backward(grad) its input gradient (None for the first block)
  output             what the last forward returned
  activation         its activation layer (None for the output block), and
  activation_output  what that activation gave last (the logits for the output block)

With `model.residual` every hidden block after the first is a ResidualBlock, x + f(x);
its activation_output stays f's activation, so the per-layer statistics describe the
block's own units, not the sum carried past it.

Every block's Dense is of the class the norm names (`Norm.DENSE`), the output block's too:
with weight norm its weight slot holds v (`hidden1.v`) and a scale g per unit follows
(`hidden1.g`), then the bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .layers import ACTIVATIONS, NORMS, Dense, Dropout, Scratch


@dataclass(frozen=True)
class Slot:
    """A named array a block needs: its full name, shape and initial value."""

    name: str
    shape: tuple[int, ...]
    fill: float = 0.0


class Arrays:
    """Named views into one flat parameter buffer and one gradient buffer of the same
    layout (weight slots first, then the other parameter slots, each in the given order),
    and the buffers by name."""

    def __init__(self, weights: list[Slot], params: list[Slot], buffers: list[Slot], dtype):
        self._offsets: dict[str, int] = {}
        self._shapes: dict[str, tuple[int, ...]] = {}
        size = 0
        for slot in (*weights, *params):
            self._offsets[slot.name], self._shapes[slot.name] = size, slot.shape
            size += int(np.prod(slot.shape))
        self.n_weights = sum(int(np.prod(s.shape)) for s in weights)
        self.params = np.zeros(size, dtype)
        self.grads = np.zeros(size, dtype)
        for slot in params:
            self.param(slot.name)[...] = slot.fill
        self.buffers = {s.name: np.full(s.shape, s.fill, dtype) for s in buffers}

    def names(self) -> list[str]:
        return list(self._offsets)

    def slice(self, name: str) -> slice:
        start = self._offsets[name]
        return slice(start, start + int(np.prod(self._shapes[name])))

    def param(self, name: str) -> np.ndarray:
        return self.params[self.slice(name)].reshape(self._shapes[name])

    def grad(self, name: str) -> np.ndarray:
        return self.grads[self.slice(name)].reshape(self._shapes[name])


class Block:
    """Dense only: the output block, and the base of the others. `dense` is the Dense class
    (the norm's DENSE: WeightNormDense under weight norm); its unit parameters come before
    the bias."""

    norm = activation = dropout = None  # the layers a subclass may add after `dense`

    def __init__(self, name: str, n_in: int, n_out: int, *, bias: bool = True,
                 dense: type[Dense] = Dense, input_grad: bool = True):
        self.name = name
        self._dense_cls = dense
        self.weight = Slot(f"{name}.{dense.WEIGHT}", (n_in, n_out))
        self._unit_slots = {k: Slot(f"{name}.{k}", (n_out,), v) for k, v in dense.UNIT_PARAMS.items()}
        self._bias = Slot(f"{name}.b", (n_out,)) if bias else None
        self.param_slots: list[Slot] = [*self._unit_slots.values(), *([self._bias] if bias else [])]
        self.buffer_slots: list[Slot] = []
        self.input_grad = input_grad
        self.output: np.ndarray | None = None

    @property
    def param_names(self) -> list[str]:
        return [self.weight.name] + [s.name for s in self.param_slots]

    def bind(self, arrays: Arrays) -> None:
        """Build the layers on views of `arrays` (called once, after the layout is made)."""
        w, b = self.weight.name, self._bias
        self.weight_slice = arrays.slice(w)
        self.dense = self._dense_cls.build(
            arrays.param(w), arrays.grad(w),
            {k: arrays.param(s.name) for k, s in self._unit_slots.items()},
            {k: arrays.grad(s.name) for k, s in self._unit_slots.items()},
            arrays.param(b.name) if b else None, arrays.grad(b.name) if b else None,
            input_grad=self.input_grad)
        self._layers = [self.dense]

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        for layer in self._layers:
            x = layer.forward(x, train)
        self.output = x
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        for layer in reversed(self._layers):
            grad = layer.backward(grad)
        return grad

    @property
    def activation_output(self) -> np.ndarray | None:
        return self.output


class HiddenBlock(Block):
    """Dense -> norm -> activation -> dropout, the norm and activation looked up in NORMS and
    ACTIVATIONS by the config's names. A norm that shifts (batch norm) replaces the Dense bias."""

    def __init__(self, name: str, n_in: int, n_out: int, cfg, *, dropout_rng: np.random.Generator,
                 input_grad: bool = True):
        self._norm = NORMS.get(cfg.norm)
        super().__init__(name, n_in, n_out, bias=not self._norm.REPLACES_BIAS, dense=self._norm.DENSE,
                         input_grad=input_grad)
        self._norm_slots = {k: Slot(f"{name}.{k}", (n_out,), v) for k, v in self._norm.PARAMS.items()}
        self._buffer_slots = {k: Slot(f"{name}.{k}", (n_out,), v) for k, v in self._norm.BUFFERS.items()}
        self.param_slots += self._norm_slots.values()
        self.buffer_slots += self._buffer_slots.values()
        self._cfg = cfg
        self.activation = ACTIVATIONS.get(cfg.activation)()
        self.dropout = Dropout(cfg.dropout, dropout_rng) if cfg.dropout > 0 else None

    def bind(self, arrays: Arrays) -> None:
        super().bind(arrays)
        self.norm = self._norm.build({k: arrays.param(s.name) for k, s in self._norm_slots.items()},
                                     {k: arrays.grad(s.name) for k, s in self._norm_slots.items()},
                                     {k: arrays.buffers[s.name] for k, s in self._buffer_slots.items()},
                                     self._cfg)
        self._layers = [x for x in (self.dense, self.norm, self.activation, self.dropout) if x is not None]
        # Without a norm the activation adds the Dense bias and sums its gradient, in the
        # pass it makes anyway (Dense.bias_in_activation).
        self.dense.bias_in_activation = self.norm is None and self.dense.b is not None

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        z = self.dense.forward(x, train)
        if self.norm is not None:
            z = self.norm.forward(z, train)
        x = self.activation.forward(z, train, self.dense.b if self.dense.bias_in_activation else None)
        if self.dropout is not None:
            x = self.dropout.forward(x, train)
        self.output = x
        return x

    def backward(self, grad: np.ndarray) -> np.ndarray | None:
        """The activation's backward takes dropout's mask and the bias gradient with it."""
        mask = self.dropout.mask if self.dropout is not None else None
        grad = self.activation.backward(grad, mask, self.dense.gb if self.dense.bias_in_activation else None)
        if self.norm is not None:
            grad = self.norm.backward(grad)
        return self.dense.backward(grad)

    @property
    def activation_output(self) -> np.ndarray | None:
        return self.activation.output


class ResidualBlock(HiddenBlock):
    """An identity skip around a hidden block: y = x + f(x), f being HiddenBlock's
    Dense -> norm -> activation -> dropout, so n_in must equal n_out. Backward:
    dx = g + df/dx^T g, the gradient reaching the input both around and through f.
    Adds no parameters; `output` is the sum, `activation_output` still f's activation."""

    def __init__(self, name: str, n_in: int, n_out: int, cfg, *, dropout_rng: np.random.Generator,
                 input_grad: bool = True):
        if n_in != n_out:
            raise ValueError(f"{name}: a residual block needs n_in == n_out, got {n_in} and {n_out}")
        super().__init__(name, n_in, n_out, cfg, dropout_rng=dropout_rng, input_grad=input_grad)
        self._scratch = Scratch()

    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        branch = super().forward(x, train)
        self.output = np.add(x, branch, out=self._scratch.get("out", x.shape, branch.dtype))
        return self.output

    def backward(self, grad: np.ndarray) -> np.ndarray:
        branch = super().backward(grad)
        return np.add(grad, branch, out=self._scratch.get("dx", grad.shape, grad.dtype))
