"""Locations and configuration: flags win over environment, environment over kesu.toml defaults.

Read once at the edge (CLI or flow entry) and passed down as plain values: transforms never read
the environment or the clock.

The warehouse root is a local absolute `Path` or an object-store URL kept as the string it was
given (``Path("s3://b/p")`` would turn it into ``s3:/b/p``). For an ``s3://`` root the
endpoint, region and addressing style come from ``[s3]`` and the ``KESU_S3_*`` variables, and
the local state directory (locks, scratch) from ``[warehouse] state_dir`` / ``KESU_STATE_DIR``;
credentials only from the standard AWS chain, never from this file.

Over 250 lines: the one place that reads flags, environment and kesu.toml: the defaults, the
known keys and their checks together, so an unknown or wrong key is named where it is read.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

from kesu.warehouse import Warehouse

from kesu import reference

DEFAULTS: dict[str, dict[str, Any]] = {
    "report": {"rounding": "half_up", "decimals": 2},
    "sla": {"decision_days": 15, "extended_days": 30, "max_days": 60},
    "hotline": {"service_level_seconds": 20},
    "merge": {"implicit": True},
    "reference": {
        "branches": str(reference.BRANCHES),
        "label_map": str(reference.LABEL_MAP),
        "codes": str(reference.JRT0169_CODES),
        "denominators": str(reference.DENOMINATORS),
    },
    # engine "polars" evaluates the GX suites as Polars expressions (proven equal to GX in the
    # tests); "gx" runs Great Expectations itself on pandas, ~20x slower on a large bank's day.
    "validation": {
        "engine": "polars",
        # plausible times (feeds.md "Additions"): a date or time before `earliest`, or after the
        # end of the day `future_days` after the drop date, is a defect of its row
        "earliest": "2000-01-01",
        "future_days": 1,
    },
    "pii": {"key_file": ""},
    # kesu watch: due within N days; volume alert rule (docs/reports.md); what the nightly
    # artifact and event call at risk (overdue or due within at_risk_days)
    "watch": {"within_days": 5, "alert_score": 3.0, "alert_min_count": 3, "at_risk_days": 2},
    # kesu maintain: data files only versions older than this read are vacuumed (time travel
    # and `kesu report --reproduce` reach back this far)
    "warehouse": {"vacuum_days": 7},
}

# Issue 11 (report rules, docs/reports.md): unknown labels, regions, disclosure presentation.
DEFAULTS["validation"]["unknown_label"] = "other"  # or "quarantine": hold the row instead
DEFAULTS["report"] |= {"region": "province", "national_units": "province"}  # or "separate"
DEFAULTS["disclosure"] = {
    "channels": "客服热线、营业网点、官方网站、手机银行、信函",  # where the bank takes complaints
    "date": "",  # the publication date printed at the end, e.g. 2026年3月31日 ("" = none)
    # business categories shown as one row in the disclosure (the tail, as banks publish it)
    "category_buckets": {"外汇、贵金属、个人金融信息等其他业务": [
        "B08", "B09", "B10", "B11", "B12", "B13", "B14"]},
}  # fmt: skip


S3_KEYS = ("endpoint_url", "region", "addressing_style")
# Tables kesu.toml may hold besides those of DEFAULTS (which has no entry for them: their keys
# are optional), with their known keys.
OPTIONAL_SECTIONS: dict[str, tuple[str, ...]] = {"s3": S3_KEYS, "warehouse": ("state_dir",)}
S3_ADDRESSING = ("auto", "path", "virtual")
CREDENTIAL_WORDS = ("key", "secret", "token", "password", "credential")


class ConfigError(ValueError):
    """A configuration problem the user must fix; the message says what and where."""


@dataclass(frozen=True)
class Settings:
    landing: Path | str  # a local absolute path, or an s3:// URL exactly as given
    warehouse: Path | str  # a local absolute path, or an s3:// URL exactly as given
    reports: Path
    config_file: Path | None
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    # warehouse.s3.S3Options of an s3:// warehouse as resolved here (toml + environment)
    object_store: Any = None
    # warehouse.s3.S3Options of an s3:// landing zone (same [s3] table and KESU_S3_* variables)
    landing_options: Any = None

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

    def warehouse_store(self) -> Warehouse:
        """The warehouse (storage, tables, ledger), built on first use and kept with these
        settings: it travels with them to a Dask worker, its S3 options included."""
        found = self.__dict__.get("_warehouse_store")
        if found is None:
            found = Warehouse.from_settings(self)
            object.__setattr__(self, "_warehouse_store", found)  # frozen: a cache, not a field
        return found

    def reference_path(self, name: str) -> Path:
        path = Path(self.values["reference"][name])
        if not path.is_absolute() and self.config_file is not None:
            path = self.config_file.parent / path
        return path


def _merge(defaults: dict[str, dict[str, Any]], overrides: dict[str, Any], source: str) -> dict:
    merged = {section: dict(values) for section, values in defaults.items()}
    for section, values in overrides.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        merged.setdefault(section, {}).update(values)
    return merged


def known_keys() -> dict[str, tuple[str, ...]]:
    """Every table and key kesu.toml may hold: DEFAULTS (so a key added there is known at once)
    plus the optional tables."""
    known = {section: tuple(values) for section, values in DEFAULTS.items()}
    for section, keys in OPTIONAL_SECTIONS.items():
        known[section] = tuple(dict.fromkeys(known.get(section, ()) + keys))
    return known


def _nearest(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(choices)}"


def check_known_keys(overrides: dict[str, Any], source: str) -> None:
    """An unknown table or key is an error naming the nearest known one: a misspelt key must
    not silently leave its default in force."""
    known = known_keys()
    for section, values in overrides.items():
        if section not in known:
            hint = _nearest(section, list(known))
            raise ConfigError(f"{source}: unknown table [{section}]{hint}")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        if section == "s3":  # credential words get their own message (_validate_s3)
            continue
        for key in values:
            if key not in known[section]:
                raise ConfigError(
                    f"{source}: [{section}] unknown key {key!r}{_nearest(key, known[section])}"
                )


def _validate(values: dict[str, dict[str, Any]], source: str) -> None:
    if values["report"]["rounding"] not in ("half_up", "largest_remainder"):
        raise ConfigError(f"{source}: [report] rounding must be 'half_up' or 'largest_remainder'")
    if values["validation"]["engine"] not in ("polars", "gx"):
        raise ConfigError(f"{source}: [validation] engine must be 'polars' or 'gx'")
    try:
        date.fromisoformat(str(values["validation"]["earliest"]))
    except ValueError:
        raise ConfigError(f"{source}: [validation] earliest must be a date YYYY-MM-DD") from None
    future_days = values["validation"]["future_days"]
    if not isinstance(future_days, int) or isinstance(future_days, bool) or future_days < 0:
        raise ConfigError(f"{source}: [validation] future_days must be a whole number >= 0")
    for key in ("decision_days", "extended_days", "max_days"):
        if not isinstance(values["sla"][key], int) or values["sla"][key] <= 0:
            raise ConfigError(f"{source}: [sla] {key} must be a positive whole number of days")
    watch = values["watch"]  # the served nightly's watch step read them only at 02:00
    for key in ("within_days", "at_risk_days", "alert_min_count"):
        if not isinstance(watch[key], int) or isinstance(watch[key], bool) or watch[key] < 0:
            raise ConfigError(f"{source}: [watch] {key} must be a whole number, 0 or more")
    score = watch["alert_score"]
    if not isinstance(score, int | float) or isinstance(score, bool) or score <= 0:
        raise ConfigError(f"{source}: [watch] alert_score must be a number above 0")
    vacuum_days = values["warehouse"]["vacuum_days"]
    if not isinstance(vacuum_days, int) or isinstance(vacuum_days, bool) or vacuum_days < 0:
        raise ConfigError(f"{source}: [warehouse] vacuum_days must be a whole number, 0 or more")
    values["disclosure"] = disclosure_values(values["disclosure"], source)
    _validate_s3(values.get("s3", {}), source)


# Codes that stay their own last row (其他): a bucket holding one would hide it inside the tail.
OTHER_CATEGORY = "B99"


def disclosure_values(table: dict[str, Any], source: str) -> dict[str, Any]:
    """[disclosure] as the public text prints it: `channels` and `date` become the text written
    (a list of channels joined with 、, a TOML date as 2026年3月31日), so the disclosure, the
    manifest and a reproduction all hold that text. Anything else is refused naming the form
    wanted: the disclosure is published, and str() of a list or a number would be printed."""
    return {
        "channels": _channels(table["channels"], source),
        "date": _closing_date(table["date"], source),
        "category_buckets": _category_buckets(table["category_buckets"], source),
    }


def _one_line(text: str, key: str, source: str) -> str:
    text = text.strip()
    if "\n" in text or "\r" in text:
        raise ConfigError(f"{source}: [disclosure] {key} must be one line of text")
    return text


def _channels(value: Any, source: str) -> str:
    wanted = (
        f'{source}: [disclosure] channels must be text ("客服热线、营业网点") or a list of '
        f'channel names (["客服热线", "营业网点"])'
    )
    if isinstance(value, str):
        return _one_line(value, "channels", source)
    if not isinstance(value, list):
        raise ConfigError(f"{wanted}; got {value!r}")
    if not all(isinstance(name, str) and name.strip() for name in value):
        raise ConfigError(f"{wanted}, each a non-empty name; got {value!r}")
    names = [_one_line(name, "channels", source) for name in value]
    if len(set(names)) < len(names):
        twice = next(name for name in names if names.count(name) > 1)
        raise ConfigError(f"{source}: [disclosure] channels lists {twice!r} twice")
    return "、".join(names)  # as Chinese text joins a list


def _closing_date(value: Any, source: str) -> str:
    """A TOML date (2026-03-31) or the same quoted is written 2026年3月31日, as the disclosure
    writes every date (reports.labels.day_text); other text is printed as given (e.g.
    二〇二六年三月三十一日), "" prints none. A date-time, a time or a number is refused."""
    if isinstance(value, date) and not isinstance(value, datetime):
        day = value
    elif isinstance(value, str) and re.fullmatch(r"\s*\d{4}-\d{1,2}-\d{1,2}\s*", value):
        try:
            day = date.fromisoformat(_padded(value.strip()))
        except ValueError:
            raise ConfigError(f"{source}: [disclosure] date {value!r} is not a day") from None
    elif isinstance(value, str):
        return _one_line(value, "date", source)
    else:
        raise ConfigError(
            f"{source}: [disclosure] date must be a date (date = 2026-03-31) or the text to "
            f'print (date = "2026年3月31日"); got {value!r}'
        )
    return f"{day.year}年{day.month}月{day.day}日"  # reports.labels.day_text, without polars


def _padded(iso: str) -> str:
    year, month, day = iso.split("-")
    return f"{year}-{int(month):02d}-{int(day):02d}"


def _category_buckets(value: Any, source: str) -> dict[str, list[str]]:
    """Bucket name -> business category codes, each code in one bucket at most; whether the
    codes are the codes file's is checked with the reference files (preflight.report_rules)."""
    example = '{ "外汇、贵金属等其他业务" = ["B08", "B09"] }'
    if not isinstance(value, dict):
        raise ConfigError(
            f"{source}: [disclosure] category_buckets must be a table of bucket name = list of "
            f"business category codes, e.g. {example}; got {value!r}"
        )
    seen: dict[str, str] = {}
    for name, codes in value.items():
        if not name.strip():
            raise ConfigError(f"{source}: [disclosure] category_buckets: a bucket has no name")
        if not isinstance(codes, list) or not codes:
            raise ConfigError(
                f"{source}: [disclosure] category_buckets {name!r} must be a list of business "
                f'category codes (e.g. ["B08", "B09"]); got {codes!r}'
            )
        for code in codes:
            if not isinstance(code, str) or not code.strip():
                raise ConfigError(
                    f"{source}: [disclosure] category_buckets {name!r}: {code!r} is not a code"
                )
            if code == OTHER_CATEGORY:
                raise ConfigError(
                    f"{source}: [disclosure] category_buckets {name!r}: {code} (其他) is always "
                    "shown as the last row of its own"
                )
            if code in seen:
                raise ConfigError(
                    f"{source}: [disclosure] category_buckets: {code} is in both "
                    f"{seen[code]!r} and {name!r}"
                )
            seen[code] = name
    return {name: list(codes) for name, codes in value.items()}


