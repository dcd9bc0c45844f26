"""Westgard rules on hand-made series with known violations, their boundaries and the limits estimate."""

from __future__ import annotations

import math
import statistics

import pytest

from hladr.qc.westgard import (
    BASELINE_N,
    DEFAULT_RULES,
    WESTGARD_RULES,
    estimate_limits,
    evaluate_westgard,
)


def _found(values, **kw):
    """(rule, index, indices) of every violation, with mean 0 and SD 1 unless given."""
    kw.setdefault("mean", 0.0)
    kw.setdefault("sd", 1.0)
    return [(v.rule, v.index, v.indices) for v in evaluate_westgard(values, **kw)]


def test_rule_table_holds_the_standard_definitions():
    table = {name: (r.n, r.limit_sd, r.kind) for name, r in WESTGARD_RULES.items()}
    assert table == {
        "1-3s": (1, 3.0, "same-side"),
        "2-2s": (2, 2.0, "same-side"),
        "R-4s": (2, 2.0, "opposite"),
        "4-1s": (4, 1.0, "same-side"),
        "10x": (10, 0.0, "same-side"),
    }
    assert DEFAULT_RULES == ("1-3s", "2-2s", "R-4s", "4-1s", "10x")
    assert BASELINE_N == 20


# ---------------------------------------------------------------- one series per rule


def test_in_control_series_has_no_violation():
    # 30 points, signs alternate (no 10x), |z| <= 1.9, never two beyond 1 SD on the same side in a row
    values = [0.4, -0.6, 1.2, -1.1, 0.2, -0.3, 1.9, -0.5, 0.8, -1.9,
              0.1, -0.2, 1.5, -1.4, 0.3, -0.9, 0.7, -0.1, 1.1, -0.8,
              0.6, -1.7, 0.2, -0.4, 1.8, -1.2, 0.5, -0.7, 0.9, -0.2]
    assert _found(values) == []


def test_1_3s_one_point_beyond_3sd_either_side():
    assert _found([0, 0.5, 3.5, 0, -3.2]) == [("1-3s", 2, (2,)), ("1-3s", 4, (4,))]


def test_2_2s_two_consecutive_beyond_the_same_2sd_limit():
    values = [0, 2.5, 2.1, 0, -2.5, 1.0, -2.2, -2.3]
    assert _found(values) == [("2-2s", 2, (1, 2)), ("2-2s", 7, (6, 7))]


def test_2_2s_needs_the_same_side():
    # +2.5 then -2.5: the range rule, not 2-2s
    assert _found([2.5, -2.5]) == [("R-4s", 1, (0, 1))]


def test_r_4s_two_consecutive_on_opposite_2sd_limits():
    values = [0, 2.5, -2.5, 0, -2.1, 2.1]
    assert _found(values) == [("R-4s", 2, (1, 2)), ("R-4s", 5, (4, 5))]


def test_4_1s_four_consecutive_beyond_the_same_1sd_limit():
    values = [0, 1.5, 1.2, 1.1, 1.9, 0.5, -1.5, -1.2, -1.8, -1.1]
    assert _found(values) == [("4-1s", 4, (1, 2, 3, 4)), ("4-1s", 9, (6, 7, 8, 9))]


def test_10x_ten_consecutive_on_the_same_side_of_the_mean():
    above = [0.5, 0.2, 0.9, 0.1, 0.7, 0.3, 0.8, 0.4, 0.6, 0.2]
    assert _found(above) == [("10x", 9, tuple(range(10)))]
    assert _found([-v for v in above]) == [("10x", 9, tuple(range(10)))]
    assert _found(above[:9]) == []


def test_a_continuing_run_is_reported_at_each_new_point():
    # prospective: the 11th day above the mean is out of control too
    found = _found([0.5] * 11)
    assert found == [("10x", 9, tuple(range(10))), ("10x", 10, tuple(range(1, 11)))]


def test_one_point_can_violate_several_rules_in_rule_order():
    # a slow upward drift: 4-1s at point 3, then 2-2s and 1-3s as it grows
    values = [1.2, 1.5, 1.8, 2.2, 2.6, 3.4]
    assert _found(values) == [
        ("4-1s", 3, (0, 1, 2, 3)),
        ("2-2s", 4, (3, 4)),
        ("4-1s", 4, (1, 2, 3, 4)),
        ("1-3s", 5, (5,)),
        ("2-2s", 5, (4, 5)),
        ("4-1s", 5, (2, 3, 4, 5)),
    ]


def test_only_the_requested_rules_are_applied():
    values = [1.2, 1.5, 1.8, 2.2, 2.6, 3.4]
    assert _found(values, rules=("1-3s",)) == [("1-3s", 5, (5,))]
    with pytest.raises(ValueError, match="unknown Westgard rule"):
        evaluate_westgard(values, mean=0, sd=1, rules=("1-2s",))


