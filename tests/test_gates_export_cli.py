"""The correction workflow of issue 15 through the command line: ``hladr run`` -> ``hladr gates export SAMPLE``
-> ``hladr run --gates-for SAMPLE G.xml`` (a new version of the sample's result only with ``--reason``).

A run folder of three example tubes (beads, P001, P004, P010) is analysed once per module with its own
results store. Tolerance of the count: tests/gating/test_gates_export.py (measured round trip).
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import shutil
from pathlib import Path
from types import SimpleNamespace

import pytest

from hladr.cli import main
from hladr.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]
SAMPLES = ("P001", "P004", "P010")
COUNT_TOL = 0.02  # as tests/gating/test_gates_export.py
LINE = re.compile(r"exported gates select (\d+) monocytes; the automated gate (\d+) \(([+-]\d+\.\d\d) %\)")


def _rows(out: Path) -> dict[str, dict]:
    with open(out / "results.csv", newline="", encoding="utf-8") as fh:
        return {r["sample_id"]: r for r in csv.DictReader(fh)}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> SimpleNamespace:
    """A run folder (beads and three tubes of the example), analysed once, with its own store."""
    base = tmp_path_factory.mktemp("gates_cli")
    rd = base / "run"
    rd.mkdir()
    shutil.copy(REPO / "example_fcs" / "beads.fcs", rd)
    lines = (REPO / "example_fcs" / "worklist.csv").read_text(encoding="utf-8").splitlines()
    keep = [lines[0], lines[1]] + [ln for ln in lines[2:] if ln.split(",")[2] in SAMPLES]
    for ln in keep[2:]:
        shutil.copy(REPO / "example_fcs" / ln.split(",")[0], rd)
    (rd / "worklist.csv").write_text("\n".join(keep) + "\n", encoding="utf-8")
    db = base / "store.sqlite"
    assert main(["run", str(rd), "--out", str(base / "out1"), "--quiet", "--db", str(db)]) in (0, 1)
    return SimpleNamespace(base=base, rd=rd, db=str(db), out1=base / "out1")


def _export(run, sample: str, out: Path, *extra: str) -> int:
    return main(["gates", "export", sample, "--out", str(out), "--db", run.db, *extra])


def test_export_writes_the_gates_and_says_how_closely_they_agree(run, capsys):
    out = run.base / "P004.xml"
    assert _export(run, "P004", out) == 0
    printed = capsys.readouterr().out
    m = LINE.search(printed)
    assert m, printed
    n_exported, n_auto = int(m.group(1)), int(m.group(2))
    assert n_auto == int(_rows(run.out1)["P004"]["monocyte_count"])
    assert abs(n_exported - n_auto) <= COUNT_TOL * n_auto
    assert float(m.group(3)) == pytest.approx(100.0 * (n_exported - n_auto) / n_auto, abs=0.006)
    xml = out.read_text(encoding="utf-8")
    assert 'gating:id="monocytes"' in xml and "sample P004" in xml
    # the header names the tube it was traced on
    sha = hashlib.sha256((run.rd / "P004_HLADR.fcs").read_bytes()).hexdigest()
    assert sha in xml


def test_export_refuses_to_replace_a_file(run, capsys):
    out = run.base / "taken.xml"
    out.write_text("mine", encoding="utf-8")
    assert _export(run, "P001", out) == 2
    err = capsys.readouterr().err
    assert "exists" in err and err.count("\n") == 1
    assert out.read_text(encoding="utf-8") == "mine"


def test_export_of_an_unknown_sample_or_store(run, tmp_path, capsys):
    assert _export(run, "P999", tmp_path / "g.xml") == 2
    assert "no sample P999" in capsys.readouterr().err
    nowhere = str(tmp_path / "none.sqlite")
    assert main(["gates", "export", "P001", "--out", str(tmp_path / "g.xml"), "--db", nowhere]) == 2
    assert "no results store" in capsys.readouterr().err
    assert not (tmp_path / "g.xml").exists() and not (tmp_path / "none.sqlite").exists()


def test_export_refuses_another_file_and_finds_a_moved_one_with_fcs(run, tmp_path, capsys):
    wrong = tmp_path / "wrong.xml"
    assert _export(run, "P004", wrong, "--fcs", str(run.rd / "P001_HLADR.fcs")) == 2
    err = capsys.readouterr().err
    assert "SHA-256" in err and err.count("\n") == 1 and not wrong.exists()
    moved = tmp_path / "elsewhere.fcs"
    (run.rd / "P010_HLADR.fcs").rename(moved)
    try:
        assert _export(run, "P010", tmp_path / "a.xml") == 2
        assert "--fcs" in capsys.readouterr().err
        assert _export(run, "P010", tmp_path / "b.xml", "--fcs", str(moved)) == 0
        assert LINE.search(capsys.readouterr().out)
    finally:
        moved.rename(run.rd / "P010_HLADR.fcs")


def test_nothing_to_export_from_a_failed_gate_or_a_template():
    from hladr.gates_export import _gate_record

    def result(gate: dict) -> SimpleNamespace:
        return SimpleNamespace(sample_id="P7", version=2, record={"gate": gate})

    for gate, words in (({"method": "mixture", "failed": "no_monocyte_population"}, "failed"),
                        ({"template": "lab.xml", "template_sha256": "ab"}, "lab.xml"),
                        ({}, "no automated gate")):
        with pytest.raises(ConfigError, match=words) as exc:
            _gate_record(result(gate))
        assert "\n" not in str(exc.value)


def test_rerun_with_the_exported_gates_new_version_only_with_a_reason(run, capsys):
    from hladr.store.query import sample_versions

    g = run.base / "P001.xml"
    assert _export(run, "P001", g) == 0
    n_exported = int(LINE.search(capsys.readouterr().out).group(1))
    args = ["run", str(run.rd), "--quiet", "--db", run.db, "--gates-for", "P001", str(g)]

    assert main([*args, "--out", str(run.base / "out2")]) in (0, 1)
    assert "needs a reason" in capsys.readouterr().err  # the store keeps version 1
    assert [v.version for v in sample_versions(run.db, "P001")] == [1]
    rows = _rows(run.base / "out2")
    # the engine reads the file as the export's check did: the same events
    assert int(rows["P001"]["monocyte_count"]) == n_exported
    assert rows["P004"]["monocyte_count"] == _rows(run.out1)["P004"]["monocyte_count"]  # others as before
    record = next(s for s in json.loads((run.base / "out2" / "results.json").read_text(encoding="utf-8"))["samples"]
                  if s["sample_id"] == "P001")
    assert record["gate"]["template"] == "P001.xml"
    assert record["gate"]["template_sha256"] == hashlib.sha256(g.read_bytes()).hexdigest()
    assert record["gate"]["gate_path"][-1] == "monocytes"

    assert main([*args, "--out", str(run.base / "out3"), "--reason", "monocyte gate reviewed"]) in (0, 1)
    versions = sample_versions(run.db, "P001")
    assert [v.version for v in versions] == [1, 2]
    assert versions[-1].reason == "monocyte gate reviewed"
    assert versions[-1].record["gate"]["template"] == "P001.xml"
    assert versions[-1].record["monocyte_count"] == n_exported
    assert [v.version for v in sample_versions(run.db, "P004")] == [1]  # unchanged results: no new version

    # the current result is gated by a file now: nothing automated to export
    assert _export(run, "P001", run.base / "again.xml") == 2
    assert "P001.xml" in capsys.readouterr().err


def test_gates_for_is_checked_before_any_work(run, tmp_path, capsys):
    g = run.base / "P004.xml"
    if not g.exists():
        assert _export(run, "P004", g) == 0
    out = tmp_path / "out"
    assert main(["run", str(run.rd), "--out", str(out), "--quiet", "--db", run.db, "--gates-for", "P404", str(g)]) == 2
    assert "P404" in capsys.readouterr().err and not out.exists()
    assert main(["run", str(run.rd), "--out", str(out), "--quiet", "--db", run.db,
                 "--gates-for", "P004", str(tmp_path / "missing.xml")]) == 2
    assert "missing.xml" in capsys.readouterr().err and not out.exists()
    assert main(["run", str(run.rd), "--out", str(out), "--quiet", "--db", run.db,
                 "--gates-for", "P004", str(g), "--gates-for", "P004", str(g)]) == 2
    assert "twice" in capsys.readouterr().err and not out.exists()
    bare = tmp_path / "bare"  # no worklist: the sample ids are not known before the tubes are read
    bare.mkdir()
    for f in ("beads.fcs", "P004_HLADR.fcs"):
        shutil.copy(run.rd / f, bare)
    assert main(["run", str(bare), "--out", str(out), "--quiet", "--db", run.db, "--gates-for", "P004", str(g)]) == 2
    assert "worklist" in capsys.readouterr().err and not out.exists()


def test_export_refuses_when_the_stored_gate_no_longer_gives_the_stored_count(run, tmp_path, monkeypatch, capsys):
    """The gate rebuilt from its record must select the stored number of monocytes (here the record read
    back says one more than the gate selects): else nothing is written."""
    import dataclasses

    import hladr.gates_export as ge

    real = ge.sample_versions

    def off_by_one(db, sample_id):
        out = real(db, sample_id)
        last = out[-1]
        sample = {**last.content["sample"], "monocyte_count": last.content["sample"]["monocyte_count"] + 1}
        return [*out[:-1], dataclasses.replace(last, content={**last.content, "sample": sample})]

    monkeypatch.setattr(ge, "sample_versions", off_by_one)
    out = tmp_path / "g.xml"
    assert _export(run, "P004", out) == 2
    err = capsys.readouterr().err
    assert "applied again selects" in err and err.count("\n") == 1 and not out.exists()
