"""The warehouse: the one door to storage, built once from settings and passed around.

A `Warehouse` knows where the data lives (a local directory, or an ``s3://bucket/prefix`` URL
with its connection options) and owns everything built from that: the `Storage` backend
(`LocalStorage` or `kesu.warehouse.s3.S3Storage`, made on first use and kept), the local state
where locks and scratch live (the warehouse itself when local, else a state directory for the
URL), and what deltalake and Polars need to open its tables (`table_uri`, `storage_options`).

It is the only place that tells a local warehouse from a remote one. It pickles (a Dask worker
receives it by value): the boto3 client stays behind and is built again where it is used.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kesu.warehouse import paths
from kesu.warehouse.storage import LocalStorage, Storage

if TYPE_CHECKING:
    from kesu.warehouse.s3 import S3Options, S3Storage

OBJECT_STORE_SCHEMES = ("s3://", "gs://", "az://")


class Warehouse:
    """One warehouse: local or on S3. Build it with `local`, `s3`, `temporary`, `at` or
    `from_settings`; `str()` gives the location as the user wrote it (for messages)."""

    def __init__(self, location: Path | str, options: S3Options | None = None) -> None:
        self.remote = self.names_object_store(location)
        if self.remote != (options is not None):
            raise ValueError(f"{location}: S3 options go with an s3:// URL, and only with one")
        self.location: Path | str = location if self.remote else Path(location).absolute()
        self.options = options
        self._store: Storage | None = None
        self._checked = False
        self._guard = threading.Lock()

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def local(cls, path: Path | str) -> Warehouse:
        return cls(Path(path))

    @classmethod
    def s3(cls, url: str, options: S3Options | None = None) -> Warehouse:
        """`options` default to the `KESU_S3_*` variables of this process."""
        from kesu.warehouse import s3  # boto3 (~0.3 s) only for an s3:// warehouse

        if not url.startswith("s3://"):
            raise ValueError(f"not an s3:// warehouse URL: {url!r}")
        s3.split_url(url)  # a malformed URL fails here, not at the first request
        return cls(url, options if options is not None else s3.S3Options.from_env(os.environ))

    @classmethod
    def temporary(cls) -> Warehouse:
        """A new empty local warehouse in a temporary directory (tests); `remove` deletes it."""
        return cls.local(tempfile.mkdtemp(prefix="kesu-warehouse-"))

    @classmethod
    def at(cls, location: Path | str, options: S3Options | None = None) -> Warehouse:
        """The warehouse at a path or URL as a user gives it (``--warehouse``)."""
        if cls.names_object_store(location):
            if not str(location).startswith("s3://"):
                raise ValueError(f"warehouse {location}: only s3:// object stores are supported")
            return cls.s3(str(location), options)
        return cls.local(location)

    @classmethod
    def from_settings(cls, settings: Any) -> Warehouse:
        """The warehouse of `kesu.flows.config.Settings` (its location and S3 options)."""
        return cls.at(settings.warehouse, settings.object_store)

    @staticmethod
    def names_object_store(location: Path | str) -> bool:
        """Whether `location` is an object-store URL (kept as a string: Path("s3://b") would
        mangle it)."""
        return isinstance(location, str) and location.startswith(OBJECT_STORE_SCHEMES)

    # -- what it owns -------------------------------------------------------------------------
    @property
    def store(self) -> Storage:
        """The storage backend, built on first use and kept (thread-safe)."""
        if self._store is None:
            with self._guard:
                if self._store is None:
                    self._store = self._s3() if self.remote else LocalStorage(Path(self.location))
        return self._store

    def _s3(self) -> S3Storage:
        from kesu.warehouse.s3 import s3_storage

        assert self.options is not None
        return s3_storage(str(self.location), self.options)

    def _local_store(self) -> LocalStorage:
        """`store`, for a local warehouse (whose store is always a `LocalStorage`)."""
        store = self.store
        assert isinstance(store, LocalStorage), "a local warehouse's store"
        return store

    @property
    def state(self) -> LocalStorage:
        """Where locks and scratch live: the warehouse itself if local, else its state dir."""
        if not self.remote:
            return self._local_store()
        from kesu.warehouse.s3 import state_dir

        assert self.options is not None
        return LocalStorage(state_dir(str(self.location), self.options))

    def table_uri(self, table: str) -> str:
        """Where a Delta table lives: a local directory or an ``s3://`` prefix."""
        key = paths.table_key(table)
        if self.remote:
            return f"{str(self.location).rstrip('/')}/{key}"
        # proven under the root, resolved once when the store was opened
        return str(self._local_store().path(key))

    def storage_options(self) -> dict[str, str] | None:
        """deltalake's and Polars' options: endpoint and credentials on S3, else none.

        The first call checks that the bucket answers, so that a wrong bucket, endpoint or
        credentials fail with kesu's one-line `ObjectStoreError` rather than delta-rs' own words.
        """
        if not self.remote:
            return None
        store = self._remote_store()
        options = store.polars_options()
        if not self._checked:
            store.check()
            self._checked = True
        return options

    def _remote_store(self) -> S3Storage:
        from kesu.warehouse.s3 import S3Storage

        store = self.store
        assert isinstance(store, S3Storage)
        return store

    def prepare(self) -> None:
        """Before a run writes: create a local root; check that a remote one answers."""
        if self.remote:
            self._remote_store().check()
        else:
            Path(self.location).mkdir(parents=True, exist_ok=True)

    def exists(self) -> bool:
        """A local warehouse is a directory; a remote one a prefix holding kesu's ledger or a
        table (one list call; a missing bucket is a clear error). A bucket that answers is not
        enough: a mistyped prefix is empty, and a command that looks after tables (`maintain`,
        `migrate`) would find nothing to do and say nothing. Runs that write (ingest) do not
        ask: they create a new warehouse (`prepare`)."""
        if self.remote:
            return bool(self._remote_store().top_level() & paths.WAREHOUSE_TOP)
        return Path(self.location).is_dir()

    def remove(self) -> None:
        """Delete a local warehouse whole (what `temporary` made)."""
        if self.remote:
            raise ValueError(f"{self}: kesu never deletes an object-store warehouse")
        shutil.rmtree(self.location, ignore_errors=True)

    # -- pickling, comparing, printing --------------------------------------------------------
    def __getstate__(self) -> dict[str, Any]:
        return {"location": self.location, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["location"], state["options"])  # type: ignore[misc]

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Warehouse):
            return NotImplemented
        return (self.location, self.options) == (other.location, other.options)

    def __hash__(self) -> int:
        return hash((str(self.location), self.options))

    def __str__(self) -> str:
        return str(self.location)

    def __repr__(self) -> str:
        return f"Warehouse({str(self.location)!r})"
