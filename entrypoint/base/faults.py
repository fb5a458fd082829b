"""Named fault-injection points, switched on only by the fault suite (tests/faults).

The code calls `point("restore.quarantined")` at the places where a crash or an I/O error
would hurt most. Nothing happens unless the environment variable `LITEDEPLOY_FAULT` names
that point; the fault suite sets it on the processes it starts:

    LITEDEPLOY_FAULT=restore.quarantined            kill -9 the first time it is reached
    LITEDEPLOY_FAULT=apply.statement@5              ... the 5th time
    LITEDEPLOY_FAULT=backup.copy@1:error            raise OSError(EIO) there instead
    LITEDEPLOY_FAULT=apply.statement@2:sqlerror     raise sqlite3.OperationalError (disk I/O)
    LITEDEPLOY_FAULT=lock.wait:hang                 sleep (for signal tests), until killed

Several specs may be given, separated by commas. `LITEDEPLOY_FAULT_LOG=FILE` appends one line
per point reached (name and count), so a test can list every point a run passes through
and then kill it at each one in turn. Reading the variable once keeps the cost of a point
that is off to a dictionary lookup.
"""

from __future__ import annotations

import errno
import os
import signal
import sqlite3
import time
from typing import NamedTuple

ENV = "LITEDEPLOY_FAULT"
LOG_ENV = "LITEDEPLOY_FAULT_LOG"


class _Spec(NamedTuple):  # not a dataclass: this module is on every start's path
    name: str
    at: int  # fire on this hit (1-based)
    action: str  # kill, error, hang


def _parse(text: str) -> dict[str, _Spec]:
    specs: dict[str, _Spec] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        where, _, action = part.partition(":")
        name, _, at = where.partition("@")
        specs[name] = _Spec(name, int(at) if at.isdigit() else 1, action or "kill")
    return specs


_SPECS = _parse(os.environ.get(ENV, ""))
_LOG = os.environ.get(LOG_ENV)
_hits: dict[str, int] = {}
if _SPECS:  # under the fault suite only: SIGUSR1 prints every thread's stack (a hang's where)
    import faulthandler

    faulthandler.register(signal.SIGUSR1, all_threads=True)


def point(name: str) -> None:
    """A place where the fault suite may kill the process or fail an I/O call."""
    if not _SPECS and _LOG is None:
        return
    count = _hits[name] = _hits.get(name, 0) + 1
    if _LOG is not None:
        with open(_LOG, "a", encoding="utf-8") as log:
            log.write(f"{name}@{count}\n")
    spec = _SPECS.get(name)
    if spec is None or spec.at != count:
        return
    if spec.action == "error":
        raise OSError(errno.EIO, f"injected I/O error at {name}@{count}")
    if spec.action == "sqlerror":
        raise sqlite3.OperationalError(f"disk I/O error (injected at {name}@{count})")
    if spec.action == "hang":
        while True:
            time.sleep(3600)
    os.kill(os.getpid(), signal.SIGKILL)
