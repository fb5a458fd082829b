"""One session on the live database, shared by both modes (migrate and push).

What each run does around its own work: the file and volume checks, the migration lock, a
restore killed mid-way finished first, the journal mode of a new database, the backup before
changing anything (and the leftovers of a killed one), the corruption check when there is no
backup, putting the backup back when the run fails after writing, and removing a database the
run created when it fails.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from ..base import durable
from ..base.contract import RESTORE_INTENT_SUFFIX, SIDE_FILES, side_file
from ..base.errors import (
    CheckFailed,
    CorruptDatabase,
    DatabaseBusy,
    EntrypointError,
    RestoreFailed,
    UsageError,
)
from ..base.record import Record
from ..engine.lock import migration_lock
from ..safetynet.database import check_file, check_volume, connect
from ..safetynet.integrity import integrity_problems
from ..settings import JOURNAL_MODES, Options

if TYPE_CHECKING:  # the backup and the checks are loaded when a run takes or reads one
    from ..safety.checks import CheckReport
    from ..safety.loss import Acknowledgements
    from ..safetynet.backup import Backup
    from ..safetynet.restore import Restored

log = logging.getLogger("litedeploy.entrypoint")


@dataclass(eq=False, repr=False)
class Session(Record):
    """The live database, locked for this run."""

    options: Options
    existed: bool  # it held a database before this run (a 0-byte file does not)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        """A read-write connection, a new database put in WAL mode (or as told)."""
        with contextlib.closing(connect(self.options.db_path)) as conn:
            set_journal_mode(conn, self.options, self.existed)
            yield conn


@contextlib.contextmanager
def session(options: Options) -> Iterator[Session]:
    """Check the file and its volume, take the lock, finish a killed restore; on any failure
    a database this run created is removed (a 0-byte file it started from is emptied again)."""
    check_file(options.db_path)
    check_volume(options.db_path.parent, required=options.require_volume)
    with migration_lock(options.db_path, options.lock_timeout):
        _finish_interrupted(options.db_path)  # a killed restore is finished, never taken as new
        # Only now: the holder we waited for may have created the database meanwhile.
        existed = check_file(options.db_path)
        empty = not existed and options.db_path.exists()  # a 0-byte file, maybe bind-mounted
        if empty:
            log.info("%s is empty (0 bytes): a new database, as SQLite sees it", options.db_path)
        try:
            yield Session(options, existed)
        except BaseException:
            if not existed:
                remove_created(options.db_path, keep_empty_file=empty)
            raise


def _finish_interrupted(db_path: Path) -> None:
    """restore.finish_interrupted, loaded only when a restore's intent file is there."""
    try:
        os.lstat(side_file(db_path, RESTORE_INTENT_SUFFIX))
    except FileNotFoundError:
        return  # no restore was interrupted (the common case): restore.py stays unloaded
    except OSError:
        pass  # cannot tell: finish_interrupted says why
    from ..safetynet.restore import finish_interrupted

    finish_interrupted(db_path)


def take_run_backup(
    options: Options,
    head_before: str | None,
    pending: list[str],
    acks: Acknowledgements | None = None,
) -> Backup:
    """The backup before changing the database, pruned to the newest LITEDEPLOY_BACKUP_KEEP."""
    from ..safetynet.backup import prune, take_backup  # only when one is taken

    saved = take_backup(
        options.db_path,
        options.backups,
        method=options.backup_method,
        level=options.check_level,
        head_before=head_before,
        pending=pending,
        deploy_id=options.deploy_id,
        acknowledged=acks.from_operator if acks is not None else [],
    )
    log.info(
        "backup %s (%s, %d bytes, %s) in %d ms",
        saved.path,
        saved.manifest.method,
        saved.manifest.size,
        saved.manifest.check,
        saved.manifest.duration_ms,
    )
    prune(options.backups, options.backup_keep)
    return saved


def remove_leftovers(folder: Path) -> None:
    """Remove what a backup killed mid-way left, even on a start-up that takes no backup."""
    if not folder.is_dir():
        return
    with contextlib.suppress(OSError):  # never a reason to stop the start-up
        for leftover in durable.remove_leftovers(folder):
            log.info("removed %s, left by an interrupted backup", leftover)


def refuse_if_corrupt(conn: sqlite3.Connection, options: Options) -> None:
    """Without a backup (whose check covers it), check the source before migrating it."""
    problems = integrity_problems(conn, options.check_level)
    if problems:
        raise CorruptDatabase(
            f"{options.db_path} is damaged ({options.check_level.value}_check: {problems[0]}); "
            "refusing to migrate it",
            hint="restore it from a backup (`entrypoint restore --latest`)",
        )


