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
    "MAX_LEVEL_SD_DECADES", "MIN_COVERED", "MIN_NARROW_LEVELS", "MIN_SINGLETS", "is_bead_file", "looks_like_bead_tube",
]

MIN_SINGLETS = 200
"""Singlet beads needed before a tube is looked at (as many as the fit needs)."""
MIN_NARROW_LEVELS = 3
"""Narrow PE populations needed: three of the four levels."""
MAX_LEVEL_SD_DECADES = 0.1
"""A narrow population's robust SD of log10(PE), in decades."""
MIN_COVERED = 0.6
"""Share of the singlet beads the narrow populations must hold."""


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
    narrow, covered = 0, 0
    for _, member in pops:
        x = np.log10(pe[member & (pe > 0)])
        if x.size and robust_sd(x) < MAX_LEVEL_SD_DECADES:
            narrow += 1
            covered += x.size
    return narrow >= MIN_NARROW_LEVELS and covered >= MIN_COVERED * idx.size


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
