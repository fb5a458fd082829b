"""The history table: drizzle's `__drizzle_migrations` (0.x and 1.0 shapes) or litedeploy's own."""

from __future__ import annotations

import sqlite3
import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from ..base import signals
from ..base.errors import UsageError
from ..base.record import Record
from .sources import Format, Migration

DRIZZLE_TABLE = "__drizzle_migrations"
PLAIN_TABLE = "__litedeploy_migrations"


class Kind(StrEnum):
    """Shape of a history table."""

    DRIZZLE_V0 = "drizzle-0.x"
    DRIZZLE_V1 = "drizzle-1.0"
    LITEDEPLOY = "litedeploy"


@dataclass(eq=False, repr=False)
class Row(Record):
    """One history row, whatever the table's shape."""

    name: str | None
    hash: str
    created_at: int | None
    applied_at: str | None


@dataclass(eq=False, repr=False)
class HistoryTable(Record):
    """Where a database keeps its history, and in which shape."""

    name: str
    kind: Kind
    exists: bool

    @property
    def quoted(self) -> str:
        return quote(self.name)


def quote(identifier: str) -> str:
    """Quote an identifier the way drizzle's escapeName does."""
    return '"' + identifier.replace('"', '""') + '"'


# The columns each shape reads: a table without them is not a history (an app's table, say).
_COLUMNS = {
    Kind.DRIZZLE_V0: {"hash", "created_at"},
    Kind.DRIZZLE_V1: {"hash", "created_at"},
    Kind.LITEDEPLOY: {"name", "hash", "applied_at"},
}
_LAYOUT = {Kind.DRIZZLE_V0: "drizzle", Kind.DRIZZLE_V1: "drizzle", Kind.LITEDEPLOY: "litedeploy"}
NAME_HINT = (
    "set --history-table / LITEDEPLOY_MIGRATIONS_TABLE to drizzle's migrationsTable (default "
    "__drizzle_migrations), or leave it unset"
)


def name_problem(name: str) -> str | None:
    """Why a history table name cannot be used, whatever the database; None when it can."""
    if not name.strip():
        return "the history table name is empty"
    if name.lower().startswith("sqlite_"):
        return f"{name!r} is reserved: SQLite keeps names starting with sqlite_ for itself"
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in name):
        return f"the history table name {name!r} contains a control character"
    if len(name) > 128:
        return f"the history table name is {len(name)} characters long (at most 128)"
    return None


def new_table(fmt: Format, table_name: str | None = None) -> HistoryTable:
    """The table a database without history gets for this source format."""
    if table_name is not None and (problem := name_problem(table_name)) is not None:
        raise UsageError(problem, hint=NAME_HINT)
    if fmt is Format.SQL:
        return HistoryTable(table_name or PLAIN_TABLE, Kind.LITEDEPLOY, exists=False)
    kind = Kind.DRIZZLE_V0 if fmt is Format.DRIZZLE_JOURNAL else Kind.DRIZZLE_V1
    return HistoryTable(table_name or DRIZZLE_TABLE, kind, exists=False)


def locate(conn: sqlite3.Connection, fmt: Format, table_name: str | None = None) -> HistoryTable:
    """Find the history table for a source format; its kind comes from its columns if it exists."""
    table = new_table(fmt, table_name)
    kind = _object_type(conn, table.name)
    if kind is None:
        return table
    if kind != "table":
        raise UsageError(
            f"the history table name {table.name!r} is taken by the database's {kind} of that name",
            hint=NAME_HINT,
        )
    name = table.name
    columns = {r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (name,))}
    if fmt is not Format.SQL:
        table = HistoryTable(name, Kind.DRIZZLE_V1 if "name" in columns else Kind.DRIZZLE_V0, False)
    if missing := _COLUMNS[table.kind] - {c.lower() for c in columns}:
        raise UsageError(
            f"table {name!r} exists and is not a {_LAYOUT[table.kind]} history table: it lacks "
            f"column(s) {', '.join(sorted(missing))} (its columns: {', '.join(sorted(columns))})",
            hint="it is one of the app's tables, or the history of another layout; " + NAME_HINT,
        )
    return HistoryTable(name, table.kind, exists=True)


def _object_type(conn: sqlite3.Connection, name: str) -> str | None:
    """What the schema holds under this name (names are case-insensitive): table, view..."""
    row = conn.execute(
        "SELECT type FROM sqlite_master WHERE name = ? COLLATE NOCASE", (name,)
    ).fetchone()
    return None if row is None else str(row[0])


