"""batch.progress: a bar on a terminal (a pseudo-terminal here), plain lines on a pipe (none for a run shorter
than a second), nothing when quiet."""

from __future__ import annotations

import os
import pty

import pytest

from hladr.batch.progress import DELAY_S, LOG_EVERY_S, Progress, format_eta


class Clock:
    """A clock the test moves."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _read_all(fd: int) -> str:
    out = b""
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # a pty's master reads EIO once the slave is closed
            break
        if not chunk:
            break
        out += chunk
    return out.decode()


def _drive(stream, clock: Clock, total: int, *, step_s: float, quiet: bool = False) -> None:
    p = Progress(total, quiet=quiet, stream=stream, clock=clock)
    for _ in range(total):
        clock.now += step_s
        p.step()
    p.close()
    stream.close()


def test_a_bar_on_a_terminal():
    master, slave = pty.openpty()
    stream = os.fdopen(slave, "w")
    assert stream.isatty()
    _drive(stream, Clock(), 40, step_s=0.25)  # 10 s in all, 4 tubes/s
    text = _read_all(master)
    os.close(master)
    frames = [f for f in text.split("\r") if f.strip()]
    assert frames[-1].startswith("[" + "#" * 24 + "] 40/40 tubes, 4.0/s, ETA 0:00")
    assert text.endswith("\n") and text.count("\n") == 1  # one line redrawn in place, ended once
    # from the first tube on, every redraw carries done/total, rate and ETA
    assert frames[0].split("]")[1].strip().startswith("1/40 tubes, 4.0/s, ETA 0:10")
    assert all("/40 tubes" in f and "/s, ETA " in f for f in frames)


def test_plain_lines_on_a_pipe_every_tenth():
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    assert not stream.isatty()
    _drive(stream, Clock(), 40, step_s=0.25)
    text = _read_all(r)
    os.close(r)
    lines = text.splitlines()
    assert "\r" not in text
    # from the first second on: one line per tenth of the tubes (4 tubes), the last at 100 %
    assert lines[0] == "hladr: 4/40 tubes, 4.0/s, ETA 0:09 (10 %)"
    assert lines[-1] == "hladr: 40/40 tubes, 4.0/s, ETA 0:00 (100 %)"
    assert len(lines) == 10 and all(line.startswith("hladr: ") for line in lines)


def test_plain_lines_at_least_every_ten_seconds():
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    _drive(stream, Clock(), 1000, step_s=1.0)  # a tenth takes 100 s: a line every 10 s between them
    lines = _read_all(r).splitlines()
    os.close(r)
    assert len(lines) == pytest.approx(1000 / LOG_EVERY_S, abs=2)
    assert lines[-1].startswith("hladr: 1000/1000 tubes")


@pytest.mark.parametrize("quiet,step_s", [(True, 1.0), (False, DELAY_S / 20)])
def test_no_lines_when_quiet_or_under_a_second(quiet, step_s):
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    _drive(stream, Clock(), 10, step_s=step_s, quiet=quiet)
    assert _read_all(r) == ""
    os.close(r)


def test_no_bar_when_quiet():
    master, slave = pty.openpty()
    _drive(os.fdopen(slave, "w"), Clock(), 10, step_s=1.0, quiet=True)
    assert _read_all(master) == ""
    os.close(master)


def test_eta_format():
    assert [format_eta(s) for s in (0, 9.4, 61, 3725)] == ["0:00", "0:09", "1:01", "1:02:05"]


def test_a_broken_pipe_stops_the_progress_not_the_run():
    r, w = os.pipe()
    stream = os.fdopen(w, "w")
    os.close(r)  # the reader is gone (hladr run ... 2>&1 | head)
    clock = Clock()
    p = Progress(10, stream=stream, clock=clock)
    for _ in range(10):
        clock.now += 1.0
        p.step()  # BrokenPipeError inside: caught, progress off
    p.close()
    assert not p.enabled and p.done == 10
    try:
        stream.close()
    except OSError:
        pass
