"""Flow tests share one Prefect test harness (a temporary API server, ~10 s) per session, and
their flow runs send no heartbeats, as those of the `kesu` commands do (`no_heartbeats`)."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_api():
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from kesu.flows.cli_args import no_heartbeats
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120), no_heartbeats():
        yield


@pytest.fixture
def demo_key(monkeypatch):
    monkeypatch.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
