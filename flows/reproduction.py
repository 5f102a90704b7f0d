"""`kesu report … --reproduce manifest.json`: what a report's manifest asks to rebuild, and the
checks that the rebuild will be that report, byte for byte.

A reproduction reads the tables at the versions the manifest recorded, under the report settings
it recorded: the same rows under another `[report] rounding` give other tables, so today's
kesu.toml does not apply (where it differs, a warning names the keys). What cannot be had again
refuses the reproduction in one line naming it, before anything is written: a version that
`kesu maintain` removed (its log entry expired, or files it reads vacuumed), a reference file
that changed since, a recorded setting this kesu does not know. The flow checks once (`check`,
on S3 a request per file read); a version `kesu maintain` removes after that, while the report
reads it, is refused by the read in the same line (`reading`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from kesu.flows.config import DEFAULTS, Settings
from kesu.transforms.reporting import ReportConfig
from kesu.warehouse import reader
from kesu.warehouse.tables import VersionUnavailable

from kesu import version as kesu_version

# The kesu.toml tables a report's files depend on (ReportConfig's, and the disclosure's text);
# the others concern ingest, watch, storage.
REPORT_SECTIONS = ("report", "sla", "hotline", "merge", "disclosure")
# Reference files whose content shapes the tables; the manifest records their sha256.
REFERENCE_FILES = ("branches", "codes", "label_map", "denominators")


class NotReproducible(RuntimeError):
    """The report a manifest describes cannot be rebuilt exactly; the message says why."""


@dataclass(frozen=True)
class Reproduction:
    """What a report's manifest recorded of how it was built."""

    kind: str
    period: str
    as_of: date
    versions: dict[str, int | None]  # table -> Delta version read (None: no table yet)
    configuration: dict[str, Any]  # kesu.toml's tables as then, with `reference_files`
    kesu_version: str


def read_manifest(path: str | Path) -> Reproduction:
    """The manifest at `path`, read back."""
    record = json.loads(Path(path).read_text(encoding="utf-8"))
    versions = record.get("table_versions")
    if not isinstance(versions, dict):
        raise ValueError(f"{path}: no table_versions (written before kesu recorded them)")
    if not isinstance(record.get("configuration"), dict):
        raise ValueError(f"{path}: no configuration recorded (not a report's manifest?)")
    return Reproduction(
        kind=record["kind"],
        period=record["period"],
        as_of=date.fromisoformat(record["as_of"]),
        versions=versions,
        configuration=record["configuration"],
        kesu_version=record.get("kesu_version", "unknown"),
    )


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def reference_files(settings: Settings) -> dict[str, dict[str, str]]:
    """Path and sha256 of each reference file a report reads, as its manifest records them
    (denominators only where the bank has the file)."""
    found = {}
    for name in REFERENCE_FILES:
        path = settings.reference_path(name)
        if name != "denominators" or path.is_file():
            found[name] = {"path": str(path), "sha256": sha256_of(path)}
    return found


def recorded_settings(settings: Settings, then: Reproduction) -> tuple[Settings, list[str]]:
    """`settings` with the report's tables of kesu.toml as the manifest recorded them (a key it
    lacks, added to kesu since: its default), and what differs from `settings`, one item per key.
    A recorded key this kesu does not know, or a value it refuses, is NotReproducible."""
    values = dict(settings.values)
    unknown = []
    for section in REPORT_SECTIONS:
        recorded = then.configuration.get(section, {})
        unknown += [f"[{section}] {key}" for key in recorded if key not in DEFAULTS[section]]
        values[section] = DEFAULTS[section] | recorded
    if unknown:
        raise NotReproducible(
            f"the manifest's settings {', '.join(unknown)} are unknown to kesu "
            f"{kesu_version()} (the report was built by kesu {then.kesu_version}); "
            "the report cannot be reproduced"
        )
    try:
        ReportConfig.from_settings(values)
    except ValueError as refused:
        raise NotReproducible(
            f"the manifest's settings: {refused}; the report cannot be reproduced"
        ) from None
    differs = [
        f"[{section}] {key} = {value!r} (today {settings.values[section].get(key)!r})"
        for section in REPORT_SECTIONS
        for key, value in values[section].items()
        if settings.values[section].get(key) != value
    ]
    return dataclasses.replace(settings, values=values), differs


def check(
    settings: Settings, then: Reproduction, windows: dict[str, tuple[date | None, date]]
) -> None:
    """Raises NotReproducible unless each table version the manifest recorded can still be read
    over the drops the report reads of it (`windows`: table -> first, last drop), and each
    reference file holds what the report read."""
    _check_versions(settings, then.versions, windows)
    read = then.configuration.get("reference_files", {})
    now = reference_files(settings)
    changed = [
        f"{name} ({now[name]['path'] if name in now else 'absent now'})"
        for name in REFERENCE_FILES
        # a manifest from before kesu recorded the label map cannot tell
        if name in read or name == "denominators"
        if read.get(name, {}).get("sha256") != now.get(name, {}).get("sha256")
    ]
    if changed:
        raise NotReproducible(
            f"reference file(s) {', '.join(changed)} differ from those the report read; the "
            "report cannot be reproduced (point [reference] at the files it read)"
        )


def _check_versions(
    settings: Settings,
    versions: dict[str, int | None],
    windows: dict[str, tuple[date | None, date]],
) -> None:
    wh = settings.warehouse_store()
    for table, (lo, hi) in windows.items():
        version = versions.get(table)
        if version is None:  # no table then: read as never loaded, as the report did
            continue
        try:
            reader.check_readable(wh, table, version, lo, hi)
        except VersionUnavailable as gone:
            raise NotReproducible(f"{gone}; the report cannot be reproduced") from None


@contextmanager
def reading(
    settings: Settings,
    versions: dict[str, int | None] | None,
    windows: dict[str, tuple[date | None, date]],
) -> Iterator[None]:
    """Around the read of the tables at `versions` (None: the latest, nothing to do): a `kesu
    maintain` that ran since `check` may have removed a version (vacuumed its files, expired its
    log entry). Polars and delta-rs then fail naming a part file; the refusal `check` would now
    give replaces what they raised."""
    try:
        yield
    except VersionUnavailable as gone:
        raise NotReproducible(f"{gone}; the report cannot be reproduced") from None
    except Exception as raised:
        if versions is None:
            raise
        failed = raised
    else:
        return
    _check_versions(settings, versions, windows)  # outside the handler: the refusal alone
    raise failed
