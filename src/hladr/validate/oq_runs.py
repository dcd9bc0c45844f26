"""Operational qualification on simulated daily runs with ground truth, analysed as a lab runs them.

Calling contract: :func:`simulated_runs` writes one run per (profile, instrument) with the
simulator (:mod:`hladr.simulate`), analyses it with :func:`hladr.batch.daily.run_folder` (bead
tube, worklist, automated gates; a private results store in the work folder, never the user's)
and returns :class:`RunOutcome` records; :func:`accuracy_checks` and :func:`calibration_checks`
judge them against the rule table's ``[validation]`` limits and return ``Check`` records and the
tables shown beside them. Comparisons with the truth follow ``benchmarks/sepsis_acceptance.py``:

- reported: the tube has a HLA-DR value (qc pass or warn); its error is
  ``|reported / true median AB/C - 1|``; its count error that of the gated monocytes against the
  true monocyte singlets;
- tubes with fewer true monocytes than ``qc.monocytes_fail_below`` must fail by SPEC.md section
  4: they are counted apart and not held against the pipeline;
- a wrong call is a phenotype other than ``indeterminate`` that differs from the expected one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ..rules import RuleSet
from .record import Check, Table

__all__ = ["PROFILES", "INSTRUMENTS", "Plan", "QUICK", "FULL", "RunOutcome", "simulated_runs", "accuracy_checks",
           "calibration_checks"]

PROFILES = ("healthy", "sepsis", "severe-sepsis")
INSTRUMENTS = ("canto", "cytoflex", "navios")


@dataclass(frozen=True)
class Plan:
    """How much to simulate: runs per (profile, instrument), samples per run, events per tube by profile.

    Septic blood holds few monocytes (down to ~1 % of leukocytes): its tubes are larger, so that
    most hold the 1000 monocytes SPEC.md requires.
    """

    name: str
    runs_per_cell: int
    samples_per_run: int
    events: tuple[tuple[str, int], ...]

    def events_for(self, profile: str) -> int:
        return dict(self.events)[profile]


QUICK = Plan("quick", 1, 2, (("healthy", 30_000), ("sepsis", 150_000), ("severe-sepsis", 200_000)))
FULL = Plan("full", 3, 8, (("healthy", 50_000), ("sepsis", 150_000), ("severe-sepsis", 200_000)))


@dataclass(frozen=True)
class TubeOutcome:
    """One sample tube: the truth and what the run reported."""

    profile: str
    instrument: str
    seed: int
    sample_id: str
    true_abc: float
    true_monocytes: int
    expected: str
    abc: float | None
    monocytes: int | None
    phenotype: str
    qc: str
    fail_codes: tuple[str, ...]


@dataclass(frozen=True)
class RunOutcome:
    """One simulated run: its seed, the run's exit status, the calibration fitted against the truth, its tubes."""

    profile: str
    instrument: str
    seed: int
    exit_code: int
    cal_accepted: bool
    slope: float | None
    intercept: float | None
    true_slope: float
    true_intercept: float
    tubes: tuple[TubeOutcome, ...]


def run_seeds(seed: int, plan: Plan) -> list[tuple[str, str, int]]:
    """(profile, instrument, seed) of every run: the validation's seed, then one more per run."""
    out = []
    k = 0
    for profile in PROFILES:
        for instrument in INSTRUMENTS:
            for _ in range(plan.runs_per_cell):
                out.append((profile, instrument, seed + k))
                k += 1
    return out


def simulated_runs(work: Path, seed: int, plan: Plan, *, workers: int = 1,
                   progress: Callable[[str], None] | None = None) -> list[RunOutcome]:
    """Simulate and analyse every run of ``plan`` in ``work`` (a folder the caller owns and removes)."""
    from ..batch.daily import run_folder
    from ..simulate.simulator import simulate_run

    outcomes = []
    for n, (profile, instrument, run_seed) in enumerate(run_seeds(seed, plan), 1):
        run_dir, out_dir = work / f"run{n:02d}", work / f"out{n:02d}"
        simulate_run(run_dir, seed=run_seed, instrument=instrument, n_samples=plan.samples_per_run,
                     events_per_tube=plan.events_for(profile), profile=profile)
        code = run_folder(str(run_dir), str(out_dir), db=str(work / f"store{n:02d}.sqlite"), quiet=True,
                          workers=workers, user="hladr validate")
        outcomes.append(_outcome(run_dir, out_dir, profile, instrument, run_seed, code))
        if progress:
            progress(f"run {n}/{len(run_seeds(seed, plan))}: {profile} on {instrument} (seed {run_seed}), exit {code}")
    return outcomes


