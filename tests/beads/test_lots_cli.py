"""`hladr lots list|show|add`, the user lot folder and lot expiry."""

from __future__ import annotations

import datetime as dt

import pytest

from hladr.beads.lots import Lot, add_lot, find_lot, list_lots, user_lot_folder
from hladr.cli import main

GOOD = '''# certificate of analysis, lot 12345
[lot]
id = "12345"
product = "BD QuantiBRITE PE"
pe_per_bead = [700, 7100, 30500, 66000]
expiry = 2099-06-30
source = "BD certificate of analysis 12345"
'''


@pytest.fixture
def user_lots(tmp_path, monkeypatch):
    folder = tmp_path / "lots"
    monkeypatch.setenv("HLADR_LOTS", str(folder))
    return folder


def _write(tmp_path, body: str, name: str = "new.toml"):
    p = tmp_path / name
    p.write_text(body, encoding="utf-8")
    return p


def test_expired_is_after_the_expiry_day():
    lot = Lot(id="X", product="p", pe_per_bead=(1, 2, 3, 4), expiry=dt.date(2026, 3, 31))
    assert not lot.expired(dt.date(2026, 3, 30))
    assert not lot.expired(dt.date(2026, 3, 31))  # the expiry date is the last day of use
    assert lot.expired(dt.date(2026, 4, 1))
    assert not Lot(id="Y", product="p", pe_per_bead=(1, 2, 3, 4)).expired(dt.date(2999, 1, 1))


def test_user_lot_folder_default_and_env(monkeypatch, tmp_path):
    monkeypatch.delenv("HLADR_LOTS", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert user_lot_folder() == tmp_path / ".config" / "hladr" / "lots"
    monkeypatch.setenv("HLADR_LOTS", str(tmp_path / "x"))
    assert user_lot_folder() == tmp_path / "x"


def test_add_copies_the_file_unchanged_into_the_user_folder(tmp_path, user_lots, capsys):
    src = _write(tmp_path, GOOD)
    assert main(["lots", "add", str(src)]) == 0
    dest = user_lots / "12345.toml"
    assert dest.read_bytes() == src.read_bytes()  # comments and source kept
    out = capsys.readouterr().out
    assert "added lot 12345" in out and str(dest) in out and "warning" not in out
    lot = find_lot("12345")
    assert lot.pe_per_bead == (700, 7100, 30500, 66000) and lot.expiry == dt.date(2099, 6, 30)


def test_list_shows_bundled_and_user_lots(tmp_path, user_lots, capsys):
    add_lot(_write(tmp_path, GOOD))
    assert main(["lots", "list"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:2] == ["id", "product"]
    bundled = next(ln for ln in lines if ln.startswith("96597"))
    user = next(ln for ln in lines if ln.startswith("12345"))
    assert "not stated" in bundled and "bundled" in bundled
    assert "2099-06-30 (valid" in user and " user " in user
    assert [lot.id for lot in list_lots()] == ["96597", "12345"]


def test_list_with_an_empty_user_folder_shows_the_bundled_lot(user_lots, capsys):
    user_lots.mkdir()
    assert main(["lots", "list"]) == 0
    out = capsys.readouterr().out
    assert "96597" in out and len(out.strip().splitlines()) == 2


def test_show_the_bundled_lot_says_expiry_not_stated(user_lots, capsys):
    assert main(["lots", "show", "96597"]) == 0
    out = capsys.readouterr().out
    assert "lot 96597" in out
    assert "expiry:      not stated" in out
    assert "low 638, med-low 6,930, med-high 31,008, high 67,601" in out


def test_show_an_expired_lot(tmp_path, user_lots, capsys):
    add_lot(_write(tmp_path, GOOD.replace('"12345"', '"OLD1"').replace("2099-06-30", "2020-01-31")))
    capsys.readouterr()
    assert main(["lots", "show", "OLD1"]) == 0
    out = capsys.readouterr().out
    assert "2020-01-31 (EXPIRED" in out and "BD certificate of analysis 12345" in out


def test_show_unknown_lot_exits_2(user_lots, capsys):
    assert main(["lots", "show", "nope"]) == 2
    err = capsys.readouterr().err
    assert "unknown bead lot 'nope'" in err and len(err.strip().splitlines()) == 1


def test_add_rejects_a_duplicate_of_the_bundled_lot(tmp_path, user_lots, capsys):
    src = _write(tmp_path, GOOD.replace('"12345"', '"96597"'))
    assert main(["lots", "add", str(src)]) == 2
    assert "already registered" in capsys.readouterr().err
    assert not user_lots.exists() or not list(user_lots.iterdir())


def test_add_rejects_a_second_add_of_the_same_id(tmp_path, user_lots, capsys):
    assert main(["lots", "add", str(_write(tmp_path, GOOD))]) == 0
    other = _write(tmp_path, GOOD.replace("700, 7100", "710, 7200"), name="again.toml")
    assert main(["lots", "add", str(other)]) == 2
    assert "lot '12345' is already registered" in capsys.readouterr().err
    assert "700, 7100" in (user_lots / "12345.toml").read_text()  # the first one is untouched


@pytest.mark.parametrize(
    "old, new, message",
    [
        ("[700, 7100, 30500, 66000]", "[700, 30500, 7100, 66000]", "increasing"),
        ("[700, 7100, 30500, 66000]", "[700, 700, 30500, 66000]", "increasing"),
        ("[700, 7100, 30500, 66000]", "[-700, 7100, 30500, 66000]", "positive"),
        ("[700, 7100, 30500, 66000]", "[700, 7100, 30500]", "four values"),
        ("expiry = 2099-06-30", 'expiry = "June 2099"', "not a date"),
        ("expiry = 2099-06-30", 'expiry = "2099-02-30"', "not a date"),
        ("expiry = 2099-06-30", "expiry = 2099", "not a date"),
    ],
)
def test_add_rejects_invalid_lot_files(tmp_path, user_lots, capsys, old, new, message):
    src = _write(tmp_path, GOOD.replace(old, new))
    assert main(["lots", "add", str(src)]) == 2
    err = capsys.readouterr().err
    assert message in err and str(src) in err and len(err.strip().splitlines()) == 1
    assert not user_lots.exists()


def test_add_missing_file_exits_2(tmp_path, user_lots, capsys):
    assert main(["lots", "add", str(tmp_path / "none.toml")]) == 2
    assert "lot file not found" in capsys.readouterr().err


def test_add_warns_about_no_expiry_and_an_expired_lot(tmp_path, user_lots, capsys):
    no_expiry = GOOD.replace("expiry = 2099-06-30\n", "").replace('"12345"', '"NOEXP"')
    assert main(["lots", "add", str(_write(tmp_path, no_expiry, "a.toml"))]) == 0
    assert "states no expiry date" in capsys.readouterr().out
    expired = GOOD.replace("2099-06-30", "2021-05-31").replace('"12345"', '"EXP"')
    assert main(["lots", "add", str(_write(tmp_path, expired, "b.toml"))]) == 0
    assert "warning: lot EXP expired on 2021-05-31" in capsys.readouterr().out


def test_add_lot_into_a_given_folder_and_a_datetime_expiry(tmp_path, user_lots):
    src = _write(tmp_path, GOOD.replace("2099-06-30", "2099-06-30T00:00:00").replace('"12345"', '"A/B 7"'))
    dest = add_lot(src, folder=tmp_path / "elsewhere")
    assert dest == tmp_path / "elsewhere" / "A_B_7.toml"  # a safe file name
    from hladr.beads.lots import read_lot_file

    assert read_lot_file(dest).expiry == dt.date(2099, 6, 30)
