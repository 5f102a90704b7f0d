"""The two reference points kesu's backfill is measured against.

- `floor`: a bare Polars `scan_csv -> sink_parquet` of the same CSV files into date partitions
  (no parsing, no validation, no tokens): the least any ingest of these files can cost.
- `pandas_gx`: a straightforward pandas + Great Expectations implementation of the same ingest
  (read as text, rename, parse, tokenize and mask, map labels, validate with the same GX suites
  run by GX itself, split loaded / quarantined, write Parquet per drop). It is what a team
  would write first; kesu must be at least 5x faster.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import date
from pathlib import Path

FEEDS = ("hotline", "complaints", "regulator_transfers")


def csv_files(landing: Path, feed: str, day: date) -> list[Path]:
    return sorted((landing / feed / day.isoformat()).glob("*.csv"))


def floor(landing: Path, days: list[date], out: Path, feeds: Sequence[str] | None = None) -> int:
    """Bare Polars: every CSV of every drop (of `feeds`, default all), as text, into
    `<out>/<feed>/drop_date=D/`. Polars is imported here, in the timed run, not with this module
    (which `backfill_scale` imports in every child, kesu's too: kesu must come before Polars)."""
    import polars as pl

    rows = 0
    for day in days:
        for feed in feeds or FEEDS:
            for i, path in enumerate(csv_files(landing, feed, day)):
                target = out / feed / f"drop_date={day}"
                target.mkdir(parents=True, exist_ok=True)
                # lossy UTF-8: the floor does not decode the few GB18030 files properly
                scan = pl.scan_csv(path, infer_schema=False, encoding="utf8-lossy")
                scan.sink_parquet(target / f"part-{i}.parquet")
                written = pl.scan_parquet(target / f"part-{i}.parquet")
                rows += written.select(pl.len()).collect().item()
    return rows


def _is_utf8(path: Path) -> bool:
    try:
        path.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def pandas_gx(
    landing: Path, days: list[date], out: Path, key: bytes, feeds: Sequence[str] | None = None
) -> int:
    import pandas as pd
    from kesu.expectations.suites import import_gx, suite_for
    from kesu.transforms.columns import COLUMNS, STAGED_TABLE

    gx = import_gx()
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_pandas("baseline")
    asset = source.add_dataframe_asset("frame")
    batch_definition = asset.add_batch_definition_whole_dataframe("all")
    feeds = feeds or FEEDS
    suites = {feed: suite_for(STAGED_TABLE[feed]) for feed in feeds}
    labels = pd.read_csv("reference/label_map.csv", dtype=str)
    label_map = dict(zip(labels["label"], labels["code"], strict=True))
    codes = pd.read_csv("reference/jrt0169_codes.csv", dtype=str)
    label_map |= dict(zip(codes["code"], codes["code"], strict=True))
    branches = pd.read_csv("reference/branches.csv", dtype=str)
    branch_map = dict(zip(branches.iloc[:, 0], branches.iloc[:, 0], strict=True))
    branch_map |= dict(zip(branches.iloc[:, 1], branches.iloc[:, 0], strict=True))
    rows = 0
    for day in days:
        for feed in feeds:
            for i, path in enumerate(csv_files(landing, feed, day)):
                raw = path.read_bytes()
                text = raw.decode("utf-8-sig") if _is_utf8(path) else raw.decode("gb18030")
                import io

                df = pd.read_csv(io.StringIO(text), dtype=str, keep_default_na=False)
                df = df.replace("", None).rename(columns={c.header: c.name for c in COLUMNS[feed]})
                rows += len(df)
                for col in COLUMNS[feed]:
                    if col.name not in df:
                        df[col.name] = None
                    s = df[col.name]
                    if col.kind == "datetime":
                        df[col.name] = pd.to_datetime(
                            s, format="%Y-%m-%d %H:%M:%S", errors="coerce"
                        ).dt.tz_localize("Asia/Shanghai")
                    elif col.kind == "date":
                        df[col.name] = pd.to_datetime(s, format="%Y-%m-%d", errors="coerce").dt.date
                    elif col.kind == "int" or col.kind == "decimal":
                        df[col.name] = pd.to_numeric(s, errors="coerce")
                    elif col.kind == "yes_no":
                        df[col.name] = s.map({"是": True, "否": False})
                    elif col.kind in ("phone", "person_name", "id_number"):
                        stem = "caller" if col.name == "caller_number" else col.name
                        df[f"{stem}_token"] = s.map(
                            lambda v, k=col.kind: (
                                None
                                if v is None
                                else hashlib.blake2b(
                                    v.encode(), digest_size=16, key=key, person=k.encode()[:16]
                                ).hexdigest()
                            )
                        )
                        df[f"{stem}_masked"] = s.map(
                            lambda v: None if v is None else v[:3] + "****" + v[-4:]
                        )
                    elif col.kind == "free_text":
                        df[f"{col.name}_masked"] = s.str.replace(
                            r"(\d{3})\d*(\d{3}[\dXx])", r"\1****\2", regex=True
                        )
                    elif col.kind in ("channel_label", "category_label", "cause_label"):
                        df[f"{col.name}_label"] = s
                        df[f"{col.name}_code"] = s.map(label_map)
                    elif col.kind == "branch":
                        df["branch_label"] = s
                        df["branch_code"] = s.map(branch_map)
                batch = batch_definition.get_batch(batch_parameters={"dataframe": df})
                result = batch.validate(suites[feed], result_format={"result_format": "COMPLETE"})
                bad: set[int] = set()
                for r in result.results:
                    bad.update(r.result.get("unexpected_index_list") or [])
                is_bad = df.index.isin(sorted(bad))
                target = out / feed / f"drop_date={day}"
                target.mkdir(parents=True, exist_ok=True)
                pii_kinds = ("phone", "person_name", "id_number")
                pii = [c.name for c in COLUMNS[feed] if c.kind in pii_kinds]
                kept = df.drop(columns=pii)
                kept[~is_bad].to_parquet(target / f"part-{i}.parquet", index=False)
                if is_bad.any():
                    kept[is_bad].to_parquet(target / f"quarantine-{i}.parquet", index=False)
    return rows
