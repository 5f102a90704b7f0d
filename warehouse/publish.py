"""Atomic, idempotent replacement of one table partition, and recovery after a crash.

A publish goes through a work dir ``_kesu/staging/<id>/`` on the same filesystem:

1. write every file to ``<work>/swap/`` (fsynced)   kill → no intent: recover deletes work
2. same names and sha256 as live? → delete work, "unchanged" (no live file touched; the
   manifest is rewritten only if it disagrees with the files)
3. write ``<work>/intent.json`` (atomic)           kill → live old: recover deletes work
4. swap ``<work>/swap`` with the live partition    kill → live new, manifest old: recover
                                                     writes the manifest kept in the intent
5. write ``_ledger/partitions/<table>/<partition>.json``
6. delete ``<work>`` (now holding the old files)    kill → recover deletes the rest

A removal writes the intent, renames the live partition to ``<work>/swap`` (atomic), deletes the
manifest, then the work dir; recover deletes a manifest whose partition is gone.

On an object store (no rename) a partition is a set of immutable versions and the manifest is
the pointer to the live one: see `kesu.warehouse.versioned`, which `publish_partition` and `recover`
hand ``s3://`` roots to.

Step 4 is one ``renameat2(RENAME_EXCHANGE)`` (or a plain rename when the partition is new), so
readers see the partition fully old or fully new. Where the exchange is unsupported it becomes
rename live → ``<work>/aside`` then rename ``<work>/swap`` → live: between those two renames the
partition is briefly missing, and a kill there is undone by recover (aside is put back).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import uuid
from collections.abc import Mapping
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import polars as pl
from kesu.warehouse import locks, paths
from kesu.warehouse.storage import LocalStorage, Storage, is_remote, storage_for

Action = Literal["created", "replaced", "unchanged", "removed", "absent"]


@dataclass(frozen=True)
class PublishedFile:
    name: str
    rows: int
    sha256: str
    bytes: int


@dataclass
class PublishedPartition:
    table: str
    partition: str
    files: list[PublishedFile] = field(default_factory=list)
    action: Action = "unchanged"

    def to_jsonable(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_jsonable(cls, data: Mapping[str, Any]) -> PublishedPartition:
        files = [PublishedFile(**f) for f in data["files"]]
        if "version" in data:
            version, previous = data["version"], data.get("previous")
            return VersionedPartition(
                data["table"], data["partition"], files, data["action"], version, previous
            )
        return cls(data["table"], data["partition"], files, data["action"])


@dataclass
class VersionedPartition(PublishedPartition):
    """A partition on an object store (warehouse.versioned): its manifest is the pointer to the
    live version's folder, and names the version before it (kept for readers still on it)."""

    version: str = ""
    previous: str | None = None


def warehouse_lock(root: Path | str) -> AbstractContextManager[None]:
    """Exclusive use of the warehouse: raises `WarehouseBusy` while any run is live (runs hold
    the same lock shared, see `kesu.warehouse.locks`); waiting runs start when it is released."""
    return storage_for(root).lock()


def publish_partition(
    root: Path | str, table: str, partition: str, files: Mapping[str, pl.DataFrame]
) -> PublishedPartition:
    store = storage_for(root)
    live = paths.partition_dir_key(table, partition)
    column = paths.check_partition(partition).split("=", 1)[0]
    for name, frame in files.items():
        paths.check_part_file(name)
        if column in frame.columns:
            raise ValueError(f"{name}: {column!r} comes from the partition directory, drop it")
    if is_remote(root):
        from kesu.warehouse import versioned  # it builds on this module's types

        return versioned.publish(store, table, partition, files)
    if not files:
        return _remove(store, table, partition)
    work = f"{paths.STAGING}/{uuid.uuid4().hex}"
    try:
        staged = [_stage(store, work, name, files[name]) for name in sorted(files)]
        if _live_matches(store, live, staged):
            store.delete_tree(work)
            result = PublishedPartition(table, partition, staged, "unchanged")
            _reconcile_manifest(store, result, _state_of(staged))
            return result
        action: Action = "replaced" if store.exists(live) else "created"
        result = PublishedPartition(table, partition, staged, action)
        _write_intent(store, work, "replace", result)
        _swap_in(store, work, live)
        _write_manifest(store, result)
        _cleanup(store, work)
        return result
    except BaseException:
        _abandon(store, work)
        raise


