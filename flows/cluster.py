"""Where a backfill's drops run: Prefect's side of it, threads of this process, or a Dask cluster.

On one machine the drops' tasks run on threads of this process, and each task hands its drop to
a worker process of the backfill's own (`kesu.flows.drop_processes`; with the flow's `threads`
the drop runs in the task's thread): a second drop fills the time the first spends on disk and
single-threaded Python, and in processes their Python does not share a GIL. A Dask cluster
(`prefect_dask.DaskTaskRunner` connected to a running scheduler) spreads the drops over machines.
The runner is entered here, inside the flow, rather than fixed on the `@flow` decorator, because
the address is a run parameter (`kesu backfill --dask-address`, or `-p dask_address=…` on the
deployment).

What a Dask worker needs to run a drop:
- kesu installed, at the same version (the staging code is part of each drop's fingerprint) —
  the task is sent by reference to `kesu.flows.backfill`;
- the landing zone and the warehouse at the same absolute paths as on the machine that starts
  the backfill (a shared filesystem; flock locks need a POSIX one, e.g. NFSv4; an s3:// landing
  zone is read from its bucket), and the
  reference files named by the configuration; the settings travel as values, already resolved;
- the PII key, from its own environment (`KESU_PII_KEY`, or the key file named by `[pii]
  key_file` / `KESU_PII_KEY_FILE` readable at the same path): the same key on every worker, or
  its drops get other tokens; and, when the machine that starts the backfill has a key too, that
  key (compared by key id), or the cluster's drops would get other tokens than this machine's
  runs. The key is never a task parameter: it would land in Prefect's database;
- a Prefect server it can reach, in its own environment too (`PREFECT_API_URL`): the flow's
  settings travel with each task, but Prefect's background threads in a worker (logs, events)
  read the environment, and without it each worker starts a temporary API of its own and its
  logs go nowhere. The ephemeral API of a process without `PREFECT_API_URL` is private to that
  process, so Dask needs a real server.

`task_runner` checks the key and the API on every worker before the first drop (`worker_facts`),
so a worker set up wrong stops the backfill with one line instead of failing each of its drops.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kesu.flows.config import ConfigError, Settings
from kesu.flows.pii_key import KeyFileMissing, PiiKey, find_pii_key, resolve_pii_key
from prefect.settings import PREFECT_API_URL
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

CONNECT_TIMEOUT_SECONDS = 5  # a scheduler on the same network answers in milliseconds


class DaskUnreachable(ConfigError):
    """No Dask scheduler answered at the address given."""


class WorkersNotReady(ConfigError):
    """Some Dask worker lacks what a drop needs (the PII key, the Prefect API's address)."""


def worker_facts(settings: Settings) -> dict[str, str]:
    """Runs on each Dask worker: its Prefect API address and its key's id (never the key)."""
    try:
        key_id = resolve_pii_key(settings).key_id
    except ConfigError as exc:
        key_id = f"error: {exc}"
    return {"api": os.environ.get("PREFECT_API_URL", ""), "key_id": key_id}


def key_here(settings: Settings) -> PiiKey | None:
    """The PII key of the process starting the backfill, found as `preflight` finds it; None
    when it has none, or names a key file that only the workers hold (at the same path)."""
    try:
        return find_pii_key(settings)
    except KeyFileMissing:
        return None


def worker_problems(facts: dict[str, dict[str, str]], here: PiiKey | None = None) -> list[str]:
    """What is wrong with the workers, from `worker_facts` of each (by worker address); with
    `here` (this process's key) every worker must hold that key."""
    problems = [
        f"{worker}: no PREFECT_API_URL in its environment"
        for worker, fact in sorted(facts.items())
        if not fact["api"]
    ]
    problems += [
        f"{worker}: {fact['key_id'].removeprefix('error: ')}"
        for worker, fact in sorted(facts.items())
        if fact["key_id"].startswith("error: ")
    ]
    key_ids = {f["key_id"] for f in facts.values() if not f["key_id"].startswith("error: ")}
    if len(key_ids) > 1:
        problems.append(f"the workers hold {len(key_ids)} different PII keys; they need one")
    if here is not None and key_ids - {here.key_id}:
        problems.append(
            f"their PII key (key id {', '.join(sorted(key_ids - {here.key_id}))}) is not this "
            f"command's (key id {here.key_id}, from {here.source}): their drops would get other "
            "tokens than this machine's runs; give both the same key"
        )
    if not facts:
        problems.append("the cluster has no workers")
    return problems


def require_prefect_server() -> None:
    """Raise `ConfigError` unless a Prefect server is named (`PREFECT_API_URL`): the CLI asks
    before starting the flow, the flow again for runs started elsewhere (a deployment)."""
    if not PREFECT_API_URL.value():
        raise ConfigError(
            "running drops on a Dask cluster needs a Prefect server its workers can reach: "
            "set PREFECT_API_URL (e.g. after `prefect server start`); the temporary API that "
            "Prefect starts without it is private to this process"
        )


@contextmanager
def task_runner(
    workers: int, dask_address: str | None, settings: Settings
) -> Iterator[TaskRunner[Any]]:
    """A started task runner: `workers` threads, or the Dask cluster at `dask_address` (its
    workers checked: each must resolve the same PII key, this process's when it has one, and
    know the Prefect API)."""
    if not dask_address:
        threads: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=workers)
        with threads:
            yield threads
        return
    require_prefect_server()
    here = key_here(settings)  # a key set here but unusable stops the backfill, as preflight does
    from prefect_dask import DaskTaskRunner

    dask = DaskTaskRunner(address=dask_address, client_kwargs={"timeout": CONNECT_TIMEOUT_SECONDS})
    with dask:
        try:
            client = dask.client  # connects now, so a bad address fails before any drop
        except Exception as exc:
            raise DaskUnreachable(
                f"no Dask scheduler answered at {dask_address} within "
                f"{CONNECT_TIMEOUT_SECONDS} s ({type(exc).__name__}: {exc})"
            ) from exc
        problems = worker_problems(client.run(worker_facts, settings), here)
        if problems:
            raise WorkersNotReady(f"Dask workers at {dask_address}: " + "; ".join(problems))
        yield dask
