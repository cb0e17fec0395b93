"""The batch kernel: training images kept as uint8 and scaled as they are gathered give,
bit for bit, the rows of the whole array scaled at once (so keeping the pixels changed no
run's numbers), for every data.scale method, odd widths and batches of one; the labels'
gather is np.take's."""

from __future__ import annotations

import numba
import numpy as np
import pytest

from trickrun.config import CHOICES
from trickrun.data.images import ScaledImages
from trickrun.data.scaling import SCALES, scale
from trickrun.nn.kernels import batches
from trickrun.nn.kernels.batches import gather_labels, gather_scaled, gather_scaled_reference


@pytest.mark.parametrize("method", CHOICES["data.scale"])
@pytest.mark.parametrize("shape,batch", [((600, 784), 128), ((7, 3), 1), ((50, 1), 50)])
def test_gathered_batches_equal_the_whole_array_scaled(method, shape, batch):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 256, shape, dtype=np.uint8)
    whole = scale(method, pixels)[0]
    images = ScaledImages(pixels, SCALES.get(method)(pixels))
    idx = rng.permutation(shape[0])[:batch]
    out = np.full((batch, shape[1]), np.nan, np.float32)
    images.take(idx, out)
    np.testing.assert_array_equal(out, whole[idx])  # bitwise: NaN-free and equal
    assert out.tobytes() == whole[idx].tobytes()
    reference = np.empty_like(out)
    s = images.scaling
    gather_scaled_reference(pixels, idx, s.shift, s.divisor, s.offset, reference)
    assert reference.tobytes() == out.tobytes()
    assert np.asarray(images).tobytes() == whole.tobytes() and images[idx].tobytes() == whole[idx].tobytes()


@pytest.mark.parametrize("dtype", [np.intp, np.int64, np.uint8])
@pytest.mark.parametrize("n,batch", [(600, 128), (1, 1), (9, 9)])
def test_a_batchs_labels_are_gathered_as_np_take_gathers_them(dtype, n, batch):
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 10, n).astype(dtype)
    idx = rng.permutation(n)[:batch]
    out = np.full(batch, 99, dtype)
    gather_labels(labels, idx, out)
    np.testing.assert_array_equal(out, np.take(labels, idx))


def test_standard_scaling_of_a_constant_training_set_only_centres():
    pixels = np.full((4, 3), 7, np.uint8)
    images = ScaledImages(pixels, SCALES.get("standard")(pixels))
    out = np.empty((2, 3), np.float32)
    gather_scaled(pixels, np.array([3, 0]), images.scaling.shift, images.scaling.divisor, images.scaling.offset, out)
    assert (out == 0).all() and images.shape == (4, 3) and len(images) == 4


def test_the_gather_starts_the_loads_of_rows_ahead():
    """The kernel prefetches: the compiled code calls LLVM's prefetch (a hint that changes no
    value, so only the code can show it). Compiled afresh: cached kernels show no IR."""
    fresh = numba.njit(error_model="numpy")(batches.gather_scaled.py_func)
    pixels = np.arange(40 * 9, dtype=np.uint8).reshape(40, 9)
    idx = np.array([5, 39, 0, 17, 2, 33, 8])  # more rows than AHEAD, and fewer below
    out = np.empty((len(idx), 9), np.float32)
    fresh(pixels, idx, np.float32(1), np.float32(3), np.float32(0.5), out)
    np.testing.assert_array_equal(out, (pixels[idx].astype(np.float32) - 1) / 3 - np.float32(0.5))
    assert len(idx) > batches.AHEAD
    assert "call void @llvm.prefetch" in next(iter(fresh.inspect_llvm().values()))
