"""What the run ledger says, summarised for `kesu status` and the backfill: pure functions over
ledger records (`kesu.transforms.run_records`), with what the landing zone holds passed in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Collection
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from kesu.transforms.run_records import (
    BackfillRun,
    DropEntry,
    FeedRecord,
    FileOutcome,
    IngestRun,
    Run,
    holds_feed,
)

if TYPE_CHECKING:
    from kesu.transforms.file_names import Since

STAGES = ("raw_copy", "stage", "publish")
OUTCOMES = ("ingested", "skipped", "no_data", "failed")
COUNTS = ("rows_in", "loaded", "quarantined")


def drop_outcome(run: IngestRun) -> str:
    """What an ingest run did to its drop: ingested, skipped (every present feed unchanged since
    the last completed run), no_data (no feed had a folder) or failed."""
    if run.status != "completed":
        return "failed"
    statuses = {r.status for r in run.feeds.values()}
    if statuses <= {"no_folder"}:
        return "no_data"
    if statuses <= {"unchanged", "no_folder"}:
        return "skipped"
    return "ingested"


def drop_entry(day: date, run: IngestRun | None, error: str | None) -> DropEntry:
    """A backfill's record of one drop: outcome, run id, rows and seconds (or the error)."""
    if run is None:
        return DropEntry(day, "failed", error=error)
    totals = _totals(run)
    return DropEntry(
        day,
        drop_outcome(run),
        run.run_id,
        totals["rows_in"],
        totals["loaded"],
        totals["quarantined"],
        run.seconds.get("total"),
    )


def backfill_summary(drops: list[DropEntry]) -> dict[str, int]:
    """Drops per outcome, and rows over every drop."""
    outcomes = Counter(d.outcome for d in drops)
    rows = {k: sum(getattr(d, k) or 0 for d in drops) for k in COUNTS}
    return {o: outcomes.get(o, 0) for o in OUTCOMES} | rows


def run_rows(runs: list[Run], interrupted: Collection[str] = ()) -> list[dict[str, Any]]:
    """One row per run, in the order given: id, kind, what it covers, status, rows, seconds.

    `interrupted`: ids of runs recorded as running whose process is gone (the caller checks)."""
    rows = []
    for run in runs:
        status = "interrupted" if run.run_id in interrupted else run.status
        seconds: dict[str, float | None] = dict(run.seconds)
        if isinstance(run, BackfillRun):
            s = run.summary or backfill_summary(run.drops)
            note = ", ".join(f"{s[o]} {o}" for o in OUTCOMES if s.get(o))
        else:
            s, note = _totals(run), drop_outcome(run) if status == "completed" else ""
            for stage in STAGES:  # records written before stage timings: sum what the feeds kept
                seconds.setdefault(stage, _feed_seconds(run, stage))
        rows.append(
            {"run_id": run.run_id, "kind": run.kind, "covers": run.covers, "status": status}
            | {k: s.get(k, 0) for k in COUNTS}
            | {f"seconds_{k}": seconds.get(k) for k in (*STAGES, "total")}
            | {"note": run.error or note}
        )
    return rows


def drop_problems(
    runs: list[Run],
    landing: dict[str, set[date]],
    feeds: tuple[str, ...],
    interrupted: Collection[str] = (),
    landed_since: LandedSince | None = None,
) -> list[dict[str, str]]:
    """One row per drop date and feed needing attention, over the dates the landing zone and the
    ledger cover: files never ingested by a completed run, the last run failed or was
    interrupted, files that failed or a feed unreadable in the last completed run, files landed,
    changed or removed after it, days with no folder between a feed's first and last drop, and
    a feed with no folder on the newest day any feed landed (if it ever landed, or a run of that
    day asked for it). A run that found no folder for a feed does not count as its last
    completed run (`run_records.holds_feed`).
    `landing`: per feed, the dates whose folder holds files. `runs`: newest first.
    `interrupted`: as for `run_rows`. `landed_since(feed, day, record)`: how the feed's folder
    differs from what the last completed run's `record` read (`file_names.Since`: the files it
    did not read as they are now, and those it read that are gone; names as shown)."""
    ingests = [r for r in runs if isinstance(r, IngestRun)]
    days = {r.drop_date for r in ingests} | set().union(*landing.values())
    if not days:
        return []
    by_day: dict[date, list[IngestRun]] = {}
    for run in ingests:
        by_day.setdefault(run.drop_date, []).append(run)
    newest = max(set().union(*landing.values()), default=None)  # the day any feed last landed
    problems = []
    for day in _range(min(days), max(days)):
        for feed in feeds:
            mine = by_day.get(day, [])
            landed = landing.get(feed, set())
            problem = _feed_problem(day, feed, mine, landed, interrupted, landed_since)
            expected = landed or any(feed in r.feeds for r in mine)  # landed once, or run
            if problem is None and day == newest and day not in landed and expected:
                # other feeds reached the newest drop day and this one has not: what an
                # operator checks each morning (a feed no run asked for and that never landed
                # is not one this warehouse takes)
                problem = {"problem": "no drop", "detail": NOT_LANDED_NEWEST}
            if problem:
                problems.append({"drop_date": day.isoformat(), "feed": feed} | problem)
    return problems


