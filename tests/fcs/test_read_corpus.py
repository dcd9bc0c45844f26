"""Every file of the real corpus (../shared/realdata, see its MANIFEST.md) reads
with its $TOT and $PAR, or is rejected with the right one-line reason; values are
identical to flowio's wherever flowio reads the same bytes."""

from __future__ import annotations

import io
import warnings

import flowio
import numpy as np
import pytest

from hladr.errors import ReadError
from hladr.fcs.read import read_events, read_fcs

pytestmark = pytest.mark.corpus

# rel path: ($TOT, $PAR, dataset read by default, [($TOT, $PAR) per dataset] or None,
#            reader, quirks that must be reported)
READABLE: dict[str, tuple] = {
    "FlowIO/100715.fcs": (65016, 16, 1, None, "flowio", ()),
    "FlowIO/3FITC_4PE_004.fcs": (94569, 4, 1, None, "flowio", ()),
    "FlowIO/B01 KC-A-W---91-US.fcs": (1589, 14, 1, None, "flowio", ()),
    "FlowIO/G11.fcs": (5785, 12, 1, None, "flowio", ()),
    "FlowIO/coulter.lmd": (18110, 8, 2, [(18110, 8), (18110, 8)], "flowio",
                           ("lmd_fcs3_dataset_chosen", "lmd_dfc_from_fcs2_dataset")),
    "FlowIO/data1.fcs": (13367, 8, 1, None, "flowio", ()),
    "FlowIO/data_start_offset_discrepancy_example.fcs": (
        2, 26, 1, None, "hladr", ("header_text_offset_mismatch", "timestep_malformed_ignored")),
    "FlowIO/data_stop_offset_discrepancy_example.fcs": (
        2, 26, 1, None, "hladr", ("header_text_offset_mismatch", "timestep_malformed_ignored")),
    "FlowIO/variable_int_example.fcs": (2, 26, 1, None, "hladr", ("timestep_malformed_ignored",)),
    "FlowKit/4_color_beads/Compensation Controls_Blue B Stained Control_005.fcs": (
        5000, 11, 1, None, "flowio", ()),
    "FlowKit/4_color_beads/Compensation Controls_Green A Stained Control_006.fcs": (
        5000, 11, 1, None, "flowio", ()),
    "FlowKit/4_color_beads/Compensation Controls_Red A Stained Control_004.fcs": (
        5000, 11, 1, None, "flowio", ()),
    "FlowKit/4_color_beads/Compensation Controls_Red B Stained Control_003.fcs": (
        5000, 11, 1, None, "flowio", ()),
    "FlowKit/gate_ref/data1.fcs": (13367, 8, 1, None, "flowio", ()),
    "FlowKit/index_sorted_example.fcs": (384, 13, 1, None, "flowio", ()),
    "FlowKit/simple_diamond_example/test_data_diamond_01.fcs": (200000, 2, 1, None, "flowio", ()),
    "FlowKit/simple_line_example/data_set_simple_line_100.fcs": (100, 2, 1, None, "flowio", ()),
    "FlowKit/test_comp_example.fcs": (10703, 18, 1, None, "hladr", ("offset_off_by_one",)),
    "cytoflow/beads.fcs": (10000, 13, 1, None, "flowio", ()),
    "cytoflow/blank.fcs": (10000, 13, 1, None, "flowio", ()),
    "cytoflow/instruments/Accuri - C6.fcs": (
        60661, 14, 1, None, "hladr", ("header_text_offset_mismatch", "offset_off_by_one")),
    "cytoflow/instruments/Beckman Coulter - Cyan.fcs": (
        5789, 12, 1, None, "hladr", ("header_text_offset_mismatch",)),
    "cytoflow/instruments/Beckman Coulter - Cytomics FC500.LMD": (
        27072, 8, 2, [(27072, 4), (27072, 8)], "flowio", ("lmd_fcs3_dataset_chosen",)),
    "cytoflow/instruments/Beckman Coulter - Gallios.LMD": (
        26383, 5, 2, [(26383, 6), (26383, 5)], "flowio", ("lmd_fcs3_dataset_chosen",)),
    "cytoflow/instruments/Beckman Coulter - MoFlo Astrios - linear settings.fcs": (
        6091, 68, 1, None, "flowio", ()),
    "cytoflow/instruments/Cytek NL-2000.fcs": (20000, 27, 1, None, "flowio", ()),
    "cytoflow/instruments/Cytek xP5.fcs": (23126, 8, 1, None, "hladr", ()),
    "cytoflow/instruments/Miltenyi Biotec - MACSQuant Analyzer.fcs": (
        66165, 10, 1, None, "flowio", ()),
    "cytoflow/instruments/Partec - CyFlow v2.9.fcs": (
        72989, 4, 1, None, "hladr", ("offset_off_by_one", "text_keyword_whitespace")),
    "cytoflow/instruments/Partec - PAS.FCS": (33649, 8, 1, None, "hladr", ("offset_off_by_one",)),
    # 380,000 mixed 16/32-bit values: flowio's Python loop would be slow, ours is identical
    "cytoflow/instruments/Stratedigm - S1400.fcs": (10000, 38, 1, None, "hladr", ()),
    "cytoflow/instruments/System II listmode with extra info in bits D10-D15.LMD": (
        10358, 6, 1, None, "flowio", ("pnr_bitmask_applied",)),
    "cytoflow/instruments/iCyt - Eclipse.lmd": (19330, 18, 1, None, "flowio", ()),
    "cytoflow/module_examples/itn_02.fcs": (10000, 8, 1, None, "flowio", ()),
    "cytoflow/module_examples/stabilize.fcs": (25000, 9, 1, None, "hladr", ("offset_off_by_one",)),
    "fcsparser/EY_2013-07-19_PBS_FCS_2.0_Custom_Without_Add_Well_A1.001.fcs": (
        10000, 16, 1, None, "flowio", ()),
    "fcsparser/EY_2013-07-19_PBS_FCS_3.1_Custom_Add_Well_A1.001.fcs": (
        10000, 19, 1, None, "hladr", ("offset_off_by_one",)),
    "fcsparser/SG_2014-09-26_Duplicate_Names.fcs": (8129, 9, 1, None, "hladr", ("offset_off_by_one",)),
    "fcsparser/Sample_Well_A02.fcs": (37395, 8, 1, None, "flowio", ()),
    "fcsparser/cyflow_cube_8.fcs": (725, 10, 1, None, "flowio", ()),
    "fcsparser/fake_large_fcs.fcs": (11585, 11, 1, None, "hladr", ("header_data_offsets_blank",)),
    "fcsparser/fcs1_cleaned.lmd": (50000, 7, 1, None, "flowio", ("pnr_bitmask_applied",)),
    "flowWorkspaceData/a2004_O1T2pb05i_A2_A02.fcs": (45363, 23, 1, None, "flowio", ()),
}  # fmt: skip

