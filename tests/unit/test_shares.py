"""Shares as a regulator checks them: half-up per row, largest remainder adding to 100, order."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st
from kesu.transforms import shares

D = Decimal


def test_half_up_rounds_ties_away_from_zero_in_decimal():
    # 1/8 = 12.5 % exactly: half-up gives 13, banker's rounding would give 12
    assert shares.shares([1, 7], ["a", "b"], "half_up", 0) == [D("13"), D("88")]  # 87.5 -> 88
    # 1/3 = 33.333.. -> 33.33; each row on its own, so the column adds to 99.99
    assert shares.shares([1, 1, 1], list("abc"), "half_up", 2) == [D("33.33")] * 3
    # 0.125 % is a tie at 2 decimals (1 of 800): 0.13, never 0.12 as float rounding may give
    assert shares.percent(1, 800, 2) == D("0.13")
    # a negative tie rounds away from zero: -12.345 -> -12.35
    assert shares.percent(D("-12.345"), 100, 2) == D("-12.35")
    assert shares.percent(-12345, 1000, 2) == D("-1234.50")


def test_largest_remainder_hands_the_missing_units_to_the_largest_remainders():
    # 1/3 each: floors 33.33 x3 = 99.99; the one missing unit goes to the tie-break winner:
    # equal remainders and counts -> smallest key
    assert shares.largest_remainder([1, 1, 1], ["b", "a", "c"], 2) == [
        D("33.33"), D("33.34"), D("33.33")]  # fmt: skip
    # 2/7 = 28.571.., 5/7 = 71.428..: floors 28 + 71 = 99; remainders .571 > .428 -> 29, 71
    assert shares.largest_remainder([2, 5], ["x", "y"], 0) == [D("29"), D("71")]


def test_zero_total_gives_null_shares():
    assert shares.shares([0, 0], ["a", "b"], "half_up", 2) == [None, None]
    assert shares.shares([0, 0], ["a", "b"], "largest_remainder", 2) == [None, None]
    assert shares.percent(3, 0) is None and shares.percent(3, None) is None


counts = st.lists(st.integers(0, 10_000), min_size=1, max_size=15).filter(lambda c: sum(c) > 0)


@given(counts, st.sampled_from([0, 1, 2]))
def test_largest_remainder_adds_to_exactly_100(values, decimals):
    keys = [f"k{i:02d}" for i in range(len(values))]
    result = shares.largest_remainder(values, keys, decimals)
    assert sum(result) == 100
    for share, count in zip(result, values, strict=True):  # never more than one unit off
        exact = Fraction(count * 100, sum(values))
        assert abs(Fraction(share) - exact) < Fraction(1, 10**decimals)


@given(counts, st.sampled_from([0, 1, 2]))
def test_half_up_rows_equal_their_own_exact_rounding(values, decimals):
    result = shares.shares(values, [str(i) for i in range(len(values))], "half_up", decimals)
    for share, count in zip(result, values, strict=True):
        # exact rational, half-up by hand: floor(x * 10^d + 1/2)
        scaled = Fraction(count * 100 * 10**decimals, sum(values))
        units = (scaled + Fraction(1, 2)).__floor__()
        assert share == Decimal(units).scaleb(-decimals)


def test_display_prints_the_rounded_value():
    assert shares.display(D("33.60"), 2) == "33.60%"
    assert shares.display(D("34"), 0) == "34%"
    assert shares.display(None, 2) is None


def test_order_descending_by_count_other_last_ties_by_code():
    frame = pl.DataFrame({"code": ["B99", "B05", "B03", "B04"], "n": [50, 7, 9, 9]})
    ordered = shares.ordered(frame, "n", "code", shares.is_other(pl.col("code")))
    assert ordered["code"].to_list() == ["B03", "B04", "B05", "B99"]


def test_top_share_is_computed_from_raw_counts():
    # shares 33.33 + 33.33 would add to 66.66; from counts 2/3 = 66.67
    assert shares.top_share([1, 1, 1], 2, decimals=2) == D("66.67")
    # 其他 is in the total, never among the top: 3 / 10
    assert shares.top_share([3, 2], 1, decimals=1, other=5) == D("30.0")


TREE = {"A01": None, "A0101": "A01", "A0103": "A01", "A010301": "A0103", "A010399": "A0103",
        "A02": None}  # fmt: skip


def test_tree_shares_half_up_of_total_and_among_siblings():
    counts = {"A01": 2, "A0101": 1, "A0103": 1, "A010301": 1, "A010399": 0, "A02": 1}
    out = shares.tree_shares(counts, TREE, 3, "half_up", 1)
    assert out["A01"] == (D("66.7"), D("66.7"))  # level 1: among siblings == of the total
    assert out["A0101"] == (D("33.3"), D("50.0"))
    assert out["A010301"] == (D("33.3"), D("100.0"))
    assert out["A010399"] == (D("0.0"), D("0.0"))


@given(st.lists(st.integers(0, 50), min_size=5, max_size=5), st.sampled_from([0, 1, 2]))
def test_tree_largest_remainder_children_add_up_to_their_parent(leaves, decimals):
    a0101, a010301, a010399, a02, at_a0103 = leaves  # at_a0103: coded at the parent itself
    a0103 = a010301 + a010399 + at_a0103
    counts = {"A0101": a0101, "A0103": a0103, "A010301": a010301, "A010399": a010399,
              "A02": a02, "A01": a0101 + a0103}  # fmt: skip
    total = counts["A01"] + a02
    out = shares.tree_shares(counts, TREE, total, "largest_remainder", decimals)
    if total == 0:
        assert all(v == (None, None) for v in out.values())
        return
    assert out["A01"][0] + out["A02"][0] == 100
    assert out["A0101"][0] + out["A0103"][0] == out["A01"][0]
    assert out["A010301"][0] + out["A010399"][0] <= out["A0103"][0]
    if at_a0103 == 0 and a0103 > 0:
        assert out["A010301"][0] + out["A010399"][0] == out["A0103"][0]
        assert out["A010301"][1] + out["A010399"][1] == 100


def test_unknown_rounding_is_refused():
    with pytest.raises(ValueError, match="rounding"):
        shares.shares([1], ["a"], "banker", 2)
