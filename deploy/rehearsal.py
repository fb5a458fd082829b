"""Rehearse the new image's migrations on a snapshot while the old version keeps serving."""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from entrypoint.base.contract import (
    BACKUP_ENV,
    BACKUP_NEVER,
    DB_PATH_ENV,
    DEPLOY_ID_ENV,
    MODE_ENV,
    MODE_PUSH,
    REHEARSAL_ENV,
    REHEARSAL_ON,
)
from entrypoint.safetynet.database import online_copy, uri

from .runner import TIMED_OUT, Result, run
from .stack import Stack


def snapshot(db_path: Path, into: Path, name: str | None = None) -> Path:
    """A consistent copy with SQLite's online backup API (the live app may be writing),
    named `name` (default: the source's own name)."""
    into.mkdir(parents=True, exist_ok=True, mode=0o755)
    target = into / (name or db_path.name)
    if not db_path.exists():
        return target  # first deploy: the rehearsal starts from an empty database
    # quoted: a `#` or `?` in the path would cut the URI and open an empty database instead
    src = sqlite3.connect(uri(db_path), uri=True, timeout=30)
    try:
        online_copy(src, target)
    finally:
        src.close()
    return target


def runs_litedeploy(entrypoint: list[str]) -> bool:
    """Whether an image's ENTRYPOINT looks like litedeploy's: the bundle
    (/opt/litedeploy/entrypoint), the console script `entrypoint`, or `python -m entrypoint`.
    A wrapper script of the team's own is not recognised; its rehearsal still runs."""
    names = [PurePosixPath(part).name for part in entrypoint]
    module = any(pair == ("-m", "entrypoint") for pair in itertools.pairwise(entrypoint))
    return module or "entrypoint" in names


def spoke(result: Result) -> bool:
    """Whether litedeploy's entrypoint ran: each of its lines starts with `entrypoint:`."""
    return any(line.startswith("entrypoint: ") for line in result.stderr.splitlines())


def rehearse_argv(
    stack: Stack, image: str, snapshot_dir: Path | str, name: str, *, push: bool = False
) -> list[str]:
    """`docker run --rm` of the new image on the snapshot: no network, no app start.
    `snapshot_dir` is a folder, or the name of a Docker volume (a fleet host's).

    Environment values are passed by name only (`-e KEY`), taken from our environment, so
    secrets never appear on a command line.
    """
    argv = [
        "docker",
        "run",
        "--rm",
        "--name",
        name,
        "--network",
        "none",
        "-v",
        f"{snapshot_dir}:{stack.db_container_path.parent}",
    ]
    for key in sorted(rehearsal_env(stack, push=push)):
        argv += ["-e", key]
    return [*argv, image]


def rehearsal_env(stack: Stack, *, push: bool = False) -> dict[str, str]:
    """The service's environment, with backups off and the stop-before-exec switch on
    (and push mode, when the deploy pushes)."""
    env = dict(stack.service.environment)
    env.pop(DEPLOY_ID_ENV, None)
    env.update(
        {
            REHEARSAL_ENV: REHEARSAL_ON,
            BACKUP_ENV: BACKUP_NEVER,
            DB_PATH_ENV: str(stack.db_container_path),
        }
    )
    if push:
        env[MODE_ENV] = MODE_PUSH
    return env


def rehearse(
    stack: Stack,
    image: str,
    workdir: Path | str,
    name: str,
    timeout: float,
    *,
    push: bool = False,
    source: Path | None = None,
    take_snapshot: Callable[[Path | None, Path | str, str], None] | None = None,
    runner: Callable[..., Result] = run,
) -> Result:
    """Snapshot the database (or `source`, a backup a rollback would restore), run the
    image's entrypoint on it, and return what it said. `take_snapshot(source, into, name)`
    makes the copy (DataFolder.snapshot: here, or in a container for a non-root operator);
    `runner` runs the container (runner.run, or the deploy's Host)."""
    name_in = stack.db_container_path.name
    if take_snapshot is None:
        snapshot(source or stack.db_path, Path(workdir), name_in)
    else:
        take_snapshot(source, workdir, name_in)
    result = runner(
        rehearse_argv(stack, image, workdir, name, push=push),
        env=rehearsal_env(stack, push=push),
        timeout=timeout,
    )
    if result.returncode == TIMED_OUT:  # the client is gone, the container is not
        runner(["docker", "rm", "--force", name], timeout=60)
    return result
