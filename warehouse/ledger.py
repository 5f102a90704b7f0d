"""The run ledger: one JSON file per run under ``_ledger/runs/``, named by a sortable run id;
the records are `kesu.transforms.run_records`.

Over 250 lines: the run files and the per-drop pointers that spare a scan of every run are
written and read together (a pointer counts only when the run it names completed that drop).
"""

from __future__ import annotations

import errno
import json
import logging
import secrets
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kesu.transforms.run_records import (
    FeedRecord,
    IngestRun,
    Run,
    UnknownKind,
    holds_feed,
    run_from_jsonable,
    to_jsonable,
)
from kesu.warehouse import paths

if TYPE_CHECKING:
    from kesu.warehouse.warehouse import Warehouse

log = logging.getLogger("kesu.ledger")

RUNS = f"{paths.LEDGER}/runs"
STAMP = len("20260123T020000Z")  # a run id's start time, to the second


def new_run_id(now: datetime) -> str:
    """``20260123T020000Z-<6 hex>``: sorts by start time (to the second), unique by the suffix."""
    if now.tzinfo is None:
        raise ValueError("new_run_id needs a timezone-aware datetime")
    stamp = now.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(3)}"


def record_run(wh: Warehouse, run: Run) -> Path | str:
    """Write (or overwrite, e.g. at start and at finish) the run's ledger file atomically; on a
    disk too full for that, over the record already there (its "running" one), if it fits, so
    that the run's end (its error: the full disk) is recorded, not left "running"."""
    key = paths.run_key(run.run_id)
    data = _json_bytes(to_jsonable(run))
    try:
        wh.store.write_bytes(key, data)
    except OSError as exc:
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        if not (full and wh.store.rewrite_in_place(key, data)):
            raise
    return wh.store.location(key)


def list_runs(wh: Warehouse, limit: int | None = None) -> list[Run]:
    """Runs, newest first: by start time, which a run id holds to the second, and runs that
    started in the same second (two commands one after the other) by their records'
    `started_at`: the random suffix of their ids says nothing of their order."""
    store = wh.store
    ids = _run_ids(wh)
    if limit is not None and limit < len(ids):
        # the runs of the last second taken may go on past `limit`: read them all, then cut
        second = ids[limit - 1][:STAMP] if limit > 0 else None
        ids = ids[:limit] + [i for i in ids[limit:] if i[:STAMP] == second]
    keys = [paths.run_key(i) for i in ids]
    if wh.remote:  # a request per record: fetch them side by side
        with ThreadPoolExecutor(max_workers=16) as pool:
            datas = list(pool.map(store.read_bytes, keys))
    else:
        datas = [store.read_bytes(key) for key in keys]
    read = [_run(key, data) for key, data in zip(keys, datas, strict=True)]
    runs = [r for r in read if r is not None]
    return sorted(runs, key=_start_order, reverse=True)[:limit]


def _run(key: str, data: bytes) -> Run | None:
    """The record, or None (with a warning naming the file) when it cannot be read: one damaged
    or hand-edited file must not stop `kesu status` or a run from reading the others. The reason
    names a field or a position, never a value."""
    try:
        return run_from_jsonable(json.loads(data))
    except json.JSONDecodeError as e:
        reason = f"not JSON (line {e.lineno}, column {e.colno})"
    except UnicodeDecodeError as e:
        reason = f"not UTF-8 (byte {e.start})"
    except KeyError as e:
        reason = f"it lacks {e.args[0]!r}"
    except UnknownKind:
        reason = "a kind of run this version does not know"
    except (TypeError, ValueError, AttributeError) as e:
        reason = f"a field has the wrong shape ({type(e).__name__})"
    log.warning("ledger record %s left out: %s", key, reason)
    return None


def _start_order(run: Run) -> tuple[str, datetime, str]:
    """A run's place in time: its id's second, then its exact start, then its id."""
    return run.run_id[:STAMP], run.started_at, run.run_id


def _is_run_id(name: str) -> bool:
    try:
        paths.check_run_id(name.removesuffix(".json"))
    except ValueError:
        return False
    return True


# Per-drop pointers: `_ledger/drops/<date>.json` names, per feed, the last completed run whose
# record of that feed can be reused (with its fingerprint and inputs), so deciding whether a drop
# is unchanged reads two small files instead of every run file: constant cost per drop however
# long the ledger grows. Written by a completing run, and only when the entry's meaning changes
# (a rerun of unchanged inputs leaves the file as it was), with a conditional write: runs on two
# machines completing the same drop at once each re-read and retry, so neither update is lost.
# Runs from before the pointers existed are found by a scan, limited to the runs that
# `since.json` (written the first time a pointer is needed) says may lack one.
DROPS = f"{paths.LEDGER}/drops"
POINTER_ATTEMPTS = 20
POINTERS_SINCE = f"{DROPS}/since.json"


def _drop_pointer_key(drop_date: date) -> str:
    return f"{DROPS}/{drop_date.isoformat()}.json"


def _write_json(wh: Warehouse, key: str, value: dict[str, Any]) -> None:
    wh.store.write_bytes(key, _json_bytes(value))


def _json_bytes(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, sort_keys=True, indent=1).encode("utf-8")


def _run_ids(wh: Warehouse) -> list[str]:
    """Every run id, newest first (names only: no file is read)."""
    names = [n for n in wh.store.list_dir(RUNS) if n.endswith(".json")]
    return sorted((n.removesuffix(".json") for n in names if _is_run_id(n)), reverse=True)


