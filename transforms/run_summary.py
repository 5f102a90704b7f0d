"""What the run ledger says, summarised for `kesu status` and the backfill: pure functions over
ledger records (the dicts of `kesu.warehouse.ledger`), with the landing zone's dates passed in."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import date, timedelta
from typing import Any

STAGES = ("raw_copy", "stage", "publish")
OUTCOMES = ("ingested", "skipped", "no_data", "failed")
COUNTS = ("rows_in", "loaded", "quarantined")


def drop_outcome(run: dict[str, Any]) -> str:
    """What an ingest run did to its drop: ingested, skipped (every present feed unchanged since
    the last completed run), no_data (no feed had a folder) or failed."""
    if run.get("status") != "completed":
        return "failed"
    statuses = {r["status"] for r in (run.get("feeds") or {}).values()}
    if statuses <= {"no_folder"}:
        return "no_data"
    if statuses <= {"unchanged", "no_folder"}:
        return "skipped"
    return "ingested"


def drop_entry(day: date, run: dict[str, Any] | None, error: str | None) -> dict[str, Any]:
    """A backfill's record of one drop: outcome, run id, rows and seconds (or the error)."""
    if run is None:
        return {"drop_date": day.isoformat(), "outcome": "failed", "error": error}
    return {
        "drop_date": day.isoformat(),
        "outcome": drop_outcome(run),
        "run_id": run["run_id"],
        **_totals(run),
        "seconds": (run.get("seconds") or {}).get("total"),
    }


def backfill_summary(drops: list[dict[str, Any]]) -> dict[str, int]:
    """Drops per outcome, and rows over every drop."""
    outcomes = Counter(d["outcome"] for d in drops)
    rows = {k: sum(d.get(k) or 0 for d in drops) for k in COUNTS}
    return {o: outcomes.get(o, 0) for o in OUTCOMES} | rows


def run_rows(runs: list[dict[str, Any]], interrupted: Collection[str] = ()) -> list[dict]:
    """One row per run, in the order given: id, kind, what it covers, status, rows, seconds.

    `interrupted`: ids of runs recorded as running whose process is gone (the caller checks)."""
    rows = []
    for run in runs:
        kind = run.get("kind", "ingest")
        covered = run.get("drop_date") or f"{run.get('start')}..{run.get('end')}"
        status = "interrupted" if run["run_id"] in interrupted else run.get("status", "?")
        if kind == "backfill":
            s = run.get("summary") or backfill_summary(run.get("drops") or [])
            note = ", ".join(f"{s[o]} {o}" for o in OUTCOMES if s.get(o))
        else:
            s, note = _totals(run), drop_outcome(run) if status == "completed" else ""
        seconds = dict(run.get("seconds") or {})
        if kind != "backfill":
            for stage in STAGES:  # records written before stage timings: sum what the feeds kept
                seconds.setdefault(stage, _feed_seconds(run, stage))
        rows.append(
            {"run_id": run["run_id"], "kind": kind, "covers": covered, "status": status}
            | {k: s.get(k, 0) for k in COUNTS}
            | {f"seconds_{k}": seconds.get(k) for k in (*STAGES, "total")}
            | {"note": run.get("error") or note}
        )
    return rows


def drop_problems(
    runs: list[dict[str, Any]], landing: dict[str, set[date]], feeds: tuple[str, ...]
) -> list[dict[str, str]]:
    """One row per drop date and feed needing attention, over the dates the landing zone and the
    ledger cover: files never ingested by a completed run, the last run failed, files that failed
    or a feed unreadable in the last completed run, and days with no folder between a feed's first
    and last drop. `landing`: per feed, the dates whose folder holds files. `runs`: newest first."""
    ingests = [r for r in runs if r.get("kind", "ingest") == "ingest" and r.get("drop_date")]
    days = {date.fromisoformat(r["drop_date"]) for r in ingests} | set().union(*landing.values())
    if not days:
        return []
    by_day: dict[str, list[dict[str, Any]]] = {}
    for run in ingests:
        by_day.setdefault(run["drop_date"], []).append(run)
    problems = []
    for day in _range(min(days), max(days)):
        for feed in feeds:
            mine = by_day.get(day.isoformat(), [])
            problem = _feed_problem(day, feed, mine, landing.get(feed, set()))
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


def _feed_problem(
    day: date, feed: str, runs: list[dict[str, Any]], landed: set[date]
) -> dict[str, str] | None:
    completed = [r for r in runs if r.get("status") == "completed" and feed in r.get("feeds", {})]
    done = completed[0] if completed else None
    if runs and runs[0].get("status") == "failed":
        since = f"; last completed run {done['run_id']}" if done else ""
        error = f"run {runs[0]['run_id']}: {runs[0].get('error')}{since}"
        return {"problem": "failed", "detail": error}
    if done is None or done["feeds"][feed]["status"] == "no_folder":
        if day in landed:
            return {
                "problem": "not ingested",
                "detail": "landing files that no completed run read",
            }
        if landed and min(landed) < day < max(landed):
            return {"problem": "no drop", "detail": "no folder in the landing zone"}
        return None
    record = done["feeds"][feed]
    if record["status"] == "unreadable":
        why = record.get("error", "no file could be read")
        return {"problem": "unreadable", "detail": f"{why} in run {done['run_id']}"}
    failed = [f["name"] for f in record.get("files", []) if f.get("status") == "failed"]
    if failed:
        return {"problem": "failed files", "detail": f"{', '.join(failed)} in run {done['run_id']}"}
    not_read = [repr(s["name"]) for s in record.get("skipped", [])]
    if not_read:
        return {
            "problem": "files not read",
            "detail": f"{', '.join(not_read)} in run {done['run_id']}",
        }
    return None


def _totals(run: dict[str, Any]) -> dict[str, int]:
    if run.get("totals"):
        return {k: run["totals"].get(k, 0) for k in COUNTS}
    feeds = (run.get("feeds") or {}).values()
    return {k: sum(r.get(k, 0) for r in feeds) for k in COUNTS}


def _feed_seconds(run: dict[str, Any], stage: str) -> float | None:
    values = [(r.get("seconds") or {}).get(stage) for r in (run.get("feeds") or {}).values()]
    present = [v for v in values if v is not None]
    return round(sum(present), 3) if present else None


def _range(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]
