"""Staging a realistic generated day gives exactly the frozen output of the code before the lazy
plan (tests/corpus/staging, made by its make_golden.py): columns, dtypes, values, issues, masked
text and quarantine rows with their reasons."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import polars as pl
import pytest
from polars.testing import assert_frame_equal

GOLDEN = Path(__file__).resolve().parents[1] / "corpus" / "staging"
spec = importlib.util.spec_from_file_location("make_golden", GOLDEN / "make_golden.py")
make_golden = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
spec.loader.exec_module(make_golden)  # type: ignore[union-attr]


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    return make_golden.staged_day(tmp_path_factory.mktemp("golden") / "landing")


@pytest.mark.parametrize("feed", ["hotline", "complaints", "regulator_transfers"])
@pytest.mark.parametrize("what", ["staged", "issues", "masked", "quarantine"])
def test_staging_output_equals_the_frozen_output(staged, feed, what):
    expected = pl.read_parquet(GOLDEN / f"{feed}.{what}.parquet")
    assert_frame_equal(staged[feed][what], expected, check_exact=True)


@pytest.mark.parametrize("feed", ["hotline", "complaints", "regulator_transfers"])
def test_loaded_rows_are_the_staged_rows_less_the_quarantined(staged, feed):
    expected = pl.read_parquet(GOLDEN / f"{feed}.staged.parquet")
    held = pl.read_parquet(GOLDEN / f"{feed}.quarantine.parquet").select(
        "source_file", "source_line"
    )
    expected = expected.join(held, on=["source_file", "source_line"], how="anti")
    assert_frame_equal(staged[feed]["loaded"], expected, check_exact=True)
