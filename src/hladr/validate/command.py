"""``hladr validate``: run the checks, show one line per check, write the record (JSON, HTML, PDF).

The shell of :mod:`hladr.validate`: it chooses the seed, the work folder (a temporary folder,
removed afterwards) and the rule table, runs the check functions in order, and writes
``DIR/validation.json`` (strict JSON), ``DIR/validation.html`` and ``DIR/validation.pdf``,
each atomically and never over an earlier record. Exit status: 0 every check passed, 1 at least
one failed (each failed check named on stderr and in the files), 2 it could not run (bad
arguments, an unreadable ``--rules`` file, a folder that already holds a record).

The seed: :data:`RELEASE_SEED`, derived from hladr's version, so that two validations of the
same version give the same figures; ``--seed N`` for a lab's extra runs (recorded).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import platform
import sys
import tempfile
import time
import tomllib
import traceback
from collections.abc import Callable
from pathlib import Path

from .. import __version__
from .._atomic import write_atomic
from ..errors import ConfigError
from ..rules import DEFAULT_RULESET, RuleSet, load_rules, rules_from_table
from ..safe_text import dumps_strict, printable
from . import iq, oq_runs, oq_units
from .record import Check, Table, Validation

__all__ = ["RELEASE_SEED", "OUTPUTS", "validate_command", "run_validation", "release_seed"]

OUTPUTS = ("validation.json", "validation.html", "validation.pdf")


def release_seed(version: str = __version__) -> int:
    """The validation's fixed seed for a version: the first 24 bits of SHA-256("hladr validate <version>")."""
    return int(hashlib.sha256(f"hladr validate {version}".encode()).hexdigest()[:6], 16)


RELEASE_SEED = release_seed()


def _rules(rules_file: str | None) -> tuple[RuleSet, str, str, bool]:
    """(rules, where they came from, SHA-256 of the table's bytes, installed?)."""
    from importlib import resources

    if rules_file is None:
        data = resources.files("hladr").joinpath(f"data/rules/{DEFAULT_RULESET}.toml").read_bytes()
        where = f"installed: hladr/data/rules/{DEFAULT_RULESET}.toml"
        return load_rules(), where, hashlib.sha256(data).hexdigest(), True
    try:
        data = Path(rules_file).read_bytes()
        table = tomllib.loads(data.decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"--rules {rules_file}: cannot be read ({exc.strerror or exc})") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"--rules {rules_file}: not a TOML rule table ({exc})") from None
    rules = rules_from_table(table, name=Path(rules_file).name)
    where = f"--rules {os.path.abspath(rules_file)} (NOT the installed table)"
    return rules, where, hashlib.sha256(data).hexdigest(), False


def _guarded(cid: str, what: str, fn: Callable[[], list[Check]]) -> list[Check]:
    """A check that raised is a failed check with the error, not a crash: the record is still written."""
    try:
        return fn()
    except Exception as exc:  # noqa: BLE001 - any failure of the software under test is a finding
        last = traceback.extract_tb(exc.__traceback__)[-1]
        return [Check(cid, cid.split(".")[0].upper(), what, "error", "no error", False,
                      f"{type(exc).__name__}: {exc} ({Path(last.filename).name}:{last.lineno})")]


