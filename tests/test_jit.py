"""The Numba loader (``hladr._jit``): importing it changes no interpreter state.

The collector is paused only while Numba loads; its state is restored after, nothing is frozen,
and a cycle the caller holds is collected once it becomes garbage. Only the ``hladr`` command,
which owns its process, freezes the heap just before it exits (``cli.main_cli``).

Each check runs in a fresh interpreter, because this test process has imported Numba already.
"""

import subprocess
import sys
import textwrap

import pytest

from hladr import __version__


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

        gc.disable()  # nothing may collect the first cycle during the import, and nothing keeps it either
        before = cycle()
        import hladr._kernels  # noqa: F401
        gc.enable()
        after = cycle()
        gc.collect()
        print(before() is None, after() is None)
    """)
    assert out == "True True"


def test_importing_freezes_nothing():
    out = _run("""
        import gc
        import hladr.pipeline  # every kernel module
        print(gc.get_freeze_count(), gc.isenabled())
    """)
    assert out == "0 True"


def test_a_cycle_held_during_the_import_is_collected_once_dropped():
    # a frozen object is never collected: a loader that froze the heap would keep this cycle forever
    out = _run("""
        import gc, weakref

        class Node:
            pass

        a, b = Node(), Node()
        a.other, b.other = b, a
        held = weakref.ref(a)
        import hladr._kernels  # noqa: F401
        del a, b
        gc.collect()
        print(held() is None)
    """)
    assert out == "True"


def test_the_command_freezes_only_as_its_process_ends():
    out = _run("""
        import atexit, gc, sys
        from hladr import cli
        print("main", cli.main(["--version"]), gc.get_freeze_count())  # main itself: nothing frozen
        atexit.register(lambda: print("exit", gc.get_freeze_count() > 0))
        sys.argv = ["hladr", "--version"]
        cli.main_cli()
    """)
    version = f"hladr {__version__}"
    assert out.splitlines() == [version, "main 0 0", version, "exit True"]


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
        from hladr.gating.gatingml._transform_params import transform_params
        from hladr import _jit
        from hladr import _kernels
        p = transform_params(_gml_kernels.XF_LINEAR, 100.0)
        print(_gml_kernels.njit is _kernels.njit is _jit.njit is numba.njit,
              float(_gml_kernels.gml_transform(np.array([50.0]), _gml_kernels.XF_LINEAR, p)[0]))
    """)
    assert out == "True 0.5"
