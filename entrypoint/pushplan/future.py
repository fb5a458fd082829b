"""A table's rows as they will be after the push, to count what a new key would cover.

Before anything is written, push counts the duplicates a new UNIQUE key or unique index
would meet. Counting on the live table is wrong whenever the key, or a partial index's
WHERE, names a column that does not exist yet or will hold something else: a new column
takes its default on every row, a column that becomes NOT NULL takes its default where it
was NULL, a renamed column keeps its values under the new name, a generated column is
computed. `projection` writes those rows as a WITH clause named like the declared table and
reading `main.<live table>`, so the index's own terms and WHERE (even drizzle-kit's
`"guests"."type" = 'main'`) run on them unchanged, and nothing is written anywhere.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

from ..base.ident import quote as q
from ..engine.sqltext import CreateIndex, classify

_BASE = "__litedeploy_live"
_ORDER = re.compile(r"\s+(?:ASC|DESC)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class Column:
    """A declared column and the expression giving its value after the push."""

    name: str
    expr: str  # over the live table's columns; for a generated one, over the declared columns
    generated: bool = False


def projection(table: str, live: str, columns: list[Column], *also: str) -> str:
    """`WITH "<table>" AS (...)`: the declared table's rows, computed from the live table;
    `also`: more tables' rows (`parent_rows`), in the same WITH clause."""
    return "WITH " + ", ".join([_rows(table, live, columns, _BASE), *also])


def parent_rows(name: str, live: str, columns: list[Column]) -> str:
    """Another table's future rows under `name`, for `projection`'s `also` (a new foreign
    key's parent, whose key column may be new too)."""
    return _rows(name, live, columns, f"{name}_live")


def _rows(table: str, live: str, columns: list[Column], base_name: str) -> str:
    stored = [c for c in columns if not c.generated] or [Column("__litedeploy_none", "NULL")]
    computed = [c for c in columns if c.generated]
    base = ", ".join(f"{c.expr} AS {q(c.name)}" for c in stored)
    extra = "".join(f", {c.expr} AS {q(c.name)}" for c in computed)
    return (
        f"{q(base_name)} AS (SELECT {base} FROM main.{q(live)}), "  # noqa: S608
        f"{q(table)} AS (SELECT *{extra} FROM {q(base_name)})"
    )


def index_key(sql: str) -> tuple[list[str], str | None]:
    """A CREATE INDEX statement's terms (without ASC/DESC, COLLATE kept) and its WHERE."""
    op = classify(sql)
    if not isinstance(op, CreateIndex):
        raise ValueError(f"not a CREATE INDEX statement: {sql[:60]}")
    return [_ORDER.sub("", term) for term in op.columns], op.where


def duplicate_groups(
    conn: sqlite3.Connection, with_clause: str, table: str, terms: list[str], where: str | None
) -> int:
    """Groups of the table's future rows sharing every term's value (NULLs never collide, as
    in a UNIQUE index); `where` limits the rows to a partial index's."""
    tests = " AND ".join(f"({t}) IS NOT NULL" for t in terms)
    if where:
        tests += f" AND ({where})"
    sql = (
        f"{with_clause} SELECT count(*) FROM (SELECT 1 FROM {q(table)} "  # noqa: S608
        f"WHERE {tests} GROUP BY {', '.join(terms)} HAVING count(*) > 1)"
    )
    return int(conn.execute(sql).fetchone()[0])


def rows_where(conn: sqlite3.Connection, with_clause: str, table: str, condition: str) -> int:
    """The table's future rows for which `condition` holds."""
    sql = f"{with_clause} SELECT count(*) FROM {q(table)} WHERE {condition}"  # noqa: S608
    return int(conn.execute(sql).fetchone()[0])
