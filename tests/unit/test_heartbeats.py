"""Flows that a `kesu` command runs in its own process send no Prefect heartbeats, unless the
user set their frequency; `kesu serve`, whose runs are processes of their own, keeps Prefect's.

Prefect reads its settings from the environment when first imported, so each case runs a fresh
interpreter: it sets kesu's Prefect defaults as the command would (no server: none is needed to
read a setting) and prints the frequency a flow run started next would use.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

SHOW = """
import sys
from kesu.flows.cli_args import prefect_defaults
prefect_defaults(local_server=False, flows_run_here=sys.argv[1] == "here")
from prefect.settings import get_current_settings
print(get_current_settings().flows.heartbeat_frequency)
"""
VARIABLES = ("PREFECT_FLOWS_HEARTBEAT_FREQUENCY", "PREFECT_RUNNER_HEARTBEAT_FREQUENCY")


def _frequency(where: str, cwd: Path, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in VARIABLES}
    out = subprocess.run(
        [sys.executable, "-c", SHOW, where],
        env=clean | env,
        cwd=cwd,
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def test_a_command_running_its_flows_turns_heartbeats_off(tmp_path: Path) -> None:
    assert _frequency("here", tmp_path) == "None"


def test_kesu_serve_keeps_prefects_default(tmp_path: Path) -> None:
    assert _frequency("served", tmp_path) == "180"


def test_a_frequency_set_in_the_environment_wins(tmp_path: Path) -> None:
    assert _frequency("here", tmp_path, PREFECT_FLOWS_HEARTBEAT_FREQUENCY="60") == "60"


def test_a_frequency_set_in_prefect_toml_wins(tmp_path: Path) -> None:
    (tmp_path / "prefect.toml").write_text("[flows]\nheartbeat_frequency = 90\n")
    assert _frequency("here", tmp_path) == "90"
