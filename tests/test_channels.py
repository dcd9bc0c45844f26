"""Channel roles from $PnN/$PnS across instrument conventions (SPEC.md section 4)."""

from __future__ import annotations

import numpy as np
import pytest

from hladr.channels import find_panel, normalise
from hladr.errors import ChannelError
from hladr.events import Events


def _events(pnn, pns=None):
    pns = pns or [""] * len(pnn)
    return Events(np.zeros((3, len(pnn)), np.float32), tuple(pnn), tuple(pns),
                  tuple([262144.0] * len(pnn)), {}, path="t.fcs")


def test_normalise():
    assert normalise("PerCP-Cy5.5-A") == "percpcy55a"
    assert normalise("FL2 INT LIN") == "fl2intlin"


@pytest.mark.parametrize(
    "pnn, pns, expect",
    [
        # BD FACSCanto, markers in $PnS
        (["FSC-A", "FSC-H", "SSC-A", "PE-A", "PerCP-Cy5-5-A", "V500-A"],
         ["", "", "", "HLA-DR PE", "CD14 PerCP-Cy5.5", "CD45 V500"],
         dict(fsc_a="FSC-A", fsc_h="FSC-H", ssc_a="SSC-A", hladr="PE-A", cd14="PerCP-Cy5-5-A", cd45="V500-A")),
        # BD, no $PnS: detector conventions
        (["FSC-A", "FSC-H", "SSC-A", "PE-A", "PerCP-Cy5.5-A", "V500-A"], None,
         dict(fsc_a="FSC-A", fsc_h="FSC-H", ssc_a="SSC-A", hladr="PE-A", cd14="PerCP-Cy5.5-A", cd45="V500-A")),
        # CytoFLEX names
        (["FSC-A", "FSC-H", "SSC-A", "PE-A", "PC5.5-A", "KO525-A"], None,
         dict(hladr="PE-A", cd14="PC5.5-A", cd45="KO525-A")),
        # Beckman Navios: FLn INT, marker only in $PnS
        (["FS INT", "FS PEAK", "SS INT", "FL2 INT", "FL4 INT", "FL10 INT"],
         ["", "", "", "HLA-DR PE", "CD14 PC5.5", "CD45 KrO"],
         dict(fsc_a="FS INT", fsc_h="FS PEAK", ssc_a="SS INT", hladr="FL2 INT", cd14="FL4 INT", cd45="FL10 INT")),
        # marker spellings: HLA DR, HLADR, MHCII; area preferred over height
        (["FSC-A", "SSC-A", "B-H", "B-A", "C-A"], ["", "", "HLADR", "HLA DR", "cd14 FITC"],
         dict(hladr="B-A", cd14="C-A", cd45=None, fsc_h=None)),
        (["FSC", "SSC", "PerCP-CY5-5-A", "PE-CY7-A"], ["", "", "MHCII", "CD14"],
         dict(fsc_a="FSC", ssc_a="SSC", hladr="PerCP-CY5-5-A", cd14="PE-CY7-A")),
    ],
)
def test_find_panel(pnn, pns, expect):
    panel = find_panel(_events(pnn, pns))
    for role, name in expect.items():
        assert getattr(panel, role) == name, role


def test_cd14_does_not_match_cd140_and_cd45_not_cd45ra():
    ev = _events(["FSC-A", "SSC-A", "X-A", "Y-A", "Z-A"], ["", "", "CD140", "CD45RA", "CD14"])
    p = find_panel(ev)
    assert p.cd14 == "Z-A" and p.cd45 is None


def test_detector_labelled_with_another_marker_is_not_taken():
    ev = _events(["FSC-A", "SSC-A", "PE-A", "APC-A"], ["", "", "CD3 PE", "CD14 APC"])
    p = find_panel(ev)
    assert p.hladr is None and p.cd14 == "APC-A"


def test_missing_cd14_is_a_clear_error():
    ev = _events(["FSC-A", "SSC-A", "PE-A"], ["", "", "HLA-DR"])
    with pytest.raises(ChannelError, match="no CD14 channel"):
        find_panel(ev)


def test_missing_scatter_is_a_clear_error():
    with pytest.raises(ChannelError, match="scatter"):
        find_panel(_events(["PE-A", "APC-A"], ["HLA-DR", "CD14"]))


def test_real_lsrii_monocyte_file(corpus):
    from hladr.fcs.read import read_events

    ev = read_events(corpus / "flowWorkspaceData" / "a2004_O1T2pb05i_A2_A02.fcs")
    p = find_panel(ev, require=("cd14", "hladr"))
    assert (p.cd14, p.hladr, p.cd45) == ("PE-CY7-A", "PerCP-CY5-5-A", None)


@pytest.mark.parametrize(
    "pnn, fsc_a, fsc_h, ssc_a",
    [
        (["FSC LogH", "FSC LogA", "FSC LinH", "FSC LinA", "SSC LogA", "SSC LinA", "405SSC LogH"],
         "FSC LinA", "FSC LinH", "SSC LinA"),                                        # Stratedigm
        (["FS Lin", "SS Lin", "SS Log", "Pulse Width"], "FS Lin", None, "SS Lin"),    # CyAn
        (["FS-A", "SS-A", "FL1-A"], "FS-A", None, "SS-A"),                            # Gallios
        (["FS INT", "FS PEAK", "FS TOF", "SS INT", "SS PEAK"], "FS INT", "FS PEAK", "SS INT"),  # Navios
        (["FSC-Height", "SSC-Height", "FL1-H"], "FSC-Height", None, "SSC-Height"),    # height only
        (["FSC", "SSC", "FL1"], "FSC", None, "SSC"),                                  # Partec
        (["FSC-A", "SSC-B-A", "SSC-A"], "FSC-A", None, "SSC-A"),                      # violet SSC-B ignored
    ],
)
def test_scatter_name_conventions(pnn, fsc_a, fsc_h, ssc_a):
    p = find_panel(_events(pnn + ["PE-A"], [""] * len(pnn) + ["CD14"]))
    assert (p.fsc_a, p.fsc_h, p.ssc_a) == (fsc_a, fsc_h, ssc_a)


def test_real_scatter_names_across_the_corpus(corpus):
    """Every corpus file with forward and side scatter gets both roles."""
    from hladr.errors import ReadError
    from hladr.fcs.read import read_events

    checked = 0
    for f in sorted(corpus.rglob("*")):
        if f.suffix.lower() not in (".fcs", ".lmd"):
            continue
        try:
            ev = read_events(f)
        except ReadError:
            continue
        names = " ".join(ev.pnn).lower()
        if ("fs" in names and "ss" in names) and "channel_a" not in names and "hdr-t" not in names:
            p = find_panel(ev, require=())
            assert p.fsc_a and p.ssc_a, f.name
            checked += 1
    assert checked >= 25
