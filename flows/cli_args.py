"""What the `kesu` sub-commands share: argument types that reject bad input with one clear line,
and the Prefect settings every command that runs a flow starts with."""

from __future__ import annotations

import argparse
import contextlib
import os
import re
from collections.abc import Callable, Iterator
from datetime import date

from kesu.transforms.columns import FEEDS, check_feeds


def drop_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):  # the form is right: the day is not
            year, month, day = text.split("-")
            why = f"month {month} of {year} has no day {day}" if "01" <= month <= "12" else ""
            why = why or f"there is no month {month}"
            raise argparse.ArgumentTypeError(f"{text!r} is no real date: {why}") from None
        raise argparse.ArgumentTypeError(f"{text!r} is not a date in YYYY-MM-DD form") from None


def feeds(text: str) -> list[str]:
    try:
        return check_feeds([f.strip() for f in text.split(",") if f.strip()])
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_feeds(parser: argparse.ArgumentParser) -> None:
    """`--feeds`, as every command that can work on some of the feeds takes it."""
    parser.add_argument("--feeds", type=feeds, help="comma-separated subset of " + ",".join(FEEDS))


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


def prefect_defaults(
    local_server: bool = True,
    say: Callable[[str], None] = lambda _: None,
    flows_run_here: bool = True,
) -> None:
    """Environment defaults for a command about to run a flow (explicit settings still win);
    with `local_server`, kesu's background Prefect server unless an API was chosen
    (`kesu.flows.local_server`): `say` tells that it is starting, once. `flows_run_here`: the
    command runs its flows in this process (not `kesu serve`, whose runner starts a process
    per flow run): they send no heartbeats (`no_heartbeats`)."""
    # The ephemeral API server starts in a subprocess; a loaded CI machine needs more than 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # The bank's network reaches no telemetry endpoint; trying only logs an error.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    if local_server:
        from kesu.flows import local_server as server

        server.ensure(say)
    if flows_run_here:
        HELD_SETTINGS.enter_context(no_heartbeats())


# Prefect settings held for the rest of the process (the local server's API URL, no
# heartbeats): a context left to the garbage collector would restore the old settings.
HELD_SETTINGS = contextlib.ExitStack()


@contextlib.contextmanager
def no_heartbeats() -> Iterator[bool]:
    """Flow runs started inside send no heartbeats, unless the user set their frequency
    (PREFECT_FLOWS_HEARTBEAT_FREQUENCY, a profile, prefect.toml); yields whether they are off.

    Prefect 3.8 sends one every 180 s by default, for zombie detection: an automation marks a
    run crashed when they stop, and kesu creates none (its own ledger records what a crash left,
    and the next run recovers it). The sending thread sleeps in 1 s steps and a flow run waits
    for it at its end, so every command that ran a flow ended 0-1 s late, for nothing.
    `kesu serve` keeps Prefect's default: its runs are processes of their own, where a crash
    is what the heartbeat is for.
    """
    from prefect.settings import get_current_settings, temporary_settings

    if "heartbeat_frequency" in get_current_settings().flows.model_fields_set:
        yield False
        return
    with temporary_settings(updates={"flows.heartbeat_frequency": None}):
        yield True
