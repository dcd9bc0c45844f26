"""Numba's ``njit``, loaded once with CPython's cyclic garbage collector paused.

Importing Numba, and the one-time set-up of its CPU target that the first call of
any kernel would otherwise trigger (every typing and lowering registry, plus SciPy's
BLAS, which Numba probes), build a large graph of objects that live as long as the
process. While that graph is being built the cyclic collector walks it again at every
threshold, and at interpreter exit it walks it once more before tearing the modules
down. On a one-tube command that was ~100 ms of a ~0.57 s process (measured with
``benchmarks/script_hladr.py``; see benchmarks/README.md). So the collector is paused
while Numba loads and sets up its target, and what that built is then moved to the
permanent generation (``gc.freeze``), which later collections skip. Objects that
become garbage later are collected as usual; only cycles that were already garbage
when this module was imported would stay in memory, which is why a collection runs
first.

The target set-up is done here rather than at the first kernel call because every
module that imports the kernels calls one; it costs ~0.2 s once per process.

Kernel modules import ``njit`` from here, never from ``numba`` directly.
"""

from __future__ import annotations

import gc


def _import_njit():
    enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        from numba import njit

        _set_up_cpu_target()
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
    return njit


def _set_up_cpu_target() -> None:
    # Numba's internal registry; what a first kernel call would do. If a future Numba
    # moves it, the set-up simply happens at the first call, as before.
    try:
        from numba.core.registry import cpu_target

        cpu_target.typing_context.refresh()
        cpu_target.target_context.refresh()
    except (ImportError, AttributeError):  # pragma: no cover - depends on Numba's internals
        pass


njit = _import_njit()

__all__ = ["njit"]
