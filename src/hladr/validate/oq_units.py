"""Operational qualification of the parts, against cases shipped with the package.

Calling contract: each ``check_*`` function returns a list of ``Check`` (and, where there is
one, the table of its cases); data come from ``hladr/data/validation/`` (see
``tests/validate/make_validation_data.py``, which wrote them):

- the Gating-ML 2.0 engine against the compliance suite's file and template, every gate's
  membership (count and SHA-256) as the suite's truth gives it;
- the phenotype rule at its exact boundaries, with the expected calls written here from SPEC.md
  section 2 (4420 ng/mL, 5000 AB/C, censored values, pmol/L), never from the rule table: a rule
  table with a wrong threshold fails here, naming the case;
- FCS reading of small files of each instrument convention, $DATATYPE, byte order and FCS version:
  events, channels, decoded values (SHA-256) and the channel roles found;
- a damaged file and a bad worklist given to the ``hladr`` command, as a user would: exit 2 and
  one line naming the problem (a child process running this installation's ``hladr``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
import os
import subprocess
import sys
from importlib import resources
from pathlib import Path

import numpy as np

from ..rules import RuleSet
from .record import Check, Table

__all__ = ["data_folder", "check_gatingml", "check_phenotype_boundaries", "check_fcs_reading", "check_bad_inputs",
           "BOUNDARY_CASES"]


def data_folder() -> Path:
    """``hladr/data/validation`` of the installed package."""
    return Path(str(resources.files("hladr").joinpath("data/validation")))


def check_gatingml(folder: Path | None = None) -> list[Check]:
    """Every gate of the compliance suite's all-gates template evaluated on its file, against the suite's truth."""
    from ..fcs.read import read_events
    from ..gating.gatingml.engine import evaluate, load_template

    folder = (folder or data_folder()) / "gatingml"
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    events = read_events(folder / expected["fcs"])
    masks = evaluate(load_template(folder / expected["template"]), events)
    bad = []
    for gate_id, want in expected["gates"].items():
        got = masks.get(gate_id)
        if got is None:
            bad.append(f"{gate_id}: not in the template")
        elif hashlib.sha256(np.packbits(got).tobytes()).hexdigest() != want["membership_sha256"]:
            bad.append(f"{gate_id}: {int(got.sum())} events, expected {want['events']}")
    n = len(expected["gates"])
    return [Check("oq.gatingml", "OQ", "Gating-ML 2.0 engine against the compliance suite (every gate, every event)",
                  f"{n - len(bad)} of {n} gates exact on {events.n_events} events", f"all {n}", not bad,
                  "; ".join(bad[:5]))]


# SPEC.md section 2, written out: (AB/C or None, ferritin text, unit, expected call, what it pins)
_JUST_ABOVE_4420 = repr(math.nextafter(4420.0, math.inf))
_JUST_BELOW_5000 = math.nextafter(5000.0, 0.0)
BOUNDARY_CASES: tuple[tuple[float | None, str, str, str, str], ...] = (
    (_JUST_BELOW_5000, "4420", "ng/mL", "immunoparalysis", "ferritin exactly 4420 is not MALS"),
    (5000.0, "4420", "ng/mL", "intermediate", "AB/C exactly 5000 is not immunoparalysis"),
    (4999.0, "100", "ng/mL", "immunoparalysis", "AB/C below 5000"),
    (5001.0, "100", "ng/mL", "intermediate", "AB/C above 5000"),
    (_JUST_BELOW_5000, _JUST_ABOVE_4420, "ng/mL", "MALS", "ferritin just above 4420 is MALS, and wins"),
    (20000.0, "4421", "ng/mL", "MALS", "MALS wins over a high AB/C"),
    (None, "4421", "ng/mL", "MALS", "ferritin alone decides MALS"),
    (None, "4420", "ng/mL", "indeterminate", "no AB/C and no MALS: indeterminate"),
    (3000.0, ">4420", "ng/mL", "MALS", ">X with X >= 4420 is MALS"),
    (3000.0, ">4419", "ng/mL", "indeterminate", ">X with X < 4420: ask for a dilution"),
    (3000.0, "<4420", "ng/mL", "immunoparalysis", "<X with X <= 4420 counts as <= 4420"),
    (3000.0, "<4421", "ng/mL", "indeterminate", "<X with X > 4420 does not decide"),
    (5000.0, "9931.74", "pmol/L", "intermediate", "4420 ng/mL written in pmol/L (x 2.247) is not MALS"),
    (5000.0, "9931.75", "pmol/L", "MALS", "just above 4420 ng/mL in pmol/L is MALS"),
    (5000.0, "4420", "ug/L", "intermediate", "ug/L is ng/mL"),
    (3000.0, "", "ng/mL", "indeterminate", "empty ferritin"),
    (3000.0, "high", "ng/mL", "indeterminate", "non-numeric ferritin"),
    (3000.0, "-5", "ng/mL", "indeterminate", "negative ferritin"),
)


def check_phenotype_boundaries(rules: RuleSet) -> tuple[list[Check], Table]:
    """The phenotype rule (with ``rules``) at SPEC.md's exact boundaries."""
    from ..ferritin import parse_ferritin
    from ..phenotype import call_phenotype

    rows, bad = [], []
    for abc, text, unit, want, why in BOUNDARY_CASES:
        got = call_phenotype(abc, parse_ferritin(text, unit, rules=rules), rules=rules).label
        shown_abc = "none" if abc is None else repr(abc)
        rows.append((shown_abc, f"{text or '(empty)'} {unit}", want, got, "pass" if got == want else "FAIL", why))
        if got != want:
            bad.append(f"AB/C {shown_abc}, ferritin {text!r} {unit}: {got}, expected {want} ({why})")
    table = Table(f"Phenotype rule at its boundaries (SPEC.md section 2), rule set {rules.label}",
                  ("AB/C", "ferritin", "expected", "called", "", "what it pins"), tuple(rows))
    n = len(BOUNDARY_CASES)
    return [Check("oq.phenotype_boundaries", "OQ", "ImmunoSep phenotype rule at its exact boundaries (SPEC.md 2)",
                  f"{n - len(bad)} of {n} cases", f"all {n}", not bad, "; ".join(bad[:4]))], table


