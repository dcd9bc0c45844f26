"""batch.manifest and batch.study: ``hladr batch MANIFEST.csv`` -- the manifest's checks, one bad row failing
alone, and a batch interrupted mid-way and resumed: what is done (same inputs, same settings, outputs
untouched) is skipped; a changed input or touched outputs run again.

The runs: two copies of ``hladr simulate`` (two tubes of 40,000 events, each ``warn``) so that a batch
of them exits 0 when nothing fails."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hladr.batch import study
from hladr.batch.manifest import Ledger, read_manifest, run_key
from hladr.cli import main
from hladr.errors import ConfigError, LotError
from hladr.simulate.simulator import simulate_run


@pytest.fixture(scope="module")
def day(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("day")
    simulate_run(d, seed=11, instrument="canto", n_samples=2, events_per_tube=40_000)
    return d


@pytest.fixture
def study_dir(day, tmp_path) -> Path:
    for name in ("a", "b"):
        shutil.copytree(day, tmp_path / name)
    (tmp_path / "m.csv").write_text("run_dir,out_dir\na,out/a\nb,out/b\n")
    return tmp_path


_RUN_FOLDER = study.run_folder


class _Calls:
    """``run_folder`` as the batch calls it, recording the run folders; ``stop_at`` interrupts that one."""

    def __init__(self, stop_at: str | None = None) -> None:
        self.runs: list[str] = []
        self.stop_at = stop_at

    def __call__(self, run_dir, out_dir, **kw):
        self.runs.append(Path(run_dir).name)
        if Path(run_dir).name == self.stop_at:
            raise KeyboardInterrupt  # as if the batch were stopped (Ctrl-C, a killed job) during this run
        return _RUN_FOLDER(run_dir, out_dir, **kw)


def _batch(folder: Path, monkeypatch, calls: _Calls, *args: str) -> int:
    monkeypatch.setattr(study, "run_folder", calls)
    return main(["batch", str(folder / "m.csv"), "--quiet", *args])


def test_interrupted_then_resumed_skips_the_done_run(study_dir, monkeypatch, capsys):
    first = _Calls(stop_at="b")
    assert _batch(study_dir, monkeypatch, first) == 130
    assert first.runs == ["a", "b"]
    ledger = json.loads((study_dir / "m.done.json").read_text())
    assert list(ledger["runs"]) == [str(study_dir / "out" / "a")]  # only the run that finished
    assert not (study_dir / "out" / "b" / "results.json").exists()
    capsys.readouterr()

    second = _Calls()
    assert _batch(study_dir, monkeypatch, second) == 0
    assert second.runs == ["b"]  # a is done with the same inputs: skipped
    err = capsys.readouterr().err
    assert "hladr batch: runs: 1 done, 1 skipped, 0 failed; samples: 0 pass, 4 warn, 0 fail" in err

    third = _Calls()
    assert _batch(study_dir, monkeypatch, third) == 0
    assert third.runs == []
    assert "runs: 0 done, 2 skipped, 0 failed" in capsys.readouterr().err


def test_a_changed_input_or_touched_outputs_run_again(study_dir, monkeypatch):
    assert _batch(study_dir, monkeypatch, _Calls()) == 0
    wl = study_dir / "a" / "worklist.csv"
    wl.write_text(wl.read_text().replace(",sample,P001,", ",sample,P001x,"))  # one input file changed
    results = study_dir / "out" / "b" / "results.json"
    results.write_text(results.read_text().replace('"warn"', '"pass"'))  # outputs not those the batch wrote
    again = _Calls()
    assert _batch(study_dir, monkeypatch, again) == 0
    assert again.runs == ["a", "b"]
    assert _batch(study_dir, monkeypatch, forced := _Calls(), "--force") == 0
    assert forced.runs == ["a", "b"]


def test_the_key_follows_every_input_and_setting(study_dir):
    rows = read_manifest(study_dir / "m.csv")
    key = run_key(rows[0])
    assert run_key(rows[0]) == key and run_key(rows[1]) == key  # identical copies: the same inputs
    tube = next((study_dir / "a").glob("*.fcs"))
    data = bytearray(tube.read_bytes())
    data[-1] ^= 1
    tube.write_bytes(bytes(data))
    assert run_key(rows[0]) != key
    (study_dir / "m2.csv").write_text("run_dir,out_dir,lot\nb,out/b,96597\n")
    assert run_key(read_manifest(study_dir / "m2.csv")[0]) == key  # the lot the run used anyway: the same key
    (study_dir / "lot.toml").write_text('[lot]\nid = "X1"\nproduct = "BD QuantiBRITE PE"\n'
                                        'pe_per_bead = [640, 6930, 31008, 67601]\n')
    (study_dir / "m4.csv").write_text("run_dir,out_dir,lot_file\nb,out/b,lot.toml\n")
    assert run_key(read_manifest(study_dir / "m4.csv")[0]) != key  # another lot: another key
    (study_dir / "m3.csv").write_text("run_dir,out_dir,lot\nb,out/b,00000\n")
    with pytest.raises(LotError, match="unknown bead lot .00000."):
        run_key(read_manifest(study_dir / "m3.csv")[0])


def test_a_bad_row_fails_alone(study_dir, monkeypatch, capsys):
    (study_dir / "m.csv").write_text("run_dir,out_dir,lot\nmissing,out/m,\na,out/a,00000\nb,out/b,\n")
    calls = _Calls()
    assert _batch(study_dir, monkeypatch, calls) == 1
    assert calls.runs == ["b"]
    err = capsys.readouterr().err.splitlines()
    assert err[0] == "hladr batch: runs: 1 done, 0 skipped, 2 failed; samples: 0 pass, 2 warn, 0 fail"
    assert err[1] == f"  failed: line 2 ({study_dir / 'missing'}): {study_dir / 'missing'}: run folder not found"
    assert err[2].startswith(f"  failed: line 3 ({study_dir / 'a'}): unknown bead lot '00000'")
    assert len(err) == 3


@pytest.mark.parametrize(("text", "words"), [
    ("run_dir,out_dir,colour\na,out/a,red\n", "unknown manifest column 'colour'"),
    ("run_dir\na\n", "the manifest has no 'out_dir' column"),
    ("run_dir,out_dir\na,out/x\nb,out/x\n", "line 3: out_dir"),
    ("run_dir,out_dir\na,\n", "line 2: out_dir is empty"),
    ("run_dir,out_dir\n", "the manifest lists no run folders"),
    ("run_dir,out_dir\na,out/a,extra\n", "line 2: more cells than columns"),
])
def test_a_bad_manifest_does_not_start(study_dir, capsys, text, words):
    (study_dir / "m.csv").write_text(text)
    assert main(["batch", str(study_dir / "m.csv"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert words in err and err.startswith("hladr batch: error: ") and err.count("\n") == 1
    assert not (study_dir / "out").exists()


def test_a_ledger_that_is_not_one_stops_the_batch(study_dir, capsys):
    (study_dir / "m.done.json").write_text("[1, 2]")
    assert main(["batch", str(study_dir / "m.csv"), "--quiet"]) == 2
    assert "not an hladr batch ledger" in capsys.readouterr().err
    with pytest.raises(ConfigError):
        Ledger(study_dir / "m.csv")


def test_paths_are_taken_from_the_manifest_folder(study_dir, tmp_path):
    rows = read_manifest(study_dir / "m.csv")
    assert [r.run_dir for r in rows] == [str(study_dir / "a"), str(study_dir / "b")]
    assert [r.out_dir for r in rows] == [str(study_dir / "out" / "a"), str(study_dir / "out" / "b")]
