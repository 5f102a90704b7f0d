"""What a stopped backfill tells its user to run next (kesu.flows.backfill)."""

from __future__ import annotations

from datetime import UTC, date, datetime

from kesu.flows.backfill import _force_again
from kesu.transforms.run_records import BackfillRun, DropEntry


def test_a_stopped_force_backfill_names_the_days_it_did_not_do() -> None:
    """Run again as it was, a `--force` backfill redoes the drops that completed too: the line
    it stops with names the days left, as ranges to give it."""
    days = [date(2025, 8, d) for d in range(1, 11)]
    record = BackfillRun("r", days[0], days[-1], datetime(2026, 1, 1, tzinfo=UTC), force=True)
    record.drops = [DropEntry(date(2025, 8, d), "ingested") for d in (1, 2, 3, 5, 9)]
    assert _force_again(days, record) == (
        "run with --force again over the drops not done to finish (the same command would redo "
        "those that completed): 2025-08-04, 2025-08-06..2025-08-08, 2025-08-10"
    )
