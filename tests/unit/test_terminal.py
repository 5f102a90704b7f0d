"""The terminal side of a command without Prefect: each distinct warning once, repeats counted;
the local server's choice of API (unit level: the real server is started in tests/flows)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from kesu.flows import local_server
from kesu.flows.terminal import Terminal


def test_each_warning_is_shown_once_and_repeats_are_counted(capsys):
    terminal = Terminal(tty=False)
    for day in ("2025-07-01", "2025-07-02", "2025-07-03"):
        terminal.warn("using the demo PII key from /d/secrets/pii.key (created by `kesu sample`)")
        terminal.warn(f"hotline: no folder for {day} (/d/landing/hotline/{day})")
    terminal.line("[1/3] 2025-07-01 ingested: loaded 5, quarantined 0")
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        "warning: using the demo PII key from /d/secrets/pii.key (created by `kesu sample`)",
        "warning: hotline: no folder for 2025-07-01 (/d/landing/hotline/2025-07-01)",
    ]
    assert captured.out == "[1/3] 2025-07-01 ingested: loaded 5, quarantined 0\n"
    assert (
        terminal.repeats() == "(4 more warning(s) like those above: in the runs' logs in Prefect)"
    )
    assert Terminal(tty=False).repeats() is None


def test_off_a_terminal_the_status_line_prints_nothing(capsys):
    with Terminal(tty=False).status("starting Prefect…") as status:
        status("running")
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(
    ("environment", "profiles", "chosen"),
    [
        ({"PREFECT_API_URL": "http://prefect:4200/api"}, None, "http://prefect:4200/api"),
        ({}, 'active = "prod"\n[profiles.prod]\nPREFECT_API_URL = "http://p:4200/api"\n',
         "http://p:4200/api"),
        ({}, 'active = "ephemeral"\n[profiles.ephemeral]\n', None),  # Prefect's default profile
        ({}, None, None),  # no profiles file at all
    ],
)  # fmt: skip
def test_a_chosen_prefect_api_is_found_without_importing_prefect(
    tmp_path: Path, monkeypatch, environment, profiles, chosen
):
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    monkeypatch.delenv("PREFECT_PROFILE", raising=False)
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    if profiles:
        (tmp_path / "profiles.toml").write_text(profiles, encoding="utf-8")
    monkeypatch.delitem(__import__("sys").modules, "prefect.settings", raising=False)
    assert local_server.chosen_api_url() == chosen


def test_no_server_state_means_none_running(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    assert local_server.running() is None and local_server.stop() is None


def test_stop_leaves_alone_a_process_that_got_a_dead_servers_pid(tmp_path: Path, monkeypatch):
    """The state file outlives a server that died (a reboot, a kill -9); its pid may since
    belong to another process, in a process group of its own, which `stop` must not kill."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path))
    other = subprocess.Popen(["sleep", "60"], start_new_session=True)
    try:
        state = {"pid": other.pid, "url": "http://127.0.0.1:9/api"}
        (tmp_path / "kesu-server.json").write_text(json.dumps(state), encoding="utf-8")
        assert local_server.running() is None  # not taken for a server that answers slowly
        local_server.stop()
        assert other.poll() is None  # still running
        assert not (tmp_path / "kesu-server.json").exists()  # the stale state is gone
    finally:
        other.kill()
        other.wait()
