"""What a restore would drop: the rows of the live database that its backup does not hold.

Counted per table, on the columns the two have in common (a migration that added a column
changes no row's common part), as `live EXCEPT backup`: rows inserted since the backup and
rows whose values changed since. Rows deleted since come back with the backup; they are not
counted. Tables the backup lacks count whole. History tables and SQLite's own are left out:
the migrations are what a rollback means to undo.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from entrypoint.base.ident import quote
from entrypoint.engine.history import DRIZZLE_TABLE, PLAIN_TABLE
from entrypoint.safetynet.database import uri

SKIPPED = {DRIZZLE_TABLE, PLAIN_TABLE}


def writes_since(live: Path, backup: Path) -> dict[str, int]:
    """{table: rows of `live` that restoring `backup` would drop}, tables with none left out."""
    if not live.exists():
        return {}
    with contextlib.closing(sqlite3.connect(uri(backup), uri=True, timeout=30)) as conn:
        conn.execute("ATTACH DATABASE ? AS live", (uri(live),))
        counts = {}
        kept_tables = {t.lower() for t in _tables(conn, "main")}
        for table in _tables(conn, "live"):
            if table in SKIPPED:
                continue
            live_cols = _columns(conn, "live", table)
            kept = _columns(conn, "main", table) if table.lower() in kept_tables else []
            kept_cols = {c.lower() for c in kept}
            common = [c for c in live_cols if c.lower() in kept_cols]
            t = quote(table)
            if not common:
                sql = f"SELECT count(*) FROM live.{t}"  # noqa: S608
            else:
                cols = ", ".join(quote(c) for c in common)
                sql = (
                    f"SELECT count(*) FROM (SELECT {cols} FROM live.{t} "  # noqa: S608
                    f"EXCEPT SELECT {cols} FROM main.{t})"
                )
            if n := int(conn.execute(sql).fetchone()[0]):
                counts[table] = n
        return counts


def describe(counts: dict[str, int]) -> str:
    """`5 row(s) (reviews 4, users 1)`, biggest first."""
    total = sum(counts.values())
    parts = ", ".join(f"{t} {n}" for t, n in sorted(counts.items(), key=lambda kv: -kv[1]))
    return f"{total} row(s) ({parts})"


def _tables(conn: sqlite3.Connection, schema: str) -> list[str]:
    rows = conn.execute(
        f"SELECT name FROM {quote(schema)}.sqlite_master WHERE type = 'table' "  # noqa: S608
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name"
    )
    return [str(r[0]) for r in rows]


def _columns(conn: sqlite3.Connection, schema: str, table: str) -> list[str]:
    rows = conn.execute(f"SELECT name FROM {quote(schema)}.pragma_table_info(?)", (table,))  # noqa: S608
    return [str(r[0]) for r in rows]
