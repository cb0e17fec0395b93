"""PCG64's raw 64-bit words, the very words `PCG64.random_raw` gives, drawn faster. Dropout's
masks come from them (nn/layers.Dropout), and drawing them was most of a dropout layer's
forward. One layer's forward, timed both ways on an AMD EPYC (benchmarks/dropout.py): 183 ->
117 µs at 128 x 512 units (32,768 words), 27 -> 21 µs at 32 x 256.

PCG64 (NumPy's default bit generator; O'Neill's PCG XSL-RR 128/64) is a 128-bit linear
congruential generator, s <- M s + inc (mod 2^128), and each word is the XSL-RR output of
the new state. random_raw takes one state after the other, through a function pointer per
word: each step waits for the previous one's 128-bit product. But an LCG can jump:
s_{k+L} = A s_k + C with A = M^L and C = inc (M^(L-1) + ... + M + 1). So LANES states one
step apart each advance L steps at a time, independently of one another: the products
overlap in the CPU, and the words still come out in order. The 128-bit products use LLVM's
own i128 multiply (`_mulhi`), which numba does not otherwise offer.

The kernel reads the generator's state where NumPy keeps it and writes the new state back
there (`RawWords`): reading it through `PCG64.state`, a dictionary of Python integers, and
moving the generator on with `advance` cost 8 µs a draw, more than 4,096 words take.
"""

from __future__ import annotations

import ctypes

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

from . import kernel

LANES = 16  # states advanced side by side (measured: 2, 4, 8, 16 lanes; 16 was fastest)
_M_HI, _M_LO = np.uint64(2549297995355413924), np.uint64(4865540595714422341)  # PCG's M
_MASK64 = (1 << 64) - 1


@intrinsic
def _mulhi(typingctx, a, b):
    """The high 64 bits of the 128-bit product of two uint64 (x86: one `mul`)."""
    def codegen(context, builder, signature, args):
        i128 = ir.IntType(128)
        product = builder.mul(builder.zext(args[0], i128), builder.zext(args[1], i128))
        return builder.trunc(builder.lshr(product, ir.Constant(i128, 64)), ir.IntType(64))
    return types.uint64(types.uint64, types.uint64), codegen


@numba.njit(inline="always")
def _mul(ah, al, bh, bl):
    """(ah 2^64 + al)(bh 2^64 + bl) mod 2^128, as (high, low) words."""
    return _mulhi(al, bl) + al * bh + ah * bl, al * bl


@numba.njit(inline="always")
def _add(ah, al, bh, bl):
    lo = al + bl
    return ah + bh + np.uint64(lo < al), lo


@numba.njit(inline="always")
def _output(h, l):
    """XSL-RR: the state's two halves xor-ed, rotated right by its top 6 bits."""
    x = h ^ l
    r = h >> np.uint64(58)
    return (x >> r) | (x << ((np.uint64(64) - r) & np.uint64(63)))


@numba.njit(inline="always")
def _step(h, l, ah, al, ch, cl):
    """The state A s + C, as (high, low), for s = h 2^64 + l."""
    ph, pl = _mul(h, l, ah, al)
    return _add(ph, pl, ch, cl)


@kernel
def _fill(state, hi_first, out):
    """Fill `out` with the words that follow the state held in `state`, and leave there the
    state of the last of them. `state` is NumPy's own pcg64 state in place (`_state_words`):
    the state, then the increment, each as two uint64 words, the low one first unless
    `hi_first`."""
    hi, lo = (0, 1) if hi_first else (1, 0)
    h, l = state[hi], state[lo]
    inc_hi, inc_lo = state[2 + hi], state[2 + lo]
    n = out.size
    hs, ls = np.empty(LANES, np.uint64), np.empty(LANES, np.uint64)
    ah, al = np.uint64(0), np.uint64(1)  # the jump by LANES steps: A = M^L ...
    ch, cl = np.uint64(0), np.uint64(0)  # ... and C
    for j in range(LANES):  # lane j holds s_{j+1}; A and C are built up alongside
        h, l = _step(h, l, _M_HI, _M_LO, inc_hi, inc_lo)
        hs[j], ls[j] = h, l
        ah, al = _mul(ah, al, _M_HI, _M_LO)
        ch, cl = _step(ch, cl, _M_HI, _M_LO, inc_hi, inc_lo)
    full, rest = n // LANES, n % LANES
    for r in range(full):
        b = r * LANES
        for j in range(LANES):
            out[b + j] = _output(hs[j], ls[j])
        if r < full - 1 or rest:  # else the lanes hold the last words' states: kept
            for j in range(LANES):
                hs[j], ls[j] = _step(hs[j], ls[j], ah, al, ch, cl)
    for j in range(rest):
        out[full * LANES + j] = _output(hs[j], ls[j])
    if n:
        last = rest - 1 if rest else LANES - 1
        state[hi], state[lo] = hs[last], ls[last]


def _state_words(bit_generator: np.random.PCG64) -> tuple[np.ndarray, bool] | None:
    """NumPy's pcg64 state of `bit_generator` as a uint64 array over the generator's own
    memory, and whether its 128-bit values store their high word first; None where that
    memory does not hold the state as expected.

    NumPy's `pcg64_state`, at `ctypes.state_address`, starts with a pointer to the
    `pcg64_random_t` {state, inc}, which lies inside the PCG64 object itself. Its 128-bit
    values are __uint128_t (low word first on little-endian machines) or, with compilers
    that have none (MSVC), a struct {high, low}. The pointer is followed only into the
    object's own bytes, and the words are taken only if they read back `state`'s values."""
    try:
        start, size = id(bit_generator), type(bit_generator).__basicsize__  # CPython: id is the address
        holder = bit_generator.ctypes.state_address
        if not start <= holder <= start + size - ctypes.sizeof(ctypes.c_void_p):
            return None
        address = ctypes.c_void_p.from_address(holder).value or 0
        if not start <= address <= start + size - 32:
            return None
        words = np.ctypeslib.as_array((ctypes.c_uint64 * 4).from_address(address))
    except (AttributeError, TypeError, ValueError):
        return None
    pcg = bit_generator.state["state"]
    state, inc = pcg["state"], pcg["inc"]
    have = [int(w) for w in words]
    if have == [state & _MASK64, state >> 64, inc & _MASK64, inc >> 64]:
        return words, False
    if have == [state >> 64, state & _MASK64, inc >> 64, inc & _MASK64]:
        return words, True
    return None


class RawWords:
    """The raw words of one PCG64, drawn by the kernel straight from, and back into, the
    generator's own state: the words, and the generator afterwards (a buffered 32-bit half
    included, which neither touches), exactly as `random_raw` would leave them. Where the
    state cannot be found in place, `random_raw` itself draws them."""

    def __init__(self, bit_generator: np.random.PCG64):
        self.bit_generator = bit_generator  # keeps the memory of the state alive
        self._lock = bit_generator.lock  # random_raw's own: the kernel runs without the GIL
        self._state = _state_words(bit_generator)

    def __reduce__(self):
        # A copy (copy.deepcopy, pickle) is made afresh over the copied generator's memory:
        # copying the words would draw from a stale copy of the state.
        return RawWords, (self.bit_generator,)

    def fill(self, out: np.ndarray) -> None:
        """Fill the uint64 array `out` with the next `out.size` raw words."""
        if self._state is None:
            out[:] = self.bit_generator.random_raw(out.size)
        else:
            with self._lock:
                _fill(*self._state, out)

