"""Command line: parse, delegate, map errors to the exit codes of SPEC.md section 5.

``main(argv) -> int`` returns instead of exiting, so tests call it in-process.
The commands' own modules are imported inside the command functions: they pull in
NumPy, Numba and SciPy (``hladr run``, ``gate`` and ``calibrate`` ~1 s), which
``hladr --help``, ``hladr lots`` and a mistyped argument do not need.

Exit codes (one table for every command):

====  =====================================================================
0     done; every sample passed or warned / calibration accepted / file read /
      no Westgard violation in the calibration history
1     at least one sample failed / calibration rejected / a Westgard violation
2     could not start: bad arguments, unreadable input, unknown lot, an output
      path that cannot be written, ...; also a results store locked past the
      wait (``run``: after its outputs were written, which the line says)
130   interrupted (Ctrl-C); 143 terminated (SIGTERM): worker processes stopped,
      no output folder switched in
====  =====================================================================
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import logging
import os
import signal
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .batch.output_set import check_output_file, writable_path
from .beads import lots
from .errors import ConfigError, HladrError
from .safe_text import dumps_strict, printable, printable_lines

__all__ = ["main", "main_cli", "template_cache_dir"]

EXIT_OK, EXIT_FAIL, EXIT_CANNOT_RUN = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143
SIMULATE_MIN_EVENTS = 100  # the simulator's own floor for a sample tube


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so bad arguments map to exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that worker pools and staging folders are cleaned up."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise _Terminated()


def _int_at_least(low: int):
    """argparse type: an integer >= ``low``."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, not {value}")
        return value
    return parse


