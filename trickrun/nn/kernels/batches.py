"""Making a batch: gathering training images by index and scaling them on the way.

The training set stays in memory as its uint8 pixels (a quarter of float32's size); each
batch is scaled as it is gathered, to exactly the float32 values that scaling the whole
array would give (data/scaling.Scaling: the same three IEEE operations, in order).
"""

from __future__ import annotations

import numpy as np

from . import kernel


def gather_scaled_reference(pixels: np.ndarray, idx: np.ndarray, shift: np.float32, divisor: np.float32,
                            offset: np.float32, out: np.ndarray) -> None:
    rows = pixels[idx].astype(np.float32)
    out[...] = (rows - shift) / divisor - offset


@kernel
def gather_scaled(pixels, idx, shift, divisor, offset, out):
    """out[i] = (pixels[idx[i]] - shift) / divisor - offset, in float32."""
    width = pixels.shape[1]
    for i in range(idx.shape[0]):
        row = idx[i]
        for j in range(width):
            out[i, j] = (np.float32(pixels[row, j]) - shift) / divisor - offset
