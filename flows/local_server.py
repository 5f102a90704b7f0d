"""kesu's own local Prefect server: started in the background the first time a command needs
Prefect, reused by every later command, stopped by `kesu server stop`.

Without it every command started Prefect's temporary API (a subprocess with its own database
migrations and services) and paid ~20 s before doing 0.1 s of work. A server that stays up costs
that once. Where it lives is Prefect's home (PREFECT_HOME): its database is the one the temporary
API used, its state file (pid, URL) and log sit beside it, so two users (or two PREFECT_HOMEs)
get two servers.

Not used when the user chose a Prefect API (PREFECT_API_URL in the environment or the Prefect
profile: a real server, or the test harness), nor with KESU_PREFECT_SERVER=ephemeral (Prefect's
temporary API per command, as before: the tests and CI, which must leave no server behind).

Two commands started at the same moment must not start two servers on one database (the state
file would name one; the other would run forever): checking for the server and starting it
happen under an exclusive lock file beside the state file. A server that cannot bind its port
exits; the one answering at that port is then someone else's, never taken for this one.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

DEFAULT_PORT = 4200  # Prefect's usual port: the UI address people expect
STARTUP_TIMEOUT_SECONDS = 180.0  # first start runs the database migrations; a busy CI is slow
MODE_VARIABLE = "KESU_PREFECT_SERVER"  # "local" (default) or "ephemeral"


@dataclass(frozen=True)
class Server:
    pid: int
    url: str  # the API, http://127.0.0.1:PORT/api

    @property
    def ui(self) -> str:
        return self.url.removesuffix("/api")

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.url).port or 0


class PortTaken(RuntimeError):
    """The server exited because another process took its port after `_free_port` probed it."""


def prefect_home() -> Path:
    return Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()


def _state_file() -> Path:
    return prefect_home() / "kesu-server.json"


def log_file() -> Path:
    return prefect_home() / "kesu-server.log"


@contextmanager
def _one_at_a_time() -> Iterator[None]:
    """Hold PREFECT_HOME's server lock (`kesu-server.lock`, there while held): one command at a
    time checks for, starts or stops the server; the others wait for it (a start takes seconds
    to minutes). The kernel drops the lock if its holder dies."""
    from kesu.warehouse.locks import file_lock  # kesu's one flock helper, for any local file

    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    while True:
        with file_lock(home / "kesu-server.lock") as held:
            if held:
                yield
                return
        time.sleep(0.2)


def chosen_api_url() -> str | None:
    """The Prefect API the user (or a test harness) chose, if any: read without importing
    Prefect when it is not loaded yet, since its services read the settings once, at import."""
    if "prefect.settings" in sys.modules:
        from prefect.settings import get_current_settings

        url = get_current_settings().api.url
        return str(url) if url else None
    if os.environ.get("PREFECT_API_URL"):
        return os.environ["PREFECT_API_URL"]
    try:
        profiles = tomllib.loads((prefect_home() / "profiles.toml").read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return None
    active = os.environ.get("PREFECT_PROFILE") or profiles.get("active", "ephemeral")
    url = profiles.get("profiles", {}).get(active, {}).get("PREFECT_API_URL")
    return str(url) if url else None


def running() -> Server | None:
    """The server this PREFECT_HOME started, if it is still there and answers."""
    try:
        state = json.loads(_state_file().read_text(encoding="utf-8"))
        server = Server(int(state["pid"]), str(state["url"]))
    except (OSError, ValueError, KeyError):
        return None
    deadline = time.monotonic() + 20  # a busy machine answers slowly: not a dead server
    while _alive(server.pid) and _is_server(server.pid):
        if _healthy(server.url):
            return server if _listens(server.pid, server.port) else None
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    return None


def ensure(say: Callable[[str], None] = lambda _: None) -> str | None:
    """The API URL commands of this process use (and set it in the environment), starting the
    local server if needed; None when Prefect's own choice stands (a chosen URL, or ephemeral)."""
    if os.environ.get(MODE_VARIABLE, "local") == "ephemeral" or chosen_api_url():
        return None
    server = running_or_started(say)
    os.environ["PREFECT_API_URL"] = server.url  # read when Prefect is imported, next
    if "prefect.settings" in sys.modules:  # already loaded (a caller in Python): best effort
        from kesu.flows.cli_args import HELD_SETTINGS
        from prefect.settings import PREFECT_API_URL, temporary_settings

        HELD_SETTINGS.enter_context(temporary_settings(updates={PREFECT_API_URL: server.url}))
    return server.url


def running_or_started(say: Callable[[str], None] = lambda _: None) -> Server:
    """The server of this PREFECT_HOME, started if none answers; under the lock, so that
    commands started together start one server and all use it."""
    with _one_at_a_time():
        server = running()
        if server is None:
            _stop()  # one that no longer answers: not left behind beside the new one
            say("starting kesu's local Prefect server (once; later commands reuse it)")
            server = start()
            say(f"Prefect server started in the background: UI at {server.ui} (`kesu server stop`)")
    return server


