"""Small files of one feed's drop share one staging plan (`ingest_steps.SHARED_PLAN_ROWS`).

The plan's fixed cost is most of a small file's staging, so consecutive small files with the
same columns are staged as one frame. What the drop publishes must not depend on that: the same
rows, issues, masked text and per-file counts as when every file is staged alone.
"""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from kesu.flows import ingest_steps
from kesu.flows.config import load_settings
from kesu.flows.ingest_steps import FeedStaged, stage_feed
from kesu.transforms import drop_rows
from kesu.transforms.staging import LINE
from kesu.warehouse.landing import list_drop
from polars.testing import assert_frame_equal
from test_bad_input_corpus import DAY, KEY, complaint, csv_bytes

WITHOUT_AMOUNT = [n for n in complaint(0) if n != "amount"]  # an optional column
WITHOUT_BRANCH = [n for n in complaint(0) if n != "branch_code"]  # a required one

# A drop of eight complaint files in landing order, each with something to find.
FILES = {
    "p1.csv": csv_bytes(
        [
            complaint(1),
            complaint(2, received_at="2025-13-45 10:00:00"),  # no such date
            complaint(3, content="请回电 138 1234 5678"),  # a phone in free text, masked
        ]
    ),
    "p2.csv": csv_bytes(
        [
            complaint(4, business_category="不存在的类别"),  # an unknown label: under 其他
            complaint(1),  # the key of p1's first row again: a repeat across files
            complaint(5, closed_at="2025-02-28 11:00:00", status="已办结"),
        ],
        list(reversed(complaint(0))),  # the same columns in another order
    ),
    "p3.csv": csv_bytes([complaint(6), complaint(7, amount="一百元")], WITHOUT_AMOUNT),
    "p4.csv": csv_bytes([complaint(8), complaint(9)], WITHOUT_AMOUNT),
    "p5.csv": csv_bytes([complaint(10)], WITHOUT_BRANCH),  # every row held
    "p6.csv": csv_bytes([complaint(11, contact_phone="１３８１２３４５６７８")]),
    "p7.csv": csv_bytes([complaint(n) for n in range(12, 21)]),  # long, when the limit is 8
    "p8.csv": csv_bytes([complaint(30, updated_at="昨天")]),
}


def _stage(tmp_path: Path, files: dict[str, bytes]) -> FeedStaged:
    folder = tmp_path / "landing" / "complaints" / DAY.isoformat()
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    settings = load_settings(
        landing=str(tmp_path / "landing"), warehouse=str(tmp_path / "warehouse"), environ={}
    )
    listing = list_drop(settings.landing, "complaints", DAY)
    return stage_feed(settings, KEY, "complaints", DAY, [str(p) for p in listing.files], None)


def _plans(monkeypatch: pytest.MonkeyPatch) -> list[list[str]]:
    """The files of each staging plan run from now on, as the plan's source names them."""
    runs: list[list[str]] = []
    real = ingest_steps.stage

    def counted(feed, source, source_file, ctx):
        many = isinstance(source_file, pl.Series)
        runs.append(source_file.unique(maintain_order=True).to_list() if many else [source_file])
        return real(feed, source, source_file, ctx)

    for module in (ingest_steps, drop_rows):  # a file alone, and a group's shared plan
        monkeypatch.setattr(module, "stage", counted)
    return runs


@pytest.mark.parametrize("limit", [8, ingest_steps.SHARED_PLAN_ROWS])
def test_files_staged_together_publish_what_each_staged_alone_would(tmp_path, monkeypatch, limit):
    monkeypatch.setattr(ingest_steps, "SHARED_PLAN_ROWS", 0)
    alone = _stage(tmp_path / "alone", FILES)
    monkeypatch.setattr(ingest_steps, "SHARED_PLAN_ROWS", limit)
    plans = _plans(monkeypatch)
    together = _stage(tmp_path / "together", FILES)

    for what in ("loaded", "quarantine"):
        assert_frame_equal(together.frame(what), alone.frame(what))
    assert together.files == alone.files  # per-file rows in, loaded, quarantined, notes
    by_name = {f.name: f for f in together.files}
    assert by_name["p5.csv"].status == "failed" and by_name["p5.csv"].quarantined == 1
    assert by_name["p3.csv"].notes == ["optional column(s) absent: 涉及金额"]
    held = together.frame("quarantine").select("complaint_id", "source_file", "rule")
    assert sorted(held.iter_rows()) == [
        ("T001", "p2.csv", "duplicate_key"),  # a key repeated across two files of one plan
        ("T002", "p1.csv", "unparseable"),
        ("T010", "p5.csv", "missing_column"),
        ("T030", "p8.csv", "unparseable"),
    ]

    # Groups end where the columns change, at a file whose rows are all held, and before a
    # file that would take the group past the limit; a file longer than it is staged alone.
    if limit == 8:
        assert plans == [["p1.csv", "p2.csv"], ["p3.csv", "p4.csv"], ["p5.csv"], ["p6.csv"],
                         ["p7.csv"], ["p8.csv"]]  # fmt: skip
    else:
        assert plans == [["p1.csv", "p2.csv"], ["p3.csv", "p4.csv"], ["p5.csv"],
                         ["p6.csv", "p7.csv", "p8.csv"]]  # fmt: skip


def test_a_file_that_breaks_its_groups_plan_fails_alone(tmp_path, monkeypatch):
    # A staging failure no real file is known to cause: the plan of any rows with this id.
    real = ingest_steps.stage

    def breaks_on_t002(feed, source, source_file, ctx):
        if "T002" in source["complaint_id"].to_list():
            raise ValueError("a record no plan can take")
        return real(feed, source, source_file, ctx)

    for module in (ingest_steps, drop_rows):
        monkeypatch.setattr(module, "stage", breaks_on_t002)
    files = {
        "a.csv": csv_bytes([complaint(1)]),
        "b.csv": csv_bytes([complaint(2), complaint(3)]),
        "c.csv": csv_bytes([complaint(4)]),
    }
    staged = _stage(tmp_path, files)

    by_name = {f.name: f for f in staged.files}
    assert by_name["b.csv"].status == "failed"
    assert by_name["b.csv"].message.startswith("b.csv: could not be staged (ValueError)")
    assert by_name["b.csv"].loaded == by_name["b.csv"].quarantined == 0
    assert [by_name[n].loaded for n in ("a.csv", "c.csv")] == [1, 1]
    loaded = staged.frame("loaded")
    assert loaded["complaint_id"].to_list() == ["T001", "T004"]
    assert loaded["source_file"].to_list() == ["a.csv", "c.csv"]
    assert loaded["source_line"].to_list() == [2, 2]
    assert LINE not in loaded.columns
