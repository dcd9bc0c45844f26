"""The per-tube work on an existing Dask distributed cluster (``--scheduler tcp://HOST:PORT``).

Only :func:`hladr.pipeline.analyze_sample` runs on the workers: it is a pure function of
(SampleInput, Calibration, RunConfig) and returns a picklable SampleResult. The calibration,
the results store, the outputs and the report stay on the submitting machine. A worker reads
the tube from its path (it needs the package and read access to the files) or, with
``ship_files``, gets the file's bytes and Gating-ML templates from the submitting machine and
analyses a private copy under the same name (the SHA-256 is of the same bytes; the recorded
file and configuration are the original ones).

A worker lost mid-run: the scheduler gives its tubes to another worker; results are kept by
tube index, each index once, so nothing is lost or duplicated. A tube that keeps killing
workers (Dask's ``allowed-failures``) stops the run with one line. Threads: each tube gets
``threads = cores of its host // task slots of all workers on that host`` (at least 1), so that
workers x threads <= cores. Workers must run the submitting machine's hladr version (every
result records the version that made it): another version, or none, stops the run with one line.

Dask is an optional dependency (``pip install 'hladr[dask]'``): it is imported only here,
inside the functions that use it; ``import hladr.batch`` does not load it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import __version__
from .._parallel import usable_cores
from ..errors import ConfigError, HladrError
from ..pipeline import analyze_sample
from ..results import RunConfig, SampleInput, SampleResult

__all__ = ["DaskSession", "connect", "threads_plan", "analyze_shipped", "usable_cores",
           "worker_facts", "worker_cache"]

CONNECT_TIMEOUT_S = 10.0
WAIT_FOR_WORKERS_S = 300.0  # a cluster without workers yet: how long to wait for the first one
TASK_RETRIES = 1  # an exception inside a task (not a lost worker: the scheduler reschedules those) is retried once


def worker_facts() -> tuple[int, str]:
    """(usable cores, hladr version) of the process this runs in: what a worker tells the submitting machine."""
    from .. import __version__

    return usable_cores(), __version__


def threads_plan(workers: Mapping[str, Mapping[str, Any]], cores: Mapping[str, int]) -> dict[str, int]:
    """Threads per tube for each worker: its host's cores over the task slots of all workers on that host.

    ``workers``: address -> ``{"host": ..., "nthreads": ...}`` (the scheduler's worker info);
    ``cores``: address -> usable cores of that worker's process.
    """
    slots: dict[str, int] = {}
    for info in workers.values():
        slots[info["host"]] = slots.get(info["host"], 0) + max(1, int(info["nthreads"]))
    return {addr: max(1, cores.get(addr, 1) // slots[info["host"]]) for addr, info in workers.items()}


def _threads_here(plan: Mapping[str, int]) -> int:
    """This worker's entry of the plan (1 for a worker that joined after it was made)."""
    from distributed import get_worker  # on a worker: Dask is there

    return plan.get(get_worker().address, 1)


def worker_cache(folder: str | None) -> str | None:
    """The parsed-template cache on a worker: the submitting machine's folder where this worker may write it
    (a shared home), else a folder of its own in the temporary directory, else none (each tube parses again)."""
    own = os.path.join(tempfile.gettempdir(), f"hladr-templates-{getattr(os, 'getuid', lambda: 0)()}")
    for candidate in (folder, own):
        if candidate:
            try:
                Path(candidate).mkdir(parents=True, exist_ok=True)
            except OSError:
                continue
            if os.access(candidate, os.W_OK):
                return candidate
    return None


def _analyze_task(inp: SampleInput, calibration: Any, config: RunConfig, plan: Mapping[str, int],
                  template_cache: str | None) -> SampleResult:
    """One tube on a worker, with the threads its host allows."""
    cache = worker_cache(template_cache) if (inp.gates_file or config.gates_file) else None
    return analyze_sample(inp, calibration, config, threads=_threads_here(plan), template_cache=cache)


def analyze_shipped(inp: SampleInput, calibration: Any, config: RunConfig, tube: bytes,
                    templates: Mapping[str, bytes], *, threads: int | None = None,
                    template_cache: str | Path | None = None) -> SampleResult:
    """``analyze_sample`` of a tube given as bytes (and its templates as bytes, by original path).

    The bytes are written under their own names into a private temporary folder; the result
    records the original file and configuration, and the SHA-256 of the same bytes.
    """
    with tempfile.TemporaryDirectory(prefix="hladr_shipped_") as tmp:
        def copy(path: str, data: bytes, k: int) -> str:
            folder = Path(tmp) / str(k)
            folder.mkdir()
            dest = folder / Path(path).name
            dest.write_bytes(data)
            return str(dest)

        local = {p: copy(p, data, k + 1) for k, (p, data) in enumerate(templates.items())}
        tube_path = copy(inp.path, tube, 0)
        here = replace(inp, path=tube_path, file_label=inp.file_label or os.path.basename(inp.path),
                       gates_file=local[inp.gates_file] if inp.gates_file else None)
        cfg = replace(config, gates_file=local[config.gates_file]) if config.gates_file else config
        result = analyze_sample(here, calibration, cfg, threads=threads, template_cache=template_cache)
    return replace(result, config_sha256=config.digest())


def _analyze_shipped_task(inp: SampleInput, calibration: Any, config: RunConfig, tube: bytes,
                          templates: Mapping[str, bytes], plan: Mapping[str, int]) -> SampleResult:
    cache = worker_cache(None) if templates else None  # parsed templates are keyed by their SHA-256
    return analyze_shipped(inp, calibration, config, tube, templates, threads=_threads_here(plan),
                           template_cache=cache)


class DaskSession:
    """A connection to a Dask scheduler that analyses runs' tubes (one session may serve many runs)."""

    def __init__(self, client: Any, address: str, *, ship_files: bool = False) -> None:
        self.client, self.address, self.ship_files = client, address, ship_files

    def plan(self) -> dict[str, int]:
        """Threads per tube for each worker now connected (see :func:`threads_plan`)."""
        info = self.client.scheduler_info(n_workers=-1) if _takes_n_workers(self.client) \
            else self.client.scheduler_info()
        workers = info["workers"]
        if not workers:  # an adaptive cluster (dask-jobqueue, Kubernetes) may start its workers on demand
            try:
                self.client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS_S)
            except TimeoutError:
                raise HladrError(f"--scheduler {self.address}: the Dask cluster has no workers "
                                   f"(none joined in {WAIT_FOR_WORKERS_S:.0f} s)") from None
            return self.plan()
        try:
            facts = self.client.run(worker_facts)
        except Exception as exc:  # a worker without hladr cannot even unpickle the question
            raise HladrError(f"--scheduler {self.address}: the Dask workers cannot run hladr "
                               f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}); "
                               f"install hladr {__version__} on them") from None
        other = sorted({v for _, v in facts.values() if v != __version__})
        if other:  # every result records the version that made it: a run is made by one version
            raise HladrError(f"--scheduler {self.address}: the Dask workers run hladr {', '.join(other)}, "
                               f"this machine {__version__}; install the same version on both")
        return threads_plan(workers, {addr: cores for addr, (cores, _) in facts.items()})

    def analyse(self, inputs: list[SampleInput], calibration: Any, config: RunConfig,
                on_done: Callable[[SampleResult], None], template_cache: Path | None = None) -> list[SampleResult]:
        """Every tube's result in input order; ``on_done`` called once per tube as it arrives."""
        from distributed import as_completed

        plan = self.plan()
        slots = sum(max(1, n) for n in plan.values())
        cache = str(template_cache) if template_cache is not None else None
        templates = self._templates(inputs, config) if self.ship_files else {}
        results: list[SampleResult | None] = [None] * len(inputs)
        pending = iter(enumerate(inputs))
        index: dict[str, int] = {}

        def submit_next() -> Any | None:
            for k, inp in pending:
                if self.ship_files:
                    try:
                        tube = Path(inp.path).read_bytes()
                    except OSError:  # as in a serial run: this tube fails alone, with the reader's flag
                        results[k] = analyze_sample(inp, calibration, config, threads=1)
                        on_done(results[k])
                        continue
                    fut = self.client.submit(_analyze_shipped_task, inp, calibration, config, tube,
                                             {p: templates[p] for p in _templates_of(inp, config)}, plan,
                                             pure=False, retries=TASK_RETRIES)
                else:
                    fut = self.client.submit(_analyze_task, inp, calibration, config, plan, cache,
                                             pure=False, retries=TASK_RETRIES)
                index[fut.key] = k
                return fut
            return None

        # shipped bytes are held by the client until a worker has them: keep only a few tubes in flight
        window = 2 * slots + 2 if self.ship_files else len(inputs)
        live = {f.key: f for f in (submit_next() for _ in range(window)) if f is not None}
        try:
            queue = as_completed(list(live.values()), loop=self.client.loop)
            for fut in queue:
                k = index[fut.key]
                if results[k] is None:  # each tube once, whatever the scheduler did on the way
                    results[k] = self._result(fut, inputs[k])
                    on_done(results[k])
                live.pop(fut.key, None)
                fut.release()  # its result is here now: the cluster need not keep it
                nxt = submit_next()
                if nxt is not None:
                    live[nxt.key] = nxt
                    queue.add(nxt)
        except BaseException:
            self.client.cancel(list(live.values()))
            raise
        missing = [inputs[k].path for k, r in enumerate(results) if r is None]
        if missing:  # cannot happen while as_completed keeps its word; never report a partial run as whole
            raise HladrError(f"--scheduler {self.address}: no result for {len(missing)} tubes ({missing[0]}, ...)")
        return [r for r in results if r is not None]

    def _result(self, fut: Any, inp: SampleInput) -> SampleResult:
        from distributed import CancelledError
        from distributed.scheduler import KilledWorker

        try:
            return fut.result()
        except KilledWorker:
            raise HladrError(f"{inp.path}: the Dask workers analysing this tube died every time it was "
                               "given to one (out of memory?); the run is stopped") from None
        except CancelledError:
            raise HladrError(f"--scheduler {self.address}: the tube {inp.path} was cancelled "
                               "(scheduler restarted or connection lost)") from None

    @staticmethod
    def _templates(inputs: list[SampleInput], config: RunConfig) -> dict[str, bytes]:
        paths = {p for inp in inputs for p in _templates_of(inp, config)}
        return {p: _read_bytes(p) for p in sorted(paths)}

    def close(self) -> None:
        self.client.close()


def _templates_of(inp: SampleInput, config: RunConfig) -> list[str]:
    return [p for p in (inp.gates_file, config.gates_file) if p]


def _read_bytes(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read it to send to the Dask workers ({exc.strerror or exc})") from None


def _takes_n_workers(client: Any) -> bool:
    import inspect

    return "n_workers" in inspect.signature(client.scheduler_info).parameters


@contextmanager
def connect(address: str, *, ship_files: bool = False, timeout: float | None = None) -> Iterator[DaskSession]:
    """A :class:`DaskSession` on the scheduler at ``address``; one clear error without Dask or a scheduler."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask distributed, which is not installed: "
                          "pip install 'hladr[dask]'") from None
    try:
        client = Client(address, timeout=timeout if timeout is not None else CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, TimeoutError, ValueError, TypeError) as exc:
        why = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ConfigError(f"--scheduler {address}: cannot reach the Dask scheduler ({why})") from None
    session = DaskSession(client, address, ship_files=ship_files)
    try:
        if client.scheduler_info()["workers"]:
            session.plan()  # workers that cannot run this hladr stop the run now, before any work
        yield session
    finally:
        session.close()
