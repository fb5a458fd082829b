"""The migration run: lock, plan, refuse or apply, as one straight story."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from . import durable, faults, history
from .apply import Applied, apply_migrations
from .backup import Backup, list_backups, prune, take_backup
from .checks import (
    CheckReport,
    check_database,
    explained_losses,
    foreign_key_problems,
    row_counts,
)
from .database import check_file, check_volume, connect, uri
from .drift import against_snapshot
from .errors import (
    BackupFailed,
    CheckFailed,
    CorruptDatabase,
    DatabaseBusy,
    DatabaseError,
    EntrypointError,
    MigrationFailed,
    RestoreFailed,
    SourceError,
    UsageError,
)
from .integrity import integrity_problems
from .lock import migration_lock
from .loss import Acknowledgements, Loss
from .plan import Plan, State, check_policy, make_plan, prepare_history_table
from .restore import Restored, finish_interrupted, replace_database
from .settings import JOURNAL_MODES, Options, Policy
from .sources import Format, Migration, Source, load_source

log = logging.getLogger("litedeploy.entrypoint")


@dataclass(frozen=True)
class Status:
    """The migrations, the history table and each migration's state."""

    source: Source
    table: history.HistoryTable
    plan: Plan
    database_exists: bool


@dataclass(frozen=True)
class Outcome:
    """What a run found and what it applied."""

    status: Status
    applied: list[Applied]
    backup: Backup | None = None
    report: CheckReport | None = None


def status(options: Options) -> Status:
    """Read-only: the plan as it stands, without taking the lock or creating anything."""
    source = load_source(options.migrations_dir, options.format)
    if not check_file(options.db_path):
        table = history.new_table(source.format, options.history_table)
        return Status(source, table, make_plan(source, table.kind, []), database_exists=False)
    with contextlib.closing(connect(options.db_path, read_only=True)) as conn:
        table = history.locate(conn, source.format, options.history_table)
        rows = history.read(conn, table)
    return Status(source, table, make_plan(source, table.kind, rows), database_exists=True)


def migrate(options: Options) -> Outcome:
    """Lock, plan, back up, apply, check; on any failure the database is as it was."""
    source = load_source(options.migrations_dir, options.format)
    check_file(options.db_path)
    check_volume(options.db_path.parent, required=options.require_volume)
    with migration_lock(options.db_path, options.lock_timeout):
        finish_interrupted(options.db_path)  # a killed restore is finished, never taken as new
        # Only now: the holder we waited for may have created the database meanwhile.
        existed = check_file(options.db_path)
        empty = not existed and options.db_path.exists()
        if empty:
            log.info("%s is empty (0 bytes): a new database, as SQLite sees it", options.db_path)
        try:
            return _migrate(source, options, existed)
        except sqlite3.Error as exc:  # before anything was written (later ones are caught)
            if not existed:
                remove_created(options.db_path, keep_empty_file=empty)
            raise DatabaseError(
                f"SQLite failed on {options.db_path} before migrating: {exc}; nothing was written",
                hint="check the disk (free space, I/O errors) and the file's permissions, "
                "then start again",
            ) from exc
        except BaseException:
            if not existed:
                remove_created(options.db_path, keep_empty_file=empty)
            raise


