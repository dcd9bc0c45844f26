"""Checks across the tubes of one run, after each was analysed alone.

``flag_run(results, config) -> results``: every rule that needs more than one
tube to see is here; its codes, messages and severities are in the one flag
table, :data:`hladr.flags.FLAGS`, with every other flag a result can carry:

- ``duplicate_sample_id`` (warn): two different tubes share a sample id. A
  repeated acquisition can be legitimate, but an eCRF keyed by sample id would
  keep only one of them: both are flagged for review.
- ``duplicate_file_content`` (fail): two tubes hold byte-identical files (same
  SHA-256: a file copied under another name) but are listed for different
  samples. The data can belong to one of them at most, and nothing says which,
  so neither may yield an HLA-DR result: both fail, their HLA-DR value is
  withheld, and their call is made again without it (ferritin alone can still
  give MALS, as for any failed tube).
- ``duplicate_file_content_same_sample`` (warn): the same, under one identity
  (sample id, subject and visit all equal): the values are not attributed to a
  wrong patient, but the tube was counted twice; warn so it is looked at.

A flag with severity ``fail`` follows the safety rule of SPEC.md section 4: a
failed tube carries no call that depends on HLA-DR.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from ..ferritin import parse_ferritin
from ..flags import Flag, flag, hladr_not_measured_why
from ..phenotype import call_phenotype
from ..results import RunConfig, SampleResult

__all__ = ["RUN_CODES", "flag_run"]

# the codes these checks give (defined in hladr.flags.FLAGS)
RUN_CODES = ("duplicate_sample_id", "duplicate_file_content", "duplicate_file_content_same_sample")


def _with_flag(r: SampleResult, added: Flag, config: RunConfig) -> SampleResult:
    """``r`` with the flag ``added``; qc raised to its severity; a fail withholds HLA-DR and re-calls."""
    flags = r.flags + (added,)
    if added.severity == "fail":
        rules = config.rules()
        ferritin = parse_ferritin(r.ferritin_text, r.ferritin_unit or None, rules=rules)
        why = hladr_not_measured_why((f.code, f.severity, f.message) for f in flags)
        call = call_phenotype(None, ferritin, rules=rules, hladr_why=why)
        return replace(r, flags=flags, qc="fail", hladr_abc=None, hladr_abc_geomean=None,
                       phenotype=call.label, phenotype_reasons=tuple(call.reasons))
    return replace(r, flags=flags, qc="warn" if r.qc == "pass" else r.qc)


def _identity(r: SampleResult) -> tuple[str, str, str]:
    return (r.sample_id, r.subject_id, r.visit)


def flag_run(results: list[SampleResult], config: RunConfig | None = None) -> list[SampleResult]:
    """The run's results (same order) with the flags of :data:`RUN_CODES` added where they apply."""
    config = config or RunConfig()
    by_id: dict[str, list[int]] = defaultdict(list)
    by_sha: dict[str, list[int]] = defaultdict(list)
    for k, r in enumerate(results):
        by_id[r.sample_id].append(k)
        if r.sha256:  # an unreadable tube has no digest: nothing to compare
            by_sha[r.sha256].append(k)
    out = list(results)
    for k, r in enumerate(results):
        same_id = by_id[r.sample_id]
        if len(same_id) > 1:
            files = ", ".join(results[j].file for j in same_id)
            out[k] = _with_flag(out[k], flag("duplicate_sample_id", n=len(same_id), files=files), config)
        twins = [j for j in by_sha.get(r.sha256 or "", []) if j != k]
        if twins:
            others = ", ".join(results[j].file for j in twins)
            differ = any(_identity(results[j]) != _identity(r) for j in twins)
            code = "duplicate_file_content" if differ else "duplicate_file_content_same_sample"
            out[k] = _with_flag(out[k], flag(code, sha=(r.sha256 or "")[:12], others=others), config)
    return out
