"""What a command shows on the terminal while Prefect runs its flow: kesu's own lines, a status
line or progress display (in a terminal, drawn by rich), each distinct warning once; Prefect's
own chatter ("Finished in state Completed()", engine tracebacks) stays in Prefect's logs — the
API handler keeps every record — and out of the terminal.

Off a terminal (a pipe, cron, CI) the same lines are printed plainly, without the live display.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rich.console import Console

# Warnings that differ only by a date or a number are one warning: the first is shown.
_VARYING = re.compile(r"\d{4}-\d{2}-\d{2}|\d+")


class Terminal:
    """One per command: prints result lines and warnings, above a live display if there is one."""

    def __init__(self, tty: bool | None = None) -> None:
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.console: Console | None = None
        self.seen: dict[str, int] = {}

    def line(self, text: str) -> None:
        if self.console is not None:
            self.console.print(text, markup=False, highlight=False)
        else:
            print(text, flush=True)

    def warn(self, text: str) -> None:
        """Each warning once per command; repeats are counted and told at the end."""
        shape = _VARYING.sub("#", text)
        self.seen[shape] = self.seen.get(shape, 0) + 1
        if self.seen[shape] > 1:
            return
        if self.console is not None:
            self.console.print(f"[yellow]warning:[/] {text}", markup=True, highlight=False)
        else:
            print(f"warning: {text}", file=sys.stderr, flush=True)

    def repeats(self) -> str | None:
        more = sum(n - 1 for n in self.seen.values())
        if not more:
            return None
        return f"({more} more warning(s) like those above: in the runs' logs in Prefect)"

    @contextmanager
    def status(self, text: str) -> Iterator[Callable[[str], None]]:
        """A spinner with `text` in a terminal (the callback changes it); off a terminal,
        nothing: the result lines follow."""
        if not self.tty:
            yield lambda _: None
            return
        from rich.console import Console

        self.console = Console()
        with self.console.status(text) as shown:
            yield lambda new: shown.update(new)
        self.console = None


@contextmanager
def prefect_command(what: str, doing: str) -> Iterator[Terminal]:
    """A command's one flow run: a status line ("`what`: starting Prefect…", then "`what`:
    `doing`") while Prefect starts with kesu's defaults and the flow runs, and Prefect's own
    console lines kept off the terminal (`prefect_quiet`). Import the flow inside the block:
    Prefect's settings are made first. Yields the terminal (its warnings, `repeats`)."""
    from kesu.flows.cli_args import prefect_defaults

    terminal = Terminal()
    with terminal.status(f"{what}: starting Prefect…") as status:
        prefect_defaults(say=terminal.line)
        status(f"{what}: {doing}")
        with prefect_quiet(terminal):
            yield terminal


@contextmanager
def prefect_quiet(terminal: Terminal) -> Iterator[None]:
    """Keep Prefect's console handler off the terminal for the command; route the warnings
    kesu's own code logs in a run (not the engine's) to `terminal.warn`."""
    import prefect
    import prefect.main  # noqa: F401 (sets up Prefect's logging: its console handlers exist now)
    from prefect.logging.handlers import PrefectConsoleHandler

    engine = str(Path(prefect.__file__).parent)
    loggers = [logging.getLogger(), *logging.Logger.manager.loggerDict.values()]
    consoles = {
        h
        for logger in loggers
        if isinstance(logger, logging.Logger)
        for h in logger.handlers
        if isinstance(h, PrefectConsoleHandler)
    }
    levels = {h: h.level for h in consoles}
    for h in consoles:
        h.setLevel(logging.CRITICAL + 1)
    relay = _Relay(terminal, engine)
    runs = [logging.getLogger(name) for name in ("prefect.flow_runs", "prefect.task_runs")]
    for logger in runs:
        logger.addHandler(relay)
    try:
        yield
    finally:
        _send_pending()
        for logger in runs:
            logger.removeHandler(relay)
        for h, level in levels.items():
            h.setLevel(level)


def _send_pending(timeout: float = 10.0) -> None:
    """Send the run's last events and API logs to the server now, while Prefect's console is
    still off: sent at the process's exit instead, they printed Prefect's "EventsWorker - Still
    processing items: 1 items remaining..." warning under the output of `kesu ingest`."""
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):  # logs first: sending them emits no event
        worker.drain_all(timeout=timeout)


class _Relay(logging.Handler):
    def __init__(self, terminal: Terminal, engine: str) -> None:
        super().__init__(level=logging.WARNING)
        self.terminal, self.engine = terminal, engine

    def emit(self, record: logging.LogRecord) -> None:
        if record.pathname.startswith(self.engine):
            return  # the engine's own ("Encountered exception ...", its traceback)
        self.terminal.warn(record.getMessage())
