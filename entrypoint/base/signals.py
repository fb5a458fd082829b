"""Stop signals before exec: SIGTERM, SIGINT and SIGHUP end the entrypoint promptly and cleanly.

In a container the entrypoint is PID 1, and PID 1 gets no default signal actions: without a
handler SIGTERM is ignored, `docker stop` waits out its grace period and then SIGKILLs the
entrypoint wherever it is. With `install()`, the first stop signal raises `Stopped` in the
main thread at whatever it is waiting for (the migration lock, a backup, a migration, the
rehearsal); the exception unwinds through the rollbacks and clean-ups already on the way,
and the CLI exits 128 + the signal's number.

Python cannot raise inside C, so a long SQLite statement would run to its end first: the
connections `database.connect` opens get a progress handler that lets the signal in and
aborts the statement, which then fails and rolls back like any other. `check()` is called
where a stop must not be missed (before a migration's history row is written, before exec).
`restore_defaults()` runs just before exec, so the app starts with the dispositions it would
have had started by itself: default, except a stop signal ignored when the entrypoint started
(`nohup`, or a background job of a shell without job control), which the app inherits
ignored. The entrypoint itself still stops cleanly on it: a migration half-way is better
rolled back than left to whatever ends the process next.
"""

from __future__ import annotations

import signal
import sqlite3
from types import FrameType

from .errors import Stopped

STOP = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
# Python ignores these at start-up, and an ignored signal stays ignored across exec.
_IGNORED_BY_PYTHON = (signal.SIGPIPE, signal.SIGXFSZ)
# Stop signals ignored by whoever started us: the app inherits them ignored.
_IGNORED_AT_START = frozenset(s for s in STOP if signal.getsignal(s) == signal.SIG_IGN)
_PROGRESS_EVERY = 10_000  # SQLite VM steps between looks: microseconds, a negligible cost

_received: int | None = None


def install() -> None:
    """Handle the stop signals for the rest of the entrypoint's life (until exec)."""
    for signum in STOP:
        signal.signal(signum, _on_stop)


def _on_stop(signum: int, frame: FrameType | None) -> None:
    global _received
    first = _received is None
    _received = _received or signum
    if first:  # once: a second signal must not break the clean-up the first one started
        raise Stopped(signum)


def received() -> int | None:
    """The stop signal that arrived, if one did."""
    return _received


def check() -> None:
    """Raise Stopped if a stop signal arrived (even one whose exception was swallowed)."""
    if _received is not None:
        raise Stopped(_received)


def interruptible(conn: sqlite3.Connection) -> sqlite3.Connection:
    """Let a stop signal abort this connection's statements instead of waiting for their end."""
    conn.set_progress_handler(_abort_if_stopped, _PROGRESS_EVERY)
    return conn


def _abort_if_stopped() -> bool:
    return _received is not None


def restore_defaults() -> None:
    """Give the app default signal dispositions: nothing handled or ignored by us survives exec
    (a stop signal ignored before we started stays ignored)."""
    for signum in (*STOP, *_IGNORED_BY_PYTHON):
        kept = signum in _IGNORED_AT_START
        signal.signal(signum, signal.SIG_IGN if kept else signal.SIG_DFL)