def run_validation(*, quick: bool, seed: int, rules_file: str | None = None, allow_development: bool = False,
                   plan: oq_runs.Plan | None = None, workers: int = 1,
                   progress: Callable[[str], None] | None = None) -> Validation:
    """Every check, in order (IQ, then OQ); returns the record (writes nothing but its own temporary folder)."""
    say = progress or (lambda line: None)
    rules, rules_source, rules_sha, installed = _rules(rules_file)
    plan = plan or (oq_runs.QUICK if quick else oq_runs.FULL)
    started = time.time()
    checks: list[Check] = []
    tables: list[Table] = []

    def add(found: list[Check]) -> None:
        for c in found:
            checks.append(c)
            say(f"{'pass' if c.passed else 'FAIL'}  {c.id}: {c.value}" + ("" if c.passed else f" -- {c.detail}"))

    add(_guarded("iq.version", "hladr and Python versions", iq.check_versions))
    add(_guarded("iq.dependencies", "dependencies", iq.check_dependencies))
    tables.append(Table("Run-time dependencies", ("package", "declared", "installed", ""),
                        tuple((n, s, v or "missing", "ok" if ok else "NOT AS DECLARED")
                              for n, s, v, ok in _safe(iq.dependency_versions))))
    add(_guarded("iq.files", "package files", lambda: iq.check_files(allow_development=allow_development)))
    add(iq.check_rules(rules, source=f"{rules_source}; SHA-256 {rules_sha}", installed=installed))
    add(_guarded("iq.lots", "bead lots", iq.check_lots))

    def units(fn):
        def run() -> list[Check]:
            found, table = fn()
            tables.append(table)
            return found
        return run

    add(_guarded("oq.phenotype_boundaries", "phenotype rule at its boundaries",
                 units(lambda: oq_units.check_phenotype_boundaries(rules))))
    add(_guarded("oq.fcs_reading", "FCS reading", units(oq_units.check_fcs_reading)))
    add(_guarded("oq.gatingml", "Gating-ML engine", oq_units.check_gatingml))
    with tempfile.TemporaryDirectory(prefix="hladr-validate-") as tmp:
        work = Path(tmp)
        add(_guarded("oq.bad_inputs", "bad inputs", lambda: oq_units.check_bad_inputs(work / "bad-inputs")))
        say(f"simulated runs: {len(oq_runs.run_seeds(seed, plan))} runs of {plan.samples_per_run} samples "
            f"(seed {seed}) ...")
        outcomes: list[oq_runs.RunOutcome] = []

        def runs() -> list[Check]:
            outcomes.extend(oq_runs.simulated_runs(work / "runs", seed, plan, workers=workers,
                                                   progress=lambda line: say("      " + line)))
            return []

        add(_guarded("oq.runs", "simulated runs analysed", runs))
        if outcomes:
            add(_guarded("oq.accuracy", "accuracy", units(lambda: oq_runs.accuracy_checks(outcomes, rules))))
            add(_guarded("oq.calibration", "calibration", units(lambda: oq_runs.calibration_checks(outcomes, rules))))
    facts = {
        "hladr_version": __version__,
        "mode": "quick" if quick else "full",
        "plan": {"runs_per_profile_and_instrument": plan.runs_per_cell, "samples_per_run": plan.samples_per_run,
                 "events_per_tube": dict(plan.events), "profiles": list(oq_runs.PROFILES),
                 "instruments": list(oq_runs.INSTRUMENTS)},
        "seed": seed,
        "seed_source": "release seed (derived from the version)" if seed == RELEASE_SEED else "--seed",
        "ruleset": rules.label,
        "rule_table": rules_source,
        "rule_table_sha256": rules_sha,
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "package_folder": str(iq.package_folder()),
        # what differs between two validations of the same version on the same data: kept apart
        "machine": platform.node(),
        "platform": platform.platform(),
        "user": _user(),
        "started": _utc(started),
        "finished": _utc(time.time()),
        "duration_s": round(time.time() - started, 1),
    }
    return Validation(facts=facts, checks=tuple(checks), tables=tuple(tables))


def _safe(fn):
    try:
        return fn()
    except Exception:  # noqa: BLE001 - the check itself records the failure
        return []


def _utc(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _user() -> str:
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def validate_command(out: str, *, quick: bool = False, seed: int | None = None, rules_file: str | None = None,
                     allow_development: bool = False, quiet: bool = False, workers: int = 1) -> int:
    """``hladr validate``: the record in ``out`` (a new folder, or one without a record); the exit status."""
    from ..batch.output_set import writable_path

    folder = writable_path(out, what="--out", folder=True)
    taken = [name for name in OUTPUTS if (folder / name).exists()]
    if taken:
        raise ConfigError(f"--out {out}: already holds {', '.join(taken)}; a validation record is never "
                          "replaced: choose a new folder")

    def progress(line: str) -> None:
        if not quiet:
            print(printable(line), file=sys.stderr, flush=True)

    record = run_validation(quick=quick, seed=RELEASE_SEED if seed is None else seed, rules_file=rules_file,
                            allow_development=allow_development, workers=workers, progress=progress)
    write_record(record, folder)
    for c in record.failed:
        print(printable(f"hladr validate: FAILED {c.id}: {c.what}: {c.value} (limit {c.limit})"
                        + (f": {c.detail}" if c.detail else "")), file=sys.stderr)
    verdict = "PASSED" if record.passed else f"FAILED ({len(record.failed)} of {len(record.checks)} checks)"
    print(printable(f"validation {verdict}: {len(record.checks)} checks; record in {folder}/"
                    f"{{{','.join(OUTPUTS)}}}"))
    return 0 if record.passed else 1


def write_record(record: Validation, folder: Path) -> None:
    """validation.json, then the HTML and the PDF, which quote the JSON's SHA-256 (never over existing files)."""
    from .html import render_html
    from .pdf import render_pdf

    text = dumps_strict(record.to_dict(), indent=1) + "\n"
    digest = hashlib.sha256(text.encode()).hexdigest()
    write_atomic(folder / "validation.json", text, overwrite=False)
    write_atomic(folder / "validation.html", render_html(record, digest), overwrite=False)
    write_atomic(folder / "validation.pdf", render_pdf(record, digest), overwrite=False)
