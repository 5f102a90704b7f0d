"""What the `kesu` sub-commands share: argument types that reject bad input with one clear line,
and the Prefect settings every command that runs a flow starts with."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable
from datetime import date

FEED_NAMES = ("hotline", "complaints", "regulator_transfers")


def drop_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def feeds(text: str) -> list[str]:
    chosen = [f.strip() for f in text.split(",") if f.strip()]
    unknown = [f for f in chosen if f not in FEED_NAMES]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"unknown feed(s) {unknown}; choose from {FEED_NAMES}")
    return chosen


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def prefect_defaults(
    local_server: bool = True, say: Callable[[str], None] = lambda _: None
) -> None:
    """Environment defaults for a command about to run a flow (explicit settings still win);
    with `local_server`, kesu's background Prefect server unless an API was chosen
    (`kesu.flows.local_server`): `say` tells that it is starting, once."""
    # The ephemeral API server starts in a subprocess; a loaded CI machine needs more than 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # The bank's network reaches no telemetry endpoint; trying only logs an error.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if local_server:
        from kesu.flows import local_server as server

        server.ensure(say)
