"""Two machines, one bucket: two `kesu backfill` processes over overlapping days of one ``s3://``
warehouse, each with its own local state (as on two machines: no shared disk, no shared lock).

Nothing kesu keeps on the local disk can keep them apart here, so what does is the object store:
Delta's conflict detection for the tables (a drop published by both commits once; the loser
retries and finds it unchanged), conditional writes for the raw copy and the ledger's drop
pointers. Then every drop is in every table exactly once, with the rows a single local run
gives, every raw file once, and a third run over all the days finds nothing to do.

The children are real `kesu` processes talking to moto's server (tests/conftest.py) and to the
session's Prefect API (tests/flows/conftest.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from kesu.flows.ingest import nightly
from kesu.samplegen.generate import generate
from kesu.warehouse import paths

pytestmark = pytest.mark.flow

START = date(2025, 5, 1)
DAYS = [START + timedelta(n) for n in range(5)]
PII_KEY = "two-machines-key-0123456789abcdef"
REPO = Path(__file__).resolve().parents[2]
# machine A takes days 1-4, machine B days 2-5: three days are ingested by both at once
RANGES = {"a": (DAYS[0], DAYS[3]), "b": (DAYS[1], DAYS[4])}


def table_rows(location: str, table: str, options: dict[str, str] | None) -> pl.DataFrame:
    """The table's live rows, sorted, with zoned timestamps as UTC text (comparable)."""
    frame = pl.read_delta(f"{location}/{table}", storage_options=options)
    frame = frame.with_columns(pl.col(pl.Datetime).dt.to_string("%Y-%m-%dT%H:%M:%S%.f"))
    return frame.select(sorted(frame.columns)).sort(pl.all())


def run_backfill(machine: str, url: str, landing: Path, api_url: str, state: Path, out: Path):
    start, end = RANGES[machine]
    env = {
        **os.environ,
        "KESU_PII_KEY": PII_KEY,
        "KESU_STATE_DIR": str(state),  # this machine's own disk
        "PREFECT_API_URL": api_url,
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PYTHONPATH": str(REPO),
    }
    args = ["backfill", "--start", start.isoformat(), "--end", end.isoformat()]
    args += ["--landing", str(landing), "--warehouse", url, "--workers", "2"]
    return subprocess.Popen(
        [sys.executable, "-m", "kesu.flows.cli", *args],
        cwd=out,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.fixture(scope="module")
def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    assert url, "the flow tests' Prefect harness is not running"
    return url


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("landing")
    generate(DAYS[0], DAYS[-1], folder, profile="small", seed=11, defects=True)
    return folder


@pytest.fixture(scope="module")
def reference(landing, tmp_path_factory) -> Path:
    """The same days through one process into a local warehouse, one drop after another."""
    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", PII_KEY)
    root = tmp_path_factory.mktemp("reference")
    for day in DAYS:
        run = nightly(drop_date=day, landing_dir=str(landing), warehouse_dir=str(root))
        assert run.status == "completed"
    mp.undo()
    return root


@pytest.fixture(scope="module")
def bucket(s3, landing, api_url, tmp_path_factory) -> str:
    url = s3.url("two-machines")
    procs = {
        m: run_backfill(
            m,
            url,
            landing,
            api_url,
            tmp_path_factory.mktemp(f"state-{m}"),
            tmp_path_factory.mktemp(f"cwd-{m}"),
        )
        for m in RANGES
    }
    for machine, proc in procs.items():
        _, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, f"machine {machine}: {err[-3000:]}"
    return url


def test_every_drop_is_in_every_table_once_with_the_rows_of_one_local_run(
    bucket, reference, s3
) -> None:
    for table in paths.TABLE_DIRS:
        if not (reference / table / "_delta_log").is_dir():
            continue  # no rows of this table in these days
        ours = table_rows(bucket, table, s3.storage_options())
        theirs = table_rows(str(reference), table, None)
        assert ours.height == theirs.height, table
        assert ours.equals(theirs.select(ours.columns)), table
        assert set(ours["drop_date"].unique()) <= set(DAYS)


def test_each_drop_was_committed_once_per_table(bucket, reference, s3) -> None:
    """Both machines ingested days 2-4, yet each drop's rows were written by one commit: the
    later machine found the drop unchanged (by the ledger, or after losing the commit race).
    Besides those, a table has its creation, holding no rows (two machines may both create it:
    delta-rs does not check a first commit against another, which is why it holds no rows)."""
    client, prefix = s3.client(), bucket.removeprefix(f"s3://{s3.bucket}/")
    for table in ("stg_hotline", "stg_complaints", "stg_regulator_transfers"):
        log = f"{prefix}/{table}/_delta_log/"
        listed = client.list_objects_v2(Bucket=s3.bucket, Prefix=log)["Contents"]
        dropped, commits = [], []
        for obj in sorted(o["Key"] for o in listed if o["Key"].endswith(".json")):
            lines = client.get_object(Bucket=s3.bucket, Key=obj)["Body"].read().splitlines()
            actions = [json.loads(line) for line in lines]
            info = next(a["commitInfo"] for a in actions if "commitInfo" in a)
            kinds = sorted(k for a in actions for k in a if k != "commitInfo")
            commits.append(  # what a failure shows: which writer made each commit
                f"{obj.rsplit('/', 1)[-1]} {info.get('kesu.drop_date')} "
                f"{info.get('operation')} run {info.get('kesu.run_id')} {kinds}"
            )
            if info.get("operation") == "CREATE TABLE":
                assert kinds == ["metaData", "protocol"], commits[-1]  # no rows
            else:
                dropped.append(info["kesu.drop_date"])
        days = pl.read_delta(str(reference / table))["drop_date"].unique().sort()
        assert sorted(dropped) == [d.isoformat() for d in days], (table, commits)
        assert commits[0].split()[2:4] == ["CREATE", "TABLE"], commits


def test_every_raw_file_is_kept_once(bucket, reference, s3) -> None:
    ours = {k for k in s3.snapshot(bucket, skip=()) if k.startswith(f"{paths.RAW}/")}
    theirs = {
        str(p.relative_to(reference)) for p in (reference / paths.RAW).rglob("*") if p.is_file()
    }
    assert ours == theirs


def test_the_ledger_points_every_drop_at_a_completed_run_of_it(bucket, s3) -> None:
    client, prefix = s3.client(), bucket.removeprefix(f"s3://{s3.bucket}/")
    for day in DAYS:
        key = f"{prefix}/{paths.LEDGER}/drops/{day.isoformat()}.json"
        pointer = json.loads(client.get_object(Bucket=s3.bucket, Key=key)["Body"].read())
        assert set(pointer["feeds"]) == {"hotline", "complaints", "regulator_transfers"}
        for feed, entry in pointer["feeds"].items():
            run_key = f"{prefix}/{paths.run_key(entry['run_id'])}"
            run = json.loads(client.get_object(Bucket=s3.bucket, Key=run_key)["Body"].read())
            assert run["status"] == "completed" and run["drop_date"] == day.isoformat()
            assert run["feeds"][feed]["fingerprint"] == entry["fingerprint"]


def test_a_third_run_over_all_days_finds_nothing_to_do(bucket, landing, s3, monkeypatch) -> None:
    before = s3.snapshot(bucket)
    monkeypatch.setenv("KESU_PII_KEY", PII_KEY)
    for day in DAYS:
        run = nightly(drop_date=day, landing_dir=str(landing), warehouse_dir=bucket)
        assert {r.status for r in run.feeds.values()} == {"unchanged"}, day
    assert s3.snapshot(bucket) == before  # ledger runs aside: no object written or replaced
