"""Fused elementwise kernels: the training step's work outside the matrix products, each
done in one pass over memory instead of NumPy's several (numba, compiled once and cached on
disk). The NumPy expressions they replace stay beside them as the reference the tests hold
every kernel to.

Conventions for every kernel here:
- `@kernel` (below): nopython, no fast-math (see FASTMATH), `error_model="numpy"` (a
  division check would stop vectorization), cached on disk. The one exception is the sum of
  squares inside the optimizers' kernels (optim._sum_squares), which may reassociate.
- One thread each. Measured in the training loop (Xeon, OpenBLAS SkylakeX, 2 threads):
  with `parallel=True` and two numba threads an Adam epoch at batch 128 took 3.8 s instead
  of 1.8 s, since OpenBLAS's idle worker spins on the second core after every product and
  numba's worker then waits for the scheduler. A serial kernel is already 5x NumPy's
  speed here (one pass instead of ~12), and never oversubscribes a sweep's cores.
- Sums add in a fixed order (no reduction depends on a thread schedule): the same bits
  run after run, so a resumed run stays bit-identical.
- Kernels write into arrays they are given (`out`); none allocates per call.

numba's disk cache is keyed on each kernel's own source file: after changing the options of
`kernel` below, delete trickrun/nn/kernels/__pycache__/*.nbi and *.nbc, or the old
compilations are loaded.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import numba
import numba.core.event

from ... import signals

# No fast-math: with contraction (FMA) or reassociation, LLVM rounds the vectorized body of
# a loop and its scalar remainder differently (with `prange` that made two threads give
# other bits than one), and each kernel would drift from its NumPy reference for no gain:
# plain IEEE arithmetic vectorizes these loops all the same (the division check, not
# fast-math, is what blocks it: error_model="numpy"). NaN and inf keep their meaning,
# which divergence detection needs.
FASTMATH = False


def kernel(fn):
    return numba.njit(cache=True, fastmath=FASTMATH, error_model="numpy", nogil=True)(fn)


COMPILING = ("compiling trickrun's kernels: the first run after an install takes a few seconds more; "
             "later runs load them from the disk cache")


class _CompileNotice(numba.core.event.Listener):
    """Calls `say` once, when numba starts compiling one of trickrun's kernels: numba
    broadcasts a compile only after a disk-cache miss, so a cached run says nothing."""

    def __init__(self, say):
        self.say, self.said = say, False

    def on_start(self, event) -> None:
        dispatcher = (event.data or {}).get("dispatcher")
        module = getattr(getattr(dispatcher, "py_func", None), "__module__", "") or ""
        if not self.said and module.startswith(__name__):
            self.said = True
            self.say(COMPILING)

    def on_end(self, event) -> None: ...


class _StopsWaitForCompiles(numba.core.event.Listener):
    """A stop signal (Ctrl-C, SIGTERM) that arrives while numba compiles waits for the
    compile's end (signals.compile_started/compile_ended say why)."""

    def on_start(self, event) -> None:
        signals.compile_started()

    def on_end(self, event) -> None:
        signals.compile_ended()


# Registered once, for every compile of the process: any command may be the first to call
# a kernel (train, evaluate, ensemble, a sweep's worker).
numba.core.event.register("numba:compile", _StopsWaitForCompiles())


@contextmanager
def compile_notice(say) -> Iterator[None]:
    """While inside: `say(COMPILING)` once if a kernel has to be compiled."""
    with numba.core.event.install_listener("numba:compile", _CompileNotice(say)):
        yield
