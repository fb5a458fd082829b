"""Typed errors of the host-side deploy; the CLI turns each into one line and an exit code."""

from __future__ import annotations


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
