"""End to end: `kesu sample` files through the `nightly` flow into a temporary warehouse."""

from __future__ import annotations

import hashlib
import shutil
from datetime import date
from pathlib import Path

import duckdb
import polars as pl
import pytest
from deltalake import DeltaTable
from kesu.flows.ingest import nightly
from kesu.samplegen.generate import generate
from kesu.transforms.columns import COLUMNS, FEEDS, STAGED_TABLE
from kesu.warehouse import Warehouse
from kesu.warehouse.landing import list_drop, read_source

START, END = date(2025, 3, 1), date(2025, 3, 5)
PII_KINDS = ("phone", "person_name", "id_number")


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    generate(START, END, root, profile="small", seed=11, defects=True)
    return root


def ingest(landing: Path, warehouse: Path, day: date, **kw) -> dict:
    return nightly(drop_date=day, landing_dir=str(landing), warehouse_dir=str(warehouse), **kw)


def snapshot(warehouse: Path) -> dict[str, tuple[int, str]]:
    """Every file but the run ledger (which records each run, by design): mtime and content."""
    files = {}
    for p in sorted(warehouse.rglob("*")):
        if p.is_file() and "_ledger/runs" not in p.as_posix():
            files[str(p.relative_to(warehouse))] = (
                p.stat().st_mtime_ns,
                hashlib.sha256(p.read_bytes()).hexdigest(),
            )
    return files


@pytest.fixture(scope="module")
def warehouse(landing, tmp_path_factory) -> tuple[Path, list[dict]]:
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
    root = tmp_path_factory.mktemp("warehouse")
    runs = [
        ingest(landing, root, START.fromordinal(d))
        for d in range(START.toordinal(), END.toordinal() + 1)
    ]
    yield root, runs
    mp.undo()


def test_every_row_in_is_loaded_or_quarantined_per_file(warehouse, landing):
    root, runs = warehouse
    for run in runs:
        assert run.status == "completed"
        for feed, record in run.feeds.items():
            listing = list_drop(landing, feed, run.drop_date)
            assert [f.name for f in record.files] == [p.name for p in listing.files]
            for f in record.files:
                assert f.rows_in == f.loaded + f.quarantined, (feed, f)
                # rows in counts what the file really holds
                assert f.rows_in == read_source(listing.folder / f.name).frame.height

    def rows_in_table(table: str) -> int:
        if not (root / table / "_delta_log").is_dir():
            return 0
        return pl.scan_delta(str(root / table)).select(pl.len()).collect().item()

    for feed in FEEDS:
        loaded = sum(r.feeds[feed].loaded for r in runs)
        bad = sum(r.feeds[feed].quarantined for r in runs)
        assert rows_in_table(STAGED_TABLE[feed]) == loaded
        assert rows_in_table(f"quarantine/{feed}") == bad
    assert all(sum(r.feeds[f].loaded for r in runs) > 0 for f in ("hotline", "complaints"))


def test_sample_defects_are_quarantined_with_file_line_and_reason(warehouse):
    root, runs = warehouse
    bad = pl.concat(
        [pl.read_delta(str(t)) for t in (root / "quarantine").iterdir()], how="diagonal_relaxed"
    )
    assert bad.height > 0  # the sample injects defects
    assert (
        bad.select("source_file", "source_line", "field", "rule", "reason")
        .null_count()
        .sum_horizontal()
        .item()
        == 0
    )


def test_duckdb_reads_every_table_with_its_partition_column(warehouse):
    root, runs = warehouse
    for feed in FEEDS:
        if not (root / STAGED_TABLE[feed]).is_dir():
            continue
        # the documented reader outside kesu: deltalake -> pyarrow dataset -> DuckDB
        dataset = DeltaTable(str(root / STAGED_TABLE[feed])).to_pyarrow_dataset()  # noqa: F841
        rows, days = duckdb.sql(
            "SELECT count(*), count(DISTINCT drop_date) FROM dataset"
        ).fetchall()[0]
        assert rows == sum(r.feeds[feed].loaded for r in runs)
        assert days == sum(1 for r in runs if r.feeds[feed].loaded)


