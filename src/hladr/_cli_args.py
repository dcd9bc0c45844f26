"""The command line's arguments: every command of ``hladr``, its options and their help (argparse).

:func:`build_parser` gives the parser :func:`hladr.cli.main` uses; it raises :class:`UsageError`
instead of exiting, so that bad arguments map to exit status 2 with one line. Kept apart from
:mod:`hladr.cli` (which parses, delegates and maps errors to exit codes) so that each stays short.
"""

from __future__ import annotations

import argparse
import datetime as dt

from . import __version__

__all__ = ["SIMULATE_MIN_EVENTS", "StrictParser", "UsageError", "build_parser", "int_at_least", "iso_date"]

SIMULATE_MIN_EVENTS = 100  # the simulator's own floor for a sample tube


class StrictParser(argparse.ArgumentParser):
    """argparse that raises instead of exiting, so bad arguments map to exit 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        raise UsageError(f"{self.prog}: {message}")


class UsageError(Exception):
    """Bad arguments: one line for the user, exit status 2."""


def int_at_least(low: int):
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


def build_parser(description: str) -> argparse.ArgumentParser:
    """The whole command line of ``hladr``: every command, its arguments and their help."""
    p = StrictParser(prog="hladr", description=description)
    p.add_argument("--version", action="version", version=f"hladr {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, parser_class=StrictParser)

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
    r.add_argument("--ship-files", action="store_true",
                   help="with --scheduler: send the tubes' bytes to the Dask workers (they need no access to RUN_DIR)")
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

    _add_batch(sub)

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
                                   parser_class=StrictParser)
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
                                parser_class=StrictParser)
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
    h.add_argument("--since", metavar="DATE", type=iso_date, help="first acquisition date (YYYY-MM-DD)")
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
    e.add_argument("--since", metavar="DATE", type=iso_date,
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
                                 parser_class=StrictParser)
    ls = res_sub.add_parser("list", help="the current result of every sample (or of one run, or kept since a day)")
    which = ls.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="RUN", help="the results of one run (its run id)")
    which.add_argument("--since", metavar="DATE", type=iso_date, help="kept on or after this UTC day (YYYY-MM-DD)")
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
                               parser_class=StrictParser)
    ver = au_sub.add_parser("verify", help="check the hash chain and every result against it",
                            epilog="exit status: 0 intact; 1 broken (the first broken entry is named); 2 no store")
    ver.add_argument("--db", metavar="FILE", help=db_help)
    ash = au_sub.add_parser("show", help="the audit trail, or its entries about one sample")
    ash.add_argument("sample", metavar="SAMPLE", nargs="?")
    ash.add_argument("--db", metavar="FILE", help=db_help)

    s = sub.add_parser("simulate", help="write a synthetic daily run with ground truth")
    s.add_argument("out_dir", metavar="OUT_DIR")
    s.add_argument("--seed", type=int_at_least(0), default=0)
    s.add_argument("--instrument", default="canto")
    s.add_argument("--samples", type=int_at_least(1), default=8, metavar="N")
    s.add_argument("--events", type=int_at_least(SIMULATE_MIN_EVENTS), default=50_000, metavar="N",
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


def _add_batch(sub: argparse._SubParsersAction) -> None:
    """``hladr batch MANIFEST.csv``: many run folders, resumable (:mod:`hladr.batch.manifest`)."""
    b = sub.add_parser(
        "batch", help="re-process many run folders listed in a manifest (resumable)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run 'hladr run' for every row of MANIFEST.csv (columns: run_dir, out_dir; optional:\n"
                    "worklist, calibration, lot, lot_file, gates; paths relative to the manifest's folder).\n"
                    "A run whose inputs (every file's SHA-256) and settings are unchanged since it was done,\n"
                    "and whose outputs are complete, is skipped (the ledger MANIFEST.done.json beside the\n"
                    "manifest). A run that cannot start fails alone, with one line; the others go on.",
        epilog="exit status:\n  0  every run done or skipped, every sample pass or warn\n"
               "  1  at least one sample failed, or at least one run failed (its reason is printed)\n"
               "  2  the batch could not start (bad manifest, bad arguments, Dask scheduler unreachable)",
    )
    b.add_argument("manifest", metavar="MANIFEST.csv")
    where = b.add_mutually_exclusive_group()
    where.add_argument("--workers", type=int_at_least(1), default=1, metavar="N", help="local worker processes")
    where.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (tcp://HOST:PORT)")
    b.add_argument("--ship-files", action="store_true", help="with --scheduler: send the tubes' bytes to the workers")
    b.add_argument("--force", action="store_true", help="run every row again, even those already done")
    b.add_argument("--db", metavar="FILE",
                   help="results store (default: $HLADR_DB or ~/.local/share/hladr/hladr.sqlite)")
    b.add_argument("--reason", metavar="TEXT", help="as for 'hladr run': why the tubes are analysed again")
    b.add_argument("--user", metavar="NAME", help="who runs it, for the audit trail (default: the OS user)")
    b.add_argument("--quiet", action="store_true", help="no progress, only the summary")
    b.add_argument("--allow-outside-run-dir", action="store_true",
                   help="let worklists name files outside their run folder")


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date (YYYY-MM-DD)") from None
