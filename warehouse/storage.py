"""Storage backends. Callers speak in keys (relative POSIX paths from `kesu.warehouse.paths`);
`kesu.warehouse.Warehouse` owns the backend: a local directory (`LocalStorage`) or an
``s3://bucket/prefix`` URL (`kesu.warehouse.s3.S3Storage`).

`LocalStorage`'s promises, which publish/recover rely on: `write_bytes` and `write_stream` are
all-or-nothing (temp file under ``_kesu/tmp`` + fsync + rename), `rename` is atomic, and
everything is fsynced before the call returns. An object store keeps the first promise only;
the tables need neither (they are Delta tables, `kesu.warehouse.tables`).

Writers on several machines meet through the backend's conditional writes, never through a
lock: `create` writes a key only if it is absent (an object store's ``If-None-Match: *``, a
local ``link(2)``) and `replace` only if the key still holds what `read_tagged` returned (``If-
Match`` on its ETag; locally a compare-and-swap under a lock file, one machine being all a
local directory serves).

Locks and scratch files need a local filesystem whatever the backend: `Warehouse.state` is the
warehouse itself when it is local, else a local state directory for its URL.

Over 250 lines: the `Storage` contract and its local implementation, whose every method keeps
one of the promises above (atomic writes, conditional create and replace, fsyncs).
"""

from __future__ import annotations

import fcntl
import hashlib
import mmap
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol

from kesu.warehouse import paths

CHUNK = 1 << 20


class Storage(Protocol):
    """What the warehouse needs from a backend; `path` exists for local backends only."""

    def path(self, key: str) -> Path: ...
    def location(self, key: str) -> Path | str: ...
    def exists(self, key: str) -> bool: ...
    def is_dir(self, key: str) -> bool: ...
    def list_dir(self, key: str) -> list[str]: ...
    def size(self, key: str) -> int: ...
    def read_bytes(self, key: str) -> bytes: ...
    def sha256(self, key: str) -> str: ...
    def write_bytes(self, key: str, data: bytes, *, private: bool = False) -> None: ...
    def write_stream(self, key: str, chunks: Iterable[bytes], *, private: bool = False) -> None: ...
    def create(self, key: str, data: bytes, *, private: bool = False) -> bool: ...
    def read_tagged(self, key: str) -> tuple[bytes, str] | None: ...
    def replace(self, key: str, data: bytes, tag: str | None) -> bool: ...
    def delete(self, key: str) -> None: ...
    def delete_tree(self, key: str) -> None: ...
    def rename(self, src: str, dst: str) -> None: ...
    def rewrite_in_place(self, key: str, data: bytes) -> bool: ...


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


_FICLONE = 0x40049409  # linux/fs.h: _IOW(0x94, 9, int)


def _holds(fd: int, expected: bytes) -> bool:
    """Whether a file of ours holds exactly `expected`, compared through a mapping of its pages
    (not copied into Python). Of equal lengths, `expected` is found at offset 0 only if the two
    are the same bytes; CPython's search compares them in C, ~5 ms for a bank day's 57 MB where
    their sha256 took ~33. Only for a file no one else can cut short: one truncated under its
    mapping would kill the process."""
    size = os.fstat(fd).st_size
    if size != len(expected) or size == 0:  # an empty file cannot be mapped
        return size == len(expected)
    with mmap.mmap(fd, size, access=mmap.ACCESS_READ) as pages:
        return pages.find(expected) == 0


def _drop_cached(fd: int) -> None:
    """Let the kernel drop a file's pages from its cache, once they are on disk (after fsync).

    For the raw zone: its copies are written once and read again only to re-stage a drop or for
    an audit, so they should not take the cache's memory from what is read again (the tables,
    the landing zone). Freed at once, the same memory also serves the next drop's copy: a page
    the machine has not touched for a while costs far more to fill, on a virtual machine most
    (a 14-day backfill of bank drops: 0.054 CPU-s a drop for its copies, against 0.015 with the
    pages dropped). Advice only: where the kernel ignores it nothing changes."""
    if hasattr(os, "posix_fadvise"):  # not on macOS
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)


def _clone_or_copy(source: int, target: int) -> None:
    """All of `source`'s bytes into the empty `target`, by the kernel: a clone (FICLONE) where
    the filesystem can, else `copy_file_range` (the same filesystem; any on Linux >= 5.19).
    Raises OSError where neither works."""
    try:
        fcntl.ioctl(target, _FICLONE, source)
        return
    except OSError:
        pass
    done = 0
    while copied := os.copy_file_range(source, target, 1 << 30, done, done):
        done += copied


