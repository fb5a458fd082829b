"""Options shared by several commands: each also reads an environment variable."""

from __future__ import annotations

import math
import os
import unicodedata
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from ..backup import Method
from ..checks import Level
from ..database import path_problem
from ..errors import UsageError
from ..history import name_problem
from ..loss import parse_allow
from ..settings import JOURNAL_MODES, Options
from ..sources import Format


class FormatChoice(StrEnum):
    AUTO = "auto"
    DRIZZLE_JOURNAL = "drizzle-journal"
    DRIZZLE_FOLDERS = "drizzle-folders"
    SQL = "sql"


class TransactionChoice(StrEnum):
    EACH = "each"
    ALL = "all"


def sqlite_path(value: str | Path) -> Path:
    """A path SQLite will be given (the database, a backup, a folder for copies): UTF-8."""
    path = Path(value)
    if (problem := path_problem(path)) is not None:
        raise typer.BadParameter(f"{problem}; SQLite opens files by UTF-8 names")
    return path


# The core checks access itself and reports it with its own exit code; sqlite_path only
# refuses names SQLite cannot be given.
DbOption = Annotated[
    Path,
    typer.Option(
        "--db", envvar="DB_PATH", parser=sqlite_path, metavar="PATH", help="SQLite database file."
    ),
]
# drizzle-kit writes to ./drizzle; earlier releases defaulted to ./drizzle/migrations, which
# is still read when ./drizzle is not a migrations folder itself and that one exists.
DEFAULT_MIGRATIONS = Path("./drizzle")
_OLD_DEFAULT = DEFAULT_MIGRATIONS / "migrations"

MigrationsOption = Annotated[
    Path,
    typer.Option(
        "--migrations",
        envvar="MIGRATIONS_DIR",
        readable=False,
        help="Migrations folder (drizzle-kit's `out`). Default ./drizzle, as drizzle-kit "
        "writes it (./drizzle/migrations when that is where the migrations are).",
    ),
]


def migrations_folder(given: Path) -> Path:
    """The folder to read: the default ./drizzle, or ./drizzle/migrations where they live."""
    if given != DEFAULT_MIGRATIONS or not _OLD_DEFAULT.is_dir():
        return given
    journal = given / "meta" / "_journal.json"
    holds_migrations = journal.exists() or any(given.glob("*/migration.sql"))
    return given if holds_migrations else _OLD_DEFAULT


FormatOption = Annotated[
    FormatChoice,
    typer.Option(
        "--format",
        envvar="MIGRATIONS_FORMAT",
        help="Folder layout: drizzle-kit 0.x journal, drizzle-kit 1.0 folders, or plain "
        "NNNN_name.sql files. Detected when auto.",
    ),
]


def history_table_name(value: str) -> str:
    """--history-table / MIGRATIONS_TABLE: a name SQLite lets a table have."""
    if (problem := name_problem(value)) is not None:
        raise typer.BadParameter(problem)
    return value


TableOption = Annotated[
    str | None,
    typer.Option(
        "--history-table",
        envvar="MIGRATIONS_TABLE",
        parser=history_table_name,
        help="History table name (drizzle's migrationsTable). Default __drizzle_migrations, "
        "or __litedeploy_migrations for plain SQL folders.",
    ),
]


def make_options(
    db: Path,
    migrations: Path,
    fmt: FormatChoice,
    table: str | None,
    *,
    allow: list[str] | None = None,
    **flags: Any,
) -> Options:
    chosen = None if fmt is FormatChoice.AUTO else Format(fmt.value)
    return Options(
        db_path=db,
        migrations_dir=migrations_folder(migrations),
        format=chosen,
        history_table=table,
        allow=allowances(allow),
        **flags,
    )


MAX_WAIT = 86_400.0  # a day; more is a typo, and nan or inf would wait for ever
MAX_BACKUP_KEEP = 10_000


def seconds(value: str | float) -> float:
    """A wait from an option or the environment: a finite number of seconds, 0 to a day."""
    try:
        number = float(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a number of seconds") from None
    if not (math.isfinite(number) and 0 <= number <= MAX_WAIT):
        raise typer.BadParameter(
            f"must be a number of seconds from 0 to {MAX_WAIT:g} (got {value!r})"
        )
    return number


def lock_timeout_option(help: str, envvar: str | None = "LOCK_TIMEOUT") -> Any:
    """--lock-timeout SECONDS, validated by `seconds`."""
    return typer.Option(
        "--lock-timeout", envvar=envvar, parser=seconds, metavar="SECONDS", help=help
    )


def known_journal_mode(value: str) -> str:
    """--journal-mode / JOURNAL_MODE: one of SQLite's modes that can roll back (any case)."""
    mode = value.strip().lower()
    if mode == "off":
        raise typer.BadParameter(
            "'off' keeps no rollback journal: a migration that fails half-way could not be "
            f"rolled back; use one of {', '.join(JOURNAL_MODES)} (wal is the default for a "
            "new database)"
        )
    if mode not in JOURNAL_MODES:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(JOURNAL_MODES)}")
    return mode


ALLOW_ENV = "LITEDEPLOY_ALLOW"

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


def allowances(given: list[str] | None) -> tuple[tuple[str, str], ...]:
    """--allow values and LITEDEPLOY_ALLOW, as (rule, object); bad ones are a UsageError."""
    values = list(given or [])
    env = os.environ.get(ALLOW_ENV, "")
    values += [v for part in env.replace(";", ",").split(",") if (v := part.strip())]
    out = []
    for value in values:
        try:
            out.append(parse_allow(value))
        except ValueError:
            raise UsageError(
                f"--allow {value!r} is not RULE=OBJECT",
                hint="e.g. --allow lost-values=users.name (a column), --allow lost-rows=sessions "
                "(a table); one object each, no wildcards",
            ) from None
    return tuple(out)


RehearsalDirOption = Annotated[
    Path | None,
    typer.Option(
        "--rehearsal-dir",
        envvar="REHEARSAL_DIR",
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
        envvar="BACKUP_DIR",
        parser=sqlite_path,
        metavar="PATH",
        help="Folder for backups (0700). Default: <database folder>/backups.",
    ),
]
BackupKeepOption = Annotated[
    int,
    typer.Option(
        "--backup-keep",
        envvar="BACKUP_KEEP",
        min=1,
        max=MAX_BACKUP_KEEP,
        help="Keep the newest N backups; the newest is never deleted.",
    ),
]
CheckOption = Annotated[
    Level,
    typer.Option(
        "--check",
        envvar="CHECK",
        help="quick_check (fast) or integrity_check (thorough) for backups and checks.",
    ),
]
BackupMethodOption = Annotated[
    Method,
    typer.Option(
        "--backup-method",
        envvar="BACKUP_METHOD",
        help="copy: checkpoint, hold the write lock, copy the file (fastest); online: SQLite's "
        "backup API (consistent while others write); auto: copy when the database is quiet.",
    ),
]


def deploy_id_value(value: str) -> str:
    """--deploy-id / DEPLOY_ID: a name the host-side deploy finds its backup by, on one line."""
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in value):
        raise typer.BadParameter(f"{value!r} contains a control character")
    if len(value) > 200:
        raise typer.BadParameter(f"is {len(value)} characters long (at most 200)")
    return value


DeployIdOption = Annotated[
    str | None,
    typer.Option(
        "--deploy-id",
        envvar="DEPLOY_ID",
        parser=deploy_id_value,
        help="Recorded in the backup's manifest so the host-side deploy can find it.",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]
