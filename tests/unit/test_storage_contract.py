"""The `Storage` contract, run against both backends: a local directory and S3 (moto's server)."""

from __future__ import annotations

import hashlib
import os
from datetime import date
from pathlib import Path

import pytest
from kesu.warehouse import Warehouse
from kesu.warehouse.storage import Storage


@pytest.fixture(params=["local", "s3"])
def store(request, tmp_path: Path) -> Storage:
    if request.param == "local":
        return Warehouse.local(tmp_path / "wh").store
    return Warehouse.s3(request.getfixturevalue("s3").url()).store


def test_write_then_read_back(store: Storage) -> None:
    store.write_bytes("stg_x/drop_date=2025-01-01/part-a.parquet", b"abc")
    key = "stg_x/drop_date=2025-01-01/part-a.parquet"
    assert store.exists(key) and store.read_bytes(key) == b"abc"
    assert store.size(key) == 3
    assert store.sha256(key) == hashlib.sha256(b"abc").hexdigest()


def test_folders_are_key_prefixes(store: Storage) -> None:
    store.write_bytes("t/a/one", b"1")
    store.write_bytes("t/a/two", b"22")
    store.write_bytes("t/b/three", b"333")
    assert store.list_dir("t") == ["a", "b"]  # files and "folders", sorted, one level
    assert store.list_dir("t/a") == ["one", "two"]
    assert store.is_dir("t/a") and store.exists("t/a") and not store.is_dir("t/a/one")
    assert store.list_dir("nothing/here") == [] and not store.exists("nothing")


def test_overwrite_replaces_the_whole_object(store: Storage) -> None:
    store.write_bytes("f", b"a long first version")
    store.write_bytes("f", b"short")
    assert store.read_bytes("f") == b"short"


def test_a_stream_that_fails_writes_nothing(store: Storage) -> None:
    def chunks():
        yield b"half of it"
        raise RuntimeError("source changed")

    with pytest.raises(RuntimeError):
        store.write_stream("_raw/f/2025-01-01/x", chunks(), private=True)
    assert not store.exists("_raw/f/2025-01-01/x")
    store.write_stream("_raw/f/2025-01-01/x", iter([b"a", b"b"]), private=True)
    assert store.read_bytes("_raw/f/2025-01-01/x") == b"ab"


def test_delete_and_delete_tree(store: Storage) -> None:
    for key in ("d/1", "d/sub/2", "d/sub/3", "other"):
        store.write_bytes(key, b"x")
    store.delete("d/1")
    store.delete("d/1")  # absent: no error
    assert store.list_dir("d") == ["sub"]
    store.delete_tree("d")
    assert not store.exists("d") and store.list_dir("d") == [] and store.exists("other")


@pytest.mark.parametrize("key", ["../up", "/abs", "a//b", "a/./b", "a/../b"])
def test_unsafe_keys_are_refused(store: Storage, key: str) -> None:
    with pytest.raises(ValueError, match="unsafe warehouse key"):
        store.write_bytes(key, b"x")


def test_missing_object_raises_file_not_found(store: Storage) -> None:
    with pytest.raises(FileNotFoundError):
        store.read_bytes("no/such/object")
    with pytest.raises(FileNotFoundError):
        store.size("no/such/object")


def test_locks_and_scratch_of_an_s3_warehouse_live_in_its_local_state_dir(s3) -> None:
    from kesu.warehouse import locks, scratch

    url = s3.url()
    wh = Warehouse.s3(url)
    state = wh.state
    assert state.root.parent == Path(os.environ["KESU_STATE_DIR"])  # <KESU_STATE_DIR>/<hash>
    with locks.warehouse_lock(wh):  # flock on a local file
        assert (state.root / "_kesu" / "lock").is_file()
    with locks.drop_lock(wh, date(2025, 1, 1), timeout=1):
        assert locks.drop_is_locked(wh, date(2025, 1, 1))
    assert scratch.scratch_dir(wh, "run-1").is_relative_to(state.root)
    assert Warehouse.s3(s3.url()).state.root != state.root  # one state directory per warehouse URL
    assert s3.snapshot(url, skip=()) == {}  # nothing of it went to the bucket
