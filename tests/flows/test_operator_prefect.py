"""Issue 14, the Prefect side seen by an operator: per-feed rows in each drop's task log, the
tables and reports as assets with their lineage, a quiet terminal, `kesu serve` stopping cleanly,
and kesu's local Prefect server (started once, reused, stopped)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import date
from pathlib import Path

import pytest
from kesu.flows import cli
from kesu.flows.backfill import backfill
from kesu.flows.report import report
from kesu.samplegen.generate import generate

pytestmark = pytest.mark.flow

DAY = date(2025, 7, 1)
NEXT = date(2025, 7, 2)
KESU = Path(sys.executable).with_name("kesu")


@pytest.fixture(scope="module")
def landing(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("landing")
    generate(DAY, NEXT, root, profile="small", seed=3, defects=False)
    return root


def api_url() -> str:
    from prefect.settings import PREFECT_API_URL

    return str(PREFECT_API_URL.value())


def drained() -> None:
    """Logs and events reach the API from background workers: wait for them."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    APILogWorker.drain_all(timeout=30)
    EventsWorker.drain_all(timeout=30)


def events(prefix: str, resource: str, expect: int = 1, wait: float = 60) -> list[dict]:
    """The events about `resource`, once `expect` of them are stored (the server stores events
    in batches, a moment after they arrive), or those there are after `wait` seconds."""
    deadline = time.monotonic() + wait
    while len(found := _events(prefix, resource)) < expect and time.monotonic() < deadline:
        time.sleep(1)
    return found


def _events(prefix: str, resource: str) -> list[dict]:
    query = {"filter": {"event": {"prefix": [prefix]}, "resource": {"id_prefix": [resource]}}}
    query["limit"] = 50
    request = urllib.request.Request(
        f"{api_url()}/events/filter",
        data=json.dumps(query).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())["events"]


def test_drop_logs_per_feed_and_tables_and_report_are_assets(landing, tmp_path, demo_key):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import LogFilter, LogFilterFlowRunId

    wh, out = tmp_path / "wh", tmp_path / "reports"
    state = backfill(
        start=DAY, end=NEXT, landing_dir=str(landing), warehouse_dir=str(wh), return_state=True
    )
    runs = state.result()
    drained()
    only = LogFilter(flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id]))
    with get_client(sync_client=True) as client:
        logs = [entry.message for entry in client.read_logs(log_filter=only)]
    for run in runs:  # each drop's task log holds each feed's accounting
        for feed, r in run.feeds.items():
            line = (
                f"{feed}: loaded, rows in {r.rows_in} = loaded {r.loaded} "
                f"+ quarantined {r.quarantined}"
            )
            assert line in logs, logs

    # the backfill's drops in one materialization a table, naming each partition and its run
    table = wh.absolute().as_uri() + "/stg_hotline"
    (made,) = events("prefect.asset.materialization.succeeded", table)
    assert made["payload"]["partitions"] == f"drop_date={DAY}, drop_date={NEXT}"
    assert made["payload"]["kesu_run_id"] == ", ".join(run.run_id for run in runs)
    assert made["payload"]["rows"] == sum(run.feeds["hotline"].loaded for run in runs)

    report(kind="quarterly", period="2025Q3", out=str(out), warehouse_dir=str(wh))
    drained()
    (built,) = events("prefect.asset.materialization", out.absolute().as_uri())
    assert built["resource"]["prefect.resource.id"].endswith("/quarterly/2025Q3")
    upstream = {
        r["prefect.resource.id"] for r in built["related"] if r["prefect.resource.role"] == "asset"
    }
    assert upstream == {wh.absolute().as_uri() + f"/{t}" for t in
                        ("stg_hotline", "stg_complaints", "stg_regulator_transfers")}  # fmt: skip

    # the same drops again: inputs unchanged, nothing materialized
    backfill(start=DAY, end=NEXT, landing_dir=str(landing), warehouse_dir=str(wh))
    drained()
    assert len(events("prefect.asset.materialization", table, expect=2, wait=15)) == 1


