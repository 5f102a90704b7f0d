"""Freeze what staging makes of a realistic bank day, so a faster staging can prove it changed
nothing: `tests/unit/test_staging_golden.py` stages the same day and compares.

Three `--profile bank` days at 3% scale with the sample generator's defects (seed 7, from
2025-07-01),
read and staged file by file, then validated and split as `stage_feed` does (all three days
as one drop, so repeated keys across files are in it). Written per feed:
`<feed>.staged.parquet` (typed rows), `<feed>.issues.parquet`, `<feed>.masked.parquet` (the
masked source text) and `<feed>.quarantine.parquet` (the loaded rows are the staged rows less
those, which the test checks). Tokens use the
test key below, and every value is a token or masked: no personal data in clear.

    .venv/bin/python tests/corpus/staging/make_golden.py   # only when staging's output is meant
                                                          # to change, and say why in the commit
"""

from __future__ import annotations

import tempfile
from datetime import date
from pathlib import Path

import polars as pl

HERE = Path(__file__).resolve().parent
DAYS = (date(2025, 7, 1), date(2025, 7, 3))
SEED = 7
SCALE = 0.03
KEY = b"golden-test-key-0123456789abcdef"


def staged_day(landing: Path) -> dict[str, dict[str, pl.DataFrame]]:
    """Generate the day under `landing` and stage it: per feed, the frames named above."""
    from kesu.flows import ingest_steps as steps
    from kesu.flows.config import load_settings
    from kesu.flows.pii_key import PiiKey
    from kesu.flows.staging_inputs import staging_context
    from kesu.samplegen.generate import generate
    from kesu.transforms.columns import FEEDS
    from kesu.transforms.staging import stage
    from kesu.warehouse.landing import list_drop

    generate(*DAYS, landing, profile="bank", seed=SEED, scale=SCALE)
    settings = load_settings(
        landing=str(landing), warehouse=str(landing.parent / "warehouse"), environ={}
    )
    key = PiiKey(KEY, "test", is_demo=False)
    ctx = staging_context(settings, key, DAYS[-1])
    out: dict[str, dict[str, pl.DataFrame]] = {}
    days = [date.fromordinal(d) for d in range(DAYS[0].toordinal(), DAYS[1].toordinal() + 1)]
    for feed in FEEDS:
        files = [str(p) for d in days for p in list_drop(settings.landing, feed, d).files]
        parts: dict[str, list[pl.DataFrame]] = {"staged": [], "issues": [], "masked": []}
        for name in files:
            source, outcome = steps._read_file(feed, Path(name))
            if source is None:
                continue
            staged = stage(feed, source, outcome.name, ctx)
            file_column = pl.lit(outcome.name).alias("file")
            parts["staged"].append(staged.staged)
            parts["issues"].append(staged.issues.with_columns(file_column))
            parts["masked"].append(staged.masked_source.with_columns(file_column))
        result = steps.stage_feed(settings, key, feed, DAYS[-1], files, None)
        out[feed] = {
            "loaded": result.frame("loaded"),
            "staged": pl.concat(parts["staged"]),
            "issues": pl.concat(parts["issues"]),
            "masked": pl.concat(parts["masked"], how="diagonal_relaxed"),
            "quarantine": result.frame("quarantine"),
        }
    return out


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        for feed, frames in staged_day(Path(tmp) / "landing").items():
            for what, frame in frames.items():
                if what == "loaded":  # the staged rows less the quarantined: not stored twice
                    continue
                frame.write_parquet(HERE / f"{feed}.{what}.parquet", compression="zstd")
                print(f"{feed}.{what}: {frame.height} rows")


if __name__ == "__main__":
    main()
