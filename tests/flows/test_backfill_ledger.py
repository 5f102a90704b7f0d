"""What a backfill's drop reads of the ledger: the drop's pointer, not every run file, so a drop
costs the same however many runs the ledger holds; a warehouse from before the pointers still
skips its unchanged drops. `ingest_drop` is plain Python: no Prefect here."""

from __future__ import annotations

import json
import shutil
from datetime import date
from pathlib import Path

import pytest
from kesu.flows.config import load_settings
from kesu.flows.drop import ingest_drop
from kesu.samplegen.generate import generate
from kesu.transforms.run_records import IngestRun
from kesu.warehouse import Warehouse, ledger

DAY = date(2025, 4, 2)


@pytest.fixture
def drop(tmp_path_factory, tmp_path, demo_key):
    landing = tmp_path_factory.mktemp("landing")
    generate(DAY, DAY, landing, profile="small", seed=3, defects=True)
    settings = load_settings(landing=str(landing), warehouse=str(tmp_path / "wh"))
    return settings, ingest_drop(settings, DAY)


def statuses(run: IngestRun) -> set[str]:
    return {r.status for r in run.feeds.values()} - {"no_folder"}


def read_pointer(wh: Warehouse) -> dict | None:
    """The drop's pointer file as JSON (None: no file), as any reader of the ledger reads it."""
    data = wh.store.read_tagged(f"{ledger.DROPS}/{DAY}.json")
    return None if data is None else json.loads(data[0])


def test_an_unchanged_drop_reads_its_pointer_not_the_other_runs(drop):
    settings, first = drop
    root = settings.warehouse
    assert statuses(first) == {"loaded"}
    runs = root / "_ledger" / "runs"
    for i in range(50):  # other drops' runs, unreadable: reading one would fail the run
        (runs / f"20200101T0000{i:02d}Z-abcdef.json").write_text("not json")
    again = ingest_drop(settings, DAY)
    assert statuses(again) == {"unchanged"} and again.status == "completed"
    pointer = read_pointer(Warehouse.at(root))
    assert pointer is not None
    assert {e["run_id"] for e in pointer["feeds"].values()} == {first.run_id}  # still right


def test_a_warehouse_from_before_the_pointers_still_skips_and_gains_one(drop):
    settings, first = drop
    root = settings.warehouse
    shutil.rmtree(root / "_ledger" / "drops")  # as an older kesu left it
    again = ingest_drop(settings, DAY)
    assert statuses(again) == {"unchanged"}  # found by scanning the older runs
    assert (root / "_ledger" / "drops" / f"{DAY}.json").is_file()


def test_a_drop_changed_after_its_pointer_is_reingested(drop):
    settings, first = drop
    hotline = sorted((Path(settings.landing) / "hotline" / DAY.isoformat()).iterdir())[0]
    hotline.write_bytes(hotline.read_bytes().rstrip(b"\r\n").rsplit(b"\n", 1)[0] + b"\n")
    again = ingest_drop(settings, DAY)
    assert again.feeds["hotline"].status == "loaded"
    assert again.feeds["complaints"].status == "unchanged"
    pointer = read_pointer(Warehouse.at(settings.warehouse))
    assert pointer is not None and pointer["feeds"]["hotline"]["run_id"] == again.run_id
    assert pointer["feeds"]["complaints"]["run_id"] == first.run_id
