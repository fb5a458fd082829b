"""The deploy lock on a fleet's host, kept by that host's engine: a created (never started)
container named `litedeploy-lock-PROJECT`, whose labels name the holder.

Docker refuses a second container of the same name, so creating it is an atomic test-and-set
that every operator's machine and CI runner sees, through the engine's API alone (Kamal keeps
its lock on the host too, as a directory made over SSH). The local flock (lock.py) still
guards this machine's state folder; this one guards the host.

A holder that died leaves the container behind. When it died on this machine (its pid is
gone) the next deploy takes over, as with the local lock; a holder on another machine cannot
be checked from here, and the message says how to clear it once it is known to be gone.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Iterator

import docker
from docker.errors import APIError, NotFound

from .errors import LockHeld
from .lock import Stale, describe

PREFIX = "io.litedeploy.lock."


def name_of(project: str) -> str:
    return f"litedeploy-lock-{project}"


def holder(client: docker.DockerClient, project: str) -> dict[str, str] | None:
    """What the lock's container says of its holder, or None when nobody holds it."""
    try:
        labels = client.containers.get(name_of(project)).labels
    except NotFound:
        return None
    return {k.removeprefix(PREFIX): v for k, v in labels.items() if k.startswith(PREFIX)}


def _dead_here(info: dict[str, str]) -> bool:
    """The holder ran on this machine and its process is gone."""
    if info.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(info.get("pid", "0")), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    return False


def held_by(client: docker.DockerClient, project: str, where: str) -> LockHeld | None:
    """The error a deploy would meet on this host's lock, or None (also when the holder is
    a dead deploy of this machine, which the deploy takes over)."""
    info = holder(client, project)
    if info is None or _dead_here(info):
        return None
    return LockHeld(
        f"another deploy holds the lock on {where}: {describe(info)}",
        hint="wait for it to finish; if it is known to be gone (its machine died), remove the "
        f"lock: `docker --host {where} rm {name_of(project)}`"
        if "://" in where
        else f"wait for it to finish; if it is known to be gone, `docker rm {name_of(project)}` "
        "on that host",
    )


@contextlib.contextmanager
def engine_lock(
    client: docker.DockerClient, project: str, deploy_id: str, target: str, image: str, where: str
) -> Iterator[Stale | None]:
    """Hold the host's lock for this deploy; yields what a dead holder of this machine left."""
    labels = {
        PREFIX + "deploy_id": deploy_id,
        PREFIX + "pid": str(os.getpid()),
        PREFIX + "host": socket.gethostname(),
        PREFIX + "target": target,
        PREFIX + "since": str(time.time()),
    }
    stale: Stale | None = None
    made = None
    for attempt in (1, 2):
        try:
            made = client.containers.create(
                image, name=name_of(project), labels=labels, entrypoint=["true"], command=[]
            )
            break
        except APIError as exc:
            if exc.status_code != 409 or attempt == 2:
                raise
        if (error := held_by(client, project, where)) is not None:
            raise error
        left = holder(client, project) or {}
        stale = Stale(
            pid=int(left.get("pid", "0") or 0),
            host=left.get("host", "?"),
            deploy_id=left.get("deploy_id", "?"),
            age_seconds=time.time() - float(left.get("since", time.time())),
        )
        with contextlib.suppress(NotFound):
            client.containers.get(name_of(project)).remove(force=True)
    try:
        yield stale
    finally:
        with contextlib.suppress(Exception):  # best effort: a left lock names its dead holder
            if made is not None:
                made.remove(force=True)
