"""Benchmark: `kesu backfill` over N days of `--profile bank` against its two reference points.

For each N in --days (default 7 30 90): generate the drops (once, reused), then, each in a fresh
child process so peak memory is its own, after reading the N days' files once (untimed) so that
each finds them in the page cache:
  floor      bare Polars scan_csv -> sink_parquet of the same CSVs into date partitions
  kesu       the backfill flow (parse, normalise, validate, tokenize, publish); the start of
             Prefect's ephemeral API is timed separately and not counted
  pandas_gx  a straightforward pandas + GX ingest of the same files (only with --baseline)
  kesu_plain the same drops through `ingest_drop` on the same threads, without Prefect: what
             the orchestration adds (only with --without-prefect)
and prints seconds, µs per row, the kesu/floor and pandas_gx/kesu ratios and peak RSS.

With --feeds F [F ...] every child ingests those feeds only (kesu's `--feeds`, the floor's and
pandas_gx's files of those feeds): e.g. `--feeds hotline`, the drops without their small files'
fixed costs.

With --repeat R the floor and kesu children (and kesu_plain) run R times, in rounds: each round
runs every range once, each range's children in turn (7 days floor, kesu; 30 days floor, kesu;
…), so that a drift of the machine's speed reaches every range and both alike. (Until the
forty-second session each range ran its R repeats before the next range began: the longest
range then ran ~25 minutes after the shortest, and a marginal cost, their difference, took in
whatever the machine did meanwhile.) The tables show each one's median run (peak memory: the
largest of its runs), and the marginal cost is also given round by round (the shortest and the
longest range of one round), min-median-max. pandas_gx runs once per range, after the rounds.

The floor and pandas_gx run with the allocator settings of the shell that started this script:
kesu's own (`kesu.ALLOCATOR`, set in this process when it imports kesu) are kesu's, not theirs.

    .venv/bin/python bench/backfill_scale.py --days 7 30 [--baseline] [--workers 2]
                                             [--without-prefect] [--repeat 3]
                                             [--feeds hotline]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import threading
import time
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from kesu.transforms.run_records import IngestRun

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "out"
START = date(2025, 7, 1)
KEY = "benchmark-key-0123456789abcdef"
# Polars' allocator setting as the user's shell had it, before importing kesu sets its own
SHELL_ALLOCATOR = os.environ.get("_RJEM_MALLOC_CONF")


def days_from(n: int) -> list[date]:
    return [START + timedelta(days=i) for i in range(n)]


def ensure_sample(n: int) -> Path:
    landing = OUT / "landing-bank"
    from kesu.samplegen.generate import generate

    missing = [d for d in days_from(n) if not (landing / "hotline" / d.isoformat()).is_dir()]
    if missing:
        t = time.perf_counter()
        generate(missing[0], missing[-1], landing, profile="bank", seed=1)
        print(f"generated {len(missing)} bank days in {time.perf_counter() - t:.1f} s", flush=True)
    return landing


def bank_drops(n: int, work_name: str) -> tuple[list[date], Path, Path]:
    """The first `n` bank days (generated if missing), their landing zone, and a new, empty work
    folder `bench/out/<work_name>` for a benchmark's warehouse: what each of the one-process
    drop benchmarks (`drop_steps.py`, `drop_memory.py`, `drop_batches.py`) starts from. Their
    drops tokenize with the benchmark's key (`KEY`) unless KESU_PII_KEY is set: the demo's key
    serves only its own landing zone."""
    os.environ.setdefault("KESU_PII_KEY", KEY)
    days = days_from(n)
    landing = ensure_sample(n)
    work = OUT / work_name
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    return days, landing, work


def warm(landing: Path, days: list[date]) -> int:
    """Read every landing file of `days` once, untimed, so that each child finds them in the page
    cache: the floor, which runs first, used to read files the cache had partly dropped since
    the last range (its 30-day runs came out at twice its 7- and 90-day cost a row, twice)."""
    read = 0
    for folder in sorted(landing.glob("*/*")):
        if folder.is_dir() and folder.name in {d.isoformat() for d in days}:
            for path in folder.iterdir():
                if path.is_file():
                    with path.open("rb") as f:
                        while chunk := f.read(1 << 24):
                            read += len(chunk)
    return read


def measure(what: str, n: int, workers: int, feeds: list[str] | None = None) -> dict:
    """Run one measurement in a child process, its days' files warm; returns its JSON line.

    The files the children before it wrote are flushed to disk first: left to the kernel's
    writeback, they were written while the next child ran (one 7-day kesu run's publishes took
    29 worker-seconds against 5, just after the test suite had written its files)."""
    os.sync()
    warm(OUT / "landing-bank", days_from(n))
    cmd = [sys.executable, __file__, "--child", what, "--n", str(n), "--workers", str(workers)]
    cmd += ["--feeds", *feeds] if feeds else []
    env = os.environ | {"KESU_PII_KEY": KEY, "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    if not what.startswith("kesu"):  # the references run as a user's shell would start them
        env.pop("_RJEM_MALLOC_CONF", None)
        if SHELL_ALLOCATOR is not None:
            env["_RJEM_MALLOC_CONF"] = SHELL_ALLOCATOR
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        raise SystemExit(f"{what} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class TreeMemory:
    """Peak RSS of this process plus all its descendants (worker processes count too), sampled
    every 100 ms; `ru_maxrss` would see only one process."""

    def __init__(self) -> None:
        import psutil

        self._me = psutil.Process()
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _sample(self) -> int:
        total = 0
        for p in [self._me, *self._me.children(recursive=True)]:
            try:
                total += p.memory_info().rss
            except Exception:  # a worker that just ended
                continue
        return total

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self._sample())
            self._stop.wait(0.1)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._sample())
        return self.peak / 2**20


def child(what: str, n: int, workers: int, feeds: list[str] | None = None) -> None:
    memory = TreeMemory()
    stages: dict[str, float] = {}
    days = days_from(n)
    landing = OUT / "landing-bank"
    target = OUT / f"{what}-{n}"
    shutil.rmtree(target, ignore_errors=True)
    fixed = 0.0
    t = time.perf_counter()
    if what == "floor":
        from bench.baselines import floor

        rows = floor(landing, days, target, feeds)
    elif what == "pandas_gx":
        from bench.baselines import pandas_gx

        rows = pandas_gx(landing, days, target, KEY.encode(), feeds)
    elif what == "kesu_plain":  # the drops' own work: `ingest_drop` on the same threads
        from concurrent.futures import ThreadPoolExecutor

        from kesu.flows.config import load_settings
        from kesu.flows.drop import ingest_drop

        settings = load_settings(landing=str(landing), warehouse=str(target))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            runs = list(pool.map(lambda day: ingest_drop(settings, day, feeds), days))
        rows, stages = _counted(runs)
    else:
        from kesu.flows.backfill import backfill, progress_listener
        from kesu.flows.backfill_cli import drop_line
        from kesu.flows.cli_args import prefect_defaults
        from kesu.flows.terminal import Terminal, prefect_quiet
        from prefect import flow

        prefect_defaults(local_server=False)  # as `kesu backfill` (the API: temporary, here)

        @flow
        def warm_up() -> None:
            return None

        warm_up()
        fixed = time.perf_counter() - t
        t = time.perf_counter()
        kwargs: dict[str, Any] = (
            {"workers": workers} if "workers" in backfill.parameters.properties else {}
        )
        # as `kesu backfill` runs it off a terminal: a line per drop, Prefect's console quiet
        terminal = Terminal(tty=False)
        with (
            progress_listener(lambda e: terminal.line(drop_line(e))),
            prefect_quiet(terminal),
        ):
            runs = backfill(
                start=days[0],
                end=days[-1],
                landing_dir=str(landing),
                warehouse_dir=str(target),
                feeds=feeds,
                **kwargs,
            )
        rows, stages = _counted(runs)
    seconds = time.perf_counter() - t
    rss = memory.stop()
    print(
        json.dumps(
            {
                "what": what,
                "days": n,
                "rows": rows,
                "seconds": seconds,
                "fixed": fixed,
                "rss_mb": rss,
                "stages": {k: round(v, 2) for k, v in stages.items()},
            }
        )
    )


def _counted(runs: list[IngestRun]) -> tuple[int, dict[str, float]]:
    """The drops' rows in, and worker seconds per stage summed over drops and feeds."""
    feeds = [feed for run in runs for feed in run.feeds.values()]
    stages: dict[str, float] = {}
    for feed in feeds:
        for stage, sec in feed.seconds.items():
            stages[stage] = stages.get(stage, 0.0) + sec
    return sum(feed.rows_in for feed in feeds), stages


