"""Typed errors raised by the core; the CLI turns each into one line and an exit code."""

from __future__ import annotations

import signal


class EntrypointError(Exception):
    """Base class: a failure the operator can act on. Never shown as a traceback."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(EntrypointError):
    """An option or environment value is invalid."""

    exit_code = 2


class SourceError(EntrypointError):
    """The migrations folder is missing, unreadable or malformed."""

    exit_code = 3


class DatabaseError(EntrypointError):
    """The database file cannot be used (not SQLite, unreadable, missing folder)."""

    exit_code = 4


class PlanRefused(EntrypointError):
    """The history does not match the migrations in a way that needs a decision."""

    exit_code = 5


class MigrationFailed(EntrypointError):
    """A migration failed and was rolled back; the database is as it was before it."""

    exit_code = 6


class LockTimeout(EntrypointError):
    """Another migrator held the lock for longer than the configured wait."""

    exit_code = 7


class CommandNotExecutable(EntrypointError):
    """The command to exec exists but cannot be executed."""

    exit_code = 126


class CommandNotFound(EntrypointError):
    """The command to exec does not exist."""

    exit_code = 127


class BackupFailed(EntrypointError):
    """The backup could not be written or failed its check; nothing was migrated."""

    exit_code = 8


class NoSpace(EntrypointError):
    """Not enough free space for the backup; nothing was written."""

    exit_code = 9


class CorruptDatabase(EntrypointError):
    """The live database fails its integrity check; it is not migrated."""

    exit_code = 10


class CheckFailed(EntrypointError):
    """A check after migrating failed; the pre-migration backup was restored."""

    exit_code = 11


class RestoreFailed(EntrypointError):
    """The backup to restore is missing or damaged; the live database was not touched."""

    exit_code = 12


class DatabaseBusy(EntrypointError):
    """Another process holds the database or its lock; restore refuses to swap files under it."""

    exit_code = 13


class NoVolume(EntrypointError):
    """The database folder is not a mount point and --require-volume was given."""

    exit_code = 14


class FindingsBlock(EntrypointError):
    """A pending migration has a blocking finding nobody acknowledged (`entrypoint plan`)."""

    exit_code = 15


class Stopped(BaseException):
    """A stop signal (SIGTERM, SIGINT, SIGHUP) arrived before the app was started.

    A BaseException, like KeyboardInterrupt: no `except Exception` on the way swallows it,
    and every rollback and `finally` still runs. The exit code is the shell's: 128 + signal.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        self.name = signal.Signals(signum).name
        self.exit_code = 128 + signum
        super().__init__(f"stopped by {self.name}")
