"""One tube on several cores: a ``nogil`` kernel run on contiguous slices of the events, in threads.

The per-event kernels release the GIL (``nogil=True``), and each event is
judged on its own, so a tube can be cut into slices of rows that threads
evaluate at the same time; the caller merges the slices' results in row order,
which makes the merged result identical to one pass over all the rows.

``threads=None`` means: as many threads as the process may use cores, but no
slice smaller than ``MIN_ROWS_PER_THREAD`` (below that, starting a thread costs
more than it saves). A batch that already runs one tube per core passes
``threads=1``.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")

MIN_ROWS_PER_THREAD = 200_000
ALIGN_ROWS = 4096  # slice bounds on whole engine blocks
SLICES_PER_THREAD = 4


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # macOS and Windows have no sched_getaffinity
        return max(1, os.cpu_count() or 1)


def thread_count(n_rows: int, threads: int | None = None, min_rows: int = MIN_ROWS_PER_THREAD) -> int:
    """Threads for ``n_rows`` rows: ``threads`` if given, else by cores, with at least ``min_rows`` each."""
    if threads is not None:
        if threads < 1:
            raise ValueError(f"threads must be at least 1, not {threads}")
        return threads
    return max(1, min(usable_cores(), n_rows // max(min_rows, 1)))


def row_slices(n_rows: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous (start, stop) slices covering ``range(n_rows)``, bounds on ``ALIGN_ROWS``.

    Fewer slices when the rows do not fill them; always at least one.
    """
    step = -(-max(n_rows, 1) // max(parts, 1))
    step = -(-step // ALIGN_ROWS) * ALIGN_ROWS
    return [(lo, min(lo + step, n_rows)) for lo in range(0, max(n_rows, 1), step)]


def map_slices(fn: Callable[[int, int], T], n_rows: int, threads: int) -> list[tuple[int, int, T]]:
    """``(start, stop, fn(start, stop))`` for slices of ``range(n_rows)``, in row order, computed by ``threads``.

    With several threads the rows are cut into ``SLICES_PER_THREAD`` slices per
    thread, which the calling thread and ``threads - 1`` workers take one after
    the other: a thread that shares its core with other work (the background
    SHA-256 of the file) takes fewer slices instead of holding the others up.
    An exception in any slice is raised here, after every thread stopped.
    """
    slices = row_slices(n_rows, threads * SLICES_PER_THREAD if threads > 1 else 1)
    if threads <= 1 or len(slices) == 1:
        return [(lo, hi, fn(lo, hi)) for lo, hi in slices]
    results: list = [None] * len(slices)
    todo = iter(range(len(slices)))
    lock = threading.Lock()

    def work() -> None:
        while True:
            with lock:
                k = next(todo, None)
            if k is None:
                return
            results[k] = fn(*slices[k])

    with ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="hladr-slice") as pool:
        futures = [pool.submit(work) for _ in range(threads - 1)]
        try:
            work()
        finally:
            wait(futures)  # every thread stops before anything is raised or returned
        for f in futures:
            f.result()
    return [(lo, hi, r) for (lo, hi), r in zip(slices, results, strict=True)]


@functools.cache
def blas_threads():
    """threadpoolctl's view of the BLAS/OpenMP libraries loaded, made once per process.

    ``threadpool_limits(...)`` would scan the loaded libraries at every call (3 ms, an
    eighth of a 100k-event fit); the libraries (NumPy's BLAS, loaded with NumPy) do not change
    after that: the gate no longer imports scikit-learn (its k-means++ start is ours).
    """
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()
