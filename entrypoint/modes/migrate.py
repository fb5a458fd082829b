"""The migration run: lock, plan, refuse or apply, as one straight story."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..base import faults
from ..base.errors import BackupFailed, CheckFailed, DatabaseError, MigrationFailed, SourceError
from ..base.record import Record
from ..engine import history
from ..engine.plan import (
    Plan,
    State,
    check_policy,
    make_plan,
    newest_applied,
    prepare_history_table,
    read_plan,
)
from ..engine.snapshots import basis
from ..engine.sources import Format, Migration, Source, load_source
from ..safety.drift_memo import memo_path, recalled_drift
from ..safetynet.database import check_file, connect, uri
from ..settings import Options, Policy
from .session import (
    Session,
    refuse_if_corrupt,
    remove_leftovers,
    restore_after_error,
    restore_after_failed_check,
    restore_before_run,
    session,
    take_run_backup,
)

if TYPE_CHECKING:  # loaded where a run applies, checks or backs up (not on a no-op start)
    from ..engine.apply import Applied
    from ..safety.checks import CheckReport
    from ..safety.loss import Acknowledgements, Loss
    from ..safetynet.backup import Backup

log = logging.getLogger("litedeploy.entrypoint")


@dataclass(eq=False, repr=False)
class Status(Record):
    """The migrations, the history table and each migration's state."""

    source: Source
    table: history.HistoryTable
    plan: Plan
    database_exists: bool


@dataclass(eq=False, repr=False)
class Outcome(Record):
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
        planned = read_plan(conn, source, options.history_table)
    return Status(source, planned.table, planned.plan, database_exists=True)


def migrate(options: Options) -> Outcome:
    """Lock, plan, back up, apply, check; on any failure the database is as it was."""
    source = load_source(options.migrations_dir, options.format)
    with session(options) as run:
        try:
            return _migrate(source, run)
        except sqlite3.Error as exc:  # before anything was written (later ones are caught)
            raise DatabaseError(
                f"SQLite failed on {options.db_path} before migrating: {exc}; nothing was written",
                hint="check the disk (free space, I/O errors) and the file's permissions, "
                "then start again",
            ) from exc


