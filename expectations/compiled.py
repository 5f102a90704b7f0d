"""The suites as data, so checking rows at Polars speed never imports Great Expectations.

GX stays the source of truth: `kesu.expectations.suites` declares every suite with GX's own classes,
and this module stores what GX says each expectation is — every field with its default, as
`Expectation.json()` writes it — in ``expectations/compiled/<table>.json``. The Polars engine
(`kesu.expectations.translate`, `kesu.expectations.runner`) reads those fields from the file.

Why a file: importing GX costs ~3 s and ~240 MB in every process that validates (each worker of
a backfill), for a few dozen field values. Why it cannot drift: a test compiles the suites with
GX and fails when the files differ (regenerate with ``python -m expectations.compiled``), and
the engine-equivalence tests compare Polars on these files against GX's own results.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

COMPILED = Path(__file__).resolve().parent / "compiled"


def compile_suite(table: str) -> list[dict[str, Any]]:
    """The table's suite as GX serialises it, plus each expectation's type (imports GX)."""
    from kesu.expectations.suites import suite_for

    return [
        {"expectation_type": e.expectation_type, **json.loads(e.json())}
        for e in suite_for(table).expectations
    ]


def render(table: str) -> str:
    """The text of the table's compiled file."""
    return json.dumps(compile_suite(table), ensure_ascii=False, indent=1, sort_keys=True) + "\n"


def path_of(table: str) -> Path:
    return COMPILED / f"{table}.json"


@functools.cache
def expectations(table: str) -> tuple[Any, ...]:
    """The table's expectations, with the attributes the translator and reasons read."""
    from kesu.expectations.suites import TABLES  # no GX import: suites imports GX lazily

    if table not in TABLES:
        raise ValueError(f"unknown staged table {table!r}; expected one of {TABLES}")
    path = path_of(table)
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing; run `python -m expectations.compiled` to write it"
        )
    return tuple(_declared(e) for e in json.loads(path.read_text(encoding="utf-8")))


def _declared(fields: dict[str, Any]) -> SimpleNamespace:
    condition = fields.get("row_condition")
    return SimpleNamespace(**fields | {"row_condition": _condition(condition)})


def _condition(value: Any) -> Any:
    """A row_condition tree (dicts with a `type`) as objects: `.column.name`, `.conditions`."""
    if isinstance(value, dict):
        return SimpleNamespace(**{k: _condition(v) for k, v in value.items()})
    if isinstance(value, list):
        return [_condition(v) for v in value]
    return value


def main() -> None:
    from kesu.expectations.suites import TABLES

    COMPILED.mkdir(exist_ok=True)
    for table in TABLES:
        path_of(table).write_text(render(table), encoding="utf-8")
        print(f"wrote {path_of(table)}")


if __name__ == "__main__":
    main()
