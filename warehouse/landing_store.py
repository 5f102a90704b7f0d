"""The landing zone as the ingest reaches it: a local folder or ``s3://bucket/prefix``.

Both readers offer what the ingest needs and nothing more: a feed's files for a drop date
(`list_drop`, same layout and rules as `kesu.warehouse.landing.list_drop`), one file's bytes
(`read`), a drop folder that is a symbolic link (`linked_folder`, local only) and `check` for
the preflight. A file is named by its path (local) or its URL (S3); either way its last part is
the file's name. The readers are plain values (a path, or a URL and its `S3Options`), so they
pickle to a Dask worker; the boto3 client is built in the process that uses it.
"""

from __future__ import annotations

import os
from collections.abc import Collection
from contextlib import suppress
from dataclasses import dataclass, replace
from datetime import date
from functools import lru_cache
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING

from kesu.warehouse import landing
from kesu.warehouse.landing import ACCEPTED_SUFFIXES, DropListing
from kesu.warehouse.raw import read_regular

if TYPE_CHECKING:
    from kesu.warehouse.s3 import S3Options, S3Storage

# A landing file is read whole into memory (raw copy, checksum and staging share the bytes): a
# bank's day is ~100 MB, so a file over this is refused by name, not read (split the export).
MAX_FILE_BYTES = 2 << 30


class LandingMissing(ValueError):
    """The landing zone itself is not there (a wrong path or prefix, not a day without data)."""


@dataclass(frozen=True)
class LocalLanding:
    root: Path
    max_bytes: int = MAX_FILE_BYTES

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        if not self.root.is_dir():
            raise LandingMissing(f"landing zone {self.root} does not exist")

    def linked_folder(self, feed: str, drop_date: date) -> Path | None:
        """The feed's or the drop's folder if it is a symbolic link (never followed: it could
        lead out of the landing zone). `list_drop` treats a linked drop folder as missing but
        follows a linked feed folder, and records neither; the ingest makes both visible."""
        root = self.root.resolve()
        for folder in (root / feed, root / feed / drop_date.isoformat()):
            if folder.is_symlink():
                return folder
        return None

    def list_drop(self, feed: str, drop_date: date) -> DropListing:
        listing = landing.list_drop(self.root, feed, drop_date)
        large = [p for p in listing.files if Path(p).stat().st_size > self.max_bytes]
        why = too_large(self.max_bytes)
        if not large:
            return listing
        return replace(
            listing,
            files=[p for p in listing.files if p not in large],
            skipped=sorted([*listing.skipped, *((Path(p).name, why) for p in large)]),
        )

    def file_sizes(self, feed: str, days: Collection[date]) -> dict[date, dict[str, int]]:
        """{drop date: {name: bytes}} of the files `list_drop` would read on each of `days`."""
        found: dict[date, dict[str, int]] = {}
        for day in days:
            found[day] = {}
            for file in self.list_drop(feed, day).files:
                with suppress(FileNotFoundError):  # removed since the listing
                    found[day][Path(file).name] = Path(file).stat().st_size
        return found

    def read(self, file: Path | str) -> bytes:
        """The file's bytes, opened without following a symlink (`raw.read_regular`)."""
        return read_regular(Path(file))


