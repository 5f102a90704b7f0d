"""What a scheduled run processes, from the time it was scheduled for (not the time it started).

Pure: the scheduled time is passed in, so a run that starts late — a server that was down at
02:00, a retry, a queue — still processes the day or quarter it was scheduled for.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

TIMEZONE = "Asia/Shanghai"
CHINA = ZoneInfo(TIMEZONE)


def china_date(scheduled: datetime) -> date:
    if scheduled.tzinfo is None:
        raise ValueError("a scheduled time needs a time zone")
    return scheduled.astimezone(CHINA).date()


def previous_drop_date(scheduled: datetime) -> date:
    """The drop a nightly run scheduled at `scheduled` ingests: the day before, China date."""
    return china_date(scheduled) - timedelta(days=1)


def quarter_just_ended(scheduled: datetime) -> str:
    """The last calendar quarter that ended before `scheduled` (China date), e.g. "2025Q4"."""
    today = china_date(scheduled)
    quarter_start = date(today.year, 3 * ((today.month - 1) // 3) + 1, 1)
    last_day = quarter_start - timedelta(days=1)
    return f"{last_day.year}Q{(last_day.month - 1) // 3 + 1}"


def month_just_ended(scheduled: datetime) -> str:
    """The last calendar month that ended before `scheduled` (China date), e.g. "2025-06"."""
    last_day = china_date(scheduled).replace(day=1) - timedelta(days=1)
    return f"{last_day.year}-{last_day.month:02d}"
