"""Argument types shared by the `kesu` sub-commands: each rejects bad input with one clear line."""

from __future__ import annotations

import argparse
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