def set_journal_mode(conn: sqlite3.Connection, options: Options, existed: bool) -> None:
    """A new database starts in WAL mode (or as told); an existing one keeps its mode."""
    wanted = options.journal_mode or (None if existed else "wal")
    if wanted is None:
        return
    if wanted.lower() not in JOURNAL_MODES:  # it goes into SQL text: only a known word
        raise UsageError(
            f"journal mode {wanted!r} is not one of {', '.join(JOURNAL_MODES)}",
            hint="set --journal-mode / LITEDEPLOY_JOURNAL_MODE to one of them, or leave it unset",
        )
    got = str(conn.execute(f"PRAGMA journal_mode = {wanted.lower()}").fetchone()[0])
    if got.lower() != wanted.lower():
        log.warning("journal mode %s requested, SQLite kept %s", wanted, got)
    elif not existed or options.journal_mode:
        log.info("journal mode %s", got)


def restore_before_run(options: Options, saved: Backup, failure: EntrypointError) -> Restored:
    """Put back the backup taken before this run, after `failure`.

    When restore refuses (another process has the database open, the backup is damaged),
    the failure is still what is reported, first, with why the backup stayed where it is.
    """
    from ..safetynet.restore import replace_database  # only after a failure

    try:
        return replace_database(options.db_path, saved.path, saved.manifest.sha256)
    except (DatabaseBusy, RestoreFailed) as refused:
        then = (refused.hint or "").rstrip(".")
        raise type(failure)(
            f"{failure.message}; the backup taken before this run was not restored: "
            f"{refused.message}",
            hint=f"the database stays as migrated so far, each migration with its history row. "
            f"{then[:1].upper()}{then[1:]}, then `entrypoint restore "
            f"{saved.path}` to go back to before this run; or fix the failure and deploy again "
            "to carry on from there",
        ) from refused


def restore_after_error(options: Options, saved: Backup | None, exc: sqlite3.Error) -> NoReturn:
    """SQLite failed after the migrations committed: back to the backup, or say there is none."""
    if saved is None:
        raise CheckFailed(
            f"SQLite failed checking the migrated database ({exc}) and there is no backup to "
            f"restore (LITEDEPLOY_BACKUP={options.backup.value}); the database is left as migrated",
            hint="check the disk, then `entrypoint check`; restore it yourself if it is damaged",
        ) from exc
    failure = CheckFailed(f"SQLite failed checking the migrated database ({exc})")
    restored = restore_before_run(options, saved, failure)
    for line in restored.summary():
        log.info("%s", line)
    raise CheckFailed(
        f"SQLite failed checking the migrated database ({exc}); restored the backup taken "
        f"before migrating ({saved.path.name})",
        hint="check the disk (free space, I/O errors), then start again",
    ) from exc


def restore_after_failed_check(options: Options, saved: Backup | None, report: CheckReport) -> None:
    problems = "; ".join(report.problems()[:5])
    if saved is None:
        raise CheckFailed(
            f"check after migrating failed ({problems}) and there is no backup to restore "
            f"(LITEDEPLOY_BACKUP={options.backup.value}); the database is left as migrated",
            hint="restore it yourself (`entrypoint restore --latest`) or fix the migration",
        )
    failure = CheckFailed(f"check after migrating failed ({problems})")
    restored = restore_before_run(options, saved, failure)
    for line in restored.summary():
        log.info("%s", line)
    hint = "fix the migration, then deploy again"
    if report.losses and not (report.integrity or report.foreign_keys):
        hint = (
            "if losing those rows is intended, allow it with --allow-row-loss / "
            "LITEDEPLOY_ALLOW_ROW_LOSS; otherwise fix the migration"
        )
    raise CheckFailed(
        f"check after migrating failed ({problems}); restored the backup taken before "
        f"migrating ({saved.path.name})",
        hint=hint,
    )


def remove_created(db_path: Path, *, keep_empty_file: bool = False) -> None:
    """Remove a database this run created: before the run there was none.

    With `keep_empty_file` (the run started from an empty file, maybe a bind-mounted one)
    the file is emptied again instead of removed.
    """
    log.info("removing %s, which this run created, so nothing is left behind", db_path)
    for suffix in ("", *SIDE_FILES):
        with contextlib.suppress(FileNotFoundError):
            if keep_empty_file and not suffix:
                os.truncate(db_path, 0)
            else:
                db_path.with_name(db_path.name + suffix).unlink()