REJECTED: dict[str, str] = {
    "fcsparser/corrupted.fcs": r"^corrupted\.fcs: not an FCS file \(no 'FCSx\.y' HEADER",
    "fcsparser/sample_header.fcs": (
        r"^sample_header\.fcs: DATA segment ends at byte 2165911 but the file has 3931 bytes "
        r"\(truncated file\?"
    ),
}

# Files flowio reads only with options that make it look at the very bytes we chose.
FLOWIO_FORCED: dict[str, dict] = {
    "FlowKit/test_comp_example.fcs": {"ignore_offset_error": True},
    "cytoflow/module_examples/stabilize.fcs": {"ignore_offset_error": True},
    "cytoflow/instruments/Partec - PAS.FCS": {"ignore_offset_error": True},
    "fcsparser/EY_2013-07-19_PBS_FCS_3.1_Custom_Add_Well_A1.001.fcs": {"ignore_offset_error": True},
    "fcsparser/SG_2014-09-26_Duplicate_Names.fcs": {"ignore_offset_error": True},
    # CyAn and Accuri: the TEXT offsets flowio uses by default split events; HEADER is right
    "cytoflow/instruments/Beckman Coulter - Cyan.fcs": {"use_header_offsets": True},
    "cytoflow/instruments/Accuri - C6.fcs": {"use_header_offsets": True, "ignore_offset_error": True},
    "FlowIO/data_start_offset_discrepancy_example.fcs": {"ignore_offset_discrepancy": True},
    "FlowIO/data_stop_offset_discrepancy_example.fcs": {"ignore_offset_discrepancy": True},
    "FlowIO/variable_int_example.fcs": {},
}


def _flowio(path, **options) -> flowio.FlowData:
    # from memory: flowio leaves its file open when it raises
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return flowio.FlowData(io.BytesIO(path.read_bytes()), **options)


def _flowio_array(fd: flowio.FlowData) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fd.as_array(preprocess=True).astype(np.float32)


def _corpus_files(corpus) -> list[str]:
    return sorted(
        str(p.relative_to(corpus))
        for p in corpus.rglob("*")
        if p.is_file() and p.suffix.lower() in (".fcs", ".lmd")
    )


def test_every_corpus_file_is_classified(corpus):
    """A new file in the corpus must be added to READABLE or REJECTED here."""
    assert set(_corpus_files(corpus)) == set(READABLE) | set(REJECTED)