def _migrate(source: Source, options: Options, existed: bool) -> Outcome:
    with contextlib.closing(connect(options.db_path)) as conn:
        set_journal_mode(conn, options, existed)
        table = history.locate(conn, source.format, options.history_table)
        rows = history.read(conn, table)
        plan = make_plan(source, table.kind, rows)
        current = Status(source, table, plan, database_exists=existed)
        _log_plan(current, options)
        check_policy(
            plan,
            allow_out_of_order=options.allow_out_of_order,
            allow_changed=options.allow_changed,
            allow_newer_database=options.allow_newer_database,
            newer_database_action=(
                _restore_advice(options, source)
                if plan.having(State.UNKNOWN) and not options.allow_newer_database
                else None
            ),
        )
        pending = plan.to_apply(allow_out_of_order=options.allow_out_of_order)
        acks = Acknowledgements.gather(pending, options.allow, row_loss=options.allow_row_loss)
        if pending:  # before the backup: a refused run leaves nothing behind
            from .gate import gate  # with something pending only: start-up stays light

            try:
                gate(conn, options, pending, exists=existed)
            except (sqlite3.DatabaseError, BackupFailed):
                refuse_if_corrupt(conn, options)  # say "damaged" when that is the cause
                raise
        wanted = options.backup is Policy.ALWAYS or (options.backup is Policy.PENDING and pending)
        saved = (
            take_run_backup(options, plan.head, [m.name for m in pending], acks)
            if existed and wanted
            else None
        )
        faults.point("migrate.backed_up")
        if saved is None:
            remove_leftovers(options.backups)  # take_backup does it when it runs
        if not pending:
            log.info("nothing to apply; database is at %s", plan.head or "no migrations")
            if drifted := _drift(conn, source, table.name):
                _refuse_drift(options, None, drifted)
            return Outcome(current, [], saved)
        if existed and saved is None:
            refuse_if_corrupt(conn, options)
        counts_before = row_counts(conn)
        violations_before = set(foreign_key_problems(conn))  # apply.py tolerates these too

        def prepare(tx: sqlite3.Connection) -> history.HistoryTable:
            return prepare_history_table(tx, table, plan, source.format, expected_rows=len(rows))

        try:
            applied = apply_migrations(
                conn, table, pending, one_transaction=options.one_transaction, prepare=prepare
            )
        except MigrationFailed as exc:
            partial = len(history.read(conn, history.locate(conn, source.format, table.name)))
            if saved is None or partial == len(rows):
                raise
            conn.close()
            failure = MigrationFailed(
                f"{exc.message}; the migrations before it had committed", hint=exc.hint
            )
            restored = restore_before_run(options, saved, failure)
            raise MigrationFailed(
                f"{exc.message}; migrations of this run had committed, so the backup taken "
                f"before it was restored ({'; '.join(restored.summary())})",
                hint=exc.hint,
            ) from exc
        try:
            report = check_database(conn, options.check_level, counts_before=counts_before)
        except sqlite3.Error as exc:  # the migrated file cannot even be read back
            conn.close()
            restore_after_error(options, saved, exc)
        if old := [p for p in report.foreign_keys if p in violations_before]:
            log.warning(
                "%d foreign key violation(s) were there before migrating (not failing for "
                "them), e.g. %s",
                len(old),
                old[0],
            )
            report.foreign_keys = [p for p in report.foreign_keys if p not in violations_before]
        applied_now = [m for m in pending if m.name in {a.name for a in applied}]
        expected, report.losses = explained_losses(conn, applied_now, report.losses)
        for loss in expected:
            log.info("rows removed: %s", loss.message)
        report.losses = _unacknowledged(report.losses, acks)
        if report.losses and saved is not None:
            report.losses = _judged(conn, saved, applied_now, table.name, acks, report.losses)
        for line in report.problems():
            log.warning("check after migrating: %s", line)
        drifted = _drift(conn, source, table.name) if not _failed(report, options) else []
    if _failed(report, options):
        restore_after_failed_check(options, saved, report)
    if drifted:
        _refuse_drift(options, saved, drifted)
    log.info(
        "checks passed: %s_check ok, foreign keys ok, %d tables",
        options.check_level.value,
        len(report.counts),
    )
    return Outcome(current, applied, saved, report)


def _restore_advice(options: Options, source: Source) -> str | None:
    """For a database ahead of this image: the backup taken when it was at this image's
    newest migration (the newer image's run took it before migrating), and how to restore it."""
    if not source.migrations:
        return None
    ours = source.migrations[-1].name
    matching = [b for b in list_backups(options.backups) if b.manifest.head_before == ours]
    if not matching:
        return None
    backup = matching[-1]
    return (
        f"to go back to this image's schema, restore {backup.path} (taken at "
        f"{backup.manifest.created_at}, at {ours}, before the newer migrations ran; what was "
        f"written since is kept in quarantine): with the app stopped, `entrypoint restore "
        f"--db {options.db_path} {backup.path}`, or on the host `deploy restore "
        f"{backup.path.name}`; or deploy the newer image, or start this one anyway"
    )


def _unacknowledged(losses: list[Loss], acks: Acknowledgements) -> list[Loss]:
    """The losses nobody acknowledged; the acknowledged ones are logged."""
    kept = []
    for loss in acks.apply(losses):
        if loss.acknowledged_by:
            log.info("rows removed: %s", loss.message)
        else:
            kept.append(loss)
    return kept


def _judged(
    conn: sqlite3.Connection,
    saved: Backup,
    applied: list[Migration],
    history_table: str,
    acks: Acknowledgements,
    losses: list[Loss],
) -> list[Loss]:
    """Row counts fell where no statement says so: ask the judge, with the backup as before.

    Rows whose values all moved elsewhere (the rehearsal's own rule) are not lost; what
    the judge still finds lost, and nobody acknowledged, stays.
    """
    from .judge import BEFORE, judge  # only after a check found rows missing

    counted = {loss.object.lower() for loss in losses}
    conn.execute(f"ATTACH DATABASE ? AS {BEFORE}", (uri(saved.path, "ro"),))
    try:
        found = judge(conn, applied, [history_table])
    finally:
        conn.execute(f"DETACH DATABASE {BEFORE}")
    return [
        loss
        for loss in acks.apply(found.losses)
        if loss.kind == "rows" and loss.blocks and loss.object.lower() in counted
    ]