@dataclass(frozen=True)
class S3Landing:
    url: str  # s3://bucket[/prefix], without a trailing slash
    options: S3Options
    max_bytes: int = MAX_FILE_BYTES

    def describe(self) -> str:
        return self.url

    def _store(self) -> S3Storage:
        return _storage(self.url, self.options)

    def check(self) -> None:
        """`ObjectStoreError` unless the bucket answers; `LandingMissing` if nothing is under
        the prefix (S3 has no empty folders: a wrong prefix looks exactly like that)."""
        store = self._store()
        store.check()
        prefix = f"{store.prefix}/" if store.prefix else ""
        with store._errors(""):
            found = store.client.list_objects_v2(Bucket=store.bucket, Prefix=prefix, MaxKeys=1)
        if not found.get("KeyCount"):
            raise LandingMissing(f"landing zone {self.url} holds no object (is the prefix right?)")

    def linked_folder(self, feed: str, drop_date: date) -> None:
        return None  # an object store has no links

    def list_drop(self, feed: str, drop_date: date) -> DropListing:
        """The drop's readable objects in name order; "sub-folders", hidden or temporary names,
        other types and objects over the size limit are listed as skipped. A drop "folder" is
        there when any object is under it (an empty one exists only as a folder marker)."""
        key = f"{feed}/{drop_date.isoformat()}"
        store = self._store()
        names = store.list_dir(key)  # objects and "sub-folders"
        sizes = store.list_sizes(key)
        folder = store.location(key)
        if not names:
            return DropListing(feed, drop_date, folder, exists=False)
        files: list[str] = []
        skipped: list[tuple[str, str]] = []
        for name in names:
            if name == "":
                continue  # the folder marker of the drop folder itself
            why = self._not_read(name, sizes.get(name))
            if why:
                skipped.append((name, why))
            else:
                files.append(f"{folder}/{name}")
        return DropListing(feed, drop_date, folder, True, files, skipped)

    def _not_read(self, name: str, size: int | None) -> str | None:
        """Why `list_drop` skips the entry `name` of a drop folder (`size`: None for a
        "sub-folder"), or None for a file it reads."""
        if name.startswith((".", "~$")):
            return "hidden or temporary file"
        if size is None:
            return "not a regular file"
        if not name.lower().endswith(ACCEPTED_SUFFIXES):
            return "not a .csv, .xlsx or .xls file"
        if size > self.max_bytes:
            return too_large(self.max_bytes)
        return None

    def file_sizes(self, feed: str, days: Collection[date]) -> dict[date, dict[str, int]]:
        """{drop date: {name: bytes}} of the files `list_drop` would read on each of `days`, from
        one listing of the feed (a listing per day would take minutes over years of drops)."""
        store = self._store()
        start = len(store._key(feed)) + 1
        wanted = {day.isoformat(): day for day in days}
        found: dict[date, dict[str, int]] = {day: {} for day in days}
        for key, size in store._sizes_under(feed):
            folder, _, name = key[start:].partition("/")
            day = wanted.get(folder)
            if day is not None and name and "/" not in name and not self._not_read(name, size):
                found[day][name] = size
        return found

    def visible_days(self, feed: str) -> set[str]:
        """Names of the feed's "folders" holding something not hidden (one listing of the
        feed): what `kesu status` calls a landed drop."""
        store = self._store()
        start = len(store._key(feed)) + 1
        found = set()
        for key in store._all_under(feed):
            day, _, name = key[start:].partition("/")
            if name and not name.startswith("."):
                found.add(day)
        return found

    def read(self, file: Path | str) -> bytes:
        """The object's bytes; `file` is a URL `list_drop` gave (refused if it grew too large)."""
        store = self._store()
        url = str(file)
        if not url.startswith(self.url + "/"):
            raise ValueError(f"{url} is not in the landing zone {self.url}")
        key = url[len(self.url) + 1 :]
        size = store.size(key)
        if size > self.max_bytes:
            name = PurePosixPath(key).name
            raise ValueError(f"{name}: {too_large(self.max_bytes)}; not read")
        return store.read_bytes(key)


Landing = LocalLanding | S3Landing


def too_large(limit: int) -> str:
    """Why a file over `limit` bytes is not read."""
    size = f"{limit >> 20} MiB" if limit >= 1 << 20 else f"{limit} bytes"
    return f"larger than {size} (split the export)"


def open_landing(root: Path | str, options: S3Options | None = None) -> Landing:
    """The reader of the landing zone `root`: a local path, or an s3:// URL and its options
    (`kesu.flows.config.load_settings` resolves them from ``[s3]`` and ``KESU_S3_*``)."""
    if isinstance(root, str) and root.startswith("s3://"):
        from kesu.warehouse import s3  # boto3 only for an s3:// landing zone

        s3.split_url(root)
        return S3Landing(root.rstrip("/"), options or s3.S3Options.from_env(os.environ))
    return LocalLanding(Path(root))


@lru_cache(maxsize=16)  # a boto3 client costs ~50 ms to build and is thread-safe: share it
def _storage(url: str, options: S3Options) -> S3Storage:
    from kesu.warehouse.s3 import S3Storage

    return S3Storage(url, options)