def _migrate(source: Source, run: Session) -> Outcome:
    options, existed = run.options, run.existed
    with run.connect() as conn:
        planned = read_plan(conn, source, options.history_table)
        table, rows, plan = planned.table, planned.rows, planned.plan
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
        acks = _acknowledgements(pending, options) if pending or options.allow else None
        passed = None
        version_at_gate = 0
        if pending:  # before the backup: a refused run leaves nothing behind
            from ..engine.fkcheck import data_version
            from ..safety.gate import gate  # with something pending only: start-up stays light

            version_at_gate = data_version(conn)
            try:
                passed = gate(conn, options, planned, pending, exists=existed)
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
            table = _shape_for_v1(conn, table, plan, source, len(rows))
            upto = newest_applied(source, plan)
            if drifted := _drift(conn, source, table.name, options, upto):
                _refuse_drift(options, None, drifted)
            return Outcome(current, [], saved)
        # Something to apply: only now the apply, check and loss machinery is loaded.
        from ..engine import fkcheck
        from ..engine.apply import apply_migrations
        from ..safety.checks import (
            check_database,
            explained_losses,
            problem_line,
            row_counts,
        )

        assert acks is not None  # gathered above whenever something is pending
        if existed and saved is None:
            refuse_if_corrupt(conn, options)
        counts_before = row_counts(conn)
        # apply.py tolerates these too, and takes them as they are (not checking again) while
        # no other connection commits: data_version is read before the check.
        version = fkcheck.data_version(conn)
        found_before = fkcheck.violations(conn)
        violations_before = {problem_line(v) for v in found_before}

        def prepare(tx: sqlite3.Connection) -> history.HistoryTable:
            return prepare_history_table(tx, table, plan, source.format, expected_rows=len(rows))

        # The rehearsal applied these very migrations to a copy of this data, taken after
        # version_at_gate was read, and their foreign key checks passed there: when nobody
        # has committed since and the SQL writes the same rows every time, the checks before
        # each commit would find what they found (the whole check after migrating still runs).
        rehearsal = passed.rehearsal if passed is not None else None
        checked_on_copy = (
            rehearsal is not None
            and rehearsal.failure is None
            and rehearsal.applied == [m.name for m in pending]
            and version == version_at_gate
            and fkcheck.repeatable(pending)
        )
        try:
            applied = apply_migrations(
                conn,
                table,
                pending,
                one_transaction=options.one_transaction,
                prepare=prepare,
                baseline=fkcheck.Known(found_before, version),
                checked_on_copy=checked_on_copy,
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
        applied_names = {a.name for a in applied}
        applied_now = [m for m in pending if m.name in applied_names]
        expected, report.losses = explained_losses(conn, applied_now, report.losses)
        for loss in expected:
            log.info("rows removed: %s", loss.message)
        report.losses = _unacknowledged(report.losses, acks)
        if report.losses and saved is not None:
            report.losses = _judged(conn, saved, applied_now, table.name, acks, report.losses)
        for line in report.problems():
            log.warning("check after migrating: %s", line)
        drifted = (
            _drift(conn, source, table.name, options, newest_applied(source, plan, applied_names))
            if not _failed(report, options)
            else []
        )
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
    from ..safetynet.backup import list_backups  # only for a database ahead of this image

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


def _acknowledgements(pending: list[Migration], options: Options) -> Acknowledgements:
    """What the pending migrations and the operator acknowledge (loss.py, loaded only here)."""
    from ..safety.loss import Acknowledgements

    return Acknowledgements.gather(pending, options.allow, row_loss=options.allow_row_loss)


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
    from ..safety.judge import BEFORE, judge  # only after a check found rows missing

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


def _shape_for_v1(
    conn: sqlite3.Connection, table: history.HistoryTable, plan: Plan, source: Source, rows: int
) -> history.HistoryTable:
    """A 0.x history table under a drizzle-kit 1.0 folder gets 1.0's shape (name, applied_at)
    with nothing pending too, as drizzle 1.0's migrate() does on every start: which tool ran
    last does not decide the table's shape."""
    if not (
        table.exists
        and table.kind is history.Kind.DRIZZLE_V0
        and source.format is Format.DRIZZLE_FOLDERS
        and not plan.having(State.UNKNOWN)
    ):
        return table
    from ..engine.apply import write_transaction

    with write_transaction(conn, foreign_keys_off=False):
        return prepare_history_table(conn, table, plan, source.format, expected_rows=rows)


def _drift(
    conn: sqlite3.Connection, source: Source, history_table: str, options: Options, upto: int
) -> list[str]:
    """Compare with the snapshot of the newest applied migration that has one; warn; return
    the differences that count (for --strict).

    The comparison is remembered in the backup folder (drift_memo.py) and reused while the
    schema and the snapshot stay the same: drift reported before is then one line, not one a
    difference on every start. When applied migrations came after the snapshot without one of
    their own (hand-written), differences may be theirs: they are info lines, and not counted.
    """
    chosen = basis(source, upto)
    try:
        (drifted, note), since = recalled_drift(
            conn,
            source,
            upto=upto,
            ignore=[history_table],
            memo=memo_path(options.db_path, options.backups),
        )
    except SourceError as exc:  # a damaged snapshot is no reason to stop the app
        log.warning("drift not compared: %s", exc.message)
        return []
    if note and source.format is not Format.SQL:
        log.info("drift: %s", note)
    if not drifted:
        return []
    against = chosen.describe(source.folder)
    if chosen.after:
        log.info(
            "drift from %s, which predates %s (applied, written without a snapshot): %d "
            "difference(s), likely theirs, not counted as drift (first: %s); `entrypoint check "
            "--migrations DIR` lists them",
            against,
            _names(chosen.after),
            len(drifted),
            drifted[0],
        )
        return []
    strict = "refuses the start" if options.strict_drift else "--strict makes this refuse the start"
    if since is not None:
        log.warning(
            "warning: drift unchanged since %s: the schema differs from %s in %d place(s), "
            "first: %s; `entrypoint check --migrations DIR` lists them; %s",
            since,
            against,
            len(drifted),
            drifted[0],
            strict,
        )
        return drifted
    for line in drifted:
        log.warning("warning: drift from %s: %s", against, line)
    log.warning(
        "warning: the schema differs from %s in %d place(s); %s (the next start with the same "
        "schema says it in one line)",
        against,
        len(drifted),
        strict,
    )
    return drifted


def _names(names: list[str]) -> str:
    return ", ".join(names) if len(names) <= 3 else f"{names[0]} ... {names[-1]} ({len(names)})"


def _refuse_drift(options: Options, saved: Backup | None, drifted: list[str]) -> None:
    """Only with --strict: drift refuses the start, restoring what this run migrated."""
    if not options.strict_drift:
        return
    restored = ""
    if saved is not None and options.db_path.exists():
        failure = CheckFailed(f"the schema differs from drizzle-kit's snapshot ({drifted[0]})")
        result = restore_before_run(options, saved, failure)
        for line in result.summary():
            log.info("%s", line)
        restored = f"; restored the backup taken before migrating ({saved.path.name})"
    raise CheckFailed(
        f"the schema differs from drizzle-kit's snapshot ({len(drifted)} difference(s), "
        f"first: {drifted[0]}){restored}",
        hint="regenerate the migrations with drizzle-kit so the snapshot matches the database, "
        "or undo the change made by hand; `entrypoint check --migrations DIR` lists them all",
    )


def _failed(report: CheckReport, options: Options) -> bool:
    if report.integrity or report.foreign_keys:
        return True
    return bool(report.losses) and not options.allow_row_loss


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
