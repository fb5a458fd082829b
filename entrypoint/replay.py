"""The replay behind the rules: the live schema in an in-memory database, and live counts.

Pending migrations are replayed statement by statement in an in-memory SQLite database that
starts with the live schema (no data), so the rules can read a table's columns, indexes and
foreign keys as they stand before each statement. Rows and values are counted in the live
database through the read-only connection, following renames and rebuilds back to the live
table and column names.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from dataclasses import dataclass, field

from .statements import Statement

NAME = r"(?:`[^`]*`|\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|[\w$]+)"
QNAME = rf"(?:{NAME}\s*\.\s*)?{NAME}"
_I = re.IGNORECASE

# Transaction control at the start of a statement (a trigger's BEGIN is inside CREATE).
TX_CONTROL = re.compile(r"^(BEGIN|COMMIT|END|ROLLBACK|SAVEPOINT|RELEASE)\b", _I)
_SKIP_IN_REPLAY = re.compile(r"^(PRAGMA|ATTACH|DETACH|VACUUM|ANALYZE)\b", _I)


def unquote(name: str) -> str:
    """The last part of a possibly qualified, possibly quoted name."""
    part = re.findall(NAME, name)[-1]
    if part[:1] in '`"[':
        part = part[1:-1]
    return str(part).replace('""', '"')


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def split_top(text: str) -> list[str]:
    """Split on commas outside parentheses and quotes."""
    parts, depth, start, quote = [], 0, 0, ""
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "'\"`":
            quote = ch
        elif ch == "[":
            quote = "]"
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i].strip())
            start = i + 1
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def plain_column(expr: str) -> str | None:
    """`"price"` or `products.price` -> `price`; None for anything computed."""
    return unquote(expr) if re.fullmatch(QNAME, expr.strip()) else None


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


def unconvertible(conn: sqlite3.Connection, table: str, column: str, target: str) -> int | None:
    """Non-NULL values of table.column that would not take `target` affinity's type cleanly.

    Stored into a scratch column of that affinity, as SQLite would store them; None when
    the values cannot be read or the affinity takes anything (BLOB).
    """
    if target not in _CLEAN_TYPES:
        return None
    col = q(column)
    with contextlib.closing(sqlite3.connect(":memory:")) as mem:
        mem.execute(f"CREATE TABLE t (v {target})")
        try:
            values = conn.execute(f"SELECT {col} FROM {q(table)} WHERE {col} IS NOT NULL")  # noqa: S608
            mem.executemany("INSERT INTO t VALUES (?)", values)
        except sqlite3.Error:
            return None
        clean = ", ".join(f"'{t}'" for t in _CLEAN_TYPES[target])
        sql = f"SELECT count(*) FROM t WHERE typeof(v) NOT IN ({clean})"  # noqa: S608
        return int(mem.execute(sql).fetchone()[0])


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    notnull: bool
    default: str | None
    pk: int


@dataclass
class Rebuild:
    """drizzle-kit's create `new` / copy / drop `old` / rename `new` to `old`."""

    old: str
    new: str
    create: int
    insert: Statement | None
    drop: int
    rename: int
    columns: dict[str, str] = field(default_factory=dict)  # new column -> old column copied
    targets: set[str] = field(default_factory=set)  # new columns the copy fills (lower)


