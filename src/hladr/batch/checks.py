"""Checks across the tubes of one run, after each was analysed alone.

``flag_run(results, config) -> results``: every rule that needs more than one
tube to see is here, defined once in :data:`RUN_FLAGS` (code -> message,
severity), like the per-tube tables of :mod:`hladr.results`:

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

from ..phenotype import call_phenotype, parse_ferritin
from ..results import Flag, RunConfig, SampleResult

__all__ = ["RUN_FLAGS", "flag_run"]

# code -> (message, severity); the message is formatted with the fields named in it
RUN_FLAGS: dict[str, tuple[str, str]] = {
    "duplicate_sample_id": ("sample id shared by {n} tubes ({files}): review before import", "warn"),
    "duplicate_file_content": (
        "the same file content (SHA-256 {sha}) as {others}, listed for another sample: the data cannot "
        "belong to both, so no HLA-DR value is reported; check which tube is which", "fail"),
    "duplicate_file_content_same_sample": (
        "the same file content (SHA-256 {sha}) as {others}, under the same sample: counted twice", "warn"),
}


def _flag(code: str, **fields: object) -> Flag:
    text, severity = RUN_FLAGS[code]
    return Flag(code, text.format(**fields), severity)


def _with_flag(r: SampleResult, flag: Flag, config: RunConfig) -> SampleResult:
    """``r`` with ``flag`` added; qc raised to the flag's severity; a fail withholds HLA-DR and re-calls."""
    flags = r.flags + (flag,)
    if flag.severity == "fail":
        rules = config.rules()
        ferritin = parse_ferritin(r.ferritin_text, r.ferritin_unit or None, rules=rules)
        call = call_phenotype(None, ferritin, rules=rules)
        return replace(r, flags=flags, qc="fail", hladr_abc=None, hladr_abc_geomean=None,
                       phenotype=call.label, phenotype_reasons=tuple(call.reasons))
    return replace(r, flags=flags, qc="warn" if r.qc == "pass" else r.qc)


def _identity(r: SampleResult) -> tuple[str, str, str]:
    return (r.sample_id, r.subject_id, r.visit)


def flag_run(results: list[SampleResult], config: RunConfig | None = None) -> list[SampleResult]:
    """The run's results (same order) with the flags of :data:`RUN_FLAGS` added where they apply."""
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
            out[k] = _with_flag(out[k], _flag("duplicate_sample_id", n=len(same_id), files=files), config)
        twins = [j for j in by_sha.get(r.sha256 or "", []) if j != k]
        if twins:
            others = ", ".join(results[j].file for j in twins)
            differ = any(_identity(results[j]) != _identity(r) for j in twins)
            code = "duplicate_file_content" if differ else "duplicate_file_content_same_sample"
            out[k] = _with_flag(out[k], _flag(code, sha=(r.sha256 or "")[:12], others=others), config)
    return out