def _outcome(run_dir: Path, out_dir: Path, profile: str, instrument: str, seed: int, code: int) -> RunOutcome:
    truth = json.loads((run_dir / "truth.json").read_text(encoding="utf-8"))
    results_path, cal_path = out_dir / "results.json", out_dir / "calibration.json"
    results = ({r["sample_id"]: r for r in json.loads(results_path.read_text(encoding="utf-8"))["samples"]}
               if results_path.is_file() else {})
    cal = json.loads(cal_path.read_text(encoding="utf-8")) if cal_path.is_file() else {}
    fit = cal.get("fit") or {}
    tubes = []
    for s in truth["samples"]:
        r = results.get(s["sample_id"]) or {}
        tubes.append(TubeOutcome(
            profile=profile, instrument=instrument, seed=seed, sample_id=s["sample_id"],
            true_abc=float(s["tube"]["hladr_abc"]), true_monocytes=int(s["tube"]["n_monocytes"]),
            expected=s["expected_phenotype"], abc=r.get("hladr_abc"), monocytes=r.get("monocyte_count"),
            phenotype=r.get("phenotype", "not analysed"), qc=r.get("qc", "fail"),
            fail_codes=tuple(f["code"] for f in r.get("flags", []) if f.get("severity") == "fail")
            if r else ("not_analysed",),
        ))
    beads = truth["beads"]
    return RunOutcome(profile=profile, instrument=instrument, seed=seed, exit_code=code,
                      cal_accepted=bool(cal.get("accepted")), slope=fit.get("slope"), intercept=fit.get("intercept"),
                      true_slope=float(beads["calibration_slope"]),
                      true_intercept=float(beads["calibration_intercept"]),
                      tubes=tuple(tubes))


@dataclass(frozen=True)
class _Summary:
    tubes: int
    few: int  # fewer true monocytes than the fail limit
    enough: int
    reported: int
    abc_within: int
    count_within: int
    agree: int  # among ``enough``
    wrong: int
    fail_enough: int
    worst: float | None


def _summary(tubes: Sequence[TubeOutcome], rules: RuleSet) -> _Summary:
    v = rules.validation
    rep = [t for t in tubes if t.abc is not None]
    err = [abs(t.abc / t.true_abc - 1) for t in rep]
    enough = [t for t in tubes if t.true_monocytes >= rules.monocytes_fail_below]
    return _Summary(
        tubes=len(tubes), few=len(tubes) - len(enough), enough=len(enough), reported=len(rep),
        abc_within=sum(e <= v.abc_tolerance for e in err),
        count_within=sum(t.monocytes is not None
                         and abs(t.monocytes / t.true_monocytes - 1) <= v.monocyte_count_tolerance for t in rep),
        agree=sum(t.phenotype == t.expected for t in enough),
        wrong=sum(t.phenotype != "indeterminate" and t.phenotype != t.expected for t in tubes),
        fail_enough=sum(t.abc is None for t in enough),
        worst=max(err, default=None),
    )


