"""The run ledger: one JSON file per run under ``_ledger/runs/``, named by a sortable run id."""

from __future__ import annotations

import dataclasses
import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path, PurePath
from typing import Any

from warehouse import paths
from warehouse.storage import is_remote, storage_for

RUNS = f"{paths.LEDGER}/runs"


def new_run_id(now: datetime) -> str:
    """``20260123T020000Z-<6 hex>``: sorts by start time (to the second), unique by the suffix."""
    if now.tzinfo is None:
        raise ValueError("new_run_id needs a timezone-aware datetime")
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def to_jsonable(value: Any) -> Any:
    """Dataclasses, paths and dates made JSON-ready, recursively."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: to_jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_jsonable(v) for v in value]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, date):  # datetime is a date too
        return value.isoformat()
    return value


def record_run(root: Path | str, run: dict[str, Any]) -> Path | str:
    """Write (or overwrite, e.g. at start and at finish) the run's ledger file atomically."""
    store = storage_for(root)
    key = paths.run_key(run["run_id"])
    text = json.dumps(to_jsonable(run), ensure_ascii=False, sort_keys=True, indent=1)
    store.write_bytes(key, text.encode("utf-8"))
    return store.location(key)


def list_runs(root: Path | str, limit: int | None = None) -> list[dict[str, Any]]:
    """Runs, newest first."""
    store = storage_for(root)
    names = [n for n in store.list_dir(RUNS) if n.endswith(".json")]
    ids = sorted((n.removesuffix(".json") for n in names if _is_run_id(n)), reverse=True)
    keys = [paths.run_key(i) for i in ids[:limit]]
    if is_remote(root):  # a request per record: fetch them side by side
        with ThreadPoolExecutor(max_workers=16) as pool:
            return [json.loads(data) for data in pool.map(store.read_bytes, keys)]
    return [json.loads(store.read_bytes(key)) for key in keys]


def last_successful_inputs(root: Path | str, feed: str, drop_date: date) -> dict[str, str] | None:
    """{file name: sha256} that the last completed run of this feed and drop read, or None."""
    for run in list_runs(root):
        feeds = run.get("feeds") or {}
        if (
            run.get("status") == "completed"
            and run.get("drop_date") == drop_date.isoformat()
            and feed in feeds
        ):
            return {i["name"]: i["sha256"] for i in feeds[feed].get("inputs", [])}
    return None


def _is_run_id(name: str) -> bool:
    try:
        paths.check_run_id(name.removesuffix(".json"))
    except ValueError:
        return False
    return True
