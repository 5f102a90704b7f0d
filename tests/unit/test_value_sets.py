"""kesu.transforms.value_sets: the same rows as Polars' own `is_duplicated` and `is_in`."""

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kesu.transforms import value_sets
from kesu.transforms.value_sets import at_rows, one_of, repeated
from polars.testing import assert_series_equal


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=60), st.data())
def test_repeated_is_is_duplicated(values: list[int], data: st.DataObject) -> None:
    if values:  # some values twice or more, in any places
        values += data.draw(st.lists(st.sampled_from(values), max_size=10))
        values = data.draw(st.permutations(values))
    hashes = pl.Series("h", values, dtype=pl.UInt64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(value_sets, "SMALL", 0)  # the sorting route, at any size
        found = repeated(hashes)
    assert found.name == "h" and found.dtype == pl.Boolean
    assert found.to_list() == hashes.is_duplicated().to_list()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.sampled_from(["是", "否", "人工", "", " 人工", "x"]))),
    st.lists(st.sampled_from(["是", "否", "人工", "", "自助语音", "x", "y"]), max_size=10),
)
def test_one_of_is_is_in(values: list[str | None], among: list[str]) -> None:
    frame = pl.DataFrame({"v": values}, schema={"v": pl.String})
    ours = frame.select(one_of(pl.col("v"), among)).to_series()
    theirs = frame.select(pl.col("v").is_in(among)).to_series()
    assert ours.dtype == pl.Boolean and ours.to_list() == theirs.to_list()


@settings(max_examples=40, deadline=None)
@given(
    st.integers(0, 50).flatmap(
        lambda n: st.tuples(
            st.just(n), st.lists(st.integers(0, max(n - 1, 0)), max_size=10 if n else 0)
        )
    )
)
def test_at_rows_is_membership_of_the_row_numbers(case):
    n, rows = case
    expected = pl.int_range(0, n, dtype=pl.UInt32, eager=True).is_in(
        pl.Series(rows, dtype=pl.UInt32).implode()
    )
    assert_series_equal(at_rows(n, pl.Series(rows, dtype=pl.UInt32)), expected, check_names=False)
