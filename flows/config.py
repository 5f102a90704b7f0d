"""Locations and configuration: flags win over environment, environment over kesu.toml defaults.

Read once at the edge (CLI or flow entry) and passed down as plain values: transforms never read
the environment or the clock.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import reference

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
    "validation": {"engine": "polars"},
    "pii": {"key_file": ""},
}


class ConfigError(ValueError):
    """A configuration problem the user must fix; the message says what and where."""


@dataclass(frozen=True)
class Settings:
    landing: Path
    warehouse: Path
    reports: Path
    config_file: Path | None
    values: dict[str, dict[str, Any]] = field(default_factory=dict)

    def get(self, section: str, key: str) -> Any:
        return self.values[section][key]

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


def _validate(values: dict[str, dict[str, Any]], source: str) -> None:
    if values["report"]["rounding"] not in ("half_up", "largest_remainder"):
        raise ConfigError(f"{source}: [report] rounding must be 'half_up' or 'largest_remainder'")
    if values["validation"]["engine"] not in ("polars", "gx"):
        raise ConfigError(f"{source}: [validation] engine must be 'polars' or 'gx'")
    for key in ("decision_days", "extended_days", "max_days"):
        if not isinstance(values["sla"][key], int) or values["sla"][key] <= 0:
            raise ConfigError(f"{source}: [sla] {key} must be a positive whole number of days")


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
    values = _merge(DEFAULTS, overrides, source)
    _validate(values, source)
    return Settings(
        landing=Path(landing or env.get("KESU_LANDING") or "data/landing").absolute(),
        warehouse=Path(warehouse or env.get("KESU_WAREHOUSE") or "data/warehouse").absolute(),
        reports=Path(reports or env.get("KESU_REPORTS") or "data/reports").absolute(),
        config_file=config_path.absolute() if config_path else None,
        values=values,
    )
