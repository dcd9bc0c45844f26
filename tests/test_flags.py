"""The flag table is the output contract: every code, severity and message, and nothing emitted outside it.

``CONTRACT`` below is the table as results.csv, results.json, the report and the eCRF import know it.
Changing a code, a severity or a message fails this test: change it here too, bump
``FLAGS_VERSION``, and say why in the commit. The other tests check that every code the code
base can emit is in the table (by reading the source), and that no code is left in it that
nothing emits.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import pkgutil
from pathlib import Path

import pytest

import hladr
from hladr import errors
from hladr.batch.checks import RUN_CODES
from hladr.flags import ERROR_CODES, FLAGS, FLAGS_VERSION, SEVERITIES, Flag, error_flag, flag

SRC = Path(hladr.__file__).parent

_GATING_FAILED = ("fail", "gating failed: {reason}")
_ERROR = ("fail", "{error}")

CONTRACT_VERSION = 2
CONTRACT = {
    "read_repaired": ("warn", "{file}: read by a fallback or with repaired offsets ({quirks}); review the file"),
    "unreadable": _ERROR,
    "missing_channel": _ERROR,
    "compensation": _ERROR,
    "gate": _ERROR,
    "calibration": _ERROR,
    "lot": _ERROR,
    "config": _ERROR,
    "store": _ERROR,
    "storebusy": _ERROR,
    "hladr": _ERROR,
    "no_calibration": ("fail", "no accepted bead calibration for this run"),
    "calibration_rejected": ("fail", "the run's bead calibration was rejected"),
    "calibration_read_repaired": ("warn", "the bead tube was read by a fallback or with repaired offsets; review it"),
    "lot_expired": ("warn", "bead lot {lot} was past its expiry date"),
    "settings_mismatch": ("fail", "settings_mismatch: {difference} (beads vs sample)"),
    "gated_without_cd45": ("info", "no CD45 channel: monocytes gated on CD14/SSC only"),
    "no_singlet_channel": ("warn", "no FSC-H/FSC-W channel: doublets not excluded (no singlet gate)"),
    "fsc_height_only": ("info", "only FSC-H available: used as forward scatter"),
    "gated_after_debris_refit": ("info", "the first mixture's gate failed; a second fit without the debris "
                                         "passed every check"),
    "too_few_events": _GATING_FAILED,
    "no_cells": _GATING_FAILED,
    "no_singlets": _GATING_FAILED,
    "monocytes_not_identified": _GATING_FAILED,
    "monocytes_implausible": _GATING_FAILED,
    "monocytes_not_separated": _GATING_FAILED,
    "monocytes_hladr_negative": _GATING_FAILED,
    "gates_disagree": _GATING_FAILED,
    "monocytes_too_few": ("fail", "{n} monocytes < {limit}"),
    "monocytes_low": ("warn", "{n} monocytes < {limit}"),
    "extrapolated_below_low_bead": ("warn", "median PE below the low bead: value extrapolated"),
    "extrapolated_above_high_bead": ("warn", "median PE above the highest bead used: value extrapolated"),
    "hladr_not_measurable": ("warn", "monocyte PE not positive: HLA-DR not measurable"),
    "ferritin_unusable": ("warn", "{problem}"),
    "ferritin_missing": ("info", "no ferritin for this sample: phenotype indeterminate (HLA-DR is valid)"),
    "duplicate_sample_id": ("warn", "sample id shared by {n} tubes ({files}): review before import"),
    "duplicate_file_content": ("fail", "the same file content (SHA-256 {sha}) as {others}, listed for another "
                                       "sample: the data cannot belong to both, so no HLA-DR value is reported; "
                                       "check which tube is which"),
    "duplicate_file_content_same_sample": ("warn", "the same file content (SHA-256 {sha}) as {others}, under the "
                                                   "same sample: counted twice"),
}

# the code of each exception class (before the table, the code was derived from the class name)
ERROR_CONTRACT = {
    "ReadError": "unreadable",
    "ChannelError": "missing_channel",
    "CompensationError": "compensation",
    "GateError": "gate",
    "CalibrationError": "calibration",
    "LotError": "lot",
    "ConfigError": "config",
    "StoreBusyError": "storebusy",
    "StoreError": "store",
    "HladrError": "hladr",
}


def test_the_table_is_the_contract():
    assert FLAGS_VERSION == CONTRACT_VERSION, "the table's version changed: update CONTRACT with it"
    table = {code: (spec.severity, spec.message) for code, spec in FLAGS.items()}
    assert table == CONTRACT, "a flag code, severity or message changed: update CONTRACT and bump FLAGS_VERSION"
    assert all(spec.severity in SEVERITIES for spec in FLAGS.values())
    assert {cls.__name__: code for cls, code in ERROR_CODES.items()} == ERROR_CONTRACT


def test_the_table_cannot_be_changed_at_run_time():
    with pytest.raises(TypeError):
        FLAGS["no_calibration"] = FLAGS["monocytes_low"]  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        FLAGS["no_calibration"].severity = "warn"  # type: ignore[misc]


def test_flag_fills_the_message_and_refuses_what_the_table_lacks():
    assert flag("monocytes_too_few", n=712, limit=1000) == Flag("monocytes_too_few", "712 monocytes < 1000", "fail")
    assert flag("no_singlet_channel").severity == "warn"
    assert flag("gates_disagree", reason="x {y}") == Flag("gates_disagree", "gating failed: x {y}", "fail")
    with pytest.raises(KeyError):
        flag("no_such_code")
    with pytest.raises(TypeError):  # a field missing
        flag("monocytes_low", n=3)
    with pytest.raises(TypeError):  # a field the message does not show would be lost
        flag("no_calibration", detail="x")


def _all_error_types() -> set[type[errors.HladrError]]:
    for mod in pkgutil.walk_packages(hladr.__path__, "hladr."):
        if not mod.name.endswith("__main__"):
            importlib.import_module(mod.name)
    found, todo = set(), [errors.HladrError]
    while todo:
        cls = todo.pop()
        found.add(cls)
        todo.extend(cls.__subclasses__())
    return found


def test_every_exception_type_has_its_code_from_the_table_not_from_its_name():
    types = {t for t in _all_error_types() if t.__module__.startswith("hladr")}  # not other tests' own
    assert types <= set(ERROR_CODES), "an exception type without a code in hladr.flags.ERROR_CODES"
    for cls in types:
        f = error_flag(cls("x.fcs: what went wrong"))
        assert f.code in FLAGS and f.severity == "fail" and f.message == "x.fcs: what went wrong"

    class RenamedReadFailure(errors.ReadError):  # a new name changes no output
        pass

    assert error_flag(RenamedReadFailure("m")).code == "unreadable"


# --- every code the source can emit is in the table, read from the source itself ---------------

def _tree(rel: str) -> ast.Module:
    return ast.parse((SRC / rel).read_text(encoding="utf-8"))


def _name(func: ast.expr) -> str | None:
    return func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None


def _str(node: ast.expr) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _sources() -> list[str]:
    return sorted(p.relative_to(SRC).as_posix() for p in SRC.rglob("*.py"))


def test_flags_are_made_only_through_the_table():
    """No ``Flag(...)`` outside hladr/flags.py; every literal ``flag(code, ...)`` names a code with its fields."""
    literal_calls = 0
    for rel in _sources():
        for node in ast.walk(_tree(rel)):
            if not isinstance(node, ast.Call):
                continue
            if _name(node.func) == "Flag":
                assert rel == "flags.py", f"{rel}:{node.lineno}: a Flag made outside the table"
            if _name(node.func) == "flag" and node.args and _str(node.args[0]) is not None:
                code = _str(node.args[0])
                assert code in FLAGS, f"{rel}:{node.lineno}: {code!r} is not in hladr.flags.FLAGS"
                assert {k.arg for k in node.keywords} == FLAGS[code].fields, f"{rel}:{node.lineno}: fields"
                literal_calls += 1
    assert literal_calls >= 10


def _stage_codes() -> dict[str, set[str]]:
    """Codes that the gate, the channel finder and quantification return as plain strings
    (``failure("code", ...)``, ``fail("code", ...)``, ``flags.append("code")``, ``x.flags + ("code",)``),
    turned into flags by the pipeline."""
    out: dict[str, set[str]] = {}
    for rel in ("gating/automated.py", "gating/check.py", "channels.py", "quantify.py"):
        codes = out.setdefault(rel, set())
        for node in ast.walk(_tree(rel)):
            if isinstance(node, ast.Call) and node.args and _str(node.args[0]) is not None:
                name = _name(node.func)
                is_flags_append = (name == "append" and isinstance(node.func, ast.Attribute)
                                   and _name(node.func.value) == "flags")
                if name in ("failure", "fail") or is_flags_append:
                    codes.add(_str(node.args[0]))
            if (isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add)
                    and isinstance(node.left, ast.Attribute) and node.left.attr == "flags"
                    and isinstance(node.right, ast.Tuple)):
                codes.update(s for s in map(_str, node.right.elts) if s is not None)
    return out


def test_every_code_a_stage_returns_is_in_the_table():
    found = _stage_codes()
    assert len(found["gating/automated.py"]) >= 6 and len(found["gating/check.py"]) >= 4
    assert found["channels.py"] == {"fsc_height_only", "no_singlet_channel"}
    assert found["quantify.py"] == {"extrapolated_below_low_bead", "extrapolated_above_high_bead",
                                    "hladr_not_measurable"}
    for rel, codes in found.items():
        assert codes <= set(FLAGS), f"{rel} returns codes not in hladr.flags.FLAGS: {sorted(codes - set(FLAGS))}"


def test_every_code_in_the_table_is_emitted_somewhere():
    """The table holds no dead codes: each is a literal ``flag(...)``, a stage's code, a run check's
    or an exception's."""
    emitted = set(ERROR_CODES.values()) | set(RUN_CODES)
    for codes in _stage_codes().values():
        emitted |= codes
    for rel in _sources():
        for node in ast.walk(_tree(rel)):
            if isinstance(node, ast.Call) and _name(node.func) == "flag" and node.args:
                code = _str(node.args[0])
                if code is not None:
                    emitted.add(code)
    assert set(FLAGS) == emitted, f"not emitted: {sorted(set(FLAGS) - emitted)}; not in the table: " \
                                  f"{sorted(emitted - set(FLAGS))}"


