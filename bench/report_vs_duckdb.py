"""Benchmark: the annual report's table building against DuckDB over the same warehouse.

1. Ensures a warehouse of N `--profile bank` drops from 2025-07-01 (default 31) under
   bench/out/report-warehouse: generates the missing landing days (bench/out/landing-bank, shared
   with backfill_scale.py) and ingests the missing drops with the plain step functions (no Prefect).
2. kesu: the report flow's build step for `annual 2025` as of the newest drop: scan_table per
   input table over its drop_window, the reference files, build_tables (all 11 tables). Rendering
   (xlsx, charts, html) is not timed; `kesu.reports.files.write_tables` (Parquet + CSV) is timed
   apart.
3. DuckDB: the same tables computed directly in SQL over
   read_parquet([<live files>], hive_partitioning=true), the files of each Delta table's current
   version (`deltalake.DeltaTable(path).file_uris()`, not a glob, which would also see the files
   of replaced versions), with the same drop window: latest version per id as of the drop,
   explicit merge groups (原投诉编号 links and transfer links, connected components by a
   recursive CTE, root = earliest member), then by_business_category, by_cause, by_region,
   handling_time, regulator_transfers, hotline_kpis, hotline_by_category. The rules are kesu's
   as of issue #11: a group's clock starts on `clock_on` (its receipt or, if earlier, the
   转办日期 of a transfer linked to it); regions are the 省份 of the owning branch's listing, the
   national units (信用卡中心, 客服中心) and 总行 included (national_units = "province").
   Implicit merging (same customer + category while open) is not in the SQL, so both engines run
   with ReportConfig(implicit_merge=False); kesu with the default (implicit on) is timed as well.
4. Compares DuckDB's counts with kesu's for those seven tables (mismatches are printed).
5. Prints engine, seconds (best of 3 after one warm-up, each engine in its own child process so
   its peak RSS is its own), rows scanned, the kesu/DuckDB ratio and peak RSS.

    .venv/bin/python bench/report_vs_duckdb.py [--days 31] [--runs 3]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
WAREHOUSE = OUT / "report-warehouse"
LANDING = OUT / "landing-bank"
START = date(2025, 7, 1)
KEY = "benchmark-key-0123456789abcdef"
FEEDS = ("hotline", "complaints", "regulator_transfers")
TABLE_OF = {"hotline": "stg_hotline", "complaints": "stg_complaints",
            "regulator_transfers": "stg_regulator_transfers"}  # fmt: skip
KIND, PERIOD = "annual", "2025"
COMPARED = ("by_business_category", "by_cause", "by_region", "handling_time",
            "regulator_transfers", "hotline_kpis", "hotline_by_category")  # fmt: skip


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# ---------------------------------------------------------------- data


def ensure_warehouse(n: int) -> None:
    from kesu.samplegen.generate import generate

    days = [START + timedelta(days=i) for i in range(n)]
    missing = [d for d in days if not (LANDING / "hotline" / d.isoformat()).is_dir()]
    if missing:
        t = time.perf_counter()
        generate(missing[0], missing[-1], LANDING, profile="bank", seed=1)
        print(f"generated {len(missing)} bank days in {time.perf_counter() - t:.1f} s", flush=True)
    from kesu.warehouse import Warehouse
    from kesu.warehouse.reader import partition_dates

    have = {f: set(partition_dates(Warehouse.local(WAREHOUSE), TABLE_OF[f])) for f in FEEDS}
    todo = [(d, f) for d in days for f in FEEDS if d not in have[f]]
    if not todo:
        return
    from kesu.flows import ingest_steps as steps
    from kesu.flows.config import load_settings
    from kesu.flows.pii_key import resolve_pii_key
    from kesu.warehouse import landing as landing_zone

    settings = load_settings(landing=str(LANDING), warehouse=str(WAREHOUSE))
    settings.values["validation"]["engine"] = "polars"
    key = resolve_pii_key(settings)
    t = time.perf_counter()
    for day, feed in todo:
        files = [str(p) for p in landing_zone.list_drop(LANDING, feed, day).files]
        if not files:
            continue
        staged = steps.stage_feed(settings, key, feed, day, files, WAREHOUSE / "_scratch")
        steps.publish_feed(settings, staged)
    print(f"ingested {len(todo)} feed drops in {time.perf_counter() - t:.1f} s", flush=True)


# ---------------------------------------------------------------- kesu


def kesu_build(as_of: date, implicit: bool) -> tuple[dict, int]:
    """The report flow's build step (flows.report.build_task without writing) as of the drop
    `as_of`: the tables and the rows of the partitions read."""
    from kesu.flows.config import load_settings
    from kesu.flows.report import report_inputs
    from kesu.transforms.periods import Period
    from kesu.transforms.reporting import ReportConfig, build_tables

    settings = load_settings(warehouse=str(WAREHOUSE))
    p = Period.parse(KIND, PERIOD)
    inputs, partitions, _ = report_inputs(settings, p, as_of)
    tables = build_tables(inputs, p, as_of, ReportConfig(implicit_merge=implicit))
    return tables, sum(r.rows for r in partitions)


def kesu_counts(tables: dict) -> dict:
    """The compared tables as {table: {key: [counts...]}} (JSON-able, zero rows dropped)."""

    def rows(name: str, key: str, cols: list[str]) -> dict:
        out = {}
        for r in tables[name].iter_rows(named=True):
            values = [str(r[c]) if isinstance(r[c], Decimal) else r[c] for c in cols]
            if any(v not in (0, None) for v in values):
                out[str(r[key])] = values
        return out

    rt = ["received", "replied", "replied_on_time", "replied_late", "open", "open_overdue",
          "on_time_rate"]  # fmt: skip
    return {
        "by_business_category": rows("by_business_category", "code", ["complaints"]),
        "by_cause": rows("by_cause", "code", ["complaints"]),
        "by_region": rows("by_region", "region", ["complaints"]),
        "handling_time": rows("handling_time", "bucket", ["complaints"]),
        "regulator_transfers": rows("regulator_transfers", "regulator", rt),
        "hotline_kpis": rows("hotline_kpis", "metric", ["value"]),
        "hotline_by_category": rows("hotline_by_category", "category",
                                    ["calls", "dissatisfied", "complaint_intent", "defused",
                                     "converted"]),
    }  # fmt: skip


# ---------------------------------------------------------------- DuckDB

SQL = """
SET TimeZone = 'Asia/Shanghai';
CREATE TEMP TABLE tickets AS
SELECT * FROM read_parquet({stg_complaints}, hive_partitioning = true)
WHERE drop_date <= DATE '{as_of}'
QUALIFY row_number() OVER (PARTITION BY complaint_id ORDER BY updated_at DESC NULLS LAST,
        drop_date DESC, source_line DESC NULLS LAST, source_file DESC NULLS LAST) = 1;
