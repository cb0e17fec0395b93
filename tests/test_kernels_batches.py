"""The batch kernel: training images kept as uint8 and scaled as they are gathered give,
bit for bit, the rows of the whole array scaled at once (so keeping the pixels changed no
run's numbers), for every data.scale method, odd widths and batches of one."""

from __future__ import annotations

import numpy as np
import pytest

from trickrun.config import CHOICES
from trickrun.data.images import ScaledImages
from trickrun.data.scaling import SCALES, scale
from trickrun.nn.kernels.batches import gather_scaled, gather_scaled_reference


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


def test_standard_scaling_of_a_constant_training_set_only_centres():
    pixels = np.full((4, 3), 7, np.uint8)
    images = ScaledImages(pixels, SCALES.get("standard")(pixels))
    out = np.empty((2, 3), np.float32)
    gather_scaled(pixels, np.array([3, 0]), images.scaling.shift, images.scaling.divisor, images.scaling.offset, out)
    assert (out == 0).all() and images.shape == (4, 3) and len(images) == 4
