"""The audit trail: append-only, chained by SHA-256; `hladr audit verify` names the first broken entry."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from hladr.cli import main
from hladr.store import amend_result, audit_entries, verify_audit
from hladr.store.audit import FIELDS, entry_digest


@pytest.fixture(scope="module")
def kept_store(run_a, tmp_path_factory):
    """run_a kept, then one sample amended: 7 entries (calibration, run start, 3 results, run end, amendment)."""
    db = tmp_path_factory.mktemp("audit") / "hladr.sqlite"
    assert main(["run", str(run_a), "--out", str(db.parent / "out"), "--quiet", "--db", str(db),
                 "--user", "tech1"]) in (0, 1)
    amend_result(db, "P001", ferritin_text="123", ferritin_unit="ng/mL", reason="typo in the worklist", user="dm1")
    return db


@pytest.fixture
def db(kept_store, tmp_path):
    return shutil.copyfile(kept_store, tmp_path / "hladr.sqlite")


def _tamper(db, *statements: str) -> None:
    """What someone with the file and the sqlite3 shell can do: drop the guards, then change rows."""
    con = sqlite3.connect(db, isolation_level=None)
    try:
        for (name,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            con.execute(f"DROP TRIGGER {name}")
        for sql in statements:
            con.execute(sql)
    finally:
        con.close()


def _verify(db, capsys) -> tuple[int, str]:
    status = main(["audit", "verify", "--db", str(db)])
    return status, capsys.readouterr().out


def test_an_untouched_trail_verifies(db, capsys):
    status, out = _verify(db, capsys)
    assert status == 0 and "audit trail intact: 7 entries, 4 results, 1 runs" in out
    entries = audit_entries(db)
    assert [e.seq for e in entries] == list(range(1, 8))
    assert [e.action for e in entries] == ["calibration_stored", "run_started", "result_stored", "result_stored",
                                           "result_stored", "run_finished", "result_amended"]
    assert entries[0].prev_sha256 == "0" * 64
    assert all(b.prev_sha256 == a.entry_sha256 for a, b in zip(entries, entries[1:], strict=False))
    assert {e.user for e in entries} == {"tech1", "dm1"} and all(e.utc.endswith("Z") for e in entries)


def test_the_trail_refuses_update_and_delete(db):
    con = sqlite3.connect(db, isolation_level=None)
    try:
        for sql in ("UPDATE audit_log SET reason = 'x'", "DELETE FROM audit_log WHERE seq = 7",
                    "UPDATE results SET hladr_abc = 1", "DELETE FROM results", "DELETE FROM runs",
                    "UPDATE runs SET user = 'someone else'", "UPDATE runs SET finished_utc = NULL"):
            with pytest.raises(sqlite3.IntegrityError):
                con.execute(sql)
    finally:
        con.close()
    assert verify_audit(db).ok


def test_a_changed_entry_is_named(db, capsys):
    _tamper(db, "UPDATE audit_log SET reason = 'nothing happened' WHERE seq = 7")
    status, out = _verify(db, capsys)
    assert status == 1 and "BROKEN at entry 7 (result_amended" in out and "changed after it was written" in out


def test_a_changed_entry_whose_hash_was_recomputed_breaks_the_next_one(db, capsys):
    con = sqlite3.connect(db)
    row = con.execute(f"SELECT {', '.join(FIELDS)} FROM audit_log WHERE seq = 3").fetchone()
    con.close()
    fields = dict(zip(FIELDS, row, strict=True))
    fields["user"] = "someone else"
    _tamper(db, f"UPDATE audit_log SET user = 'someone else', entry_sha256 = '{entry_digest(fields)}' WHERE seq = 3")
    status, out = _verify(db, capsys)
    assert status == 1 and "entry 4 (result_stored" in out and "does not follow entry 3" in out


def test_a_deleted_entry_is_named(db, capsys):
    _tamper(db, "DELETE FROM audit_log WHERE seq = 4")
    status, out = _verify(db, capsys)
    assert status == 1 and "entry 4 is missing: entry 5 follows entry 3" in out


def test_deleting_the_last_entries_is_seen_from_the_results(db, capsys):
    _tamper(db, "DELETE FROM audit_log WHERE seq = 7")  # the amendment's entry: the chain alone ends well
    status, out = _verify(db, capsys)
    assert status == 1 and "sample P001, version 2" in out and "no audit entry" in out


def test_a_changed_result_is_named(db, capsys):
    _tamper(db, "UPDATE results SET hladr_abc = hladr_abc * 2 WHERE version = 2")
    status, out = _verify(db, capsys)
    assert status == 1 and "sample P001, version 2" in out and "column hladr_abc" in out
    _tamper(db, "UPDATE results SET hladr_abc = hladr_abc / 2 WHERE version = 2",
            "UPDATE results SET content_json = replace(content_json, '\"qc\":', '\"qc\" :') WHERE id = 1")
    status, out = _verify(db, capsys)
    assert status == 1 and "version 1" in out and "content was changed" in out


def test_a_changed_reason_of_a_result_is_named(db, capsys):
    _tamper(db, "UPDATE results SET reason = 'approved by the PI' WHERE version = 2")
    status, out = _verify(db, capsys)
    assert status == 1 and "differ from its audit entry 7" in out


def test_audit_show_lists_who_when_what_why(db, capsys):
    assert main(["audit", "show", "P001", "--db", str(db)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and "tech1  result_stored  sample P001" in lines[0]
    assert "dm1  result_amended  sample P001" in lines[1] and "ferritin_text" in lines[1]
    assert "reason: typo in the worklist" in lines[1]
    assert main(["audit", "show", "--db", str(db)]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 7


def test_no_store_is_exit_2(tmp_path, capsys):
    assert main(["audit", "verify", "--db", str(tmp_path / "none.sqlite")]) == 2
    assert "no results store" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()
