"""The object-store backend: a warehouse root ``s3://bucket/prefix`` spoken to through boto3.

S3 has no rename and no directories, so `S3Storage` keeps the `Storage` contract where it can
(a single PUT is all-or-nothing, which is what `write_bytes` promises) and refuses where it
cannot (`rename`). The tables do not need either: they are Delta
tables (`kesu.warehouse.tables`), committed by delta-rs with S3's conditional writes. Locks
and scratch are inherently local: they live in a local state directory (`state_dir`), so on S3
they serialise runs on one machine only.

Endpoint, region and addressing style come from configuration (`[s3]` in kesu.toml, then
`KESU_S3_*` variables); credentials only from the standard AWS chain (environment, profile,
instance role) — never from kesu.toml. The options travel in the `kesu.warehouse.Warehouse`
(no registry): `kesu.flows.config.load_settings` resolves them, `Warehouse.from_settings` uses
them.

Over 250 lines: one class keeping the `Storage` contract on an object store, each method with
its S3 call, plus the translation of boto3's errors into messages a user can act on (`_errors`).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    EndpointConnectionError,
    NoCredentialsError,
)

ADDRESSING = ("auto", "path", "virtual")
SPOOL_BYTES = 64 << 20
# a conditional PUT that lost: the condition failed (412), or a concurrent conditional PUT of
# the same key is in flight (409)
CONDITION_FAILED = (
    "PreconditionFailed",
    "412",
    "ConditionalRequestConflict",
    "409",
)  # a raw file larger than this is spooled to disk before its upload


class ObjectStoreError(ValueError):
    """The object store refused or could not be reached: something the user must fix (bucket,
    credentials, endpoint), so a ValueError, which the CLI prints as one line naming the URL."""


@dataclass(frozen=True)
class S3Options:
    endpoint_url: str | None = None
    region: str | None = None
    addressing_style: str = "auto"
    state_dir: str | None = None  # base of the local state directories (locks, scratch)

    @classmethod
    def from_env(cls, env: Mapping[str, str], base: S3Options | None = None) -> S3Options:
        """`base` (from kesu.toml) with the `KESU_S3_*` / `KESU_STATE_DIR` variables over it."""
        base = base or cls()
        return cls(
            endpoint_url=env.get("KESU_S3_ENDPOINT") or base.endpoint_url,
            region=env.get("KESU_S3_REGION") or base.region,
            addressing_style=env.get("KESU_S3_ADDRESSING") or base.addressing_style,
            state_dir=env.get("KESU_STATE_DIR") or base.state_dir,
        )


def split_url(url: str) -> tuple[str, str]:
    """``s3://bucket/a/b`` → ("bucket", "a/b"); the prefix may be empty."""
    bucket, _, prefix = url.removeprefix("s3://").strip("/").partition("/")
    bad_prefix = prefix and any(p in ("", ".", "..") for p in prefix.split("/"))
    if not url.startswith("s3://") or not bucket or bad_prefix:
        raise ValueError(f"not an s3:// warehouse URL: {url!r} (expected s3://bucket[/prefix])")
    return bucket, prefix


def state_dir(url: str, options: S3Options) -> Path:
    """This warehouse's local state: ``<base>/<16 hex of sha256(url)>``, base ~/.cache/kesu."""
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    base = Path(options.state_dir) if options.state_dir else Path(cache) / "kesu"
    return base / hashlib.sha256(url.rstrip("/").encode()).hexdigest()[:16]


def s3_storage(url: str, options: S3Options) -> S3Storage:
    """The backend of one warehouse, shared by every `Warehouse` of it in this process (a Dask
    worker unpickles one per task)."""
    return _cached(url.rstrip("/"), options)


@lru_cache(maxsize=16)  # a boto3 client costs ~50 ms to build; it is thread-safe, so share it
def _cached(url: str, options: S3Options) -> S3Storage:
    return S3Storage(url, options)


