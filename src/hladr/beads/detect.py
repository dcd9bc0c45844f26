"""Which tube of a run is the bead tube, recognised from its data (a run without a worklist).

``looks_like_bead_tube(events)`` tells it from the events; ``is_bead_file(path)`` reads
a file first (a file that cannot be read is not the bead tube: it is then analysed as a
sample and fails with its own reason).

Notes
-----
A QuantiBRITE PE tube is one tight FSC/SSC cluster of singlet beads
(:func:`~hladr.beads.calibrate.find_bead_singlets`) whose PE falls into four narrow
populations. The tube is taken for beads when, among the singlet beads, at least
``MIN_SINGLETS`` are found, at least ``MIN_NARROW_LEVELS`` of the PE populations
(:func:`~hladr.beads.calibrate.find_pe_peaks`) have a robust SD of log10(PE) below
``MAX_LEVEL_SD_DECADES``, and those narrow populations hold at least ``MIN_COVERED`` of
the singlet beads. Bead levels are 0.015-0.05 decades wide (the example run's and the
simulator's tubes); the PE populations of a stained blood tube are several times wider
(0.14-0.19 decades in the example run), so it is not taken for beads. A bead tube with
one level lost is still recognised, and then rejected by the fit (``levels_missing``).

A population's SD alone is not enough: in a sparse tube, sampling noise splits a broad PE
population into many small peaks, and each, cut at its neighbours' valleys, is narrow; an
integer channel of a few dozen values splits into single values, each of SD 0. So
neighbouring populations with a shallow valley between them are first merged (within
``EDGE_DECADES`` of the valley more than ``MAX_EDGE_SHARE`` of the events near the lower
peak; a bead level split by sampling noise is one level again, a broad population broad
again), and a narrow population counts only where it stands alone, as a bead level does:

- *isolated*: within ``EDGE_DECADES`` beyond either of its bounds lie at most ``MAX_EDGE_SHARE``
  as many events as within ``EDGE_DECADES`` of its centre (bead levels, 0.34 decades apart or
  more: at most 0.05 even at 0.07 decades SD; noise-split peaks: 0.2-0.5);
- *resolved*: it holds at least ``MIN_DISTINCT_VALUES`` different PE values (a level of
  0.03 decades SD spans dozens of channels even of a 1024-channel 4-decade log scale), unless
  it is the top level piled up at the tube's highest value (saturated: half its events there).

Measured: on the real corpus, three instruments' rainbow bead files (7-9 levels) are still
recognised; a 725-event CyFlow Cube file of integer PE 5-120 and a Partec rainbow file whose
dim levels sink into a pile-up at zero (which had counted as a level) no longer are. On
simulated tubes of 240-10,000 beads, broad PE populations (0.13-0.4 decades) taken for beads:
144 of 192 before, 0 after; narrow levels (0.01-0.07 decades) missed: 0 of 160 before and after.
"""

from __future__ import annotations

import os

import numpy as np

from .._stats import robust_sd
from ..channels import find_panel
from ..errors import HladrError
from ..events import Events
from ..fcs.read import read_fcs
from .calibrate import find_bead_singlets, find_pe_peaks

__all__ = [
    "EDGE_DECADES", "MAX_EDGE_SHARE", "MAX_LEVEL_SD_DECADES", "MIN_COVERED", "MIN_DISTINCT_VALUES", "MIN_NARROW_LEVELS",
    "MIN_SINGLETS", "is_bead_file", "looks_like_bead_tube",
]

MIN_SINGLETS = 200
"""Singlet beads needed before a tube is looked at (as many as the fit needs)."""
MIN_NARROW_LEVELS = 3
"""Narrow PE populations needed: three of the four levels."""
MAX_LEVEL_SD_DECADES = 0.1
"""A narrow population's robust SD of log10(PE), in decades."""
MIN_COVERED = 0.6
"""Share of the singlet beads the narrow populations must hold."""
EDGE_DECADES = 0.03
"""Width, in decades of PE, of the windows at a population's centre and beyond its bounds."""
MAX_EDGE_SHARE = 0.15
"""Most events beyond either bound of a narrow population, as a share of those at its centre."""
MIN_DISTINCT_VALUES = 10
"""Fewest different PE values a narrow population must hold."""