CREATE TEMP TABLE own AS SELECT * FROM tickets WHERE ticket_type = '投诉';
CREATE TEMP TABLE transfers AS
SELECT t.*, coalesce(t.complaint_id IN (SELECT complaint_id FROM own), false) AS linked
FROM read_parquet({stg_regulator_transfers}, hive_partitioning = true) t
WHERE drop_date <= DATE '{as_of}'
QUALIFY row_number() OVER (PARTITION BY transfer_id ORDER BY updated_at DESC NULLS LAST,
        drop_date DESC, source_line DESC NULLS LAST, source_file DESC NULLS LAST) = 1;
CREATE TEMP TABLE people AS
SELECT 'T:' || complaint_id AS member_id, 0 AS kind, received_at,
       business_category_code, cause_code, channel_code, branch_code, liability,
       CASE WHEN status IN ('已办结', '已撤诉') AND closed_at IS NOT NULL
            THEN closed_at::DATE END AS closed_on,
       coalesce(extended, false) AS extended, coalesce(excluded_days, 0) AS excluded_days
FROM own
UNION ALL
SELECT 'R:' || transfer_id, 1, transferred_on::TIMESTAMPTZ,
       business_category_code, NULL, NULL, branch_code, NULL,
       replied_on, false, 0
FROM transfers WHERE NOT linked;
CREATE TEMP TABLE edges AS
SELECT 'T:' || complaint_id AS a, 'T:' || original_complaint_id AS b FROM own
WHERE original_complaint_id IN (SELECT complaint_id FROM own)
  AND complaint_id <> original_complaint_id
UNION ALL
SELECT 'R:' || transfer_id, 'T:' || complaint_id FROM transfers WHERE linked;
CREATE TEMP TABLE nodes AS
WITH RECURSIVE und AS (SELECT a, b FROM edges UNION SELECT b, a FROM edges),
reach(node, other) AS (
    SELECT a, a FROM und
    UNION
    SELECT r.node, u.b FROM reach r JOIN und u ON u.a = r.other
),
comp AS (SELECT node, min(other) AS label FROM reach GROUP BY node),
allnodes AS (SELECT member_id FROM people UNION ALL SELECT 'R:' || transfer_id FROM transfers
             WHERE linked)