def _pointers_since(wh: Warehouse) -> str:
    """The newest run that may predate the pointers ("" when none); fixed once, when first asked.

    A damaged marker is warned of and rewritten as "": no run is then looked up by the scan, so a
    drop only those runs completed is staged again (its tables come out the same) and points at
    its new run from then on. Reading it as "every run" would scan the whole ledger per drop."""
    data = _read_bytes(wh, POINTERS_SINCE)
    if data is None:
        ids = _run_ids(wh)
        since = ids[0] if ids else ""
        if wh.store.create(POINTERS_SINCE, _json_bytes({"runs_up_to": since})):
            return since
        data = _read_bytes(wh, POINTERS_SINCE)  # another run's first: use it
        if data is None:
            return since
    marked = _since_marker(data)
    if marked is None:
        log.warning(
            "ledger marker %s left out: not a pointers marker; drops whose last completed run "
            "predates the pointers are staged again",
            POINTERS_SINCE,
        )
        # unconditional: every run that finds it damaged writes these same bytes
        _write_json(wh, POINTERS_SINCE, {"runs_up_to": ""})
        return ""
    return marked


def _since_marker(data: bytes) -> str | None:
    """The run id `since.json` holds ("" for none), or None if the file is damaged."""
    try:
        marker = json.loads(data)
    except ValueError:  # not JSON, or not UTF-8
        return None
    since = marker.get("runs_up_to") if isinstance(marker, dict) else None
    return since if isinstance(since, str) and (since == "" or _is_run_id(since)) else None


def last_feed_record(
    wh: Warehouse, feed: str, drop_date: date, statuses: tuple[str, ...]
) -> FeedRecord | None:
    """The feed's record in the newest completed run of the drop where its status is one of
    `statuses`, or None: from the drop's pointer, else by scanning the runs older than it.
    A damaged pointer or record counts as none: the drop is staged again, not skipped."""
    key = _drop_pointer_key(drop_date)
    entry = _pointer(key, _read_bytes(wh, key), drop_date)["feeds"].get(feed)
    if entry is not None:
        pointed = _read_run(wh, paths.run_key(entry["run_id"]))
        if pointed is not None and holds_feed(pointed, drop_date, feed, statuses):
            return pointed.feeds[feed]
    since = _pointers_since(wh)
    for run_id in _run_ids(wh):
        if run_id > since:
            continue
        run = _read_run(wh, paths.run_key(run_id))
        if run is not None and holds_feed(run, drop_date, feed, statuses):
            return run.feeds[feed]
    return None


def _read_bytes(wh: Warehouse, key: str) -> bytes | None:
    try:
        return wh.store.read_bytes(key)
    except FileNotFoundError:
        return None


def _read_run(wh: Warehouse, key: str) -> Run | None:
    """The run recorded at `key`, or None if it is gone or cannot be read (warned of)."""
    data = _read_bytes(wh, key)
    return None if data is None else _run(key, data)


def _pointer(key: str, data: bytes | None, drop_date: date) -> dict[str, Any]:
    """A drop's pointer from its file's bytes (None: no file yet). A damaged one is warned of
    and read as empty: the drop is staged again, and its next completed run writes it anew."""
    if data is not None:
        try:
            pointer = json.loads(data)
        except ValueError:  # not JSON, or not UTF-8
            pointer = None
        if isinstance(pointer, dict) and _entries_sound(pointer.setdefault("feeds", {})):
            return pointer
        log.warning("ledger pointer %s left out: not a drop pointer; its drop is staged again", key)
    return {"drop_date": drop_date.isoformat(), "feeds": {}}


def _entries_sound(feeds: Any) -> bool:
    """A pointer's feeds: an object of entries that each name a run by a valid id."""
    return isinstance(feeds, dict) and all(
        isinstance(e, dict) and _is_run_id(str(e.get("run_id"))) for e in feeds.values()
    )


def point_drop_at(wh: Warehouse, run: IngestRun, statuses: tuple[str, ...]) -> bool:
    """Update the drop's pointer after `run` completed (call under the drop's lock): each feed
    whose status is one of `statuses` and whose fingerprint or inputs differ from the pointed
    run's now points at `run`. Returns whether the file was written."""
    drop_date = run.drop_date
    _pointers_since(wh)  # fixed before the first pointer, so older runs stay findable
    key = _drop_pointer_key(drop_date)
    store = wh.store
    for _ in range(POINTER_ATTEMPTS):  # a run on another machine may update it at once
        found = store.read_tagged(key)
        pointer = _pointer(key, found[0] if found else None, drop_date)
        if not _point_at(pointer, run, statuses):
            return False
        if store.replace(key, _json_bytes(pointer), found[1] if found else None):
            return True
    raise RuntimeError(f"{key}: changed by other runs {POINTER_ATTEMPTS} times in a row")


def _point_at(pointer: dict[str, Any], run: IngestRun, statuses: tuple[str, ...]) -> bool:
    """Point the pointer's feeds at `run` where it should; whether anything changed."""
    changed = False
    for feed, record in run.feeds.items():
        if record.status not in statuses:
            continue
        entry = {
            "run_id": run.run_id,
            "fingerprint": record.fingerprint,
            "inputs": record.input_sums(),
        }
        old = pointer["feeds"].get(feed) or {}
        if (old.get("fingerprint"), old.get("inputs")) != (entry["fingerprint"], entry["inputs"]):
            pointer["feeds"][feed], changed = entry, True
    return changed
