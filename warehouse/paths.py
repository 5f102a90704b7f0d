"""Warehouse layout: every key (a relative POSIX path under the warehouse root) is built here.

Keys are checked piece by piece (no separators, no ``..``, no hidden or ``_`` names where a
table lives); `under_root` then proves the resolved path stays under the root, which also
catches a symlink planted inside the warehouse.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from datetime import date
from pathlib import Path

from kesu.transforms.columns import FEEDS, STAGED_TABLE

QUARANTINE = "quarantine"  # the tables of rows not loaded: quarantine/<feed>
RAW = "_raw"
LEDGER = "_ledger"
STAGING = "_kesu/staging"
TMP = "_kesu/tmp"
LOCK = "_kesu/lock"
CAS_LOCK = "_kesu/locks/compare-and-swap.lock"  # local `replace`: one small write at a time
PUBLISHING = "_kesu/publishing"  # object stores: one marker per publish under way

_TABLE = re.compile(r"[a-z][a-z0-9_]*(/[a-z][a-z0-9_]*)*")
_FEED = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_PARTITION = re.compile(r"[a-z][a-z0-9_]*=[A-Za-z0-9][A-Za-z0-9_-]*")
_PART_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*\.parquet")
_RUN_ID = re.compile(r"\d{8}T\d{6}Z-[0-9a-f]{6}")
_VERSION = re.compile(r"v\d{8}T\d{12}Z-[0-9a-f]{6}")
_SHA256 = re.compile(r"[0-9a-f]{64}")
_UNSAFE = re.compile(r"[^A-Za-z0-9_-]+")


def _checked(value: str, pattern: re.Pattern[str], what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"invalid {what}: {value!r}")
    return value


def plain_name(name: str) -> str:
    """A single path segment from outside (e.g. an original file name); CJK is fine."""
    bad = not name or name in (".", "..") or "/" in name or "\x00" in name
    if bad or name.startswith("."):
        raise ValueError(f"not a plain file name: {name!r}")
    return name


def table_key(table: str) -> str:
    return _checked(table, _TABLE, "table name")


def quarantine_table(feed: str) -> str:
    """The table holding the rows of `feed` that were not loaded: `quarantine/<feed>`."""
    return table_key(f"{QUARANTINE}/{feed_key(feed)}")


def partition_key(drop_date: date) -> str:
    return f"drop_date={drop_date.isoformat()}"


def check_partition(partition: str) -> str:
    return _checked(partition, _PARTITION, "partition")


def check_part_file(name: str) -> str:
    return _checked(name, _PART_FILE, "part file name")


def check_run_id(run_id: str) -> str:
    return _checked(run_id, _RUN_ID, "run id")


def feed_key(feed: str) -> str:
    return _checked(feed, _FEED, "feed name")


# every table a drop writes: each feed's staged rows and its quarantine
TABLE_DIRS = (*STAGED_TABLE.values(), *map(quarantine_table, FEEDS))
# what kesu writes at a warehouse's top: its ledger and its tables (not `_kesu/`, whose locks
# and scratch a command may leave beside a path that holds no warehouse)
WAREHOUSE_TOP = frozenset({LEDGER, *(t.split("/")[0] for t in TABLE_DIRS)})


def partition_dir_key(table: str, partition: str) -> str:
    return f"{table_key(table)}/{check_partition(partition)}"


def check_version(version: str) -> str:
    return _checked(version, _VERSION, "partition version")


def version_dir_key(table: str, partition: str, version: str) -> str:
    """Object stores: ``<table>/<partition>/<version>``, one immutable folder per publish."""
    return f"{partition_dir_key(table, partition)}/{check_version(version)}"


def publishing_key(version: str) -> str:
    return f"{PUBLISHING}/{check_version(version)}.json"


def manifest_dir_key(table: str) -> str:
    return f"{LEDGER}/partitions/{table_key(table)}"


def manifest_key(table: str, partition: str) -> str:
    return f"{LEDGER}/partitions/{table_key(table)}/{check_partition(partition)}.json"


def run_key(run_id: str) -> str:
    return f"{LEDGER}/runs/{check_run_id(run_id)}.json"


def raw_key(feed: str, drop_date: date, sha256: str, name: str) -> str:
    _checked(sha256, _SHA256, "sha256")
    return f"{RAW}/{feed_key(feed)}/{drop_date.isoformat()}/{sha256}/{plain_name(name)}"


def safe_part_name(source_name: str) -> str:
    """``part-<ASCII stem>-<8 hex of sha256(source_name)>.parquet``; the hash keeps names unique."""
    base = re.split(r"[/\\]", source_name)[-1]
    stem = base.rsplit(".", 1)[0] if "." in base.lstrip(".") else base
    clean = _UNSAFE.sub("_", stem).strip("_-")[:60] or "file"
    digest = hashlib.sha256(source_name.encode("utf-8")).hexdigest()[:8]
    return f"part-{clean}-{digest}.parquet"


def under_root(root: Path, key: str, *, real_root: str | None = None) -> Path:
    """The local path of `key`, proven (after resolving symlinks) to stay under `root`.

    `real_root`: `root` already resolved (`os.path.realpath`), by a caller that asks for many
    paths under it (a drop asks for ~80)."""
    parts = key.split("/")
    if key.startswith("/") or any(p in ("", ".", "..") or "\x00" in p for p in parts):
        raise ValueError(f"unsafe warehouse key: {key!r}")
    base = os.path.realpath(root) if real_root is None else real_root
    path = os.path.join(base, *parts)
    if _has_symlink(base, parts):  # only then can the path lead elsewhere
        real = os.path.realpath(path)
        if real != base and not real.startswith(base.rstrip(os.sep) + os.sep):
            raise ValueError(f"{key!r} escapes the warehouse root {base}")
    return Path(path)


def _has_symlink(base: str, parts: list[str]) -> bool:
    """Whether a part of the key, as it stands under the real directory `base`, is a symlink.

    One `lstat` per existing part, from the root down, and none below the first that does not
    exist: `os.path.realpath` of the whole path looked at every part of the root too, at ~85 us
    a call, where this takes ~10."""
    path = base
    for part in parts:
        path = f"{path}/{part}"
        try:
            if stat.S_ISLNK(os.lstat(path).st_mode):
                return True
        except OSError:  # absent (nothing under it exists either), or under a plain file
            return False
    return False


def table_dir(root: Path, table: str) -> Path:
    return under_root(root, table_key(table))