SELECT n.member_id, coalesce(c.label, n.member_id) AS label
FROM allnodes n LEFT JOIN comp c ON c.node = n.member_id;
CREATE TEMP TABLE groups AS
WITH labelled AS (SELECT p.*, n.label FROM people p JOIN nodes n USING (member_id)),
roots AS (SELECT * FROM labelled
          QUALIFY row_number() OVER (PARTITION BY label ORDER BY received_at, kind, member_id) = 1),
flags AS (SELECT label, bool_or(starts_with(member_id, 'R:')) AS has_transfer FROM nodes
          GROUP BY label),
-- the earliest 转办日期 of the transfers linked to the group: the bank received the complaint
-- when the regulator forwarded it, so the time limit runs from then if that is earlier
firsts AS (SELECT n.label, min(t.transferred_on) AS first_transfer
           FROM transfers t JOIN nodes n ON n.member_id = 'R:' || t.transfer_id
           WHERE t.linked GROUP BY n.label)
SELECT r.*, r.received_at::DATE AS received_on, f.has_transfer,
       least(r.received_at::DATE, coalesce(x.first_transfer, r.received_at::DATE)) AS clock_on
FROM roots r JOIN flags f USING (label) LEFT JOIN firsts x USING (label);
CREATE TEMP TABLE pg AS
WITH g AS (
  SELECT *, closed_on IS NOT NULL AND closed_on <= DATE '{cutoff}' AS closed
  FROM groups WHERE received_on BETWEEN DATE '{start}' AND DATE '{end}'
)
-- the period is by receipt (received_on), the handling days from clock_on
SELECT *, CASE WHEN closed THEN greatest(closed_on - clock_on - excluded_days, 0) END
          AS handling_days,
       CASE WHEN NOT closed THEN '未办结'
            WHEN greatest(closed_on - clock_on - excluded_days, 0) <= 15 THEN '≤15天'
            WHEN greatest(closed_on - clock_on - excluded_days, 0) <= 30 THEN '16–30天'
            WHEN greatest(closed_on - clock_on - excluded_days, 0) <= 60 THEN '31–60天'
            ELSE '>60天' END AS bucket
FROM g;
CREATE TEMP TABLE branches AS
SELECT 机构代码 AS branch_code, 机构类型 AS branch_type, 省份 AS province
FROM read_csv('{branches}', all_varchar = true, header = true);
CREATE TEMP TABLE calls AS
WITH latest AS (
  SELECT * FROM read_parquet({stg_hotline}, hive_partitioning = true)
  WHERE drop_date BETWEEN DATE '{call_lo}' AND DATE '{as_of}'
  QUALIFY row_number() OVER (PARTITION BY call_id ORDER BY drop_date DESC,
          source_line DESC NULLS LAST, source_file DESC NULLS LAST) = 1
)
SELECT coalesce(inquiry_category, '其他') AS category,
       queued_at IS NULL AS ivr_only,
       queued_at IS NOT NULL AS requested,
       queued_at IS NOT NULL AND answered_at IS NOT NULL AS answered,
       CASE WHEN queued_at IS NOT NULL AND answered_at IS NOT NULL
            THEN epoch_us(answered_at) - epoch_us(queued_at) END AS wait_us,
       coalesce(customer_mood = '不满', false) AS dissatisfied,
       coalesce(complaint_intent, false) AS intent,
       coalesce(complaint_intent, false) AND coalesce(outcome = '已化解', false) AS defused,
       coalesce(outcome = '转投诉', false) AS converted,
       coalesce(survey_satisfaction <> '未评价', false) AS responded,
       coalesce(survey_satisfaction = '满意', false) AS satisfied
