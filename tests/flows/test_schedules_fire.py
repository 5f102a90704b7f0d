"""The served schedules make runs: Prefect's scheduler service, in a real `prefect server start`
(kesu's local server), creates the nightly's and the reports' scheduled runs at the times
`kesu serve` declares. The session's test harness runs no scheduler, so only a real server can
show it (with SQLAlchemy 2.1 the service failed on every loop and no scheduled run was ever
made: the nightly never ran)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

SHANGHAI = ZoneInfo("Asia/Shanghai")


@pytest.mark.flow
def test_a_real_server_schedules_the_nightly_and_the_reports(tmp_path: Path, monkeypatch) -> None:
    from kesu.flows import local_server
    from kesu.flows.serve import deployments, locations
    from prefect.settings import PREFECT_API_URL, temporary_settings

    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect"))
    monkeypatch.setenv("PREFECT_SERVER_SERVICES_SCHEDULER_LOOP_SECONDS", "1")
    monkeypatch.delenv("KESU_CONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    server = local_server.start()
    try:
        where = locations(landing="land", warehouse=str(tmp_path / "wh"), reports="rep")
        with temporary_settings(updates={PREFECT_API_URL: server.url}):
            for deployment in deployments(where):
                deployment.apply()
            wanted = {"kesu-nightly", "kesu-quarterly-report", "kesu-monthly-report"}
            found = _scheduled(wanted)
    finally:
        local_server.stop()
        log = local_server.log_file().read_text(encoding="utf-8", errors="replace")

    assert "Can't evaluate bulk DML" not in log
    assert set(found) == wanted, (found, log[-2000:])
    now = datetime.now(UTC)
    nightly = [t.astimezone(SHANGHAI) for t in found["kesu-nightly"]]
    assert all(t > now and (t.hour, t.minute) == (2, 0) for t in nightly)  # 02:00 China time
    quarterly = [t.astimezone(SHANGHAI) for t in found["kesu-quarterly-report"]]
    assert all((t.day, t.hour) == (5, 6) and t.month in (1, 4, 7, 10) for t in quarterly)
    monthly = [t.astimezone(SHANGHAI) for t in found["kesu-monthly-report"]]
    assert all((t.day, t.hour) == (3, 6) for t in monthly)


def _scheduled(wanted: set[str]) -> dict[str, list[datetime]]:
    """Deployment name -> expected start times of its scheduled runs, once each of `wanted` has
    some (the scheduler's first loops), or what there is after 60 s."""
    import asyncio

    from prefect import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    async def look() -> dict[str, list[datetime]]:
        found: dict[str, list[datetime]] = {}
        async with get_client() as client:
            named = DeploymentFilter(name=DeploymentFilterName(any_=sorted(wanted)))
            for run in await client.read_flow_runs(deployment_filter=named, limit=200):
                if run.state_type is not None and run.state_type.value == "SCHEDULED":
                    by_id = await client.read_deployment(run.deployment_id)
                    found.setdefault(by_id.name, []).append(run.expected_start_time)
        return found

    deadline = time.monotonic() + 60
    while True:
        found = asyncio.run(look())
        if set(found) == wanted or time.monotonic() > deadline:
            return found
        time.sleep(1)
