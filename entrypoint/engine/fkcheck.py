"""Foreign key checks limited to what a migration can have changed.

`PRAGMA foreign_key_check(T)` reports the rows of T whose parent row is missing. What it
reports for T (or the "foreign key mismatch" error it raises) depends only on T's rows and
schema and on the rows and schema of the tables T's foreign keys name, its parents, whether
they exist or not. The whole-database `PRAGMA foreign_key_check` is the union of it over
every table of the main schema (temp and attached schemas are not checked).

So a migration that writes (rows or schema) only the tables in `touched` can change the
check's result only for the tables of its `scope`: the touched tables and, transitively,
every table whose foreign keys name one of them (with foreign keys on, ON DELETE/UPDATE
actions write those children, so their own children are in as well). A rebuild drops the
parent and renames a copy to its name, and a renamed table's children have their REFERENCES
rewritten to the new name: both names are touched, so the children are in the scope under
the schema before and after. For every other table the check reports the same rows before
and after, so "violations after minus violations before" over the scope is exactly the same
set as over the whole database.

Where that cannot be told from the SQL, `touched` is None and the caller checks the whole
database, as before: a statement the parser does not understand, a trigger created (it can
write any table), a virtual table, a PRAGMA other than foreign_keys, ATTACH/DETACH (a
schema-qualified name would be read as a main one); and, at check time, a trigger on a table
of the scope. The per-table check names the main schema (`PRAGMA main.foreign_key_check(T)`),
so a temp table of the same name is not read instead.
"""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path

from ..base.ident import quote
from .sources import Migration

Violation = tuple[str, int | None, str, int]  # table, rowid, parent, foreign key id


def violations(conn: sqlite3.Connection) -> set[Violation]:
    """The whole database's `PRAGMA foreign_key_check`."""
    return {(r[0], r[1], r[2], r[3]) for r in conn.execute("PRAGMA foreign_key_check")}


def table_violations(conn: sqlite3.Connection, tables: Iterable[str]) -> set[Violation]:
    """`PRAGMA foreign_key_check(T)` for each of `tables` (names as the schema spells them)."""
    found: set[Violation] = set()
    for name in sorted(tables):
        rows = conn.execute(f"PRAGMA main.foreign_key_check({quote(name)})")
        found |= {(r[0], r[1], r[2], r[3]) for r in rows}
    return found


def touched(
    conn: sqlite3.Connection, migrations: Sequence[Migration], extra: Iterable[str] = ()
) -> set[str] | None:
    """The tables (lower case) the migrations' statements write, rows or schema; None when
    one of them cannot be told (the caller then checks the whole database).

    `conn` is the database before the migrations run: a DROP INDEX is resolved to its table
    there. `extra` adds tables written around the SQL (the history table).
    """
    from .sqltext import (  # with something to apply only
        AddColumn,
        CreateIndex,
        CreateObject,
        CreateTable,
        Delete,
        DropColumn,
        DropObject,
        DropTable,
        Insert,
        Maintenance,
        RenameColumn,
        RenameTable,
        Select,
        TxControl,
        Update,
    )

    found = {t.lower() for t in extra}
    created_indexes: dict[str, str] = {}
    for m in migrations:
        for statement, op in zip(m.statements, m.ops, strict=True):
            if isinstance(op, TxControl) or statement.is_foreign_keys_pragma:
                continue  # apply_migrations skips both
            if isinstance(op, RenameTable):
                found |= {op.table.lower(), op.new.lower()}
            elif isinstance(op, CreateIndex):
                created_indexes[op.index.lower()] = op.table.lower()
                found.add(op.table.lower())
            elif isinstance(
                op,
                CreateTable
                | DropTable
                | RenameColumn
                | AddColumn
                | DropColumn
                | Insert
                | Update
                | Delete,
            ):
                found.add(op.table.lower())
            elif isinstance(op, CreateObject):
                if op.kind != "view":
                    return None  # a trigger can write any table; a virtual table its shadows
                found.add(op.name.lower())  # a view by a parent's name: no rows, but be safe
            elif isinstance(op, DropObject):
                if op.kind == "view":
                    found.add(op.name.lower())
                elif op.kind == "index":  # a parent's unique index: a mismatch afterwards
                    table = created_indexes.get(op.name.lower()) or _index_table(conn, op.name)
                    if table is None:
                        return None
                    found.add(table.lower())
                # DROP TRIGGER writes no table
            elif isinstance(op, Maintenance):
                if op.verb in ("ATTACH", "DETACH"):
                    return None
                # VACUUM, ANALYZE (sqlite_stat1 has no foreign keys), REINDEX: no rows change
            elif not isinstance(op, Select):
                return None  # not understood, or a PRAGMA that may change how SQL behaves
    return found


def _index_table(conn: sqlite3.Connection, index: str) -> str | None:
    row = conn.execute(
        "SELECT tbl_name FROM main.sqlite_schema WHERE type = 'index' AND name = ? COLLATE NOCASE",
        (index,),
    ).fetchone()
    return str(row[0]) if row else None


