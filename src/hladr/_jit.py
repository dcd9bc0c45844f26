"""Numba's ``njit``, loaded once with CPython's cyclic garbage collector paused while it loads.

Importing Numba, and the one-time set-up of its CPU target that the first call of
any kernel would otherwise trigger (every typing and lowering registry, plus SciPy's
BLAS, which Numba probes), build a graph of ~90,000 objects that live as long as the
process. While that graph is being built the cyclic collector would walk it again at
every threshold, so the collector is paused for that time only, and its previous state
(enabled or disabled) is restored right after: importing hladr changes no interpreter
state.

It once also moved every object to the permanent generation (``gc.freeze``). That
spared the interpreter's last collection at exit, which walks and frees Numba's graph
object by object (0.15-0.3 s of a one-tube ``hladr gate``), but it also made every
reference cycle the caller held at import time uncollectable for the rest of the
process. The ``hladr`` command, which owns its process, freezes just before it exits
instead (``cli.main_cli``); a program that imports hladr may do the same.

The target set-up is done here rather than at the first kernel call because every
module that imports the kernels calls one; it costs ~0.2 s once per process.

Kernel modules import ``njit`` from here, never from ``numba`` directly.
"""

from __future__ import annotations

import gc
from collections.abc import Callable

__all__ = ["njit"]


def _import_njit() -> Callable:
    enabled = gc.isenabled()
    gc.disable()
    try:
        from numba import njit  # heavy: loaded once, here, with the collector paused

        _set_up_cpu_target()
    finally:
        if enabled:
            gc.enable()
    return njit


def _set_up_cpu_target() -> None:
    # Numba's internal registry; what a first kernel call would do. If a future Numba
    # moves it, the set-up simply happens at the first call, as before.
    try:
        from numba.core.registry import cpu_target  # part of loading Numba (above)

        cpu_target.typing_context.refresh()
        cpu_target.target_context.refresh()
    except (ImportError, AttributeError):  # pragma: no cover - depends on Numba's internals
        pass


njit = _import_njit()
