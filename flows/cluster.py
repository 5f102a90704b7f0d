"""Where a backfill's drops run: on threads of this process, or on a Dask cluster.

Threads are the default: a drop is mostly Polars, which releases the GIL, so on one machine a
second thread fills the time the first spends on disk and single-threaded Python. A Dask cluster
(`prefect_dask.DaskTaskRunner` connected to a running scheduler) spreads the drops over machines.
The runner is entered here, inside the flow, rather than fixed on the `@flow` decorator, because
the address is a run parameter (`kesu backfill --dask-address`, or `-p dask_address=…` on the
deployment).

What a Dask worker needs to run a drop:
- kesu installed, at the same version (the staging code is part of each drop's fingerprint) —
  the task is sent by reference to `flows.backfill`;
- the landing zone and the warehouse at the same absolute paths as on the machine that starts
  the backfill (a shared filesystem; flock locks need a POSIX one, e.g. NFSv4), and the
  reference files named by the configuration; the settings travel as values, already resolved;
- the PII key, from its own environment (`KESU_PII_KEY`, or the key file named by `[pii]
  key_file` / `KESU_PII_KEY_FILE` readable at the same path): the same key on every worker, or
  its drops get other tokens. The key is never a task parameter: it would land in Prefect's
  database;
- a Prefect API it can reach: the flow's settings travel with each task, so the workers report
  to the server in `PREFECT_API_URL`. The ephemeral API of a process without `PREFECT_API_URL`
  is private to that process (each worker would start its own), so Dask needs a real server.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from prefect.settings import PREFECT_API_URL
from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from flows.config import ConfigError

CONNECT_TIMEOUT_SECONDS = 5  # a scheduler on the same network answers in milliseconds


class DaskUnreachable(ConfigError):
    """No Dask scheduler answered at the address given."""


@contextmanager
def task_runner(workers: int, dask_address: str | None) -> Iterator[TaskRunner[Any]]:
    """A started task runner: `workers` threads, or the Dask cluster at `dask_address`."""
    if not dask_address:
        threads: ThreadPoolTaskRunner[Any] = ThreadPoolTaskRunner(max_workers=workers)
        with threads:
            yield threads
        return
    if not PREFECT_API_URL.value():
        raise ConfigError(
            "running drops on a Dask cluster needs a Prefect server its workers can reach: "
            "set PREFECT_API_URL (e.g. after `prefect server start`); the temporary API that "
            "Prefect starts without it is private to this process"
        )
    from prefect_dask import DaskTaskRunner

    dask = DaskTaskRunner(address=dask_address, client_kwargs={"timeout": CONNECT_TIMEOUT_SECONDS})
    with dask:
        try:
            dask.client  # noqa: B018  (connects now, so a bad address fails before any drop)
        except Exception as exc:
            raise DaskUnreachable(
                f"no Dask scheduler answered at {dask_address} within "
                f"{CONNECT_TIMEOUT_SECONDS} s ({type(exc).__name__}: {exc})"
            ) from exc
        yield dask
