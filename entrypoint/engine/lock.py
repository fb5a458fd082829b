"""One migrator per database: an flock on a file beside it, seen by every container."""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import math
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from ..base.errors import DatabaseError, LockTimeout, UsageError

log = logging.getLogger("litedeploy.entrypoint")


def lock_path(db_path: Path) -> Path:
    """The lock file for a database: `app.db` -> `app.db.lock`."""
    return db_path.with_name(db_path.name + ".lock")


def holder(path: Path) -> str:
    """Describe who holds the lock, from what the holder wrote into the file."""
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        return "an unknown process"
    if not isinstance(info, dict) or "pid" not in info:
        return "an unknown process"
    age = time.time() - float(info.get("since", time.time()))
    return f"pid {info['pid']} on {info.get('host', '?')} for {age:.0f}s"


@contextlib.contextmanager
def migration_lock(db_path: Path, timeout: float, poll: float = 0.1) -> Iterator[None]:
    """Hold the database's migration lock; wait up to `timeout` seconds for another holder.

    flock locks live in the kernel, so containers on one host that bind-mount the same
    folder exclude each other, and a crashed holder releases its lock when it dies.
    """
    if not (math.isfinite(timeout) and timeout >= 0):  # nan would never time out
        raise UsageError(
            f"lock timeout must be a finite number of seconds >= 0 (got {timeout!r})",
            hint="set --lock-timeout / LITEDEPLOY_LOCK_TIMEOUT to a number of seconds, e.g. 60",
        )
    path = lock_path(db_path)
    try:
        # Never through a symlink: after a start with --user the app's user owns the folder,
        # and a link it planted at app.db.lock would have root truncate the file it names.
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600)
    except OSError as exc:
        planted = exc.errno == errno.ELOOP
        raise DatabaseError(
            f"cannot open lock file {path}: "
            + (
                "it is a symbolic link, which the entrypoint never follows"
                if planted
                else str(exc.strerror)
            ),
            hint="remove it (nothing else uses it) and start again"
            if planted
            else "the database folder must be writable by the entrypoint",
        ) from exc
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise DatabaseError(
            f"lock file {path} is not a regular file", hint="remove it and start again"
        )
    try:
        deadline = time.monotonic() + timeout
        waited = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waited:
                    log.info("waiting for the migration lock, held by %s", holder(path))
                    waited = True
                if time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"another migrator ({holder(path)}) held {path} for more than {timeout:g}s",
                        hint="wait for it to finish, or raise --lock-timeout / "
                        "LITEDEPLOY_LOCK_TIMEOUT",
                    ) from None
                time.sleep(poll)
        info = {"pid": os.getpid(), "host": os.uname().nodename, "since": time.time()}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        if waited:
            log.info("got the migration lock")
        try:
            yield
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