class Replay:
    """The live schema in memory, replayed migration by migration, plus live counts."""

    def __init__(self, live: sqlite3.Connection | None) -> None:
        self.live = live
        self.sim = sqlite3.connect(":memory:", isolation_level=None)
        self.tables: dict[str, str | None] = {}  # current name (lower) -> live name
        self.columns: dict[str, dict[str, str]] = {}  # current table -> {column: live column}
        self.filled: set[str] = set()  # tables created by pending migrations that got rows
        if live is not None:
            self._copy_schema(live)

    def _copy_schema(self, live: sqlite3.Connection) -> None:
        rows = live.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite_%' ORDER BY CASE type WHEN 'table' THEN 0 "
            "WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END"
        ).fetchall()
        for kind, name, sql in rows:
            with contextlib.suppress(sqlite3.Error):
                self.sim.execute(sql)
                if kind == "table":
                    self.tables[name.lower()] = name

    def close(self) -> None:
        self.sim.close()

    # -- the schema as replayed so far

    def columns_of(self, table: str) -> list[Column]:
        rows = self.sim.execute(f"PRAGMA table_info({q(table)})").fetchall()
        return [Column(r[1], r[2] or "", bool(r[3]), r[4], r[5]) for r in rows]

    def sql_of(self, table: str) -> str:
        row = self.sim.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
            (table,),
        ).fetchone()
        return row[0] if row else ""

    def objects_on(self, kind: str, table: str) -> list[str]:
        return [
            r[0]
            for r in self.sim.execute(
                "SELECT name FROM sqlite_master WHERE type = ? AND tbl_name = ? COLLATE NOCASE "
                "AND sql IS NOT NULL",
                (kind, table),
            )
        ]

    def exists(self, name: str) -> bool:
        row = self.sim.execute(
            "SELECT 1 FROM sqlite_master WHERE name = ? COLLATE NOCASE", (name,)
        ).fetchone()
        return row is not None

    def children_of(self, table: str) -> list[tuple[str, str]]:
        """(child table, ON DELETE action) for every foreign key referencing the table."""
        out = []
        names = [
            r[0] for r in self.sim.execute("SELECT name FROM sqlite_master WHERE type='table'")
        ]
        for child in names:
            if child.lower() == table.lower():
                continue
            for fk in self.sim.execute(f"PRAGMA foreign_key_list({q(child)})"):
                if str(fk[2]).lower() == table.lower():
                    out.append((child, str(fk[6]).upper()))
                    break
        return out

    def unique_keys(self, table: str) -> list[list[str]]:
        """Column lists of the table's UNIQUE / PRIMARY KEY constraints (not plain indexes)."""
        keys = []
        for idx in self.sim.execute(f"PRAGMA index_list({q(table)})").fetchall():
            if idx[2] and idx[3] in ("u", "pk") and not idx[4]:
                info = self.sim.execute(f"PRAGMA index_info({q(idx[1])})").fetchall()
                keys.append([r[2] for r in info])
        return keys

    def execute(self, statement: Statement) -> None:
        code = statement.code
        if TX_CONTROL.match(code) or _SKIP_IN_REPLAY.match(code):
            return
        with contextlib.suppress(sqlite3.Error):
            self.sim.execute(code)

    # -- where a table's rows live, and counting them

    def created(self, table: str) -> None:
        self.tables[table.lower()] = None
        self.columns.pop(table.lower(), None)

    def dropped(self, table: str) -> None:
        self.tables.pop(table.lower(), None)
        self.columns.pop(table.lower(), None)
        self.filled.discard(table.lower())

    def renamed(self, old: str, new: str) -> None:
        key, to = old.lower(), new.lower()
        if key not in self.tables:
            return
        self.tables[to] = self.tables.pop(key)
        if key in self.columns:
            self.columns[to] = self.columns.pop(key)
        if key in self.filled:
            self.filled.discard(key)
            self.filled.add(to)

    def column_renamed(self, table: str, old: str, new: str) -> None:
        key = table.lower()
        mapping = self.columns.setdefault(
            key, {c.name.lower(): c.name for c in self.columns_of(table)}
        )
        mapping[new.lower()] = mapping.pop(old.lower(), old)

    def column_dropped(self, table: str, column: str) -> None:
        self.columns.get(table.lower(), {}).pop(column.lower(), None)

    def rebuilt(self, rb: Rebuild) -> None:
        """The rebuilt table holds the old one's rows, under its name, with mapped columns."""
        key = rb.old.lower()
        live, filled = self.tables.get(key), key in self.filled
        mapping = {new: self._live_column(rb.old, old) for new, old in rb.columns.items()}
        self.dropped(rb.old)
        self.dropped(rb.new)
        if rb.insert is None:
            self.tables[key] = None
            return
        self.tables[key] = live
        self.columns[key] = mapping
        if filled:
            self.filled.add(key)

    def _live(self, table: str) -> str | bool | None:
        """The live table name; True when the table is known empty; None when unknown."""
        key = table.lower()
        if key not in self.tables:  # with a live schema: a table that does not exist
            return True if self.live is not None else None
        name = self.tables[key]
        if name is None:
            return None if key in self.filled else True
        return name if self.live is not None else None

    def _live_column(self, table: str, column: str) -> str:
        mapping = self.columns.get(table.lower())
        return column if mapping is None else mapping.get(column.lower(), column)

    def _count(self, sql: str) -> int | None:
        assert self.live is not None
        try:
            return int(self.live.execute(sql).fetchone()[0] or 0)
        except sqlite3.Error:
            return None

    def rows(self, table: str) -> int | None:
        live = self._live(table)
        if not isinstance(live, str):
            return 0 if live is True else None
        return self._count(f"SELECT count(*) FROM {q(live)}")  # noqa: S608

    def values(self, table: str, column: str, *, null: bool = False) -> int | None:
        """Rows whose column is non-NULL (or NULL, with null=True)."""
        live = self._live(table)
        if not isinstance(live, str):
            return 0 if live is True else None
        col = q(self._live_column(table, column))
        test = "IS NULL" if null else "IS NOT NULL"
        return self._count(f"SELECT count(*) FROM {q(live)} WHERE {col} {test}")  # noqa: S608

    def duplicates(self, table: str, exprs: list[str], where: str | None = None) -> int | None:
        """Groups of rows sharing a value of the key (NULLs never collide)."""
        live = self._live(table)
        if not isinstance(live, str):
            return 0 if live is True else None
        terms = []
        for expr in exprs:
            expr = re.sub(r"\s+(ASC|DESC)\s*$", "", expr, flags=_I)
            col = plain_column(expr)
            terms.append(q(self._live_column(table, col)) if col else f"({expr})")
        key = ", ".join(terms)
        tests = " AND ".join(f"{t} IS NOT NULL" for t in terms)
        if where:
            tests += f" AND ({where})"
        return self._count(
            f"SELECT count(*) FROM (SELECT 1 FROM {q(live)} WHERE {tests} "  # noqa: S608
            f"GROUP BY {key} HAVING count(*) > 1)"
        )

    def lossy(self, table: str, column: str, target: str) -> int | None:
        """Non-NULL values that do not take the target affinity's type when stored."""
        live = self._live(table)
        if not isinstance(live, str) or target not in _CLEAN_TYPES:
            return 0 if live is True else None
        assert self.live is not None
        return unconvertible(self.live, live, self._live_column(table, column), target)

    def sequence(self, table: str) -> tuple[int, int] | None:
        """(sqlite_sequence value, max rowid) of a live AUTOINCREMENT table."""
        live = self._live(table)
        if not isinstance(live, str):
            return None
        assert self.live is not None
        try:
            row = self.live.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = ?", (live,)
            ).fetchone()
            if row is None or row[0] is None:
                return None
            top = self.live.execute(f"SELECT max(rowid) FROM {q(live)}").fetchone()[0]  # noqa: S608
        except sqlite3.Error:
            return None
        return int(row[0]), int(top or 0)