def _drift(conn: sqlite3.Connection, source: Source, history_table: str) -> list[str]:
    """Warn about each difference from drizzle-kit's latest snapshot; return them."""
    try:
        drifted, note = against_snapshot(conn, source, ignore=[history_table])
    except SourceError as exc:  # a damaged snapshot is no reason to stop the app
        log.warning("drift not compared: %s", exc.message)
        return []
    if note and source.format is not Format.SQL:
        log.info("drift: %s", note)
    for line in drifted or []:
        log.warning("warning: drift from the latest drizzle-kit snapshot: %s", line)
    return drifted or []


def _refuse_drift(options: Options, saved: Backup | None, drifted: list[str]) -> None:
    """Only with --strict: drift refuses the start, restoring what this run migrated."""
    if not options.strict_drift:
        log.warning(
            "warning: the schema differs from drizzle-kit's latest snapshot in %d place(s); "
            "--strict makes this refuse the start",
            len(drifted),
        )
        return
    restored = ""
    if saved is not None and options.db_path.exists():
        failure = CheckFailed(
            f"the schema differs from drizzle-kit's latest snapshot ({drifted[0]})"
        )
        result = restore_before_run(options, saved, failure)
        for line in result.summary():
            log.info("%s", line)
        restored = f"; restored the backup taken before migrating ({saved.path.name})"
    raise CheckFailed(
        f"the schema differs from drizzle-kit's latest snapshot ({len(drifted)} difference(s), "
        f"first: {drifted[0]}){restored}",
        hint="regenerate the migrations with drizzle-kit so the snapshot matches the database, "
        "or undo the change made by hand; `entrypoint check --migrations DIR` lists them all",
    )


def _failed(report: CheckReport, options: Options) -> bool:
    if report.integrity or report.foreign_keys:
        return True
    return bool(report.losses) and not options.allow_row_loss


def restore_after_error(options: Options, saved: Backup | None, exc: sqlite3.Error) -> NoReturn:
    """SQLite failed after the migrations committed: back to the backup, or say there is none."""
    if saved is None:
        raise CheckFailed(
            f"SQLite failed checking the migrated database ({exc}) and there is no backup to "
            f"restore (BACKUP={options.backup.value}); the database is left as migrated",
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
            f"(BACKUP={options.backup.value}); the database is left as migrated",
            hint="restore it yourself (`entrypoint restore --latest`) or fix the migration",
        )
    failure = CheckFailed(f"check after migrating failed ({problems})")
    restored = restore_before_run(options, saved, failure)
    for line in restored.summary():
        log.info("%s", line)
    hint = "fix the migration, then deploy again"
    if report.losses and not (report.integrity or report.foreign_keys):
        hint = (
            "if losing those rows is intended, allow it with --allow-row-loss / ALLOW_ROW_LOSS; "
            "otherwise fix the migration"
        )
    raise CheckFailed(
        f"check after migrating failed ({problems}); restored the backup taken before "
        f"migrating ({saved.path.name})",
        hint=hint,
    )


def restore_before_run(options: Options, saved: Backup, failure: EntrypointError) -> Restored:
    """Put back the backup taken before this run, after `failure`.

    When restore refuses (another process has the database open, the backup is damaged),
    the failure is still what is reported, first, with why the backup stayed where it is.
    """
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


def take_run_backup(
    options: Options,
    head_before: str | None,
    pending: list[str],
    acks: Acknowledgements | None = None,
) -> Backup:
    """The backup before changing the database, pruned to the newest BACKUP_KEEP."""
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
            hint="set --journal-mode / JOURNAL_MODE to one of them, or leave it unset",
        )
    got = str(conn.execute(f"PRAGMA journal_mode = {wanted.lower()}").fetchone()[0])
    if got.lower() != wanted.lower():
        log.warning("journal mode %s requested, SQLite kept %s", wanted, got)
    elif not existed or options.journal_mode:
        log.info("journal mode %s", got)


def _log_plan(current: Status, options: Options) -> None:
    plan = current.plan
    counts = {state: len(plan.having(state)) for state in State}
    log.info(
        "database %s%s; migrations %s (%s, %d); history %s (%s)",
        options.db_path,
        "" if current.database_exists else " (new)",
        current.source.folder,
        current.source.format,
        len(current.source.migrations),
        current.table.name,
        current.table.kind,
    )
    log.info(
        "%d applied, %d pending, %d out of order, %d changed, %d unknown to this image",
        counts[State.APPLIED],
        counts[State.PENDING],
        counts[State.OUT_OF_ORDER],
        counts[State.CHANGED],
        counts[State.UNKNOWN],
    )


def remove_created(db_path: Path, *, keep_empty_file: bool = False) -> None:
    """Remove a database this run created: before the run there was none.

    With `keep_empty_file` (the run started from an empty file, maybe a bind-mounted one)
    the file is emptied again instead of removed.
    """
    log.info("removing %s, which this run created, so nothing is left behind", db_path)
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            if keep_empty_file and not suffix:
                os.truncate(db_path, 0)
            else:
                db_path.with_name(db_path.name + suffix).unlink()