def test_backfill_prints_a_line_a_drop_and_the_summary_without_prefect_chatter(
    landing, tmp_path, demo_key, capsys, caplog, kesu_process
):
    argv = ["backfill", "--start", str(DAY), "--end", str(DAY), "--landing", str(landing)]
    assert cli.main([*argv, "--warehouse", str(tmp_path / "wh")]) == 0
    captured = capsys.readouterr()
    lines = captured.out.splitlines()
    assert lines[0].startswith(f"[1/1] {DAY} ingested: loaded ")
    assert lines[1] == "drops: 1 ingested"
    assert [line.split()[1] for line in lines[2:]] == [
        "hotline",
        "complaints",
        "regulator_transfers",
    ]
    # Prefect's console handler never writes to pytest's capture: the real command, apart
    done = kesu_process(
        *argv, "--warehouse", str(tmp_path / "wh-subprocess"),
        KESU_PII_KEY="chatter-test-key-0123456789abcdef",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.splitlines()[0].startswith(f"[1/1] {DAY} ingested: loaded ")
    assert "Finished in state" not in done.stdout + done.stderr


def test_kesu_serve_stops_cleanly_on_ctrl_c_and_sigterm(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("KESU_")}
    env |= {"PREFECT_API_URL": api_url(), "PYTHONWARNINGS": "default"}
    env |= {"KESU_PII_KEY": "serve-test-key-0123456789abcdef"}  # serve checks what ingest does
    for sig in (signal.SIGINT, signal.SIGTERM):
        served = subprocess.Popen(
            [str(KESU), "serve", "--landing", str(tmp_path), "--warehouse", str(tmp_path / "wh")],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert served.stdout is not None
        seen = []
        for line in served.stdout:  # the last deployment registered: it is serving
            seen.append(line)
            if line.startswith("serving quarterly-report/kesu-quarterly-report"):
                break
        time.sleep(2)
        served.send_signal(sig)
        out, err = served.communicate(timeout=120)
        assert served.returncode == 0, err[-3000:]
        assert "never awaited" not in err and "Traceback" not in err, err[-3000:]
        assert "stopped serving; the schedules stay active" in out


def test_the_local_server_starts_once_is_reused_and_stops(landing, tmp_path):
    """The real thing: `prefect server start` in the background, in a fresh PREFECT_HOME."""
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KESU_", "PREFECT_"))}
    env |= {"PREFECT_HOME": str(home), "KESU_PII_KEY": "local-server-key-0123456789abcdef"}
    env |= {"PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    argv = [str(KESU), "ingest", "--date", str(DAY), "--landing", str(landing)]
    argv += ["--warehouse", str(tmp_path / "wh")]

    def kesu(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(args, env=env, capture_output=True, text=True, timeout=600)

    try:
        first = kesu(*argv)
        assert first.returncode == 0, first.stderr[-3000:]
        assert "starting kesu's local Prefect server" in first.stdout
        status = kesu(str(KESU), "server", "status")
        assert status.stdout.startswith("Prefect server running: UI http://127.0.0.1:")
        pid = int(status.stdout.split("(pid ")[1].split(")")[0])
        again = kesu(*argv)  # reused: nothing started, no temporary API
        assert again.returncode == 0, again.stderr[-3000:]
        assert "starting" not in again.stdout and "temporary server" not in again.stderr
        assert again.stdout.count(" unchanged ") == 3  # a line per feed, nothing else
        # nor any line of Prefect's: its events sent at exit warned "EventsWorker - Still
        # processing items" on stderr under every `kesu ingest`
        for run in (first, again):
            assert not re.search(r"\| (DEBUG|INFO|WARNING|ERROR) +\|", run.stderr), run.stderr
    finally:
        stopped = kesu(str(KESU), "server", "stop")
    assert stopped.stdout.startswith("stopped the Prefect server at http://127.0.0.1:")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    assert kesu(str(KESU), "server", "status").stdout.startswith("no server running")
