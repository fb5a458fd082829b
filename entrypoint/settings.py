"""What `entrypoint run` is told: the database, the migrations and how far to trust them.

A wing of one file, between the safety net and the safety analysis (which reads it).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from .base.contract import BACKUP_NEVER
from .base.errors import UsageError
from .base.record import Record
from .engine.sources import Format
from .safetynet.backup_options import Method, default_dir
from .safetynet.integrity import Level


class Policy(StrEnum):
    """When `run` takes a backup."""

    ALWAYS = "always"
    PENDING = "pending"  # only when there is something to apply
    NEVER = BACKUP_NEVER


# SQLite's journal modes that keep a rollback journal (or a WAL); OFF has none, so a failed
# migration could not be rolled back.
JOURNAL_MODES = ("wal", "delete", "truncate", "persist", "memory")


class Findings(StrEnum):
    """What blocking findings and rehearsal losses do to `run`."""

    BLOCK = "block"  # refuse to touch the live database (the default, in every environment)
    WARN = "warn"  # print them and go on: staging only, refused when the environment is production


@dataclass(eq=False, repr=False)
class Options(Record):
    """What to migrate and how far to trust the history."""

    db_path: Path
    migrations_dir: Path
    format: Format | None = None
    history_table: str | None = None
    allow_out_of_order: bool = False
    allow_changed: bool = False
    allow_newer_database: bool = False
    one_transaction: bool = False
    lock_timeout: float = 60.0
    backup: Policy = Policy.PENDING
    backup_dir: Path | None = None
    backup_keep: int = 10
    backup_method: Method = Method.AUTO
    check_level: Level = Level.QUICK
    journal_mode: str | None = None
    require_volume: bool = False
    allow_row_loss: bool = False
    allow: tuple[tuple[str, str], ...] = ()  # --allow RULE OBJECT, from the operator
    deploy_id: str | None = None
    findings: Findings = Findings.BLOCK
    rehearse: bool = True
    rehearsal_dir: Path | None = None  # where the rehearsal's copy goes (default $TMPDIR)
    environment: str | None = None  # APP_ENV / --env, e.g. production or staging
    strict_drift: bool = False

    @property
    def production(self) -> bool:
        return (self.environment or "").strip().lower() in {"production", "prod"}

    @property
    def backups(self) -> Path:
        return self.backup_dir or default_dir(self.db_path)


@dataclass(eq=False, repr=False)
class PushOptions(Record):
    """What push mode is told on top of the run's options."""

    schema: Path | None = None  # default: the newest snapshot in the migrations folder
    renames: tuple[str, ...] = ()
    accept_data_loss: bool = False
    allow_in_production: bool = False
    dry_run: bool = False


def check_relaxing(options: Options) -> None:
    """`--findings warn` is for staging: refuse it where the environment says production."""
    if options.findings is Findings.WARN and options.production:
        raise UsageError(
            f"--findings warn is refused in production (environment {options.environment!r})",
            hint="acknowledge an intended loss by name instead (-- litedeploy: allow RULE "
            "OBJECT in the migration, or --allow RULE OBJECT), or fix the migration",
        )
