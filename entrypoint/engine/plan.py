"""Compare the migrations on disk with the history rows and decide what may run."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass
from enum import StrEnum

from ..base.errors import PlanRefused
from ..base.record import Record
from . import history
from .history import Kind, Row
from .sources import Format, Migration, Source

log = logging.getLogger("litedeploy.entrypoint")


class State(StrEnum):
    """Where one migration stands against the database."""

    APPLIED = "applied"
    PENDING = "pending"
    OUT_OF_ORDER = "out-of-order"
    CHANGED = "changed"
    UNKNOWN = "unknown"


DESCRIPTIONS = {
    State.APPLIED: "applied",
    State.PENDING: "pending",
    State.OUT_OF_ORDER: "pending, but older than the newest applied migration",
    State.CHANGED: "applied, but the file changed since (hash differs)",
    State.UNKNOWN: "applied to the database but not in this image's migrations",
}


@dataclass(eq=False, repr=False)
class Item(Record):
    """A migration (or an unknown history row) and its state."""

    name: str
    state: State
    migration: Migration | None
    row: Row | None


@dataclass(eq=False, repr=False)
class Plan(Record):
    """Every migration's state, in source order, then history rows the source does not know."""

    items: list[Item]

    def having(self, *states: State) -> list[Item]:
        return [i for i in self.items if i.state in states]

    def to_apply(self, *, allow_out_of_order: bool) -> list[Migration]:
        """Migrations to run now, in source order."""
        states = (State.PENDING, State.OUT_OF_ORDER) if allow_out_of_order else (State.PENDING,)
        return [i.migration for i in self.having(*states) if i.migration is not None]

    @property
    def head(self) -> str | None:
        """The newest applied migration known to this source."""
        applied = self.having(State.APPLIED, State.CHANGED)
        return applied[-1].name if applied else None


@dataclass(eq=False, repr=False)
class Planned(Record):
    """The plan of one database: its history table, the rows read from it, and their plan.

    `run` computes it once under the lock and hands it to the gate and the rehearsal, whose
    snapshot copy (taken under the same lock) holds the same history.
    """

    source: Source
    table: history.HistoryTable
    rows: list[Row]
    plan: Plan


def read_plan(conn: sqlite3.Connection, source: Source, history_table: str | None) -> Planned:
    """Locate and read the history table, then plan the source against it."""
    table = history.locate(conn, source.format, history_table)
    rows = history.read(conn, table)
    return Planned(source, table, rows, make_plan(source, table.kind, rows))


def make_plan(source: Source, kind: Kind, rows: list[Row]) -> Plan:
    """Match history rows to migrations and classify each migration."""
    matches = _match(source, kind, rows)
    matched_rows = {id(r) for r in matches.values()}
    items: list[Item] = []
    newest_applied = _newest_applied_position(source, matches)
    watermark = max((r.created_at for r in rows if r.created_at is not None), default=None)
    for position, migration in enumerate(source.migrations):
        row = matches.get(migration.name)
        if row is not None:
            changed = bool(row.hash) and row.hash != migration.hash
            items.append(
                Item(migration.name, State.CHANGED if changed else State.APPLIED, migration, row)
            )
            continue
        if source.format is Format.DRIZZLE_JOURNAL and kind is Kind.DRIZZLE_V0:
            # drizzle 0.x's own rule: anything at or below the watermark is skipped forever.
            late = watermark is not None and (migration.created_at or 0) <= watermark
        else:
            late = newest_applied is not None and position < newest_applied
        items.append(
            Item(migration.name, State.OUT_OF_ORDER if late else State.PENDING, migration, None)
        )
    for row in rows:
        if id(row) not in matched_rows:
            items.append(Item(_row_label(row), State.UNKNOWN, None, row))
    return Plan(items)


def newest_applied(source: Source, plan: Plan, applied_now: Iterable[str] = ()) -> int:
    """The position in `source.migrations` of the newest migration the database has, counting
    `applied_now` (names applied since `plan` was read); -1 when it has none."""
    names = {i.name for i in plan.having(State.APPLIED, State.CHANGED)} | set(applied_now)
    return max((p for p, m in enumerate(source.migrations) if m.name in names), default=-1)


