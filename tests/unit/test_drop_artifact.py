"""A backfill drop's `ingest-<date>` artifact is made by the flow after the drop is in: if the
Prefect API cannot take it, the flow says so in a warning and the drop still counts."""

from __future__ import annotations

import logging
import socket
import uuid
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime

from kesu.flows.backfill import _drop_artifact
from kesu.transforms.run_records import FeedRecord, IngestRun
from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES, temporary_settings

STARTED = datetime(2025, 3, 2, 2, 0, tzinfo=UTC)
RUN = IngestRun(
    "20250302T020000Z-000000",
    date(2025, 3, 1),
    STARTED,
    feeds={"hotline": FeedRecord("loaded", rows_in=3, loaded=2, quarantined=1, files=[])},
)


@dataclass(frozen=True)
class Finished:
    """What the flow reads of a finished drop's future: the task run to attach the artifact to."""

    task_run_id: uuid.UUID


def _refusing_url() -> str:
    """An API address on loopback where nothing listens: every connection is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/api"


def test_an_api_that_refuses_the_artifact_gives_a_warning_not_a_failed_drop(caplog):
    log = logging.getLogger("kesu.test.drop_artifact")
    settings = {PREFECT_API_URL: _refusing_url(), PREFECT_CLIENT_MAX_RETRIES: 0}
    with (
        temporary_settings(settings),
        caplog.at_level(logging.WARNING, logger=log.name),
        warnings.catch_warnings(),
    ):
        # made here outside a flow run, which Prefect deprecates; the backfill makes it in one
        warnings.simplefilter("ignore", FutureWarning)
        _drop_artifact(date(2025, 3, 1), RUN, Finished(uuid.uuid4()), log)  # does not raise
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert record.getMessage() == (
        "2025-03-01: the ingest-2025-03-01 artifact was not made (ConnectError)"
    )
