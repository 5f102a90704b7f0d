"""Flow tests share one Prefect test harness (a temporary API server, ~10 s) per session, and
their flow runs send no heartbeats, as those of the `kesu` commands do (`no_heartbeats`)."""

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

KESU = Path(sys.executable).with_name("kesu")


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


@pytest.fixture
def kesu_process() -> Callable[..., subprocess.CompletedProcess[str]]:
    """Runs the real `kesu` command as a child process, on the session's Prefect API as a served
    run would be, without this process's `KESU_*` settings (`extra`: environment to add). Only a
    child shows what the terminal shows: Prefect's console handler never writes to pytest's
    capture, so an assertion about its lines in-process could not fail."""
    from prefect.settings import PREFECT_API_URL

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("KESU_")}
        env |= {"PREFECT_API_URL": str(PREFECT_API_URL.value()), **extra}
        argv = [str(KESU), *args]
        return subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)

    return run
