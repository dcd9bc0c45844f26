"""The command line's arguments: every command of ``hladr``, its options and their help (argparse).

:func:`build_parser` gives the parser :func:`hladr.cli.main` uses; it raises :class:`UsageError`
instead of exiting, so that bad arguments map to exit status 2 with one line. Kept apart from
:mod:`hladr.cli` (which parses, delegates and maps errors to exit codes) so that each stays short.
"""

from __future__ import annotations

import argparse
import datetime as dt

from . import __version__

__all__ = ["DESCRIPTION", "EPILOG", "SIMULATE_MIN_EVENTS", "StrictParser", "UsageError", "build_parser",
           "int_at_least", "iso_date"]

SIMULATE_MIN_EVENTS = 100  # the simulator's own floor for a sample tube

# what `hladr --help` says first: for the technician at the cytometer, not for a developer
DESCRIPTION = """\
hladr measures HLA-DR on blood monocytes (antibodies bound per cell, AB/C) from the day's
flow cytometry files, calibrated with QuantiBRITE PE beads, and calls the ImmunoSep sepsis
phenotype from HLA-DR and serum ferritin: MALS, immunoparalysis, intermediate or
indeterminate. Each sample gets a QC verdict (pass, warn or fail) with its reasons.

The daily command is 'hladr run': give it the folder of the day's FCS files (the bead tube
and the patient tubes, with a worklist.csv naming them and giving each sample's ferritin)
and an output folder. It writes results.csv, results.json, calibration.json and
report.html there, and prints one line per sample."""

EPILOG = """\
common examples:
  hladr run /data/2026-03-14 --out /results/2026-03-14
      the day's run: bead tube + samples listed in /data/2026-03-14/worklist.csv
  hladr run RUN_DIR --out OUT_DIR --lot 96597
      the same, naming the QuantiBRITE bead lot on the kit (see 'hladr lots list')
  hladr run RUN_DIR --out OUT_DIR --calibration OLD_OUT/calibration.json
      no bead tube today: reuse an accepted calibration of the same instrument settings
  hladr inspect TUBE.fcs            what a file holds (channels, events, instrument)
  hladr gate TUBE.fcs               the monocyte gate of one tube, step by step
  hladr results list                the results kept in the results store
  hladr export OUT_DIR --format redcap --mapping redcap.toml --out import.csv
                                    a run's results for the trial's eCRF

exit status: 0 every sample passed or warned; 1 at least one sample failed;
2 the command could not run (the one line on stderr says why and what to do).
'hladr COMMAND --help' describes each command; README.md and the report explain the results."""


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


