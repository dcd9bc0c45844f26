"""Messages describe a file, they never quote its bytes; shown text has no control characters.

Issue 12: "error messages never quote the content of a file". Round 1 stopped the reader
from echoing the first bytes of a file that is not FCS; before this change it still quoted
16 HEADER bytes of a file that starts with ``FCS`` (``FCS3.0    root:x:0:0:root:...``)
and the first character of a TEXT segment. Keyword values (the file's own metadata) may
be quoted, cut to 40 characters and with control characters shown as ``?``.
``hladr calibration history`` printed instrument names from the store raw (ANSI escapes).
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest
from robust_helpers import run_cli

from calibration_records import PE, make_calibration
from hladr.errors import ReadError
from hladr.fcs.read import read_events
from hladr.fcs.write import write_fcs
from hladr.store import record_calibration

SECRET = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1"


def _refusal(path) -> str:
    with pytest.raises(ReadError) as info:
        read_events(path)
    return str(info.value)


def _no_control(text: str) -> None:
    assert not [c for c in text if ord(c) < 32 and c != "\n" or 0x7f <= ord(c) < 0xa0 or c in "\u202e\u200b"], text


@pytest.mark.parametrize("header", [
    b"FCS3.0    " + SECRET[:16] + b"       0       0",                  # offsets that are not numbers
    b"FCS3.1    " + b"      10     200" + SECRET[:32],                    # TEXT inside the HEADER
])
def test_a_header_is_described_not_quoted(tmp_path, header):
    path = tmp_path / "h.fcs"
    path.write_bytes(header.ljust(58, b" ") + SECRET * 20)
    msg = _refusal(path)
    assert msg.startswith("h.fcs: HEADER gives no valid TEXT segment offsets")
    assert "root" not in msg and "bin" not in msg and ":x:" not in msg, msg
    rc, _, err = run_cli(["inspect", str(path)])
    assert rc == 2 and "root" not in err


def test_the_first_byte_of_text_is_described_not_quoted(tmp_path):
    path = tmp_path / "t.fcs"
    body = SECRET * 4
    header = b"FCS3.0    " + f"{58:>8}{58 + len(body) - 1:>8}{0:>8}{0:>8}{0:>8}{0:>8}".encode()
    path.write_bytes(header + body)
    msg = _refusal(path)
    assert "does not start with a delimiter" in msg and "'r'" not in msg and "root" not in msg, msg


def test_a_keyword_value_is_cut_and_shown_without_control_characters(tmp_path):
    data = np.column_stack([np.arange(200.0), np.linspace(1, 1000, 200)])
    path = tmp_path / "k.fcs"
    write_fcs(path, data, ["Time", "FSC-A"], keywords={"$MODE": "\x1b[2J\u202e" + "H" * 300})
    msg = _refusal(path)
    _no_control(msg)
    assert "$MODE='?[2J?HHH" in msg and "H" * 60 not in msg, msg


def _record(n: int, instrument: str, serial: str, lot: str):
    day = dt.date(2026, 1, 5) + dt.timedelta(days=n)
    return make_calibration(n, date=day.strftime("%d-%b-%Y").upper(), serial=serial, instrument=instrument, lot=lot,
                            slope=1.0 + n / 1000, intercept=-0.3, mfi=[pe * 2 for pe in PE])


def test_calibration_history_prints_no_control_characters(tmp_path):
    db = tmp_path / "s.sqlite"
    instrument, serial, lot = "\x1b[31mCanto\x1b[0m\u202e", "SN\x07\u200b1", "96\x1b597"
    for n in range(5):
        record_calibration(db, _record(n, instrument, serial, lot), source="test")
    png = tmp_path / "lj.png"
    rc, out, err = run_cli(["calibration", "history", "--db", str(db), "--out", str(png)])
    assert rc in (0, 1), err
    _no_control(out)
    _no_control(err)
    assert "?[31mCanto?[0m?" in out and png.is_file()


def test_simulate_prints_its_folder_without_control_characters(tmp_path):
    """A path given on the command line is shown like any other text (``hladr simulate`` printed it raw)."""
    out = tmp_path / "run\x1b[2J"
    rc, stdout, err = run_cli(["simulate", str(out), "--samples", "1", "--events", "200"])
    assert rc == 0, err
    _no_control(stdout)
    assert "run?[2J" in stdout
