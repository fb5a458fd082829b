"""`entrypoint status`: every migration and its state. Changes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ..base.contract import CLI_DEFAULT_DB
from ..engine.plan import DESCRIPTIONS
from ..modes.migrate import Status, status
from ..safetynet.database import missing
from .options import (
    DEFAULT_MIGRATIONS,
    DbOption,
    FormatChoice,
    FormatOption,
    JsonOption,
    MigrationsOption,
    TableOption,
    make_options,
)
from .program import app, errors_to_exit


@app.command("status")
def status_command(
    db: DbOption = CLI_DEFAULT_DB,
    migrations: MigrationsOption = DEFAULT_MIGRATIONS,
    fmt: FormatOption = FormatChoice.AUTO,
    table: TableOption = None,
    as_json: JsonOption = False,
) -> None:
    """Show every migration and its state against the database. Changes nothing."""
    with errors_to_exit():
        current = status(make_options(db, migrations, fmt, table))
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
        f"database:   {db}{'' if current.database_exists else f' ({missing(db)})'}",
        f"migrations: {current.source.folder} ({current.source.format})",
        f"history:    {current.table.name} ({current.table.kind})",
        "",
        f"{'MIGRATION':<{width}}  STATE",
    ]
    lines += [f"{i.name:<{width}}  {DESCRIPTIONS[i.state]}" for i in plan.items]
    return "\n".join(lines)
