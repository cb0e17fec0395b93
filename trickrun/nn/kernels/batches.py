"""Making a batch: gathering training images by index and scaling them on the way.

The training set stays in memory as its uint8 pixels (a quarter of float32's size); each
batch is scaled as it is gathered, to exactly the float32 values that scaling the whole
array would give (data/scaling.Scaling: the same three IEEE operations, in order).

A batch's rows lie at random places in the 43 MB of pixels, and by the next batch the step
has pushed most of them out of the caches. Row after row, each row's loads waited for the
previous row's; now the loads of the row AHEAD rows on are started (prefetched) before a
row is scaled, so that several rows' misses overlap. Measured on an AMD EPYC
(benchmarks/gather.py): a batch of 128, alone, 64-65 -> 33 µs (rows already in cache: 21);
inside the training loop 86-108 -> 59-93 µs, 0.009-0.010 s an epoch. 8 or 16 rows ahead
did no better.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from . import kernel

AHEAD = 4  # rows whose loads are started before their turn
LINE = 64  # bytes in a cache line


@intrinsic
def _prefetch(typingctx, array, row, col):
    """Start loading the cache line that holds array[row, col] into every cache level (a
    hint to the CPU: nothing waits for it, and it can fault on nothing)."""
    if not (isinstance(array, types.Array) and array.ndim == 2):
        return None

    def codegen(context, builder, signature, args):
        arraytype = signature.args[0]
        arr = context.make_array(arraytype)(context, builder, args[0])
        indices = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], signature.args[1:])]
        pointer = cgutils.get_item_pointer(context, builder, arraytype, arr, indices, wraparound=False)
        byte_pointer = ir.IntType(8).as_pointer()
        i32 = ir.IntType(32)
        prefetch = builder.module.declare_intrinsic(
            "llvm.prefetch", [byte_pointer], ir.FunctionType(ir.VoidType(), [byte_pointer, i32, i32, i32]))
        # read (0), keep in all levels (3), data cache (1)
        builder.call(prefetch, [builder.bitcast(pointer, byte_pointer), i32(0), i32(3), i32(1)])
        return context.get_dummy_value()

    return types.void(array, row, col), codegen


@numba.njit(inline="always")
def _prefetch_row(pixels, row):
    """Start the loads of every cache line of pixels[row] (a row need not start on a line)."""
    width = pixels.shape[1]
    for j in range(0, width, max(1, LINE // pixels.itemsize)):
        _prefetch(pixels, row, j)
    _prefetch(pixels, row, width - 1)


def gather_scaled_reference(pixels: np.ndarray, idx: np.ndarray, shift: np.float32, divisor: np.float32,
                            offset: np.float32, out: np.ndarray) -> None:
    rows = pixels[idx].astype(np.float32)
    out[...] = (rows - shift) / divisor - offset


@kernel
def gather_scaled(pixels, idx, shift, divisor, offset, out):
    """out[i] = (pixels[idx[i]] - shift) / divisor - offset, in float32."""
    n, width = idx.shape[0], pixels.shape[1]
    for i in range(min(AHEAD, n)):
        _prefetch_row(pixels, idx[i])
    for i in range(n):
        if i + AHEAD < n:
            _prefetch_row(pixels, idx[i + AHEAD])
        row = idx[i]
        for j in range(width):
            out[i, j] = (np.float32(pixels[row, j]) - shift) / divisor - offset


@kernel
def gather_labels(labels, idx, out):
    """out[i] = labels[idx[i]]: a batch's labels (np.take's result, without its Python-side
    dispatch, which ran cold once per batch right after the step)."""
    for i in range(idx.shape[0]):
        out[i] = labels[idx[i]]