def build_parser(description: str = DESCRIPTION) -> argparse.ArgumentParser:
    """The whole command line of ``hladr``: every command, its arguments and their help (every option
    has one: ``tests/test_cli_help.py`` walks the tree)."""
    p = StrictParser(prog="hladr", description=description, epilog=EPILOG,
                     formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"hladr {__version__}",
                   help="print the version of hladr and exit")
    p.add_argument("-v", "--verbose", action="store_true", help="log progress details")
    sub = p.add_subparsers(dest="command", required=True, parser_class=StrictParser, metavar="COMMAND",
                           title="commands", help="one of these; 'hladr COMMAND --help' for its options")

    r = sub.add_parser("run", help="analyse a day's run folder (bead tube + sample tubes)")
    r.add_argument("run_dir", metavar="RUN_DIR",
                   help="folder of the day's FCS files (.fcs, .lmd): the bead tube and the sample tubes")
    r.add_argument("--out", required=True, metavar="OUT_DIR",
                   help="folder for results.csv, results.json, calibration.json and report.html (earlier results "
                        "there are moved aside, never overwritten)")
    r.add_argument("--worklist", metavar="FILE",
                   help="the worklist CSV (columns file, role, sample_id, subject_id, visit, ferritin, "
                        "ferritin_unit); default: RUN_DIR/worklist.csv when present")
    lot = r.add_mutually_exclusive_group()
    lot.add_argument("--lot", metavar="ID", help="QuantiBRITE bead lot number on the kit (see 'hladr lots list')")
    lot.add_argument("--lot-file", metavar="FILE", help="a bead lot TOML file (lot id and PE molecules per bead)")
    r.add_argument("--calibration", metavar="CAL.json",
                   help="an accepted calibration record instead of a bead tube")
    r.add_argument("--gates", metavar="FILE", help="Gating-ML 2.0 template replacing automated gates")
    r.add_argument("--gates-for", nargs=2, action="append", default=None, metavar=("SAMPLE", "G.xml"),
                   help="analyse sample SAMPLE with this Gating-ML 2.0 file (e.g. its gates from 'hladr gates "
                        "export', corrected); repeatable")
    r.add_argument("--workers", type=int, default=1, metavar="N",
                   help="tubes analysed at the same time, one per CPU core (default: 1)")
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
    c.add_argument("beads", metavar="BEADS.fcs", help="the QuantiBRITE PE bead tube")
    lot = c.add_mutually_exclusive_group(required=True)
    lot.add_argument("--lot", metavar="ID", help="QuantiBRITE bead lot number on the kit (see 'hladr lots list')")
    lot.add_argument("--lot-file", metavar="FILE", help="a bead lot TOML file (lot id and PE molecules per bead)")
    c.add_argument("--out", metavar="CAL.json",
                   help="write the calibration record here (for 'hladr run --calibration'); default: print only")
    c.add_argument("--db", metavar="FILE",
                   help="also keep the calibration in this results store (SQLite); default: not stored")

    i = sub.add_parser("inspect", help="describe an FCS file")
    i.add_argument("file", metavar="FILE", help="an FCS or LMD file")
    i.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    i.add_argument("--dataset", type=int, default=None, metavar="N",
                   help="1-based dataset of a multi-dataset file (default: the first; FCS 3.0 of an LMD pair)")

    g = sub.add_parser("gate", help="gate the monocytes of one tube")
    g.add_argument("file", metavar="FILE", help="one tube's FCS or LMD file (any panel with CD14)")
    g.add_argument("--json", action="store_true", help="print one JSON object (gate counts, channels, flags)")
    g.add_argument("--gates", metavar="TEMPLATE.xml",
                   help="a Gating-ML 2.0 template instead of the automated gate (its 'monocytes' gate)")

    lots = sub.add_parser("lots", help="QuantiBRITE bead lots: list, show, add")
    lots_sub = lots.add_subparsers(dest="lots_command", metavar="{list,show,add}", required=True,
                                   parser_class=StrictParser, help="what to do with the lots")
    lots_sub.add_parser("list", help="list the bundled and user lots with their expiry")
    show = lots_sub.add_parser("show", help="show one lot")
    show.add_argument("lot_id", metavar="ID", help="the lot number")
    add = lots_sub.add_parser(
        "add", help="validate a lot file and copy it into the user lot folder",
        description="Validate a lot TOML file (four positive increasing PE values, a unique id, an expiry "
                    "that is a date) and copy it into the user lot folder ($HLADR_LOTS or ~/.config/hladr/lots).",
    )
    add.add_argument("file", metavar="FILE", help="the lot TOML file to add")

    cal = sub.add_parser("calibration", help="calibration quality control over time")
    cal_sub = cal.add_subparsers(dest="calibration_command", metavar="{history}", required=True,
                                parser_class=StrictParser, help="what to show")
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
    e.add_argument("--format", required=True, choices=("csv", "redcap", "odm", "fhir"),
                   help="csv, redcap (REDCap import), odm (CDISC ODM 1.3.2) or fhir (FHIR R4 Bundle)")
    e.add_argument("--out", required=True, metavar="FILE", help="the file to write")
    e.add_argument("--mapping", metavar="FILE",
                   help="field mapping (TOML) for redcap and odm, e.g. examples/mappings/redcap.toml")
    e.add_argument("--force", action="store_true", help="replace an existing --out")

    rp = sub.add_parser(
        "report", help="draw a run's report.html and report.pdf again, without re-analysis",
        description="Draw OUT_DIR/report.html and OUT_DIR/report.pdf again from the records 'hladr run' wrote "
                    "there (results.json, calibration.json, figures.json). No tube is read and nothing is "
                    "analysed; both report files are replaced.",
    )
    rp.add_argument("out_dir", metavar="OUT_DIR", help="an output folder of 'hladr run'")

    db_help = "results store (default: $HLADR_DB or ~/.local/share/hladr/hladr.sqlite)"
    res = sub.add_parser("results", help="results kept in the store: list, show, amend")
    res_sub = res.add_subparsers(dest="results_command", metavar="{list,show,amend}", required=True,
                                 parser_class=StrictParser, help="what to do with the kept results")
    ls = res_sub.add_parser("list", help="the current result of every sample (or of one run, or kept since a day)")
    which = ls.add_mutually_exclusive_group()
    which.add_argument("--run", metavar="RUN", help="the results of one run (its run id)")
    which.add_argument("--since", metavar="DATE", type=iso_date, help="kept on or after this UTC day (YYYY-MM-DD)")
    ls.add_argument("--db", metavar="FILE", help=db_help)
    show = res_sub.add_parser("show", help="every version of one sample's result, with its provenance")
    show.add_argument("sample", metavar="SAMPLE", help="the sample id")
    show.add_argument("--db", metavar="FILE", help=db_help)
    am = res_sub.add_parser(
        "amend", help="a corrected ferritin: a new version of the sample's result, the phenotype called again",
        description="Keep the sample's current result with a corrected ferritin as its next version; the "
                    "phenotype is called again with the rule table the result was made with. Earlier versions "
                    "stay as they were; the audit trail keeps who, when, old -> new and the reason.")
    am.add_argument("sample", metavar="SAMPLE", help="the sample id")
    am.add_argument("--ferritin", required=True, metavar="TEXT", help="the ferritin as the lab reports it, e.g. >10000")
    am.add_argument("--ferritin-unit", metavar="U", help="ng/mL, ug/L or pmol/L (default: the current version's)")
    am.add_argument("--reason", required=True, metavar="TEXT", help="why (required; kept in the audit trail)")
    am.add_argument("--user", metavar="NAME", help="who amends (default: the OS user)")
    am.add_argument("--db", metavar="FILE", help=db_help)

    au = sub.add_parser("audit", help="the store's audit trail: verify, show")
    au_sub = au.add_subparsers(dest="audit_command", metavar="{verify,show}", required=True,
                               parser_class=StrictParser, help="what to do with the audit trail")
    ver = au_sub.add_parser("verify", help="check the hash chain and every result against it",
                            epilog="exit status: 0 intact; 1 broken (the first broken entry is named); 2 no store")
    ver.add_argument("--db", metavar="FILE", help=db_help)
    ash = au_sub.add_parser("show", help="the audit trail, or its entries about one sample")
    ash.add_argument("sample", metavar="SAMPLE", nargs="?", help="only the entries about this sample id")
    ash.add_argument("--db", metavar="FILE", help=db_help)

    gx = sub.add_parser("gates", help="a sample's gates as Gating-ML 2.0: export, to correct and re-run")
    gx_sub = gx.add_subparsers(dest="gates_command", metavar="{export}", required=True, parser_class=StrictParser,
                               help="export: write a stored sample's automated gates as Gating-ML 2.0")
    gxe = gx_sub.add_parser(
        "export", help="write the automated gates of a stored sample's tube as a Gating-ML 2.0 file",
        description="Write the automated gates of the sample's current result (cells, singlets, leukocytes, a "
                    "CD45/SSC region and the monocytes on CD14/SSC, traced around the automated gate's monocytes) "
                    "as a Gating-ML 2.0 file. Adjust it in any Gating-ML tool, then re-run the sample with "
                    "'hladr run RUN_DIR --out OUT --gates-for SAMPLE G.xml --reason TEXT'. The tube is read "
                    "again from its run folder (or --fcs) and must be the file the result was made from.",
        epilog="exit status: 0 written; 2 could not (no such sample, no automated gate, the tube missing or "
               "changed, --out exists)")
    gxe.add_argument("sample", metavar="SAMPLE", help="the sample id (its current result in the store)")
    gxe.add_argument("--out", required=True, metavar="G.xml", help="the Gating-ML file to write (never replaced)")
    gxe.add_argument("--fcs", metavar="FILE", help="the tube, when it is no longer in its run folder")
    gxe.add_argument("--db", metavar="FILE", help=db_help)

    s = sub.add_parser("simulate", help="write a synthetic daily run with ground truth")
    s.add_argument("out_dir", metavar="OUT_DIR", help="folder to write the run into (FCS files and worklist.csv)")
    s.add_argument("--seed", type=int_at_least(0), default=0,
                   help="random seed: the same seed writes the same files (default: 0)")
    s.add_argument("--instrument", default="canto", help="instrument convention: canto (default), cytoflex or navios")
    s.add_argument("--samples", type=int_at_least(1), default=8, metavar="N", help="sample tubes (default: 8)")
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
    va = sub.add_parser(
        "validate", help="installation and operational qualification: check this installation, write the record",
        description="Check this installation of hladr (IQ: versions, dependencies, the installed files against the "
                    "SHA-256 list shipped in the wheel, the rule set, the bead lots) and its operation (OQ: simulated "
                    "runs with ground truth analysed by the real pipeline against the rule table's acceptance limits, "
                    "the bead calibration against truth, the Gating-ML engine, the phenotype rule at its boundaries, "
                    "FCS reading, bad inputs), and write DIR/validation.json, validation.html and validation.pdf "
                    "(the archive copy, with the sign-off fields). No network, no repository needed.",
        epilog="exit status: 0 every check passed; 1 at least one failed (named on stderr and in the record); "
               "2 could not run (bad arguments, DIR already holds a record, unreadable --rules)")
    va.add_argument("--out", required=True, metavar="DIR", help="folder for the record (never replaces one)")
    va.add_argument("--quick", action="store_true",
                    help="fewer, smaller simulated runs (about a minute): after every update; the full run by default")
    va.add_argument("--seed", type=int_at_least(0), default=None, metavar="N",
                    help="seed of the simulated runs for a lab's extra runs (default: the release's fixed seed, so "
                         "that two validations of one version give the same figures)")
    va.add_argument("--allow-development", action="store_true",
                    help="let a development (editable) install pass the file check; the record says so")
    va.add_argument("--rules", metavar="FILE",
                    help="testing the validation itself: judge with this rule table instead of the installed one; "
                         "the record names it and fails its rule-set check, so it never qualifies an installation")
    va.add_argument("--quiet", action="store_true", help="no progress lines")
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
    b.add_argument("manifest", metavar="MANIFEST.csv",
                   help="CSV of run folders: run_dir, out_dir (required), worklist, calibration, lot, lot_file, gates")
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
