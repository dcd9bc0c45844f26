"""The patients of a simulated run: true AB/C, true ferritin, what the lab reported and the expected call.

Calling contract: :func:`draw_patients` takes the run's ``rng`` and returns one plain
record per patient; :func:`expected_phenotype` is the ImmunoSep call (SPEC section 2)
from the reported ferritin text and the true AB/C, written independently of
:mod:`hladr.phenotype` so that the simulator's truth checks it.

Notes
-----
Per-patient AB/C keeps a 10 % margin from the 5000 threshold and ferritin a 5 % margin from
4420, so an assay within its 5 % acceptance cannot flip the expected phenotype.
Septic runs draw AB/C from 300-15,000 (``sepsis``) or 300-8,000
(``severe-sepsis``), mostly below 5000, with both sides of 5000 in every run of
>= 2 samples.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from ..errors import ConfigError
from ..rules import RuleSet
from . import blood_profiles as bp

__all__ = ["expected_phenotype", "draw_patients"]


def expected_phenotype(
    ferritin_text: str, ferritin_unit: str, hladr_abc: float | None, *, rules: RuleSet
) -> str:
    """The ImmunoSep call (SPEC section 2) from the reported ferritin text and true AB/C."""
    text = (ferritin_text or "").strip()
    if not text:
        return "indeterminate"
    sign = text[0] if text[0] in "<>" else ""
    try:
        value = float(text[len(sign):])
    except ValueError:
        return "indeterminate"
    if value < 0:
        return "indeterminate"
    if ferritin_unit.strip().lower() == "pmol/l":
        value /= rules.ferritin_pmol_per_ng
    thr = rules.mals_ferritin_ng_ml
    if sign == ">":
        return "MALS" if value >= thr else "indeterminate"
    if sign == "<" and value > thr:
        return "indeterminate"
    if sign == "" and value > thr:
        return "MALS"
    if hladr_abc is None:
        return "indeterminate"
    return "immunoparalysis" if hladr_abc < rules.immunoparalysis_hladr_abc else "intermediate"


def _log_uniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(10 ** rng.uniform(math.log10(lo), math.log10(hi)))


def draw_patients(
    rng: np.random.Generator,
    n: int,
    rules: RuleSet,
    *,
    run_profile: str = "healthy",
    profiles: Sequence[str] | None = None,
) -> list[dict]:
    """Per patient: AB/C, true ferritin and how the lab reported it.

    Every run of >= 2 samples has AB/C on both sides of the threshold; >= 3 also
    has a MALS patient. Margins: 10 % around the AB/C threshold, 5 % around 4420.
    The mix of kinds follows ``run_profile``; each patient's AB/C range follows its
    own profile (``profiles``, default the run's): :data:`blood_profiles.RUN_DRAWS`.
    """
    thr_f, thr_abc = rules.mals_ferritin_ng_ml, rules.immunoparalysis_hladr_abc
    profiles = list(profiles) if profiles is not None else [run_profile] * n
    for name in {run_profile, *profiles}:
        lo, hi = bp.RUN_DRAWS[name]["hladr_abc"]
        if not lo < thr_abc / 1.1 < thr_abc * 1.1 < hi:
            raise ConfigError(f"profile {name}: AB/C range {lo:g}-{hi:g} must span {thr_abc:g} +- 10 %")
    forced = ["immunoparalysis", "intermediate", "MALS"][: min(n, 3)]
    rest = list(rng.choice(["immunoparalysis", "intermediate", "MALS"], size=n - len(forced),
                           p=list(bp.RUN_DRAWS[run_profile]["phenotype_mix"])))
    kinds = [str(k) for k in rng.permutation(forced + rest)]
    is_forced: set[int] = set()  # first patient of each kind keeps a reported ferritin
    seen: set[str] = set()
    out = []
    for i, kind in enumerate(kinds):
        first = kind not in seen
        seen.add(kind)
        if first:
            is_forced.add(i)
        abc_lo, abc_hi = bp.RUN_DRAWS[profiles[i]]["hladr_abc"]
        if kind == "MALS":
            ferritin = _log_uniform(rng, thr_f * 1.05, 20_000)
            abc = _log_uniform(rng, abc_lo, abc_hi)
        else:
            ferritin = _log_uniform(rng, 15, thr_f / 1.05)
            lo, hi = (abc_lo, thr_abc / 1.1) if kind == "immunoparalysis" else (thr_abc * 1.1, abc_hi)
            abc = _log_uniform(rng, lo, hi)
        u = rng.random()
        unit = "ng/mL"
        if ferritin > 5000 and u < 0.3:  # above the lab's range without dilution
            limit = max(x for x in (5000, 10_000, 15_000) if x < ferritin)
            text = f">{limit}"
        elif ferritin < 20:  # below the lab's lower limit
            text = "<20"
        elif 0.30 <= u < 0.45:
            text, unit = f"{round(ferritin * rules.ferritin_pmol_per_ng)}", "pmol/L"
            ferritin = float(text) / rules.ferritin_pmol_per_ng
        elif 0.45 <= u < 0.50:
            text, unit = f"{round(ferritin)}", "µg/L"
            ferritin = float(text)
        elif 0.50 <= u < 0.55 and i not in is_forced:
            text = ""  # result not back from the lab yet
        else:
            text = f"{ferritin:.0f}" if ferritin >= 100 else f"{ferritin:.1f}"
            ferritin = float(text)
        out.append({"abc": abc, "ferritin_ng_ml": ferritin, "text": text, "unit": unit})
    return out
