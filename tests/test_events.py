"""events: the event matrix with its channels, keywords and file digest; FCS dates."""

from __future__ import annotations

import dataclasses
import datetime as dt
import pickle
import threading

import numpy as np
import pytest

from hladr.errors import ReadError
from hladr.events import Events, parse_fcs_date

pytestmark = pytest.mark.filterwarnings("error")

SHA = "ab" * 32


def _events(**changes) -> Events:
    data = np.array([[1.0, 10.0, -2.0], [2.0, 20.0, 5.0]], dtype=np.float32)
    fields = dict(data=data, pnn=("FSC-A", "SSC-A", "PE-A"), pns=("", "", "HLA-DR PE"),
                  pnr=(262144.0, 262144.0, 1000.0), keywords={"cyt": " FACSCanto II ", "p3v": "480"},
                  path="/runs/P001.fcs", sha256=SHA)
    fields.update(changes)
    return Events(**fields)


class _Pending:
    """A digest still being computed (the reader's background thread): ``result`` blocks until released."""

    def __init__(self, value: str | Exception) -> None:
        self.value, self.calls, self.released = value, 0, threading.Event()

    def result(self) -> str:
        self.calls += 1
        self.released.wait(5)
        if isinstance(self.value, Exception):
            raise self.value
        return self.value


# --------------------------------------------------------------------------- the record
def test_columns_by_name():
    ev = _events()
    assert ev.n_events == 2
    assert ev.index("PE-A") == 2
    col = ev.column("SSC-A")
    assert col.dtype == np.float32 and col.flags.c_contiguous and col.tolist() == [10.0, 20.0]
    assert ev.upper_limit("PE-A") == 1000.0
    with pytest.raises(KeyError, match="'CD14'"):
        ev.index("CD14")  # exact $PnN only: no guessing by marker here


def test_keywords_with_or_without_dollar_any_case_stripped():
    ev = _events()
    assert ev.keyword("$CYT") == ev.keyword("cyt") == ev.keyword("Cyt") == "FACSCanto II"
    assert ev.keyword("$P3V") == "480"
    assert ev.keyword("$SMNO") is None and ev.keyword("$SMNO", "none") == "none"


@pytest.mark.parametrize("changes", [
    {"pnn": ("FSC-A", "SSC-A")},                     # 3 columns, 2 names
    {"data": np.zeros(6, dtype=np.float32)},          # not a matrix
    {"pns": ("", "")},
    {"pnr": (1.0,)},
])
def test_channel_lists_must_match_the_columns(changes):
    with pytest.raises(ValueError):
        _events(**changes)


def test_frozen():
    ev = _events()
    with pytest.raises(dataclasses.FrozenInstanceError):
        ev.path = "elsewhere.fcs"  # type: ignore[misc]


def test_with_data_gives_new_values_and_keeps_the_rest():
    ev = _events(quirks=("off_by_one",))
    new = np.zeros_like(ev.data)
    out = ev.with_data(new, compensated=("PE-A",))
    assert out is not ev and out.data is new and ev.data[0, 0] == 1.0  # the original is untouched
    assert out.compensated == ("PE-A",) and ev.compensated == ()
    assert (out.pnn, out.keywords, out.sha256, out.quirks, out.path) == (ev.pnn, ev.keywords, SHA, ev.quirks, ev.path)


# --------------------------------------------------------------------------- the file's digest
def test_a_pending_digest_is_awaited_once_and_kept():
    pending = _Pending(SHA)
    ev = _events(sha256=pending)
    copy = ev.with_data(ev.data.copy())  # a copy made before the digest is known still waits for it
    assert pending.calls == 0  # building and copying never wait
    pending.released.set()
    assert ev.sha256 == SHA and ev.sha256 == SHA
    assert pending.calls == 1  # then cached on the instance
    assert copy.sha256 == SHA


def test_a_failed_digest_raises_the_readers_error():
    pending = _Pending(ReadError("P001.fcs: the file changed while it was being read; read it again"))
    pending.released.set()
    ev = _events(sha256=pending)
    with pytest.raises(ReadError, match="changed while it was being read"):
        _ = ev.sha256


def test_pickling_resolves_a_pending_digest():
    # a worker process cannot wait on the parent's thread: the digest crosses as text
    pending = _Pending(SHA)
    pending.released.set()
    back = pickle.loads(pickle.dumps(_events(sha256=pending)))
    assert back.__dict__["_sha256"] == SHA and back.sha256 == SHA
    np.testing.assert_array_equal(back.data, _events().data)


# --------------------------------------------------------------------------- $DATE
@pytest.mark.parametrize(("text", "expected"), [
    ("14-MAR-2026", dt.date(2026, 3, 14)),      # FCS 3.x
    ("14-Mar-26", dt.date(2026, 3, 14)),        # FCS 2.0, two-digit year
    (" 2026-03-14 ", dt.date(2026, 3, 14)),     # ISO, surrounding blanks
    ("14.03.2026", dt.date(2026, 3, 14)),
    ("2026/03/14", dt.date(2026, 3, 14)),
    ("14/03/2026", dt.date(2026, 3, 14)),       # only valid day-first
    ("03/14/2026", dt.date(2026, 3, 14)),       # only valid month-first
    ("03/04/2026", None),                       # valid both ways: ambiguous, no guess
    ("04/04/2026", dt.date(2026, 4, 4)),        # both readings agree
    ("30-FEB-2026", None),
    ("yesterday", None),
    ("", None),
    (None, None),
])
def test_parse_fcs_date(text, expected):
    assert parse_fcs_date(text) == expected
