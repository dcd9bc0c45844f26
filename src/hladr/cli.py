"""Command line: parse, delegate, map errors to the exit codes of SPEC.md section 5.

``main(argv) -> int`` returns instead of exiting, so tests call it in-process.
Heavy modules are imported inside the command functions: ``hladr --help`` and
``hladr inspect`` stay fast.

Exit codes (one table for every command):

====  =====================================================================
0     done; every sample passed or warned / calibration accepted / file read
1     at least one sample failed / calibration rejected
2     could not start: bad arguments, unreadable input, unknown lot, ...
====  =====================================================================
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence

from . import __version__
from .errors import HladrError

__all__ = ["main", "main_cli"]

EXIT_OK, EXIT_FAIL, EXIT_CANNOT_RUN = 0, 1, 2


class _ArgumentParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so bad arguments map to exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


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
    r.add_argument("--db", metavar="FILE", help="results store (SQLite)")
    r.add_argument("--quiet", action="store_true", help="no table, no progress")

    c = sub.add_parser("calibrate", help="fit a QuantiBRITE bead tube")
    c.add_argument("beads", metavar="BEADS.fcs")
    lot = c.add_mutually_exclusive_group(required=True)
    lot.add_argument("--lot", metavar="ID")
    lot.add_argument("--lot-file", metavar="FILE")
    c.add_argument("--out", metavar="CAL.json")

    i = sub.add_parser("inspect", help="describe an FCS file")
    i.add_argument("file", metavar="FILE")
    i.add_argument("--json", action="store_true")
    i.add_argument("--dataset", type=int, default=None, metavar="N",
                   help="1-based dataset of a multi-dataset file (default: the first; FCS 3.0 of an LMD pair)")

    g = sub.add_parser("gate", help="gate the monocytes of one tube")
    g.add_argument("file", metavar="FILE")
    g.add_argument("--json", action="store_true")
    g.add_argument("--gates", metavar="TEMPLATE.xml")

    s = sub.add_parser("simulate", help="write a synthetic daily run with ground truth")
    s.add_argument("out_dir", metavar="OUT_DIR")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--instrument", default="canto")
    s.add_argument("--samples", type=int, default=8, metavar="N")
    s.add_argument("--events", type=int, default=50_000, metavar="N", help="events per sample tube")
    return p


def _cmd_run(args: argparse.Namespace) -> int:
    from .batch import run_folder

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
        db=args.db,
        quiet=args.quiet,
    )


def _cmd_calibrate(args: argparse.Namespace) -> int:
    from .batch import calibrate_file

    return calibrate_file(args.beads, lot_id=args.lot, lot_file=args.lot_file, out=args.out)


def _cmd_inspect(args: argparse.Namespace) -> int:
    from .describe import describe_file, format_description

    record = describe_file(args.file, dataset=args.dataset)
    print(json.dumps(record, indent=2) if args.json else format_description(record))
    return EXIT_OK


def _cmd_gate(args: argparse.Namespace) -> int:
    from .batch import gate_file

    return gate_file(args.file, as_json=args.json, gates_file=args.gates)


def _cmd_simulate(args: argparse.Namespace) -> int:
    from .simulate import simulate_run

    run = simulate_run(
        args.out_dir,
        seed=args.seed,
        instrument=args.instrument,
        n_samples=args.samples,
        events_per_tube=args.events,
    )
    print(f"wrote {len(run.files)} FCS files, worklist.csv and truth.csv to {args.out_dir}")
    return EXIT_OK


_COMMANDS = {
    "run": _cmd_run,
    "calibrate": _cmd_calibrate,
    "inspect": _cmd_inspect,
    "gate": _cmd_gate,
    "simulate": _cmd_simulate,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status (see the module docstring)."""
    parser = _build_parser()
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except _UsageError as exc:
        print(str(exc), file=sys.stderr)
        print("try 'hladr --help'", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except SystemExit as exc:  # --help / --version
        return int(exc.code or 0)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="hladr: %(levelname)s: %(message)s",
    )
    try:
        return _COMMANDS[args.command](args)
    except HladrError as exc:
        print(f"hladr {args.command}: error: {exc}", file=sys.stderr)
        return EXIT_CANNOT_RUN
    except KeyboardInterrupt:
        print(f"hladr {args.command}: interrupted", file=sys.stderr)
        return 130


def main_cli() -> None:
    """Console-script entry point."""
    sys.exit(main())