def read_partition_manifest(
    root: Path | str, table: str, partition: str
) -> PublishedPartition | None:
    return _read_manifest(storage_for(root), table, partition)


def recover(root: Path | str) -> list[str]:
    """Finish or undo what crashed publishes left; run at the start of every run.

    Only while no other run is live (`locks.idle`): a live publish's work dir and temp files look
    exactly like a crashed one's. With a run live this does nothing and returns []; what a crash
    left then waits for a run that starts alone (harmless meanwhile: a re-run of the drop sees
    its manifest disagree with the files and publishes again).
    """
    with locks.idle(root) as idle:
        if not idle:
            return []
        if is_remote(root):
            from kesu.warehouse import versioned

            return versioned.recover(storage_for(root))
        return _recover_all(storage_for(root))


def partition_intact(root: Path | str, table: str, partition: str) -> bool:
    """The live partition holds exactly the files its manifest lists (cheap: sizes only)."""
    store = storage_for(root)
    if is_remote(root):
        from kesu.warehouse import versioned

        return versioned.intact(store, table, partition)
    manifest = _read_manifest(store, table, partition)
    folder = paths.table_dir(Path(root), table) / partition
    if manifest is None or manifest.action in ("removed", "absent"):
        return not folder.exists()
    for f in manifest.files:
        target = folder / f.name
        if not target.is_file() or target.stat().st_size != f.bytes:
            return False
    return True


def _recover_all(store: Storage) -> list[str]:
    done: list[str] = []
    for name in store.list_dir(paths.STAGING):
        done += _recover_work(store, f"{paths.STAGING}/{name}")
    leftovers = store.list_dir(paths.TMP)
    for name in leftovers:
        store.delete_tree(f"{paths.TMP}/{name}")
    if leftovers:
        done.append(f"removed {len(leftovers)} unfinished temp file(s) in {paths.TMP}")
    return done


def _parquet_bytes(frame: pl.DataFrame) -> bytes:
    # Polars writes no timestamp, but its pages follow the chunk layout: rechunk so that equal
    # frames give equal bytes however they were built (tested).
    buf = io.BytesIO()
    # zstd level 1: a large bank's day of calls writes ~25% faster than at the default level 3,
    # and the files come out no larger (measured on a bank day: 11.04 MB against 11.21 MB).
    frame.rechunk().write_parquet(buf, compression="zstd", compression_level=1, statistics=True)
    return buf.getvalue()


def _stage(store: Storage, work: str, name: str, frame: pl.DataFrame) -> PublishedFile:
    data = _parquet_bytes(frame)
    store.write_bytes(f"{work}/swap/{name}", data)
    return PublishedFile(name, frame.height, hashlib.sha256(data).hexdigest(), len(data))


def _state_of(files: list[PublishedFile]) -> dict[str, tuple[int, str]]:
    return {f.name: (f.bytes, f.sha256) for f in files}


def _live_state(store: Storage, live: str) -> dict[str, tuple[int, str]] | None:
    """{name: (bytes, sha256)} of the live partition, None if absent (every file is hashed)."""
    if not store.is_dir(live):
        return None
    names = store.list_dir(live)
    return {n: (store.size(f"{live}/{n}"), store.sha256(f"{live}/{n}")) for n in names}


def _live_matches(store: Storage, live: str, staged: list[PublishedFile]) -> bool:
    names = store.list_dir(live)
    if names != sorted(f.name for f in staged):  # cheap checks first: names, then sizes
        return False
    if any(store.size(f"{live}/{f.name}") != f.bytes for f in staged):
        return False
    return _live_state(store, live) == _state_of(staged)


def _write_intent(store: Storage, work: str, op: str, result: PublishedPartition) -> None:
    intent = {"op": op, "result": result.to_jsonable()}
    store.write_bytes(f"{work}/intent.json", json.dumps(intent, sort_keys=True).encode())


