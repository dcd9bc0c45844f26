"""The calibration record: a fitted bead curve with its lot, the acquisition settings it holds
samples to, and the bead files it came from (``calibrate_beads`` makes one from a bead tube).

``Calibration`` is the one typed record of a calibration from the fit to the samples, the
results store, the report and ``hladr calibrate``; ``CalibrationFailure`` stands in its
place when the bead tube gave no curve at all. Samples are compared with the record's
settings (SPEC.md section 3: instrument, serial, PE voltage and gain, spillover, acquisition
date). ``to_dict``/``from_dict`` convert at the boundaries only: the record of
``calibration.json`` and of the store's ``record_json`` column, and back
(``--calibration CAL.json``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from .. import __version__
from ..channels import Panel, find_panel
from ..compensate import compensate
from ..errors import CalibrationError
from ..events import Events, Spillover, parse_fcs_date
from ..fcs.read import REPAIR_QUIRKS, read_events, spillover_of
from ..results import RunConfig
from .calibrate import BeadCurve, BeadLevel, FitFailure, fit_bead_curve
from .lots import Lot, parse_lot

__all__ = ["AcquisitionSettings", "Calibration", "CalibrationFailure", "acquisition_settings", "calibrate_beads"]


@dataclass(frozen=True)
class AcquisitionSettings:
    """Settings that must match between the bead tube and every sample (SPEC.md §3)."""

    instrument: str | None
    serial: str | None
    pe_channel: str | None
    pe_voltage: str | None
    pe_gain: str | None
    date: str | None
    spillover: dict | None

    def mismatches(self, sample: AcquisitionSettings, *, max_days: int = 0) -> list[str]:
        """Human-readable differences (bead value first), empty when they match.

        Instrument, serial, PE voltage and gain and the spillover matrix must be
        equal; acquisition dates at most ``max_days`` apart (when both are known).
        """
        out = []
        da, db = parse_fcs_date(self.date), parse_fcs_date(sample.date)
        if da is not None and db is not None and abs((db - da).days) > max_days:
            out.append(f"acquisition date {da.isoformat()} vs {db.isoformat()}")
        pairs = [
            ("instrument", self.instrument, sample.instrument),
            ("instrument serial", self.serial, sample.serial),
            ("PE voltage", self.pe_voltage, sample.pe_voltage),
            ("PE gain", _norm_gain(self.pe_gain), _norm_gain(sample.pe_gain)),
        ]
        for what, a, b in pairs:
            if a is not None and b is not None and a != b:
                out.append(f"{what} {a} vs {b}")
            elif (a is None) != (b is None) and what in ("PE voltage", "instrument"):
                out.append(f"{what} {a or 'absent'} vs {b or 'absent'}")
        sa, sb = self.spillover, sample.spillover
        if (sa is None) != (sb is None):
            out.append("spillover present in only one of beads and sample")
        elif sa is not None and sb is not None:
            a = Spillover(tuple(sa["channels"]), _np_array(sa["matrix"]))
            b = Spillover(tuple(sb["channels"]), _np_array(sb["matrix"]))
            if not a.same_as(b):
                out.append("spillover matrix differs")
        return out


def _norm_gain(g: str | None) -> str | None:
    if g is None:
        return None
    try:
        return f"{float(g):g}"
    except ValueError:
        return g


def _np_array(x):
    return np.asarray(x, dtype=float)


def acquisition_settings(events: Events, panel: Panel, spill: Spillover | None) -> AcquisitionSettings:
    """The settings of one tube, read from its keywords."""
    pe = panel.hladr
    k = events.index(pe) + 1 if pe else None
    return AcquisitionSettings(
        instrument=events.keyword("cyt") or None,
        serial=events.keyword("cytsn") or None,
        pe_channel=pe,
        pe_voltage=(events.keyword(f"p{k}v") or None) if k else None,
        pe_gain=(events.keyword(f"p{k}g") or None) if k else None,
        date=events.keyword("date") or None,
        spillover=spill.to_dict() if spill is not None else None,
    )


@dataclass(frozen=True)
class Calibration:
    """An accepted (or rejected) bead calibration with what is needed to check samples.

    ``record_as_read`` is the JSON text of the record this calibration was read from
    (:meth:`from_dict`), ``None`` for a fit: :meth:`to_dict` then gives that record back
    as it was, so a run that reuses a calibration (``--calibration``) writes the record it
    was given -- with the lot file's path, the id of the run that made it, and fields of
    another hladr version -- not one rebuilt from the parts read.
    """

    curve: BeadCurve
    lot: Lot
    settings: AcquisitionSettings
    inputs: tuple[tuple[str, str], ...]
    software_version: str = __version__
    record_as_read: str | None = field(default=None, repr=False, compare=False)

    @property
    def accepted(self) -> bool:
        return self.curve.accepted

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why the fit was rejected, and its warnings (one line each)."""
        return self.curve.reasons

    @property
    def id(self) -> str:
        """Short identity: SHA-256 of the lot id and the bead files' SHA-256, first 16 hex digits.

        The one formula: results (``calibration_id``), ``calibration.json`` and the store's
        unique ``calibration_id`` all take it from here.
        """
        text = self.lot.id + "|" + "|".join(sha for _, sha in self.inputs)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_dict(self) -> dict:
        """The calibration record of SPEC.md §5 (``calibration.json``); the record as read, for one read."""
        if self.record_as_read is not None:
            return json.loads(self.record_as_read)
        c = self.curve
        return {
            "id": self.id,
            "fit": {"slope": c.slope, "intercept": c.intercept, "r2": c.r2},
            "accepted": c.accepted,
            "reasons": list(c.reasons),
            "levels": [lv.to_dict() for lv in c.levels],
            "flags": list(c.flags),
            "lot": self.lot.to_dict(),
            "inputs": [{"file": f, "sha256": h} for f, h in self.inputs],
            "pe_channel": c.pe_channel,
            "bead_events": c.events,
            "bead_singlets": c.singlets,
            "settings": asdict(self.settings),
            "instrument": self.settings.instrument,
            "software_version": self.software_version,
        }

    @classmethod
    def from_dict(cls, d: dict, *, where: str = "calibration record") -> Calibration:
        """Rebuild from a record written by :meth:`to_dict` (``--calibration CAL.json``); keeps the record as read."""
        try:
            record_as_read = json.dumps(d)
            levels = tuple(
                BeadLevel(
                    name=lv["name"], pe_per_bead=float(lv["pe_per_bead"]), mfi=lv.get("mfi"),
                    events=int(lv.get("events", 0)),
                    rcv=None if lv.get("rcv_pct") is None else lv["rcv_pct"] / 100.0,
                    saturated=bool(lv.get("saturated", False)), used=bool(lv["used"]),
                    fitted_pe=lv.get("fitted_pe"), residual_pct=lv.get("residual_pct"),
                )
                for lv in d["levels"]
            )
            fit = d["fit"]
            curve = BeadCurve(
                slope=float(fit["slope"]), intercept=float(fit["intercept"]), r2=float(fit["r2"]),
                levels=levels, accepted=bool(d["accepted"]), flags=tuple(d.get("flags", ())),
                reasons=tuple(d.get("reasons", ())), pe_channel=d.get("pe_channel", ""),
                singlets=int(d.get("bead_singlets", 0)), events=int(d.get("bead_events", 0)),
            )
            lot_d = dict(d["lot"])
            lot_d.pop("path", None)
            lot = parse_lot({"lot": {k: v for k, v in lot_d.items() if v is not None}}, where=where)
            settings = AcquisitionSettings(**d["settings"])
            inputs = tuple((i["file"], i["sha256"]) for i in d["inputs"])
        except (KeyError, TypeError, ValueError) as exc:
            raise CalibrationError(f"{where}: not a valid calibration record ({exc!r})") from None
        return cls(curve=curve, lot=lot, settings=settings, inputs=inputs,
                   software_version=str(d.get("software_version", "")), record_as_read=record_as_read)


