"""kesu.warehouse.raw (content-addressed originals) and warehouse.ledger (one JSON file per run)."""

from __future__ import annotations

import ctypes
import json
import mmap
import os
import stat
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest
from kesu.transforms.run_records import FeedRecord, IngestRun, RawInput
from kesu.warehouse import Warehouse, ledger
from kesu.warehouse.ledger import list_runs, new_run_id, record_run
from kesu.warehouse.publish import PublishedFile, PublishedPartition
from kesu.warehouse.raw import keep_raw, sha256_file

DROP = date(2025, 1, 31)
NAME = "投诉工单_20250131.csv"


def landed(tmp_path: Path, content: bytes, name: str = NAME) -> Path:
    path = tmp_path / "landing" / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    return path


def files_under(path: Path) -> list[Path]:
    return sorted(p for p in path.rglob("*") if p.is_file())


# --- raw zone ---------------------------------------------------------------------------------


def test_keep_raw_copies_bytes_with_owner_only_permissions(tmp_path: Path) -> None:
    old_umask = os.umask(0o000)  # permissions must not depend on the umask
    try:
        copy = keep_raw(
            Warehouse.at(tmp_path / "wh"), "complaints", DROP, landed(tmp_path, b"a,b\n1,2\n")
        )
    finally:
        os.umask(old_umask)
    assert copy.path == tmp_path / "wh/_raw/complaints/2025-01-31" / copy.sha256 / NAME
    assert copy.path.read_bytes() == b"a,b\n1,2\n" and copy.bytes == 8
    assert copy.sha256 == sha256_file(copy.path) and not copy.already_present
    assert stat.S_IMODE(copy.path.stat().st_mode) == 0o600
    for d in (copy.path.parent, *list(copy.path.parents)[1:4]):  # <sha>, <date>, <feed>, _raw
        assert stat.S_IMODE(d.stat().st_mode) == 0o700, d


