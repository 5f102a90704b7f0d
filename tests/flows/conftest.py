"""Flow tests share one Prefect test harness (a temporary API server, ~10 s) per session."""

import os

import pytest


@pytest.fixture(scope="session", autouse=True)
def prefect_api():
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def demo_key(monkeypatch):
    monkeypatch.setenv("KESU_PII_KEY", "flow-test-key-0123456789abcdef")
