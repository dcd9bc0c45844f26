"""Hostile worklists (issue 12, items 1, 4, 5, 8): refused before any work, with one line.

A worklist decides which files are read and what stands next to each result: a
path outside the run folder, a column shadowing an output column, a duplicate
tube, a huge cell or a file that is not UTF-8 CSV stops the run (exit 2).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from robust_helpers import (
    CLEAN_WORKLIST,
    WORKLIST_HEADER,
    assert_one_clean_line,
    result_rows,
    run_cli,
    strict_json,
    write_worklist,
)

from hladr.batch.worklist import RESERVED_COLUMNS, read_worklist
from hladr.errors import ConfigError

SECRET = "root:x:0:0:root:/root:/bin/bash\n" * 20


@pytest.fixture()
def secret(tmp_path) -> Path:
    """A file outside the run folder that must never be read (nor its bytes echoed)."""
    p = tmp_path / "outside" / "passwd.fcs"
    p.parent.mkdir()
    p.write_text(SECRET)
    return p


def _refused(sim_run: Path, tmp_path: Path, lines: list[str], *needles: str, header: str = WORKLIST_HEADER) -> str:
    wl = write_worklist(tmp_path / "wl.csv", lines, header)
    out = tmp_path / "out"
    rc, stdout, err = run_cli(["run", str(sim_run), "--out", str(out), "--worklist", str(wl), "--quiet"])
    assert rc == 2, (rc, err)
    assert_one_clean_line(err, *needles)
    assert not (out / "results.csv").exists()
    assert "root:x" not in stdout + err
    return err


# --------------------------------------------------------------------------- item 1: paths
@pytest.mark.parametrize("how", ["dotdot", "absolute", "symlink", "gates_dotdot"])
def test_a_file_outside_the_run_folder_is_refused(sim_run, tmp_path, secret, how):
    rel = os.path.relpath(secret, sim_run)
    if how == "dotdot":
        row, column = f"{rel},sample,X1,,,,", "file"
    elif how == "absolute":
        row, column = f"{secret},sample,X1,,,,", "file"
    elif how == "symlink":  # a link inside a copy of the run folder, leading out of it
        run = tmp_path / "run"
        shutil.copytree(sim_run, run)
        (run / "evil.fcs").symlink_to(secret)
        sim_run, row, column = run, "evil.fcs,sample,X1,,,,", "file"
    else:
        row, column = None, "gates"
    lines = list(CLEAN_WORKLIST)
    if row:
        lines.append(row)
        _refused(sim_run, tmp_path, lines, "outside the run folder", column, "line 6")
    else:
        lines[1] += f",{rel}"
        _refused(sim_run, tmp_path, lines, "outside the run folder", "gates", "line 3",
                 header=WORKLIST_HEADER + ",gates")


def test_a_link_out_of_the_run_folder_is_refused_without_a_worklist(sim_run, tmp_path, secret):
    run = tmp_path / "run"
    shutil.copytree(sim_run, run)
    (run / "worklist.csv").unlink()
    (run / "evil.fcs").symlink_to(secret)
    rc, out, err = run_cli(["run", str(run), "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 2
    assert_one_clean_line(err, "evil.fcs", "outside the run folder")


def test_allow_outside_run_dir_reads_it_and_records_the_full_path(sim_run, tmp_path, secret, clean_rows):
    lines = [*CLEAN_WORKLIST, f"{secret},sample,X1,,,,"]
    wl = write_worklist(tmp_path / "wl.csv", lines)
    out = tmp_path / "out"
    rc, _, err = run_cli(["run", str(sim_run), "--out", str(out), "--worklist", str(wl), "--quiet",
                          "--allow-outside-run-dir"])
    assert rc == 1, err  # the outside file is not FCS: that sample fails, the run completes
    rows = result_rows(out)
    assert rows[str(secret)]["qc"] == "fail"  # recorded by its full path, not only its basename
    text = (out / "results.csv").read_text() + (out / "results.json").read_text() + (out / "report.html").read_text()
    assert "root:x" not in text  # the reader's message does not quote the file's bytes
    for f, clean in clean_rows.items():
        assert rows[f] == clean
    strict_json(out / "results.json")


# --------------------------------------------------------------------------- item 4: shadowing columns
@pytest.mark.parametrize("column", ["sha256", "calibration_id", "ruleset", "software_version", "qc_reasons",
                                    "qc", "phenotype", "hladr_abc", "flags", "monocyte_count", "SHA256 ", "run_id"])
def test_a_column_named_like_an_output_column_is_refused(tmp_path, column):
    wl = write_worklist(tmp_path / "wl.csv", ["P001_HLADR.fcs,sample,P001,S,D1,10,ng/mL,forged"],
                        header=WORKLIST_HEADER + f",{column}")
    with pytest.raises(ConfigError, match=f"column '{column.strip().lower()}' is written by hladr"):
        read_worklist(wl)


def test_reserved_columns_cover_every_output_column_hladr_fills():
    from hladr.batch.daily import RESULT_COLUMNS

    assert set(RESERVED_COLUMNS) == set(RESULT_COLUMNS + ["qc_reasons", "sha256", "calibration_id", "ruleset",
                                                          "software_version", "run_id"]) - {"sample_id", "subject_id",
                                                                                            "visit", "file"}


def test_a_forged_provenance_column_stops_the_run(sim_run, tmp_path):
    lines = [x + ",0000" for x in CLEAN_WORKLIST]
    _refused(sim_run, tmp_path, lines, "'sha256' is written by hladr", header=WORKLIST_HEADER + ",sha256")


@pytest.mark.parametrize("header", [WORKLIST_HEADER + ",ferritin", WORKLIST_HEADER + ",File",
                                    WORKLIST_HEADER + ",note, NOTE"])
def test_duplicate_header_names_are_refused(tmp_path, header):
    n = header.count(",") + 1
    wl = write_worklist(tmp_path / "wl.csv", ["P001_HLADR.fcs,sample" + ",x" * (n - 2)], header=header)
    with pytest.raises(ConfigError, match="appears twice in the header"):
        read_worklist(wl)


# --------------------------------------------------------------------------- item 5: duplicates
@pytest.mark.parametrize("second", ["P001_HLADR.fcs", "./P001_HLADR.fcs", "sub/../P001_HLADR.fcs"])
def test_the_same_tube_twice_is_refused(sim_run, tmp_path, second):
    lines = [*CLEAN_WORKLIST, f"{second},sample,P001b,,,,"]
    _refused(sim_run, tmp_path, lines, "already listed on line 3", "line 6")


def test_a_sample_id_shared_by_two_tubes_is_flagged(sim_run, tmp_path, clean_rows):
    lines = list(CLEAN_WORKLIST)
    lines[2] = lines[2].replace(",P002,", ",P001,")
    wl = write_worklist(tmp_path / "wl.csv", lines)
    out = tmp_path / "out"
    rc, _, err = run_cli(["run", str(sim_run), "--out", str(out), "--worklist", str(wl), "--quiet"])
    assert rc == 0, err
    rows = result_rows(out)
    for f in ("P001_HLADR.fcs", "P002_HLADR.fcs"):
        assert "duplicate_sample_id" in rows[f]["flags"].split(";")
        assert rows[f]["qc"] in ("warn", "fail")
    assert rows["P003_HLADR.fcs"] == clean_rows["P003_HLADR.fcs"]
    doc = strict_json(out / "results.json")
    msgs = [f["message"] for s in doc["samples"] for f in s["flags"] if f["code"] == "duplicate_sample_id"]
    assert len(msgs) == 2 and "P002_HLADR.fcs" in msgs[0]


# --------------------------------------------------------------------------- item 8: unreadable worklists
def _wl_bytes(tmp_path: Path, data: bytes) -> Path:
    p = tmp_path / "wl.csv"
    p.write_bytes(data)
    return p


GOOD = (WORKLIST_HEADER + "\n" + "\n".join(CLEAN_WORKLIST) + "\n").encode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (GOOD.replace(b"ISP-0247", b"X" * 200_000), "line 4: a cell is longer than 131,072 characters"),
        (GOOD.replace(b"ISP-0247", "Müller".encode("latin-1")), "not UTF-8 text"),
        (GOOD.replace(b"ISP-0247", b"ISP\x000247"), "NUL bytes"),
        (("\ufeff" + GOOD.decode()).encode("utf-16-le"), "UTF-16"),
        (GOOD.decode().encode("utf-16-le"), "NUL bytes"),  # UTF-16 without a BOM
        (GOOD.decode().encode("utf-16"), "UTF-16"),
        (b"", "worklist is empty"),
        (b"\n\n  \n", "worklist is empty"),
        (GOOD.replace(b",D1,", b',"D1,'), "not valid CSV"),
        (GOOD.replace(b",D1,273,ng/mL", b",D1,273,ng/mL,surplus"), "line 4: this row has 8 cells"),
        (GOOD.replace(b"ferritin_unit", b"ferritin_unit,").replace(b"ng/mL\nP002", b"ng/mL,x\nP002"),
         "column 8 has no name"),
        (b"sample,tube\nP001,x\n", "no 'file' and 'role' columns"),
        (GOOD.replace(b"sample,P002", b"smaple,P002"), "line 4: role must be"),
        (GOOD.replace(b"P002_HLADR.fcs", b""), "line 4: the 'file' column is empty"),
        (GOOD.replace(b"ferritin_unit", b"ferritin\x1b[31m"), "control characters"),
    ],
)
def test_unreadable_worklists_are_refused_with_one_line(tmp_path, data, message):
    with pytest.raises(ConfigError) as exc:
        read_worklist(_wl_bytes(tmp_path, data))
    text = str(exc.value)
    assert message in text and "\n" not in text and "\x1b" not in text and len(text) < 400, text


@pytest.mark.parametrize(
    "data",
    [
        GOOD.replace(b",", b";"),
        GOOD.replace(b",", b"\t"),
        GOOD.replace(b"\n", b"\r\n"),
        b"\xef\xbb\xbf" + GOOD,
        GOOD.replace(b"\n", b",,\n"),  # Excel's empty trailing columns
        GOOD.replace(b"file,role", b" File , ROLE "),
        GOOD.replace(b"P002_HLADR.fcs", b'"P002_HLADR.fcs"').replace(b"\nP003", b"\n\n\nP003"),
    ],
)
def test_ordinary_variants_give_the_same_rows(tmp_path, sim_run, data):
    expected = read_worklist(_wl_bytes(tmp_path, GOOD), run_dir=sim_run)
    assert read_worklist(_wl_bytes(tmp_path, data), run_dir=sim_run) == expected
    assert [r["file"] for r in expected] == ["beads.fcs", "P001_HLADR.fcs", "P002_HLADR.fcs", "P003_HLADR.fcs"]


def test_a_huge_cell_stops_the_run_with_one_line(sim_run, tmp_path):
    lines = list(CLEAN_WORKLIST)
    lines[2] = lines[2].replace("ISP-0247", "X" * 200_000)
    _refused(sim_run, tmp_path, lines, "line 4", "longer than")


def test_a_header_only_worklist_stops_the_run(sim_run, tmp_path):
    _refused(sim_run, tmp_path, [], "no sample tubes")
