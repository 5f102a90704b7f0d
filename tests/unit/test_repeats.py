"""kesu.transforms.repeats: the same rows as Polars' own `is_duplicated`, by another route."""

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from kesu.transforms import repeats
from kesu.transforms.repeats import repeated


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2**64 - 1), max_size=60), st.data())
def test_repeated_is_is_duplicated(values: list[int], data: st.DataObject) -> None:
    if values:  # some values twice or more, in any places
        values += data.draw(st.lists(st.sampled_from(values), max_size=10))
        values = data.draw(st.permutations(values))
    hashes = pl.Series("h", values, dtype=pl.UInt64)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(repeats, "SMALL", 0)  # the sorting route, at any size
        found = repeated(hashes)
    assert found.name == "h" and found.dtype == pl.Boolean
    assert found.to_list() == hashes.is_duplicated().to_list()
