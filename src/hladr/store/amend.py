"""``hladr results amend``: a corrected ferritin becomes a new version of the result, never an overwrite.

:func:`amended_record` is pure: the sample's record with the new ferritin text and unit,
the phenotype called again with the rule table the result was made with
(:func:`hladr.phenotype.call_phenotype` on the kept HLA-DR value, which the ferritin never
changes; a missing HLA-DR value is said with the failed flags' words), without the
``ferritin_unusable`` or ``ferritin_missing`` flag of the text it replaces (an unusable text is
refused, not amended; an empty one gives ``ferritin_missing`` again), and the qc made again from the flags.
:func:`amend_result` keeps it as the sample's next version, in one transaction with its
audit entry (who, when, old -> new, why); a reason is required.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import asdict

from .. import __version__
from ..errors import ConfigError
from ..ferritin import parse_ferritin
from ..flags import flag, hladr_not_measured_why, qc_of
from ..phenotype import call_phenotype
from ..rules import RuleSet, load_rules
from ._json import canonical_json
from .results import Kept, current_version, insert_version
from .schema import write_store

__all__ = ["amended_record", "rules_of", "amend_result"]


def rules_of(record: Mapping) -> RuleSet:
    """The rule table a result was made with (its ``ruleset``, ``id@version``), as this hladr ships it.

    Raises
    ------
    ConfigError
        This hladr ships another version of that rule set (or none): the phenotype would be
        called by rules other than those the result was made with.
    """
    label = str(record.get("ruleset") or "")
    rule_id, _, _ = label.partition("@")
    rules = load_rules(rule_id) if rule_id else None
    if rules is None or rules.label != label:
        have = rules.label if rules is not None else "none"
        raise ConfigError(f"sample {record.get('sample_id')} was called with rule set {label or '?'}; this hladr has "
                          f"{have}: re-analyse the tube with 'hladr run ... --reason TEXT' instead of amending")
    return rules


def amended_record(record: Mapping, *, ferritin_text: str, ferritin_unit: str, rules: RuleSet) -> dict:
    """The sample's record with this ferritin, its phenotype called again (see the module docstring).

    Raises
    ------
    ConfigError
        The ferritin text cannot be used (the problem, in one line); an empty text removes the ferritin.
    """
    ferritin = parse_ferritin(ferritin_text, ferritin_unit or None, rules=rules)
    if ferritin.problem and ferritin_text.strip():
        raise ConfigError(f"--ferritin {ferritin_text!r} {ferritin_unit}: {ferritin.problem}; not amended")
    flags = [dict(f) for f in record.get("flags") or ()
             if f.get("code") not in ("ferritin_unusable", "ferritin_missing")]
    if ferritin.code == "ferritin_missing":  # the ferritin removed: the call cannot be made, say so as a run would
        flags.append(asdict(flag("ferritin_missing")))
    why = hladr_not_measured_why((str(f.get("code")), str(f.get("severity")), str(f.get("message"))) for f in flags)
    call = call_phenotype(record.get("hladr_abc"), ferritin, rules=rules, hladr_why=why)
    return {**record, "ferritin_text": ferritin_text, "ferritin_unit": ferritin_unit,
            "ferritin_ng_ml": ferritin.ng_ml, "phenotype": call.label, "phenotype_reasons": list(call.reasons),
            "flags": flags, "qc": qc_of(str(f.get("severity")) for f in flags), "ruleset": rules.label}


def amend_result(db: str | os.PathLike, sample_id: str, *, ferritin_text: str, ferritin_unit: str | None,
                 reason: str, user: str) -> tuple[dict, Kept]:
    """Keep the sample's current result with a corrected ferritin as its next version.

    ``ferritin_unit`` ``None`` keeps the current version's unit. Returns the record that was
    current and the receipt of the new version.

    Raises
    ------
    ConfigError
        No reason, no such sample, the same ferritin as the current version, a ferritin
        that cannot be used, or a rule set this hladr does not ship in that version.
    """
    reason = (reason or "").strip()
    if not reason:
        raise ConfigError("an amendment needs a reason: --reason TEXT (kept in the audit trail)")

    def fn(con) -> tuple[dict, Kept]:
        current = current_version(con, sample_id)
        if current is None:
            raise ConfigError(f"no sample {sample_id} in the results store {db}")
        old = current["content"]["sample"]
        unit = (old.get("ferritin_unit") or "") if ferritin_unit is None else ferritin_unit
        if (ferritin_text, unit) == (old.get("ferritin_text") or "", old.get("ferritin_unit") or ""):
            raise ConfigError(f"sample {sample_id}: version {current['version']} already has ferritin "
                              f"{ferritin_text!r} {unit}; nothing to amend")
        record = amended_record(old, ferritin_text=ferritin_text, ferritin_unit=unit, rules=rules_of(old))
        content = {**current["content"], "kind": "amendment", "sample": record, "based_on": current["result_id"],
                   "amendment": {"ferritin_text": ferritin_text, "ferritin_unit": unit, "hladr": __version__}}
        text = canonical_json(content)
        result_id = hashlib.sha256(text.encode("utf-8")).hexdigest()
        _, version = insert_version(con, content=content, text=text, result_id=result_id, kind="amendment",
                                    run_row=current["run_row"], based_on=current["id"], user=user, reason=reason,
                                    current=current, run_id=None)
        return old, Kept(sample_id, result_id, version, True)

    return write_store(db, f"amend sample {sample_id} in the results store", fn, create=False)