def create_sql(table: HistoryTable) -> str:
    """The CREATE statement, byte for byte what drizzle runs (its indentation is stored too)."""
    if table.kind is Kind.DRIZZLE_V0:
        body = "id SERIAL PRIMARY KEY,\n\t\t\t\thash text NOT NULL,\n\t\t\t\tcreated_at numeric"
    elif table.kind is Kind.DRIZZLE_V1:
        body = (
            "id INTEGER PRIMARY KEY,\n\t\t\t\thash text NOT NULL,\n\t\t\t\tcreated_at numeric,"
            "\n\t\t\t\tname text,\n\t\t\t\tapplied_at TEXT"
        )
    else:
        return (
            f"CREATE TABLE IF NOT EXISTS {table.quoted} (\n"
            "  name TEXT PRIMARY KEY NOT NULL,\n"
            "  hash TEXT NOT NULL,\n"
            "  applied_at TEXT NOT NULL,\n"
            "  duration_ms INTEGER\n"
            ")"
        )
    return f"CREATE TABLE IF NOT EXISTS {table.quoted} (\n\t\t\t\t{body}\n\t\t\t)"


def create(conn: sqlite3.Connection, table: HistoryTable) -> HistoryTable:
    """Create the table if it is missing."""
    conn.execute(create_sql(table))
    return HistoryTable(table.name, table.kind, exists=True)


def read(conn: sqlite3.Connection, table: HistoryTable) -> list[Row]:
    """Every row, in the order they were written."""
    if not table.exists:
        return []
    q = table.quoted
    if table.kind is Kind.DRIZZLE_V0:
        query = f"SELECT NULL, hash, created_at, NULL FROM {q} ORDER BY rowid"  # noqa: S608
    elif table.kind is Kind.DRIZZLE_V1:
        query = f"SELECT name, hash, created_at, applied_at FROM {q} ORDER BY rowid"  # noqa: S608
    else:
        query = f"SELECT name, hash, NULL, applied_at FROM {q} ORDER BY rowid"  # noqa: S608
    return [
        Row(name=r[0], hash=r[1] or "", created_at=_millis(r[2]), applied_at=r[3])
        for r in conn.execute(query)
    ]


def _millis(value: object) -> int | None:
    """created_at as drizzle reads it: Number(value)."""
    if value is None:
        return None
    try:
        return int(float(str(value)))
    except ValueError:
        return None


def record(
    conn: sqlite3.Connection, table: HistoryTable, migration: Migration, duration_ms: int
) -> None:
    """Insert the row for an applied migration, exactly as drizzle would.

    Never after a stop signal: the migration's transaction then rolls back instead of
    committing, even if the signal's own exception was swallowed on the way.
    """
    signals.check()
    q = table.quoted
    if table.kind is Kind.DRIZZLE_V0:
        conn.execute(
            f'INSERT INTO {q} ("hash", "created_at") VALUES(?, ?)',
            (migration.hash, migration.created_at),
        )
    elif table.kind is Kind.DRIZZLE_V1:
        conn.execute(
            f'INSERT INTO {q} ("hash","created_at","name","applied_at") values(?, ?, ?, ?)',
            (migration.hash, migration.created_at, migration.name, iso_now()),
        )
    else:
        conn.execute(
            f"INSERT INTO {q} (name, hash, applied_at, duration_ms) VALUES (?, ?, ?, ?)",  # noqa: S608
            (migration.name, migration.hash, iso_now(), duration_ms),
        )


def iso_now() -> str:
    """The current time as JavaScript's Date.toISOString() writes it."""
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def upgrade_to_v1(
    conn: sqlite3.Connection, table: HistoryTable, matched: dict[str, Row]
) -> HistoryTable:
    """Upgrade a 0.x table in place as drizzle 1.0's migrate() does: add name, back-fill it.

    `matched` maps migration names to the rows the plan paired them with. Rows are updated
    by time, or by hash when several share a second, as drizzle does (0.x ids are NULL).
    """
    q = table.quoted
    conn.execute(f'ALTER TABLE {q} ADD COLUMN "name" text')
    conn.execute(f'ALTER TABLE {q} ADD COLUMN "applied_at" TEXT')
    for name, row in matched.items():
        conn.execute(
            f'UPDATE {q} SET "name" = ?, "applied_at" = NULL '  # noqa: S608
            'WHERE "created_at" = ? AND "hash" = ? AND "name" IS NULL',
            (name, row.created_at, row.hash),
        )
    return HistoryTable(table.name, Kind.DRIZZLE_V1, exists=True)