# --- the words of a tube's flags: qc_reasons and why HLA-DR was not measured -----------------------

def _pairs(*flags: Flag) -> list[tuple[str, str]]:
    return [(f.severity, f.message) for f in flags]


def test_qc_reasons_are_the_messages_of_the_flags_that_made_the_qc():
    from hladr.flags import qc_reasons

    low, few = flag("monocytes_low", n=2648, limit=3000), flag("monocytes_too_few", n=681, limit=1000)
    info, expired = flag("ferritin_missing"), flag("lot_expired", lot="96597")
    assert qc_reasons(_pairs(low)) == "2648 monocytes < 3000"  # a warn row is no longer empty
    assert qc_reasons(_pairs(info, low, expired)) == "2648 monocytes < 3000 | bead lot 96597 was past its expiry date"
    assert qc_reasons(_pairs(low, few, info)) == "681 monocytes < 1000"  # a fail: the fail flags only
    assert qc_reasons(_pairs(info)) == "" and qc_reasons([]) == ""  # a pass has no reason


def test_why_hladr_was_not_measured():
    from hladr.flags import hladr_not_measured_why

    def triples(*flags: Flag) -> list[tuple[str, str, str]]:
        return [(f.code, f.severity, f.message) for f in flags]

    unreadable = error_flag(errors.ReadError("P003.fcs: not an FCS file"))
    assert hladr_not_measured_why(triples(flag("monocytes_low", n=2000, limit=3000), unreadable)) == \
        "P003.fcs: not an FCS file"
    assert hladr_not_measured_why(triples(flag("lot_expired", lot="1"), flag("hladr_not_measurable"))) == \
        "monocyte PE not positive: HLA-DR not measurable"
    assert hladr_not_measured_why(triples(flag("monocytes_low", n=2000, limit=3000))) == ""
