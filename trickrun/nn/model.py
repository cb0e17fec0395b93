"""The MLP assembled from the config, with parameters, gradients and buffers kept apart.

All parameters live in one contiguous array (`params`) and all gradients in another of the
same layout (`grads`); each layer holds views into them. The optimizer therefore makes a few
large in-place passes per step instead of many small ones. The weight matrices come first,
so `params[:n_weights]` is exactly what L1/L2 penalties and decoupled weight decay act on;
biases and normalization scales and shifts follow and are never decayed.

Layer order per hidden block, as the lesson puts it: Dense -> norm -> activation -> dropout.
With batch norm the Dense layer has no bias (batch norm's shift beta replaces it).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field

import numpy as np

from ..config import ModelConfig
from .initializers import INITIALIZERS
from .layers import ACTIVATIONS, BatchNorm, Dense, Dropout, LayerNorm


@dataclass
class Block:
    """One Dense layer and what follows it; the unit of per-layer diagnostics."""

    name: str
    dense: Dense
    weight_slice: slice  # where this block's W lives in the flat buffers
    norm: BatchNorm | LayerNorm | None = None
    activation: object | None = None
    dropout: Dropout | None = None

    def layers(self) -> list:
        return [x for x in (self.dense, self.norm, self.activation, self.dropout) if x is not None]


@dataclass
class _Layout:
    """Offsets of named parameter arrays in the flat buffer."""

    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)
    offsets: dict[str, int] = field(default_factory=dict)
    size: int = 0

    def add(self, name: str, shape: tuple[int, ...]) -> None:
        self.shapes[name], self.offsets[name] = shape, self.size
        self.size += int(np.prod(shape))

    def view(self, flat: np.ndarray, name: str) -> np.ndarray:
        start = self.offsets[name]
        return flat[start : start + int(np.prod(self.shapes[name]))].reshape(self.shapes[name])


class MLP:
    def __init__(self, n_in: int, n_out: int, cfg: ModelConfig, *, init_rng: np.random.Generator,
                 dropout_rng: np.random.Generator, dtype=np.float32):
        self.cfg, self.n_in, self.n_out, self.dtype = cfg, n_in, n_out, np.dtype(dtype)
        widths = [n_in, *cfg.hidden, n_out]
        names = [f"hidden{i + 1}" for i in range(len(cfg.hidden))] + ["output"]
        hidden = set(names[:-1])
        use_bias = {n: not (n in hidden and cfg.norm == "batch") for n in names}

        layout = _Layout()
        for name, a, b in zip(names, widths[:-1], widths[1:]):
            layout.add(f"{name}.W", (a, b))
        self.n_weights = layout.size
        for name, b in zip(names, widths[1:]):
            if use_bias[name]:
                layout.add(f"{name}.b", (b,))
            if name in hidden and cfg.norm != "none":
                layout.add(f"{name}.gamma", (b,))
                layout.add(f"{name}.beta", (b,))
        self._layout = layout
        self.params = np.zeros(layout.size, self.dtype)
        self.grads = np.zeros(layout.size, self.dtype)
        self.buffers: dict[str, np.ndarray] = {}

        initializer = INITIALIZERS.get(cfg.init)
        P = lambda n: layout.view(self.params, n)  # noqa: E731
        G = lambda n: layout.view(self.grads, n)  # noqa: E731
        self.blocks: list[Block] = []
        for i, name in enumerate(names):
            P(f"{name}.W")[...] = initializer(layout.shapes[f"{name}.W"], init_rng)
            start = layout.offsets[f"{name}.W"]
            dense = Dense(
                P(f"{name}.W"), G(f"{name}.W"),
                P(f"{name}.b") if use_bias[name] else None,
                G(f"{name}.b") if use_bias[name] else None,
                input_grad=i > 0,
            )
            block = Block(name, dense, slice(start, start + int(np.prod(layout.shapes[f"{name}.W"]))))
            if name in hidden:
                if cfg.norm != "none":
                    P(f"{name}.gamma")[...] = 1.0
                    affine = (P(f"{name}.gamma"), G(f"{name}.gamma"), P(f"{name}.beta"), G(f"{name}.beta"))
                if cfg.norm == "batch":
                    width = widths[i + 1]
                    self.buffers[f"{name}.running_mean"] = np.zeros(width, self.dtype)
                    self.buffers[f"{name}.running_var"] = np.ones(width, self.dtype)
                    block.norm = BatchNorm(*affine, self.buffers[f"{name}.running_mean"],
                                           self.buffers[f"{name}.running_var"], momentum=cfg.bn_momentum)
                elif cfg.norm == "layer":
                    block.norm = LayerNorm(*affine)
                block.activation = ACTIVATIONS[cfg.activation]()
                if cfg.dropout > 0:
                    block.dropout = Dropout(cfg.dropout, dropout_rng)
            self.blocks.append(block)
        self._layers = [layer for block in self.blocks for layer in block.layers()]

    # --- computation ---------------------------------------------------------------------
    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        for layer in self._layers:
            x = layer.forward(x, train)
        return x

    def backward(self, grad_logits: np.ndarray) -> None:
        """Fill `self.grads` from dLoss/dlogits (every gradient entry is overwritten)."""
        grad = grad_logits
        for layer in reversed(self._layers):
            grad = layer.backward(grad)

    # --- named access, for saving, checkpoints and tests -------------------------------
    def param_names(self) -> list[str]:
        return list(self._layout.shapes)

    def param(self, name: str) -> np.ndarray:
        return self._layout.view(self.params, name)

    def grad(self, name: str) -> np.ndarray:
        return self._layout.view(self.grads, name)

    def state(self) -> dict[str, np.ndarray]:
        """Copies of every parameter and buffer by name (what model.npz stores)."""
        out = {n: self.param(n).copy() for n in self.param_names()}
        out.update({n: b.copy() for n, b in self.buffers.items()})
        return out

    def load_state(self, state: dict[str, np.ndarray]) -> None:
        for name in self.param_names():
            self.param(name)[...] = state[name]
        for name, buf in self.buffers.items():
            buf[...] = state[name]

    def flat_state(self) -> np.ndarray:
        """Parameters and buffers in one array: a cheap snapshot for best-weights keeping."""
        return np.concatenate([self.params, *self.buffers.values()]) if self.buffers else self.params.copy()

    def load_flat_state(self, flat: np.ndarray) -> None:
        n = self.params.size
        self.params[...] = flat[:n]
        for buf in self.buffers.values():
            buf[...] = flat[n : n + buf.size]
            n += buf.size


def model_arrays(model: MLP) -> dict[str, np.ndarray]:
    """What model.npz holds: every parameter and buffer by name, and the architecture."""
    arrays = model.state()
    meta = {"n_in": model.n_in, "n_out": model.n_out, "dtype": model.dtype.name,
            "model": dataclasses.asdict(model.cfg)}
    arrays["__meta__"] = np.array(json.dumps(meta))
    return arrays


def load_model(path) -> tuple[MLP, dict]:
    """Rebuild an MLP from a model.npz written by trickrun; returns (model, meta)."""
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["__meta__"]))
        cfg = ModelConfig(**meta["model"])
        rng = np.random.default_rng(0)
        model = MLP(meta["n_in"], meta["n_out"], cfg, init_rng=rng, dropout_rng=rng,
                    dtype=meta.get("dtype", "float32"))
        model.load_state({k: npz[k] for k in npz.files if k != "__meta__"})
    return model, meta
