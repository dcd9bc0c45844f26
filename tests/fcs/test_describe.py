"""``hladr inspect``: the record of describe_file, its text form and the CLI contract."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hladr.cli import main
from hladr.errors import ReadError
from hladr.fcs.describe import QUIRK_TEXT, describe_file, format_description
from hladr.fcs.write import write_fcs

SPEC_KEYS = {"fcs_version", "events", "channels", "datasets", "dataset", "instrument"}


@pytest.fixture()
def sample(tmp_path):
    data = np.arange(40, dtype=np.float32).reshape(10, 4)
    path = tmp_path / "tube.fcs"
    write_fcs(
        path,
        data,
        ["FSC-A", "SSC-A", "PE-A", "Time"],
        pns=["", "", "HLA-DR PE", ""],
        keywords={
            "$CYT": "FACSCanto II",
            "$CYTSN": "V123",
            "$DATE": "01-JAN-2024",
            "$BTIM": "10:00:00",
            "$P3V": "450",
            "$P3G": "2",
            "$SPILLOVER": "2,FSC-A,PE-A,1,0.1,0,1",
        },
    )
    return path


def test_record_has_spec_keys_and_channel_details(sample):
    rec = describe_file(sample)
    assert SPEC_KEYS <= set(rec)
    assert rec["fcs_version"] == "3.1" and rec["events"] == 10
    assert (rec["dataset"], rec["datasets"]) == (1, 1)
    assert rec["instrument"] == "FACSCanto II" and rec["serial"] == "V123"
    assert rec["date"] == "01-JAN-2024" and rec["btim"] == "10:00:00"
    pe = rec["channels"][2]
    assert pe["pnn"] == "PE-A" and pe["pns"] == "HLA-DR PE"
    assert pe["pnv"] == "450" and pe["png"] == 2 and pe["pnr"] == 262144
    assert pe["upper_limit"] == 262144 / 2
    assert [c["pnn"] for c in rec["channels"]] == ["FSC-A", "SSC-A", "PE-A", "Time"]
    assert rec["spillover"] == {
        "source": "$SPILLOVER",
        "channels": ["FSC-A", "PE-A"],
        "matrix": [[1.0, 0.1], [0.0, 1.0]],
    }
    assert rec["reader"] == "flowio" and rec["quirks"] == []
    json.dumps(rec)  # JSON-ready


def test_text_form(sample):
    text = format_description(describe_file(sample))
    for needle in ("FCS version   3.1", "FACSCanto II", "HLA-DR PE", "Events        10",
                   "Spillover     $SPILLOVER", "Quirks        none"):  # fmt: skip
        assert needle in text


def test_malformed_spillover_is_a_quirk_not_an_error(tmp_path):
    path = tmp_path / "bad_spill.fcs"
    write_fcs(path, np.zeros((3, 2), np.float32), ["A", "B"], keywords={"SPILL": "2,A,B,1"})
    rec = describe_file(path)
    assert rec["spillover"] is None and "spillover_malformed" in rec["quirks"]
    assert QUIRK_TEXT["spillover_malformed"] in format_description(rec)


def test_cli_json_and_exit_codes(sample, tmp_path, capsys):
    assert main(["inspect", str(sample), "--json"]) == 0
    rec = json.loads(capsys.readouterr().out)
    assert SPEC_KEYS <= set(rec) and rec["channels"][0]["pnn"] == "FSC-A"
    assert main(["inspect", str(sample)]) == 0
    assert "Channels (4)" in capsys.readouterr().out
    broken = tmp_path / "broken.fcs"
    broken.write_bytes(sample.read_bytes()[:500])
    assert main(["inspect", str(broken), "--json"]) == 2
    err = capsys.readouterr().err.strip()
    assert "broken.fcs: " in err and "\n" not in err
    assert main(["inspect", str(sample), "--dataset", "3"]) == 2
    assert "there is no dataset 3" in capsys.readouterr().err


@pytest.mark.corpus
def test_lmd_record_lists_both_datasets(corpus):
    path = corpus / "cytoflow" / "instruments" / "Beckman Coulter - Cytomics FC500.LMD"
    rec = describe_file(path)
    assert (rec["dataset"], rec["datasets"], rec["fcs_version"]) == (2, 2, "3.0")
    assert [(d["fcs_version"], d["events"], d["channels"]) for d in rec["dataset_list"]] == [
        ("2.0", 27072, 4),
        ("3.0", 27072, 8),
    ]
    assert rec["instrument"] == "Cytomics FC 500"
    assert rec["spillover"]["source"] == "$DFCiTOj"
    assert "lmd_fcs3_dataset_chosen" in rec["quirks"]
    first = describe_file(path, dataset=1)
    assert first["events"] == 27072 and len(first["channels"]) == 4
    assert "pnb_in_wider_words" in first["quirks"]
    text = format_description(rec)
    assert "Datasets (2; * = read" in text and "2*" in text


@pytest.mark.corpus
@pytest.mark.parametrize(
    "rel, reason",
    [
        ("fcsparser/corrupted.fcs", "not an FCS file"),
        ("fcsparser/sample_header.fcs", "truncated file?"),
    ],
)
def test_cli_rejects_broken_corpus_files_in_one_line(corpus, capsys, rel, reason):
    assert main(["inspect", str(corpus / rel), "--json"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and reason in captured.err
    assert captured.err.count("\n") == 1


@pytest.mark.corpus
def test_navios_channel_number_spillover(corpus):
    rec = describe_file(corpus / "cytoflow" / "instruments" / "Beckman Coulter - Gallios.LMD")
    assert rec["spillover"]["channels"] == ["FL1-A", "FL2-A"]  # written as "2,3,4,..."
    accuri = describe_file(corpus / "cytoflow" / "instruments" / "Accuri - C6.fcs")
    assert accuri["spillover"]["channels"][:2] == ["FL1-A", "FL2-A"]


def test_describe_missing_file(tmp_path):
    with pytest.raises(ReadError, match="no such file"):
        describe_file(tmp_path / "nope.fcs")
