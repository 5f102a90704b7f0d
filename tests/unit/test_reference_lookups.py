"""The label and branch lookups are built once per content of the reference files."""

from __future__ import annotations

from pathlib import Path

from kesu.flows.config import load_settings
from kesu.flows.staging_inputs import load_lookups
from kesu.reference import BRANCHES


def test_lookups_are_built_again_as_soon_as_a_reference_file_changes(tmp_path: Path) -> None:
    branches = tmp_path / "branches.csv"
    lines = BRANCHES.read_text(encoding="utf-8").splitlines()
    branches.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = tmp_path / "kesu.toml"
    config.write_text(f"[reference]\nbranches = '{branches}'\n", encoding="utf-8")
    settings = load_settings(config=str(config), environ={})
    first = load_lookups(settings)
    assert load_lookups(settings) is first  # the same files: built once

    # one branch fewer, written at once (the same second, maybe the same modification time)
    code = lines[-1].split(",")[0]
    branches.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    again = load_lookups(settings)
    assert code in first.branches and code not in again.branches