def scope(
    conn: sqlite3.Connection, tables: set[str] | None, *, also: Iterable[str] = ()
) -> set[str] | None:
    """The tables (as named now) whose check the writes to `tables` can change; None for
    the whole database.

    `also` adds children found earlier (in the schema before the migration): a table whose
    foreign keys named a touched table then is in the scope too.
    """
    if tables is None:
        return None
    try:
        names = {
            str(n).lower(): str(n)
            for (n,) in conn.execute("SELECT name FROM main.sqlite_schema WHERE type = 'table'")
        }
        edges = [
            (str(child).lower(), str(parent).lower())
            for child, parent in conn.execute(
                'SELECT m.name, f."table" FROM main.sqlite_schema AS m, '
                "pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table'"
            )
        ]
        triggers = {
            str(t).lower()
            for (t,) in conn.execute(
                "SELECT tbl_name FROM main.sqlite_schema WHERE type = 'trigger'"
            )
        }
    except sqlite3.Error:
        return None  # e.g. a virtual table whose module is not loaded here
    closed = set(tables) | {t.lower() for t in also}
    grew = True
    while grew:
        grew = False
        for child, parent in edges:
            if parent in closed and child not in closed:
                closed.add(child)
                grew = True
    if closed & triggers:
        return None  # a trigger on a written table can write any other
    return {names[t] for t in closed if t in names}


def mismatch(conn: sqlite3.Connection) -> None:
    """Raise the "foreign key mismatch" error the whole-database check would raise, without
    reading a row: the check is run on an empty copy of the schema in memory.

    A mismatch (a foreign key whose parent has no PRIMARY KEY or UNIQUE index on those
    columns) depends on the schema alone, and the pragma raises it for empty tables too.
    When the schema cannot be copied (a collation or module this process lacks), the whole
    check runs on `conn` instead, as it does on a database holding about a page per table
    and index (a new one, say): reading its few rows costs less than copying its schema.
    """
    if _nearly_empty(conn):
        violations(conn)  # raises what the whole check raises
        return
    rows = conn.execute(
        "SELECT sql FROM main.sqlite_schema WHERE type IN ('table', 'index') "
        "AND sql IS NOT NULL AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY rowid"
    ).fetchall()
    with contextlib.closing(sqlite3.connect(":memory:", isolation_level=None)) as empty:
        try:
            for (sql,) in rows:
                empty.execute(sql)
        except sqlite3.Error:
            violations(conn)  # raises what the whole check raises
            return
        empty.execute("PRAGMA foreign_key_check").fetchall()


class Baseline:
    """The violations of the database as it was when the run started, asked per table."""

    def usable(self, conn: sqlite3.Connection) -> bool:
        """Whether the answers still hold for `conn`'s database at the start of the run."""
        raise NotImplementedError

    def of(self, tables: set[str]) -> set[Violation]:
        """The violations of the tables named (lower case), spelled as the baseline has them."""
        raise NotImplementedError

    @property
    def known(self) -> set[Violation] | None:
        """The whole set, when it was computed."""
        return None


class Known(Baseline):
    """A whole-database check done earlier on the same connection.

    It holds while no other connection has committed since: `PRAGMA data_version` changes
    when one has (SQLite's own test, across processes). `version` is read before the check.
    """

    def __init__(self, found: set[Violation], version: int) -> None:
        self.found = found
        self.version = version

    def usable(self, conn: sqlite3.Connection) -> bool:
        return data_version(conn) == self.version

    def of(self, tables: set[str]) -> set[Violation]:
        return {v for v in self.found if v[0].lower() in tables}

    @property
    def known(self) -> set[Violation] | None:
        return self.found


class Snapshot(Baseline):
    """A file that holds exactly the database the run starts from (the rehearsal's
    `before.db`, of which the database migrated is a clone): checked per table on demand."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def usable(self, conn: sqlite3.Connection) -> bool:
        return True

    def of(self, tables: set[str]) -> set[Violation]:
        uri = f"file:{quote_uri(self.path)}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, isolation_level=None)) as db:
            names = db.execute("SELECT name FROM sqlite_schema WHERE type = 'table'")
            return table_violations(db, {str(n) for (n,) in names if str(n).lower() in tables})


def quote_uri(path: Path) -> str:
    from urllib.parse import quote as percent

    return percent(str(path.resolve()))


def _nearly_empty(conn: sqlite3.Connection) -> bool:
    """At most about one page of rows per table and index (each has a root page)."""
    pages = int(conn.execute("PRAGMA main.page_count").fetchone()[0])
    roots = int(
        conn.execute("SELECT count(*) FROM main.sqlite_schema WHERE rootpage > 0").fetchone()[0]
    )
    return pages <= 2 * roots + 8


# What can make the same SQL give other rows on the same data: the clock (a date/time
# function defaults to 'now', as does CURRENT_*), chance, and what earlier statements did.
_UNREPEATABLE = re.compile(
    r"\b(?:random|randomblob|changes|total_changes|last_insert_rowid|date|time|datetime|"
    r"julianday|unixepoch|strftime|timediff|current_date|current_time|current_timestamp)\b"
    r"|'now'",
    re.IGNORECASE,
)


def repeatable(migrations: Iterable[Migration]) -> bool:
    """Whether the migrations write the same rows every time they run on the same data.

    Then a check of their result made on a copy of the data (the rehearsal) holds for the
    live database too, as long as nobody committed to it since the copy was taken. A name
    that merely looks like one of those functions (a column called `date`) counts as one.
    """
    return not any(_UNREPEATABLE.search(s.code) for m in migrations for s in m.statements)


def data_version(conn: sqlite3.Connection) -> int:
    return int(conn.execute("PRAGMA data_version").fetchone()[0])
