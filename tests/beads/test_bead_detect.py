"""Bead-tube detection (``hladr.beads.detect``): which tube of a run without a worklist holds the beads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from hladr.beads.detect import MAX_LEVEL_SD_DECADES, MIN_SINGLETS, is_bead_file, looks_like_bead_tube
from hladr.beads.lots import find_lot
from hladr.events import Events
from hladr.simulate.simulator import simulate_bead_tube, simulate_sample_tube

REPO = Path(__file__).resolve().parents[2]
LOT = find_lot("96597")
LEVELS = (2.0, 3.0, 4.0, 4.7)  # log10 PE of four bead levels


def _tube(levels=LEVELS, *, sd=0.03, per_level=1000, marker="HLA-DR", pe_name="PE-A", seed=0) -> Events:
    """One tight FSC/SSC cluster of beads whose PE lies in ``levels`` (log10), each ``sd`` decades wide."""
    rng = np.random.default_rng(seed)
    n = per_level * len(levels)
    fsc = rng.lognormal(np.log(60_000.0), 0.03, n)
    ssc = rng.lognormal(np.log(20_000.0), 0.03, n)
    pe = 10.0 ** (np.repeat(levels, per_level) + rng.normal(0.0, sd, n))
    return Events(np.column_stack([fsc, ssc, pe]).astype(np.float32), pnn=("FSC-A", "SSC-A", pe_name),
                  pns=("", "", marker), pnr=(262_144.0,) * 3, keywords={})


def _like(tube: Events, data: np.ndarray) -> Events:
    """``tube``'s channels over other events."""
    return Events(data, pnn=tube.pnn, pns=tube.pns, pnr=tube.pnr, keywords={})


def test_four_narrow_levels_are_a_bead_tube():
    assert looks_like_bead_tube(_tube())


def test_a_tube_with_one_level_lost_is_still_recognised():
    """Recognised, so that the fit can reject it by name (``levels_missing``) instead of analysing it as a sample."""
    assert looks_like_bead_tube(_tube(LEVELS[:1] + LEVELS[2:]))


def test_two_levels_are_not_enough():
    assert not looks_like_bead_tube(_tube(LEVELS[:2]))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("sd, beads", [(0.03, True), (0.07, True), (0.13, False), (0.15, False)])
def test_levels_wider_than_the_limit_are_not_beads(sd, beads, seed):
    assert MAX_LEVEL_SD_DECADES == 0.1
    assert looks_like_bead_tube(_tube(sd=sd, seed=seed)) is beads


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("per_level", [250, 1000, 2500])
@pytest.mark.parametrize("sd", [0.13, 0.2, 0.3, 0.4])
def test_a_sparse_tube_with_broad_pe_is_not_beads(sd, per_level, seed):
    """Sampling noise splits broad PE populations into many small peaks, each narrow between its neighbours'
    valleys (before the isolation test, 144 of 192 such tubes from 240 to 10,000 events were taken for beads)."""
    assert not looks_like_bead_tube(_tube(sd=sd, per_level=per_level, seed=seed))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("per_level", [100, 250, 2500])
@pytest.mark.parametrize("sd", [0.01, 0.03, 0.05, 0.07])
def test_narrow_levels_are_beads_from_sparse_to_rich_tubes(sd, per_level, seed):
    assert looks_like_bead_tube(_tube(sd=sd, per_level=per_level, seed=seed))


def test_a_narrow_peak_with_its_neighbours_close_is_not_a_level():
    """Three narrow populations, each with a broad shoulder of events just beyond its valley, are not levels."""
    rng = np.random.default_rng(3)
    tube = _tube(LEVELS[:3], sd=0.02, per_level=1000, seed=3)
    shoulder = 10.0 ** (np.repeat(LEVELS[:3], 1000) + rng.choice([-1, 1], 3000) * rng.uniform(0.09, 0.2, 3000))
    data = np.vstack([tube.data, np.column_stack([tube.data[:, 0], tube.data[:, 1], shoulder]).astype(np.float32)])
    assert not looks_like_bead_tube(_like(tube, data))


