"""Progress of a run's tubes on stderr: a bar on a terminal, plain log lines otherwise, nothing when quiet.

A terminal gets one line redrawn in place (tubes done / total, rate, ETA) from the first tube on,
at most every ``REDRAW_S`` (it costs nothing to the screen: a short run's bar simply ends full).
A pipe or a file (lab automation logs) gets nothing for a run shorter than ``DELAY_S``, then one
plain line each time another tenth of the tubes is done or ``LOG_EVERY_S`` has passed, whichever
comes first, and a last line when the tubes are all done. The clock and the stream are arguments
so that tests drive them.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TextIO

from ..safe_text import printable

__all__ = ["Progress", "DELAY_S", "LOG_EVERY_S", "format_eta"]

DELAY_S = 1.0  # no log line for a run that ends sooner
REDRAW_S = 0.1  # a terminal's bar is redrawn at most this often
LOG_EVERY_S = 10.0  # a plain log line at least this often (and at every tenth of the tubes)
_BAR = 24


def format_eta(seconds: float) -> str:
    """``seconds`` as ``m:ss`` (or ``h:mm:ss``), for the bar and the log lines."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    m, s = divmod(rest, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


class Progress:
    """Tubes done of ``total``, shown on ``stream`` (default stderr) unless ``quiet``."""

    def __init__(self, total: int, *, quiet: bool = False, label: str = "tubes", stream: TextIO | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.total, self.done, self.label = total, 0, printable(label)
        self.stream = stream if stream is not None else sys.stderr
        self.clock = clock
        self.enabled = not quiet and total > 0
        try:
            self.tty = bool(self.stream.isatty())
        except (AttributeError, ValueError):  # a closed or fake stream: plain lines
            self.tty = False
        self.started = clock()
        self._last_shown: float | None = None  # when something was last written
        self._last_tenth = 0
        self._shown_done = -1  # the tubes done in the last plain line

    # ------------------------------------------------------------------ figures
    def rate(self, now: float) -> float:
        """Tubes per second since the start."""
        elapsed = now - self.started
        return self.done / elapsed if elapsed > 0 else 0.0

    def _figures(self, now: float) -> str:
        rate = self.rate(now)
        eta = format_eta((self.total - self.done) / rate) if rate > 0 else "?"
        return f"{self.done}/{self.total} {self.label}, {rate:.1f}/s, ETA {eta}"

    # ------------------------------------------------------------------ updates
    def step(self, n: int = 1) -> None:
        """``n`` more tubes are done."""
        self.done = min(self.total, self.done + n)
        if not self.enabled:
            return
        now = self.clock()
        if self.tty:
            if self._last_shown is None or now - self._last_shown >= REDRAW_S or self.done == self.total:
                self._draw(now)
        elif now - self.started >= DELAY_S:
            tenth = (10 * self.done) // self.total
            if self._last_shown is None or tenth > self._last_tenth or now - self._last_shown >= LOG_EVERY_S:
                self._line(now)
                self._last_tenth = tenth

    def _draw(self, now: float) -> None:
        filled = (_BAR * self.done) // self.total
        bar = "#" * filled + "." * (_BAR - filled)
        self._write(f"\r[{bar}] {self._figures(now)}   ")
        self._last_shown = now

    def _line(self, now: float) -> None:
        pct = (100 * self.done) // self.total
        self._write(f"hladr: {self._figures(now)} ({pct} %)\n")
        self._last_shown, self._shown_done = now, self.done

    def _write(self, text: str) -> None:
        """Write and flush; a closed or broken stderr stops the progress, never the run."""
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            self.enabled = False

    def close(self) -> None:
        """The tubes are done (or the run stops): end the bar's line, or log the last figures."""
        if not self.enabled or self._last_shown is None:
            return
        now = self.clock()
        if self.tty:
            self._draw(now)
            if self.enabled:
                self._write("\n")
        elif self._shown_done != self.done:
            self._line(now)