def main() -> None:
    sys.path.insert(0, str(ROOT))
    from bench.baselines import FEEDS  # without Polars: a kesu child imports kesu first

    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, nargs="+", default=[7, 30, 90])
    ap.add_argument("--baseline", action="store_true", help="also time pandas + GX (slow)")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--without-prefect",
        action="store_true",
        help="also time the drops without Prefect (`ingest_drop` on the same threads): "
        "what the orchestration adds",
    )
    ap.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="run the floor and kesu children of every range this many times, in rounds "
        "(every range once a round); report medians",
    )
    ap.add_argument(
        "--feeds",
        nargs="+",
        choices=FEEDS,
        help="only these feeds, in kesu and the references alike (default: all three)",
    )
    ap.add_argument("--child")
    ap.add_argument("--n", type=int)
    args = ap.parse_args()
    if args.repeat < 1:
        ap.error(f"--repeat must be at least 1, not {args.repeat}")
    if args.child:
        child(args.child, args.n, args.workers, args.feeds)
        return
    print(f"{'days':>4} {'what':<10} {'rows':>11} {'seconds':>8} {'us/row':>7} {'peak MB':>7}")
    runs: dict[int, dict[str, dict]] = {}
    ensure_sample(max(args.days))  # the longest range's days hold every shorter one's
    chosen = ("floor", "kesu") + (("kesu_plain",) if args.without_prefect else ())
    repeats: dict[int, dict[str, list[dict]]] = {n: {w: [] for w in chosen} for n in args.days}
    for i in range(args.repeat):  # rounds: every range once, so a drift reaches them all alike
        for n in args.days:
            for w in chosen:
                result = measure(w, n, args.workers, args.feeds)
                repeats[n][w].append(result)
                took = result["seconds"]
                print(f"  round {i + 1}/{args.repeat}: {n} days {w} {took:.1f} s", file=sys.stderr)
    for n in args.days:
        results = runs[n] = {w: _median_run(repeats[n][w]) for w in chosen}
        if args.baseline:
            results["pandas_gx"] = measure("pandas_gx", n, args.workers, args.feeds)
        for w, r in results.items():
            per_row = r["seconds"] / r["rows"] * 1e6
            each = r.get("repeats_s", [])
            print(
                f"{n:>4} {w:<10} {r['rows']:>11,} {r['seconds']:>8.1f} {per_row:>7.2f} "
                f"{r['rss_mb']:>7.0f}"
                + (f"   runs {' / '.join(f'{v:.1f}' for v in each)} s" if len(each) > 1 else ""),
                flush=True,
            )
        kesu = results["kesu"]
        print(f"     Prefect API start (fixed, not counted): {kesu['fixed']:.1f} s")
        stages = ", ".join(f"{k} {v:.1f}" for k, v in kesu["stages"].items())
        print(f"     kesu worker-seconds by stage (summed over drops and feeds): {stages}")
        print(f"     kesu / floor = {kesu['seconds'] / results['floor']['seconds']:.2f}x")
        if args.baseline:
            speedup = results["pandas_gx"]["seconds"] / kesu["seconds"]
            print(f"     pandas_gx / kesu = {speedup:.2f}x")
    _summary(runs)
    (OUT / "backfill_scale.json").write_text(json.dumps(runs, indent=1))
    print("\n" + markdown(runs))


