"""One reader of a SQLite schema, live or replayed, and the model it fills.

Everything that asks what a database's tables look like reads it here: drift and push
mode compare the `Schema` model; the findings, the rehearsal's judge and the checks ask
for a table's columns, key, foreign keys and the tables that hold data. Every function
takes the schema name (`main`, or an attached database) so the same code reads the live
file, a rehearsal copy or the in-memory replay.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..base.ident import quote
from ..base.record import Record
from ..engine.history import DRIZZLE_TABLE, PLAIN_TABLE

# --------------------------------------------------------------------------------------
# The comparison model (drift, push mode)


@dataclass(eq=False, repr=False)
class Column(Record):
    type: str
    not_null: bool
    default: str | None
    primary_key: bool


@dataclass(eq=False, repr=False)
class Index(Record):
    columns: tuple[str, ...]
    unique: bool


@dataclass(eq=False, repr=False)
class ForeignKey(Record):
    columns: tuple[str, ...]
    table_to: str
    columns_to: tuple[str, ...]
    on_delete: str
    on_update: str

    def __str__(self) -> str:
        text = f"({', '.join(self.columns)}) -> {self.table_to}({', '.join(self.columns_to)})"
        if self.on_delete != "NO ACTION":
            text += f" ON DELETE {self.on_delete}"
        if self.on_update != "NO ACTION":
            text += f" ON UPDATE {self.on_update}"
        return text


@dataclass
class Table:
    columns: dict[str, Column] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    # UNIQUE constraints (SQLite backs them with sqlite_autoindex_*, whose names mean nothing)
    uniques: set[tuple[str, ...]] = field(default_factory=set)
    foreign_keys: set[ForeignKey] = field(default_factory=set)


Schema = dict[str, Table]


def read_schema(
    conn: sqlite3.Connection, ignore: Iterable[str] = (), *, schema: str = "main"
) -> Schema:
    """The tables of one schema of the open database, without internal and history tables."""
    skipped = {DRIZZLE_TABLE.lower(), PLAIN_TABLE.lower(), *(n.lower() for n in ignore)}
    names = [
        n
        for n, kind in table_kinds(conn, schema).items()
        if kind == "table" and not n.lower().startswith("sqlite_") and n.lower() not in skipped
    ]
    model: Schema = {}
    for name in sorted(names):
        table = model[name] = Table()
        for col in columns(conn, name, schema=schema):
            table.columns[col.name] = Column(
                col.type, col.not_null, normal_default(col.default), bool(col.pk)
            )
        for index in indexes(conn, name, schema=schema):
            if index.origin == "pk":
                continue
            if index.origin == "u":
                table.uniques.add(index.columns)
            elif not index.name.startswith("sqlite_autoindex_"):
                table.indexes[index.name] = Index(index.columns, index.unique)
        for fk in foreign_keys(conn, name, schema=schema):
            table.foreign_keys.add(fk)
    return normalised(model)


def normalised(model: Schema) -> Schema:
    """Even out what SQLite and the snapshot formats say differently about the same schema."""
    for table in model.values():
        pk = [c for c, col in table.columns.items() if col.primary_key]
        if len(pk) == 1 and normal_type(table.columns[pk[0]].type) == "INTEGER":
            # a rowid alias can never be NULL; 1.0 writes no NOT NULL for it, 0.x does
            col = table.columns[pk[0]]
            table.columns[pk[0]] = Column(col.type, True, col.default, True)
    return model


def foreign_key(
    columns_from: Iterable[str],
    table_to: str,
    columns_to: Iterable[str],
    on_delete: str | None,
    on_update: str | None,
) -> ForeignKey:
    return ForeignKey(
        tuple(columns_from),
        table_to,
        tuple(columns_to),
        (on_delete or "no action").upper(),
        (on_update or "no action").upper(),
    )


def normal_default(value: Any) -> str | None:
    """A default as comparable SQL text: `''`, `1`, `current_timestamp`, `'a b'`."""
    if value is None:
        return None
    text = str(value).lower() if isinstance(value, bool) else str(value).strip()
    while text.startswith("(") and text.endswith(")") and _balanced(text[1:-1]):
        text = text[1:-1].strip()
    if text.startswith('"') and text.endswith('"') and len(text) >= 2:
        text = "'" + text[1:-1].replace("'", "''") + "'"
    if not text.startswith("'"):
        text = " ".join(text.split()).lower()
    return text


def _balanced(text: str) -> bool:
    depth = 0
    for ch in text:
        depth += {"(": 1, ")": -1}.get(ch, 0)
        if depth < 0:
            return False
    return depth == 0


def normal_type(text: str) -> str:
    return " ".join(text.split()).upper()


# --------------------------------------------------------------------------------------
# What the analysis asks of one table


@dataclass(eq=False, repr=False)
class ColumnInfo(Record):
    """A column as `PRAGMA table_xinfo` gives it; `pk` is its position in the key (0: none)."""

    name: str
    type: str
    not_null: bool
    default: str | None  # as written in the schema
    pk: int
    hidden: int  # 0 ordinary, 1 a virtual table's hidden column, 2/3 generated

    @property
    def generated(self) -> bool:
        return self.hidden in (2, 3)


@dataclass(eq=False, repr=False)
class IndexInfo(Record):
    name: str
    unique: bool
    origin: str  # c (CREATE INDEX), u (UNIQUE constraint), pk
    partial: bool
    columns: tuple[str, ...]  # "<expression>" for an expression


def table_kinds(conn: sqlite3.Connection, schema: str = "main") -> dict[str, str]:
    """Every table of the schema and its kind: table, view, virtual, shadow."""
    return {
        str(name): str(kind)
        for name, kind in conn.execute(
            "SELECT name, type FROM pragma_table_list WHERE schema = ?", (schema,)
        )
    }


def data_tables(
    conn: sqlite3.Connection, skip: Iterable[str] = (), *, schema: str = "main"
) -> list[str]:
    """The tables that hold an application's rows: not sqlite_*, virtual, shadow or `skip`."""
    skipped = {s.lower() for s in skip}
    return sorted(
        n
        for n, kind in table_kinds(conn, schema).items()
        if kind == "table" and not n.lower().startswith("sqlite_") and n.lower() not in skipped
    )


