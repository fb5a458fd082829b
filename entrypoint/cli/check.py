"""`entrypoint check`: integrity, foreign keys and row counts, on demand."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import typer

from ..checks import Level, check_database
from ..database import check_file, connect
from ..errors import CheckFailed, DatabaseError
from .app import app, errors_to_exit
from .options import CheckOption, DbOption, JsonOption


@app.command()
def check(
    db: DbOption = Path("./data/app.db"),
    level: CheckOption = Level.QUICK,
    as_json: JsonOption = False,
) -> None:
    """Check the database: quick_check or integrity_check, foreign keys, rows per table."""
    with errors_to_exit():
        if not check_file(db):
            raise DatabaseError(f"{db} does not exist")
        with contextlib.closing(connect(db, read_only=True)) as conn:
            report = check_database(conn, level)
        if as_json:
            typer.echo(
                json.dumps(
                    {
                        "ok": report.ok,
                        "integrity": report.integrity,
                        "foreign_keys": report.foreign_keys,
                        "row_counts": report.counts,
                    },
                    indent=2,
                )
            )
        else:
            typer.echo(f"{level.value}_check: {'ok' if not report.integrity else 'FAILED'}")
            typer.echo(f"foreign keys: {'ok' if not report.foreign_keys else 'FAILED'}")
            for table, count in report.counts.items():
                typer.echo(f"  {table}: {count} rows")
        if not report.ok:
            raise CheckFailed(
                f"{db} failed its checks: {'; '.join(report.problems()[:5])}",
                hint="restore a backup (`entrypoint restore --latest`) or repair the data",
            )