def _validate_s3(s3: dict[str, Any], source: str) -> None:
    for key in s3:
        if any(word in key.lower() for word in CREDENTIAL_WORDS):
            raise ConfigError(
                f"{source}: [s3] {key}: credentials never go in kesu.toml; use the AWS chain "
                "(AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY, or AWS_PROFILE)"
            )
        if key not in S3_KEYS:
            raise ConfigError(f"{source}: [s3] {key} is unknown; known: {', '.join(S3_KEYS)}")
    if s3.get("addressing_style", "auto") not in S3_ADDRESSING:
        choices = ", ".join(S3_ADDRESSING)
        raise ConfigError(f"{source}: [s3] addressing_style must be one of {choices}")


def _warehouse_root(
    value: str, values: dict[str, dict[str, Any]], env: Mapping[str, str]
) -> tuple[Path | str, Any]:
    """A local root made absolute, or a URL unchanged with its connection options (returned so
    that they travel with the settings, and `Settings.warehouse_store` uses them)."""
    state_dir = values.get("warehouse", {}).get("state_dir")
    return _location(value, "warehouse", values, env, state_dir)


def _landing_root(
    value: str, values: dict[str, dict[str, Any]], env: Mapping[str, str]
) -> tuple[Path | str, Any]:
    """A local landing zone made absolute, or an s3:// URL unchanged with its connection
    options (the warehouse's `[s3]` table and variables; nothing is registered globally)."""
    return _location(value, "landing", values, env, None)


