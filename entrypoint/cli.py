"""`entrypoint`: the container's entrypoint. A thin typer layer over the core modules."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer

from . import handoff
from .errors import EntrypointError
from .migrate import Options, Status, migrate, status
from .plan import DESCRIPTIONS
from .sources import Format

log = logging.getLogger("litedeploy.entrypoint")

EXIT_CODES = """\b
Exit codes:
  0    success (or the app's own code, after exec)
  2    bad option or environment value
  3    migrations folder missing or malformed
  4    database unusable (not SQLite, folder missing)
  5    history needs a decision (out of order, changed, newer database)
  6    a migration failed and was rolled back
  7    timed out waiting for another migrator's lock
  126  the app command is not executable
  127  the app command was not found
"""

app = typer.Typer(
    name="entrypoint",
    help="Container entrypoint for SQLite apps: migrate safely, then exec the app server.\n\n"
    + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


class FormatChoice(StrEnum):
    AUTO = "auto"
    DRIZZLE_JOURNAL = "drizzle-journal"
    DRIZZLE_FOLDERS = "drizzle-folders"
    SQL = "sql"


class TransactionChoice(StrEnum):
    EACH = "each"
    ALL = "all"


# readable=False: the core checks access itself and reports it with its own exit code.
DbOption = Annotated[
    Path,
    typer.Option("--db", envvar="DB_PATH", readable=False, help="SQLite database file."),
]
MigrationsOption = Annotated[
    Path,
    typer.Option(
        "--migrations", envvar="MIGRATIONS_DIR", readable=False, help="Migrations folder."
    ),
]
FormatOption = Annotated[
    FormatChoice,
    typer.Option(
        "--format",
        envvar="MIGRATIONS_FORMAT",
        help="Folder layout: drizzle-kit 0.x journal, drizzle-kit 1.0 folders, or plain "
        "NNNN_name.sql files. Detected when auto.",
    ),
]
TableOption = Annotated[
    str | None,
    typer.Option(
        "--history-table",
        envvar="MIGRATIONS_TABLE",
        help="History table name (drizzle's migrationsTable). Default __drizzle_migrations, "
        "or __litedeploy_migrations for plain SQL folders.",
    ),
]


@contextmanager
def _errors_to_exit() -> Iterator[None]:
    """The one place where core errors become a message and an exit code."""
    try:
        yield
    except EntrypointError as exc:
        log.error("error: %s", exc.message)
        if exc.hint:
            log.error("hint: %s", exc.hint)
        raise typer.Exit(exc.exit_code) from None


def _options(
    db: Path, migrations: Path, fmt: FormatChoice, table: str | None, **flags: Any
) -> Options:
    chosen = None if fmt is FormatChoice.AUTO else Format(fmt.value)
    return Options(
        db_path=db, migrations_dir=migrations, format=chosen, history_table=table, **flags
    )


@app.command(
    context_settings={"allow_interspersed_args": False},
    epilog="Example: entrypoint run --db /data/app.db --migrations /app/drizzle -- node server.js",
)
def run(
    command: Annotated[
        list[str] | None,
        typer.Argument(help="The app server to exec after migrating (put it after `--`)."),
    ] = None,
    db: DbOption = Path("./data/app.db"),
    migrations: MigrationsOption = Path("./drizzle/migrations"),
    fmt: FormatOption = FormatChoice.AUTO,
    table: TableOption = None,
    allow_out_of_order: Annotated[
        bool,
        typer.Option(
            envvar="ALLOW_OUT_OF_ORDER", help="Apply migrations older than the newest applied one."
        ),
    ] = False,
    allow_changed: Annotated[
        bool,
        typer.Option(
            envvar="ALLOW_CHANGED",
            help="Start even though an applied migration's file has changed.",
        ),
    ] = False,
    allow_newer_database: Annotated[
        bool,
        typer.Option(
            envvar="ALLOW_NEWER_DATABASE",
            help="Start even though the database has migrations this image lacks.",
        ),
    ] = False,
    transaction: Annotated[
        TransactionChoice,
        typer.Option(
            envvar="MIGRATE_TRANSACTION",
            help="One transaction per migration (each) or for all pending (all).",
        ),
    ] = TransactionChoice.EACH,
    lock_timeout: Annotated[
        float,
        typer.Option(
            envvar="LOCK_TIMEOUT", min=0, help="Seconds to wait for another migrator to finish."
        ),
    ] = 60.0,
    user: Annotated[
        str | None,
        typer.Option(
            envvar="APP_USER", help="Drop from root to this user (name or uid) before exec."
        ),
    ] = None,
) -> None:
    """Apply pending migrations, then exec the app (or exit 0 when no command is given)."""
    with _errors_to_exit():
        options = _options(
            db,
            migrations,
            fmt,
            table,
            allow_out_of_order=allow_out_of_order,
            allow_changed=allow_changed,
            allow_newer_database=allow_newer_database,
            one_transaction=transaction is TransactionChoice.ALL,
            lock_timeout=lock_timeout,
        )
        account = handoff.lookup_user(user) if user else None
        if command:
            handoff.resolve_command(command)  # fail before migrating, not after
        migrate(options)
        if account is not None:
            db_files = [db.with_name(db.name + s) for s in ("", "-wal", "-shm", ".lock")]
            handoff.give_files_to(account, [db.parent, *db_files])
            handoff.drop_privileges(account)
        if command:
            handoff.exec_command(command)


@app.command("status")
def status_command(
    db: DbOption = Path("./data/app.db"),
    migrations: MigrationsOption = Path("./drizzle/migrations"),
    fmt: FormatOption = FormatChoice.AUTO,
    table: TableOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Show every migration and its state against the database. Changes nothing."""
    with _errors_to_exit():
        current = status(_options(db, migrations, fmt, table))
    if as_json:
        typer.echo(json.dumps(_status_json(db, current), indent=2))
    else:
        typer.echo(_status_table(db, current))


def _status_json(db: Path, current: Status) -> dict[str, Any]:
    return {
        "database": str(db),
        "database_exists": current.database_exists,
        "migrations_dir": str(current.source.folder),
        "format": str(current.source.format),
        "history_table": current.table.name,
        "history_kind": str(current.table.kind),
        "head": current.plan.head,
        "migrations": [
            {
                "name": item.name,
                "state": str(item.state),
                "hash": item.migration.hash if item.migration else item.row and item.row.hash,
                "recorded_hash": item.row.hash if item.row else None,
                "created_at": item.migration.created_at if item.migration else None,
                "applied_at": item.row.applied_at if item.row else None,
            }
            for item in current.plan.items
        ],
    }


def _status_table(db: Path, current: Status) -> str:
    plan = current.plan
    width = max([len(i.name) for i in plan.items] + [9])
    lines = [
        f"database:   {db}{'' if current.database_exists else ' (does not exist yet)'}",
        f"migrations: {current.source.folder} ({current.source.format})",
        f"history:    {current.table.name} ({current.table.kind})",
        "",
        f"{'MIGRATION':<{width}}  STATE",
    ]
    lines += [f"{i.name:<{width}}  {DESCRIPTIONS[i.state]}" for i in plan.items]
    return "\n".join(lines)


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("entrypoint: %(message)s"))
    root = logging.getLogger("litedeploy")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main() -> None:
    """Console-script entry point."""
    _configure_logging()
    try:
        app()
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("LITEDEPLOY_DEBUG"):
            raise
        log.error(
            "internal error: %s: %s (set LITEDEPLOY_DEBUG=1 for a traceback)",
            type(exc).__name__,
            exc,
        )
        sys.exit(70)
