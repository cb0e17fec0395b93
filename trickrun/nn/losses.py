"""Softmax cross-entropy, fused and numerically stable, the L1/L2 weight penalties, and
evaluation: what a trained model (or an ensemble of them) needs without the training loop.

`model` below is anything with `forward(x, train=False) -> logits`, e.g. an nn.model.MLP.
"""

from __future__ import annotations

import numpy as np

from .kernels import layers as K

EVAL_CHUNK = 2048  # examples per forward pass when evaluating: bounds the activations' memory


def softmax_cross_entropy(
    logits: np.ndarray, labels: np.ndarray, grad_out: np.ndarray | None = None
) -> tuple[float, int, np.ndarray | None]:
    """Mean cross-entropy of softmax(logits) against integer labels.

    Returns (loss, number of correct predictions, dLoss/dlogits or None). Stable because
    the row maximum is subtracted before exp; the gradient is (softmax - onehot) / N,
    written into `grad_out` when given (so the training loop reuses one array; the
    intermediate values pass through it too, so it must not be `logits`).
    """
    # One kernel pass per row (kernels.layers.softmax_cross_entropy): the NumPy it replaces,
    # the reference in tests/test_kernels_layers.py, takes a dozen small calls.
    grad = np.empty((0, 0), logits.dtype) if grad_out is None else grad_out
    total, correct = K.softmax_cross_entropy(logits, np.asarray(labels, np.intp), grad, grad_out is not None)
    return total / logits.shape[0], int(correct), grad_out


def weight_penalty(weights: np.ndarray, l2: float, l1: float) -> float:
    """l2/2 * sum(w^2) + l1 * sum(|w|), in float64 for an exact record."""
    total = 0.0
    if l2:
        total += 0.5 * l2 * float(np.dot(weights, weights))
    if l1:
        total += l1 * float(np.abs(weights).sum(dtype=np.float64))
    return total


def add_penalty_grad(weights: np.ndarray, grads: np.ndarray, l2: float, l1: float, scratch: np.ndarray) -> None:
    """grads += l2 * w + l1 * sign(w) (sign(0) = 0, the subgradient chosen at zero)."""
    if l2:
        np.multiply(weights, l2, out=scratch)
        grads += scratch
    if l1:
        np.sign(weights, out=scratch)
        scratch *= l1
        grads += scratch


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax, stable because the row maximum is subtracted before exp."""
    exp = np.exp(logits - logits.max(axis=1, keepdims=True))
    exp /= exp.sum(axis=1, keepdims=True)
    return exp


def predict_proba(model, x: np.ndarray) -> np.ndarray:
    """Class probabilities of `model` in evaluation mode, (len(x), n_classes)."""
    with np.errstate(all="ignore"):
        return np.concatenate([softmax(model.forward(x[start : start + EVAL_CHUNK], train=False))
                               for start in range(0, len(x), EVAL_CHUNK)])


def evaluate(model, x: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Mean loss and accuracy of `model` on (x, y) in evaluation mode."""
    total_loss, total_correct = 0.0, 0
    with np.errstate(all="ignore"):  # a diverged model gives a non-finite loss, not a warning
        for start in range(0, len(x), EVAL_CHUNK):
            xb, yb = x[start : start + EVAL_CHUNK], y[start : start + EVAL_CHUNK]
            loss, correct, _ = softmax_cross_entropy(model.forward(xb, train=False), yb)
            total_loss += loss * len(xb)
            total_correct += correct
    return total_loss / len(x), total_correct / len(x)
