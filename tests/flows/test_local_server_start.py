"""kesu's local Prefect server when commands start together, or when another server takes its
port: one server per PREFECT_HOME, and never another's server taken for its own. Real `prefect
server start` processes in a fresh PREFECT_HOME."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from kesu.flows import local_server

pytestmark = pytest.mark.flow

KESU = Path(sys.executable).with_name("kesu")


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)


def _pid(status_line: str) -> int:
    return int(status_line.split("(pid ")[1].split(")")[0])


def _servers_of(home: Path) -> list[int]:
    """The `prefect server start` processes whose PREFECT_HOME is `home`."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"server" in argv and b"start" in argv and f"PREFECT_HOME={home}".encode() in environ:
            found.append(int(entry.name))
    return found


# `kesu server start`, loaded and waiting for the word: the commands check for the server at
# one moment, as two started by one cron line or two terminals do (a Python start-up apart,
# they often would not)
TOGETHER = """
import sys, time
from pathlib import Path
from kesu.flows import cli

Path(sys.argv[1]).touch()
while not Path(sys.argv[2]).exists():
    time.sleep(0.005)
sys.exit(cli.main(["server", "start"]))
"""


def test_commands_started_together_start_one_server(tmp_path):
    home = tmp_path / "prefect-home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
    env |= {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    go = tmp_path / "go"
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", TOGETHER, str(tmp_path / f"ready{i}"), str(go)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(3)
    ]
    while len(list(tmp_path.glob("ready*"))) < len(starts):
        time.sleep(0.05)
    go.touch()
    outs = [p.communicate(timeout=600)[0] for p in starts]
    pids = {_pid(out) for out in outs if "(pid " in out}
    try:
        assert [p.returncode for p in starts] == [0, 0, 0], outs
        assert len(pids) == 1, outs  # every command names the same server
        assert _servers_of(home) == sorted(pids)  # and no other runs on its database
        stopped = subprocess.run([str(KESU), "server", "stop"], env=env, timeout=120)
        assert stopped.returncode == 0
        assert _servers_of(home) == []  # `kesu server stop` left none behind
    finally:
        for pid in pids | set(_servers_of(home)):
            _kill(pid)


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"true")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def other_server() -> Iterator[Callable[[int], None]]:
    """Starts another user's server on a port: it answers every URL, /api/health included."""
    started: list[HTTPServer] = []

    def take(port: int) -> None:
        server = HTTPServer(("127.0.0.1", port), _Healthy)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        started.append(server)

    yield take
    for server in started:
        server.shutdown()
        server.server_close()


def test_a_port_taken_before_the_server_binds_it_is_not_someone_elses_server(
    tmp_path, monkeypatch, other_server
):
    """The port was free when probed, another server took it before Prefect's bound it: the
    server kesu started exits, and the other one answers at its URL."""
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))
    probe = local_server._free_port
    taken: list[int] = []

    def free_then_taken(*preferred: int) -> int:
        port = probe(*preferred)
        if not taken:  # the first probe only: the retry gets its port
            taken.append(port)
            other_server(port)
        return port

    monkeypatch.setattr(local_server, "_free_port", free_then_taken)
    server = local_server.start(timeout=180)
    try:
        assert urlsplit(server.url).port != taken[0]  # not the other server's URL
        assert local_server._listens(server.pid, server.port)  # its own process answers
        assert local_server.running() == server
    finally:
        stopped = local_server.stop()
    assert stopped == server
    with pytest.raises(ProcessLookupError):
        os.kill(server.pid, 0)