class S3Storage:
    def __init__(self, url: str, options: S3Options) -> None:
        if options.addressing_style not in ADDRESSING:
            raise ValueError(f"[s3] addressing_style must be one of {', '.join(ADDRESSING)}")
        self.url = url.rstrip("/")
        self.bucket, self.prefix = split_url(url)
        self.options = options
        self.session = boto3.session.Session(region_name=options.region)
        config = Config(
            s3={"addressing_style": options.addressing_style},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=10,
            read_timeout=60,
        )
        self.client = self.session.client("s3", endpoint_url=options.endpoint_url, config=config)

    # -- keys -------------------------------------------------------------------------------
    def _key(self, key: str) -> str:
        parts = key.split("/")
        if key.startswith("/") or any(p in ("", ".", "..") or "\x00" in p for p in parts):
            raise ValueError(f"unsafe warehouse key: {key!r}")
        return f"{self.prefix}/{key}" if self.prefix else key

    def location(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._key(key)}"

    def path(self, key: str) -> Path:
        raise TypeError(f"{self.url} is an object store: {key} has no local path")

    # -- reading ----------------------------------------------------------------------------
    def exists(self, key: str) -> bool:
        return self._head(key) is not None or self.is_dir(key)

    def is_dir(self, key: str) -> bool:
        with self._errors(key):
            found = self.client.list_objects_v2(
                Bucket=self.bucket, Prefix=self._key(key) + "/", MaxKeys=1
            )
        return bool(found.get("KeyCount"))

    def top_level(self) -> set[str]:
        """Names directly under the warehouse's prefix (a warehouse holds a handful at its top:
        one list call), which also fails in one line on a missing bucket."""
        return set(self._children(""))

    def list_dir(self, key: str) -> list[str]:
        """Names directly under `key` (objects and "subdirectories"), like os.listdir."""
        return sorted(self._children(key))

    def list_sizes(self, key: str) -> dict[str, int]:
        """{name: bytes} of the objects directly under `key` (one listing, no HEADs)."""
        return {n: s for n, s in self._children(key).items() if s >= 0}

    def _children(self, key: str) -> dict[str, int]:
        """Names directly under `key` ("" : the warehouse's prefix itself), with their sizes (-1
        for a "subdirectory")."""
        prefix = self._key(key) + "/" if key else (f"{self.prefix}/" if self.prefix else "")
        found: dict[str, int] = {}
        with self._errors(key):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=prefix, Delimiter="/"
            )
            for page in pages:
                for common in page.get("CommonPrefixes", []):
                    found[common["Prefix"][len(prefix) :].rstrip("/")] = -1
                for obj in page.get("Contents", []):
                    found[obj["Key"][len(prefix) :]] = obj["Size"]
        return found

    def size(self, key: str) -> int:
        head = self._head(key)
        if head is None:
            raise FileNotFoundError(self.location(key))
        return int(head["ContentLength"])

    def read_bytes(self, key: str) -> bytes:
        with self._errors(key):
            try:
                body = self.client.get_object(Bucket=self.bucket, Key=self._key(key))["Body"]
            except ClientError as e:
                if _code(e) in ("NoSuchKey", "404"):
                    raise FileNotFoundError(self.location(key)) from None
                raise
            data: bytes = body.read()
        return data

    def sha256(self, key: str) -> str:
        return hashlib.sha256(self.read_bytes(key)).hexdigest()

    def _head(self, key: str) -> dict[str, Any] | None:
        with self._errors(key):
            try:
                head: dict[str, Any] = self.client.head_object(
                    Bucket=self.bucket, Key=self._key(key)
                )
            except ClientError as e:
                if _code(e) in ("404", "NoSuchKey", "NotFound"):
                    return None
                raise
        return head

    # -- writing ----------------------------------------------------------------------------
    def write_bytes(self, key: str, data: bytes, *, private: bool = False) -> None:
        """One PUT: the object appears whole or not at all. `private` is the bucket's business
        (no mode bits on S3): keep `_raw/` readable by kesu's identity only, by policy."""
        with self._errors(key):
            self.client.put_object(Bucket=self.bucket, Key=self._key(key), Body=data)

    def write_stream(self, key: str, chunks: Iterable[bytes], *, private: bool = False) -> None:
        # every chunk is read before the upload starts, so a source that raises uploads nothing
        with tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES) as spool:
            for chunk in chunks:
                spool.write(chunk)
            spool.seek(0)
            with self._errors(key):  # multipart above 8 MB: complete only when all parts are
                self.client.upload_fileobj(spool, self.bucket, self._key(key))

    def create(self, key: str, data: bytes, *, private: bool = False) -> bool:
        """One PUT with ``If-None-Match: *``: False when the key exists (or another writer's
        PUT of it is under way), so of two machines exactly one creates it."""
        with self._errors(key):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
                )
            except ClientError as e:
                if _code(e) in CONDITION_FAILED:
                    return False
                raise
        return True

    def read_tagged(self, key: str) -> tuple[bytes, str] | None:
        """The object's bytes and its ETag, None if absent."""
        with self._errors(key):
            try:
                found = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as e:
                if _code(e) in ("NoSuchKey", "404"):
                    return None
                raise
            data: bytes = found["Body"].read()
        return data, str(found["ETag"])

    def replace(self, key: str, data: bytes, tag: str | None) -> bool:
        """One PUT with ``If-Match: <tag>`` (None: ``If-None-Match: *``): False when another
        writer changed the object since it was read."""
        if tag is None:
            return self.create(key, data)
        with self._errors(key):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfMatch=tag
                )
            except ClientError as e:
                if _code(e) in (*CONDITION_FAILED, "NoSuchKey", "404"):
                    return False
                raise
        return True

    def delete(self, key: str) -> None:
        with self._errors(key):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))

    def delete_tree(self, key: str) -> None:
        keys = [self._key(key), *self._all_under(key)]
        with self._errors(key):
            for start in range(0, len(keys), 1000):
                batch = [{"Key": k} for k in keys[start : start + 1000]]
                self.client.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
                )

    def _all_under(self, key: str) -> Iterator[str]:
        yield from (found for found, _ in self._sizes_under(key))

    def _sizes_under(self, key: str) -> Iterator[tuple[str, int]]:
        """(key, bytes) of every object under `key`, at any depth (one paginated listing)."""
        with self._errors(key):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=self._key(key) + "/"
            )
            for page in pages:
                yield from ((obj["Key"], obj["Size"]) for obj in page.get("Contents", []))

    def rename(self, src: str, dst: str) -> None:
        raise NotImplementedError(f"{self.url}: S3 has no rename (publish uses versions)")

    def rewrite_in_place(self, key: str, data: bytes) -> bool:
        return False  # a bucket is never full; a put is already whole or absent

    # -- for readers and checks -------------------------------------------------------------
    def check(self) -> None:
        """Raise `ObjectStoreError` naming the URL unless the bucket is there and ours to use."""
        with self._errors(""):
            self.client.head_bucket(Bucket=self.bucket)

    def polars_options(self) -> dict[str, str]:
        """`storage_options` for pl.scan_parquet: the same endpoint, region and credentials."""
        credentials = self.session.get_credentials()
        if credentials is None:
            raise ObjectStoreError(_no_credentials(self.url))
        frozen = credentials.get_frozen_credentials()
        options = {
            "aws_access_key_id": frozen.access_key,
            "aws_secret_access_key": frozen.secret_key,
            "aws_region": self.client.meta.region_name or "us-east-1",
        }
        if frozen.token:
            options["aws_session_token"] = frozen.token
        if self.options.endpoint_url:
            options["aws_endpoint_url"] = self.options.endpoint_url
            if self.options.endpoint_url.startswith("http://"):
                options["aws_allow_http"] = "true"
        if self.options.addressing_style != "auto":
            virtual = self.options.addressing_style == "virtual"
            options["aws_virtual_hosted_style_request"] = str(virtual).lower()
        return options

    @contextmanager
    def _errors(self, key: str) -> Iterator[None]:
        """Turn boto3's failures into one line naming the URL and what to fix."""
        where = self.location(key) if key else self.url
        try:
            yield
        except NoCredentialsError:
            raise ObjectStoreError(_no_credentials(self.url)) from None
        except EndpointConnectionError as e:
            endpoint = self.options.endpoint_url or "the AWS endpoint"
            raise ObjectStoreError(
                f"cannot reach {endpoint} for {where} (set [s3] endpoint_url or "
                f"KESU_S3_ENDPOINT): {e}"
            ) from None
        except ClientError as e:
            code = _code(e)
            if code == "NoSuchBucket" or (code == "404" and not key):
                raise ObjectStoreError(
                    f"bucket {self.bucket!r} does not exist at "
                    f"{self.options.endpoint_url or 'AWS'} ({self.url})"
                ) from None
            if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "403"):
                raise ObjectStoreError(
                    f"the object store rejected kesu's AWS credentials for {where} ({code}): "
                    "check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or AWS_PROFILE"
                ) from None
            if code == "AccessDenied":
                raise ObjectStoreError(f"access denied to {where}: {e}") from None
            raise
        except BotoCoreError as e:
            raise ObjectStoreError(f"{where}: {e}") from None


def _code(error: ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def _no_credentials(url: str) -> str:
    return (
        f"no AWS credentials for {url}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or "
        "AWS_PROFILE (credentials never go in kesu.toml)"
    )
