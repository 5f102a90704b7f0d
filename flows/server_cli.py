"""`kesu server status|start|stop`: kesu's local Prefect server (kesu.flows.local_server).

Commands that run a flow start it themselves the first time; these let the user see where its
UI is, start it ahead of time, or stop it. Only argparse at import time.
"""

from __future__ import annotations

import argparse
from typing import Any

ACTIONS = ("status", "start", "stop")


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Add the `server` command to kesu's sub-commands."""
    p = subparsers.add_parser(
        "server",
        help="kesu's local Prefect server: status (and its UI address), start, stop",
        description="The Prefect server kesu starts in the background the first time a command "
        "runs a flow (in PREFECT_HOME, default ~/.prefect) and reuses afterwards. Not used when "
        "PREFECT_API_URL is set, or with KESU_PREFECT_SERVER=ephemeral.",
    )
    p.add_argument("action", choices=ACTIONS)
    return p


def run(args: argparse.Namespace) -> int:
    from kesu.flows import local_server

    if args.action == "stop":
        stopped = local_server.stop()
        print(f"stopped the Prefect server at {stopped.ui}" if stopped else "no server running")
        return 0
    if args.action == "start":  # under the lock: two starts at once start one server
        server: local_server.Server | None = local_server.running_or_started()
    else:
        server = local_server.running()
    if server is None:
        print("no server running; the next kesu command that runs a flow starts one")
        return 0
    print(f"Prefect server running: UI {server.ui}  API {server.url}  (pid {server.pid})")
    print(f"its log: {local_server.log_file()}")
    return 0
