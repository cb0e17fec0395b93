"""PCG64's raw 64-bit words, the very words `PCG64.random_raw` gives, drawn faster: twice as
fast for a layer of 128 x 512 units (32,768 words), about as fast for 4,096 units (timed on
an AMD EPYC; benchmarks/dropout.py times a layer's forward both ways). Dropout's masks come
from them (nn/layers.Dropout), and drawing them was most of a dropout layer's forward.

PCG64 (NumPy's default bit generator; O'Neill's PCG XSL-RR 128/64) is a 128-bit linear
congruential generator, s <- M s + inc (mod 2^128), and each word is the XSL-RR output of
the new state. random_raw takes one state after the other, through a function pointer per
word: each step waits for the previous one's 128-bit product. But an LCG can jump:
s_{k+L} = A s_k + C with A = M^L and C = inc (M^(L-1) + ... + M + 1). So LANES states one
step apart each advance L steps at a time, independently of one another: the products
overlap in the CPU, and the words still come out in order. The 128-bit products use LLVM's
own i128 multiply (`_mulhi`), which numba does not otherwise offer.
"""

from __future__ import annotations

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
def _fill(state_hi, state_lo, inc_hi, inc_lo, out):
    """Fill `out` with the words that follow state s (= state_hi 2^64 + state_lo)."""
    n = out.size
    hs, ls = np.empty(LANES, np.uint64), np.empty(LANES, np.uint64)
    h, l = state_hi, state_lo
    ah, al = np.uint64(0), np.uint64(1)  # the jump by LANES steps: A = M^L ...
    ch, cl = np.uint64(0), np.uint64(0)  # ... and C
    for j in range(LANES):  # lane j holds s_{j+1}; A and C are built up alongside
        h, l = _step(h, l, _M_HI, _M_LO, inc_hi, inc_lo)
        hs[j], ls[j] = h, l
        ah, al = _mul(ah, al, _M_HI, _M_LO)
        ch, cl = _step(ch, cl, _M_HI, _M_LO, inc_hi, inc_lo)
    full = n // LANES
    for r in range(full):
        b = r * LANES
        for j in range(LANES):
            h, l = hs[j], ls[j]
            out[b + j] = _output(h, l)
            hs[j], ls[j] = _step(h, l, ah, al, ch, cl)
    for j in range(n - full * LANES):
        out[full * LANES + j] = _output(hs[j], ls[j])


def fill_raw(bit_generator: np.random.PCG64, out: np.ndarray) -> None:
    """Fill the uint64 array `out` with the next `out.size` raw words of `bit_generator`
    and advance it past them: the words, and the generator's state afterwards (its buffered
    32-bit half included), exactly as `bit_generator.random_raw(out.size)` leaves them."""
    state = bit_generator.state
    s, inc = state["state"]["state"], state["state"]["inc"]
    _fill(np.uint64(s >> 64), np.uint64(s & _MASK64), np.uint64(inc >> 64), np.uint64(inc & _MASK64), out)
    bit_generator.advance(out.size)  # NumPy's own jump; it also drops a buffered 32-bit half,
    if state["has_uint32"]:  # which random_raw keeps: put it back
        state["state"] = bit_generator.state["state"]
        bit_generator.state = state
