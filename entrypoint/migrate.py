"""The migration run: lock, plan, refuse or apply, as one straight story."""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from . import history
from .apply import Applied, apply_migrations
from .database import check_file, connect
from .errors import PlanRefused
from .lock import migration_lock
from .plan import Plan, State, check_policy, make_plan
from .sources import Format, Source, load_source

log = logging.getLogger("litedeploy.entrypoint")


@dataclass(frozen=True)
class Options:
    """What to migrate and how far to trust the history."""

    db_path: Path
    migrations_dir: Path
    format: Format | None = None
    history_table: str | None = None
    allow_out_of_order: bool = False
    allow_changed: bool = False
    allow_newer_database: bool = False
    one_transaction: bool = False
    lock_timeout: float = 60.0


@dataclass(frozen=True)
class Status:
    """The migrations, the history table and each migration's state."""

    source: Source
    table: history.Table
    plan: Plan
    database_exists: bool


@dataclass(frozen=True)
class Outcome:
    """What a run found and what it applied."""

    status: Status
    applied: list[Applied]


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
    """Apply what is pending, or refuse with the reason; nothing changes on failure."""
    source = load_source(options.migrations_dir, options.format)
    check_file(options.db_path)
    with migration_lock(options.db_path, options.lock_timeout):
        # Only now: the holder we waited for may have created the database meanwhile.
        existed = check_file(options.db_path)
        try:
            with contextlib.closing(connect(options.db_path)) as conn:
                return _migrate(conn, source, options, existed)
        except BaseException:
            if not existed:
                _remove_created(options.db_path)
            raise


def _migrate(conn: sqlite3.Connection, source: Source, options: Options, existed: bool) -> Outcome:
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
    )
    pending = plan.to_apply(allow_out_of_order=options.allow_out_of_order)
    if not pending:
        log.info("nothing to apply; database is at %s", plan.head or "no migrations")
        return Outcome(current, [])

    def prepare(tx: sqlite3.Connection) -> history.Table:
        return _prepare_table(tx, table, plan, source.format, expected_rows=len(rows))

    applied = apply_migrations(
        conn, table, pending, one_transaction=options.one_transaction, prepare=prepare
    )
    return Outcome(current, applied)


def _prepare_table(
    conn: sqlite3.Connection,
    table: history.Table,
    plan: Plan,
    fmt: Format,
    *,
    expected_rows: int,
) -> history.Table:
    """Inside the first transaction: re-read the history, then create or upgrade the table."""
    rows = history.read(conn, table)
    if len(rows) != expected_rows:
        raise PlanRefused(
            f"the history in {table.name} changed while planning "
            f"({expected_rows} rows, now {len(rows)})",
            hint="another migrator that does not use litedeploy's lock ran at the same time; "
            "start again",
        )
    if not table.exists:
        return history.create(conn, table)
    if (
        table.kind is history.Kind.DRIZZLE_V0
        and fmt is Format.DRIZZLE_FOLDERS
        and not plan.having(State.UNKNOWN)
    ):
        matched = {i.name: i.row for i in plan.having(State.APPLIED, State.CHANGED) if i.row}
        log.info("upgrading %s to drizzle 1.0's shape (name, applied_at)", table.name)
        return history.upgrade_to_v1(conn, table, matched)
    return table


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


def _remove_created(db_path: Path) -> None:
    """Remove a database this run created: before the run there was none."""
    log.info("removing %s, which this run created, so nothing is left behind", db_path)
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            db_path.with_name(db_path.name + suffix).unlink()
