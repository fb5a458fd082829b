"""Apply migrations with SQLite's own procedure for foreign keys and transactions."""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..base import faults
from ..base.contract import WAL_SUFFIX, side_file
from ..base.errors import MigrationFailed
from ..base.record import Record
from . import fkcheck, history
from .fkcheck import Violation
from .sources import Migration

log = logging.getLogger("litedeploy.entrypoint")

Prepare = Callable[[sqlite3.Connection], history.HistoryTable]


@dataclass(eq=False, repr=False)
class Applied(Record):
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
    baseline: fkcheck.Baseline | None = None,
    checked_on_copy: bool = False,
) -> list[Applied]:
    """Apply each migration with its history row in one transaction (or all in one).

    `prepare` runs inside the first transaction (to create or upgrade the history table),
    so a migration that fails leaves no trace at all. `quiet` logs the progress at debug
    level (the rehearsal on a copy, whose summary says what happened). `baseline` holds the
    foreign key violations of the database as it is now (see `_ForeignKeys`).
    `checked_on_copy`: the same groups passed their foreign key check on a copy of this
    very data (the rehearsal, with `fkcheck.repeatable` SQL), so it is not run again before
    each commit; the whole check after migrating still runs.
    """
    level = logging.DEBUG if quiet else logging.INFO
    groups = [list(migrations)] if one_transaction else [[m] for m in migrations]
    applied: list[Applied] = []
    with _synced_once(conn):
        for group in groups:
            done, table = _apply_group(
                conn,
                table,
                group,
                prepare,
                level,
                None if checked_on_copy else baseline,
                check=not checked_on_copy,
            )
            applied.extend(done)
            prepare = baseline = None  # the baseline is the state before the first group only
    return applied


@contextmanager
def _synced_once(conn: sqlite3.Connection) -> Iterator[None]:
    """In WAL mode, the run's commits reach the disk together: one fsync at the end.

    SQLite's default (synchronous FULL) syncs the WAL at every commit, a hundred times for
    a hundred migrations; NORMAL leaves it to the checkpoint. A power cut during the run may
    then lose its newest commits, never consistency: each migration commits with its
    history row, so what was lost is pending again at the next start. The WAL is synced
    here after the last commit (and after a failure), so a run that ends, well or not, has
    everything it committed on disk, as before. Rollback-journal databases, and sessions
    already below FULL (the rehearsal's copy), are left as they are.
    """
    mode = str(conn.execute("PRAGMA main.journal_mode").fetchone()[0]).lower()
    level = int(conn.execute("PRAGMA main.synchronous").fetchone()[0])
    if mode != "wal" or level < 2:  # 2 FULL, 3 EXTRA
        yield
        return
    conn.execute("PRAGMA main.synchronous = NORMAL")
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError, sqlite3.Error):
            _restore_sync(conn, level)
        raise
    try:
        _restore_sync(conn, level)
    except (OSError, sqlite3.Error) as exc:
        raise MigrationFailed(
            f"the migrations committed but could not be synced to disk: {exc}",
            hint="check the disk (I/O errors, free space), then start again",
        ) from exc


