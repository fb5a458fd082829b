"""Typed errors of the host-side deploy; the CLI turns each into one line and an exit code."""

from __future__ import annotations

from collections.abc import Iterator

from entrypoint.base import errors as entrypoint
from entrypoint.base.errors import EntrypointError


class DeployError(Exception):
    """Base class: something the operator can act on. Never shown as a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class ConfigError(DeployError):
    """deploy.yml, a flag or the compose file is wrong; nothing was touched."""

    exit_code = 2


class PreflightFailed(DeployError):
    """Docker, Compose, the image or the disk is not ready; nothing was touched."""

    exit_code = 3


class Aborted(DeployError):
    """The rehearsal failed on a copy of the database; production was not touched."""

    exit_code = 4


class RolledBack(DeployError):
    """The new version failed; the previous image and database are back and healthy."""

    exit_code = 5


class RollbackFailed(DeployError):
    """The new version failed and putting the previous one back failed too."""

    exit_code = 6


class LockHeld(DeployError):
    """Another deploy of this stack is running."""

    exit_code = 7


class StepFailed(DeployError):
    """A command of the cutover or rollback failed; the deployer decides what follows."""

    exit_code = 1


class FolderError(DeployError):
    """An operation on the data folder (datafolder.py) failed, here or in the helper container.

    `entrypoint_code` is the entrypoint's exit code for the error, which names its class (each
    class has its own) and is how the class crosses the helper container's JSON; 1 when the
    error was none of the entrypoint's (an OSError, the helper not starting). `exit_code` is
    deploy's, from FROM_ENTRYPOINT.
    """

    def __init__(self, message: str, hint: str | None = None, entrypoint_code: int = 1) -> None:
        super().__init__(message, hint)
        self.entrypoint_code = entrypoint_code
        self.exit_code = exit_code(self)


# The entrypoint's errors as deploy's exit code. Its backup, restore and history code runs in
# deploy's commands too (here, or in the helper container for an operator who is not root),
# and its exit codes are not deploy's: its 5 is a refused plan, deploy's 5 a rollback. A class
# not listed is 3, preflight failed: nothing was touched.
FROM_ENTRYPOINT: dict[type[EntrypointError], int] = {
    entrypoint.UsageError: ConfigError.exit_code,  # a value it refuses: a path, a table name
    entrypoint.LockTimeout: LockHeld.exit_code,  # a migrator holds the database's lock
    entrypoint.DatabaseBusy: LockHeld.exit_code,  # another process has the database open
}
# ... and in `deploy restore`, whose backup failing to come back is a failed restore step.
FROM_ENTRYPOINT_IN_RESTORE: dict[type[EntrypointError], int] = {
    **FROM_ENTRYPOINT,
    entrypoint.RestoreFailed: StepFailed.exit_code,  # the backup is missing or damaged
    entrypoint.BackupFailed: StepFailed.exit_code,
    entrypoint.NoSpace: StepFailed.exit_code,
}


def _classes(cls: type[EntrypointError]) -> Iterator[type[EntrypointError]]:
    yield cls
    for sub in cls.__subclasses__():
        yield from _classes(sub)


# The entrypoint's exit code -> its error class: how a FolderError names the class it carries.
_BY_CODE = {cls.exit_code: cls for cls in _classes(EntrypointError) if cls is not EntrypointError}


def exit_code(error: DeployError | EntrypointError, *, restoring: bool = False) -> int:
    """deploy's exit code for an error one of its commands met (`restoring`: `deploy restore`)."""
    if isinstance(error, FolderError):
        kind = _BY_CODE.get(error.entrypoint_code)
        if kind is None:  # none of the entrypoint's: a step failed, its message says which
            return StepFailed.exit_code
    elif isinstance(error, EntrypointError):
        kind = type(error)
    else:
        return error.exit_code
    table = FROM_ENTRYPOINT_IN_RESTORE if restoring else FROM_ENTRYPOINT
    found = (table[cls] for cls in kind.__mro__ if cls in table)
    return next(found, PreflightFailed.exit_code)