@dataclass(frozen=True)
class CalibrationFailure:
    """A bead tube that gave no calibration curve: unreadable, or no bead levels found in it.

    It takes the calibration's place in ``calibration.json`` and the report (never
    accepted; ``code`` and ``reason`` say why); the samples of its run get no HLA-DR value.
    """

    lot: Lot
    bead_file: str
    code: str
    reason: str

    @property
    def curve(self) -> None:
        """No curve: what a reader of ``Calibration | CalibrationFailure`` tests for a fit."""
        return None

    @property
    def accepted(self) -> bool:
        return False

    @property
    def reasons(self) -> tuple[str, ...]:
        return (self.reason,)

    def to_dict(self) -> dict:
        """The record of ``calibration.json`` for a bead tube without a fit (no SHA-256: it may be unreadable)."""
        return {"accepted": False, "flags": [self.code], "reasons": [self.reason], "lot": self.lot.to_dict(),
                "inputs": [{"file": self.bead_file, "sha256": None}]}


def calibrate_beads(path: str, lot: Lot, config: RunConfig | None = None) -> Calibration | FitFailure:
    """Read a QuantiBRITE bead tube and fit its calibration curve.

    Raises ``ReadError``/``ChannelError`` for a file that cannot be used at all;
    returns a falsy ``FitFailure`` when the tube holds no recognisable bead levels.
    """
    config = config or RunConfig()
    rules = config.rules()
    events = read_events(path)
    panel = find_panel(events, require=("hladr",))
    spill = spillover_of(events)
    compensated = compensate(events, spill)
    curve = fit_bead_curve(compensated, panel, lot, rules, raw_events=events)
    if not curve:
        return curve
    repaired = sorted(REPAIR_QUIRKS & set(events.quirks))
    if repaired:
        curve = replace(curve, flags=curve.flags + ("read_repaired",),
                        reasons=curve.reasons + (f"bead tube read with {', '.join(repaired)}",))
    acquired = parse_fcs_date(events.keyword("date"))
    if acquired is not None and lot.expired(acquired):
        # judged on the day the beads were acquired, so re-analysing an old run gives the same verdict
        fail = rules.cal_expired_lot == "fail"
        curve = replace(
            curve,
            accepted=curve.accepted and not fail,
            flags=curve.flags + ("lot_expired",),
            reasons=curve.reasons + (
                f"bead lot {lot.id} expired on {lot.expiry.isoformat()}, beads acquired {acquired.isoformat()}",),
        )
    return Calibration(
        curve=curve,
        lot=lot,
        settings=acquisition_settings(events, panel, spill),
        inputs=((os.path.basename(path), events.sha256),),
    )
