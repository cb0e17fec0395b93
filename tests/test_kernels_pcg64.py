"""kernels.pcg64 draws PCG64's raw words by jumping LANES states side by side: the words,
and the generator's state after them, must be exactly those of NumPy's own random_raw."""

import numpy as np
import pytest

from trickrun.nn.kernels.pcg64 import LANES, RawWords, _fill, _state_words

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
    RawWords(ours).fill(out)
    np.testing.assert_array_equal(out, numpys.random_raw(n))
    assert ours.state == numpys.state
    np.testing.assert_array_equal(ours.random_raw(LANES + 2), numpys.random_raw(LANES + 2))


def test_a_buffered_32_bit_half_is_kept_as_random_raw_keeps_it():
    ours, numpys = (np.random.Generator(b) for b in twins(9))
    for g in (ours, numpys):
        g.integers(0, 2**32, size=3, dtype=np.uint32)  # odd: half a word stays buffered
    assert ours.bit_generator.state["has_uint32"] == 1
    out = np.empty(LANES * 3 + 1, np.uint64)
    RawWords(ours.bit_generator).fill(out)
    np.testing.assert_array_equal(out, numpys.bit_generator.random_raw(out.size))
    assert ours.bit_generator.state == numpys.bit_generator.state
    np.testing.assert_array_equal(ours.integers(0, 2**32, size=5, dtype=np.uint32),
                                  numpys.integers(0, 2**32, size=5, dtype=np.uint32))


def test_one_drawer_follows_its_generator_through_draws_and_states_set_between():
    ours, numpys = twins(7)
    words = RawWords(ours)
    assert words._state is not None  # the state was found in place (CPython, NumPy >= 1.17)
    for n, start in [(40, None), (3, (TOP, TOP)), (LANES, None), (0, None), (1000, ((1 << 64) - 1, 5))]:
        if start is not None:  # as a checkpoint restores it: through the state's dictionary
            for bits in (ours, numpys):
                state = bits.state
                state["state"] = {"state": start[0], "inc": start[1]}
                bits.state = state
        out = np.empty(n, np.uint64)
        words.fill(out)
        np.testing.assert_array_equal(out, numpys.random_raw(n))
        assert ours.state == numpys.state


def test_the_kernel_reads_and_writes_a_state_stored_high_word_first():
    """The layout of compilers without a 128-bit integer (MSVC): {high, low} per value."""
    bits = np.random.PCG64(11)
    pcg = bits.state["state"]
    mask = (1 << 64) - 1
    state = np.array([pcg["state"] >> 64, pcg["state"] & mask, pcg["inc"] >> 64, pcg["inc"] & mask], np.uint64)
    out = np.empty(2 * LANES + 5, np.uint64)
    _fill(state, True, out)
    np.testing.assert_array_equal(out, bits.random_raw(out.size))
    after = bits.state["state"]["state"]
    assert [int(state[0]), int(state[1])] == [after >> 64, after & mask]
    assert [int(state[2]), int(state[3])] == [pcg["inc"] >> 64, pcg["inc"] & mask]


class _Elsewhere:
    """Says its state lies outside itself: a layout the drawer must not follow."""

    class ctypes:
        state_address = 8


def test_a_state_not_found_inside_the_generator_is_drawn_by_random_raw():
    assert _state_words(_Elsewhere()) is None
    ours, numpys = twins(4)
    words = RawWords(ours)
    words._state = None  # as on an implementation where the state is not found in place
    out = np.empty(LANES + 3, np.uint64)
    words.fill(out)
    np.testing.assert_array_equal(out, numpys.random_raw(out.size))
    assert ours.state == numpys.state


class _Watching:
    """A lock that notes the generator's state as it is taken and as it is let go."""

    def __init__(self, lock, bits):
        self.lock, self.bits, self.seen = lock, bits, []

    def __enter__(self):
        self.lock.__enter__()
        self.seen.append(self.bits.state["state"]["state"])

    def __exit__(self, *exc):
        self.seen.append(self.bits.state["state"]["state"])
        return self.lock.__exit__(*exc)


def test_the_kernel_moves_the_state_only_while_holding_the_generators_lock():
    ours, numpys = twins(6)
    words = RawWords(ours)
    assert words._lock is ours.lock  # the lock random_raw takes, as other threads do
    before = ours.state["state"]["state"]
    words._lock = watching = _Watching(ours.lock, ours)
    out = np.empty(2 * LANES + 1, np.uint64)
    words.fill(out)
    np.testing.assert_array_equal(out, numpys.random_raw(out.size))
    assert watching.seen == [before, numpys.state["state"]["state"]]


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
    assert layer._raw_words is not None and layer._raw_words._state is not None



def test_a_copied_dropout_layer_draws_from_and_moves_its_own_generator():
    import copy
    import pickle

    from trickrun.nn.layers import Dropout

    layer, x = Dropout(0.5, np.random.default_rng(5)), np.ones((3, 40), np.float32)
    layer.forward(x, True)  # the layer now holds its drawer
    before = layer.rng.bit_generator.state
    for twin in (copy.deepcopy(layer), pickle.loads(pickle.dumps(layer))):
        reference = Dropout(0.5, np.random.default_rng(5))
        reference.rng.bit_generator.state = before
        for _ in range(3):
            np.testing.assert_array_equal(twin.forward(x, True), reference.forward(x, True))
            assert twin.rng.bit_generator.state == reference.rng.bit_generator.state
        assert layer.rng.bit_generator.state == before  # the original is left where it was
