"""What the `kesu` sub-commands share: argument types that reject bad input with one clear line,
and the Prefect settings every command that runs a flow starts with."""

from __future__ import annotations

import argparse
import os
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


def prefect_defaults() -> None:
    """Environment defaults for a command about to run a flow (explicit settings still win)."""
    # The ephemeral API server starts in a subprocess; a loaded CI machine needs more than 20 s.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # The bank's network reaches no telemetry endpoint; trying only logs an error.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