def _median_run(repeats: list[dict]) -> dict:
    """The run of median seconds (the lower middle of an even count), with every run's seconds
    (`repeats_s`) and the largest peak memory of them all."""
    ordered = sorted(repeats, key=lambda r: r["seconds"])
    chosen = dict(ordered[(len(ordered) - 1) // 2])
    chosen["repeats_s"] = [r["seconds"] for r in repeats]
    chosen["rss_mb"] = max(r["rss_mb"] for r in repeats)
    return chosen


def marginal(runs: dict[int, dict[str, dict]], what: str, i: int | None = None) -> float:
    """µs per row of the days the longest range adds to the shortest: from `what`'s (median)
    runs, or from its i-th runs of each (`--repeat`)."""
    a, b = runs[min(runs)][what], runs[max(runs)][what]
    seconds = (lambda r: r["seconds"]) if i is None else (lambda r: r["repeats_s"][i])
    return (seconds(b) - seconds(a)) / (b["rows"] - a["rows"]) * 1e6


def marginal_ratios(runs: dict[int, dict[str, dict]]) -> list[float]:
    """kesu's marginal cost over the floor's, from the i-th runs of the shortest and the longest
    range (one round's): one ratio per round (one alone without --repeat; none with a single
    range or from a results file written before --repeat existed)."""
    if len(runs) < 2 or "repeats_s" not in runs[min(runs)]["kesu"]:
        return []
    count = len(runs[min(runs)]["kesu"]["repeats_s"])
    return [marginal(runs, "kesu", i) / marginal(runs, "floor", i) for i in range(count)]


def _summary(runs: dict[int, dict[str, dict]]) -> None:
    """Cost per row across range lengths, and the marginal cost of the extra days."""
    if len(runs) < 2:
        return
    small, large = min(runs), max(runs)
    print("\nper-row cost across ranges (spread = max/min - 1; goal: within 20%)")
    for what in runs[small]:
        per_row = [runs[n][what]["seconds"] / runs[n][what]["rows"] * 1e6 for n in sorted(runs)]
        peaks = [runs[n][what]["rss_mb"] for n in sorted(runs)]
        spread = max(per_row) / min(per_row) - 1
        print(
            f"  {what:<10} us/row {' / '.join(f'{v:.2f}' for v in per_row)}  spread {spread:.0%}"
            f"   peak MB {' / '.join(f'{v:.0f}' for v in peaks)}"
        )

    floor, kesu = marginal(runs, "floor"), marginal(runs, "kesu")
    print(
        f"marginal cost of days {small + 1}..{large}: floor {floor:.2f} us/row, "
        f"kesu {kesu:.2f} us/row = {kesu / floor:.2f}x the floor (goal <= 2.5x)"
    )
    ratios = marginal_ratios(runs)
    if len(ratios) > 1:
        print(
            f"  round by round ({len(ratios)} rounds): {', '.join(f'{r:.2f}x' for r in ratios)}; "
            f"min {min(ratios):.2f}x, median {statistics.median_low(ratios):.2f}x, "
            f"max {max(ratios):.2f}x"
        )
    if "kesu_plain" in runs[small]:
        plain = marginal(runs, "kesu_plain")
        print(
            f"  kesu without Prefect {plain:.2f} us/row = {plain / floor:.2f}x the floor "
            f"(Prefect's share of kesu's: {1 - plain / kesu:.0%})"
        )
    if "pandas_gx" in runs[small]:
        print(
            f"  pandas_gx {marginal(runs, 'pandas_gx'):.2f} us/row = "
            f"{marginal(runs, 'pandas_gx') / kesu:.2f}x kesu (goal >= 5x)"
        )


LABEL = {
    "floor": "floor",
    "kesu": "kesu",
    "kesu_plain": "kesu without Prefect",
    "pandas_gx": "pandas + GX",
}
FLAT = 0.10  # "flat" peak memory: at most this much growth from the shortest to the longest range


def _per_row(r: dict) -> float:
    return r["seconds"] / r["rows"] * 1e6


def markdown(runs: dict[int, dict[str, dict]]) -> str:
    """The figures and the issue's targets as markdown tables, ready for bench/README.md."""
    lines = [
        "| days | what | rows | seconds | µs/row | peak MB |",
        "|---:|---|---:|---:|---:|---:|",
    ]
    for n in sorted(runs):
        for what, r in runs[n].items():
            lines.append(
                f"| {n} | {LABEL.get(what, what)} | {r['rows']:,} | {r['seconds']:.1f} "
                f"| {_per_row(r):.2f} | {r['rss_mb']:,.0f} |"
            )
    lines += ["", "| target | result | |", "|---|---|---|"]
    for row in _targets(runs):
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _verdict(ok: bool, *marginals: float) -> str:
    if any(m <= 0 for m in marginals):  # the longer range ran faster: noise beat the extra days
        return "**not measured** (a marginal cost ≤ 0)"
    return "**met**" if ok else "**not met**"


def _targets(runs: dict[int, dict[str, dict]]) -> list[tuple[str, str, str]]:
    """(target, result, verdict) rows: marginal cost, speed-up, per-row spread, peak memory."""
    ranges = sorted(runs)
    small, large = ranges[0], ranges[-1]
    rows: list[tuple[str, str, str]] = []
    kesu = [runs[n]["kesu"] for n in ranges]
    if large != small:
        kesu_us, floor_us = marginal(runs, "kesu"), marginal(runs, "floor")
        ratio = kesu_us / floor_us
        whole = _per_row(runs[small]["kesu"]) / _per_row(runs[small]["floor"])
        ratios = sorted(marginal_ratios(runs))
        by_run = (
            f"; round by round {ratios[0]:.2f}–{ratios[-1]:.2f}x over {len(ratios)} rounds"
            if len(ratios) > 1
            else ""
        )
        rows.append(
            (
                f"marginal cost ({large} days − {small} days) ≤ 2.5x the floor",
                f"{kesu_us:.2f} vs {floor_us:.2f} µs/row: **{ratio:.2f}x** "
                f"({small} days whole: {whole:.2f}x{by_run})",
                _verdict(ratio <= 2.5, kesu_us, floor_us),
            )
        )
        if all("pandas_gx" in runs[n] for n in ranges):
            pandas_us = marginal(runs, "pandas_gx")
            speedup = pandas_us / kesu_us
            by_range = ", ".join(
                f"{n} days: {runs[n]['pandas_gx']['seconds'] / runs[n]['kesu']['seconds']:.2f}x"
                for n in ranges
            )
            rows.append(
                (
                    "≥ 5x faster than pandas + GX",
                    f"{pandas_us:.2f} vs {kesu_us:.2f} µs/row: **{speedup:.2f}x** ({by_range})",
                    _verdict(speedup >= 5, kesu_us, pandas_us),
                )
            )
    per_row = [_per_row(r) for r in kesu]
    spread = max(per_row) / min(per_row) - 1
    rows.append(
        (
            f"cost per row constant (±20%) over {', '.join(map(str, ranges))} days",
            f"{' / '.join(f'{v:.2f}' for v in per_row)} µs, spread {spread:.0%}",
            _verdict(spread <= 0.20),
        )
    )
    peaks = [r["rss_mb"] for r in kesu]
    rows.append(
        (
            "peak memory ≤ 2 GB",
            f"{' / '.join(f'{v:,.0f}' for v in peaks)} MB",
            _verdict(max(peaks) <= 2048),
        )
    )
    growth = peaks[-1] / peaks[0] - 1
    rows.append(
        (
            f"… and flat from {small} to {large} days (at most +{FLAT:.0%})",
            f"{growth:+.0%} from {small} to {large} days",
            _verdict(growth <= FLAT),
        )
    )
    return rows


if __name__ == "__main__":
    main()