def _build_parser() -> argparse.ArgumentParser:
    p = _ArgumentParser(prog="hladr", description=__doc__.split("\n")[0])
    p.add_argument("--version", action="version", version=f"hladr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, parser_class=_ArgumentParser)

    r = sub.add_parser("run", help="analyse a day's run folder (bead tube + sample tubes)")
    r.add_argument("run_dir", metavar="RUN_DIR")
    r.add_argument("--out", required=True, metavar="OUT_DIR")
    r.add_argument("--worklist", metavar="FILE")
    lot = r.add_mutually_exclusive_group()
    lot.add_argument("--lot", metavar="ID")
    lot.add_argument("--lot-file", metavar="FILE")
    r.add_argument("--calibration", metavar="CAL.json",
                   help="an accepted calibration record instead of a bead tube")
    r.add_argument("--gates", metavar="FILE", help="Gating-ML 2.0 template replacing automated gates")
    r.add_argument("--workers", type=int, default=1, metavar="N")
    r.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address")
    r.add_argument("--db", metavar="FILE",
                   help="results store (SQLite) keeping the run, its calibration and every result "
                        "(default: $HLADR_DB or ~/.local/share/hladr/hladr.sqlite)")
    r.add_argument("--reason", metavar="TEXT",
                   help="why the tubes are analysed again: required to keep a result that differs from the "
                        "sample's kept one (new gates, lot, rule set, ...) as its new version")
    r.add_argument("--user", metavar="NAME", help="who runs it, for the audit trail (default: the OS user)")
    r.add_argument("--quiet", action="store_true", help="no table, no progress")
    r.add_argument("--allow-outside-run-dir", action="store_true",
                   help="let the worklist name files outside RUN_DIR (by default only files inside it are read)")

    c = sub.add_parser("calibrate", help="fit a QuantiBRITE bead tube")
    c.add_argument("beads", metavar="BEADS.fcs")
    lot = c.add_mutually_exclusive_group(required=True)
    lot.add_argument("--lot", metavar="ID")
    lot.add_argument("--lot-file", metavar="FILE")
    c.add_argument("--out", metavar="CAL.json")
    c.add_argument("--db", metavar="FILE",
                   help="also keep the calibration in this results store (SQLite); default: not stored")

    i = sub.add_parser("inspect", help="describe an FCS file")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--json", action="store_true")
    i.add_argument("--dataset", type=int, default=None, metavar="N",
                   help="1-based dataset of a multi-dataset file (default: the first; FCS 3.0 of an LMD pair)")

    g = sub.add_parser("gate", help="gate the monocytes of one tube")
    g.add_argument("file", metavar="FILE")
    g.add_argument("--json", action="store_true")
    g.add_argument("--gates", metavar="TEMPLATE.xml")

    lots = sub.add_parser("lots", help="QuantiBRITE bead lots: list, show, add")
    lots_sub = lots.add_subparsers(dest="lots_command", metavar="{list,show,add}", required=True,
                                   parser_class=_ArgumentParser)
    lots_sub.add_parser("list", help="list the bundled and user lots with their expiry")
    show = lots_sub.add_parser("show", help="show one lot")
    show.add_argument("lot_id", metavar="ID")
    add = lots_sub.add_parser(
        "add", help="validate a lot file and copy it into the user lot folder",
        description="Validate a lot TOML file (four positive increasing PE values, a unique id, an expiry "
                    "that is a date) and copy it into the user lot folder ($HLADR_LOTS or ~/.config/hladr/lots).",
    )
    add.add_argument("file", metavar="FILE")

    cal = sub.add_parser("calibration", help="calibration quality control over time")
    cal_sub = cal.add_subparsers(dest="calibration_command", metavar="{history}", required=True,
                                parser_class=_ArgumentParser)
    h = cal_sub.add_parser(
        "history", help="calibration series, Westgard rules and Levey-Jennings chart",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Print the calibrations kept in the results store (one instrument), evaluate the\n"
                    "Westgard rules 1-3s, 2-2s, R-4s, 4-1s and 10x on the slope, the intercept and each\n"
                    "bead level's MFI, and write a Levey-Jennings chart (PNG). Limits: mean and SD of the\n"
                    "first 20 accepted calibrations shown (--since restarts the baseline).",
        epilog="exit status:\n  0  no Westgard violation\n  1  at least one violation (each one is printed)\n"
               "  2  no store, no calibration to show, several instruments without --instrument, bad arguments",
    )
    h.add_argument("--instrument", metavar="SN", help="instrument serial ($CYTSN) or model ($CYT)")
    h.add_argument("--since", metavar="DATE", type=_iso_date, help="first acquisition date (YYYY-MM-DD)")
    h.add_argument("--lot", metavar="ID", help="only calibrations with this bead lot")
    h.add_argument("--db", metavar="FILE",
                   help="results store (default: $HLADR_DB or ~/.local/share/hladr/hladr.sqlite)")
    h.add_argument("--out", metavar="FILE", help="chart file (default: levey_jennings.png in the current folder)")

    e = sub.add_parser(
        "export", help="export a run's results for a trial's eCRF (csv, redcap, odm, fhir)",
        description="Export results as one file: csv (results.csv plus the ferritin as reported), "
                    "redcap (a REDCap data import), odm (a CDISC ODM 1.3.2 snapshot) or fhir (a FHIR R4 Bundle). "
                    "RUN is an output folder of 'hladr run' (its results.json and calibration.json) or the id of "
                    "a run kept in the results store (its results, as later amended); --since DATE exports the "
                    "current result of every sample kept since that day. An existing --out is not replaced "
                    "without --force.",
    )
    e.add_argument("run", metavar="RUN", nargs="?", help="an output folder of 'hladr run', or a run id in the store")
    e.add_argument("--since", metavar="DATE", type=_iso_date,
                   help="instead of RUN: the current results kept in the store on or after this UTC day")
    e.add_argument("--db", metavar="FILE",
                   help="results store (default: $HLADR_DB or ~/.local/share/hladr/hladr.sqlite)")
    e.add_argument("--format", required=True, choices=("csv", "redcap", "odm", "fhir"))
    e.add_argument("--out", required=True, metavar="FILE")
    e.add_argument("--mapping", metavar="FILE",
                   help="field mapping (TOML) for redcap and odm, e.g. examples/mappings/redcap.toml")
    e.add_argument("--force", action="store_true", help="replace an existing --out")

    db_help = "results store (default: $HLADR_DB or ~/.local/share/hladr/hladr.sqlite)"
    res = sub.add_parser("results", help="results kept in the store: list, show, amend")
    res_sub = res.add_subparsers(dest="results_command", metavar="{list,show,amend}", required=True,
                                 parser_class=_ArgumentParser)
    ls = res_sub.add_parser("list", help="the current result of every sample (or of one run, or kept since a day)")
    which = ls.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="RUN", help="the results of one run (its run id)")
    which.add_argument("--since", metavar="DATE", type=_iso_date, help="kept on or after this UTC day (YYYY-MM-DD)")
    ls.add_argument("--db", metavar="FILE", help=db_help)
    show = res_sub.add_parser("show", help="every version of one sample's result, with its provenance")
    show.add_argument("sample", metavar="SAMPLE")
    show.add_argument("--db", metavar="FILE", help=db_help)
    am = res_sub.add_parser(
        "amend", help="a corrected ferritin: a new version of the sample's result, the phenotype called again",
        description="Keep the sample's current result with a corrected ferritin as its next version; the "
                    "phenotype is called again with the rule table the result was made with. Earlier versions "
                    "stay as they were; the audit trail keeps who, when, old -> new and the reason.")
    am.add_argument("sample", metavar="SAMPLE")
    am.add_argument("--ferritin", required=True, metavar="TEXT", help="the ferritin as the lab reports it, e.g. >10000")
    am.add_argument("--ferritin-unit", metavar="U", help="ng/mL, ug/L or pmol/L (default: the current version's)")
    am.add_argument("--reason", required=True, metavar="TEXT", help="why (required; kept in the audit trail)")
    am.add_argument("--user", metavar="NAME", help="who amends (default: the OS user)")
    am.add_argument("--db", metavar="FILE", help=db_help)

    au = sub.add_parser("audit", help="the store's audit trail: verify, show")
    au_sub = au.add_subparsers(dest="audit_command", metavar="{verify,show}", required=True,
                               parser_class=_ArgumentParser)
    ver = au_sub.add_parser("verify", help="check the hash chain and every result against it",
                            epilog="exit status: 0 intact; 1 broken (the first broken entry is named); 2 no store")
    ver.add_argument("--db", metavar="FILE", help=db_help)
    ash = au_sub.add_parser("show", help="the audit trail, or its entries about one sample")
    ash.add_argument("sample", metavar="SAMPLE", nargs="?")
    ash.add_argument("--db", metavar="FILE", help=db_help)

    s = sub.add_parser("simulate", help="write a synthetic daily run with ground truth")
    s.add_argument("out_dir", metavar="OUT_DIR")
    s.add_argument("--seed", type=_int_at_least(0), default=0)
    s.add_argument("--instrument", default="canto")
    s.add_argument("--samples", type=_int_at_least(1), default=8, metavar="N")
    s.add_argument("--events", type=_int_at_least(SIMULATE_MIN_EVENTS), default=50_000, metavar="N",
                   help=f"events per sample tube (at least {SIMULATE_MIN_EVENTS})")
    s.add_argument("--profile", default="healthy", metavar="NAME",
                   help="blood picture of the sample tubes: healthy (default), sepsis or severe-sepsis")
    s.add_argument("--scenario", action="append", default=None, metavar="NAME",
                   help="force one feature of the blood picture (repeatable), e.g. monocytopenic, "
                        "left_shift, cd14_low_monocytes, cd16_monocytes, hladr_bimodal, aggregates, dirty")
    s.add_argument("--sample-profile", action="append", default=None, metavar="N=PROFILE[:SCENARIO+...]",
                   help="blood picture of sample N alone (repeatable), e.g. 9=sepsis:monocytopenic or "
                        "10=severe-sepsis:left_shift; the other samples follow --profile")
    return p


