"""Writers on several machines meet through conditional writes, on both backends (a local
directory and moto's real S3 server): create-if-absent, replace-if-unchanged, and what the raw
zone and the ledger's drop pointers build on them. Each "machine" is a thread with its own
storage object (on S3 its own client), so nothing in-process keeps them apart."""

from __future__ import annotations

import json
import os
import stat
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path

import pytest
from kesu.transforms.run_records import FeedRecord, IngestRun
from kesu.warehouse import ledger, paths
from kesu.warehouse.raw import keep_raw
from kesu.warehouse.s3 import S3Options, S3Storage
from kesu.warehouse.storage import LocalStorage, Storage
from kesu.warehouse.warehouse import Warehouse

MACHINES = 8
DAY = date(2025, 4, 1)


@pytest.fixture(params=["local", "s3"])
def root(request, tmp_path: Path) -> Warehouse:
    if request.param == "local":
        return Warehouse.local(tmp_path / "wh")
    return Warehouse.s3(request.getfixturevalue("s3").url())


def machine(wh: Warehouse) -> Storage:
    """A storage object of its own, as another machine would build it (no shared client)."""
    if not wh.remote:
        return LocalStorage(Path(wh.location))
    return S3Storage(str(wh.location), S3Options(endpoint_url=os.environ["KESU_S3_ENDPOINT"]))


def test_create_writes_only_an_absent_key(root) -> None:
    store = root.store
    assert store.create("_ledger/x.json", b"first") is True
    assert store.create("_ledger/x.json", b"second") is False
    assert store.read_bytes("_ledger/x.json") == b"first"


def test_replace_needs_the_tag_it_read(root) -> None:
    store = root.store
    assert store.read_tagged("k") is None
    assert store.replace("k", b"one", None) is True
    assert store.replace("k", b"again", None) is False  # None: only while absent
    data, tag = store.read_tagged("k")
    assert data == b"one"
    store.write_bytes("k", b"two")  # someone else, meanwhile
    assert store.replace("k", b"three", tag) is False
    data, tag = store.read_tagged("k")
    assert store.replace("k", b"three", tag) is True
    assert store.read_bytes("k") == b"three"


def test_of_many_machines_creating_one_key_exactly_one_wins(root) -> None:
    def create(n: int) -> bool:
        return machine(root).create("race", f"machine {n}".encode())

    with ThreadPoolExecutor(MACHINES) as pool:
        won = list(pool.map(create, range(MACHINES)))
    assert won.count(True) == 1
    assert root.store.read_bytes("race") == f"machine {won.index(True)}".encode()


def test_read_modify_replace_loses_no_update(root) -> None:
    """Each machine appends its name to one JSON list; every name ends up in it once."""

    def append(n: int) -> int:
        store, tries = machine(root), 0
        while True:
            tries += 1
            found = store.read_tagged("list.json")
            names = json.loads(found[0]) if found else []
            if store.replace(
                "list.json", json.dumps([*names, n]).encode(), found[1] if found else None
            ):
                return tries

    with ThreadPoolExecutor(MACHINES) as pool:
        tries = list(pool.map(append, range(MACHINES)))
    assert sorted(json.loads(root.store.read_bytes("list.json"))) == list(range(MACHINES))
    assert len(tries) == MACHINES


def _run(run_id: str, feed: str, fingerprint: str) -> IngestRun:
    record = FeedRecord("loaded", fingerprint=fingerprint, inputs=[])
    started = datetime.strptime(run_id[:16], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return IngestRun(run_id, DAY, started, feeds={feed: record})


def test_drop_pointers_written_at_once_by_two_machines_keep_both_feeds(root) -> None:
    feeds = ["hotline", "complaints", "regulator_transfers", "extra_a", "extra_b", "extra_c"]
    runs = [_run(f"20250401T0000{n:02d}Z-00000{n}", f, f"fp-{f}") for n, f in enumerate(feeds)]
    with ThreadPoolExecutor(len(runs)) as pool:
        changed = list(pool.map(lambda r: ledger.point_drop_at(root, r, ("loaded",)), runs))
    assert changed == [True] * len(runs)
    pointer = json.loads(root.store.read_bytes(f"{ledger.DROPS}/{DAY.isoformat()}.json"))
    pointed = {f: e["run_id"] for f, e in pointer["feeds"].items()}
    assert pointed == {f: r.run_id for f, r in zip(feeds, runs, strict=True)}
    # the same fingerprint again writes nothing
    assert ledger.point_drop_at(root, _run("20250401T010000Z-0000ff", "hotline", "fp-hotline"),
                                ("loaded",)) is False  # fmt: skip


def test_a_raw_file_kept_by_many_machines_at_once_is_written_once(root, tmp_path: Path) -> None:
    source = tmp_path / "landing" / "热线.csv"
    source.parent.mkdir()
    source.write_bytes("编号,内容\n1,一\n".encode() * 1000)

    with ThreadPoolExecutor(MACHINES) as pool:
        copies = list(pool.map(lambda _: keep_raw(root, "hotline", DAY, source), range(MACHINES)))
    assert [c.already_present for c in copies].count(False) == 1
    assert len({str(c.path) for c in copies}) == 1
    key = paths.raw_key("hotline", DAY, copies[0].sha256, source.name)
    assert root.store.read_bytes(key) == source.read_bytes()


def test_the_raw_copy_is_made_by_the_kernel_owner_only_and_independent_of_the_landing_file(
    tmp_path: Path,
) -> None:
    """On XFS or Btrfs a reflink (no second write), on ext4 (this CI) a copy inside the kernel;
    never the landing file's inode. A file that no longer holds the bytes staging read is not kept
    that way (the caller writes the bytes it read)."""
    landing = tmp_path / "landing"
    landing.mkdir()
    source = landing / "x.csv"
    source.write_bytes(b"a,b\n" * 100_000)
    empty = landing / "empty.csv"
    empty.write_bytes(b"")
    store = LocalStorage(tmp_path / "wh")
    fd, empty_fd = os.open(source, os.O_RDONLY), os.open(empty, os.O_RDONLY)
    try:
        read = source.read_bytes()
        assert store.copy_in_kernel("_raw/x/copy", fd, read) is True
        assert store.copy_in_kernel("_raw/x/copy", fd, read) is False  # there: left alone
        # bytes not as staging read them: one byte changed at the end, or one byte more or less
        changed = read[:-1] + b"!"
        for other in (changed, read + b"\n", read[:-1], b""):
            assert store.copy_in_kernel("_raw/x/wrong", fd, other) is None
        assert store.copy_in_kernel("_raw/x/empty", empty_fd, b"") is True
        assert store.copy_in_kernel("_raw/x/not-empty", empty_fd, b"a") is None
    finally:
        os.close(fd)
        os.close(empty_fd)
    assert store.read_bytes("_raw/x/copy") == source.read_bytes()
    assert store.read_bytes("_raw/x/empty") == b""
    assert not store.exists("_raw/x/wrong")
    assert store.list_dir(paths.TMP) == []

    copy = keep_raw(Warehouse.local(tmp_path / "wh"), "hotline", DAY, source)
    kept = Path(copy.path)
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    with open(source, "r+b") as f:  # rewritten in place, as some exporters do
        f.write(b"X,Y")
    assert kept.read_bytes() == b"a,b\n" * 100_000
    assert kept.stat().st_ino != source.stat().st_ino
