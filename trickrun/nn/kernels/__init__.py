"""Fused elementwise kernels: the training step's work outside the matrix products, each
done in one pass over memory instead of NumPy's several (numba, compiled once and cached on
disk). The NumPy expressions they replace stay beside them as the reference the tests hold
every kernel to.

Conventions for every kernel here:
- `@kernel` (below): nopython, no fast-math (see FASTMATH), `error_model="numpy"` (a
  division check would stop vectorization), cached on disk.
- `@parallel_kernel`: the same with `prange` over independent elements; its loops never
  reduce across iterations, so results do not depend on the thread count or schedule.
- Reductions (sums, norms) are split into fixed blocks of BLOCK values whatever the thread
  count, each block summed in order and the blocks added in order: the same bits with one
  thread or two, run after run (a resumed run stays bit-identical).
- Kernels write into arrays they are given (`out`); none allocates per call.
- The kernels' threads follow the BLAS threads (`set_threads`), so a sweep's single-threaded
  workers never oversubscribe the cores.
"""

from __future__ import annotations

import numba

# No fast-math: with contraction (FMA) or reassociation, LLVM rounds the vectorized body of
# a loop and its scalar remainder differently, and which values fall in the remainder
# depends on how `prange` splits the loop between threads: the same step gave other bits
# with two threads than with one. Plain IEEE arithmetic vectorizes these loops all the
# same (the division check, not fast-math, is what blocks it: error_model="numpy"), and
# NaN and inf keep their meaning, which divergence detection needs.
FASTMATH = False
BLOCK = 16384  # values per reduction block: fits L1/L2, many blocks for two threads


def kernel(fn):
    return numba.njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)(fn)


def parallel_kernel(fn):
    return numba.njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True, parallel=True)(fn)


def set_threads(n: int) -> None:
    """Kernel threads: `n`, at most numba's own limit (NUMBA_NUM_THREADS, which a sweep sets to
    its workers' BLAS threads)."""
    numba.set_num_threads(max(1, min(n, numba.config.NUMBA_NUM_THREADS)))


def match_blas_threads() -> int:
    """Kernel threads = the BLAS's threads (threadpoolctl), so kernels and products share the
    cores the same way; returns the count set."""
    try:
        from threadpoolctl import threadpool_info

        counts = [lib["num_threads"] for lib in threadpool_info() if lib.get("user_api") == "blas"]
    except Exception:  # threadpoolctl confused by an unusual BLAS: keep numba's own count
        counts = []
    n = counts[0] if counts else numba.config.NUMBA_NUM_THREADS
    set_threads(n)
    return numba.get_num_threads()
