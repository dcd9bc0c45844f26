"""Shared helpers of the benchmarks: paths, test data, child processes, peak RSS, tables.

Every measured case runs in a fresh child process (``run_child``), so the peak
RSS reported for it (``ru_maxrss`` of that child, from ``os.wait4``) belongs to
that case alone. Children print one JSON object as their last stdout line.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
OUT = BENCH / "out"
DATA = OUT / "data"
TEMPLATE = BENCH / "data" / "monocytes_template.xml"
PYTHON = sys.executable
HLADR = str(Path(PYTHON).with_name("hladr"))
SEED = 2026
PE_CHANNEL = "PE-A"
GATE_IDS = ("Cells", "Singlets", "Leukocytes", "Monocytes")

# hladr is measured single-threaded (its kernels are; BLAS is pinned to 1 thread too).
# FlowKit keeps its default threading, so the ratio is not flattered by starving it.
SINGLE_THREAD_ENV = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
}


def loadavg() -> list[float]:
    """1, 5 and 15-minute load averages (the machine is shared)."""
    return [round(x, 2) for x in os.getloadavg()]


def maxrss_mb() -> float:
    """Peak RSS of this process so far, MB (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def median_ms(seconds: list[float]) -> float:
    return 1000.0 * statistics.median(seconds)


def child_env(single_thread: bool, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONSTARTUP", None)
    # Python's bytecode cache on, as on a user's machine: a PYTHONDONTWRITEBYTECODE in the
    # developer's environment would make every child recompile hladr's (editable) sources,
    # while FlowKit's were compiled when pip installed them.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    # `hladr run` keeps every result in a store: a benchmark's, never the user's ($HLADR_DB, ~/.local/share)
    env["HLADR_DB"] = str(OUT / "stores" / "hladr.sqlite")
    if single_thread:
        env.update(SINGLE_THREAD_ENV)
    env.update(extra or {})
    return env


def run_child(argv: list[str], *, env: dict[str, str] | None = None, timeout: float = 1800.0,
              parse_json: bool = True, cwd: str | Path | None = None) -> dict:
    """Run ``argv`` to completion; return its JSON (last stdout line), wall time and peak RSS.

    The returned dict holds the child's own JSON fields (when ``parse_json``) plus ``wall_s``
    (spawn to exit), ``maxrss_mb`` (the child's peak RSS, from ``os.wait4``), ``returncode``
    and, when it failed, ``stderr`` (its last lines).
    """
    import tempfile
    import threading

    with tempfile.TemporaryFile() as fout, tempfile.TemporaryFile() as ferr:
        t0 = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=fout, stderr=ferr, env=env, cwd=cwd)
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)  # already reaped: keep Popen from waiting again
        fout.seek(0)
        ferr.seek(0)
        out, err = fout.read().decode(errors="replace"), ferr.read().decode(errors="replace")
    result: dict = {}
    if parse_json:
        lines = [ln for ln in out.strip().splitlines() if ln.startswith("{")]
        if lines:
            result = json.loads(lines[-1])
    result["wall_s"] = wall
    result["maxrss_mb"] = usage.ru_maxrss / 1024.0
    result["returncode"] = proc.returncode
    if proc.returncode != 0 or (parse_json and not result.get("ok", False)):
        result["stderr"] = "\n".join(err.strip().splitlines()[-15:])
    result["stdout_tail"] = "\n".join(out.strip().splitlines()[-3:]) if not parse_json else None
    return result


# --------------------------------------------------------------------------- test data
def _generate(target: Path, code: str) -> None:
    """Run generator ``code`` in a child (its memory is not ours), then mark ``target`` complete."""
    done = target / ".complete"
    if done.is_file():
        return
    target.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    print(f"  generating {target.relative_to(ROOT)} ...", file=sys.stderr, flush=True)
    subprocess.run([PYTHON, "-c", code], check=True, env=child_env(False))
    done.write_text(f"{time.perf_counter() - t0:.1f} s\n")


def tube_run(n_events: int) -> Path:
    """A run folder (beads.fcs + P001_HLADR.fcs with ``n_events``) simulated once and kept in out/data."""
    target = DATA / f"tube_{n_events}"
    _generate(target, (
        "from hladr.simulate.simulator import simulate_run\n"
        f"simulate_run({str(target)!r}, seed={SEED}, instrument='canto', n_samples=1, events_per_tube={n_events})\n"
    ))
    return target


def tube_path(n_events: int) -> Path:
    return tube_run(n_events) / "P001_HLADR.fcs"


def many_tube_run(n_samples: int, events_per_tube: int) -> Path:
    """A daily run of ``n_samples`` tubes (plus beads) with ``events_per_tube`` each."""
    target = DATA / f"run_{n_samples}x{events_per_tube}"
    _generate(target, (
        "from hladr.simulate.simulator import simulate_run\n"
        f"simulate_run({str(target)!r}, seed={SEED}, instrument='canto', n_samples={n_samples}, "
        f"events_per_tube={events_per_tube})\n"
    ))
    return target


def warm_page_cache(path: Path) -> None:
    """Read a file once so every tool starts from the page cache (as in the issue's figures)."""
    with open(path, "rb") as fh:
        while fh.read(1 << 24):
            pass


# --------------------------------------------------------------------------- tables
def table(headers: list[str], rows: list[list], title: str = "") -> str:
    cells = [[("" if v is None else str(v)) for v in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    line = "  ".join("-" * w for w in widths)
    out = [title] if title else []
    out.append("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    out.append(line)
    out += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(out)


def fmt(x: float | None, spec: str = ".1f") -> str:
    return "-" if x is None else format(x, spec)