def looks_like_bead_tube(events: Events) -> bool:
    """Whether ``events`` are a QuantiBRITE PE bead tube (see the module's Notes).

    A tube without scatter or PE channels is not one (``False``, no exception).
    """
    try:
        panel = find_panel(events, require=("hladr",))
    except HladrError:
        return False
    idx = find_bead_singlets(events, panel)
    if idx.size < MIN_SINGLETS:
        return False
    pe = events.column(panel.hladr)[idx].astype(np.float64)
    pops = find_pe_peaks(pe)
    if len(pops) < MIN_NARROW_LEVELS:
        return False
    log_pe = np.log10(pe[pe > 0])
    # a population's members are events of positive PE only (find_pe_peaks bounds their log10)
    levels = [(centre, np.log10(pe[member])) for centre, member in pops]
    narrow, covered = 0, 0
    for centre, x in _merge_shallow(levels, log_pe):
        if x.size and robust_sd(x) < MAX_LEVEL_SD_DECADES and _stands_alone(x, centre, log_pe):
            narrow += 1
            covered += x.size
    return narrow >= MIN_NARROW_LEVELS and covered >= MIN_COVERED * idx.size


def _near(log_pe: np.ndarray, at: float) -> int:
    """Events within ``EDGE_DECADES`` of ``at`` (log10 PE)."""
    return int(np.count_nonzero(np.abs(log_pe - at) < EDGE_DECADES))


def _merge_shallow(levels: list[tuple[float, np.ndarray]], log_pe: np.ndarray) -> list[tuple[float, np.ndarray]]:
    """Neighbouring populations (centre, log10 PE of its events) with a shallow valley between them, merged into
    one (centre: its fullest peak).

    A valley is shallow where the events within ``EDGE_DECADES`` of it exceed ``MAX_EDGE_SHARE`` of those
    near the lower of the two peaks: a bead level split by sampling noise is one level again, and a broad
    population split into many small peaks is broad again.
    """
    merged: list[tuple[float, np.ndarray, int]] = []  # centre, log10 PE of its events, events near the centre
    for centre, x in levels:
        near = _near(log_pe, centre)
        if merged and x.size and merged[-1][1].size:
            last_centre, last_x, last_near = merged[-1]
            valley = 0.5 * float(last_x.max() + x.min())  # midway across the gap between their nearest events
            if _near(log_pe, valley) > MAX_EDGE_SHARE * min(near, last_near):
                keep = (last_centre, last_near) if last_near >= near else (centre, near)
                merged[-1] = (keep[0], np.concatenate([last_x, x]), keep[1])
                continue
        merged.append((centre, x, near))
    return [(c, x) for c, x, _ in merged]


def _stands_alone(x: np.ndarray, centre: float, log_pe: np.ndarray) -> bool:
    """Whether the population ``x`` (log10 PE) is isolated and resolved (see the module's Notes)."""
    values = np.unique(x)
    saturated = values[-1] == log_pe.max() and np.count_nonzero(x == values[-1]) >= x.size / 2
    if values.size < MIN_DISTINCT_VALUES and not saturated:  # a level piled up at the top is still one
        return False
    lo, hi = float(values[0]), float(values[-1])
    below = np.count_nonzero((log_pe >= lo - EDGE_DECADES) & (log_pe < lo))
    above = np.count_nonzero((log_pe > hi) & (log_pe <= hi + EDGE_DECADES))
    return max(below, above) <= MAX_EDGE_SHARE * _near(log_pe, centre)


def is_bead_file(path: str | os.PathLike) -> bool:
    """Whether the FCS file at ``path`` holds a bead tube; ``False`` for a file that cannot be read.

    Only looked at: the file is not hashed (the bead tube that is used is read, and
    hashed, again by :func:`~hladr.beads.record.calibrate_beads`).
    """
    try:
        events = read_fcs(path, sha256=False)[0]
    except HladrError:
        return False
    return looks_like_bead_tube(events)
