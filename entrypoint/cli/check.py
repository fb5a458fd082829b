"""`entrypoint check`: integrity, foreign keys, row counts and (when asked) drift, on demand."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..base.contract import CLI_DEFAULT_DB
from ..base.errors import CheckFailed, DatabaseError, UsageError
from ..engine.plan import newest_applied, read_plan
from ..engine.snapshots import Basis, basis
from ..engine.sources import load_source
from ..safety.checks import check_database
from ..safety.drift import against_snapshot
from ..safetynet.database import check_file, connect, missing
from ..safetynet.integrity import Level
from .options import CheckOption, DbOption, JsonOption, TableOption
from .program import app, errors_to_exit, log

# No environment variable on purpose: `check` compares with a snapshot only when asked.
DriftMigrationsOption = Annotated[
    Path | None,
    typer.Option(
        "--migrations",
        readable=False,
        help="drizzle-kit migrations folder: also compare the schema with the snapshot of the "
        "newest applied migration that has one (drift).",
    ),
]
StrictOption = Annotated[
    bool,
    typer.Option("--strict", help="Drift fails the check (exit 11) instead of warning."),
]


@app.command()
def check(
    db: DbOption = CLI_DEFAULT_DB,
    level: CheckOption = Level.QUICK,
    migrations: DriftMigrationsOption = None,
    strict: StrictOption = False,
    table: TableOption = None,
    as_json: JsonOption = False,
) -> None:
    """Check the database: quick_check or integrity_check, foreign keys, rows per table.

    With --migrations, also compare its schema with the snapshot drizzle-kit wrote with the
    newest migration the database has (drift), and say which snapshot that is.
    """
    with errors_to_exit():
        if strict and migrations is None:
            raise UsageError("--strict needs --migrations (the folder to compare with)")
        if not check_file(db):
            raise DatabaseError(f"{db} {missing(db)}")
        drift: list[str] | None = None
        note: str | None = None
        chosen = Basis()
        source = load_source(migrations) if migrations is not None else None
        with contextlib.closing(connect(db, read_only=True)) as conn:
            report = check_database(conn, level)
            if source is not None:
                if report.integrity:
                    note = "not compared: the database failed its integrity check"
                else:
                    planned = read_plan(conn, source, table)
                    upto = newest_applied(source, planned.plan)
                    chosen = basis(source, upto)
                    drift, note = against_snapshot(
                        conn, source, upto=upto, ignore=[planned.table.name]
                    )
        if as_json:
            data: dict[str, Any] = {
                "ok": report.ok and not (strict and drift),
                "integrity": report.integrity,
                "foreign_keys": report.foreign_keys,
                "row_counts": report.counts,
            }
            if source is not None:
                data["drift"] = drift
                if note:
                    data["drift_note"] = note
                if chosen.path is not None:
                    data["drift_snapshot"] = str(chosen.path)
                    data["drift_snapshot_migration"] = chosen.migration
                    data["drift_snapshot_predates"] = chosen.after
            typer.echo(json.dumps(data, indent=2))
        else:
            typer.echo(f"{level.value}_check: {'ok' if not report.integrity else 'FAILED'}")
            typer.echo(f"foreign keys: {'ok' if not report.foreign_keys else 'FAILED'}")
            for table, count in report.counts.items():
                typer.echo(f"  {table}: {count} rows")
            if note:
                typer.echo(f"drift: {note}")
            elif drift is not None:
                assert source is not None
                typer.echo(f"drift: compared with {chosen.describe(source.folder)}")
                if chosen.after:
                    typer.echo(
                        f"drift: which predates {', '.join(chosen.after)} (applied, written "
                        "without a snapshot): differences may be theirs, and do not fail --strict"
                    )
                typer.echo("drift: none" if not drift else f"drift: {len(drift)} difference(s)")
                for line in drift:
                    typer.echo(f"drift: {line}")
        counted = drift if drift and not chosen.after else []
        if counted and not strict:
            log.warning(
                "warning: the schema differs from drizzle-kit's snapshot of %s "
                "(%d difference(s)); --strict makes this fail",
                chosen.migration,
                len(counted),
            )
        problems = report.problems()
        if strict and counted:
            problems += [f"drift: {line}" for line in counted]
        if problems:
            raise CheckFailed(
                f"{db} failed its checks: {'; '.join(problems[:5])}",
                hint="restore a backup (`entrypoint restore --latest`) or repair the data"
                if not report.ok
                else "migrate the database with this folder, or regenerate the migrations "
                "with drizzle-kit so the snapshot matches what was changed by hand",
            )
