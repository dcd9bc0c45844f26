"""Worker processes that never outlive the run: the pools of ``--workers N`` and of the report.

``worker_pool(n)`` is a context manager around ``ProcessPoolExecutor`` with three
differences, each for a caller (lab automation) that reads hladr's output through a pipe:

- **A worker dies with its parent.** After ``kill -9`` of hladr, workers of a plain
  pool wait for work forever with parent 1, ~240 MB each. Here each worker asks the
  kernel for SIGKILL when its parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``) and
  runs a watchdog thread that exits when its parent changes (every platform; the
  kernel's signal is immediate, the watchdog polls every ``WATCHDOG_S`` seconds).
- **A worker does not hold the caller's pipes.** Its stdout and stderr are
  redirected to the null device (results and exceptions come back through the
  pool), so the caller sees end-of-file as soon as hladr itself ends.
- **Leaving the block by an exception terminates the workers** (an interrupt,
  SIGTERM turned into an exception by the CLI, an error): running tasks are not
  waited for. Workers ignore SIGINT (the parent decides) and die on SIGTERM.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager

__all__ = ["worker_pool", "terminate_pool", "WATCHDOG_S"]

WATCHDOG_S = 0.5
_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent_pid: int) -> None:
    """Exit this process when ``parent_pid`` is no longer its parent (kernel signal and a watchdog)."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass
    ppid = os.getppid()
    if ppid != parent_pid and not _alive(parent_pid):  # died before we got here
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(WATCHDOG_S)
            if os.getppid() != ppid or (ppid != parent_pid and not _alive(parent_pid)):
                os._exit(1)

    threading.Thread(target=watch, name="hladr-parent-watchdog", daemon=True).start()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def _detach_std_streams() -> None:
    """Point fds 1 and 2 at the null device: the worker no longer holds the caller's pipes."""
    try:
        null = os.open(os.devnull, os.O_WRONLY)
    except OSError:
        return
    for fd in (1, 2):
        try:
            os.dup2(null, fd)
        except OSError:
            pass
    os.close(null)


def _init_worker(parent_pid: int) -> None:
    """Pool initializer (runs first in each worker)."""
    _detach_std_streams()
    if hasattr(signal, "SIGTERM"):
        signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a handler inherited from the CLI would not stop us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(parent_pid)


def terminate_pool(pool: ProcessPoolExecutor, *, grace_s: float = 3.0) -> None:
    """Stop a pool now: cancel what has not started, terminate the workers, reap them."""
    procs = list((getattr(pool, "_processes", None) or {}).values())  # no public API before Python 3.14
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        try:
            p.terminate()
        except (OSError, ValueError):
            pass
    deadline = time.monotonic() + grace_s
    for p in procs:
        try:
            p.join(max(0.0, deadline - time.monotonic()))
            if p.is_alive():
                p.kill()
                p.join(1.0)
        except (OSError, ValueError, AssertionError):
            pass


@contextmanager
def worker_pool(n: int) -> Iterator[ProcessPoolExecutor]:
    """A process pool of ``n`` workers that die with hladr (see the module docstring)."""
    pool = ProcessPoolExecutor(max_workers=n, initializer=_init_worker, initargs=(os.getpid(),))
    try:
        yield pool
    except BaseException:
        terminate_pool(pool)
        raise
    pool.shutdown(wait=True)
