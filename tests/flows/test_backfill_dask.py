"""The backfill on a real Dask cluster (a LocalCluster of two worker processes): every drop runs
in a worker, the warehouse equals a backfill on threads byte for byte, a re-run skips; and how
`kesu backfill` chooses and checks the cluster's address."""

from __future__ import annotations

import argparse
import os
import time
from datetime import date, timedelta
from pathlib import Path

import polars as pl
import pytest
from kesu.flows import backfill_cli, cli
from kesu.flows.backfill import backfill
from kesu.flows.cluster import worker_problems
from kesu.flows.config import ConfigError
from kesu.samplegen.generate import generate
from kesu.warehouse import Warehouse, ledger

pytestmark = pytest.mark.flow

START, END = date(2025, 6, 1), date(2025, 6, 3)
DAYS = [START + timedelta(days=i) for i in range((END - START).days + 1)]
KEY = "dask-test-key-0123456789abcdef"
NOBODY = "tcp://127.0.0.1:9"  # the discard port: nothing listens, a connection is refused


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    generate(START, END, root, profile="small", seed=9, defects=True)
    return root


@pytest.fixture(scope="module")
def cluster():
    """(scheduler address, worker pids). The workers get the PII key and the Prefect API from
    their environment, as on a real cluster: the key is never sent with a task, and Prefect's
    background log and event threads in a worker read the API's address from the environment
    (without it each worker would start a temporary API of its own)."""
    from distributed import Client, LocalCluster
    from prefect.settings import PREFECT_API_URL

    mp = pytest.MonkeyPatch()
    mp.setenv("KESU_PII_KEY", KEY)
    mp.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))  # the session's test API
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        Client(local, set_as_default=False) as client,
    ):
        mp.undo()  # the key stays in the workers only
        yield local.scheduler_address, set(client.run(os.getpid).values())


def published(root: Path) -> dict[str, tuple[int, list[tuple]]]:
    """Per Delta table, its number of commits and its rows, sorted: what runs in another order
    must agree on (the log files carry commit times and file ids, so not their bytes)."""
    found = {}
    for log in sorted(root.glob("**/_delta_log")):
        rows = pl.read_delta(str(log.parent))
        found[log.parent.relative_to(root).as_posix()] = (
            len(list(log.glob("*.json"))),
            rows.sort(pl.all()).rows(),
        )
    return found


def args_for(landing: Path, warehouse: Path, dask_address: str | None) -> argparse.Namespace:
    return argparse.Namespace(
        start=START, end=END, feeds=None, force=False, workers=2, dask_address=dask_address,
        landing=str(landing), warehouse=str(warehouse), config=None,
    )  # fmt: skip


def test_drops_run_in_the_workers_and_equal_a_backfill_on_threads(
    landing, cluster, tmp_path, monkeypatch, capsys
):
    address, worker_pids = cluster
    on_threads = tmp_path / "threads"
    with monkeypatch.context() as here:
        here.setenv("KESU_PII_KEY", KEY)
        backfill(start=START, end=END, landing_dir=str(landing), warehouse_dir=str(on_threads))
    monkeypatch.delenv("KESU_PII_KEY", raising=False)  # from here on only the workers have it

    on_dask = tmp_path / "dask"
    monkeypatch.setenv("KESU_DASK_ADDRESS", NOBODY)  # the flag wins over the environment
    assert backfill_cli.run(args_for(landing, on_dask, address)) == 0
    assert f"drops: {len(DAYS)} ingested" in capsys.readouterr().out
    runs = [r for r in ledger.list_runs(Warehouse.at(on_dask)) if r.kind == "ingest"]
    assert sorted(r.drop_date for r in runs) == DAYS
    assert {r.pid for r in runs} <= worker_pids and os.getpid() not in worker_pids
    for run in runs:
        assert run.status == "completed"
        for feed in run.feeds.values():
            assert feed.rows_in == feed.loaded + feed.quarantined
    assert sum(r.totals["rows_in"] for r in runs) > 0
    assert published(on_dask) == published(on_threads)  # same rows, same number of commits
    (record,) = [r for r in ledger.list_runs(Warehouse.at(on_dask)) if r.kind == "backfill"]
    assert record.dask_address == address and record.workers is None

    monkeypatch.setenv("KESU_DASK_ADDRESS", address)  # resumed, the address from the environment
    before = published(on_dask)
    assert backfill_cli.run(args_for(landing, on_dask, None)) == 0
    assert f"drops: {len(DAYS)} skipped" in capsys.readouterr().out
    latest = next(r for r in ledger.list_runs(Warehouse.at(on_dask)) if r.kind == "backfill")
    assert latest.dask_address == address and latest.summary["skipped"] == len(DAYS)
    reruns = [r for r in ledger.list_runs(Warehouse.at(on_dask)) if r.kind == "ingest"][: len(DAYS)]
    assert {r.pid for r in reruns} <= worker_pids
    assert published(on_dask) == before