def _share(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "0/0"


def accuracy_checks(outcomes: Sequence[RunOutcome], rules: RuleSet) -> tuple[list[Check], Table]:
    """The accuracy table by profile and instrument, and the checks of its totals against ``[validation]``."""
    v = rules.validation
    tubes = [t for o in outcomes for t in o.tubes]
    rows = []
    for profile in PROFILES:
        for instrument in (*INSTRUMENTS, "all"):
            part = [t for t in tubes if t.profile == profile and instrument in ("all", t.instrument)]
            if part:
                rows.append(_row(profile, instrument, _summary(part, rules)))
    total = _summary(tubes, rules)
    rows.append(_row("all", "all", total))
    head = ("profile", "instrument", "tubes", f"< {rules.monocytes_fail_below} mono.", "reported",
            f"AB/C within {v.abc_tolerance:.0%}", "worst", f"count within {v.monocyte_count_tolerance:.0%}",
            "call agrees", "wrong calls", f"fails (>= {rules.monocytes_fail_below} mono.)")
    table = Table("Accuracy against the simulator's truth", head, tuple(rows),
                  note=f"Tubes with fewer than {rules.monocytes_fail_below} true monocytes must fail (SPEC.md section "
                       "4) and are not held against the pipeline; the call's agreement and the fails are counted "
                       "over the other tubes.")
    wrong = [f"{t.profile}/{t.instrument} seed {t.seed} {t.sample_id}: {t.phenotype}, expected {t.expected}"
             for t in tubes if t.phenotype != "indeterminate" and t.phenotype != t.expected]
    failed = [f"{t.profile}/{t.instrument} seed {t.seed} {t.sample_id}: {','.join(t.fail_codes) or t.qc}"
              for t in tubes if t.true_monocytes >= rules.monocytes_fail_below and t.abc is None]
    off = [f"{t.profile}/{t.instrument} seed {t.seed} {t.sample_id}: {t.abc / t.true_abc - 1:+.1%}"
           for t in tubes if t.abc is not None and abs(t.abc / t.true_abc - 1) > v.abc_tolerance]
    n_rep, n_enough = total.reported, total.enough

    def frac(k: int, n: int) -> float:
        return k / n if n else 0.0

    checks = [
        Check("oq.accuracy.abc", "OQ", f"reported AB/C within {v.abc_tolerance:.0%} of the true median AB/C",
              _share(total.abc_within, n_rep), f">= {v.min_abc_within_share:.0%} of reported tubes",
              n_rep > 0 and frac(total.abc_within, n_rep) >= v.min_abc_within_share,
              f"{len(off)} outside: " + "; ".join(off[:5]) if off else
              (f"worst {total.worst:.1%}" if total.worst is not None else "none reported")),
        Check("oq.accuracy.monocytes", "OQ",
              f"gated monocytes within {v.monocyte_count_tolerance:.0%} of the true monocyte count",
              _share(total.count_within, n_rep), f">= {v.min_count_within_share:.0%} of reported tubes",
              n_rep > 0 and frac(total.count_within, n_rep) >= v.min_count_within_share, ""),
        Check("oq.accuracy.phenotype", "OQ", "phenotype call agrees with the expected call",
              _share(total.agree, n_enough), f">= {v.min_phenotype_agreement:.0%} of tubes with enough monocytes",
              n_enough > 0 and frac(total.agree, n_enough) >= v.min_phenotype_agreement, ""),
        Check("oq.accuracy.wrong_calls", "OQ", "wrong calls (a call other than indeterminate that differs from the "
              "expected one)", str(total.wrong), f"<= {v.max_wrong_calls}", total.wrong <= v.max_wrong_calls,
              "; ".join(wrong[:5])),
        Check("oq.accuracy.fails", "OQ", f"QC fails among tubes with >= {rules.monocytes_fail_below} true monocytes",
              _share(total.fail_enough, n_enough), f"<= {v.max_fail_share:.0%}",
              n_enough > 0 and frac(total.fail_enough, n_enough) <= v.max_fail_share,
              (f"failed: {'; '.join(failed[:5])}" + (f"; and {len(failed) - 5} more" if len(failed) > 5 else ""))
              if failed else ""),
    ]
    return checks, table


def _row(profile: str, instrument: str, s: _Summary) -> tuple[str, ...]:
    return (profile, instrument, str(s.tubes), str(s.few), str(s.reported), _share(s.abc_within, s.reported),
            "-" if s.worst is None else f"{s.worst:.1%}", _share(s.count_within, s.reported),
            _share(s.agree, s.enough), str(s.wrong), _share(s.fail_enough, s.enough))


def calibration_checks(outcomes: Sequence[RunOutcome], rules: RuleSet) -> tuple[list[Check], Table]:
    """Each run's bead fit against the simulator's true curve: accepted, slope and intercept within tolerance."""
    v = rules.validation
    rows, bad = [], []
    worst_s = worst_i = 0.0
    for o in outcomes:
        ok = o.cal_accepted and o.slope is not None and o.intercept is not None
        ds = None if o.slope is None else o.slope - o.true_slope
        di = None if o.intercept is None else o.intercept - o.true_intercept
        if ok:
            worst_s, worst_i = max(worst_s, abs(ds)), max(worst_i, abs(di))
            ok = abs(ds) <= v.slope_tolerance and abs(di) <= v.intercept_tolerance
        if not ok:
            bad.append(f"{o.profile}/{o.instrument} seed {o.seed}: " + (
                "not accepted" if not o.cal_accepted else f"slope {ds:+.4f}, intercept {di:+.4f}"))
        rows.append((o.profile, o.instrument, str(o.seed), "yes" if o.cal_accepted else "NO",
                     _f(o.slope), f"{o.true_slope:.4f}", _f(ds, "+"), _f(o.intercept), f"{o.true_intercept:.4f}",
                     _f(di, "+")))
    table = Table("Calibration recovered from simulated bead tubes (log10 PE per bead = intercept + slope * log10 MFI)",
                  ("profile", "instrument", "seed", "accepted", "slope", "true", "diff", "intercept", "true", "diff"),
                  tuple(rows))
    check = Check("oq.calibration", "OQ",
                  "bead calibration accepted, slope and intercept against the simulator's truth",
                  f"{len(outcomes) - len(bad)} of {len(outcomes)} runs; worst |slope diff| {worst_s:.4f}, "
                  f"|intercept diff| {worst_i:.4f}",
                  f"|slope diff| <= {v.slope_tolerance}, |intercept diff| <= {v.intercept_tolerance}",
                  bool(outcomes) and not bad, "; ".join(bad[:5]))
    return [check], table


def _f(x: float | None, sign: str = "") -> str:
    return "-" if x is None else f"{x:{sign}.4f}"