def template_cache_dir() -> Path:
    """Where ``run`` and ``gate`` keep parsed Gating-ML templates: ``$HLADR_CACHE/templates``, else
    ``~/.cache/hladr/templates``. The shell chooses the place; the Gating-ML engine only uses the one given."""
    root = os.environ.get("HLADR_CACHE") or str(Path.home() / ".cache" / "hladr")
    return Path(root) / "templates"


def _iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None


def _cmd_run(args: argparse.Namespace) -> int:
    from .batch.daily import run_folder  # NumPy, Numba, SciPy: ~1 s, only for this command
    from .store import default_db_path  # with the store's modules: only for the commands that use it

    return run_folder(
        args.run_dir,
        args.out,
        worklist=args.worklist,
        lot_id=args.lot,
        lot_file=args.lot_file,
        calibration_file=args.calibration,
        gates_file=args.gates,
        workers=args.workers,
        scheduler=args.scheduler,
        db=args.db or str(default_db_path()),  # every run is kept: the shell chooses where
        quiet=args.quiet,
        allow_outside_run_dir=args.allow_outside_run_dir,
        template_cache=template_cache_dir(),
        user=args.user,
        reason=args.reason,
    )


def _cmd_results(args: argparse.Namespace) -> int:
    from .store import commands, current_user, default_db_path  # SQLite and the store: only for this command

    db = args.db or default_db_path()
    if args.results_command == "list":
        return commands.results_list(db, run=args.run, since=args.since)
    if args.results_command == "show":
        return commands.results_show(db, args.sample)
    return commands.results_amend(db, args.sample, ferritin=args.ferritin, ferritin_unit=args.ferritin_unit,
                                  reason=args.reason, user=args.user or current_user())