def test_no_clear_personal_data_outside_the_raw_zone(warehouse, landing):
    root, _ = warehouse
    clear: set[str] = set()
    for feed in FEEDS:
        pii_headers = [c.header for c in COLUMNS[feed] if c.kind in PII_KINDS]
        for path in sorted((landing / feed).rglob("*.*")):
            frame = read_source(path).frame
            for h in pii_headers:
                if h in frame.columns:
                    clear |= {v.strip() for v in frame[h].drop_nulls().to_list() if v.strip()}
    assert clear
    long_values = {v for v in clear if len(v) >= 7}  # phones and ID numbers: never even inside text
    for path in root.rglob("*.parquet"):
        assert "_raw" not in path.parts
        frame = pl.read_parquet(path)
        cells = frame.select(pl.col(pl.String)).unpivot()["value"].drop_nulls().to_list()
        assert not clear.intersection(cells), path
        text = "\n".join(cells)
        assert not [v for v in long_values if v in text], path
    for path in (root / "_ledger").rglob("*.json"):
        text = path.read_text(encoding="utf-8")
        assert not [v for v in long_values if v in text], path


def test_raw_zone_keeps_originals_byte_for_byte_owner_only(warehouse, landing):
    root, runs = warehouse
    assert (root / "_raw").stat().st_mode & 0o077 == 0
    for run in runs:
        for feed, record in run.feeds.items():
            for i in record.inputs:
                copies = list(
                    (root / "_raw" / feed / run.drop_date.isoformat() / i.sha256).iterdir()
                )
                assert len(copies) == 1 and copies[0].stat().st_mode & 0o077 == 0
                original = landing / feed / run.drop_date.isoformat() / i.name
                assert copies[0].read_bytes() == original.read_bytes()


def test_rerun_with_unchanged_input_changes_no_file(warehouse, landing):
    root, _ = warehouse
    before = snapshot(root)
    again = ingest(landing, root, START)
    assert {r.status for r in again.feeds.values()} <= {"unchanged", "no_folder"}
    forced = ingest(landing, root, START, force=True)  # even a forced redo writes the same bytes
    actions = {p.action for r in forced.feeds.values() for p in r.outputs}
    assert actions <= {"unchanged", "absent"}  # "absent": an empty quarantine stays empty
    assert snapshot(root) == before


def test_corrected_file_replaces_exactly_what_its_earlier_version_contributed(
    landing, tmp_path, monkeypatch
):
    monkeypatch.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
    land = tmp_path / "landing"
    shutil.copytree(landing, land)
    root = tmp_path / "warehouse"
    ingest(land, root, END)
    call_id = next(c.header for c in COLUMNS["hotline"] if c.name == "call_id")
    source = sorted((land / "hotline" / END.isoformat()).glob("*.csv"))[0]
    ids_before = set(read_source(source).frame[call_id])
    lines = source.read_bytes().splitlines(keepends=True)
    source.write_bytes(b"".join(lines[:-3]))  # the corrected export has its last three calls fewer
    ids_after = set(read_source(source).frame[call_id])
    assert len(ids_before - ids_after) == 3
    run = ingest(land, root, END)

    def ids_from(table: str) -> set[str]:
        if not (root / table / "_delta_log").is_dir():
            return set()  # never written: nothing was ever rejected
        frame = pl.read_delta(str(root / table)).filter(pl.col("drop_date") == END)
        return set(frame.filter(pl.col("source_file") == source.name)["call_id"].drop_nulls())

    published = ids_from("stg_hotline") | ids_from("quarantine/hotline")
    assert ids_before - ids_after <= ids_before - published  # the dropped calls are gone
    assert published <= ids_after
    rec = run.feeds["hotline"]
    assert rec.rows_in == rec.loaded + rec.quarantined
    assert len(list((root / "_raw" / "hotline" / END.isoformat()).iterdir())) == 2  # both kept