def problem_spans(problems: list[dict[str, str]], feeds: tuple[str, ...]) -> list[dict[str, str]]:
    """One row per span of consecutive drop dates with the same problem for the same feeds
    ("all" when every feed has it): what a person reads instead of one row per day and feed."""
    feeds_by_day: dict[tuple[str, str, str], list[str]] = {}
    for p in problems:
        feeds_by_day.setdefault((p["drop_date"], p["problem"], p["detail"]), []).append(p["feed"])
    days_by_kind: dict[tuple[str, str, str], list[date]] = {}
    for (day, problem, detail), names in feeds_by_day.items():
        which = "all" if sorted(names) == sorted(feeds) else ", ".join(names)
        days_by_kind.setdefault((which, problem, detail), []).append(date.fromisoformat(day))
    spans = []
    for (which, problem, detail), days in days_by_kind.items():
        days.sort()
        first = days[0]
        for prev, nxt in zip(days, [*days[1:], None], strict=True):
            if nxt is None or nxt != prev + timedelta(days=1):
                span = {"first": first.isoformat(), "last": prev.isoformat(), "feeds": which}
                spans.append(span | {"problem": problem, "detail": detail})
                first = nxt or first
    return sorted(spans, key=lambda r: (r["first"], r["problem"], r["feeds"]))


NOT_LANDED_NEWEST = (
    "no folder in the landing zone on the newest drop day, which other feeds reached"
)
LandedSince = Callable[[str, date, FeedRecord], "Since"]


def _feed_problem(
    day: date,
    feed: str,
    runs: list[IngestRun],
    landed: set[date],
    interrupted: Collection[str],
    landed_since: LandedSince | None,
) -> dict[str, str] | None:
    # the newest completed run that found the feed's folder: one that found none left the
    # partitions as an earlier run published them (the rule the skip logic uses)
    done = next((r for r in runs if holds_feed(r, day, feed)), None)
    since = f"; last completed run {done.run_id}" if done else ""
    if runs and runs[0].status == "failed":
        error = f"run {runs[0].run_id}: {runs[0].error}{since}"
        return {"problem": "failed", "detail": error}
    if runs and (runs[0].run_id in interrupted or runs[0].status == "interrupted"):
        # killed, or stopped by a signal: what it was to do is not done
        why = runs[0].error if runs[0].status == "interrupted" else "its process is gone"
        gone = f"run {runs[0].run_id} stopped while running ({why}){since}"
        return {"problem": "interrupted", "detail": gone}
    if done is None:
        if day in landed:
            return {
                "problem": "not ingested",
                "detail": "landing files that no completed run read",
            }
        if landed and min(landed) < day < max(landed):
            return {"problem": "no drop", "detail": "no folder in the landing zone"}
        return None
    record, in_run = done.feeds[feed], f"in run {done.run_id}"
    # Files landed or changed after that run: a late or corrected export the tables do not have;
    # files removed since, whose rows the tables still have. Said beside any other problem of
    # the day: a re-run reads the folder as it is (unchanged files are skipped).
    late, removed = landed_since(feed, day, record) if landed_since and day in landed else ([], [])
    also_late = f"; landed or changed since: {', '.join(late)}" if late else ""
    if removed:
        also_late += f"; removed since: {', '.join(removed)}"
    if record.status == "unreadable":
        detail = f"{unreadable_why(record)} {in_run}; {unreadable_effect(record)}{also_late}"
        return {"problem": "unreadable", "detail": detail}
    failed = [f.name for f in record.failed_files]
    not_read = [repr(s.name) for s in record.skipped]
    if failed:  # the files not read too: a day's one problem must not hide them
        also = f"; not read: {', '.join(not_read)}" if not_read else ""
        detail = f"{', '.join(failed)}{also} {in_run}{also_late}"
        return {"problem": "failed files", "detail": detail}
    if not_read:
        return {"problem": "files not read", "detail": f"{', '.join(not_read)} {in_run}{also_late}"}
    if late:
        also = f"; removed since: {', '.join(removed)}" if removed else ""
        detail = f"{', '.join(late)}: landed or changed after run {done.run_id}{also}"
        detail += "; run the drop again"
        return {"problem": "landed since", "detail": detail}
    if removed:
        detail = (
            f"{', '.join(removed)}: removed from the folder after run {done.run_id}; a re-run "
            "rebuilds the drop without it"
        )
        return {"problem": "removed since", "detail": detail}
    return None


def unreadable_why(record: FeedRecord) -> str:
    """Why a feed was unreadable: its recorded error, else its failed files and their reasons."""
    if record.error:
        return record.error
    failed = [_failure(f) for f in record.failed_files]
    return "; ".join(failed) if failed else "no file could be read"


def unreadable_detail(record: FeedRecord) -> str:
    """Why a feed was unreadable, then what its run did to the drop (`unreadable_effect`)."""
    return f"{unreadable_why(record)}; {unreadable_effect(record)}"


def unreadable_effect(record: FeedRecord) -> str:
    """What the run of an unreadable feed did to its drop: every file failed but it published
    (staged rows removed, rows held in quarantine), or it published nothing and the drop keeps
    what an earlier run loaded."""
    if not record.outputs:
        return "nothing published: the drop keeps what an earlier run loaded"
    removed = sorted({p.table for p in record.outputs if p.action == "removed"})
    gone = f"its staged rows removed ({', '.join(removed)})" if removed else "no row loaded"
    return f"{gone}, {record.quarantined} row(s) held in quarantine"


def _failure(f: FileOutcome) -> str:
    if f.rejected:  # its message goes on to what to do: the file and the columns say it here
        return f"{f.name}: required column(s) {', '.join(f.rejected)} missing"
    if not f.message:
        return f"{f.name} failed"
    return f.message if f.message.startswith(f.name) else f"{f.name}: {f.message}"


def _totals(run: IngestRun) -> dict[str, int]:
    if run.totals:
        return {k: run.totals.get(k, 0) for k in COUNTS}
    return {k: sum(getattr(r, k) for r in run.feeds.values()) for k in COUNTS}


def _feed_seconds(run: IngestRun, stage: str) -> float | None:
    present = [r.seconds[stage] for r in run.feeds.values() if stage in r.seconds]
    return round(sum(present), 3) if present else None


def _range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
