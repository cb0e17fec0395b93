"""The MLP assembled from the config, with parameters, gradients and buffers kept apart.

All parameters live in one contiguous array (`params`) and all gradients in another of the
same layout (`grads`); each layer holds views into them. The optimizer therefore makes a few
large in-place passes per step instead of many small ones. The weight matrices come first,
so `params[:n_weights]` is exactly what L1/L2 penalties and decoupled weight decay act on;
biases and normalization scales and shifts follow and are never decayed. With weight norm
the weight slots hold v, and each layer's g (one per unit) sits with the biases: penalties
and decay act on v, never on g, and max-norm caps |g| (see nn/layers.WeightNormDense).

The network is a list of blocks (blocks.py): hidden blocks, as the lesson puts it
Dense -> norm -> activation -> dropout, then the output block (Dense only). With
`model.input_dropout` the input pixels pass a dropout layer first (Srivastava et al. 2014
drop 20% of them); it needs no backward, as nothing learns below it. With batch norm
the hidden Dense layers have no bias (batch norm's shift beta replaces it). With
`model.residual` every hidden block after the first adds its input to its output,
h <- h + block(h) (the first changes the width, so it has no skip); the parameters are the
same as without it.
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np

from ..config import ModelConfig
from ..rundir.format import layer_names
from .blocks import Arrays, Block, HiddenBlock, ResidualBlock
from .initializers import INITIALIZERS
from .layers import NORMS, Dropout


class MLP:
    def __init__(self, n_in: int, n_out: int, cfg: ModelConfig, *, init_rng: np.random.Generator,
                 dropout_rng: np.random.Generator, dtype=np.float32):
        self.cfg, self.n_in, self.n_out, self.dtype = cfg, n_in, n_out, np.dtype(dtype)
        widths = [n_in, *cfg.hidden, n_out]
        *hidden, output = layer_names(len(cfg.hidden))
        self.blocks: list[Block] = [
            (ResidualBlock if cfg.residual and i > 0 else HiddenBlock)(
                name, a, b, cfg, dropout_rng=dropout_rng, input_grad=i > 0)
            for i, (name, a, b) in enumerate(zip(hidden, widths, widths[1:]))
        ]
        self.blocks.append(Block(output, widths[-2], n_out, dense=NORMS.get(cfg.norm).DENSE,
                                 input_grad=bool(hidden)))
        # drawn from the same stream before the hidden masks; absent at rate 0, so the
        # stream, and every run without it, is unchanged
        self.input_dropout = Dropout(cfg.input_dropout, dropout_rng) if cfg.input_dropout > 0 else None

        self._arrays = arrays = Arrays([b.weight for b in self.blocks],
                                       [s for b in self.blocks for s in b.param_slots],
                                       [s for b in self.blocks for s in b.buffer_slots], self.dtype)
        self.params, self.grads, self.buffers = arrays.params, arrays.grads, arrays.buffers
        self.n_weights = arrays.n_weights
        initializer = INITIALIZERS.get(cfg.init)
        for block in self.blocks:
            arrays.param(block.weight.name)[...] = initializer(block.weight.shape, init_rng)
            block.bind(arrays)
            block.dense.init_params()  # weight norm: g <- ||v||, the plain layer's function

    # --- computation ---------------------------------------------------------------------
    def forward(self, x: np.ndarray, train: bool) -> np.ndarray:
        if self.input_dropout is not None:
            x = self.input_dropout.forward(x, train)
        for block in self.blocks:
            x = block.forward(x, train)
        return x

    def backward(self, grad_logits: np.ndarray) -> None:
        """Fill `self.grads` from dLoss/dlogits (every gradient entry is overwritten)."""
        grad = grad_logits
        for block in reversed(self.blocks):
            grad = block.backward(grad)

    # --- named access, for saving, checkpoints and tests -------------------------------
    def weight_matrices(self) -> list[np.ndarray]:
        """Each block's weight matrix, (n_in, n_out), as a view of `params` (v under weight norm)."""
        return [self.param(block.weight.name) for block in self.blocks]

    def max_norm_views(self) -> list[np.ndarray]:
        """What max-norm rescales column by column, as views of `params`: each W, or under
        weight norm each g as a row (the effective weights' column norms are |g|)."""
        return [block.dense.max_norm_view() for block in self.blocks]

    def param_names(self) -> list[str]:
        return self._arrays.names()

    def param(self, name: str) -> np.ndarray:
        return self._arrays.param(name)

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
