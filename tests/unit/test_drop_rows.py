"""A feed's drop row by row (`kesu.transforms.drop_rows`), over literal rows: where each file's
issues land, which repeat is held, what a file without a required column holds, and that every
row ends loaded or quarantined exactly once."""

from __future__ import annotations

import polars as pl
import pytest
from kesu.expectations.runner import row_failures
from kesu.transforms import drop_rows
from kesu.transforms.staging import check_headers, stage
from polars.testing import assert_frame_equal
from test_staging import CTX, complaint, frame

FEED = "complaints"


def _staged(name: str, *rows: dict[str, str | None]):
    return stage(FEED, frame(list(rows)), name, CTX)


def test_issues_land_at_their_rows_in_the_drop_and_a_later_repeat_of_a_key_is_held():
    a = _staged("a.csv", complaint(complaint_id="T1"), complaint(complaint_id="T2"))
    b = _staged(
        "b.csv",
        complaint(complaint_id="T3", received_at="2025-13-45 10:00:00"),  # no such date
        complaint(complaint_id="T1"),  # a.csv's first record again, same version
    )
    rows = drop_rows.combine(FEED, [a, b])
    assert rows.staged["complaint_id"].to_list() == ["T1", "T2", "T3", "T1"]
    found = rows.issues.select("row", "rule").sort("row").rows()
    assert found == [(2, "unparseable"), (3, "duplicate_key")]
    assert rows.repeats.to_list() == [3]
    assert rows.validated().to_list() == [True, True, True, False]
    reason = rows.issues.filter(pl.col("rule") == "duplicate_key")["reason"][0]
    assert "repeats the record at a.csv line 2" in reason


def test_without_repeats_the_suite_validates_every_row():
    rows = drop_rows.combine(FEED, [_staged("a.csv", complaint(complaint_id="T1"))])
    assert rows.repeats.is_empty() and rows.validated() is None


def test_every_row_is_loaded_or_held_once_with_the_rows_of_a_file_held_whole():
    good = _staged(
        "good.csv",
        complaint(complaint_id="T1"),
        complaint(complaint_id="T2", status="不知道"),  # not one of the statuses: the suite
        complaint(complaint_id="T1"),  # a repeat
    )
    rows = drop_rows.combine(FEED, [good])
    failures = row_failures(rows.staged, "stg_complaints", among=rows.validated())
    missing = _staged("no_branch.csv", complaint(complaint_id="T9"))
    whole = drop_rows.hold_all(missing, ["机构代码"], "no_branch.csv: required column(s) missing")
    loaded, held = drop_rows.split(rows, failures, [whole])
    assert loaded["complaint_id"].to_list() == ["T1"]
    assert held.select("source_file", "source_line", "rule").rows() == [
        ("good.csv", 3, "in_set"),
        ("good.csv", 4, "duplicate_key"),
        ("no_branch.csv", 2, "missing_column"),
    ]
    assert held.filter(pl.col("rule") == "missing_column")["field"].to_list() == ["机构代码"]
    assert drop_rows.rows_by_file(loaded) == {"good.csv": 1}
    assert drop_rows.rows_by_file(held) == {"good.csv": 2, "no_branch.csv": 1}


def test_a_file_held_whole_keeps_its_text_masked():
    staged = _staged("x.csv", complaint(content="请回电13812345678"), complaint(complaint_id="T2"))
    held = drop_rows.hold_all(staged, ["机构代码", "受理时间"], "x.csv: missing")
    assert held.height == 2
    assert held["field"].unique().to_list() == ["机构代码、受理时间"]
    assert held["reason"].unique().to_list() == ["x.csv: missing"]
    assert "13812345678" not in held["content"][0] and "138****5678" in held["content"][0]


@pytest.mark.parametrize(
    ("headers", "first", "ends"),
    [
        (["投诉编号", "工单类型"], "受理渠道", "re-export it with every column of feeds.md"),
        # a title row or no header at all: its "headers" are values, never quoted
        (["T1", "投诉"], "投诉编号", "which must be the header row"),
    ],
)  # fmt: skip
def test_the_reason_a_file_is_held_names_the_missing_columns_not_its_values(headers, first, ends):
    check = check_headers(FEED, headers)
    reason = drop_rows.missing_columns_reason(FEED, "f.csv", 7, check)
    assert reason.startswith(f"f.csv: required column(s) {first}、")
    assert "none of its 7 rows was loaded" in reason and reason.endswith(ends)
    assert "T1" not in reason.replace("f.csv", "")


@pytest.mark.parametrize(("separator", "named"), [("\t", "tabs"), (";", "semicolons")])
def test_a_file_separated_by_another_character_is_told_so(separator, named):
    """A tab-separated export reads as one column: its headers are there, only not split."""
    check = check_headers(FEED, [separator.join(["投诉编号", "工单类型", "受理渠道"])])
    reason = drop_rows.missing_columns_reason(FEED, "f.csv", 7, check)
    assert reason.startswith(
        f"f.csv: its header row is separated by {named}, not commas, so its required column(s) "
        "投诉编号、"
    )
    assert reason.endswith(
        "are not found; none of its 7 rows was loaded, all are held in quarantine — re-export "
        "it as CSV, its values separated by commas (feeds.md)"
    )


def test_files_staged_together_come_out_as_each_file_alone():
    one = frame([complaint(complaint_id="T1"), complaint(complaint_id="T2", amount="一百元")])
    two = frame([complaint(complaint_id="T3", received_at="昨天")])
    together = drop_rows.stage_together(FEED, [(one, "one.csv"), (two, "two.csv")], CTX)
    alone = [stage(FEED, one, "one.csv", CTX), stage(FEED, two, "two.csv", CTX)]
    assert_frame_equal(together.staged, pl.concat([s.staged for s in alone]))
    assert_frame_equal(together.masked_source, pl.concat([s.masked_source for s in alone]))
    shifted = alone[1].issues.with_columns(pl.col("row") + one.height)
    expected = pl.concat([alone[0].issues, shifted])  # the same issues, listed column by column
    assert_frame_equal(together.issues.sort(pl.all()), expected.sort(pl.all()))
