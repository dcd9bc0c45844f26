"""Panel roles (scatter, CD45, CD14, HLA-DR PE) found from $PnN / $PnS.

``find_panel(events)`` returns a frozen ``Panel`` naming the $PnN of each role.
Markers in $PnS win (``HLA-DR PE``, ``CD14 PerCP-Cy5.5``, ``cd45 V500``); then
detector and fluorochrome conventions of BD, Beckman Coulter and others
(``PE-A``, ``FL2 INT``, ``PC5.5-A``, ``KO525-A``...). Matching ignores case and
punctuation. Area (``-A``/``INT``) is preferred over height (``-H``/``PEAK``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ChannelError
from .events import Events

__all__ = ["Panel", "find_panel", "normalise"]


def normalise(text: str) -> str:
    """Lower case, letters and digits only: ``'PerCP-Cy5.5-A'`` -> ``'percpcy55a'``."""
    return re.sub(r"[^a-z0-9]", "", text.lower())


# Marker patterns on $PnS (raw lower-case text, so that CD14 does not match CD140).
_MARKERS = {
    "hladr": re.compile(r"(?<![a-z0-9])(hla[\s_\-]?dr|mhc[\s_\-]?(ii|2|class[\s_\-]?ii))(?![a-z0-9])"),
    "cd14": re.compile(r"(?<![a-z0-9])cd[\s_\-]?14(?![0-9])"),
    "cd45": re.compile(r"(?<![a-z0-9])cd[\s_\-]?45(?![0-9]|r[aob])"),
}

# Detector / fluorochrome names (normalised $PnN) by role, best first.
_DETECTORS = {
    "hladr": ["pea", "pe", "fl2a", "fl2int", "fl2intlin", "fl2intlog", "fl2", "fl2log", "fl2h"],
    "cd14": ["percpcy55a", "percpcy55", "pc55a", "pc55", "percpcy5a"],
    "cd45": ["v500a", "v500ca", "ko525a", "ko525", "bv510a", "v500"],
}
# Scatter names vary widely (FSC-A, FS INT, FS PEAK, FSC LinA, FS-Lin, FSC-Height, FS TOF, SSC):
# a name is <fsc|fs|ssc|ss> plus optional lin/log and pulse-feature words, in any order.
_SCATTER_NAME = re.compile(
    r"^(?P<kind>fsc|fs|ssc|ss)(?P<num>\d?)(?P<rest>([\s_\-]*(lin|log|int|area|a|h|height|peak|w|width|tof))*)$"
)
_FEATURE = {"a": "a", "area": "a", "int": "a", "h": "h", "height": "h", "peak": "h", "w": "w", "width": "w", "tof": "w"}


def _scatter_channels(events: Events, taken: set[str]) -> dict[str, str | None]:
    """FSC-A/H/W and SSC-A/H by name pattern.

    Preference: an unnumbered detector, or the blue-laser (488 nm) one of numbered
    per-laser scatter (MoFlo Astrios SSC1..SSC6); then linear over log; then file order.
    """
    found: dict[str, list[tuple[int, int, int, str]]] = {}
    for order, pnn in enumerate(events.pnn):
        m = _SCATTER_NAME.match(pnn.strip().lower())
        if not m or pnn in taken:
            continue
        words = re.findall(r"lin|log|int|area|height|peak|width|tof|a|h|w", m.group("rest"))
        feature = next((_FEATURE[w] for w in words if w in _FEATURE), "a")  # bare 'FSC'/'FS Lin' = area
        is_log = "log" in words
        role = ("fsc_" if m.group("kind").startswith("f") else "ssc_") + feature
        other_laser = bool(m.group("num")) and "488" not in events.pns[order]
        found.setdefault(role, []).append((int(other_laser), int(is_log), order, pnn))
    return {role: min(c)[3] for role, c in found.items()}


_OTHER_MARKER = re.compile(r"(?<![a-z0-9])(cd[\s_\-]?\d+|hla|mhc|ig[gmade]\b|ki[\s\-]?67)")
_AREA_SUFFIX = re.compile(r"(-a|\sint|-int|_a)$", re.I)
_HEIGHT_SUFFIX = re.compile(r"(-h|\speak|_h)$", re.I)


@dataclass(frozen=True)
class Panel:
    """$PnN of each role in one tube; ``None`` where the tube has no such channel."""

    fsc_a: str
    ssc_a: str
    fsc_h: str | None = None
    fsc_w: str | None = None
    cd45: str | None = None
    cd14: str | None = None
    hladr: str | None = None
    flags: tuple[str, ...] = ()

    def to_dict(self) -> dict:
        """Plain record (the ``channels`` object of ``hladr gate --json``)."""
        return {
            "fsc_a": self.fsc_a,
            "fsc_h": self.fsc_h,
            "ssc_a": self.ssc_a,
            "cd45": self.cd45,
            "cd14": self.cd14,
            "hladr": self.hladr,
        }


def _rank_area_first(names: list[str]) -> list[str]:
    def key(n: str) -> int:
        if _AREA_SUFFIX.search(n):
            return 0
        if _HEIGHT_SUFFIX.search(n):
            return 2
        return 1

    return sorted(names, key=key)


def _by_marker(events: Events, role: str) -> str | None:
    pattern = _MARKERS[role]
    hits = [pnn for pnn, pns in zip(events.pnn, events.pns, strict=True) if pattern.search(pns.lower())]
    if not hits:  # some files put the marker into $PnN (e.g. 'HLADr', 'CD14')
        hits = [pnn for pnn in events.pnn if pattern.search(pnn.lower())]
    ranked = _rank_area_first(hits)
    return ranked[0] if ranked else None


def _by_name(events: Events, candidates: list[str], taken: set[str]) -> str | None:
    norm = {normalise(p): p for p in events.pnn if p not in taken}
    for c in candidates:
        if c in norm:
            return norm[c]
    return None


def find_panel(events: Events, *, require: tuple[str, ...] = ("cd14",)) -> Panel:
    """Find the channel of each role in ``events``.

    Parameters
    ----------
    events : Events
        The tube.
    require : tuple of str
        Roles that must be found (``"cd14"``, ``"hladr"``, ``"cd45"``); scatter
        (FSC-A and SSC-A, or their equivalents) is always required.

    Returns
    -------
    Panel

    Raises
    ------
    ChannelError
        A required role is not in the file; the message lists the channels seen.
    """
    taken: set[str] = set()
    roles: dict[str, str | None] = {}
    for role in ("hladr", "cd14", "cd45"):
        ch = _by_marker(events, role)
        if ch is not None and ch in taken:
            ch = None
        roles[role] = ch
        if ch:
            taken.add(ch)
    for role in ("hladr", "cd14", "cd45"):
        if roles[role] is None:
            ch = _by_name(events, _DETECTORS[role], taken)
            # A detector name only counts when its $PnS names no other marker
            # (PE-A labelled 'CD3 PE' carries CD3, not HLA-DR).
            if ch is not None and _OTHER_MARKER.search(events.pns[events.index(ch)].lower()):
                ch = None
            roles[role] = ch
            if ch:
                taken.add(ch)
    scatter = _scatter_channels(events, taken)
    flags: list[str] = []
    fsc_a = scatter.get("fsc_a") or scatter.get("fsc_h")
    ssc_a = scatter.get("ssc_a") or scatter.get("ssc_h")
    fsc_h = scatter.get("fsc_h") if scatter.get("fsc_a") else None
    seen = ", ".join(f"{n} [{s}]" if s else n for n, s in zip(events.pnn, events.pns, strict=True))
    name = events.path.rsplit("/", 1)[-1] or "tube"
    if fsc_a is None or ssc_a is None:
        raise ChannelError(f"{name}: no forward/side scatter channels found (channels: {seen})")
    if scatter.get("fsc_a") is None:
        flags.append("fsc_height_only")
    for role in require:
        if roles.get(role) is None:
            label = {"cd14": "CD14", "hladr": "HLA-DR PE", "cd45": "CD45"}[role]
            raise ChannelError(f"{name}: no {label} channel found (channels: {seen})")
    if fsc_h is None and scatter.get("fsc_w") is None:
        flags.append("no_singlet_channel")
    return Panel(
        fsc_a=fsc_a,
        ssc_a=ssc_a,
        fsc_h=fsc_h,
        fsc_w=scatter.get("fsc_w"),
        cd45=roles["cd45"],
        cd14=roles["cd14"],
        hladr=roles["hladr"],
        flags=tuple(flags),
    )