def _location(
    value: str,
    what: str,
    values: dict[str, dict[str, Any]],
    env: Mapping[str, str],
    state_dir: str | None,
) -> tuple[Path | str, Any]:
    if not Warehouse.names_object_store(value):
        return Path(value).absolute(), None
    label = "warehouse" if what == "warehouse" else "landing zone"
    if not value.startswith("s3://"):
        raise ConfigError(f"{label} {value}: only s3:// object stores are supported")
    from kesu.warehouse import s3  # boto3 (~0.3 s) only for an s3:// location

    try:
        s3.split_url(value)
    except ValueError as exc:
        raise ConfigError(str(exc).replace("warehouse URL", f"{what} URL")) from None
    table = values.get("s3", {})
    base = s3.S3Options(
        endpoint_url=table.get("endpoint_url"),
        region=table.get("region"),
        addressing_style=table.get("addressing_style", "auto"),
        state_dir=state_dir,
    )
    options = s3.S3Options.from_env(env, base)
    if options.addressing_style not in S3_ADDRESSING:
        raise ConfigError(f"KESU_S3_ADDRESSING must be one of {', '.join(S3_ADDRESSING)}")
    return value, options


def load_settings(
    landing: str | None = None,
    warehouse: str | None = None,
    reports: str | None = None,
    config: str | None = None,
    environ: dict[str, str] | None = None,
) -> Settings:
    env = os.environ if environ is None else environ
    config_path: Path | None
    if config or env.get("KESU_CONFIG"):
        config_path = Path(config or env["KESU_CONFIG"])
        if not config_path.is_file():
            raise ConfigError(f"configuration file {config_path} does not exist")
    else:
        config_path = Path("kesu.toml") if Path("kesu.toml").is_file() else None
    overrides: dict[str, Any] = {}
    if config_path is not None:
        try:
            overrides = tomllib.loads(config_path.read_text(encoding="utf-8"))
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_path}: not valid TOML: {exc}") from exc
    source = str(config_path) if config_path else "built-in defaults"
    check_known_keys(overrides, source)
    values = _merge(DEFAULTS, overrides, source)
    _validate(values, source)
    root, object_store = _warehouse_root(
        warehouse or env.get("KESU_WAREHOUSE") or "data/warehouse", values, env
    )
    landing_root, landing_options = _landing_root(
        landing or env.get("KESU_LANDING") or "data/landing", values, env
    )
    return Settings(
        landing=landing_root,
        warehouse=root,
        reports=Path(reports or env.get("KESU_REPORTS") or "data/reports").absolute(),
        config_file=config_path.absolute() if config_path else None,
        values=values,
        object_store=object_store,
        landing_options=landing_options,
    )