def _swap_in(store: Storage, work: str, live: str) -> None:
    if not store.exists(live):
        store.rename(f"{work}/swap", live)
    elif not store.exchange(f"{work}/swap", live):
        store.rename(live, f"{work}/aside")  # partition missing until the next line
        store.rename(f"{work}/swap", live)


def _remove(store: Storage, table: str, partition: str) -> PublishedPartition:
    live = paths.partition_dir_key(table, partition)
    result = PublishedPartition(table, partition, [], "removed")
    if not store.exists(live):
        store.delete(paths.manifest_key(table, partition))
        result.action = "absent"
        return result
    work = f"{paths.STAGING}/{uuid.uuid4().hex}"
    try:
        _write_intent(store, work, "remove", result)
        store.rename(live, f"{work}/swap")
        store.delete(paths.manifest_key(table, partition))
        _cleanup(store, work)
    except BaseException:
        _abandon(store, work)
        raise
    return result


def _write_manifest(store: Storage, result: PublishedPartition) -> None:
    text = json.dumps(result.to_jsonable(), ensure_ascii=False, sort_keys=True, indent=1)
    store.write_bytes(paths.manifest_key(result.table, result.partition), text.encode())


def _read_manifest(store: Storage, table: str, partition: str) -> PublishedPartition | None:
    key = paths.manifest_key(table, partition)
    if isinstance(store, LocalStorage):
        if not store.exists(key):
            return None
        return PublishedPartition.from_jsonable(json.loads(store.read_bytes(key)))
    try:  # one GET: on an object store every exists() is a request or two
        data = store.read_bytes(key)
    except FileNotFoundError:
        return None
    return PublishedPartition.from_jsonable(json.loads(data))


def _cleanup(store: Storage, work: str) -> None:
    # the intent goes last: a kill in here leaves either the intent or nothing worth knowing
    store.delete_tree(f"{work}/swap")
    store.delete_tree(f"{work}/aside")
    store.delete(f"{work}/intent.json")
    store.delete_tree(work)


def _abandon(store: Storage, work: str) -> None:
    """After an exception (not a kill) mid-publish: undo at once rather than at the next run."""
    with contextlib.suppress(Exception):  # recover() at the next run retries; keep the 1st error
        _recover_work(store, work)


def _recover_work(store: Storage, work: str) -> list[str]:
    if not store.exists(f"{work}/intent.json"):
        if not store.exists(work):
            return []
        store.delete_tree(work)
        return [f"removed {work}: crashed before its swap, live partition untouched"]
    intent = json.loads(store.read_bytes(f"{work}/intent.json"))
    planned = PublishedPartition.from_jsonable(intent["result"])
    live = paths.partition_dir_key(planned.table, planned.partition)
    done = []
    if intent["op"] == "replace" and not store.exists(live) and store.exists(f"{work}/aside"):
        store.rename(f"{work}/aside", live)
        done.append(f"put back {live}: crashed between rename-aside and rename-in")
    done += _reconcile_manifest(store, planned, _live_state(store, live))
    _cleanup(store, work)
    return [*done, f"removed {work} ({live})"]


def _reconcile_manifest(
    store: Storage, planned: PublishedPartition, state: dict[str, tuple[int, str]] | None
) -> list[str]:
    """Make the ledger manifest describe the live files (`state`), whichever side of a swap."""
    table, partition = planned.table, planned.partition
    live = paths.partition_dir_key(table, partition)
    key = paths.manifest_key(table, partition)
    current = _read_manifest(store, table, partition)
    if state is None:
        if current is None:
            return []
        store.delete(key)
        return [f"deleted manifest of absent partition {live}"]
    if current is not None and _state_of(current.files) == state:
        return []
    if _state_of(planned.files) == state:
        _write_manifest(store, planned)
    else:
        files = [_describe(store, f"{live}/{n}", n, *state[n]) for n in sorted(state)]
        _write_manifest(store, PublishedPartition(table, partition, files, "unchanged"))
    return [f"rewrote manifest of {live} to match its files"]


def _describe(store: Storage, key: str, name: str, size: int, sha256: str) -> PublishedFile:
    rows = pl.scan_parquet(io.BytesIO(store.read_bytes(key))).select(pl.len()).collect().item()
    return PublishedFile(name, rows, sha256, size)
