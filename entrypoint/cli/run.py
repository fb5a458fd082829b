"""`entrypoint run`: back up, migrate, check, then exec the app."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..base.contract import BACKUP_ENV, CLI_DEFAULT_DB, MODE_ENV, REHEARSAL_ENV
from ..safetynet.backup import Method
from ..safetynet.integrity import Level
from ..settings import Findings, Policy
from .launch import launch, run_request
from .options import (
    AllowOption,
    BackupDirOption,
    BackupKeepOption,
    BackupMethodOption,
    CheckOption,
    DbOption,
    DeployIdOption,
    FormatOption,
    MigrationsOption,
    RehearsalDirOption,
    TableOption,
    known_journal_mode,
    lock_timeout_option,
)
from .program import app, errors_to_exit
from .values import DEFAULT_MIGRATIONS, FormatChoice, Mode, TransactionChoice


@app.command(
    context_settings={"allow_interspersed_args": False},
    epilog="Example: entrypoint run --db /data/app.db --migrations /app/drizzle -- node server.js",
)
def run(
    command: Annotated[
        list[str] | None,
        typer.Argument(help="The app server to exec after migrating (put it after `--`)."),
    ] = None,
    db: DbOption = CLI_DEFAULT_DB,
    migrations: MigrationsOption = DEFAULT_MIGRATIONS,
    fmt: FormatOption = FormatChoice.AUTO,
    table: TableOption = None,
    allow_out_of_order: Annotated[
        bool,
        typer.Option(
            envvar="LITEDEPLOY_ALLOW_OUT_OF_ORDER",
            help="Apply migrations older than the newest applied one.",
        ),
    ] = False,
    allow_changed: Annotated[
        bool,
        typer.Option(
            envvar="LITEDEPLOY_ALLOW_CHANGED",
            help="Start even though an applied migration's file has changed.",
        ),
    ] = False,
    allow_newer_database: Annotated[
        bool,
        typer.Option(
            envvar="LITEDEPLOY_ALLOW_NEWER_DATABASE",
            help="Start even though the database has migrations this image lacks.",
        ),
    ] = False,
    transaction: Annotated[
        TransactionChoice,
        typer.Option(
            envvar="LITEDEPLOY_MIGRATE_TRANSACTION",
            help="One transaction per migration (each) or for all pending (all).",
        ),
    ] = TransactionChoice.EACH,
    lock_timeout: Annotated[
        float, lock_timeout_option("Seconds to wait for another migrator to finish (0 to 86400).")
    ] = 60.0,
    user: Annotated[
        str | None,
        typer.Option(
            envvar="LITEDEPLOY_APP_USER",
            help="Drop from root to this user (name or uid) before exec.",
        ),
    ] = None,
    backup: Annotated[
        Policy,
        typer.Option(
            envvar=BACKUP_ENV,
            help="Back up before migrating: always, only when something is pending, or never.",
        ),
    ] = Policy.PENDING,
    backup_dir: BackupDirOption = None,
    backup_keep: BackupKeepOption = 10,
    backup_method: BackupMethodOption = Method.AUTO,
    check: CheckOption = Level.QUICK,
    journal_mode: Annotated[
        str | None,
        typer.Option(
            envvar="LITEDEPLOY_JOURNAL_MODE",
            parser=known_journal_mode,
            metavar="MODE",
            help="Journal mode to set: wal, delete, truncate, persist or memory (off is "
            "refused: nothing could be rolled back). Default: wal for a new database; an "
            "existing one keeps its mode.",
        ),
    ] = None,
    require_volume: Annotated[
        bool,
        typer.Option(
            envvar="LITEDEPLOY_REQUIRE_VOLUME",
            help="Refuse to start when the database folder is not a mounted volume.",
        ),
    ] = False,
    allow_row_loss: Annotated[
        bool,
        typer.Option(
            envvar="LITEDEPLOY_ALLOW_ROW_LOSS",
            help="Acknowledge rows the migrations remove (and the values that go with them), in "
            "every table, for this run. Never covers a dropped column: name those with --allow.",
        ),
    ] = False,
    deploy_id: DeployIdOption = None,
    allow: AllowOption = None,
    findings: Annotated[
        Findings,
        typer.Option(
            envvar="LITEDEPLOY_FINDINGS",
            help="block: what vanishes on the rehearsal's copy unacknowledged refuses the run (the "
            "default, in every environment). warn: print it and go on (staging only; refused "
            "when --env is production). A migration that fails on the copy always refuses.",
        ),
    ] = Findings.BLOCK,
    rehearse: Annotated[
        bool,
        typer.Option(
            "--rehearse/--no-rehearse",
            envvar="LITEDEPLOY_REHEARSE",
            help="Apply the pending migrations to a copy first and look for every row and value "
            "afterwards: the judge of what is lost (costs two copies of the database in "
            "--rehearsal-dir). Without it the findings, read from the SQL, decide alone.",
        ),
    ] = True,
    rehearsal_dir: RehearsalDirOption = None,
    env: Annotated[
        str | None,
        typer.Option("--env", envvar="APP_ENV", help="The environment (production, staging, ...)."),
    ] = None,
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            envvar="LITEDEPLOY_STRICT_DRIFT",
            help="Drift from the snapshot of the newest applied migration refuses the start "
            "(exit 11, the pre-migration backup restored) instead of a warning.",
        ),
    ] = False,
    mode: Annotated[
        Mode,
        typer.Option(
            envvar=MODE_ENV,
            help="migrate: apply the migration files (the default). push: make the schema the "
            "declared one directly (staging only; refused in production).",
        ),
    ] = Mode.MIGRATE,
    schema: Annotated[
        Path | None,
        typer.Option(
            envvar="LITEDEPLOY_PUSH_SCHEMA",
            readable=False,
            help="Push mode: the declared schema, a drizzle-kit snapshot (*.json) or a "
            "schema.sql. Default: the newest snapshot in --migrations.",
        ),
    ] = None,
    rename: Annotated[
        list[str] | None,
        typer.Option(
            envvar="LITEDEPLOY_PUSH_RENAMES",
            help="Push mode: a rename, never guessed: TABLE.OLD=NEW (a column) or OLD=NEW (a "
            "table). Repeat for more (the env var takes them space-separated).",
        ),
    ] = None,
    accept_data_loss: Annotated[
        bool,
        typer.Option(
            envvar="LITEDEPLOY_ACCEPT_DATA_LOSS",
            help="Push mode: apply changes that lose data (drops, values that do not convert); "
            "the counts are still printed.",
        ),
    ] = False,
    allow_push_in_production: Annotated[
        bool,
        typer.Option(
            envvar="LITEDEPLOY_ALLOW_PUSH_IN_PRODUCTION",
            help="Push mode: run even when --env / APP_ENV is production.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Push mode: print the plan (changes, SQL, data at risk) and stop; nothing is "
            "written and the app is not started. Exits as the push would: 0, or 15 with its "
            "refusal.",
        ),
    ] = False,
    rehearsal: Annotated[
        bool,
        typer.Option(
            envvar=REHEARSAL_ENV,
            help="Stop after migrating and checking instead of exec'ing the app (the host-side "
            "deploy rehearses a new image on a snapshot this way).",
        ),
    ] = False,
) -> None:
    """Apply pending migrations, then exec the app (or exit 0 when no command is given).

    Before the live database is touched: the findings of `plan` (what each statement does,
    read against the schema and rows it meets) and a rehearsal on a copy, the judge: every
    row and non-NULL value is looked for afterwards, in its row's new home or moved to
    another table keyed by the same id. Exit 15 when something vanishes that nobody
    acknowledged (-- litedeploy: allow RULE OBJECT in the migration, --allow RULE=OBJECT),
    exit 6 when a migration fails on the copy. Then a backup, the migrations, the checks and
    drift from drizzle-kit's snapshot. With --mode push (staging), the declared schema is
    synced directly instead.
    """
    with errors_to_exit():
        launch(
            run_request(
                command=command,
                db=db,
                migrations=migrations,
                fmt=fmt,
                table=table,
                allow_out_of_order=allow_out_of_order,
                allow_changed=allow_changed,
                allow_newer_database=allow_newer_database,
                transaction=transaction,
                lock_timeout=lock_timeout,
                user=user,
                backup=backup,
                backup_dir=backup_dir,
                backup_keep=backup_keep,
                backup_method=backup_method,
                check=check,
                journal_mode=journal_mode,
                require_volume=require_volume,
                allow_row_loss=allow_row_loss,
                deploy_id=deploy_id,
                allow=allow,
                findings=findings,
                # The host-side deploy's rehearsal runs on a snapshot, and still copies it:
                # the judge needs the rows before and after; the findings alone would block
                # moves.
                rehearse=rehearse,
                rehearsal_dir=rehearsal_dir,
                env=env,
                strict=strict,
                mode=mode,
                schema=schema,
                rename=rename,
                accept_data_loss=accept_data_loss,
                allow_push_in_production=allow_push_in_production,
                dry_run=dry_run,
                rehearsal=rehearsal,
            )
        )