def test_missing_required_column_fails_that_file_alone(landing, tmp_path, monkeypatch):
    monkeypatch.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
    land = tmp_path / "landing"
    shutil.copytree(landing, land)
    folder = land / "complaints" / START.isoformat()
    good = sorted(folder.glob("*.csv"))[0]
    frame = read_source(good).frame.drop("_line", "_ragged")
    required = next(
        c.header for c in COLUMNS["complaints"] if c.required and c.name != "complaint_id"
    )
    frame.drop(required).write_csv(folder / "zz_broken.csv")
    run = ingest(land, tmp_path / "warehouse", START)
    files = {f.name: f for f in run.feeds["complaints"].files}
    assert files["zz_broken.csv"].status == "failed"
    assert "zz_broken.csv" in files["zz_broken.csv"].message
    assert required in files["zz_broken.csv"].message
    assert files[good.name].status == "ok" and files[good.name].loaded > 0
    assert run.feeds["complaints"].status == "loaded"


def test_a_day_without_folders_is_reported_not_fatal(landing, tmp_path, monkeypatch):
    monkeypatch.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
    run = ingest(landing, tmp_path / "warehouse", date(2024, 1, 1))
    assert run.status == "completed"
    assert {r.status for r in run.feeds.values()} == {"no_folder"}


def _open_quote_in_topic(line: str) -> str:
    """The record with a quote opened in 业务小类 (the 11th field) that never closes."""
    fields = line.split(",")
    fields[10] = '"' + fields[10]
    return ",".join(fields)


@pytest.mark.flow
def test_a_drop_of_hand_broken_files_accounts_for_every_landed_record(tmp_path, demo_key, capsys):
    # issue 10: sample files broken as a new user broke them, through `kesu ingest`
    from kesu.flows.cli import main
    from kesu.warehouse.ledger import list_runs

    landing, warehouse = tmp_path / "landing", tmp_path / "warehouse"
    generate(START, START, landing, profile="small", seed=5, defects=False)
    calls = next((landing / "hotline" / START.isoformat()).glob("*.csv"))
    lines = calls.read_text(encoding="utf-8").split("\n")
    lines[3] = _open_quote_in_topic(lines[3])  # a stray quote …
    lines[9] = _open_quote_in_topic(lines[9])  # … and another: once they merged lines 4-10
    calls.write_text("\n".join(lines), encoding="utf-8")
    landed = sum(1 for line in lines[1:] if line)
    (calls.parent / "notes.txt").write_text("not an export", encoding="utf-8")
    argv = ["ingest", "--date", START.isoformat(), "--landing", str(landing)]
    argv += ["--warehouse", str(warehouse)]

    assert main(argv) == 0
    out = capsys.readouterr().out
    (run,) = list_runs(Warehouse.at(warehouse))
    hotline = run.feeds["hotline"]
    assert hotline.rows_in == landed == hotline.loaded + hotline.quarantined
    assert "not read: 'notes.txt' (not a .csv, .xlsx or .xls file)" in out
    held = pl.read_parquet(warehouse / "quarantine" / "hotline" / f"drop_date={START}")
    for line in (4, 10):
        (reason,) = held.filter(pl.col("source_line") == line)["reason"]
        assert reason.startswith(f"line {line}: a quote opened in 业务小类 does not close")

    # The transfers export is replaced by a file of a type kesu does not read: the feed fails
    # (exit 1) and its live partition keeps the rows it had.
    table = warehouse / STAGED_TABLE["regulator_transfers"] / f"drop_date={START}"
    before = pl.read_parquet(table)
    workbook = next((landing / "regulator_transfers" / START.isoformat()).glob("*.xlsx"))
    workbook.rename(workbook.with_suffix(".bak"))
    assert main([*argv, "--feeds", "regulator_transfers"]) == 1
    assert "not read: '" in capsys.readouterr().out
    assert pl.read_parquet(table).equals(before) and before.height > 0
    assert list_runs(Warehouse.at(warehouse))[0].feeds["regulator_transfers"].status == "unreadable"