def _restore_sync(conn: sqlite3.Connection, level: int) -> None:
    conn.execute(f"PRAGMA main.synchronous = {level}")
    (main,) = [row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"]
    try:
        fd = os.open(side_file(Path(main), WAL_SUFFIX), os.O_RDONLY)
    except FileNotFoundError:
        return  # nothing was written through the WAL
    try:
        faults.point("apply.sync")
        os.fsync(fd)
    finally:
        os.close(fd)


def _apply_group(
    conn: sqlite3.Connection,
    table: history.HistoryTable,
    group: list[Migration],
    prepare: Prepare | None,
    level: int,
    baseline: fkcheck.Baseline | None,
    *,
    check: bool = True,
) -> tuple[list[Applied], history.HistoryTable]:
    fk_off = any(m.wants_foreign_keys_off for m in group)
    try:
        with write_transaction(conn, foreign_keys_off=fk_off):
            prepared = table.name
            if prepare is not None:
                table = prepare(conn)
            checks = None
            if fk_off and not check:
                log.log(
                    level,
                    "  %s: foreign keys were checked on the rehearsal's copy of this data; "
                    "not again before commit",
                    ", ".join(m.name for m in group),
                )
            elif fk_off:
                history_names = {prepared, table.name} if prepare is not None else set()
                checks = _ForeignKeys(conn, group, table.name, history_names, baseline)
            done = [_apply_one(conn, table, m, fk_off=fk_off, level=level) for m in group]
            if checks is not None:
                _check_foreign_keys(conn, group, checks, level)
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
    enforce_before = None
    if foreign_keys_off:
        enforce_before = bool(conn.execute("PRAGMA foreign_keys").fetchone()[0])
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
        if enforce_before is not None:  # a migration's own PRAGMA is skipped: only ours
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


def violations(conn: sqlite3.Connection) -> set[Violation]:
    return fkcheck.violations(conn)


class _ForeignKeys:
    """The foreign key check around a group run with foreign keys off, limited to what the
    group can change (`fkcheck`): the same new violations as two whole-database checks.

    Made after `prepare`, before the group's statements. Three ways to know the violations
    before, for the tables of the scope:
    - the whole database, checked now, when the scope cannot be told (as it always was);
    - from `baseline`, the state before the first group (a whole check done earlier on this
      connection while no one else committed since, or the rehearsal's `before.db`), asked
      after the group only for the tables that then have violations: none, usually. The
      tables `prepare` wrote (the history table's) are checked now, since the baseline
      predates them;
    - otherwise the tables of the scope, checked now.
    Unless the whole database was checked, `fkcheck.mismatch` raises the "foreign key
    mismatch" the whole check would have raised, from the schema alone.
    """

    def __init__(
        self,
        conn: sqlite3.Connection,
        group: list[Migration],
        history_table: str,
        prepared: set[str],
        baseline: fkcheck.Baseline | None,
    ) -> None:
        self.written = fkcheck.touched(conn, group, extra=[history_table])
        self.before_scope = fkcheck.scope(conn, self.written)
        self.whole = self.before_scope is None
        if self.before_scope is None:  # not understood: the whole database, before and after
            self.baseline, self.existing = None, violations(conn)
            return
        fkcheck.mismatch(conn)
        self.baseline = baseline if baseline is not None and baseline.usable(conn) else None
        if self.baseline is None:
            now = self.before_scope
        else:
            prepared_lower = {t.lower() for t in prepared}
            now = {t for t in self.before_scope if t.lower() in prepared_lower}
        self.existing = fkcheck.table_violations(conn, now)
        self.checked_now = {t.lower() for t in now}

    def new(self, conn: sqlite3.Connection) -> tuple[list[Violation], int | None]:
        """The violations the group added, sorted; and how many there were before (in the
        whole database when that is known, else None)."""
        if self.before_scope is None:
            after = violations(conn)
            return _sorted(after - self.existing), len(self.existing)
        before_lower = {t.lower() for t in self.before_scope}
        after_scope = fkcheck.scope(conn, self.written, also=before_lower)
        if after_scope is None:
            # Only a trigger or a table whose foreign keys cannot be listed gets here, and
            # neither can appear without `touched` giving None: check every table by name.
            names = conn.execute("SELECT name FROM main.sqlite_schema WHERE type = 'table'")
            after_scope = {str(n) for (n,) in names}
        after = fkcheck.table_violations(conn, after_scope)
        if not after - self.existing:
            return [], self._count()
        existing = set(self.existing)
        if self.baseline is not None:
            asked = {v[0].lower() for v in after} - self.checked_now
            existing |= self.baseline.of(asked)
        return _sorted(after - existing), self._count()

    def _count(self) -> int | None:
        if self.whole:
            return len(self.existing)
        known = self.baseline.known if self.baseline is not None else None
        return len(known) if known is not None else None


def _sorted(found: set[Violation]) -> list[Violation]:
    return sorted(found, key=lambda v: (v[0], v[1] or 0))


def _check_foreign_keys(
    conn: sqlite3.Connection, group: list[Migration], checks: _ForeignKeys, level: int
) -> None:
    """Roll back if the migrations left rows pointing at parents that no longer exist."""
    new, before = checks.new(conn)
    if before:
        log.log(
            logging.WARNING if level >= logging.INFO else level,
            "the database already had %d foreign key violation(s) before migrating",
            before,
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
