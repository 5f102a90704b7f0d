"""`kesu` command line. Heavy imports (Prefect, GX, Polars) happen inside the commands, so
`kesu --help` starts in well under a second."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from kesu.flows import (  # argparse only: keeps --help fast
    backfill_cli,
    interrupt,
    migrate_cli,
    quarantine_cli,
    report_cli,
    serve_cli,
    server_cli,
    status_cli,
    watch_cli,
)
from kesu.flows.cli_args import add_feeds
from kesu.flows.cli_args import drop_date as _date
from kesu.flows.config import ConfigError

if TYPE_CHECKING:
    from kesu.transforms.run_records import IngestRun


def _locations(p: argparse.ArgumentParser) -> None:
    p.add_argument("--landing", help="landing zone (env KESU_LANDING, default ./data/landing)")
    p.add_argument(
        "--warehouse", help="warehouse root (env KESU_WAREHOUSE, default ./data/warehouse)"
    )
    p.add_argument("--config", help="kesu.toml (env KESU_CONFIG, default ./kesu.toml if present)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kesu",
        description="Consumer-complaint pipeline: landing files -> validated Parquet warehouse.",
    )
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (env KESU_DEBUG)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    sample = sub.add_parser("sample", help="write realistic sample landing files for a date range")
    sample.add_argument("--start", type=_date, required=True)
    sample.add_argument("--end", type=_date, required=True)
    sample.add_argument("--landing", help="landing zone (env KESU_LANDING, default ./data/landing)")
    sample.add_argument("--profile", choices=("small", "bank"), default="small")
    sample.add_argument("--seed", type=int, default=0)
    sample.add_argument("--clean", action="store_true", help="no injected defects")

    ingest = sub.add_parser("ingest", help="ingest one drop date (the nightly job)")
    ingest.add_argument("--date", type=_date, required=True, dest="drop_date")
    add_feeds(ingest)
    ingest.add_argument("--force", action="store_true", help="redo even if inputs are unchanged")
    _locations(ingest)

    backfill = sub.add_parser("backfill", help="ingest every drop date in a range")
    backfill.add_argument(
        "--start", type=_date, required=True, help="first drop date (YYYY-MM-DD), included"
    )
    backfill.add_argument(
        "--end", type=_date, required=True, help="last drop date (YYYY-MM-DD), included"
    )
    add_feeds(backfill)
    backfill.add_argument(
        "--force",
        action="store_true",
        help="stage and publish every drop again, even those whose inputs are unchanged since "
        "their last completed run (which are otherwise skipped)",
    )
    backfill_cli.add_arguments(backfill)
    _locations(backfill)
    report_cli.add_parser(sub)
    quarantine_cli.add_parser(sub)
    serve_cli.add_parser(sub)
    status_cli.add_parser(sub)
    watch_cli.add_parser(sub)
    server_cli.add_parser(sub)
    migrate_cli.add_parsers(sub)
    return parser


def _cmd_sample(args: argparse.Namespace) -> int:
    from kesu.flows.errors import writing
    from kesu.flows.pii_key import ensure_demo_key
    from kesu.samplegen.generate import generate

    if args.end < args.start:
        raise ConfigError("--end is before --start")
    given = args.landing or os.environ.get("KESU_LANDING") or "data/landing"
    if "://" in given:  # Path() would make a local folder "s3:" of it
        raise ConfigError(
            f"kesu sample writes a local folder, not {given}: give --landing a path, then copy "
            f"it to the bucket (e.g. `aws s3 sync data/landing {given}`)"
        )
    landing = Path(given)
    print(f"writing {args.profile} sample data for {args.start}..{args.end} to {landing}")
    with writing(landing):  # a full disk is the landing zone's, not the warehouse's
        summary = generate(
            args.start,
            args.end,
            landing,
            profile=args.profile,
            seed=args.seed,
            defects=not args.clean,
            progress=lambda d: print(f"  {d} written", flush=True),
        )
    for feed, rows in summary.rows.items():
        print(f"  {feed}: {rows} rows")
    if summary.defects:
        injected = ", ".join(f"{k} {v}" for k, v in sorted(summary.defects.items()))
        print(f"  injected defects: {injected}")
    with writing(landing):
        key_path, created = ensure_demo_key(landing)
    if created and not os.environ.get("KESU_PII_KEY"):
        print(f"created a demo PII key at {key_path} (0600); set KESU_PII_KEY for real data")
    return 0


def _summary_lines(run: IngestRun) -> list[str]:
    lines = []
    for feed, r in run.feeds.items():
        failed = r.failed_files
        extra = f", {len(failed)} file(s) failed" if failed else ""
        lines.append(
            f"{run.drop_date} {feed:<20} {r.status:<10} rows in {r.rows_in:>8} = "
            f"loaded {r.loaded:>8} + quarantined {r.quarantined:>6}{extra}"
        )
        lines += [f"    not read: {s.name!r} ({s.why})" for s in r.skipped]
    return lines


def _exit_status(runs: list[IngestRun]) -> int:
    """Non-zero only when nothing of a present feed could be read (feeds.md, reports.md)."""
    return 1 if any(r.status == "unreadable" for run in runs for r in run.feeds.values()) else 0


def _cmd_ingest(args: argparse.Namespace) -> int:
    from kesu.flows import preflight
    from kesu.flows.config import load_settings
    from kesu.flows.terminal import prefect_command

    settings = load_settings(landing=args.landing, warehouse=args.warehouse, config=args.config)
    preflight.for_ingest(settings)  # before Prefect starts
    with prefect_command(f"ingest {args.drop_date}", "running") as terminal:
        from kesu.flows.ingest import nightly

        run = nightly(
            drop_date=args.drop_date,
            feeds=args.feeds,
            landing_dir=args.landing,
            warehouse_dir=args.warehouse,
            config_file=args.config,
            force=args.force,
        )
    print("\n".join(_summary_lines(run)))
    if terminal.repeats():
        print(terminal.repeats(), file=sys.stderr)
    return _exit_status([run])


# Commands whose SIGTERM ends them as Ctrl-C does, with one line and the ledger told
# (`kesu.flows.interrupt`); `kesu serve` stops its runner its own way.
STOPPABLE = ("ingest", "backfill")


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    handlers = {
        "sample": _cmd_sample,
        "ingest": _cmd_ingest,
        "backfill": backfill_cli.run,
        "serve": serve_cli.run,
        "status": status_cli.run,
        "report": report_cli.run,
        "quarantine": quarantine_cli.run,
        "watch": watch_cli.run,
        "server": server_cli.run,
        "maintain": migrate_cli.run_maintain,
        "migrate": migrate_cli.run_migrate,
    }
    if args.command in STOPPABLE:
        interrupt.install()
    try:
        return handlers[args.command](args)
    except BrokenPipeError:  # `kesu status | head`: the reader has gone, as a shell tool ends
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit flush
        return 128 + signal.SIGPIPE
    except (KeyboardInterrupt, interrupt.Stopped, interrupt.Interrupted) as exc:
        line, status = interrupt.stopped_line(exc) or ("interrupted", 130)
        print(f"kesu {args.command}: {line}", file=sys.stderr)
        return status
    except Exception as exc:  # one line naming what to fix; the traceback only with --debug
        if args.debug or os.environ.get("KESU_DEBUG"):
            raise
        from kesu.flows.errors import one_line
        from kesu.transforms.personal_data import mask_message

        line, status = one_line(exc)
        print(f"kesu {args.command}: {mask_message(line)}", file=sys.stderr)
        return status


if __name__ == "__main__":
    sys.exit(main())
