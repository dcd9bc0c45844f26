"""Lot files and calibration records that must be refused when read (issue 12, item 6).

A NaN bead value used to pass ``parse_lot`` and end as a misleading "bead level is
absent" rejection; a look-alike id made a second lot that prints like the first; a
deeply nested TOML file gave a RecursionError traceback.
"""

from __future__ import annotations

import json

import pytest
from robust_helpers import assert_one_clean_line, run_cli

from hladr.beads.lots import read_lot_file
from hladr.errors import LotError

GOOD = '[lot]\nid = "96597"\nproduct = "BD QuantiBRITE PE"\npe_per_bead = [638, 6930, 31008, 67601]\n'


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (GOOD.replace("6930", "nan"), "med-low is nan (not a finite number)"),
        (GOOD.replace("67601", "inf"), "high is inf (not a finite number)"),
        (GOOD.replace("638", "-inf"), "low is -inf"),
        (GOOD.replace("638", '"638"'), "must be numbers (the low value is a text)"),
        (GOOD.replace("638", "true"), "must be numbers (the low value is a boolean)"),
        (GOOD.replace('id = "96597"', "id = { a = 1 }"), "id must be text"),
        (GOOD.replace('id = "96597"', "id = true"), "id must be text"),
        (GOOD.replace('id = "96597"', "id = 9.6597"), "id must be text"),
        (GOOD.replace('"96597"', '"965\u200b97"'), "invisible or look-alike"),  # zero-width space
        (GOOD.replace('"96597"', '"\u0669\u0666597"'), "invisible or look-alike"),  # Arabic-Indic digits
        (GOOD.replace('"96597"', '"\uff19\uff16597"'), "invisible or look-alike"),  # full-width digits
        (GOOD.replace('"96597"', '"965\u00a097"'), "invisible or look-alike"),  # no-break space
        (GOOD.replace('"96597"', '"96\\u202e597"'), "invisible or look-alike"),  # bidi override
        (GOOD.replace('"BD QuantiBRITE PE"', '"BD\\u001b[31m"'), "product contains control"),
        (GOOD.replace('"BD QuantiBRITE PE"', "3"), "product must be text"),
        (GOOD + "expiry = [2027]\n", "expiry is not a date"),
        ("lot = " + "[" * 10_000 + "]" * 10_000 + "\n", "nested too deeply"),
        ("x = " + "{a = " * 5_000 + "1" + "}" * 5_000 + "\n", "not valid TOML|nested too deeply"),
        ("[lot]\n" + "#" * 70_000 + "\n", "not a lot file"),
    ],
)
def test_bad_lot_files_are_refused_at_parse(tmp_path, body, message):
    p = tmp_path / "lot.toml"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(LotError) as exc:
        read_lot_file(p)
    text = str(exc.value)
    assert any(m in text for m in message.split("|")), text
    assert "\n" not in text and len(text) < 400


def test_integer_id_and_the_bundled_lot_still_read(tmp_path):
    p = tmp_path / "lot.toml"
    p.write_text(GOOD.replace('"96597"', "96597"), encoding="utf-8")
    assert read_lot_file(p).id == "96597"
    from hladr.beads.lots import find_lot

    assert find_lot("96597").pe_per_bead == (638.0, 6930.0, 31008.0, 67601.0)


def test_a_nan_lot_file_stops_the_run_with_its_reason(sim_run, tmp_path):
    p = tmp_path / "lot.toml"
    p.write_text(GOOD.replace("6930", "nan"), encoding="utf-8")
    rc, _, err = run_cli(["run", str(sim_run), "--out", str(tmp_path / "out"), "--lot-file", str(p), "--quiet"])
    assert rc == 2
    assert_one_clean_line(err, "not a finite number")
    assert not (tmp_path / "out" / "results.csv").exists()


def test_a_calibration_record_with_nan_is_refused(sim_run, tmp_path, clean_rows):
    out = tmp_path / "out"
    assert run_cli(["run", str(sim_run), "--out", str(out), "--quiet"])[0] == 0
    text = (out / "calibration.json").read_text()
    record = json.loads(text)
    bad = tmp_path / "cal.json"
    bad.write_text(text.replace(json.dumps(record["fit"]["slope"]), "NaN", 1))
    rc, _, err = run_cli(["run", str(sim_run), "--out", str(tmp_path / "o2"), "--calibration", str(bad), "--quiet"])
    assert rc == 2
    assert_one_clean_line(err, "NaN is not a JSON number")
