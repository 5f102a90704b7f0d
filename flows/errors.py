"""How the command line tells an error: one line naming the thing to fix, and an exit status —
2 for usage and configuration (fix the command or kesu.toml), 1 for a run that failed.
The traceback stays behind `--debug` (or KESU_DEBUG)."""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

USAGE, FAILED = 2, 1
MAX_CHARS = 300  # an unexpected error's message could be long; the first line is enough
_DISK = {
    errno.ENOSPC: "no space left on the device holding {path}: free some space and run again",
    errno.EDQUOT: "disk quota exceeded writing {path}: free some space and run again",
    errno.EROFS: "{path} is on a read-only file system: give a folder that can be written",
    errno.EACCES: "permission denied on {path}: check who owns it",
    errno.EPERM: "operation not permitted on {path}: check who owns it",
}

# What only a write gives: its error names no file (write(), flush and close have none)
_WRITE_ONLY = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


@contextmanager
def writing(target: str | Path) -> Iterator[None]:
    """A command's output step: a full disk while it writes names `target` (the report folder,
    the export file), not the warehouse, which an error without a file name is blamed on."""
    try:
        yield
    except Exception as exc:
        for cause in (exc, exc.__cause__, exc.__context__):  # as `one_line` looks for it
            if isinstance(cause, OSError) and cause.filename is None and cause.errno in _WRITE_ONLY:
                cause.filename = str(target)
        raise


def _os_error(exc: OSError) -> str:
    from kesu.transforms.file_names import shown_name

    # a path can hold personal data or a line break (a file name given to --export)
    path = shown_name(str(exc.filename)) if exc.filename else "the warehouse"
    if exc.errno in _DISK:
        return _DISK[exc.errno].format(path=path)
    return f"{exc.strerror or exc}: {path}"


def one_line(exc: BaseException) -> tuple[str, int]:
    """The line to print (without the command's prefix) and the exit status."""
    from kesu.flows.config import ConfigError

    if isinstance(exc, ConfigError):
        return str(exc), USAGE
    # the context only where the error did not set it aside (`raise … from None`): a busy lock
    # raised in place of the EAGAIN of its try was told as "Resource temporarily unavailable"
    context = None if exc.__suppress_context__ else exc.__context__
    for cause in (exc, exc.__cause__, context):
        if isinstance(cause, OSError) and cause.errno is not None:
            return _os_error(cause), FAILED
    name = type(exc).__name__
    if name in ("DropBusy", "WarehouseBusy", "ReportBusy"):  # another run is live: try later
        return str(exc), USAGE
    # their message is the whole story; a period no drop covers is refused with exit status 1
    # whether the command or the flow (a report --reproduce) finds it
    if name in ("BackfillFailed", "NotReproducible", "EmptyPeriod"):
        return str(exc), FAILED
    if isinstance(exc, ValueError):  # bad values given by the user (a period, a feed)
        return _first_line(str(exc)), USAGE
    text = _first_line(str(exc))
    return f"failed: {name}: {text} (run with --debug for the traceback)", FAILED


def _first_line(text: str) -> str:
    first = text.strip().splitlines()[0] if text.strip() else ""
    return first if len(first) <= MAX_CHARS else first[: MAX_CHARS - 1] + "…"
