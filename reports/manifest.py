"""`manifest.json`: what a report was built from, so anyone can tell whether two reports agree.

The only file of a report that holds the generation time: the tables themselves are identical
for the same warehouse, as-of and configuration.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from kesu.transforms.run_records import PartitionRead, to_jsonable

from kesu import version


def build_manifest(
    *,
    kind: str,
    period: str,
    as_of: date,
    generated_at: datetime,
    configuration: dict[str, Any],
    config_file: Path | None,
    inputs: list[PartitionRead],
    files: list[str],
    coverage: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`inputs`: the partitions warehouse.reader.scan_table read, all tables together;
    `coverage`: first_drop, last_drop, complete (transforms.periods.Coverage)."""
    return to_jsonable(
        {
            "coverage": coverage,
            "kind": kind,
            "period": period,
            "as_of": as_of,
            "generated_at": generated_at,
            "kesu_version": version(),
            "configuration": configuration,
            "config_file": config_file,
            "partitions": sorted(inputs, key=lambda p: (p.table, p.drop_date)),
            "files": sorted(files),
        }
    )


def write_manifest(manifest: dict[str, Any], path: Path) -> Path:
    text = json.dumps(manifest, ensure_ascii=False, sort_keys=True, indent=1)
    path.write_text(text + "\n", encoding="utf-8")
    return path
