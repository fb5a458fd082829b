"""Apply migrations with SQLite's own procedure for foreign keys and transactions."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

from ..base import faults
from ..base.errors import MigrationFailed
from . import history
from .sources import Migration

log = logging.getLogger("litedeploy.entrypoint")

Prepare = Callable[[sqlite3.Connection], history.HistoryTable]


@dataclass(frozen=True)
class Applied:
    """A migration that was committed, and how long it took."""

    name: str
    statements: int
    duration_ms: int


def apply_migrations(
    conn: sqlite3.Connection,
    table: history.HistoryTable,
    migrations: Sequence[Migration],
    *,
    one_transaction: bool = False,
    prepare: Prepare | None = None,
    quiet: bool = False,
) -> list[Applied]:
    """Apply each migration with its history row in one transaction (or all in one).

    `prepare` runs inside the first transaction (to create or upgrade the history table),
    so a migration that fails leaves no trace at all. `quiet` logs the progress at debug
    level (the rehearsal on a copy, whose summary says what happened).
    """
    level = logging.DEBUG if quiet else logging.INFO
    groups = [list(migrations)] if one_transaction else [[m] for m in migrations]
    applied: list[Applied] = []
    for group in groups:
        done, table = _apply_group(conn, table, group, prepare, level)
        applied.extend(done)
        prepare = None
    return applied


def _apply_group(
    conn: sqlite3.Connection,
    table: history.HistoryTable,
    group: list[Migration],
    prepare: Prepare | None,
    level: int,
) -> tuple[list[Applied], history.HistoryTable]:
    fk_off = any(m.wants_foreign_keys_off for m in group)
    try:
        with write_transaction(conn, foreign_keys_off=fk_off):
            if prepare is not None:
                table = prepare(conn)
            existing = violations(conn) if fk_off else set()
            done = [_apply_one(conn, table, m, fk_off=fk_off, level=level) for m in group]
            if fk_off:
                _check_foreign_keys(conn, group, existing, level)
    except sqlite3.Error as exc:  # outside a statement: the history row, COMMIT, the pragma
        raise MigrationFailed(
            f"{', '.join(m.name for m in group)}: SQLite failed around the migration: {exc}",
            hint="check the disk (free space, I/O errors), then start again; the migration "
            "was rolled back, or undone with the backup taken before the run",
        ) from exc
    return done, table


@contextmanager
def write_transaction(conn: sqlite3.Connection, *, foreign_keys_off: bool) -> Iterator[None]:
    """BEGIN IMMEDIATE ... COMMIT, rolled back on any error.

    With `foreign_keys_off`, foreign keys are turned off before BEGIN (the pragma is a no-op
    inside a transaction); the session's setting is restored afterwards either way.
    """
    enforce_before = bool(conn.execute("PRAGMA foreign_keys").fetchone()[0])
    if foreign_keys_off:
        conn.execute("PRAGMA foreign_keys = OFF")
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            faults.point("apply.commit")
            conn.execute("COMMIT")
            faults.point("apply.committed")
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
    finally:
        conn.execute(f"PRAGMA foreign_keys = {'ON' if enforce_before else 'OFF'}")


def _apply_one(
    conn: sqlite3.Connection,
    table: history.HistoryTable,
    migration: Migration,
    *,
    fk_off: bool,
    level: int,
) -> Applied:
    started = time.monotonic()
    skipped = sum(1 for c in migration.chunks if c.skipped)
    count = len(migration.statements)
    log.log(level, "Applying %s (%d statement%s)", migration.name, count, "" if count == 1 else "s")
    pragma = any(s.foreign_keys_setting is False for s in migration.statements)
    if fk_off and migration.rebuilt_tables and not pragma:
        log.log(
            level,
            "  %s: foreign keys OFF around it (checked before commit): it rebuilds %s",
            migration.name,
            ", ".join(migration.rebuilt_tables),
        )
    if skipped:
        log.log(level, "  %s: skipped %d empty or comment-only chunk(s)", migration.name, skipped)
    from .sqltext import TxControl  # with something to apply only

    idiom = migration.foreign_keys_idiom
    for statement, op in zip(migration.statements, migration.ops, strict=True):
        if isinstance(op, TxControl):
            why = (
                "it ends and restarts the transaction to set PRAGMA foreign_keys"
                if statement.number in idiom
                else "transaction control is acknowledged: the file runs in one transaction"
            )
            log.log(
                level,
                "  %s: statement %d: %s skipped; %s",
                migration.name,
                statement.number,
                statement.code.rstrip(";"),
                why,
            )
            continue
        if statement.is_foreign_keys_pragma:
            log.log(
                level,
                "  %s: statement %d: %s skipped; foreign keys are %s for the whole migration "
                "and checked before commit",
                migration.name,
                statement.number,
                statement.code.rstrip(";"),
                "OFF" if fk_off else "ON",
            )
            continue
        try:
            conn.execute(statement.sql)
            faults.point("apply.statement")
        except sqlite3.Error as exc:
            raise MigrationFailed(
                f"{migration.path}: statement {statement.number} failed: {exc} "
                f"[{_preview(statement.sql)}]",
                hint=_hint_for(exc),
            ) from exc
    duration_ms = round((time.monotonic() - started) * 1000)
    history.record(conn, table, migration, duration_ms)
    faults.point("apply.recorded")
    log.log(level, "Applied %s in %d ms", migration.name, duration_ms)
    return Applied(migration.name, len(migration.statements), duration_ms)


def violations(conn: sqlite3.Connection) -> set[tuple[str, int | None, str, int]]:
    return {(r[0], r[1], r[2], r[3]) for r in conn.execute("PRAGMA foreign_key_check")}


def _check_foreign_keys(
    conn: sqlite3.Connection,
    group: list[Migration],
    existing: set[tuple[str, int | None, str, int]],
    level: int,
) -> None:
    """Roll back if the migrations left rows pointing at parents that no longer exist."""
    new = sorted(violations(conn) - existing, key=lambda v: (v[0], v[1] or 0))
    if existing:
        log.log(
            logging.WARNING if level >= logging.INFO else level,
            "the database already had %d foreign key violation(s) before migrating",
            len(existing),
        )
    if not new:
        return
    shown = "; ".join(f"{t} rowid {rowid} -> {parent}" for t, rowid, parent, _ in new[:5])
    more = f" (and {len(new) - 5} more)" if len(new) > 5 else ""
    names = ", ".join(m.name for m in group)
    raise MigrationFailed(
        f"{names}: foreign key check failed after the migration, rolled back: "
        f"{len(new)} row(s) reference a missing parent: {shown}{more}",
        hint="the migration drops or rewrites rows that other tables still reference; "
        "copy every parent row in the rebuild, or delete the children explicitly",
    )


# SQLite's result codes that say the machine failed, not the migration's SQL.
_MACHINE = ("SQLITE_FULL", "SQLITE_IOERR", "SQLITE_READONLY", "SQLITE_CANTOPEN", "SQLITE_NOMEM")


def _hint_for(exc: sqlite3.Error) -> str:
    """What to do about a statement that failed: the disk's fault, or the migration's."""
    name = str(getattr(exc, "sqlite_errorname", "") or "")
    if name.startswith(_MACHINE):
        return (
            "this is the machine, not the migration: free space on the database's disk (or "
            "check it for I/O errors and permissions), then start again; nothing of the "
            "migration was kept"
        )
    return "fix the migration; nothing of it (or of later migrations) was applied"


def _preview(sql: str, limit: int = 80) -> str:
    flat = " ".join(sql.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