@pytest.mark.parametrize("seed", range(3))
def test_an_integer_channel_of_few_values_is_not_beads(seed):
    """Like a real 725-event CyFlow Cube file: PE counts 5-120, each integer a spike of SD 0."""
    tube = _tube((1.0, 1.3, 1.6, 1.9), sd=0.15, per_level=120, seed=seed)
    data = tube.data.copy()
    data[:, 2] = np.round(data[:, 2])
    assert not looks_like_bead_tube(_like(tube, data))


def test_a_saturated_top_level_counts_even_with_another_level_lost(tmp_path):
    """Recognised, so that the fit rejects it by name; the top level piled up at the channel's end is one value."""
    path = tmp_path / "beads.fcs"
    simulate_bead_tube(path, rng=np.random.default_rng(5), instrument="canto", lot=LOT, saturate_high=True,
                       missing_level=1)
    assert is_bead_file(path)


def test_real_rainbow_bead_files_are_beads_and_a_sparse_integer_tube_is_not(corpus):
    """Real files: three instruments' rainbow bead tubes (cytoflow's instrument set, 7-9 levels on FL2) are bead
    tubes. Partec PAS's is not: its four dim levels merge into the noise floor (SD 0.08-0.2 decades), and its
    five clear levels hold 54 % of the singlets (< MIN_COVERED); it was taken for one before only because a
    pile-up of 2,915 events at zero counted as a narrow level. fcsparser's CyFlow Cube 8 file (725 events,
    integer PE 5-120) was taken for one before the isolation and resolution tests, and is not."""
    rainbow = ["Accuri - C6.fcs", "Beckman Coulter - Gallios.LMD", "iCyt - Eclipse.lmd"]
    for name in rainbow:
        assert is_bead_file(corpus / "cytoflow" / "instruments" / name), name
    assert not is_bead_file(corpus / "cytoflow" / "instruments" / "Partec - PAS.FCS")
    assert not is_bead_file(corpus / "fcsparser" / "cyflow_cube_8.fcs")
    assert not is_bead_file(corpus / "flowWorkspaceData" / "a2004_O1T2pb05i_A2_A02.fcs")  # human monocytes


def test_too_few_singlet_beads():
    assert looks_like_bead_tube(_tube(per_level=MIN_SINGLETS // 4 + 10))  # 240 beads
    assert not looks_like_bead_tube(_tube(per_level=MIN_SINGLETS // 4 - 5))  # 180 beads


def test_a_tube_without_a_pe_channel_is_not_beads_and_raises_nothing():
    assert not looks_like_bead_tube(_tube(marker="CD3", pe_name="FITC-A"))


@pytest.mark.parametrize("inst", ["canto", "cytoflex", "navios"])
def test_simulated_bead_tubes_are_found_and_sample_tubes_are_not(tmp_path, inst):
    beads, sample = tmp_path / "beads.fcs", tmp_path / "sample.fcs"
    simulate_bead_tube(beads, rng=np.random.default_rng(5), instrument=inst, lot=LOT)
    simulate_sample_tube(sample, rng=np.random.default_rng(1), instrument=inst, hladr_abc=8000, n_events=20000)
    assert is_bead_file(beads)
    assert not is_bead_file(sample)


def test_a_saturated_top_level_does_not_hide_the_bead_tube(tmp_path):
    path = tmp_path / "beads.fcs"
    simulate_bead_tube(path, rng=np.random.default_rng(5), instrument="canto", lot=LOT, saturate_high=True)
    assert is_bead_file(path)


def test_the_example_run_has_one_bead_tube():
    found = [p.name for p in sorted((REPO / "example_fcs").glob("*.fcs")) if is_bead_file(p)]
    assert found == ["beads.fcs"]


def test_a_file_that_cannot_be_read_is_not_the_bead_tube(tmp_path):
    path = tmp_path / "broken.fcs"
    path.write_bytes(b"FCS3.1    not an fcs file at all" * 10)
    assert not is_bead_file(path)
    assert not is_bead_file(tmp_path / "missing.fcs")
