"""What decides a drop's staged rows besides its files, and the fingerprint over it all.

The staging code (`STAGING_CODE`), the reference files' lookups, the validation settings (the
plausible window of dates, the engine, the unknown-label mode) and the PII key. A drop whose
files are unchanged is skipped only while its fingerprint is unchanged too, so a new label
mapping, a new key or a new release re-stages history on the next run that touches it.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import date
from pathlib import Path

from kesu.expectations import compiled, runner, suites, translate
from kesu.flows.config import Settings
from kesu.flows.pii_key import PiiKey
from kesu.transforms import (
    columns,
    drop_rows,
    file_names,
    lookups,
    parsing,
    personal_data,
    pii,
    quarantine,
    staging,
    value_sets,
)
from kesu.transforms.columns import STAGED_TABLE
from kesu.transforms.lookups import Lookups
from kesu.transforms.staging import StagingContext
from kesu.warehouse import csv_bytes, csv_records, landing, landing_excel, xls_biff, xlsx_xml
from kesu.warehouse.raw import sha256_file

from kesu import version

# The code whose change can change staged bytes (report code cannot). The rules about rows live
# in these modules, not in the flows that call them (tests/unit/test_staging.py checks both).
STAGING_CODE = (
    columns,
    drop_rows,
    file_names,  # the staged rows' source_file
    lookups,
    parsing,
    personal_data,
    pii,
    quarantine,
    staging,
    landing,
    csv_records,
    csv_bytes,
    landing_excel,
    xlsx_xml,
    xls_biff,
    suites,
    translate,
    runner,
    compiled,
    value_sets,
)
REFERENCE_FILES = ("codes", "label_map", "branches")


def staging_context(settings: Settings, key: PiiKey, drop_date: date) -> StagingContext:
    """What staging needs of a drop besides its rows: the key, the lookups, the plausible window."""
    return StagingContext.for_drop(
        key.secret,
        load_lookups(settings),
        drop_date,
        earliest=date.fromisoformat(str(settings.get("validation", "earliest"))),
        future_days=int(settings.get("validation", "future_days")),
    )


def load_lookups(settings: Settings) -> Lookups:
    """The label and branch lookups of the reference files, built once per process for each
    content of the files: each feed of each drop asks, and building them took ~0.04 s, on the
    critical path of a bank's drop (reading the few KB to compare takes microseconds)."""
    codes, label_map, branches = (settings.reference_path(n).read_bytes() for n in REFERENCE_FILES)
    unknown_label = str(settings.get("validation", "unknown_label"))
    return _lookups(codes, label_map, branches, unknown_label)


_lookups = functools.lru_cache(maxsize=8)(lookups.from_reference_files)


def fingerprint(settings: Settings, key: PiiKey) -> str:
    """What, besides the input files, decides the staged bytes: code, reference data, key,
    validation settings and release."""
    h = hashlib.sha256()
    for module in STAGING_CODE:
        source = Path(module.__file__ or "")
        h.update(source.name.encode() + b"\0" + source.read_bytes())
    for table in STAGED_TABLE.values():  # what the Polars engine checks (expectations/compiled)
        h.update(compiled.path_of(table).read_bytes())
    for name in REFERENCE_FILES:
        h.update(sha256_file(settings.reference_path(name)).encode())
    validation = [
        str(settings.get("validation", k))
        for k in ("engine", "earliest", "future_days", "unknown_label")
    ]
    h.update(json.dumps([version(), key.key_id, *validation]).encode())
    return h.hexdigest()[:16]
