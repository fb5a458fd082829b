"""Options shared by several commands: each also reads an environment variable.

What a value may be is decided in `values` (typer-free, for the start-up path); the parsers
here turn its ValueError into typer's usage error.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from ..base.contract import (
    BACKUP_DIR_ENV,
    BACKUP_KEEP_ENV,
    BACKUP_METHOD_ENV,
    DB_PATH_ENV,
    DEPLOY_ID_ENV,
    MIGRATIONS_DIR_ENV,
)
from ..safetynet.backup import Method
from ..safetynet.integrity import Level
from . import values
from .values import (
    ALLOW_ENV,
    DEFAULT_MIGRATIONS,
    MAX_BACKUP_KEEP,
    FormatChoice,
    TransactionChoice,
    allowances,
    make_options,
    migrations_folder,
)

__all__ = [
    "DEFAULT_MIGRATIONS",
    "FormatChoice",
    "TransactionChoice",
    "allowances",
    "make_options",
    "migrations_folder",
]

T = TypeVar("T")


def _parser(check: Callable[[str], T]) -> Callable[[str], T]:
    """`check` as a typer parser: its ValueError becomes typer's usage error."""

    def parse(value: str) -> T:
        try:
            return check(value)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from None

    parse.__name__ = parse.__qualname__ = check.__name__
    parse.__doc__ = check.__doc__
    return parse


sqlite_path = _parser(values.sqlite_path)
history_table_name = _parser(values.history_table_name)
seconds = _parser(values.seconds)
known_journal_mode = _parser(values.known_journal_mode)
deploy_id_value = _parser(values.deploy_id_value)

# The core checks access itself and reports it with its own exit code; sqlite_path only
# refuses names SQLite cannot be given.
DbOption = Annotated[
    Path,
    typer.Option(
        "--db", envvar=DB_PATH_ENV, parser=sqlite_path, metavar="PATH", help="SQLite database file."
    ),
]
MigrationsOption = Annotated[
    Path,
    typer.Option(
        "--migrations",
        envvar=MIGRATIONS_DIR_ENV,
        readable=False,
        help="Migrations folder (drizzle-kit's `out`). Default ./drizzle, as drizzle-kit "
        "writes it (./drizzle/migrations when that is where the migrations are).",
    ),
]


FormatOption = Annotated[
    FormatChoice,
    typer.Option(
        "--format",
        envvar="LITEDEPLOY_MIGRATIONS_FORMAT",
        help="Folder layout: drizzle-kit 0.x journal, drizzle-kit 1.0 folders, or plain "
        "NNNN_name.sql files. Detected when auto.",
    ),
]


TableOption = Annotated[
    str | None,
    typer.Option(
        "--history-table",
        envvar="LITEDEPLOY_MIGRATIONS_TABLE",
        parser=history_table_name,
        help="History table name (drizzle's migrationsTable). Default __drizzle_migrations, "
        "or __litedeploy_migrations for plain SQL folders.",
    ),
]


def lock_timeout_option(help: str, envvar: str | None = "LITEDEPLOY_LOCK_TIMEOUT") -> Any:
    """--lock-timeout SECONDS, validated by `seconds`."""
    return typer.Option(
        "--lock-timeout", envvar=envvar, parser=seconds, metavar="SECONDS", help=help
    )


AllowOption = Annotated[
    list[str] | None,
    typer.Option(
        "--allow",
        metavar="RULE=OBJECT",
        help="Acknowledge one named loss the gate would refuse, for an image whose migrations "
        "you cannot edit: lost-rows=TABLE, lost-values=TABLE.COLUMN, lost-object=NAME, or a "
        "finding's rule (transaction-control=MIGRATION, ...). Repeatable; also "
        f'{ALLOW_ENV}="lost-values=users.name,lost-rows=sessions". No wildcards. Recorded '
        "in the log and the backup's manifest.",
    ),
]


RehearsalDirOption = Annotated[
    Path | None,
    typer.Option(
        "--rehearsal-dir",
        envvar="LITEDEPLOY_REHEARSAL_DIR",
        parser=sqlite_path,
        metavar="PATH",
        help="Folder for the rehearsal's temporary copy (needs the database's size free). "
        "Default: $TMPDIR.",
    ),
]
BackupDirOption = Annotated[
    Path | None,
    typer.Option(
        "--backup-dir",
        envvar=BACKUP_DIR_ENV,
        parser=sqlite_path,
        metavar="PATH",
        help="Folder for backups (0700). Default: <database folder>/backups.",
    ),
]
BackupKeepOption = Annotated[
    int,
    typer.Option(
        "--backup-keep",
        envvar=BACKUP_KEEP_ENV,
        min=1,
        max=MAX_BACKUP_KEEP,
        help="Keep the newest N backups; the newest is never deleted.",
    ),
]
CheckOption = Annotated[
    Level,
    typer.Option(
        "--check",
        envvar="LITEDEPLOY_CHECK",
        help="quick_check (fast) or integrity_check (thorough) for backups and checks.",
    ),
]
BackupMethodOption = Annotated[
    Method,
    typer.Option(
        "--backup-method",
        envvar=BACKUP_METHOD_ENV,
        help="copy: checkpoint, hold the write lock, copy the file (fastest); online: SQLite's "
        "backup API (consistent while others write); auto: copy when the database is quiet.",
    ),
]


DeployIdOption = Annotated[
    str | None,
    typer.Option(
        "--deploy-id",
        envvar=DEPLOY_ID_ENV,
        parser=deploy_id_value,
        help="Recorded in the backup's manifest so the host-side deploy can find it.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