def _cmd_audit(args: argparse.Namespace) -> int:
    from .store import commands, default_db_path  # SQLite and the store: only for this command

    db = args.db or default_db_path()
    if args.audit_command == "verify":
        return commands.audit_verify(db)
    return commands.audit_show(db, args.sample)


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .commands import calibrate_file  # NumPy, Numba, SciPy: ~1 s, only for this command

    return calibrate_file(args.beads, lot_id=args.lot, lot_file=args.lot_file, out=args.out, db=args.db)


def _cmd_lots(args: argparse.Namespace) -> int:
    today = dt.date.today()
    if args.lots_command == "list":
        print(printable_lines(lots.format_lot_table(lots.list_lots(), today=today)))  # lot files are user input
    elif args.lots_command == "show":
        print(printable_lines(lots.format_lot(lots.find_lot(args.lot_id), today=today)))
    else:
        dest = lots.add_lot(args.file)
        lot = lots.read_lot_file(dest)
        print(printable(f"added lot {lot.id} ({lot.product}) as {dest}"))
        if lot.expiry is None:
            print(f"warning: lot {lot.id} states no expiry date; it will never be reported as expired")
        elif lot.expired(today):
            print(f"warning: lot {lot.id} expired on {lot.expiry.isoformat()}")
    return EXIT_OK


def _cmd_calibration(args: argparse.Namespace) -> int:
    from .qc.history import calibration_history  # NumPy, and matplotlib for the chart: only for this command

    check_output_file(args.out if args.out is not None else "levey_jennings.png")  # before reading the store

    return calibration_history(args.db, instrument=args.instrument, since=args.since, out_png=args.out,
                               lot_id=args.lot)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .fcs.describe import describe_file, format_description  # the reader and NumPy: only for this command

    record = describe_file(args.file, dataset=args.dataset)
    print(dumps_strict(record, indent=2) if args.json else printable_lines(format_description(record)))
    return EXIT_OK


def _cmd_gate(args: argparse.Namespace) -> int:
    from .commands import gate_file  # NumPy, Numba, SciPy: ~1 s, only for this command

    return gate_file(args.file, as_json=args.json, gates_file=args.gates, template_cache=template_cache_dir())


