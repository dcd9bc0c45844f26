"""Spillover keywords of an FCS dataset: $SPILLOVER, SPILL, $COMP and $DFCiTOj.

Used by :mod:`hladr.fcs.read` (:func:`~hladr.fcs.read.parse_spillover`, and so every
stage that compensates) and :mod:`hladr.fcs.describe` (``hladr inspect``).
:func:`parse_spillover_keywords` takes the TEXT keywords as
:mod:`hladr.fcs._parse` returns them (lower case, without the leading ``$``),
the channels' $PnN and $PnS and the file name used in error messages, and
either returns plain data or raises :class:`~hladr.errors.ReadError` with one
line that starts with the file name. Nothing here opens files, prints or warns.

The conventions it applies:

- Order of preference: $SPILLOVER, SPILL, $COMP, $DFCiTOj. A keyword that is
  blank, or declares 0 channels, counts as absent; one that is malformed is an
  error, not skipped.
- Every matrix is returned as a spillover matrix with the source channel in
  rows and the detector in columns (FCS 3.1 $SPILLOVER), whichever keyword it
  came from.
- Channel names in $SPILLOVER/SPILL are mapped to $PnN: exactly, by $PnS,
  case-insensitively, or as channel numbers (Navios/Gallios, Accuri C6 write
  "2,3,4,...").
- $COMP covers the first n channels; an FCS 3.0 $COMP with negative
  off-diagonal terms is a compensation matrix, and its inverse is used.
- $DFCiTOj (Beckman, FCS 2.0) is the percent of detector FLi subtracted from
  FLj, i.e. the spillover ``S[i, j] = DFCiTOj / 100``; see :func:`_dfc_matrix`.
  A Beckman LMD's FCS 3.0 dataset gets these keywords from its FCS 2.0
  companion (quirk ``lmd_dfc_from_fcs2_dataset``, in
  :func:`hladr.fcs._parse.lmd_companion_keywords`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import ReadError
from ._parse import DFC_KEY

__all__ = ["parse_spillover_keywords"]


def _floats(values: Sequence[str]) -> np.ndarray | None:
    try:
        arr = np.array([float(v) for v in values], dtype=np.float64)
    except ValueError:
        return None
    return arr if np.all(np.isfinite(arr)) else None


def _map_names(names: list[str], pnn: Sequence[str], pns: Sequence[str]) -> list[str]:
    """Spillover names -> $PnN: exact, by $PnS, case-insensitive, or channel numbers."""
    pnn = [p.strip() for p in pnn]
    lower = {p.lower(): p for p in pnn}
    by_pns = {s.strip(): p for s, p in zip(pns, pnn, strict=False) if s.strip()}
    if names and all(n.isdigit() for n in names) and not any(n in pnn for n in names):
        # Channel-number form (Navios/Gallios, Accuri C6): "2,3,4,..." are $Pn indices.
        idx = [int(n) for n in names]
        if all(1 <= i <= len(pnn) for i in idx):
            return [pnn[i - 1] for i in idx]
    out = []
    for n in names:
        if n in pnn:
            out.append(n)
        elif n in by_pns:
            out.append(by_pns[n])
        else:
            out.append(lower.get(n.lower(), n))
    return out


def _parse_named_matrix(value: str) -> tuple[list[str], np.ndarray] | None | str:
    parts = [p.strip() for p in value.replace("\n", ",").split(",")]
    while parts and parts[-1] == "":
        parts.pop()
    try:
        n = int(float(parts[0]))
    except (ValueError, IndexError):
        return "does not start with the number of channels"
    if n == 0:
        return None
    if n < 0 or len(parts) != 1 + n + n * n:
        return f"has {len(parts) - 1} entries after n={n}, expected {n + n * n}"
    values = _floats(parts[1 + n :])
    if values is None:
        return "holds a value that is not a number"
    return parts[1 : 1 + n], values.reshape(n, n)


def _dfc_matrix(kw: Mapping[str, str], pnn: Sequence[str]) -> tuple[list[str], np.ndarray] | None:
    """$DFCiTOj (Beckman, FCS 2.0): percent of detector FLi subtracted from FLj.

    That is the spillover of FLi into FLj, so ``S[i, j] = DFCiTOj / 100`` with the
    source in rows as in $SPILLOVER. i and j are fluorescence detector numbers
    (Navios manual), matched to channels named ``FLi ...``; channels of one
    detector in several versions (``FL1 Log``/``FL1 Lin``) form separate blocks
    (a block-diagonal matrix compensates each version with its own kind). Without
    FL-named channels the indices are taken as parameter numbers.
    """
    entries: dict[tuple[int, int], float] = {}
    for key, value in kw.items():
        m = DFC_KEY.match(key)
        if not m:
            continue
        try:
            v = float(value.strip())
        except ValueError:
            continue
        if math.isfinite(v):
            entries[(int(m.group(1)), int(m.group(2)))] = v / 100.0
    if not entries:
        return None
    detectors: dict[str, dict[int, str]] = {}
    for name in pnn:
        m = re.match(r"^\s*FL\s*(\d+)(.*)$", name, re.IGNORECASE)
        if m:
            detectors.setdefault(m.group(2).strip().lower(), {})[int(m.group(1))] = name
    used = {i for pair in entries for i in pair}
    blocks = [grp for grp in detectors.values() if len(set(grp) & used) >= 2]
    if not blocks:
        if not detectors:
            blocks = [{i: pnn[i - 1] for i in sorted(used) if 1 <= i <= len(pnn)}]
        if not blocks or len(blocks[0]) < 2:
            return None
    names: list[str] = []
    dets: list[tuple[int, int]] = []
    for b, grp in enumerate(blocks):
        for det in sorted(grp):
            names.append(grp[det])
            dets.append((b, det))
    k = len(names)
    mat = np.eye(k)
    for r, (br, dr) in enumerate(dets):
        for c, (bc, dc) in enumerate(dets):
            if br == bc and r != c:
                mat[r, c] = entries.get((dr, dc), 0.0)
    return names, mat


def parse_spillover_keywords(
    kw: Mapping[str, str], pnn: Sequence[str], pns: Sequence[str], name: str
) -> tuple[str, list[str], np.ndarray] | None:
    """(keyword used, channel names as $PnN, square spillover matrix) or None.

    Order of preference: $SPILLOVER, SPILL, $COMP, $DFCiTOj. Matrices have the
    source channel in rows and the detector in columns (FCS 3.1 $SPILLOVER).
    """
    for key, label in (("spillover", "$SPILLOVER"), ("spill", "SPILL")):
        value = kw.get(key)
        if value is None or not value.strip():
            continue
        parsed = _parse_named_matrix(value)
        if isinstance(parsed, str):
            raise ReadError(f"{name}: {label} {parsed}")
        if parsed is None:
            continue
        names, mat = parsed
        return label, _map_names(names, pnn, pns), mat
    value = kw.get("comp")
    if value is not None and value.strip():
        parts = [p.strip() for p in value.split(",") if p.strip()]
        try:
            n = int(float(parts[0]))
        except (ValueError, IndexError):
            raise ReadError(f"{name}: $COMP does not start with the number of channels") from None
        values = _floats(parts[1:])
        if n > 0:
            if values is None or values.size != n * n or n > len(pnn):
                raise ReadError(f"{name}: $COMP should hold {n}x{n} numbers for the first {n} channels")
            mat = values.reshape(n, n)
            off = mat[~np.eye(n, dtype=bool)]
            if np.any(off < 0) and abs(np.linalg.det(mat)) > 1e-12:
                # FCS 3.0 $COMP is a compensation matrix (negative off-diagonal
                # terms); its inverse is the spillover.
                mat = np.linalg.inv(mat)
            return "$COMP", [p.strip() for p in pnn[:n]], mat
    dfc = _dfc_matrix(kw, pnn)
    if dfc is not None:
        return "$DFCiTOj", dfc[0], dfc[1]
    return None
