"""Reference data shipped with kesu; a bank replaces any file through `[reference]` in kesu.toml."""

from pathlib import Path

DIR = Path(__file__).resolve().parent

JRT0169_CODES = DIR / "jrt0169_codes.csv"
LABEL_MAP = DIR / "label_map.csv"
BRANCHES = DIR / "branches.csv"
DENOMINATORS = DIR / "denominators.csv"