def _sample_profiles(specs: list[str], n: int) -> list | None:
    """``["9=sepsis:monocytopenic", ...]`` -> one entry per sample (None: the run's profile)."""
    if not specs:
        return None
    out: list = [None] * n
    for spec in specs:
        k, sep, picture = spec.partition("=")
        if not sep or not k.strip().isdigit() or not 1 <= int(k) <= n:
            raise ConfigError(f"--sample-profile {spec!r}: expected N=PROFILE[:SCENARIO+...] with N in 1..{n}")
        name, _, scen = picture.partition(":")
        out[int(k) - 1] = (name.strip(), [x for x in scen.split("+") if x]) if scen else name.strip()
    return out


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate.simulator import simulate_run  # NumPy and the FCS writer: only for this command

    writable_path(args.out_dir, what="OUT_DIR", folder=True)

    run = simulate_run(
        args.out_dir,
        seed=args.seed,
        instrument=args.instrument,
        n_samples=args.samples,
        events_per_tube=args.events,
        profile=args.profile,
        features=args.scenario,
        sample_profiles=_sample_profiles(args.sample_profile or [], args.samples),
    )
    print(f"wrote {len(run.files)} FCS files, worklist.csv and truth.csv to {printable(args.out_dir)}")
    return EXIT_OK


def _cmd_export(args: argparse.Namespace) -> int:
    from .exports import export_run  # NumPy and the formats' libraries (~0.2 s): only for this command
    from .store import default_db_path  # with the store's modules: only for the commands that use it

    path = export_run(args.run, args.format, args.out, mapping=args.mapping, force=args.force,
                      db=args.db or default_db_path(), since=args.since)
    print(printable(f"wrote {path}"))
    return EXIT_OK


_COMMANDS = {
    "run": _cmd_run,
    "calibrate": _cmd_calibrate,
    "inspect": _cmd_inspect,
    "gate": _cmd_gate,
    "simulate": _cmd_simulate,
    "lots": _cmd_lots,
    "calibration": _cmd_calibration,
    "export": _cmd_export,
    "results": _cmd_results,
    "audit": _cmd_audit,
}


class _PrintableLog(logging.Filter):
    """Log lines carry file names and FCS keywords: no control characters or ANSI codes reach the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage()), None
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see the module docstring)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        print(printable(exc), file=sys.stderr)
        print("try 'hladr --help'", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="hladr: %(levelname)s: %(message)s",
    )
    in_main_thread = threading.current_thread() is threading.main_thread()
    old_term = signal.signal(signal.SIGTERM, _raise_terminated) if in_main_thread else None
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _PrintableLog) for f in handler.filters):
            handler.addFilter(_PrintableLog())
    try:
        return _COMMANDS[args.command](args)
    except HladrError as exc:
        print(f"hladr {args.command}: error: {printable(exc)}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except OSError as exc:  # a file or folder the OS refused (disk full, permissions, ...): the user's to fix
        where = f": {exc.filename}" if exc.filename else ""
        print(printable(f"hladr {args.command}: error: {exc.strerror or exc}{where}"), file=sys.stderr)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        print(f"hladr {args.command}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _Terminated:
        print(f"hladr {args.command}: terminated (SIGTERM)", file=sys.stderr)
        return EXIT_TERMINATED
    finally:
        if in_main_thread:
            signal.signal(signal.SIGTERM, old_term if old_term is not None else signal.SIG_DFL)


def main_cli() -> None:
    """Console-script entry point (``hladr``, ``python -m hladr``): the process ends here.

    Before it exits, every object is moved to the collector's permanent generation
    (``gc.freeze``), so that the interpreter's last collection does not walk and free
    Numba's object graph one object at a time (0.15-0.3 s; the operating system
    reclaims the memory at once). This is done here, by the process's owner, never
    by the library: ``main`` itself (tests, callers in-process) leaves the collector
    alone. Output files are closed and switched in before ``main`` returns.
    """
    code = main()
    gc.freeze()
    sys.exit(code)
