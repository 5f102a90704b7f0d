"""kesu.transforms.file_names: a landing file's name past the raw zone, and back from a landing
folder to the names a run recorded (what `kesu status` compares)."""

from __future__ import annotations

import hashlib
import re

from hypothesis import given, settings
from hypothesis import strategies as st
from kesu.transforms.file_names import Since, shown_name, shown_names, since_run, stored_names

# names as exports and people write them: dates, phones, a `~`, several dots, Chinese, none
NAME_PARTS = st.sampled_from(
    ["calls", "补发", "_", "-", ".", "~", "~2", "~1a2b3c4d", "2025-03-01", "13912345678",
     "139 1234 5678", "0592-5551234", "00012345", "x", "\u200b"]
)  # fmt: skip
SUFFIXES = st.sampled_from([".csv", ".xlsx", ".CSV", "", "."])


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.lists(NAME_PARTS, min_size=1, max_size=4), SUFFIXES), max_size=4))
def test_every_stored_name_leads_back_to_its_landing_file(parts):
    # Whatever `stored_name` adds (a content hash where something was masked, `~2` where two
    # files would share a name), status finds the file it was stored from, and no other.
    names = sorted({"".join(p) + suffix for p, suffix in parts} - {".", ".."})  # not files
    files = [(n, sha(n)) for n in names]  # one folder: names differ, and so do contents
    read = [(s, len(n)) for s, (n, _) in zip(stored_names(files), files, strict=True)]
    landed = {n: len(n) for n in names}
    shown = dict(zip(names, shown_names(names), strict=True))
    assert since_run(read, landed, shown) == Since([], [])
    assert shown == {n: shown_name(n) for n in names}


def test_a_file_landed_later_or_changed_in_size_is_named_as_shown():
    names = ["a.csv", "calls_13911115555.csv", "calls_13922225555.csv", "late_13812345678.csv"]
    # the two calls files hold the same bytes: stored as calls_139****5555~1a2b3c4d(~2).csv
    read = [(s, 100) for s in stored_names((n, "1a2b3c4d" + "0" * 56) for n in names[:3])]
    shown = dict(zip(names, shown_names(names), strict=True))
    assert since_run(read, dict.fromkeys(names[:3], 100), shown) == Since([], [])
    now = dict.fromkeys(names, 100) | {"a.csv": 101}
    assert since_run(read, now, shown) == Since(["a.csv", "late_138****5678.csv"], [])
    # a third file named like the twins is one more than the run read
    third = "calls_13933335555.csv"
    shown[third] = shown_name(third)
    assert since_run(read, now | {third: 100}, shown).landed == [
        "a.csv",
        "calls_139****5555.csv",
        "late_138****5678.csv",
    ]


def test_no_pattern_is_compiled_for_each_landing_file(monkeypatch):
    """Status asks about every landing file of every day: a pattern compiled for each (past the
    `re` module's cache of 512) cost ~0.1 ms a file, 0.1-0.2 s for a year of drops."""
    compiled = []
    compile_ = re.compile
    monkeypatch.setattr(re, "compile", lambda *a, **k: compiled.append(a) or compile_(*a, **k))
    names = [f"calls_{i}.csv" for i in range(600)]
    # stored with a number, as a second file of the same shown name is: matched by the pattern
    read = [(n.replace(".csv", "~2.csv"), 100) for n in names]
    assert since_run(read, dict.fromkeys(names, 100), {n: n for n in names}) == Since([], [])
    assert compiled == []


def test_a_file_removed_since_is_named_as_the_run_stored_it():
    """A file the run read that the folder no longer holds: its rows are still in the tables,
    and status said nothing (a re-run rebuilds the drop without them). One of two files that
    share a shown name is removed: the other still answers for one of the stored names."""
    names = ["a.csv", "calls_13911115555.csv", "calls_13922225555.csv"]
    read = [(s, 100) for s in stored_names((n, "1a2b3c4d" + "0" * 56) for n in names)]
    assert read[1:] == [
        ("calls_139****5555~1a2b3c4d.csv", 100),
        ("calls_139****5555~1a2b3c4d~2.csv", 100),
    ]
    shown = dict(zip(names, shown_names(names), strict=True))
    now = {"calls_13911115555.csv": 100}
    assert since_run(read, now, shown) == Since([], ["a.csv", "calls_139****5555~1a2b3c4d~2.csv"])
    # changed in size, a file is landed since, not removed; renamed, it is both
    assert since_run(read, dict.fromkeys(names, 100) | {"a.csv": 7}, shown) == Since(["a.csv"], [])
    shown["b.csv"] = "b.csv"
    renamed = dict.fromkeys(names[1:], 100) | {"b.csv": 100}
    assert since_run(read, renamed, shown) == Since(["b.csv"], ["a.csv"])