def _match(source: Source, kind: Kind, rows: list[Row]) -> dict[str, Row]:
    """Pair migrations with rows: by name where rows have one, else by time, then by hash."""
    free = list(rows)
    matches: dict[str, Row] = {}

    def take(migration: Migration, row: Row) -> None:
        matches[migration.name] = row
        free.remove(row)

    if kind in (Kind.DRIZZLE_V1, Kind.LITEDEPLOY):
        for migration in source.migrations:
            row = next((r for r in free if r.name == migration.name), None)
            if row is not None:
                take(migration, row)
    if kind is Kind.LITEDEPLOY:
        return matches
    # 0.x rows (and 1.0 rows a 0.x migrator wrote without a name) carry only time and hash.
    seconds = source.format is Format.DRIZZLE_FOLDERS
    for migration in source.migrations:
        if migration.name in matches or migration.created_at is None:
            continue
        candidates = [
            r for r in free if r.name is None and _same_time(r, migration.created_at, seconds)
        ]
        row = next((r for r in candidates if r.hash == migration.hash), None)
        if row is None and len(candidates) == 1:
            row = candidates[0]
        if row is not None:
            take(migration, row)
    for migration in source.migrations:
        if migration.name in matches:
            continue
        row = next((r for r in free if r.name is None and r.hash == migration.hash), None)
        if row is not None:
            take(migration, row)
    return matches


def _same_time(row: Row, created_at: int, seconds: bool) -> bool:
    if row.created_at is None:
        return False
    if seconds:
        return row.created_at // 1000 * 1000 == created_at
    return row.created_at == created_at


def _newest_applied_position(source: Source, matches: dict[str, Row]) -> int | None:
    positions = [i for i, m in enumerate(source.migrations) if m.name in matches]
    return max(positions) if positions else None


def _row_label(row: Row) -> str:
    if row.name:
        return row.name
    return f"created_at={row.created_at} hash={row.hash[:12] or '?'}"


def check_policy(
    plan: Plan,
    *,
    allow_out_of_order: bool,
    allow_changed: bool,
    allow_newer_database: bool,
    newer_database_action: str | None = None,
) -> None:
    """Refuse to start when the history needs a human decision.

    `newer_database_action` replaces the advice for a database ahead of the image (the
    caller names the backup to restore when there is one).
    """
    rules = [
        (
            State.CHANGED,
            allow_changed,
            "--allow-changed / LITEDEPLOY_ALLOW_CHANGED",
            "changed after it was applied",
            "restore the applied file from version control, or accept the edit",
        ),
        (
            State.OUT_OF_ORDER,
            allow_out_of_order,
            "--allow-out-of-order / LITEDEPLOY_ALLOW_OUT_OF_ORDER",
            "older than the newest applied migration (drizzle's migrate() would skip it forever)",
            "check it does not conflict with the newer ones, then apply it",
        ),
        (
            State.UNKNOWN,
            allow_newer_database,
            "--allow-newer-database / LITEDEPLOY_ALLOW_NEWER_DATABASE",
            "recorded in the database but missing from this image "
            "(the database is ahead of the code)",
            newer_database_action or "deploy the newer image, or start this one anyway",
        ),
    ]
    for state, allowed, flag, what, action in rules:
        names = [i.name for i in plan.having(state)]
        if names and not allowed:
            more = f" and {len(names) - 5} more" if len(names) > 5 else ""
            listed = ", ".join(names[:5]) + more
            raise PlanRefused(
                f"{len(names)} migration(s) {what}: {listed}",
                hint=f"{action} with {flag}",
            )


def prepare_history_table(
    conn: sqlite3.Connection,
    table: history.HistoryTable,
    plan: Plan,
    fmt: Format,
    *,
    expected_rows: int,
) -> history.HistoryTable:
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