FROM latest WHERE call_start_at::DATE BETWEEN DATE '{start}' AND DATE '{end}';
"""

QUERIES = {
    "by_business_category": """SELECT coalesce(business_category_code, 'B99'), count(*)
        FROM pg GROUP BY 1""",
    "by_cause": "SELECT coalesce(cause_code, 'C99'), count(*) FROM pg GROUP BY 1",
    # the 省份 of the branch's listing for every unit, 总行 and the national units (信用卡中心,
    # 客服中心) included (kesu's default national_units = "province"); a branch not listed, or
    # listed with a blank 省份, is 未知
    "by_region": """SELECT coalesce(nullif(trim(b.province), ''), '未知'), count(*)
        FROM pg LEFT JOIN branches b USING (branch_code) GROUP BY 1""",
    "handling_time": "SELECT bucket, count(*) FROM pg GROUP BY 1",
    "regulator_transfers": """
        WITH t AS (
          SELECT regulator, due_on,
                 replied_on IS NOT NULL AND replied_on <= DATE '{cutoff}' AS replied,
                 replied_on IS NOT NULL AND replied_on <= DATE '{cutoff}'
                   AND replied_on <= due_on AS on_time
          FROM transfers WHERE transferred_on BETWEEN DATE '{start}' AND DATE '{end}'),
        c AS (
          SELECT regulator, count(*) AS received, count_if(replied) AS replied,
                 count_if(on_time) AS on_time, count_if(replied AND NOT on_time) AS late,
                 count_if(NOT replied) AS open,
                 count_if(NOT replied AND due_on < DATE '{cutoff}') AS overdue
          FROM t GROUP BY 1)
        SELECT regulator, received, replied, on_time, late, open, overdue,
               CASE WHEN replied + overdue > 0
                    THEN (20000 * on_time + replied + overdue) // (2 * (replied + overdue)) END
        FROM c""",
    "hotline_kpis": """SELECT count(*), count_if(ivr_only), count_if(requested),
            count_if(answered), count_if(requested AND NOT answered),
            count_if(answered AND wait_us <= {sl_us}), sum(wait_us)::HUGEINT,
            count_if(dissatisfied), count_if(intent), count_if(defused), count_if(converted),
            count_if(responded), count_if(satisfied)
        FROM calls""",
    "hotline_by_category": """SELECT category, count(*), count_if(dissatisfied),
            count_if(intent), count_if(defused), count_if(converted)
        FROM calls GROUP BY 1""",
}


def half_up_pct(num: int, den: int) -> str | None:
    """num / den × 100, half-up to 2 decimals, exact integers (the SQL does the same for
    on_time_rate; here for the hotline rates from the SQL's integer sums)."""
    if not den:
        return None
    return cents((20000 * num + den) // (2 * den))


def cents(hundredths: int) -> str:
    """An integer number of hundredths as kesu prints a Decimal(·, 2): 100.00, 93.33."""
    return str((Decimal(hundredths) / 100).quantize(Decimal("0.01")))


def live_files(table: str) -> list[str]:
    """The Parquet files of the Delta table's current version, from its log. A glob over the
    table's folder would also read the files of replaced versions (a drop written again)."""
    from deltalake import DeltaTable

    return DeltaTable((WAREHOUSE / table).as_posix()).file_uris()


def sql_list(items: list[str]) -> str:
    """A list of strings as a DuckDB list literal: ['a', 'b']."""
    return "[" + ", ".join("'" + i.replace("'", "''") + "'" for i in items) + "]"


def duckdb_build(as_of: date) -> tuple[dict, int]:
    import duckdb
    from kesu.transforms.periods import Period

    p = Period.parse(KIND, PERIOD)
    # inside the timed part: listing the live files from the Delta log (cheap), as kesu's
    # scan_table does in its timed build
    files = {table: sql_list(live_files(table)) for table in TABLE_OF.values()}
    params = files | {
        "as_of": as_of, "cutoff": p.cutoff(as_of), "start": p.start, "end": p.end,
        "call_lo": p.start - timedelta(days=1), "sl_us": 20 * 1_000_000,
        "branches": (ROOT / "reference" / "branches.csv").as_posix(),
    }  # fmt: skip
    con = duckdb.connect()
    con.execute(SQL.format(**params))
    raw = {name: con.execute(q.format(**params)).fetchall() for name, q in QUERIES.items()}
    con.close()
    return raw, 0


def duckdb_counts(raw: dict) -> dict:
    out: dict[str, dict] = {}
    for name in ("by_business_category", "by_cause", "by_region", "handling_time"):
        out[name] = {str(k): [int(n)] for k, n in raw[name] if n}
    out["regulator_transfers"] = {
        r[0]: [*map(int, r[1:7]), None if r[7] is None else cents(int(r[7]))]
        for r in raw["regulator_transfers"]
    }
    (calls, ivr, req, ans, abandoned, in_level, wait, upset, intent, defused, conv, resp,
     sat) = (int(v or 0) for v in raw["hotline_kpis"][0])  # fmt: skip
    asa = None if not ans else cents((200 * wait + ans * 10**6) // (2 * ans * 10**6))
    kpis = {
        "calls": calls, "ivr_only": ivr, "human_requested": req, "human_answered": ans,
        "abandoned": abandoned, "answer_rate": half_up_pct(ans, req),
        "service_level": half_up_pct(in_level, req), "asa_seconds": asa,
        "dissatisfied_calls": upset, "complaint_intent_calls": intent, "defused_calls": defused,
        "converted_calls": conv, "survey_responses": resp,
        "survey_satisfaction_rate": half_up_pct(sat, resp),
    }  # fmt: skip
    # kesu's hotline_kpis.value is Decimal(20, 2): counts show as 115.00
    out["hotline_kpis"] = {
        k: [v if v is None or isinstance(v, str) else f"{v}.00"]
        for k, v in kpis.items()
        if v not in (0, None)
    }
    out["hotline_by_category"] = {r[0]: [int(x) for x in r[1:]]
                                  for r in raw["hotline_by_category"]}  # fmt: skip
    return out


def duckdb_rows_scanned(as_of: date) -> int:
    import duckdb
    from kesu.transforms.periods import Period

    p = Period.parse(KIND, PERIOD)
    con = duckdb.connect()
    total = 0
    for table, lo in (("stg_complaints", date.min), ("stg_regulator_transfers", date.min),
                      ("stg_hotline", p.start - timedelta(days=1))):  # fmt: skip
        counted = con.execute(
            f"SELECT count(*) FROM read_parquet({sql_list(live_files(table))}, "
            f"hive_partitioning = true) WHERE drop_date BETWEEN DATE '{lo}' AND DATE '{as_of}'"
        ).fetchone()
        assert counted is not None  # a count(*) has its one row
        total += counted[0]
    return total


# ---------------------------------------------------------------- child / parent


def child(what: str, runs: int) -> None:
    sys.path.insert(0, str(ROOT))
    from kesu.warehouse import Warehouse
    from kesu.warehouse.reader import latest_drop

    if what.startswith("kesu"):
        import kesu.flows.report  # noqa: F401  (Prefect import: a fixed cost, not timed)
    as_of = latest_drop(Warehouse.local(WAREHOUSE))
    if as_of is None:
        raise SystemExit(f"{WAREHOUSE}: no drop loaded; the benchmark ingests its sample first")
    times, extra = [], {}
    for i in range(runs + 1):  # the first run is a warm-up
        t = time.perf_counter()
        if what == "duckdb":
            raw, rows = duckdb_build(as_of)
        else:
            tables, rows = kesu_build(as_of, implicit=what == "kesu-implicit")
        if i:
            times.append(time.perf_counter() - t)
    if what == "duckdb":
        counts, rows = duckdb_counts(raw), duckdb_rows_scanned(as_of)
    else:
        counts = kesu_counts(tables)
        from kesu.reports import files

        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            files.write_tables(tables, Path(tmp) / "tables")
            extra["write_tables_s"] = time.perf_counter() - t
    print(json.dumps({"what": what, "times": times, "rows": rows, "rss_mb": peak_rss_mb(),
                      "as_of": as_of.isoformat(), "counts": counts, **extra}))  # fmt: skip


def measure(what: str, runs: int) -> dict:
    cmd = [sys.executable, __file__, "--child", what, "--runs", str(runs)]
    env = os.environ | {"KESU_PII_KEY": KEY, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{what} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def compare(kesu: dict, duck: dict) -> int:
    mismatches = 0
    for name in COMPARED:
        a, b = kesu[name], duck[name]
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                mismatches += 1
                print(f"  MISMATCH {name}[{key}]: kesu {a.get(key)}  duckdb {b.get(key)}")
        if a == b:
            print(f"  {name:<22} equal ({len(a)} rows)")
    return mismatches


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=31)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child")
    args = ap.parse_args()
    if args.child:
        child(args.child, args.runs)
        return
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("KESU_PII_KEY", KEY)
    ensure_warehouse(args.days)
    results = {w: measure(w, args.runs) for w in ("kesu", "duckdb", "kesu-implicit")}
    k, d = results["kesu"], results["duckdb"]
    print(f"\nannual {PERIOD} as of {k['as_of']}, {args.days} bank drops, best of {args.runs} "
          f"after one warm-up")  # fmt: skip
    print(f"{'engine':<34} {'seconds':>8} {'rows scanned':>13} {'vs DuckDB':>9} {'RSS MB':>7}")
    labels = {"kesu": "kesu build_tables (implicit off)", "duckdb": "DuckDB SQL (implicit off)",
              "kesu-implicit": "kesu build_tables (implicit on)"}  # fmt: skip
    for w, r in results.items():
        best = min(r["times"])
        print(f"{labels[w]:<34} {best:>8.2f} {r['rows']:>13,} "
              f"{best / min(d['times']):>8.2f}x {r['rss_mb']:>7.0f}")  # fmt: skip
    print(f"kesu write_tables (Parquet + CSV, not in the above): {k['write_tables_s']:.2f} s")
    print("same counts (kesu implicit off vs DuckDB):")
    found = compare(k["counts"], d["counts"])
    print(f"{found} mismatch(es)")


if __name__ == "__main__":
    main()
