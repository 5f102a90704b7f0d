"""The restricted raw zone: byte-for-byte originals, content-addressed, owner-only.

A copy is created only if absent (`Storage.create`: link(2) locally, a conditional PUT on an
object store), so runs on several machines keeping the same file at once write it once. Where
the warehouse is local, the kernel copies the landing file, verified against the bytes read: a
reflink where the filesystem clones (XFS, Btrfs: no second write of the bytes), else a copy
inside the kernel (ext4), not a write of the bytes Python holds. A hard link would not do: it
is the same inode, so the copy's owner-only mode would change the landing file's, and a landing
file rewritten in place would change the raw copy.

On an object store "owner-only" is the bucket policy's job (objects have no mode bits): grant
read on ``_raw/`` to kesu's identity alone.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from kesu.warehouse import paths
from kesu.warehouse.storage import CHUNK, LocalStorage, Storage

if TYPE_CHECKING:
    from kesu.warehouse.warehouse import Warehouse


@dataclass(frozen=True)
class RawCopy:
    path: Path | str  # the local path, or the object's URL
    sha256: str
    bytes: int
    already_present: bool


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def keep_raw(
    wh: Warehouse,
    feed: str,
    drop_date: date,
    source: Path,
    data: bytes | None = None,
    sha256: str | None = None,
) -> RawCopy:
    """Copy `source` to ``_raw/<feed>/<date>/<sha256>/<name>`` unless those bytes are there.

    `data`: the file's bytes as already read (`read_regular`), so the copy, its checksum and
    what staging reads are the same bytes, read once; `sha256`: their checksum, if computed.
    """
    store = wh.store
    paths.feed_key(feed)
    if data is None:
        data, sha256 = read_regular(source), None
    sha256, size = sha256 or hashlib.sha256(data).hexdigest(), len(data)
    key = paths.raw_key(feed, drop_date, sha256, source.name)
    if store.exists(key):
        present = store.size(key) == size
        if not present:  # not these bytes after all (their name says they should be)
            store.write_bytes(key, data, private=True)
    else:  # another run (on another machine, too) may keep the same bytes at the same time
        created = _copied_in_kernel(store, key, source, data)
        if created is None:
            created = store.create(key, data, private=True)
        present = not created
    return RawCopy(store.location(key), sha256, size, present)


def _copied_in_kernel(store: Storage, key: str, source: Path, data: bytes) -> bool | None:
    """The landing file copied by the kernel where the warehouse is local (a reflink where the
    filesystem clones), if the copy holds `data`: whether it created `key`; None where it
    cannot (an object store, or the file changed since it was read)."""
    if not isinstance(store, LocalStorage):
        return None
    try:
        fd = _open_regular(source)
    except (OSError, ValueError):  # not a file of this machine (an s3:// landing zone)
        return None
    try:
        return store.copy_in_kernel(key, fd, data)
    finally:
        os.close(fd)


def read_regular(source: Path) -> bytes:
    """The bytes of a regular file, opened without following a symlink at its last component.

    Read in one piece into a buffer of the file's size: joining 1 MB chunks copied every byte
    twice (a bank day's calls: 0.09 s against 0.04)."""
    with os.fdopen(_open_regular(source), "rb", buffering=0) as f:
        return f.readall()


def _open_regular(source: Path) -> int:
    """Open without following a symlink at the last component; refuse anything not a file."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as e:
        if os.path.islink(source):
            raise ValueError(f"refusing symlink {source}") from e
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ValueError(f"not a regular file: {source}")
    return fd
