"""Lot files and the rule table are validated data, not code."""

from __future__ import annotations

import pytest

from hladr.beads.lots import find_lot, read_lot_file, resolve_lot
from hladr.errors import ConfigError, LotError
from hladr.rules import load_rules


def test_bundled_lot_96597_has_the_published_values():
    lot = find_lot("96597")
    assert lot.pe_per_bead == (638.0, 6930.0, 31008.0, 67601.0)


def _write(tmp_path, body: str):
    p = tmp_path / "lot.toml"
    p.write_text(body, encoding="utf-8")
    return p


def test_lot_file_round_trip(tmp_path):
    p = _write(tmp_path, '[lot]\nid = "X1"\npe_per_bead = [500, 5000, 25000, 60000]\nexpiry = 2027-01-31\n')
    lot = read_lot_file(p)
    assert lot.id == "X1" and lot.pe_per_bead[-1] == 60000 and str(lot.expiry) == "2027-01-31"


@pytest.mark.parametrize(
    "body, message",
    [
        ('[lot]\nid = "X"\npe_per_bead = [1, 2, 3]\n', "four values"),
        ('[lot]\nid = "X"\npe_per_bead = [1, 3, 2, 4]\n', "increasing"),
        ('[lot]\nid = "X"\npe_per_bead = [0, 1, 2, 3]\n', "positive"),
        ('[lot]\nid = "X"\npe_per_bead = ["a", 1, 2, 3]\n', "numbers"),
        ('[lot]\npe_per_bead = [1, 2, 3, 4]\n', "id is missing"),
        ('[lot]\nid = "X"\npe_per_bead = [1, 2, 3, 4]\nexpiry = "soon"\n', "not a date"),
        ("lot = [", "not valid TOML"),
        ('[other]\nid = "X"\n', r"no \[lot\] table"),
    ],
)
def test_invalid_lot_files_are_rejected_with_the_reason(tmp_path, body, message):
    with pytest.raises(LotError, match=message):
        read_lot_file(_write(tmp_path, body))


def test_unknown_lot_names_the_known_ones():
    with pytest.raises(LotError, match=r"unknown bead lot 'nope'.*96597"):
        find_lot("nope")


def test_user_lot_folder(tmp_path, monkeypatch):
    (tmp_path / "u.toml").write_text('[lot]\nid = "USER7"\npe_per_bead = [600, 7000, 30000, 65000]\n')
    monkeypatch.setenv("HLADR_LOTS", str(tmp_path))
    assert find_lot("USER7").pe_per_bead[0] == 600


def test_rule_table_holds_the_spec_thresholds():
    r = load_rules()
    assert r.label == "immunosep-2025@5"
    assert (r.mals_ferritin_ng_ml, r.immunoparalysis_hladr_abc) == (4420, 5000)
    assert (r.monocytes_fail_below, r.monocytes_warn_below) == (1000, 3000)
    assert (r.cal_r2_min, r.cal_slope_min, r.cal_slope_max, r.cal_saturation_sd, r.cal_min_levels) == (
        0.98, 0.85, 1.15, 2.5, 3)


def test_unknown_rule_set():
    with pytest.raises(ConfigError, match="unknown rule set"):
        load_rules("nope-1999")


def test_resolve_lot_takes_the_file_then_the_id_then_the_worklist_then_the_only_registered_lot(tmp_path, monkeypatch):
    user = tmp_path / "user"
    monkeypatch.setenv("HLADR_LOTS", str(user))  # no user folder yet: the bundled 96597 is the only lot
    assert resolve_lot() == (find_lot("96597"), "no lot given: using the only registered lot 96597")
    f = _write(tmp_path, '[lot]\nid = "X1"\npe_per_bead = [500, 5000, 25000, 60000]\n')
    assert resolve_lot(lot_id="96597", lot_file=str(f), worklist_lot="96597") == (read_lot_file(f), None)
    assert resolve_lot(lot_id="96597", worklist_lot="X1") == (find_lot("96597"), None)
    with pytest.raises(LotError, match="unknown bead lot 'X1'"):
        resolve_lot(worklist_lot="X1")
    user.mkdir()
    (user / "X1.toml").write_text(f.read_text(encoding="utf-8"), encoding="utf-8")
    lot, note = resolve_lot(worklist_lot="X1")
    assert lot.id == "X1" and note is None
    with pytest.raises(LotError, match=r"no bead lot given and several are registered \(96597, X1\)"):
        resolve_lot()