def test_messages_name_rule_points_and_distance():
    (v,) = evaluate_westgard([100, 134], mean=100, sd=10, rules=("1-3s",))
    assert v.message == "1-3s: point 1 at +3.40 SD, above +3 SD"
    (v,) = evaluate_westgard([79, 121], mean=100, sd=10)
    assert v.rule == "R-4s" and "points 0-1" in v.message and "-2.10 SD" in v.message and "+2.10 SD" in v.message


# ---------------------------------------------------------------- boundaries: a point on a limit is within it


@pytest.mark.parametrize(
    "rule, on_limit, beyond",
    [
        ("1-3s", [130.0], [130.5]),
        ("1-3s", [70.0], [69.5]),
        ("2-2s", [120.0, 121.0], [121.0, 121.0]),
        ("2-2s", [79.0, 80.0], [79.0, 79.0]),
        ("R-4s", [120.0, 79.0], [121.0, 79.0]),  # range 4.1 SD, but +2 SD is not beyond +2 SD
        ("R-4s", [79.0, 120.0], [79.0, 121.0]),
        ("4-1s", [111.0, 115.0, 115.0, 110.0], [111.0, 115.0, 115.0, 110.5]),
        ("4-1s", [90.0, 85.0, 85.0, 85.0], [89.5, 85.0, 85.0, 85.0]),
        ("10x", [101.0] * 9 + [100.0], [101.0] * 9 + [100.5]),
        ("10x", [100.0] + [99.0] * 9, [99.5] + [99.0] * 9),
    ],
)
def test_boundary_exactly_on_the_limit_is_not_a_violation(rule, on_limit, beyond):
    assert evaluate_westgard(on_limit, mean=100, sd=10, rules=(rule,)) == []
    assert [v.rule for v in evaluate_westgard(beyond, mean=100, sd=10, rules=(rule,))] == [rule]


def test_a_point_exactly_on_the_mean_breaks_a_10x_run():
    values = [101.0] * 9 + [100.0] + [101.0] * 9
    assert evaluate_westgard(values, mean=100, sd=10, rules=("10x",)) == []


# ---------------------------------------------------------------- missing values


@pytest.mark.parametrize("missing", [None, math.nan])
def test_missing_values_are_skipped_not_run_breakers(missing):
    assert _found([2.5, missing, 2.5]) == [("2-2s", 2, (0, 2))]
    assert _found([0.5] * 5 + [missing] + [0.5] * 5)[0] == ("10x", 10, (0, 1, 2, 3, 4, 6, 7, 8, 9, 10))


# ---------------------------------------------------------------- limits


def _in_control(n: int) -> list[float]:
    pattern = [0.4, -0.6, 1.2, -1.1, 0.2, -0.3, 1.9, -0.5, 0.8, -1.9]
    return [100 + 10 * pattern[i % len(pattern)] for i in range(n)]


def test_limits_are_estimated_from_the_first_20_values():
    values = _in_control(20) + [160.0, 170.0, 180.0, 190.0, 200.0]
    lim = estimate_limits(values)
    assert lim.mean == pytest.approx(statistics.fmean(values[:20]))
    assert lim.sd == pytest.approx(statistics.stdev(values[:20]))
    assert (lim.n, lim.source) == (20, "first 20 of 25 values")
    found = evaluate_westgard(values)
    assert [v.index for v in found if v.rule == "1-3s"] == [20, 21, 22, 23, 24]


def test_a_baseline_keeps_a_shift_from_hiding_itself():
    # why not all points: the shift would inflate the SD that is meant to detect it
    values = _in_control(20) + [135.0] * 5
    baseline = {v.index for v in evaluate_westgard(values, rules=("1-3s",))}
    all_points = {v.index for v in evaluate_westgard(values, rules=("1-3s",), baseline_n=len(values))}
    assert baseline == {20, 21, 22, 23, 24}
    assert all_points == set()


def test_fewer_than_20_values_use_all_of_them_and_skip_missing():
    values = [1.0, None, 2.0, 3.0, math.nan]
    lim = estimate_limits(values)
    assert (lim.mean, lim.sd, lim.n) == (2.0, 1.0, 3)


def test_given_limits_are_used_as_given():
    lim = estimate_limits([1.0, 2.0], mean=5.0, sd=2.0)
    assert (lim.mean, lim.sd, lim.n, lim.source) == (5.0, 2.0, 0, "given")
    # a given mean with an estimated SD: root-mean-square deviation about that mean
    lim = estimate_limits([1.0, 3.0], mean=1.0)
    assert lim.sd == pytest.approx(math.sqrt(2.0))


@pytest.mark.parametrize(
    "values, kw, message",
    [
        ([1.0], {}, "at least 2 measured values"),
        ([None, 1.0, math.nan], {}, "at least 2 measured values"),
        ([2.0, 2.0, 2.0], {}, "SD is zero"),
        ([1.0, 2.0], {"sd": 0.0}, "positive"),
        ([1.0, 2.0], {"sd": -1.0}, "positive"),
        ([1.0, 2.0], {"baseline_n": 1}, "baseline_n"),
    ],
)
def test_limits_that_cannot_be_set_raise(values, kw, message):
    with pytest.raises(ValueError, match=message):
        evaluate_westgard(values, **kw)