def test_a_cluster_on_another_key_than_the_commands_is_refused_before_any_drop(
    landing, cluster, tmp_path, monkeypatch, capsys
):
    from kesu.flows.pii_key import PiiKey

    address, _ = cluster
    here = "shell-key-0123456789abcdef-other"
    monkeypatch.setenv("KESU_PII_KEY", here)
    monkeypatch.delenv("KESU_DASK_ADDRESS", raising=False)
    warehouse = tmp_path / "wh"
    argv = ["backfill", "--start", str(START), "--end", str(END), "--dask-address", address]
    assert cli.main([*argv, "--landing", str(landing), "--warehouse", str(warehouse)]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    workers_id = PiiKey(KEY.encode(), "", is_demo=False).key_id
    here_id = PiiKey(here.encode(), "", is_demo=False).key_id
    assert line.startswith(f"kesu backfill: Dask workers at {address}: their PII key (key id ")
    assert workers_id in line and f"key id {here_id}, from KESU_PII_KEY" in line
    assert KEY not in line and here not in line  # key ids, never the keys
    assert ledger.list_runs(Warehouse.at(warehouse)) == []  # no drop ran, no run was recorded


def test_an_unreachable_scheduler_fails_fast_with_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("KESU_DASK_ADDRESS", raising=False)
    where = ["--landing", str(tmp_path / "landing"), "--warehouse", str(tmp_path / "wh")]
    started = time.monotonic()
    argv = ["backfill", "--start", str(START), "--end", str(END), "--dask-address", NOBODY]
    assert cli.main([*argv, *where]) == 2
    assert time.monotonic() - started < 30  # the connection times out in 5 s: no hang
    assert f"kesu backfill: no Dask scheduler answered at {NOBODY}" in capsys.readouterr().err
    assert not (tmp_path / "wh" / "_ledger" / "runs").exists()  # failed before any record


@pytest.mark.parametrize(
    "address",
    ["tcp://127.0.0.1:8786", "tls://scheduler.bank.internal:8786", "10.0.0.5:8786", "[::1]:8786"],
)
def test_scheduler_addresses_accepted(address):
    assert backfill_cli.dask_address(address) == address


@pytest.mark.parametrize("address", ["scheduler", "http://host:8786", "tcp://host", "tcp://:1"])
def test_malformed_addresses_are_refused_by_flag_and_environment(address, capsys):
    argv = ["backfill", "--start", str(START), "--end", str(END), "--dask-address", address]
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(argv)
    assert "is not a Dask scheduler address" in capsys.readouterr().err
    # a configuration error: one line and exit status 2 from `kesu` (issue 14)
    with pytest.raises(ConfigError, match="KESU_DASK_ADDRESS: .* is not a Dask scheduler address"):
        backfill_cli.chosen_dask_address(argparse.Namespace(), {"KESU_DASK_ADDRESS": address})


def test_the_flag_wins_over_the_environment_and_threads_are_the_default():
    flag, env = argparse.Namespace(dask_address="tcp://a:1"), {"KESU_DASK_ADDRESS": "tcp://b:2"}
    assert backfill_cli.chosen_dask_address(flag, env) == "tcp://a:1"
    assert backfill_cli.chosen_dask_address(argparse.Namespace(dask_address=None), env) == (
        "tcp://b:2"
    )
    assert backfill_cli.chosen_dask_address(argparse.Namespace(dask_address=None), {}) is None


API = "http://prefect.bank.internal:4200/api"


@pytest.mark.parametrize(
    ("facts", "problems"),
    [
        # every worker with the API and the same key: ready
        ({"w1": {"api": API, "key_id": "k1"}, "w2": {"api": API, "key_id": "k1"}}, []),
        # one worker without PREFECT_API_URL would start an API of its own
        (
            {"w1": {"api": API, "key_id": "k1"}, "w2": {"api": "", "key_id": "k1"}},
            ["w2: no PREFECT_API_URL in its environment"],
        ),
        # a worker without a key: the reason it gave
        (
            {"w1": {"api": API, "key_id": "error: set KESU_PII_KEY"}},
            ["w1: set KESU_PII_KEY"],
        ),
        # two keys would give one person two tokens
        (
            {"w1": {"api": API, "key_id": "k1"}, "w2": {"api": API, "key_id": "k2"}},
            ["the workers hold 2 different PII keys; they need one"],
        ),
        # nobody to run the drops: they would wait forever
        ({}, ["the cluster has no workers"]),
    ],
)
def test_workers_are_checked_before_the_first_drop(facts, problems):
    assert worker_problems(facts) == problems