def check_fcs_reading(folder: Path | None = None) -> tuple[list[Check], Table]:
    """Each shipped FCS file read: events, channels, decoded values and channel roles as recorded."""
    from ..channels import find_panel
    from ..errors import HladrError
    from ..fcs.read import read_events

    folder = (folder or data_folder()) / "fcs"
    manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
    rows, bad = [], []
    for case in manifest["cases"]:
        try:
            ev = read_events(folder / case["file"])
            p = find_panel(ev)
            roles = {"fsc_a": p.fsc_a, "ssc_a": p.ssc_a, "cd45": p.cd45, "cd14": p.cd14, "hladr": p.hladr}
            got = (ev.n_events, len(ev.pnn),
                   hashlib.sha256(np.ascontiguousarray(ev.data, dtype="<f4").tobytes()).hexdigest(), roles)
            problem = [what for what, g, w in zip(("events", "channels", "values", "channel roles"), got,
                                                  (case["events"], case["channels"], case["values_sha256"],
                                                   case["roles"]), strict=True) if g != w]
            events = str(ev.n_events)
        except HladrError as exc:
            problem, events = [f"not read: {exc}"], "-"
        rows.append((case["file"], case["convention"], events, str(case["channels"]),
                     "pass" if not problem else "FAIL: " + ", ".join(problem)))
        if problem:
            bad.append(f"{case['file']}: {', '.join(problem)} differ")
    n = len(manifest["cases"])
    table = Table("FCS files read (shipped with the package)", ("file", "convention", "events", "channels", "result"),
                  tuple(rows))
    return [Check("oq.fcs_reading", "OQ", "FCS files of each convention, datatype, byte order and version read exactly",
                  f"{n - len(bad)} of {n} files", f"all {n}", not bad, "; ".join(bad[:4]))], table


def _hladr(args: list[str], cwd: Path) -> tuple[int, list[str]]:
    """Run this installation's ``hladr`` (``python -m hladr``) as a user would; (exit status, stderr lines)."""
    env = {**os.environ, "HLADR_DB": str(cwd / "bad-input-store.sqlite"), "HLADR_CACHE": str(cwd / "cache")}
    done = subprocess.run([sys.executable, "-m", "hladr", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)
    return done.returncode, [line for line in done.stderr.splitlines() if line.strip()]


def check_bad_inputs(work: Path, folder: Path | None = None) -> list[Check]:
    """A damaged FCS file (``hladr inspect``) and a worklist with an unknown role (``hladr run``): exit 2, one line."""
    folder = (folder or data_folder()) / "fcs"
    work.mkdir(parents=True, exist_ok=True)
    damaged = work / "damaged.fcs"
    good = (folder / "canto.fcs").read_bytes()
    damaged.write_bytes(good[: len(good) // 2])  # cut in the middle of DATA, as a copy interrupted
    run_dir = work / "badrun"
    run_dir.mkdir(exist_ok=True)
    (run_dir / "beads.fcs").write_bytes(good)
    (run_dir / "P001.fcs").write_bytes(good)
    with open(run_dir / "worklist.csv", "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["file", "role", "sample_id", "subject_id", "visit", "ferritin", "ferritin_unit"])
        w.writerow(["beads.fcs", "beads", "BEADS", "", "", "", ""])
        w.writerow(["P001.fcs", "patient", "P001", "S1", "D1", "1000", "ng/mL"])  # a role hladr does not know
    checks = []
    for cid, what, args, needle in (
        ("oq.bad_file", "a damaged FCS file gives exit 2 and one line naming it (hladr inspect)",
         ["inspect", str(damaged)], "damaged.fcs"),
        ("oq.bad_worklist", "a worklist with an unknown role gives exit 2 and one line naming it (hladr run)",
         ["run", str(run_dir), "--out", str(work / "badrun-out"), "--quiet"], "'patient'"),
    ):
        code, lines = _hladr(args, work)
        lines = [line.replace(str(work), "WORK") for line in lines]  # the same record wherever it ran
        ok = code == 2 and len(lines) == 1 and needle in lines[0] and "Traceback" not in lines[0]
        shown = lines[0] if len(lines) == 1 else f"{len(lines)} lines: " + " | ".join(lines[:3])
        checks.append(Check(cid, "OQ", what, f"exit {code}: {shown}"[:300], f"exit 2, one line naming {needle}", ok,
                            "" if ok else "expected exit 2 and exactly one line on stderr naming the file"))
    return checks
