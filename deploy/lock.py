"""One deploy per stack at a time: an flock on `.litedeploy/deploy.lock` that names its holder."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import LockHeld


@dataclass(frozen=True)
class Stale:
    """What a deploy that died while holding the lock had written."""

    pid: int
    host: str
    deploy_id: str
    age_seconds: float


def _read(fd: int) -> dict[str, Any]:
    try:
        data = json.loads(os.pread(fd, 65536, 0) or b"{}")
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def _held(fd: int, path: Path) -> LockHeld:
    return LockHeld(
        f"another deploy of this stack is running: {describe(_read(fd))}",
        hint=f"wait for it to finish (lock file {path})",
    )


def describe(info: dict[str, Any]) -> str:
    age = time.time() - float(info.get("since", time.time()))
    return (
        f"deploy {info.get('deploy_id', '?')} (pid {info.get('pid', '?')} on "
        f"{info.get('host', '?')}, to {info.get('target', '?')}, running for {age:.0f}s)"
    )


@contextlib.contextmanager
def deploy_lock(state_dir: Path, deploy_id: str, target: str) -> Iterator[Stale | None]:
    """Hold the stack's deploy lock; yields what a dead previous holder left, if anything.

    The kernel releases an flock when its holder dies, so a lock file that still holds a
    record when we get the lock was left by a deploy that was killed mid-way.
    """
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = state_dir / "deploy.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise _held(fd, path) from None
        left = _read(fd)
        stale = None
        if left.get("pid"):
            stale = Stale(
                pid=int(left["pid"]),
                host=str(left.get("host", "?")),
                deploy_id=str(left.get("deploy_id", "?")),
                age_seconds=time.time() - float(left.get("since", time.time())),
            )
        record = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "deploy_id": deploy_id,
            "target": target,
            "since": time.time(),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(record).encode(), 0)
        try:
            yield stale
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def lock_error(state_dir: Path) -> LockHeld | None:
    """The error a deploy would meet on this state folder's lock now, or None (a preflight's
    question: the lock is tried and let go at once)."""
    path = state_dir / "deploy.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return _held(fd, path)
    finally:
        os.close(fd)  # closing lets go of a lock taken here
    return None
