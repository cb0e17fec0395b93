"""kernels.pcg64 draws PCG64's raw words by jumping LANES states side by side: the words,
and the generator's state after them, must be exactly those of NumPy's own random_raw."""

import numpy as np
import pytest

from trickrun.nn.kernels.pcg64 import LANES, fill_raw

SIZES = [0, 1, 2, LANES - 1, LANES, LANES + 1, 2 * LANES + 3, 1000, 100_003]
TOP = (1 << 128) - 1


def twins(seed_or_state):
    """Two PCG64s in the same state: from a seed, or from (state, inc) set directly."""
    pair = []
    for _ in range(2):
        bits = np.random.PCG64(0 if isinstance(seed_or_state, tuple) else seed_or_state)
        if isinstance(seed_or_state, tuple):
            state = bits.state
            state["state"] = {"state": seed_or_state[0], "inc": seed_or_state[1]}
            bits.state = state
        pair.append(bits)
    return pair


# Seeds, and states set by hand where the 128-bit arithmetic carries and wraps.
STARTS = [0, 123, 2**70, (TOP, TOP), (TOP - 5, 1), ((1 << 64) - 1, (1 << 64) + 1), (0, 1)]


@pytest.mark.parametrize("start", STARTS)
@pytest.mark.parametrize("n", SIZES)
def test_words_and_state_after_them_are_numpys(start, n):
    ours, numpys = twins(start)
    ours.random_raw(5), numpys.random_raw(5)  # any point of the stream
    out = np.empty(n, np.uint64)
    fill_raw(ours, out)
    np.testing.assert_array_equal(out, numpys.random_raw(n))
    assert ours.state == numpys.state
    np.testing.assert_array_equal(ours.random_raw(LANES + 2), numpys.random_raw(LANES + 2))


def test_a_buffered_32_bit_half_is_kept_as_random_raw_keeps_it():
    ours, numpys = (np.random.Generator(b) for b in twins(9))
    for g in (ours, numpys):
        g.integers(0, 2**32, size=3, dtype=np.uint32)  # odd: half a word stays buffered
    assert ours.bit_generator.state["has_uint32"] == 1
    out = np.empty(LANES * 3 + 1, np.uint64)
    fill_raw(ours.bit_generator, out)
    np.testing.assert_array_equal(out, numpys.bit_generator.random_raw(out.size))
    assert ours.bit_generator.state == numpys.bit_generator.state
    np.testing.assert_array_equal(ours.integers(0, 2**32, size=5, dtype=np.uint32),
                                  numpys.integers(0, 2**32, size=5, dtype=np.uint32))


def test_dropout_draws_its_words_through_the_kernel_into_one_reused_buffer():
    from trickrun.nn.layers import Dropout

    layer, reference = Dropout(0.5, np.random.default_rng(3)), np.random.default_rng(3).bit_generator
    x = np.ones((4, 33), np.float32)  # 132 units: 66 raw words
    buffers = []
    for _ in range(2):
        layer.forward(x, True)
        buffers += [a for key, a in layer._scratch._arrays.items() if key[0] == "raw"]
        np.testing.assert_array_equal(buffers[-1], reference.random_raw(66))
    assert len(buffers) == 2 and buffers[0] is buffers[1]