def columns(conn: sqlite3.Connection, table: str, *, schema: str = "main") -> list[ColumnInfo]:
    """The table's columns in order (hidden columns of virtual tables left out)."""
    rows = conn.execute("SELECT * FROM pragma_table_xinfo(?, ?)", (table, schema)).fetchall()
    return [
        ColumnInfo(str(r[1]), str(r[2] or ""), bool(r[3]), r[4], int(r[5]), int(r[6]))
        for r in rows
        if r[6] != 1
    ]


def primary_key(conn: sqlite3.Connection, table: str, *, schema: str = "main") -> list[str]:
    """The declared primary key's columns in key order; empty: the table is keyed by rowid."""
    cols = [c for c in columns(conn, table, schema=schema) if c.pk]
    return [c.name for c in sorted(cols, key=lambda c: c.pk)]


def without_rowid(conn: sqlite3.Connection, table: str, *, schema: str = "main") -> bool:
    row = conn.execute(
        "SELECT wr FROM pragma_table_list WHERE schema = ? AND name = ?", (schema, table)
    ).fetchone()
    return bool(row and row[0])


def indexes(conn: sqlite3.Connection, table: str, *, schema: str = "main") -> list[IndexInfo]:
    out = []
    for _seq, name, unique, origin, partial in conn.execute(
        "SELECT * FROM pragma_index_list(?, ?)", (table, schema)
    ):
        cols = tuple(
            str(r[2]) if r[2] is not None else "<expression>"
            for r in conn.execute(
                "SELECT * FROM pragma_index_info(?, ?) ORDER BY seqno", (name, schema)
            )
        )
        out.append(IndexInfo(str(name), bool(unique), str(origin), bool(partial), cols))
    return out


def unique_keys(
    conn: sqlite3.Connection, table: str, *, schema: str = "main"
) -> list[tuple[str, ...]]:
    """Column lists no two rows may share: UNIQUE constraints, unique indexes, the key."""
    keys = [
        i.columns
        for i in indexes(conn, table, schema=schema)
        if i.unique and not i.partial and "<expression>" not in i.columns
    ]
    pk = tuple(primary_key(conn, table, schema=schema))
    if pk and pk not in keys:
        keys.append(pk)
    return keys


