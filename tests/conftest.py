"""A real S3 API for the object-store tests: moto's server on loopback, one per test session.

Nothing is mocked inside kesu: boto3 and Polars talk HTTP to the server like to any S3
endpoint. The AWS variables hold dummy credentials (moto accepts any), and every place the AWS
chain could look further (profile files, instance metadata) is switched off.
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

BUCKET = "kesu-test"
# A command that finds no Prefect API starts kesu's local server in the background (and leaves
# it running); a test run must leave nothing behind: commands here use the temporary API (the
# flow tests' harness, or Prefect's ephemeral one), and the local-server test chooses its own.
os.environ.setdefault("KESU_PREFECT_SERVER", "ephemeral")


@dataclass(frozen=True)
class S3:
    endpoint: str
    bucket: str

    def url(self, name: str = "wh") -> str:
        """A fresh warehouse URL under the session's bucket (one prefix per test)."""
        return f"s3://{self.bucket}/{uuid.uuid4().hex[:8]}/{name}"

    def storage_options(self) -> dict[str, str]:
        """What Polars and deltalake need to read the server outside kesu."""
        return {
            "aws_access_key_id": "testing",
            "aws_secret_access_key": "testing",
            "aws_region": "us-east-1",
            "aws_endpoint_url": self.endpoint,
            "aws_allow_http": "true",
        }

    def client(self) -> Any:  # a boto3 S3 client (boto3 ships no types)
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, region_name="us-east-1")

    def snapshot(self, url: str, skip: tuple[str, ...] = ("_ledger/runs/",)) -> dict[str, str]:
        """{key: "ETag LastModified"} of every object under the warehouse `url` but those
        under `skip` (by default the run ledger, which records each run by design)."""
        prefix = url.removeprefix(f"s3://{self.bucket}/") + "/"
        found = {}
        pages = (
            self.client()
            .get_paginator("list_objects_v2")
            .paginate(Bucket=self.bucket, Prefix=prefix)
        )
        for page in pages:
            for obj in page.get("Contents", []):
                key = obj["Key"][len(prefix) :]
                if not key.startswith(skip):
                    found[key] = f"{obj['ETag']} {obj['LastModified'].isoformat()}"
        return found


@pytest.fixture(scope="session")
def s3(tmp_path_factory) -> Iterator[S3]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # a line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    mp = pytest.MonkeyPatch()
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "KESU_S3_ENDPOINT": endpoint,
        "KESU_STATE_DIR": str(tmp_path_factory.mktemp("kesu-state")),
    }.items():
        mp.setenv(name, value)
    mp.delenv("AWS_PROFILE", raising=False)
    mp.delenv("AWS_SESSION_TOKEN", raising=False)
    found = S3(endpoint, BUCKET)
    found.client().create_bucket(Bucket=BUCKET)
    yield found
    mp.undo()
    server.stop()


@pytest.fixture
def full_disk(tmp_path) -> Iterator[Path]:
    """A folder on a real file system with no space left: a 64 KiB tmpfs (mounted as root, as
    the tests run here), filled to the last byte, unmounted afterwards."""
    mount = tmp_path / "full"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount)], check=True)
    try:
        fd = os.open(mount / "filler", os.O_WRONLY | os.O_CREAT)
        try:
            while True:
                os.write(fd, b"\0" * 4096)
        except OSError as full:
            assert full.errno == errno.ENOSPC
        finally:
            os.close(fd)
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)
