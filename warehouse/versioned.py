"""Atomic, idempotent partition publish on an object store, where nothing can be renamed.

A partition is a set of immutable version folders, and its manifest is the pointer to the live
one (a single PUT, so readers see the old pointer or the new one, never half of either):

    <table>/drop_date=D/v20260123T020000123456Z-1a2b3c/part-….parquet   one folder per publish
    _ledger/partitions/<table>/drop_date=D.json     {"files", "version", "previous", …}

1. same names and sha256 as the pointer, and its objects all there? → "unchanged": no write
2. write ``_kesu/publishing/<version>.json``        kill → recover: the version is an orphan
3. upload every file under the new version folder  kill → recover deletes the version
4. PUT the pointer (version = new, previous = old)  the switch; kill after → recover finishes 5
5. delete every version but these two, then the marker

Readers (`kesu.warehouse.reader`, `kesu.warehouse.quarantine`) open only the files the pointer
lists, so a half-uploaded version is never seen. The previous version is kept until the next publish
of the partition: a reader that read the old pointer a moment ago can still read all of it (for the
length of one run of that drop, at least). A removal (empty drop) deletes the pointer, then every
version: a reader caught mid-read by a removal fails on a missing object rather than reading a
mixture. Publishes of one partition must not overlap: the drop lock (local, see
`kesu.warehouse.locks`) ensures that for runs on one machine."""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
from collections.abc import Mapping
from datetime import UTC, datetime

import polars as pl
from kesu.warehouse import paths
from kesu.warehouse.publish import (
    Action,
    PublishedFile,
    PublishedPartition,
    VersionedPartition,
    _parquet_bytes,
    _read_manifest,
    _state_of,
    _write_manifest,
)
from kesu.warehouse.s3 import S3Storage
from kesu.warehouse.storage import Storage


def new_version(now: datetime | None = None) -> str:
    """``v<UTC time to the microsecond>Z-<6 hex>``: sorts by publish time, unique by the suffix."""
    stamp = (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    return f"v{stamp}-{secrets.token_hex(3)}"


def pointer(store: Storage, table: str, partition: str) -> VersionedPartition | None:
    """The partition's pointer; a manifest without a version (not written here) points nowhere."""
    manifest = _read_manifest(store, table, partition)
    return manifest if isinstance(manifest, VersionedPartition) else None


def file_keys(manifest: VersionedPartition) -> list[str]:
    """The keys of the files a pointer names (what readers open), in manifest order."""
    folder = paths.version_dir_key(manifest.table, manifest.partition, manifest.version)
    return [f"{folder}/{f.name}" for f in manifest.files]


def publish(
    store: Storage, table: str, partition: str, files: Mapping[str, pl.DataFrame]
) -> PublishedPartition:
    current = pointer(store, table, partition)
    if not files:
        return _remove(store, table, partition, current)
    blobs = {name: _parquet_bytes(files[name]) for name in sorted(files)}
    staged = [
        PublishedFile(name, files[name].height, hashlib.sha256(data).hexdigest(), len(data))
        for name, data in blobs.items()
    ]
    if _unchanged(store, current, staged):
        assert current is not None
        version, previous = current.version, current.previous
        return VersionedPartition(table, partition, staged, "unchanged", version, previous)
    version = new_version()
    action: Action = "created" if current is None else "replaced"
    previous = None if current is None else current.version
    result = VersionedPartition(table, partition, staged, action, version, previous)
    _mark(store, version, "replace", result)
    try:
        folder = paths.version_dir_key(table, partition, version)
        for name, data in blobs.items():
            store.write_bytes(f"{folder}/{name}", data)
        _write_manifest(store, result)  # the switch
        _collect(store, result)
        store.delete(paths.publishing_key(version))
    except BaseException:
        with contextlib.suppress(Exception):  # recover() at the next run retries; keep the 1st
            _recover_one(store, version)
        raise
    return result


def intact(store: Storage, table: str, partition: str) -> bool:
    """The pointer's files are all there with their sizes (or, without one, nothing is)."""
    current = pointer(store, table, partition)
    if current is None:
        return not store.is_dir(paths.partition_dir_key(table, partition))
    return _version_intact(store, current)


def recover(store: Storage) -> list[str]:
    """Finish or undo the publishes a crash interrupted (their markers say which)."""
    done: list[str] = []
    for name in store.list_dir(paths.PUBLISHING):
        if name.endswith(".json"):
            done += _recover_one(store, name.removesuffix(".json"))
    return done


def _unchanged(
    store: Storage, current: VersionedPartition | None, staged: list[PublishedFile]
) -> bool:
    """Same names and sha256 as the live version, whose objects are all there."""
    if current is None or _state_of(current.files) != _state_of(staged):
        return False
    return _version_intact(store, current)


def _version_intact(store: Storage, manifest: VersionedPartition) -> bool:
    if not isinstance(store, S3Storage):
        return False
    folder = paths.version_dir_key(manifest.table, manifest.partition, manifest.version)
    sizes = store.list_sizes(folder)
    return all(sizes.get(f.name) == f.bytes for f in manifest.files)


def _mark(store: Storage, marker: str, op: str, result: PublishedPartition) -> None:
    intent = {"op": op, "result": result.to_jsonable()}
    store.write_bytes(paths.publishing_key(marker), json.dumps(intent, sort_keys=True).encode())


def _collect(store: Storage, live: VersionedPartition) -> list[str]:
    """Delete the partition's versions but the live one and the one before it."""
    keep = {live.version, live.previous}
    removed = []
    for name in store.list_dir(paths.partition_dir_key(live.table, live.partition)):
        if name not in keep and _is_version(name):
            key = paths.version_dir_key(live.table, live.partition, name)
            store.delete_tree(key)
            removed.append(key)
    return removed


def _remove(
    store: Storage, table: str, partition: str, current: VersionedPartition | None
) -> PublishedPartition:
    live = paths.partition_dir_key(table, partition)
    if current is None:
        if store.is_dir(live):  # versions without a pointer: no reader can see them
            store.delete_tree(live)
        return PublishedPartition(table, partition, [], "absent")
    result = PublishedPartition(table, partition, [], "removed")
    marker = new_version()
    _mark(store, marker, "remove", result)
    store.delete(paths.manifest_key(table, partition))  # readers no longer see the partition
    store.delete_tree(live)
    store.delete(paths.publishing_key(marker))
    return result


def _recover_one(store: Storage, marker: str) -> list[str]:
    key = paths.publishing_key(marker)
    if not store.exists(key):
        return []
    intent = json.loads(store.read_bytes(key))
    planned = PublishedPartition.from_jsonable(intent["result"])
    table, partition = planned.table, planned.partition
    current = pointer(store, table, partition)
    done = []
    if intent["op"] == "remove":
        if current is None:
            store.delete_tree(paths.partition_dir_key(table, partition))
            done.append(f"finished removing {paths.partition_dir_key(table, partition)}")
    elif (
        current is not None
        and isinstance(planned, VersionedPartition)
        and (current.version == planned.version)
    ):  # switched: only the old versions' clean-up was left
        done += [f"removed old version {k}" for k in _collect(store, current)]
    elif isinstance(planned, VersionedPartition):
        orphan = paths.version_dir_key(table, partition, planned.version)
        store.delete_tree(orphan)
        done.append(f"removed orphaned version {orphan}: crashed before its pointer switch")
    store.delete(key)
    return done


def _is_version(name: str) -> bool:
    try:
        paths.check_version(name)
    except ValueError:
        return False
    return True