class LocalStorage:
    def __init__(self, root: Path) -> None:
        # resolved once, here: each key's path is then proven against it without resolving the
        # root again (`paths.under_root`)
        self.root = Path(os.path.realpath(root))
        self._real_root = str(self.root)

    def path(self, key: str) -> Path:
        return paths.under_root(self.root, key, real_root=self._real_root)

    def location(self, key: str) -> Path:
        return self.path(key)

    def exists(self, key: str) -> bool:
        return os.path.lexists(self.path(key))

    def is_dir(self, key: str) -> bool:
        return self.path(key).is_dir()

    def list_dir(self, key: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(key)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def size(self, key: str) -> int:
        return self.path(key).stat().st_size

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def sha256(self, key: str) -> str:
        digest = hashlib.sha256()
        with open(self.path(key), "rb") as f:
            while chunk := f.read(CHUNK):
                digest.update(chunk)
        return digest.hexdigest()

    def _ensure_dir(self, key: str, private: bool) -> Path:
        """Create the directories of `key`; private ones (and their parents in `key`) get 0700.

        The whole key is proven to stay under the root once: a prefix that left it (a symlink
        planted inside the warehouse) would take the whole key out too, so the prefixes are
        not resolved again, one by one."""
        full = self.path(key)
        if not private and os.path.isdir(full):  # most calls: made before
            return full
        self.root.mkdir(parents=True, exist_ok=True)
        path = self.root
        for part in key.split("/"):
            path = path / part
            if not path.is_dir():
                path.mkdir(exist_ok=True)
                _fsync_dir(path.parent)  # so a later rename into it survives a power cut
            if private:
                os.chmod(path, 0o700)  # explicit: mkdir's mode is filtered by the umask
        return full

    def write_bytes(self, key: str, data: bytes, *, private: bool = False) -> None:
        self.write_stream(key, [data], private=private)

    def write_stream(self, key: str, chunks: Iterable[bytes], *, private: bool = False) -> None:
        target = self.path(key)
        parent = self._ensure_dir(key.rsplit("/", 1)[0], private) if "/" in key else self.root
        tmp = self._temp(chunks, private)
        try:
            os.rename(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        _fsync_dir(parent)

    def create(self, key: str, data: bytes, *, private: bool = False) -> bool:
        """Write `key` unless it exists (then False): the temp file is linked into place, and
        link(2) refuses an existing name, so of two writers exactly one creates it."""
        target = self.path(key)
        parent = self._ensure_dir(key.rsplit("/", 1)[0], private) if "/" in key else self.root
        tmp = self._temp([data], private)
        try:
            os.link(tmp, target)
        except FileExistsError:
            return False
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(parent)
        return True

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        """The bytes of `key` and a tag naming them (their sha256), None if absent."""
        try:
            data = self.path(key).read_bytes()
        except FileNotFoundError:
            return None
        return data, hashlib.sha256(data).hexdigest()

    def replace(self, key: str, data: bytes, tag: str | None) -> bool:
        """Write `key` only if it still holds the bytes `tag` names (None: only if absent)."""
        if tag is None:
            return self.create(key, data)
        with self._cas_lock():
            now = self.read_tagged(key)
            if now is None or now[1] != tag:
                return False
            self.write_bytes(key, data)
            return True

    @contextmanager
    def _cas_lock(self) -> Iterator[None]:
        self._ensure_dir(paths.CAS_LOCK.rsplit("/", 1)[0], private=True)
        fd = os.open(self.path(paths.CAS_LOCK), os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held for one small write: wait
            yield
        finally:
            os.close(fd)

    def _temp(self, chunks: Iterable[bytes], private: bool) -> Path:
        """`chunks` in a new fsynced file under the temp folder (the caller renames, links or
        removes it); a chunk source that raises leaves nothing."""
        tmp = self._ensure_dir(paths.TMP, private=True) / uuid.uuid4().hex
        # the temp dir is 0700, so a public file may be born with its final, umask-filtered mode
        mode = 0o600 if private else 0o666
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
        try:
            with os.fdopen(fd, "wb") as f:
                if private:
                    os.fchmod(f.fileno(), 0o600)  # explicit, whatever the umask
                for chunk in chunks:
                    f.write(chunk)
                f.flush()
                os.fsync(f.fileno())
                if private:  # the only private files are the raw zone's copies: `_drop_cached`
                    _drop_cached(f.fileno())
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp

    def copy_in_kernel(self, key: str, source: int, expected: bytes) -> bool | None:
        """Create `key` (owner-only) as a copy of the open file `source`, made by the kernel,
        which must hold exactly the bytes `expected` (as the caller read and hashed them). A
        copy-on-write clone where the filesystem shares extents (XFS, Btrfs: FICLONE, no data
        written); else copied inside the kernel from the page cache (`copy_file_range`; ext4:
        ~0.03-0.05 CPU-s with the check for a bank day's 57 MB of calls, where writing the
        bytes Python holds took 0.12-0.2). True: created; False: `key` existed (left alone); None:
        cannot (another filesystem, no such call, the file changed since it was read) — the
        caller writes them."""
        target = self.path(key)
        parent = self._ensure_dir(key.rsplit("/", 1)[0], private=True)
        tmp = self._ensure_dir(paths.TMP, private=True) / uuid.uuid4().hex
        fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        try:
            try:
                _clone_or_copy(source, fd)
            except OSError:
                return None
            if not _holds(fd, expected):  # the landing file changed since it was read
                return None
            os.fsync(fd)
            _drop_cached(fd)
            try:
                os.link(tmp, target)
            except FileExistsError:
                return False
            _fsync_dir(parent)
            return True
        finally:
            os.close(fd)
            tmp.unlink(missing_ok=True)

    def rewrite_in_place(self, key: str, data: bytes) -> bool:
        """Overwrite `key` within the disk blocks it already holds: for a full disk, which refuses
        an atomic write its temp file (a run's last ledger record over its "running" one, which
        would otherwise stay "running"). Not atomic: a reader at that moment may see a torn
        record. False, nothing written, if the file is missing or `data` needs more blocks."""
        try:
            fd = os.open(self.path(key), os.O_WRONLY)
        except FileNotFoundError:
            return False
        try:
            if len(data) > os.fstat(fd).st_blocks * 512:
                return False
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.ftruncate(fd, len(data))
            os.fsync(fd)
        finally:
            os.close(fd)
        return True

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def delete_tree(self, key: str) -> None:
        path = self.path(key)
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)

    def rename(self, src: str, dst: str) -> None:
        a, b = self.path(src), self.path(dst)
        if "/" in dst:
            self._ensure_dir(dst.rsplit("/", 1)[0], private=False)
        os.rename(a, b)
        _fsync_dir(a.parent)
        _fsync_dir(b.parent)
