"""How a landing file is named past the raw zone: in the tables, the ledger, messages and output.

A name is shown on one line with its personal data masked (`shown_name`). A file kesu read is
stored under that name, told apart by its content hash where something was masked, and by a
number where two files would still share it (`stored_name`). `kesu status` goes the other way:
from what a landing folder holds now to the names a run recorded (`since_run`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import polars as pl
from kesu.transforms.personal_data import mask_personal_data, masked_file_name, printable_name


def shown_name(name: str) -> str:
    """A landing zone name that has no checksum to tell it apart (a file kesu did not read, a
    folder), as the run's record and output show it: on one line, personal data masked."""
    return shown_names([name])[0]


def shown_names(names: Iterable[str]) -> list[str]:
    """`shown_name` of each of `names`, in one call of the detector (~0.1 ms a call, not a name)."""
    printable = pl.Series([printable_name(n) for n in names], dtype=pl.String)
    return mask_personal_data(printable).to_list()


class Since(NamedTuple):
    """How a feed's drop folder differs from what a run read (`since_run`): files as shown."""

    landed: list[str]  # landed after the run, or changed in size since
    removed: list[str]  # read by the run, and no longer in the folder


def since_run(
    read: Iterable[tuple[str, int]], landed: Mapping[str, int], shown: Mapping[str, str]
) -> Since:
    """How the files of a feed's drop folder (`landed`: name -> bytes, `shown`: name ->
    `shown_name`) differ from those a run read (`read`: its inputs' stored names and sizes):
    the folder's files the run did not read as they are now (landed after it, or changed in
    size), as shown; and the run's inputs no file of the folder bears the name of any more
    (removed, or renamed: then the new name has landed), by their stored names. Each in name
    order. By name and size alone, no file read: one rewritten at its size is not seen here (a
    re-run's checksums see it)."""
    inputs = list(read)
    late = []
    for name in sorted(landed):
        seen = shown[name]
        exact = seen if seen == printable_name(name) else None  # stored as shown, unless taken
        same_size = [i for i in inputs if i[1] == landed[name]]
        match = next((i for i in same_size if i[0] == exact), None) or next(
            (i for i in same_size if _stored_as(i[0], seen, hashed=exact is None)), None
        )
        if match is None:
            late.append(name)
        else:
            inputs.remove(match)
    for name in late:  # changed in size: the input of its name is not removed
        seen, hashed = shown[name], shown[name] != printable_name(name)
        match = next((i for i in inputs if _stored_as(i[0], seen, hashed)), None)
        if match is not None:
            inputs.remove(match)
    return Since([shown[n] for n in late], sorted(i[0] for i in inputs))


# What `stored_name` can add before a shown name's suffix: its content hash where something
# was masked (`masked_file_name`), then maybe a number (`~2`). Compiled once: status asks
# about every landing file (a pattern a name cost ~0.1 ms, past the `re` module's cache).
_ADDED = {True: re.compile(r"~[0-9a-f]{8}(?:~[0-9]+)?"), False: re.compile(r"(?:~[0-9]+)?")}


def _stored_as(stored: str, shown: str, hashed: bool) -> bool:
    """Whether `stored_name` can have given `stored` to a file shown as `shown`, where
    something of its name was masked (`hashed`) or not."""
    stem, dot, suffix = shown.rpartition(".")
    if not (dot and stem):
        stem, dot, suffix = shown, "", ""
    end = len(stored) - len(dot + suffix)
    return (
        end >= len(stem)
        and stored.startswith(stem)
        and stored.endswith(dot + suffix)
        and _ADDED[hashed].fullmatch(stored, len(stem), end) is not None
    )


def stored_name(name: str, sha256: str, taken: set[str]) -> str:
    """The name a file of a feed's drop is known by past the raw zone: as written, or with its
    personal data masked and its content hash added (`masked_file_name`). Two files whose
    names differ only in what is masked, holding the same bytes, would share that name, and
    with it their counts, their part of the table and the check for unchanged inputs (a second
    copy landed later would be taken as nothing new); so a name the drop's earlier files
    (`taken`, in listing order) already have gets `~2`, `~3`, … before its suffix. Adds the
    name to `taken`."""
    stored = candidate = masked_file_name(name, sha256)
    stem, dot, suffix = stored.rpartition(".")
    n = 1
    while candidate in taken:
        n += 1
        candidate = f"{stem}~{n}.{suffix}" if dot and stem else f"{stored}~{n}"
    taken.add(candidate)
    return candidate


def stored_names(files: Iterable[tuple[str, str]]) -> list[str]:
    """`stored_name` of each (path, sha256) of a feed's drop, in listing order."""
    taken = set[str]()
    return [stored_name(Path(f).name, sha, taken) for f, sha in files]


def input_names(sums: Mapping[str, str]) -> dict[str, str]:
    """{name as stored past the raw zone (`stored_name`): sha256}, from `checksums`."""
    return dict(zip(stored_names(sums.items()), sums.values(), strict=True))
