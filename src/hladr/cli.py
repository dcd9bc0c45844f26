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

from ._cli_args import UsageError, build_parser
from .batch.output_set import check_output_file, writable_path
from .beads import lots
from .errors import ConfigError, HladrError
from .safe_text import dumps_strict, printable, printable_lines

__all__ = ["main", "main_cli", "template_cache_dir"]

EXIT_OK, EXIT_FAIL, EXIT_CANNOT_RUN = 0, 1, 2
EXIT_INTERRUPTED, EXIT_TERMINATED = 130, 143


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that worker pools and staging folders are cleaned up."""


def _at_fork_code() -> frozenset:
    """Code of the Python callbacks that run around a fork in this process (logging's lock, taken before a
    fork and released after it in the parent: private names, those of Python 3.11 to 3.13)."""
    names = ("_acquireLock", "_releaseLock", "_prepareFork", "_afterFork")
    return frozenset(f.__code__ for f in (getattr(logging, n, None) for n in names) if hasattr(f, "__code__"))


_AT_FORK_CODE = _at_fork_code()
_HANDLER_PID = [os.getpid()]  # the process that installed the handler (main())


def _raise_terminated(signum: int, frame: object) -> None:
    """SIGTERM: raise :class:`_Terminated` in the main thread. Inside a callback that runs around a fork
    (a worker or the report's drawing process starting), Python would print that exception and drop it,
    and the run would go on: the signal is sent again a moment later, once the fork is done. In a
    process forked from hladr that has not yet set its own handler (a worker stopped while it starts),
    it ends that process quietly, as SIGTERM ends a worker once started (``hladr._workers``)."""
    if os.getpid() != _HANDLER_PID[0]:
        os._exit(128 + signum)
    if getattr(frame, "f_code", None) in _AT_FORK_CODE:
        again = threading.Timer(0.05, os.kill, (os.getpid(), signum))
        again.daemon = True
        again.start()
        return
    raise _Terminated()


def template_cache_dir() -> Path:
    """Where ``run`` and ``gate`` keep parsed Gating-ML templates: ``$HLADR_CACHE/templates``, else
    ``~/.cache/hladr/templates``. The shell chooses the place; the Gating-ML engine only uses the one given."""
    root = os.environ.get("HLADR_CACHE") or str(Path.home() / ".cache" / "hladr")
    return Path(root) / "templates"


def _cmd_run(args: argparse.Namespace) -> int:
    # the report's drawing process starts first: it readies matplotlib while this one loads Numba and analyses
    from .report.background import BackgroundReport

    with BackgroundReport() as report:
        return _run(args, report)


def _run(args: argparse.Namespace, report) -> int:
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
        gates_for=args.gates_for,
        workers=args.workers,
        scheduler=args.scheduler,
        db=args.db or str(default_db_path()),  # every run is kept: the shell chooses where
        quiet=args.quiet,
        allow_outside_run_dir=args.allow_outside_run_dir,
        template_cache=template_cache_dir(),
        user=args.user,
        reason=args.reason,
        ship_files=args.ship_files,
        report=report,
    )


def _cmd_batch(args: argparse.Namespace) -> int:
    from .batch.study import run_manifest  # NumPy, Numba, SciPy: ~1 s, only for this command
    from .store import default_db_path  # with the store's modules: only for the commands that use it

    return run_manifest(args.manifest, workers=args.workers, scheduler=args.scheduler, ship_files=args.ship_files,
                        force=args.force, db=args.db or str(default_db_path()), quiet=args.quiet,
                        allow_outside_run_dir=args.allow_outside_run_dir, template_cache=template_cache_dir(),
                        user=args.user, reason=args.reason)


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


def _cmd_gates(args: argparse.Namespace) -> int:
    from .gates_export import export_sample_gates  # NumPy, Numba, the store: only for this command
    from .store import default_db_path

    return export_sample_gates(args.db or default_db_path(), args.sample, args.out, fcs=args.fcs)


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


def _cmd_report(args: argparse.Namespace) -> int:
    from .report.command import rerender  # matplotlib: only for the commands that draw

    paths, missing, run_id = rerender(args.out_dir)
    for m in missing:
        print(f"note: {printable(m)}", file=sys.stderr)
    print(printable(f"re-drew {paths[0]} and {paths[1].name} from the folder's records (run {run_id}); "
                    "nothing was re-analysed"))
    return EXIT_OK


def _cmd_validate(args: argparse.Namespace) -> int:
    from .validate.command import validate_command  # the whole pipeline and matplotlib: only for this command

    return validate_command(args.out, quick=args.quick, seed=args.seed, rules_file=args.rules,
                            allow_development=args.allow_development, quiet=args.quiet)


_COMMANDS = {
    "run": _cmd_run,
    "report": _cmd_report,
    "batch": _cmd_batch,
    "calibrate": _cmd_calibrate,
    "inspect": _cmd_inspect,
    "gate": _cmd_gate,
    "gates": _cmd_gates,
    "simulate": _cmd_simulate,
    "lots": _cmd_lots,
    "calibration": _cmd_calibration,
    "export": _cmd_export,
    "results": _cmd_results,
    "audit": _cmd_audit,
    "validate": _cmd_validate,
}


class _PrintableLog(logging.Filter):
    """Log lines carry file names and FCS keywords: no control characters or ANSI codes reach the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg, record.args = printable(record.getMessage()), None
        return True


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except UsageError as exc:
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
    _HANDLER_PID[0] = os.getpid()
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
