"""The simulated bank: its settings and a per-day cache of what happened on each day.

Everything created on a day is a pure function of (profile, seed, scale, day), so any range of
drops can be generated on its own and a day's files do not depend on where the range starts.
Records that span days (tickets, transfers) are created whole on their first day, with every
later version planned; a drop then collects the versions dated on it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import polars as pl

from .orgs import Branches
from .profiles import Profile
from .taxonomy import Taxonomy

DAY = 86_400
_EPOCH = dt.date(1970, 1, 1).toordinal()
# Longest life of a ticket (55 days) or a transfer (~52), in days: how far back a drop looks.
LOOKBACK = 56
# Hours of the day at which customers call (and agents log hotline tickets).
HOUR_WEIGHTS = np.array(
    [0.3, 0.2, 0.1, 0.1, 0.1, 0.2, 0.6, 1.8, 4.5, 8.0, 8.6, 7.8,
     5.6, 5.5, 7.6, 7.8, 7.2, 6.2, 4.6, 4.0, 3.6, 2.8, 1.6, 0.8]
)  # fmt: skip
HOUR_WEIGHTS = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()


@dataclass
class World:
    profile: Profile
    seed: int
    scale: float
    branches: Branches
    taxonomy: Taxonomy
    _cache: dict[tuple[str, int], Any] = field(default_factory=dict)
    _empty: dict[str, pl.DataFrame] = field(default_factory=dict)

    def once(self, what: str, day: dt.date, build: Callable[[World, dt.date], Any]) -> Any:
        """build(self, day), computed once per (what, day)."""
        key = (what, day.toordinal())
        if key not in self._cache:
            self._cache[key] = build(self, day)
        return self._cache[key]

    def unless_empty(self, what: str, n: int, build: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """build(); but a frame of n = 0 rows is built once and reused (most days of a small
        bank have no new transfer, and building a frame costs more than filling it)."""
        if n:
            return build()
        if what not in self._empty:
            self._empty[what] = build()
        return self._empty[what]

    def forget_before(self, day: dt.date) -> None:
        self._cache = {k: v for k, v in self._cache.items() if k[1] >= day.toordinal()}


def day_start(day: dt.date | int | np.ndarray) -> Any:
    """Seconds from 1970-01-01 00:00 to the midnight of a date or day ordinal(s), wall clock."""
    ordinal = day.toordinal() if isinstance(day, dt.date) else day
    return (ordinal - _EPOCH) * DAY


def next_workday(ordinals: np.ndarray) -> np.ndarray:
    """The same day, or the Monday after a Saturday or Sunday."""
    weekday = (ordinals - 1) % 7  # date.fromordinal(1) is a Monday
    return ordinals + np.where(weekday == 5, 2, np.where(weekday == 6, 1, 0))


def ordinal_of(seconds: np.ndarray) -> np.ndarray:
    """Day ordinal of wall-clock seconds."""
    return seconds // DAY + _EPOCH


def datetimes(seconds: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    """Naive China-local datetimes from wall-clock seconds; invalid positions become null."""
    series = pl.from_epoch(pl.Series(np.asarray(seconds, dtype=np.int64)), time_unit="s")
    return series if valid is None else series.scatter(np.flatnonzero(~valid), None)


def dates(ordinals: np.ndarray, valid: np.ndarray | None = None) -> pl.Series:
    series = pl.from_epoch(pl.Series(np.asarray(ordinals, dtype=np.int64) - _EPOCH), "d")
    return series if valid is None else series.scatter(np.flatnonzero(~valid), None)


def clock(rng: np.random.Generator, n: int, start_h: float, end_h: float) -> np.ndarray:
    """Seconds after midnight, uniform between two hours."""
    return rng.integers(int(start_h * 3600), int(end_h * 3600), n)


def busy_clock(rng: np.random.Generator, n: int) -> np.ndarray:
    """Seconds after midnight, following the hotline's hourly load."""
    return rng.choice(24, n, p=HOUR_WEIGHTS) * 3600 + rng.integers(0, 3600, n)


def pick(values: Sequence[str | None], idx: np.ndarray) -> pl.Series:
    """values[idx] as a Polars string column (fast for large idx)."""
    return pl.Series(list(values), dtype=pl.String).gather(np.asarray(idx, dtype=np.int64))
