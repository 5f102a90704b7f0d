"""Benchmark: the fixed cost of a command, what it pays besides its work (issue 14).

Runs real `kesu` processes, as a user would, on a small bank's 3 sample days already ingested:
  help       `kesu --help` (imports only argparse: the floor of starting Python and kesu)
  ingest     `kesu ingest --date D` of an unchanged drop (its work: ~0.1 s)
  report     `kesu report quarterly 2025Q3` over those 3 days
each in two modes, R times:
  before     KESU_PREFECT_SERVER=ephemeral: every command starts Prefect's temporary API
  after      kesu's local Prefect server, started once (timed on its own) and reused
Uses a fresh PREFECT_HOME in a temporary folder, and stops the server it started.

    .venv/bin/python bench/fixed_cost.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

KESU = Path(sys.executable).with_name("kesu")
DAYS = ("2025-07-01", "2025-07-03")


def timed(argv: list[str], env: dict[str, str], cwd: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([str(KESU), *argv], env=env, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"kesu {' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="kesu-fixed-cost-"))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KESU_", "PREFECT_"))}
    env |= {"PREFECT_HOME": str(work / "prefect"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
    before = env | {"KESU_PREFECT_SERVER": "ephemeral"}
    commands = {
        "help": ["--help"],
        "ingest": ["ingest", "--date", DAYS[0]],
        "report": ["report", "quarterly", "2025Q3"],
    }
    timed(["sample", "--start", DAYS[0], "--end", DAYS[1], "--seed", "7"], env, work)
    results: dict[str, dict[str, list[float]]] = {}
    try:
        started = timed(["server", "start"], env, work)
        timed(["backfill", "--start", DAYS[0], "--end", DAYS[1]], env, work)
        for name, argv in commands.items():
            results.setdefault(name, {})["before"] = [
                timed(argv, before, work) for _ in range(args.repeat)
            ]
        for name, argv in commands.items():
            results[name]["after"] = [timed(argv, env, work) for _ in range(args.repeat)]
    finally:
        timed(["server", "stop"], env, work)
        shutil.rmtree(work, ignore_errors=True)
    print(f"local server start (once): {started:.1f} s")
    print(f"{'command':<8} {'before s (median, runs)':<32} {'after s (median, runs)'}")
    for name, modes in results.items():

        def cell(runs: list[float]) -> str:
            return f"{statistics.median(runs):5.1f}  ({', '.join(f'{r:.1f}' for r in runs)})"

        print(f"{name:<8} {cell(modes['before']):<32} {cell(modes['after'])}")
    load = os.getloadavg()[0]
    print(f"load average during the run: {load:.1f} on {os.cpu_count()} cores")


if __name__ == "__main__":
    main()
