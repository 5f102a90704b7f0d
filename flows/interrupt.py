"""Ctrl-C (SIGINT) and SIGTERM (what systemd sends to stop a service): a command stops with one
line, exit status 128 + the signal's number (130, 143), and a ledger that says what happened.

Outside a backfill's drops (`install`), either signal stops the command where it is: SIGINT as
Python's KeyboardInterrupt, SIGTERM as `Stopped`. A drop stopped mid-way keeps its ledger record
as `interrupted` (`kesu.flows.drop`), and its next run recovers what it left.

While a backfill runs its drops (`between_drops`), the first signal starts no new drop and stops
the running ones: their worker processes are ended (`on_stop`), as a signal sent to the whole
process group (systemd, a terminal's Ctrl-C reaches every process) would end them anyway, so the
outcome is the same however the signal came. A drop takes seconds but can wait minutes for a
drop's lock; stopped mid-way it is recovered by the next run. The backfill then records itself
as `interrupted` with the drops that completed and raises `Interrupted`. A second signal ends
the process at once (a drop on a thread of this process, `--threads`, cannot be stopped
otherwise), after one line; the next run recovers what it left.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

SIGNALS = (signal.SIGINT, signal.SIGTERM)
AGAIN = "run the same command again to finish (what was stopped mid-way is recovered then)"


class Interrupted(Exception):
    """The command was stopped by `signum`; `str()` is its line (after `kesu <command>: `)."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum

    @property
    def exit_status(self) -> int:
        return 128 + self.signum


class Stopped(BaseException):
    """SIGTERM outside a backfill's drops (`install`): a BaseException, as KeyboardInterrupt."""

    def __init__(self, signum: int = signal.SIGTERM) -> None:
        super().__init__(name(signum))
        self.signum = signum


class NotStarted(Exception):
    """A drop not started, or stopped, because the backfill was asked to stop."""


def name(signum: int) -> str:
    return signal.Signals(signum).name


def signal_of(exc: BaseException) -> int | None:
    """The signal that `exc` stands for: KeyboardInterrupt, `Stopped`, Prefect's
    TerminationSignal (its SIGTERM handler inside a flow run); None for an error."""
    if isinstance(exc, KeyboardInterrupt):
        return signal.SIGINT
    if isinstance(exc, Exception):
        return None
    number = getattr(exc, "signum", getattr(exc, "signal", None))
    return number if isinstance(number, int) else None


def stopped_line(exc: BaseException) -> tuple[str, int] | None:
    """The line and exit status for a command stopped by a signal (`exc` as it reached `main`)."""
    if isinstance(exc, Interrupted):
        return str(exc), exc.exit_status
    signum = signal_of(exc)
    if signum is None:
        return None
    return f"interrupted ({name(signum)}); {AGAIN}", 128 + signum


def _raise_stopped(signum: int, _frame: FrameType | None) -> None:
    raise Stopped(signum)


_installed = False


def install() -> None:
    """SIGTERM raises `Stopped` in this process (a command's main thread), as SIGINT raises
    KeyboardInterrupt; and a backfill's drops stop cleanly (`between_drops`)."""
    global _installed
    signal.signal(signal.SIGTERM, _raise_stopped)
    _installed = True


_requested: int | None = None  # the first signal during a backfill's drops
_asked = threading.Event()  # set with it
_listening = False  # a backfill's drops are running under `between_drops`
_on_stop: list[Callable[[], None]] = []


def requested() -> int | None:
    """The signal that asked the backfill of this process to stop, if one did."""
    return _requested


def wait_requested(seconds: float) -> int | None:
    """`requested`, after waiting up to `seconds` for a signal still on its way. A signal sent
    to the process group (systemd, a terminal) reaches a drop's worker and the backfill at once,
    and the worker may die of it before the backfill's main thread has run its handler: a drop
    whose worker died asks this before it is run again. At once where no signal is listened to."""
    if _listening:
        _asked.wait(seconds)
    return _requested


def _between(signum: int, _frame: FrameType | None) -> None:
    global _requested
    if _requested is not None:  # the second: end now, the next run recovers the rest
        os.write(2, f"kesu backfill: stopped at once ({name(signum)} again); {AGAIN}\n".encode())
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)
        return
    _requested = signum
    _asked.set()
    for stop in list(_on_stop):
        stop()


@contextmanager
def between_drops(on_stop: Callable[[], None] | None = None) -> Iterator[None]:
    """While a backfill runs its drops: SIGINT and SIGTERM ask it to stop (`requested`) and call
    `on_stop`, instead of raising wherever the flow is. Only in a command that called `install`
    (a served run keeps Prefect's own handling) and in the main thread; Prefect's flow engine
    sets its own SIGTERM handler for the run, replaced here for the drops' time."""
    global _requested, _listening
    if not _installed or threading.current_thread() is not threading.main_thread():
        yield
        return
    _requested, _listening = None, True
    _asked.clear()
    if on_stop is not None:
        _on_stop.append(on_stop)
    before = {s: signal.signal(s, _between) for s in SIGNALS}
    try:
        yield
    finally:
        for s, handler in before.items():
            signal.signal(s, handler)
        if on_stop is not None:
            _on_stop.remove(on_stop)
        _requested, _listening = None, False  # the next backfill of this process starts afresh