def foreign_keys(conn: sqlite3.Connection, table: str, *, schema: str = "main") -> list[ForeignKey]:
    """The table's foreign keys; `REFERENCES parent` alone means the parent's primary key."""
    grouped: dict[int, list[tuple[Any, ...]]] = {}
    for row in conn.execute("SELECT * FROM pragma_foreign_key_list(?, ?)", (table, schema)):
        grouped.setdefault(row[0], []).append(row)
    out = []
    for rows in grouped.values():
        rows.sort(key=lambda r: r[1])
        parent = str(rows[0][2])
        to = [r[4] for r in rows]
        if any(t is None for t in to):
            to = primary_key(conn, parent, schema=schema) or ["rowid"]
        out.append(foreign_key([r[3] for r in rows], parent, to, rows[0][6], rows[0][5]))
    return out


def children(
    conn: sqlite3.Connection, table: str, *, schema: str = "main"
) -> list[tuple[str, ForeignKey]]:
    """(child table, foreign key) for every foreign key of another table referencing `table`."""
    out = []
    for child in data_tables(conn, schema=schema):
        if child.lower() == table.lower():
            continue
        for fk in foreign_keys(conn, child, schema=schema):
            if fk.table_to.lower() == table.lower():
                out.append((child, fk))
    return out


def objects_on(
    conn: sqlite3.Connection, kind: str, table: str, *, schema: str = "main"
) -> list[str]:
    """Names of the indexes or triggers written for a table (not automatic indexes)."""
    return [
        str(r[0])
        for r in conn.execute(
            f"SELECT name FROM {quote(schema)}.sqlite_master WHERE type = ? "  # noqa: S608
            "AND tbl_name = ? COLLATE NOCASE AND sql IS NOT NULL",
            (kind, table),
        )
    ]


def exists(conn: sqlite3.Connection, name: str, *, schema: str = "main") -> bool:
    row = conn.execute(
        f"SELECT 1 FROM {quote(schema)}.sqlite_master WHERE name = ? COLLATE NOCASE",  # noqa: S608
        (name,),
    ).fetchone()
    return row is not None


def create_sql(conn: sqlite3.Connection, table: str, *, schema: str = "main") -> str:
    row = conn.execute(
        f"SELECT sql FROM {quote(schema)}.sqlite_master WHERE type = 'table' "  # noqa: S608
        "AND name = ? COLLATE NOCASE",
        (table,),
    ).fetchone()
    return str(row[0]) if row and row[0] else ""


def real_name(conn: sqlite3.Connection, table: str, *, schema: str = "main") -> str | None:
    """The table's name as the schema spells it (names are case-insensitive), or None."""
    row = conn.execute(
        f"SELECT name FROM {quote(schema)}.sqlite_master WHERE type = 'table' "  # noqa: S608
        "AND name = ? COLLATE NOCASE",
        (table,),
    ).fetchone()
    return str(row[0]) if row else None


def affinity(declared: str) -> str:
    """SQLite's column affinity rules (section 3.1 of the datatype docs)."""
    t = declared.upper()
    if "INT" in t:
        return "INTEGER"
    if any(k in t for k in ("CHAR", "CLOB", "TEXT")):
        return "TEXT"
    if "BLOB" in t or not t.strip():
        return "BLOB"
    if any(k in t for k in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "NUMERIC"


_CLEAN_TYPES = {
    "INTEGER": ("integer",),
    "REAL": ("real",),
    "NUMERIC": ("integer", "real"),
    "TEXT": ("text",),
}


def unconvertible(values: list[object], target: str) -> int | None:
    """How many of the values would not take `target` affinity's type cleanly when stored.

    Stored into a scratch column of that affinity, as SQLite would store them; None when
    the affinity takes anything (BLOB).
    """
    if target not in _CLEAN_TYPES:
        return None
    with contextlib.closing(sqlite3.connect(":memory:")) as mem:
        mem.execute(f"CREATE TABLE t (v {target})")
        mem.executemany("INSERT INTO t VALUES (?)", [(v,) for v in values])
        clean = ", ".join(f"'{t}'" for t in _CLEAN_TYPES[target])
        sql = f"SELECT count(*) FROM t WHERE typeof(v) NOT IN ({clean})"  # noqa: S608 (constants)
        return int(mem.execute(sql).fetchone()[0])
