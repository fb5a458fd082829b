"""`entrypoint backup`, `backups` and `restore`: restore points the operator can trust."""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from ..base.contract import CLI_DEFAULT_DB
from ..base.errors import DatabaseError
from ..engine.lock import migration_lock
from ..safetynet.backup import Method, default_dir, list_backups, prune, take_backup
from ..safetynet.database import check_file, missing
from ..safetynet.integrity import Level
from ..safetynet.restore import find_backup, restore_backup
from .options import (
    BackupDirOption,
    BackupKeepOption,
    BackupMethodOption,
    CheckOption,
    DbOption,
    DeployIdOption,
    JsonOption,
    lock_timeout_option,
    sqlite_path,
)
from .program import app, errors_to_exit

log = logging.getLogger("litedeploy.entrypoint")

LockTimeoutOption = Annotated[
    float, lock_timeout_option("Seconds to wait for another migrator (0 to 86400).")
]


@app.command()
def backup(
    db: DbOption = CLI_DEFAULT_DB,
    backup_dir: BackupDirOption = None,
    backup_keep: BackupKeepOption = 10,
    backup_method: BackupMethodOption = Method.AUTO,
    check: CheckOption = Level.QUICK,
    deploy_id: DeployIdOption = None,
    lock_timeout: LockTimeoutOption = 60.0,
    as_json: JsonOption = False,
) -> None:
    """Take a verified backup now (fsynced, checked, with a JSON manifest beside it)."""
    folder = backup_dir or default_dir(db)
    with errors_to_exit():
        if not check_file(db):
            raise DatabaseError(f"{db} {missing(db)}; there is nothing to back up")
        with migration_lock(db, lock_timeout):
            made = take_backup(
                db, folder, method=backup_method, level=check, deploy_id=deploy_id or None
            )
            prune(folder, backup_keep)
    if as_json:
        typer.echo(json.dumps({"path": str(made.path), **asdict(made.manifest)}, indent=2))
    else:
        m = made.manifest
        typer.echo(
            f"{made.path}\n  {m.size} bytes, sha256 {m.sha256[:16]}…, {m.check}, "
            f"{m.method} in {m.duration_ms} ms"
        )


@app.command("backups")
def list_command(
    db: DbOption = CLI_DEFAULT_DB,
    backup_dir: BackupDirOption = None,
    as_json: JsonOption = False,
) -> None:
    """List the backups, oldest first, with what each was taken before."""
    found = list_backups(backup_dir or default_dir(db))
    if as_json:
        rows = [{"path": str(b.path), **asdict(b.manifest)} for b in found]
        typer.echo(json.dumps(rows, indent=2))
        return
    if not found:
        typer.echo(f"no backups in {backup_dir or default_dir(db)}")
        return
    header = ("BACKUP", "CREATED", "SIZE", "HEAD BEFORE", "PENDING", "DEPLOY ID")
    table = [header] + [
        (
            b.path.name,
            b.manifest.created_at,
            str(b.manifest.size),
            b.manifest.head_before or "-",
            str(len(b.manifest.pending)),
            b.manifest.deploy_id or "-",
        )
        for b in found
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        typer.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


@app.command()
def restore(
    backup_file: Annotated[
        Path | None,
        typer.Argument(
            parser=sqlite_path,
            metavar="FILE",
            help="The backup file to restore.",
            show_default=False,
        ),
    ] = None,
    latest: Annotated[bool, typer.Option("--latest", help="Restore the newest backup.")] = False,
    deploy_id: Annotated[
        str | None,
        typer.Option("--deploy-id", help="Restore the backup taken for this deploy id."),
    ] = None,
    db: DbOption = CLI_DEFAULT_DB,
    backup_dir: BackupDirOption = None,
    lock_timeout: Annotated[
        float,
        lock_timeout_option(
            "Seconds to wait for a running migrator before refusing (0 to 86400).", envvar=None
        ),
    ] = 0.0,
) -> None:
    """Put a backup back, crash-safe: a verified copy beside the database, then one rename.

    The backup is copied next to the database and checked (sha256, quick_check) before any
    live file is touched; the live files are linked into quarantine, then the copy is renamed
    over the database. An intent file beside it lets the next start finish a restore that
    was killed half-way, so the path always holds the old database or the verified backup.
    Refuses while another process has the database open or holds its lock. The replaced
    files are kept in <database folder>/quarantine/<time>/ and never deleted automatically.
    """
    with errors_to_exit():
        chosen = find_backup(
            backup_dir or default_dir(db), path=backup_file, latest=latest, deploy_id=deploy_id
        )
        done = restore_backup(db, chosen, lock_timeout=lock_timeout)
    for line in done.summary():
        typer.echo(line)
