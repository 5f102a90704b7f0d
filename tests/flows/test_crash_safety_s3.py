"""Crash safety on an object store: a real `kesu ingest` into ``s3://`` (moto's server),
SIGKILLed at the moments of a publish, loses nothing, and the next run converges.

The same drops and the same kill mechanism as `test_crash_safety` (the local disk), with the
bucket's own moments: the raw copy's PUT, before and after the hotline commit, and the instant
delta-rs has uploaded a data file of the new rows but not yet committed it (watched from a
thread in the child, which lists the bucket). After the kill, every table holds the drop's old
or new rows, whole; the next run ends with the rows of an uninterrupted run and the same raw
zone, object for object.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from dataclasses import dataclass

import polars as pl
import pytest
from kesu.warehouse import paths
from test_crash_safety import CHILD, DAY, PARTITION, PII_KEY, REPO, KillPoint, make_landings

pytestmark = pytest.mark.flow

# Added to the local test's child: SIGKILL as soon as a new object appears under a prefix.
WATCH_BUCKET = """
import os, signal, threading, time
import boto3

def watch_bucket(bucket, prefix):
    client = boto3.client("s3", endpoint_url=os.environ["KESU_S3_ENDPOINT"])

    def keys():
        found = client.list_objects_v2(Bucket=bucket, Prefix=prefix)
        return {o["Key"] for o in found.get("Contents", [])}

    before = keys()

    def poll():
        while not keys() - before:
            time.sleep(0.002)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=poll, daemon=True).start()

if os.environ.get("KESU_KILL_ON_KEY"):
    watch_bucket(*os.environ["KESU_KILL_ON_KEY"].split("/", 1))
"""

KILL_POINTS = {
    # the raw copy of a corrected file is about to be PUT (if absent)
    "before-raw-put": KillPoint(
        at="kesu.warehouse.s3:S3Storage.create",
        needle="_raw/hotline",
        when="before",
        live="old",
        trace="",
    ),
    "before-publish": KillPoint(
        at="kesu.warehouse.publish:publish_partition",
        needle="stg_hotline",
        when="before",
        live="old",
        trace="",
    ),
    # a data file of the new rows is in the bucket; the commit may or may not follow
    "mid-write": KillPoint(
        at="", needle="", when="", live="old|new", trace="", on_file=f"stg_hotline/{PARTITION}/"
    ),
    "after-commit": KillPoint(
        at="kesu.warehouse.publish:publish_partition",
        needle="stg_hotline",
        when="after",
        live="new",
        trace="",
    ),
}


def partition(s3, url: str, table: str) -> pl.DataFrame | None:
    """The drop's live rows in the table, sorted; None when the table has none of them."""
    prefix = f"{url.removeprefix(f's3://{s3.bucket}/')}/{table}/_delta_log/"
    if not s3.client().list_objects_v2(Bucket=s3.bucket, Prefix=prefix).get("KeyCount"):
        return None
    rows = pl.read_delta(f"{url}/{table}", storage_options=s3.storage_options())
    rows = rows.filter(pl.col("drop_date") == DAY)
    return rows.select(sorted(rows.columns)).sort(pl.all()) if rows.height else None


def raw_zone(s3, url: str) -> dict[str, str]:
    return {k: v.split()[0] for k, v in s3.snapshot(url, skip=()).items() if k.startswith("_raw/")}


def copy_prefix(s3, source: str, target: str) -> None:
    client = s3.client()
    src, dst = (u.removeprefix(f"s3://{s3.bucket}/") for u in (source, target))
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=s3.bucket, Prefix=src + "/")
    for page in pages:
        for obj in page.get("Contents", []):
            key = dst + obj["Key"][len(src) :]
            client.copy_object(
                Bucket=s3.bucket, Key=key, CopySource={"Bucket": s3.bucket, "Key": obj["Key"]}
            )


@dataclass(frozen=True)
class States:
    old: str  # the bucket prefix after ingesting the old drop
    new: str  # a copy of it after an uninterrupted run over the corrected drop


@pytest.fixture(scope="module")
def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the flow tests' Prefect harness is not running"
    return url


def ingest(landing, url: str, api_url: str, cwd, point: KillPoint | None = None, s3=None):
    env = {
        **os.environ,
        "KESU_PII_KEY": PII_KEY,
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(REPO),
    }
    if point is not None and point.at:
        env |= {
            "KESU_KILL_AT": point.at,
            "KESU_KILL_IF": point.needle,
            "KESU_KILL_WHEN": point.when,
        }
    if point is not None and point.on_file:
        prefix = url.removeprefix(f"s3://{s3.bucket}/")
        env["KESU_KILL_ON_KEY"] = f"{s3.bucket}/{prefix}/{point.on_file}"
    args = ["ingest", "--date", DAY.isoformat(), "--landing", str(landing), "--warehouse", url]
    child = CHILD.replace(
        "from kesu.flows.cli import main", WATCH_BUCKET + "\nfrom kesu.flows.cli import main"
    )
    return subprocess.run(
        [sys.executable, "-c", child, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def landings(tmp_path_factory):
    return make_landings(tmp_path_factory)  # the drops of the local test


@pytest.fixture(scope="module")
def states(s3, landings, api_url, tmp_path_factory) -> States:
    old_landing, new_landing = landings
    cwd = tmp_path_factory.mktemp("cwd")
    old, new = s3.url("old"), s3.url("new")
    assert ingest(old_landing, old, api_url, cwd).returncode == 0
    copy_prefix(s3, old, new)
    proc = ingest(new_landing, new, api_url, cwd)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert partition(s3, old, "stg_hotline") is not None
    assert not partition(s3, old, "stg_hotline").equals(partition(s3, new, "stg_hotline"))
    return States(old, new)


def same(a: pl.DataFrame | None, b: pl.DataFrame | None) -> bool:
    if a is None or b is None:
        return a is b
    return set(a.columns) == set(b.columns) and a.equals(b.select(a.columns))


@pytest.mark.parametrize("name", list(KILL_POINTS))
def test_a_kill_mid_publish_on_s3_leaves_old_or_new_and_the_next_run_converges(
    name, s3, states, landings, api_url, tmp_path
):
    point = KILL_POINTS[name]
    url = s3.url(name)
    copy_prefix(s3, states.old, url)
    proc = ingest(landings[1], url, api_url, tmp_path, point, s3)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-3000:]

    live = partition(s3, url, "stg_hotline")
    allowed = {
        state: partition(s3, getattr(states, state), "stg_hotline") for state in ("old", "new")
    }
    assert any(same(live, allowed[state]) for state in point.live.split("|")), name
    for table in paths.TABLE_DIRS:
        now = partition(s3, url, table)
        then = [partition(s3, states.old, table), partition(s3, states.new, table)]
        assert any(same(now, t) for t in then), table

    proc = ingest(landings[1], url, api_url, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for table in paths.TABLE_DIRS:
        assert same(partition(s3, url, table), partition(s3, states.new, table)), table
    assert raw_zone(s3, url) == raw_zone(s3, states.new)