def start(timeout: float = STARTUP_TIMEOUT_SECONDS) -> Server:
    """Start `prefect server start` detached (its own session: it outlives this command), on
    Prefect's usual port if free; if another process takes that port before the server binds
    it, once more on a port the system picks. Callers hold `_one_at_a_time`."""
    try:
        return _start(_free_port(DEFAULT_PORT), timeout)
    except PortTaken:
        return _start(_free_port(0), timeout)


def _start(port: int, timeout: float) -> Server:
    url = f"http://127.0.0.1:{port}/api"
    home = prefect_home()
    home.mkdir(parents=True, exist_ok=True)
    env = os.environ | {"PREFECT_HOME": str(home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    env.pop("PREFECT_API_URL", None)
    with log_file().open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start"]
            + ["--host", "127.0.0.1", "--port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
    server = Server(process.pid, url)
    _state_file().write_text(json.dumps({"pid": server.pid, "url": url}), encoding="utf-8")
    deadline = time.monotonic() + timeout
    # Our process must be the one answering: a server of another user or PREFECT_HOME may
    # answer at this URL while ours exits because it found the port taken.
    while not (_healthy(url) and _listens(process.pid, port)):
        if process.poll() is not None:
            _stop()
            if _port_in_use(port):
                raise PortTaken(f"port {port} was taken before the local Prefect server bound it")
            raise RuntimeError(f"the local Prefect server exited at start; see {log_file()}")
        if time.monotonic() > deadline:
            _stop()
            raise RuntimeError(
                f"the local Prefect server did not start within {timeout:.0f} s; see {log_file()}"
            )
        time.sleep(0.3)
    return server


def stop() -> Server | None:
    """Stop the server this PREFECT_HOME started; returns it, or None if none was running.
    Waits for a command starting it, so that it stops that one."""
    with _one_at_a_time():
        return _stop()


def _stop() -> Server | None:
    try:
        state = json.loads(_state_file().read_text(encoding="utf-8"))
        server = Server(int(state["pid"]), str(state["url"]))
    except (OSError, ValueError, KeyError):
        return None
    if _alive(server.pid) and _is_server(server.pid):  # not a process that got its pid since
        os.killpg(server.pid, signal.SIGTERM)  # the server and its uvicorn workers
        deadline = time.monotonic() + 30
        while _alive(server.pid) and time.monotonic() < deadline:
            time.sleep(0.2)
        if _alive(server.pid):
            os.killpg(server.pid, signal.SIGKILL)
    _state_file().unlink(missing_ok=True)
    return server


def _alive(pid: int) -> bool:
    try:
        finished, _ = os.waitpid(pid, os.WNOHANG)  # our own child: reap it if it exited
        if finished:
            return False
    except ChildProcessError:
        pass  # started by an earlier command
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _is_server(pid: int) -> bool:
    """Whether `pid` runs `prefect server start` (where /proc cannot tell: assumed so). A server
    that died leaves its pid in the state file, and the system may give it to any process."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return True
    return b"prefect" in argv and b"server" in argv


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _listens(pid: int, port: int) -> bool:
    """Whether process `pid` (or one of its process group: its workers) holds the socket
    listening on 127.0.0.1:`port`. Read from /proc; where there is none, or the process is
    another user's, only its answering can be checked: True."""
    try:
        table = Path("/proc/net/tcp").read_text(encoding="ascii").splitlines()[1:]
    except OSError:
        return True
    local = f"0100007F:{port:04X}"  # 127.0.0.1:port as /proc/net/tcp writes it
    listening = set()
    for line in table:
        fields = line.split()
        if fields[1] == local and fields[3] == "0A":  # 0A: LISTEN
            listening.add(f"socket:[{fields[9]}]")
    for member in (pid, *_group(pid)):
        links = _fd_links(member)
        if links is None:
            return True
        if links & listening:
            return True
    return False


def _group(pid: int) -> list[int]:
    """The other processes of process group `pid`."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != pid:
            try:
                if os.getpgid(int(entry.name)) == pid:
                    members.append(int(entry.name))
            except OSError:
                continue
    return members


def _fd_links(pid: int) -> set[str] | None:
    """What the open files of `pid` point to; None when they are not ours to read."""
    links = set()
    try:
        fds = list(Path(f"/proc/{pid}/fd").iterdir())
    except PermissionError:
        return None
    except OSError:
        return set()
    for fd in fds:
        try:
            links.add(os.readlink(fd))
        except OSError:
            continue  # closed meanwhile
    return links


def _port_in_use(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


def _free_port(preferred: int) -> int:
    """`preferred` if nothing holds it now, else one the system picks (port 0)."""
    for port in (preferred, 0):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return int(s.getsockname()[1])
    raise RuntimeError("no free port on 127.0.0.1 for the local Prefect server")
