"""``hladr gates export SAMPLE --out G.xml``: a stored result's automated gates as Gating-ML 2.0, to correct.

The correction workflow of issue 15: the sample's current result in the results store gives its
gate record (``SampleResult.gate``, :meth:`MonocyteGate.to_dict`), its channels, the tube's file
and SHA-256, and the run (its folder). The tube is read again (from the run folder, or ``--fcs``),
proven to be the same file (SHA-256), compensated as the pipeline does, the gate rebuilt from
its record and applied again (its count must be the stored one), and the gate chain written as
Gating-ML 2.0 (:func:`hladr.gating.export.export_gatingml`). The exported file is read back with
the Gating-ML engine, as ``hladr run --gates-for SAMPLE G.xml`` will read it, and the two counts
are printed. Any problem is one line (``ConfigError``/``GateError``), exit status 2.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from . import __version__
from ._atomic import write_atomic
from .batch.output_set import check_output_file
from .channels import Panel
from .compensate import compensate
from .errors import ConfigError, GateError
from .fcs.read import read_events, spillover_of
from .gating.export import export_gatingml
from .gating.gatingml.engine import apply_monocyte_template, load_template
from .gating.monocyte_gate import MonocyteGate
from .safe_text import printable
from .store.query import StoredResult, sample_versions, stored_run

__all__ = ["export_sample_gates"]


def _current(db: str | os.PathLike, sample_id: str) -> StoredResult:
    if not Path(db).is_file():
        raise ConfigError(f"no results store at {db} (give it with --db FILE or $HLADR_DB)")
    versions = sample_versions(db, sample_id)
    if not versions:
        raise ConfigError(f"no sample {sample_id} in the results store {db}; 'hladr results list' shows the samples")
    return versions[-1]


def _gate_record(result: StoredResult) -> dict:
    """The current result's automated gate record, or one line saying why there is none to export."""
    gate = result.record.get("gate") or {}
    who = f"sample {result.sample_id} (version {result.version})"
    if gate.get("template"):
        raise ConfigError(f"{who} was gated with the Gating-ML file {gate['template']}, not by the automated gate: "
                          "edit that file instead")
    if gate.get("failed"):
        raise ConfigError(f"{who}: the automated gate failed on this tube ({gate['failed']}); there are no gates "
                          "to export")
    if gate.get("method") != "mixture":
        raise ConfigError(f"{who} has no automated gate to export (the tube was not gated)")
    return gate


def _tube_path(db: str | os.PathLike, result: StoredResult, fcs: str | None) -> Path:
    """The tube's file: ``--fcs``, else the result's ``file`` in the folder of the run that made it."""
    if fcs:
        path = Path(fcs)
    else:
        file = result.record.get("file") or result.file
        if not result.run_id:
            raise ConfigError(f"sample {result.sample_id}: the store names no run for its result; give the tube "
                              "with --fcs FILE")
        path = Path(stored_run(db, result.run_id).run_dir) / file
    if not path.is_file():
        raise ConfigError(f"{path}: the tube of sample {result.sample_id} is not there; give it with --fcs FILE")
    return path


def export_sample_gates(db: str | os.PathLike, sample_id: str, out: str, *, fcs: str | None = None) -> int:
    """``hladr gates export``: write the sample's automated gates to ``out``; 0 written (else one-line errors)."""
    out_path = check_output_file(out)
    if out_path.exists():
        raise ConfigError(f"--out {out}: exists; give a new file name (an exported file is never replaced)")
    result = _current(db, sample_id)
    record = _gate_record(result)
    path = _tube_path(db, result, fcs)
    raw = read_events(str(path))
    if raw.sha256 != result.sha256:
        raise ConfigError(f"{path}: not the file sample {sample_id}'s result was made from (SHA-256 "
                          f"{raw.sha256[:12]}..., the result's {str(result.sha256)[:12]}...); nothing written")
    channels = result.record.get("channels") or {}
    try:
        panel = Panel(**{k: channels.get(k) for k in ("fsc_a", "fsc_h", "ssc_a", "cd45", "cd14", "hladr")})
    except TypeError:
        raise GateError(f"sample {sample_id}: the result's channel record is incomplete") from None
    gate = MonocyteGate.from_dict(record, panel)
    spill = spillover_of(raw)
    events = compensate(raw, spill)
    again = gate.apply(events, threads=None)
    stored = result.record.get("monocyte_count")
    if again.n_monocytes != stored:
        raise GateError(f"sample {sample_id}: the stored gate applied again selects {again.n_monocytes} monocytes, "
                        f"the result {stored}; not exported")
    about = (f"sample {sample_id}, file {result.file}, SHA-256 {result.sha256}, result {result.result_id} "
             f"(version {result.version}), hladr {__version__}")
    if not stored:
        raise ConfigError(f"sample {sample_id}: the automated gate selected no monocytes; there is no gate to trace")
    try:
        xml = export_gatingml(gate, events, spillover=spill, monocytes=again.mask, about=about)
    except ValueError as exc:
        raise GateError(f"sample {sample_id}: the monocyte gate could not be traced ({exc})") from None
    with tempfile.TemporaryDirectory(prefix="hladr-gates-") as tmp:
        check = Path(tmp) / "exported.xml"
        check.write_text(xml, encoding="utf-8")
        n_back = apply_monocyte_template(load_template(check), raw).n_monocytes
    try:
        write_atomic(out_path, xml, overwrite=False)
    except FileExistsError:
        raise ConfigError(f"--out {out}: exists; give a new file name (an exported file is never replaced)") from None
    diff = 100.0 * (n_back - stored) / stored if stored else 0.0
    print(printable(f"wrote {out_path} (sample {sample_id}, {path.name})"))
    print(f"exported gates select {n_back} monocytes; the automated gate {stored} ({diff:+.2f} %)")
    return 0