@pytest.mark.parametrize("rel", sorted(READABLE))
def test_reads_with_tot_and_par(corpus, rel):
    tot, par, dataset, per_set, reader, quirks = READABLE[rel]
    ev, report = read_fcs(corpus / rel)
    assert ev.data.shape == (tot, par) and ev.data.dtype == np.float32
    assert ev.n_events == int(ev.keyword("$TOT"))
    assert (ev.dataset, ev.n_datasets) == (dataset, len(per_set or [None]))
    assert report.reader == reader
    assert set(quirks) <= set(ev.quirks), ev.quirks
    assert len(ev.pnr) == par and all(np.isfinite(ev.pnr))
    hladr_only = read_fcs(corpus / rel, engine="hladr")[0]
    np.testing.assert_array_equal(hladr_only.data, ev.data)
    for index, (n, d) in enumerate(per_set or [], 1):
        for engine in ("auto", "hladr"):
            assert read_fcs(corpus / rel, dataset=index, engine=engine)[0].data.shape == (n, d)


@pytest.mark.parametrize("rel", sorted(REJECTED))
def test_broken_files_rejected_with_reason(corpus, rel):
    with pytest.raises(ReadError, match=REJECTED[rel]) as info:
        read_events(corpus / rel)
    assert "\n" not in str(info.value)
    assert not getattr(info.value, "internal", False)


def test_values_identical_to_flowio(corpus):
    """Where flowio 1.4 reads a file as is, both our engines give the very same values."""
    compared = 0
    for rel in sorted(READABLE):
        try:
            ref = _flowio_array(_flowio(corpus / rel))
        except Exception:  # noqa: BLE001 - flowio fails on many real files; those are not compared
            continue
        for engine in ("auto", "hladr"):
            ev = read_fcs(corpus / rel, engine=engine)[0]
            np.testing.assert_array_equal(ev.data, ref, err_msg=f"{rel} ({engine})")
        compared += 1
    assert compared == 27  # the MANIFEST's 'flowio 1.4: OK' files, less variable_int


@pytest.mark.parametrize("rel", sorted(FLOWIO_FORCED))
def test_values_identical_to_flowio_with_options(corpus, rel):
    fd = _flowio(corpus / rel, **FLOWIO_FORCED[rel])
    if "xxxx" in fd.text.get("timestep", ""):
        fd.text["timestep"] = "1"  # anonymised $TIMESTEP: flowio raises, we ignore it
    ref = _flowio_array(fd)
    np.testing.assert_array_equal(read_events(corpus / rel).data, ref)


@pytest.mark.parametrize(
    "rel, options",
    [
        ("FlowIO/coulter.lmd", {"ignore_offset_error": True}),
        ("cytoflow/instruments/Beckman Coulter - Gallios.LMD", {}),
    ],
)
def test_multi_dataset_values_match_flowio(corpus, rel, options):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sets = flowio.read_multiple_data_sets(str(corpus / rel), **options)
    for index, fd in enumerate(sets, 1):
        ev = read_events(corpus / rel, dataset=index)
        np.testing.assert_array_equal(ev.data, _flowio_array(fd), err_msg=f"dataset {index}")


def test_header_offsets_win_where_text_splits_events(corpus):
    """CyAn: TEXT $BEGINDATA is 46 bytes off; the event counter must run 2, 3, 4, ..."""
    ev = read_events(corpus / "cytoflow/instruments/Beckman Coulter - Cyan.fcs")
    count = ev.column("Event Count")
    assert np.all(np.diff(count) == 1)
    accuri = read_events(corpus / "cytoflow/instruments/Accuri - C6.fcs")
    assert np.all(np.diff(accuri.column("Time")) >= 0)


def test_fc500_10_bit_dataset_agrees_with_20_bit_dataset(corpus):
    """FC500 LMD: dataset 1 ($PnB=10 in 16-bit words) is dataset 2 (20 bit) >> 10."""
    path = corpus / "cytoflow/instruments/Beckman Coulter - Cytomics FC500.LMD"
    low = read_events(path, dataset=1)
    high = read_events(path, dataset=2)
    assert "pnb_in_wider_words" in low.quirks
    np.testing.assert_array_equal(low.column("FS Lin"), np.floor(high.column("FS") / 1024))
    np.testing.assert_array_equal(low.column("SS Lin"), np.floor(high.column("SS") / 1024))


def test_24_bit_cytek_xp5_is_plausible(corpus):
    ev = read_events(corpus / "cytoflow/instruments/Cytek xP5.fcs")
    assert np.all(np.diff(ev.column("TIME")) >= 0)
    assert np.all(ev.data >= 0) and np.all(ev.data <= np.array(ev.pnr, dtype=np.float32))


def test_lmd_fcs3_dataset_gets_instrument_and_compensation(corpus):
    ev = read_events(corpus / "cytoflow/instruments/Beckman Coulter - Cytomics FC500.LMD")
    assert ev.keyword("$CYT") == "Cytomics FC 500" and ev.pnn[0] == "FS"
    gallios = read_events(corpus / "cytoflow/instruments/Beckman Coulter - Gallios.LMD")
    assert gallios.keyword("$SPILLOVER") == "2,3,4,1.000,0.000,0.000,1.000"  # its own, kept