def resident_pages(path: Path) -> int:
    """How many of a file's pages are in the page cache (mincore(2) over a shared mapping)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.mmap.restype = ctypes.c_void_p
    libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int]
    libc.mmap.argtypes += [ctypes.c_int, ctypes.c_long]
    libc.mincore.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_ubyte)]
    libc.munmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t]
    size = path.stat().st_size
    pages = (size + mmap.PAGESIZE - 1) // mmap.PAGESIZE
    vector = (ctypes.c_ubyte * pages)()
    fd = os.open(path, os.O_RDONLY)
    try:
        address = libc.mmap(None, size, mmap.PROT_READ, mmap.MAP_SHARED, fd, 0)
        assert address not in (None, ctypes.c_void_p(-1).value), ctypes.get_errno()
        try:
            assert libc.mincore(address, size, vector) == 0, ctypes.get_errno()
        finally:
            libc.munmap(address, size)
    finally:
        os.close(fd)
    return sum(v & 1 for v in vector)


def test_raw_copies_leave_the_page_cache_once_on_disk(tmp_path: Path) -> None:
    """The raw zone is written once and read rarely: its pages are dropped once fsynced, whether
    the kernel copied the landing file or the bytes read were written (`Storage.create`)."""
    content = os.urandom(1 << 22)
    source = landed(tmp_path, content)
    assert resident_pages(source) > 0  # just written: cached (the measure can see pages)
    wh = Warehouse.at(tmp_path / "wh")
    copied = keep_raw(wh, "hotline", DROP, source)
    written_key = "_raw/hotline/2025-01-31/written/x.csv"
    assert wh.store.create(written_key, content, private=True)
    written = wh.store.location(written_key)
    assert resident_pages(copied.path) == resident_pages(written) == 0  # before reading them
    assert copied.path.read_bytes() == written.read_bytes() == content
    assert resident_pages(copied.path) > 0  # read again: cached again


def test_same_bytes_twice_writes_nothing(tmp_path: Path) -> None:
    source = landed(tmp_path, b"same")
    first = keep_raw(Warehouse.at(tmp_path / "wh"), "complaints", DROP, source)
    mtime = first.path.stat().st_mtime_ns
    again = keep_raw(Warehouse.at(tmp_path / "wh"), "complaints", DROP, source)
    assert again.already_present and again.path == first.path
    assert first.path.stat().st_mtime_ns == mtime
    assert files_under(tmp_path / "wh/_raw") == [first.path]
    assert os.listdir(tmp_path / "wh/_kesu/tmp") == []


def test_corrected_file_gets_a_second_copy(tmp_path: Path) -> None:
    first = keep_raw(Warehouse.at(tmp_path / "wh"), "complaints", DROP, landed(tmp_path, b"v1"))
    second = keep_raw(
        Warehouse.at(tmp_path / "wh"), "complaints", DROP, landed(tmp_path, b"v2 corrected")
    )
    assert first.path.name == second.path.name == NAME
    assert first.path.parent.parent == second.path.parent.parent
    assert files_under(tmp_path / "wh/_raw") == sorted([first.path, second.path])
    assert first.path.read_bytes() == b"v1"


def test_symlink_is_refused(tmp_path: Path) -> None:
    target = landed(tmp_path, b"secret", "target.csv")
    link = tmp_path / "landing" / "link.csv"
    link.symlink_to(target)
    with pytest.raises(ValueError, match="symlink"):
        keep_raw(Warehouse.at(tmp_path / "wh"), "complaints", DROP, link)
    assert not (tmp_path / "wh/_raw").exists()


def test_non_file_is_refused(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)  # would block a naive open()
    with pytest.raises(ValueError, match="regular file"):
        keep_raw(Warehouse.at(tmp_path / "wh"), "complaints", DROP, fifo)


@pytest.mark.parametrize("feed", ["../escape", "a/b", "..", ""])
def test_unsafe_feed_is_refused(tmp_path: Path, feed: str) -> None:
    with pytest.raises(ValueError):
        keep_raw(Warehouse.at(tmp_path / "wh"), feed, DROP, landed(tmp_path, b"x"))
    assert not (tmp_path / "escape").exists()


def test_sha256_file_streams_large_files(tmp_path: Path) -> None:
    path = tmp_path / "big.bin"
    path.write_bytes(b"\x01" * (3 * 2**20 + 5))  # crosses 1 MiB chunk boundaries
    import hashlib

    assert sha256_file(path) == hashlib.sha256(path.read_bytes()).hexdigest()


# --- ledger -----------------------------------------------------------------------------------

T0 = datetime(2026, 1, 23, 2, 0, tzinfo=UTC)


def run(
    at: datetime, status: str, drop: date, inputs: dict[str, str], feed: str = "complaints"
) -> IngestRun:
    return IngestRun(
        new_run_id(at),
        drop,
        at,
        status,
        feeds={feed: FeedRecord("loaded", inputs=[RawInput(n, s, 1) for n, s in inputs.items()])},
    )


def test_run_id_is_sortable_and_unique() -> None:
    a, b = new_run_id(T0), new_run_id(T0)
    assert a.startswith("20260123T020000Z-") and len(a) == 23 and a != b
    shanghai = timezone(timedelta(hours=8))
    assert new_run_id(T0.astimezone(shanghai))[:16] == "20260123T020000Z"  # always UTC
    assert new_run_id(T0 + timedelta(seconds=1)) > max(a, b)
    with pytest.raises(ValueError):
        new_run_id(datetime(2026, 1, 23))


def test_record_run_round_trip_keeps_chinese_and_dataclasses(tmp_path: Path) -> None:
    part = PublishedPartition(
        "stg_complaints",
        "drop_date=2025-01-31",
        [PublishedFile("drop_date=2025-01-31/part-0.parquet", 3, 10)],
        "created",
    )
    r = run(T0, "completed", DROP, {NAME: "ab"})
    r.feeds["complaints"].outputs = [part]
    wh = Warehouse.at(tmp_path)
    path = record_run(wh, r)
    assert path == tmp_path / "_ledger/runs" / f"{r.run_id}.json"
    assert NAME in path.read_text(encoding="utf-8")  # ensure_ascii=False
    written = json.loads(path.read_text(encoding="utf-8"))
    assert written["drop_date"] == "2025-01-31"
    assert written["feeds"]["complaints"]["outputs"] == [
        {
            "table": "stg_complaints",
            "partition": "drop_date=2025-01-31",
            "files": [{"name": "drop_date=2025-01-31/part-0.parquet", "rows": 3, "bytes": 10}],
            "action": "created",
            "version": None,
        }
    ]
    assert PublishedPartition.from_jsonable(written["feeds"]["complaints"]["outputs"][0]) == part
    (back,) = list_runs(wh)
    assert back == r
    assert back.drop_date == DROP
    assert back.feeds["complaints"].outputs == [part]


def test_record_run_rejects_unsafe_run_id(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        record_run(Warehouse.at(tmp_path), IngestRun("../../x", DROP, T0))


def test_list_runs_newest_first(tmp_path: Path) -> None:
    ids = [
        record_run(Warehouse.at(tmp_path), run(T0 + timedelta(hours=h), "completed", DROP, {})).stem
        for h in (2, 0, 1)
    ]
    assert [r.run_id for r in list_runs(Warehouse.at(tmp_path))] == sorted(ids, reverse=True)
    assert [r.run_id for r in list_runs(Warehouse.at(tmp_path), limit=1)] == [max(ids)]
    assert list_runs(Warehouse.at(tmp_path / "empty")) == []


def test_a_damaged_ledger_record_is_left_out_with_a_warning_naming_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """One damaged or hand-edited run file must not stop `kesu status`, the quarantine view or a
    waiting run from reading the others; the warning names the file and the field, no value."""
    wh = Warehouse.at(tmp_path)
    good = run(T0, "completed", DROP, {})
    record_run(wh, good)
    runs_dir = tmp_path / ledger.RUNS
    damaged = {
        new_run_id(T0 + timedelta(hours=1)): b'{"run_id": "13800138000", "drop',  # cut short
        new_run_id(T0 + timedelta(hours=2)): b"\xff\xfe not text",
        new_run_id(T0 + timedelta(hours=3)): b'["13800138000"]',
    }
    written = json.loads((runs_dir / f"{good.run_id}.json").read_bytes())
    unstarted = {k: v for k, v in written.items() if k != "started_at"}
    damaged[new_run_id(T0 + timedelta(hours=4))] = json.dumps(unstarted).encode()
    damaged[new_run_id(T0 + timedelta(hours=5))] = json.dumps(written | {"kind": "report"}).encode()
    bad_date = written | {"drop_date": "13800138000"}
    damaged[new_run_id(T0 + timedelta(hours=6))] = json.dumps(bad_date).encode()
    # in the good run's second, so that the two are ordered by their exact starts: a time
    # without its offset cannot be compared with one that has it
    naive = written | {"started_at": "2025-07-01T08:00:00"}
    damaged[new_run_id(T0)] = json.dumps(naive).encode()
    for run_id, data in damaged.items():
        (runs_dir / f"{run_id}.json").write_bytes(data)
    with caplog.at_level("WARNING", logger="kesu.ledger"):
        assert list_runs(wh) == [good]
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == len(damaged)
    for run_id, message in zip(sorted(damaged, reverse=True), warned, strict=True):
        assert f"{run_id}.json" in message
        assert "13800138000" not in message
    assert "lacks 'started_at'" in warned[2]
    assert "kind" in warned[1]
    assert "wrong shape (ValueError)" in warned[-1]


def test_runs_of_the_same_second_are_listed_by_their_exact_start(tmp_path: Path) -> None:
    """Two commands one after the other can start in the same second: their ids' random suffixes
    must not decide which is the newer (`kesu ingest` twice; the quarantine's last ingest)."""
    wh = Warehouse.at(tmp_path)
    earlier = run(T0 - timedelta(seconds=1), "completed", DROP, {})
    record_run(wh, earlier)
    starts = [T0 + timedelta(microseconds=us) for us in (100, 500_000, 900_000)]
    suffixes = ["ffffff", "888888", "000000"]  # against the order of their starts
    same_second = []
    for started, suffix in zip(starts, suffixes, strict=True):
        r = run(started, "completed", DROP, {})
        r.run_id, r.started_at = f"{r.run_id[:16]}-{suffix}", started
        record_run(wh, r)
        same_second.append(r.run_id)
    newest_first = [*reversed(same_second), earlier.run_id]
    assert [r.run_id for r in list_runs(wh)] == newest_first
    for limit in range(5):
        assert [r.run_id for r in list_runs(wh, limit=limit)] == newest_first[:limit]


def last_inputs(wh: Warehouse, feed: str, drop: date) -> dict[str, str] | None:
    found = ledger.last_feed_record(wh, feed, drop, ("loaded",))
    return None if found is None else found.input_sums()


def test_last_completed_inputs_of_runs_before_the_pointers(tmp_path: Path) -> None:
    """Runs recorded without drop pointers (an older release) are found by the scan."""
    wh = Warehouse.at(tmp_path)
    record_run(wh, run(T0, "completed", DROP, {"a.csv": "1"}))
    record_run(
        wh,
        run(T0 + timedelta(hours=1), "completed", DROP, {"a.csv": "2", "b.csv": "3"}),
    )
    # newer but failed, other drop, other feed: none of them count for complaints/DROP
    record_run(wh, run(T0 + timedelta(hours=2), "failed", DROP, {"a.csv": "9"}))
    record_run(
        wh,
        run(T0 + timedelta(hours=3), "completed", date(2025, 2, 1), {"a.csv": "8"}),
    )
    record_run(
        wh,
        run(T0 + timedelta(hours=4), "completed", DROP, {"h.csv": "7"}, feed="hotline"),
    )

    assert last_inputs(wh, "complaints", DROP) == {
        "a.csv": "2",
        "b.csv": "3",
    }
    assert last_inputs(wh, "hotline", DROP) == {"h.csv": "7"}
    assert last_inputs(wh, "regulator_transfers", DROP) is None
    assert last_inputs(wh, "complaints", date(2024, 1, 1)) is None


@pytest.mark.parametrize(
    "damage",
    [b'{"runs_up_to": "2025', b"\xff\xfe", b'["13800138000"]', b'{"runs_up_to": 13800138000}',
     b'{"runs_up_to": "../13800138000"}', b"{}"],
    ids=["cut short", "not UTF-8", "not an object", "not text", "not a run id", "empty"],
)  # fmt: skip
def test_a_damaged_pointers_marker_is_rewritten_and_older_runs_staged_again(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: bytes
) -> None:
    """`since.json` damaged by hand or by a disk: drops are not failed; runs from before the
    pointers are no longer looked up (their drops are staged again, then pointed at), and the
    marker is rewritten, so the warning comes once and names the file, not what it held."""
    wh = Warehouse.at(tmp_path)
    before = run(T0, "completed", DROP, {"a.csv": "1"})  # an older release: no pointer
    record_run(wh, before)
    assert last_inputs(wh, "complaints", DROP) == {"a.csv": "1"}  # found by the scan
    marker = tmp_path / ledger.POINTERS_SINCE
    marker.write_bytes(damage)
    with caplog.at_level("WARNING", logger="kesu.ledger"):
        assert last_inputs(wh, "complaints", DROP) is None
        assert last_inputs(wh, "complaints", DROP) is None
    assert [ledger.POINTERS_SINCE in r.getMessage() for r in caplog.records] == [True]
    assert "13800138000" not in caplog.text
    assert json.loads(marker.read_bytes()) == {"runs_up_to": ""}
    again = run(T0 + timedelta(hours=1), "completed", DROP, {"a.csv": "1"})
    record_run(wh, again)
    assert ledger.point_drop_at(wh, again, ("loaded",))
    assert last_inputs(wh, "complaints", DROP) == {"a.csv": "1"}


@pytest.mark.parametrize(
    "damage",
    [b'{"drop_date": "2025-01-31", "feeds": {"complaints": {"run_id"', b'["13800138000"]',
     b'{"feeds": ["complaints"]}', b'{"feeds": {"complaints": {"run_id": "../../x"}}}'],
    ids=["cut short", "not an object", "feeds not an object", "unsafe run id"],
)  # fmt: skip
def test_a_damaged_drop_pointer_reads_as_none_and_is_written_anew(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: bytes
) -> None:
    """A drop's pointer damaged by hand or by a disk: the drop counts as never completed (staged
    again, not skipped) and its next completed run writes the pointer anew."""
    wh = Warehouse.at(tmp_path)
    assert ledger.last_feed_record(wh, "complaints", DROP, ("loaded",)) is None  # pointers since
    done = run(T0, "completed", DROP, {"a.csv": "1"})
    done.feeds["complaints"].fingerprint = "fp"
    record_run(wh, done)
    assert ledger.point_drop_at(wh, done, ("loaded",))
    assert ledger.last_feed_record(wh, "complaints", DROP, ("loaded",)) == done.feeds["complaints"]
    pointer = tmp_path / ledger.DROPS / f"{DROP.isoformat()}.json"
    pointer.write_bytes(damage)
    with caplog.at_level("WARNING", logger="kesu.ledger"):
        assert ledger.last_feed_record(wh, "complaints", DROP, ("loaded",)) is None
    assert [f"{DROP.isoformat()}.json" in r.getMessage() for r in caplog.records] == [True]
    assert "13800138000" not in caplog.text
    again = run(T0 + timedelta(hours=1), "completed", DROP, {"a.csv": "1"})
    again.feeds["complaints"].fingerprint = "fp"
    record_run(wh, again)
    assert ledger.point_drop_at(wh, again, ("loaded",))
    assert ledger.last_feed_record(wh, "complaints", DROP, ("loaded",)) == again.feeds["complaints"]


def test_a_pointer_to_a_damaged_run_record_reads_as_none(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wh = Warehouse.at(tmp_path)
    assert ledger.last_feed_record(wh, "complaints", DROP, ("loaded",)) is None  # pointers since
    done = run(T0, "completed", DROP, {"a.csv": "1"})
    record_run(wh, done)
    assert ledger.point_drop_at(wh, done, ("loaded",))
    assert ledger.last_feed_record(wh, "complaints", DROP, ("loaded",)) == done.feeds["complaints"]
    (tmp_path / ledger.RUNS / f"{done.run_id}.json").write_bytes(b'{"run_id": "1380013')
    with caplog.at_level("WARNING", logger="kesu.ledger"):
        assert ledger.last_feed_record(wh, "complaints", DROP, ("loaded",)) is None
    assert f"{done.run_id}.json" in caplog.text and "not JSON" in caplog.text


def test_to_jsonable_handles_nested_values() -> None:
    value = {"when": datetime(2026, 1, 1, tzinfo=UTC), "d": date(2025, 1, 31), "t": (1, Path("/x"))}
    assert ledger.to_jsonable(value) == {
        "when": "2026-01-01T00:00:00+00:00",
        "d": "2025-01-31",
        "t": [1, "/x"],
    }


def _fill(disk: Path) -> None:
    """Fill `disk` (the `full_disk` tmpfs) to its last byte again."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_APPEND)
    try:
        with pytest.raises(OSError, match="No space left"):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)


def test_a_full_disk_still_records_how_a_run_ended(full_disk: Path) -> None:
    """A run that fails because the disk is full cannot write its last record by the atomic
    temp-and-rename: it is written over the "running" one instead, which would otherwise stand
    as a run whose process vanished."""
    filler = full_disk / "filler"
    os.truncate(filler, filler.stat().st_size - 32 * 1024)  # room for the run's first record
    wh = Warehouse.at(full_disk / "wh")
    r = IngestRun(new_run_id(T0), DROP, T0)  # running
    path = record_run(wh, r)
    _fill(full_disk)

    r.status, r.error = "failed", "OSError: [Errno 28] No space left on device"
    assert record_run(wh, r) == path
    (back,) = list_runs(wh)
    assert (back.status, back.error) == ("failed", r.error)

    # a record longer than the blocks the old one holds is refused whole, never torn
    r.error = "x" * 8192
    with pytest.raises(OSError, match="No space left"):
        record_run(wh, r)
    (back,) = list_runs(wh)
    assert back.error == "OSError: [Errno 28] No space left on device"
