"""The Numba loader (``hladr._jit``): the collector's state is restored and no garbage is kept.

Each check runs in a fresh interpreter, because this test process has imported Numba already.
"""

import subprocess
import sys
import textwrap

import pytest


def _run(code: str) -> str:
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


@pytest.mark.parametrize("enabled", [True, False])
def test_collector_state_is_restored(enabled):
    out = _run(f"""
        import gc
        {"gc.enable()" if enabled else "gc.disable()"}
        import hladr._kernels
        print(gc.isenabled())
    """)
    assert out == str(enabled)


def test_garbage_from_before_is_collected_and_later_garbage_still_is():
    out = _run("""
        import gc, weakref

        class Node:
            pass

        def cycle():
            a, b = Node(), Node()
            a.other, b.other = b, a
            return weakref.ref(a)

        gc.disable()  # so only the loader's own collection can free the first cycle
        before = cycle()
        import hladr._kernels  # noqa: F401
        gc.enable()
        after = cycle()
        gc.collect()
        print(before() is None, after() is None)
    """)
    assert out == "True True"


def test_kernels_use_numbas_njit_and_still_run():
    out = _run("""
        import numba
        import numpy as np
        from hladr import _jit
        from hladr import _kernels
        print(_jit.njit is numba.njit, float(_kernels.abc_from_pe(np.array([10.0]), 0.0, 1.0)[0]))
    """)
    assert out == "True 10.0"


def test_gml_kernels_use_numbas_njit_and_still_run():
    out = _run("""
        import numba
        import numpy as np
        from hladr.gating.gatingml import _kernels as _gml_kernels
        from hladr import _jit
        from hladr import _kernels
        p = _gml_kernels.transform_params(_gml_kernels.XF_LINEAR, 100.0)
        print(_gml_kernels.njit is _kernels.njit is _jit.njit is numba.njit,
              float(_gml_kernels.gml_transform(np.array([50.0]), _gml_kernels.XF_LINEAR, p)[0]))
    """)
    assert out == "True 0.5"
