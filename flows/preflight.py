"""What a command checks before Prefect starts, so that a wrong path, key or reference file
costs a second and one line naming it, not a temporary API's start-up and a traceback.

Each check raises `ConfigError` (exit status 2) with the thing to fix in its message.
"""

from __future__ import annotations

import csv
from pathlib import Path

from kesu.flows.config import ConfigError, Settings
from kesu.flows.pii_key import PiiKey, resolve_pii_key

# Columns a branch reference must have: the staging lookup and the reports join on them.
BRANCH_COLUMNS = ("机构代码", "机构名称")
REFERENCE_FILES = ("branches", "codes", "label_map")


def landing_exists(settings: Settings) -> None:
    """A landing root that is not there is a wrong path, not a day without data. An s3://
    landing zone's bucket must answer (`ObjectStoreError`, one line naming the URL)."""
    from kesu.warehouse.landing_store import LandingMissing, open_landing

    try:
        open_landing(settings.landing, settings.landing_options).check()
    except LandingMissing as exc:
        raise ConfigError(f"{exc}; give --landing or KESU_LANDING") from None


def warehouse_exists(settings: Settings) -> None:
    """A command that only looks after the tables (`maintain`, `migrate`) needs them there: a
    missing root is a mistyped path, which it must not create."""
    if not settings.warehouse_store().exists():
        raise ConfigError(f"warehouse {settings.warehouse} does not exist; give --warehouse")


def warehouse_migrated(settings: Settings) -> None:
    """No command may read or write a warehouse whose first-release tables `kesu migrate` has not
    converted yet: their rows are invisible to Delta, and a vacuum would delete their files. A
    stat or two (`kesu.warehouse.maintenance.unmigrated`), not a scan."""
    from kesu.warehouse.maintenance import Unmigrated, refuse_unmigrated

    try:
        refuse_unmigrated(settings.warehouse_store())
    except Unmigrated as exc:
        raise ConfigError(str(exc)) from None


def _header(path: Path) -> list[str]:
    try:
        with path.open("rb") as fh:
            first = fh.readline()
    except OSError as exc:
        raise ConfigError(f"reference file {path} cannot be read: {exc.strerror}") from None
    try:
        text = first.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(
            f"reference file {path} is not UTF-8 (GBK?); save it as UTF-8, e.g. "
            f"`iconv -f GBK -t UTF-8 {path.name}`"
        ) from None
    return [c.strip().strip('"') for c in text.rstrip("\r\n").split(",")]


def reference_files(settings: Settings, names: tuple[str, ...] = REFERENCE_FILES) -> None:
    """Each reference file exists and is UTF-8; the branch file has the columns kesu joins on."""
    for name in names:
        path = settings.reference_path(name)
        if not path.is_file():
            raise ConfigError(f"reference file {path} ([reference] {name}) does not exist")
        header = _header(path)
        if name == "branches":
            missing = [c for c in BRANCH_COLUMNS if c not in header]
            if missing:
                raise ConfigError(
                    f"reference file {path}: column {', '.join(missing)} is missing "
                    f"(header: {', '.join(header)})"
                )
        try:
            path.read_bytes().decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise ConfigError(
                f"reference file {path} is not UTF-8 at byte {exc.start} (GBK?); save it as UTF-8"
            ) from None


def for_ingest(settings: Settings) -> PiiKey:
    """Landing zone, reference files and the PII key; returns the key (for the demo notice)."""
    landing_exists(settings)
    warehouse_migrated(settings)
    reference_files(settings)
    return resolve_pii_key(settings)


def for_report(settings: Settings) -> None:
    """`kesu report` and `kesu watch`: a migrated warehouse, the reference files they join and
    the report rules they apply (refused before Prefect starts, not by the flow after it)."""
    warehouse_migrated(settings)
    reference_files(settings, ("branches", "codes"))
    report_rules(settings)


def report_rules(settings: Settings) -> None:
    """The report rules of kesu.toml ([report] [sla] [hotline] [merge]) as `kesu report` and
    `kesu watch` read them (`ReportConfig`), e.g. [sla] decision_days after extended_days; and
    the disclosure's buckets, whose codes must be business categories of the codes file."""
    from kesu.transforms.reporting import ReportConfig

    source = settings.config_file or "built-in defaults"
    try:
        ReportConfig.from_settings(settings.values)
    except ValueError as exc:
        raise ConfigError(f"{source}: {exc}") from None
    disclosure_buckets(settings, source)


def disclosure_buckets(settings: Settings, source: object) -> None:
    """Each code of [disclosure] category_buckets is a business category (axis B) of the codes
    file: an unknown code (a cause code, a typo) would silently never be grouped."""
    buckets = settings.values.get("disclosure", {}).get("category_buckets") or {}
    if not buckets:
        return
    path = settings.reference_path("codes")
    with path.open(encoding="utf-8-sig", newline="") as fh:
        known = {
            (row.get("code") or "").strip()
            for row in csv.DictReader(fh)
            if (row.get("axis") or "").strip() == "B"
        }
    for name, codes in buckets.items():
        unknown = [code for code in codes if code not in known]
        if unknown:
            raise ConfigError(
                f"{source}: [disclosure] category_buckets {name!r}: {', '.join(unknown)} not among "
                f"the business category codes (axis B) of {path}"
            )


def for_serve(settings: Settings) -> None:
    """`kesu serve`: its locations become every deployment's defaults, so what the nightly
    (ingest, then the watch list) and the reports would refuse is refused now, not at 02:00."""
    for_ingest(settings)  # the landing zone, the warehouse's release, every reference file, the key
    report_rules(settings)


def for_maintain(settings: Settings) -> None:
    warehouse_exists(settings)
    warehouse_migrated(settings)
