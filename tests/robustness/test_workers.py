"""Worker processes die with hladr and never hold the caller's pipes.

Before: after ``kill -9`` (or SIGTERM) of ``hladr run --workers 2``, the two workers
stayed alive with parent 1, ~240 MB each, and kept the caller's stdout open, so lab
automation reading the pipe waited forever. The same held for the report's pool.
Linux only (processes are found through /proc).
"""

from __future__ import annotations

import os
import signal
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from _helpers import SRC, clean_error, hladr_process

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs Linux /proc")


def _children(pid: int) -> set[int]:
    """Live processes whose parent is ``pid``."""
    out = set()
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            out.add(int(d.name))
    return out


def _alive(pids: set[int]) -> set[int]:
    alive = set()
    for p in pids:
        try:
            state = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            alive.add(p)
    return alive


def _wait_for_children(proc, n: int, timeout: float = 60.0) -> set[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        kids = _children(proc.pid)
        if len(kids) >= n:
            return kids
        assert proc.poll() is None, f"hladr ended before starting {n} workers: {proc.stderr.read().decode()}"
        time.sleep(0.02)
    pytest.fail(f"no {n} worker processes after {timeout} s")


def _read_to_eof(stream, timeout: float) -> bool:
    """Whether ``stream`` reaches end-of-file within ``timeout`` seconds."""
    done = threading.Event()

    def drain() -> None:
        stream.read()
        done.set()

    threading.Thread(target=drain, daemon=True).start()
    return done.wait(timeout)


def _gone(pids: set[int], timeout: float) -> set[int]:
    deadline = time.monotonic() + timeout
    while _alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return _alive(pids)


def _finish(proc, pids: set[int]) -> None:
    """Kill what is left of the test's processes (only those it started) and close the pipes."""
    proc.kill()
    proc.wait(10)
    for p in _alive(pids):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def test_kill_9_of_a_run_leaves_no_worker_and_closes_the_pipe(small_run, tmp_path):
    proc = hladr_process(["run", str(small_run), "--out", str(tmp_path / "out"), "--workers", "2", "--quiet"])
    workers: set[int] = set()
    try:
        workers = _wait_for_children(proc, 2)
        proc.kill()
        proc.wait(10)
        assert _read_to_eof(proc.stdout, 10), "the caller's stdout pipe is still held open after hladr was killed"
        assert _read_to_eof(proc.stderr, 10), "the caller's stderr pipe is still held open after hladr was killed"
        assert not _gone(workers, 10), "worker processes survived their parent"
    finally:
        _finish(proc, workers)


def test_sigterm_stops_the_run_and_its_workers_cleanly(small_run, tmp_path):
    out = tmp_path / "out"
    proc = hladr_process(["run", str(small_run), "--out", str(out), "--workers", "2", "--quiet"])
    workers: set[int] = set()
    try:
        workers = _wait_for_children(proc, 2)
        proc.send_signal(signal.SIGTERM)
        stdout, stderr = proc.communicate(timeout=20)
        assert proc.returncode == 143, stderr.decode()
        clean_error(stderr.decode(), "terminated")
        assert not _gone(workers, 5), "worker processes survived SIGTERM of their parent"
        assert not out.exists() and not list(tmp_path.glob("out.tmp-*"))
    finally:
        _finish(proc, workers)


REPORT_CHILD = textwrap.dedent("""
    import sys, time
    import hladr.report as report
    import hladr.report.draw as draw

    def slow_draw(items):  # stands for matplotlib drawing a chunk of figures
        time.sleep(60)
        return [None] * len(items)

    draw.draw_samples = slow_draw
    fake = report.ReportRun(run_id="r", calibration={},
                            samples=tuple(report.ReportSample(record={}, figure={"steps": [{}]}) for _ in range(16)))
    print("drawing", flush=True)
    report.sample_pngs(fake, processes=2)
""")


def test_kill_9_during_the_report_leaves_no_drawing_process(tmp_path):
    import subprocess

    env = dict(os.environ, PYTHONPATH=str(SRC))
    proc = subprocess.Popen([sys.executable, "-c", REPORT_CHILD], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    workers: set[int] = set()
    try:
        assert proc.stdout.readline() == b"drawing\n"
        workers = _wait_for_children(proc, 2)
        time.sleep(0.3)  # the workers have started drawing
        proc.kill()
        proc.wait(10)
        assert _read_to_eof(proc.stdout, 10), "the report's workers hold the caller's stdout"
        assert not _gone(workers, 10), "drawing processes survived their parent"
    finally:
        _finish(proc, workers)
