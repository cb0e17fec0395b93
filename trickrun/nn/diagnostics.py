"""Per-layer numbers that show vanishing and exploding gradients, dead and saturated units.

For each block (hidden1, hidden2, ..., output), at the end of every epoch:
  act_mean, act_std   of the block's activation output (the logits for `output`) on a fixed
                      probe batch of validation examples, in evaluation mode
  dead_frac           ReLU and leaky ReLU: fraction of units never positive on the probe batch
  saturated_frac      tanh and sigmoid: fraction of activations saturated (|tanh| > 0.99,
                      sigmoid < 0.01 or > 0.99)
  weight_norm         L2 norm of the block's weight matrix
  grad_norm           mean over the epoch's steps of the L2 norm of its weight gradient
                      (before clipping)
  update_ratio        ||delta W|| / ||W|| of the epoch's last step
With weight norm the three weight numbers are those of the trained matrix v, the one the
optimizer steps (the effective weights W = g v / ||v|| have norm ||g||).
"""

from __future__ import annotations

import math

import numpy as np

from .model import MLP


def _norm(x: np.ndarray) -> float:
    flat = x.reshape(-1)
    with np.errstate(over="ignore", invalid="ignore"):
        return math.sqrt(float(np.dot(flat, flat)))


def layer_stats(model: MLP, probe_x: np.ndarray, grad_norm_means: list[float],
                weights_before_last_step: np.ndarray | None) -> list[dict]:
    model.forward(probe_x, train=False)
    out = []
    for block, grad_norm in zip(model.blocks, grad_norm_means):
        act = block.activation_output
        dead = saturated = None
        if block.activation is not None:
            if block.activation.saturating:
                saturated = float(np.mean(block.activation.saturated(act)))
            else:
                dead = float(np.mean(~np.any(act > 0, axis=0)))
        weights = model.params[block.weight_slice]
        weight_norm = _norm(weights)
        ratio = None
        if weights_before_last_step is not None:
            before = weights_before_last_step[block.weight_slice]
            before_norm = _norm(before)
            ratio = _norm(weights - before) / before_norm if before_norm > 0 else None
        out.append({
            "name": block.name,
            "act_mean": float(act.mean(dtype=np.float64)),
            "act_std": float(act.std(dtype=np.float64)),
            "dead_frac": dead,
            "saturated_frac": saturated,
            "weight_norm": weight_norm,
            "grad_norm": grad_norm,
            "update_ratio": ratio,
        })
    return out


def first_nonfinite_layer(model: MLP, x: np.ndarray) -> tuple[str, str]:
    """Where a non-finite value shows first: (block name, "weights" | "activations").

    Parameters are checked first in block order; if all are finite, the batch is run forward
    again block by block (training mode, as the step saw it) to find the first non-finite output.
    """
    for block in model.blocks:
        if not all(np.all(np.isfinite(model.param(name))) for name in block.param_names):
            return block.name, "weights"
    with np.errstate(all="ignore"):
        h = x
        for block in model.blocks:
            h = block.forward(h, True)
            if not np.all(np.isfinite(h)):
                return block.name, "activations"
    return model.blocks[-1].name, "loss"
