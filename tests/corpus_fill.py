"""Plausible, deterministic rows for every ordinary table of any SQLite schema.

    fill(db_path, rows_per_table=3, seed=0) -> {table: rows inserted}

The schema is read from the database itself (``PRAGMA table_list`` / ``table_xinfo`` /
``foreign_key_list`` / ``index_list`` / ``index_info`` and the CREATE TABLE text for
``CHECK (col IN (...))``), so the filler knows nothing about any particular project. What it
does, and its limits:

- Tables: every ordinary table except ``sqlite_*``, migration-history tables
  (``__drizzle_migrations``, ``__litedeploy_migrations``, ``*_migrations`` ...), virtual tables
  and their shadow tables. Rows are added to whatever the table already holds.
- Order: parents before children (a topological order over foreign keys, ties by name). A cycle
  is broken at the table with the fewest NOT NULL edges into tables not yet filled; such an edge
  gets NULL when nullable, or a placeholder under ``PRAGMA defer_foreign_keys`` when NOT NULL,
  and both are pointed at a real parent row once every table is filled (before COMMIT).
  A self-reference points at a row inserted before it; the first row of an empty table gets
  NULL when the column is nullable, else a reference to itself.
- Values: every column gets a non-NULL value in every row (so that dropping a column really
  loses values), except the self-reference of a table's first row and foreign keys into a table
  that has no rows and never will (a missing table, a table that could not be filled). Values
  follow the declared type's affinity and, where easy, the column's name: ids (text ``board-3``
  or the next integer of a rowid alias), emails, urls, names, colours, hex tokens, booleans
  (0/1, integer columns named ``is_*``, ``*_enabled``, ``consumed``... or with a true/false
  default), unix seconds for integer columns named ``*_at`` / ``*At`` / ``created`` /
  ``expires``..., ISO text for text ones, JSON text shaped like a JSON-looking DEFAULT.
- Constraints: every free value contains the row's serial number, so UNIQUE / PRIMARY KEY
  columns (composite, unique indexes, partial ones too, treated as if they were total) differ
  between rows; columns whose values come from a short list (foreign keys: the referenced
  columns of an existing parent row, composite keys included; ``CHECK (x IN (...))``: the list;
  booleans) are combined in mixed radix, so composite unique keys made of them are distinct
  as long as there are enough combinations. Uniqueness is checked in Python against the rows
  already there before each INSERT.
- Errors: foreign keys are ON, the whole fill is one transaction and each row a SAVEPOINT. A
  row SQLite refuses with a constraint error (``IntegrityError``: a CHECK the filler cannot
  read, a unique expression index, a trigger's RAISE...) is retried with the next serial number
  and the next combination, at most ``MAX_TRIES`` times, then given up and reported; any other
  error (``foreign key mismatch``, a missing parent table...) is about the schema, not the
  values, and stops that table at once. ``fill_report`` returns the reports; ``fill`` logs them
  as warnings (logger ``corpus_fill``).
- Not understood: CHECK constraints other than ``col IN (...)``, unique expression indexes (only
  the retry helps), generated columns (left to SQLite), tables whose NOT NULL foreign key points
  at a missing table or at columns that are not unique (``foreign key mismatch``).

Deterministic: the same schema, rows already present and seed give the same rows, byte for
byte (string seeds of ``random.Random`` are hashed with SHA-512, not Python's salted hash).
Pure stdlib.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import random
import re
import sqlite3
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

log = logging.getLogger("corpus_fill")

MAX_TRIES = 12  # INSERTs per row that SQLite refuses before the row is given up
MAX_SKIPS = 400  # candidate rows per row skipped in Python (duplicate unique key)
BASE_TIME = 1_735_689_600  # 2025-01-01T00:00:00Z
HISTORY_TABLES = {
    "__drizzle_migrations",
    "__litedeploy_migrations",
    "_prisma_migrations",
    "schema_migrations",
    "knex_migrations",
    "knex_migrations_lock",
    "_sqlx_migrations",
    "kysely_migration",
    "kysely_migration_lock",
}

FIRST_NAMES = ["Olena", "Taras", "Ivan", "Maria", "Andrii", "Sofia", "Petro", "Iryna", "Oleh"]
WORDS = ["amber", "birch", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris", "juniper"]
BOOL_WORDS = {
    "enabled",
    "disabled",
    "active",
    "inactive",
    "archived",
    "deleted",
    "hidden",
    "visible",
    "public",
    "private",
    "consumed",
    "pinned",
    "favorite",
    "favourite",
    "verified",
    "locked",
    "approved",
    "default",
    "primary",
    "read",
    "done",
    "completed",
    "starred",
    "muted",
    "blocked",
    "open",
    "closed",
    "draft",
    "published",
    "required",
    "optional",
    "truncated",
    "summary",
    "selected",
}
BOOL_PREFIXES = {"is", "has", "can", "should", "allow", "allows", "use", "show", "enable", "needs"}
TIME_WORDS = {
    "at",
    "date",
    "time",
    "timestamp",
    "expires",
    "expiry",
    "expiration",
    "created",
    "updated",
    "modified",
    "deleted",
    "when",
    "until",
    "since",
}
URL_WORDS = {"url", "href", "uri", "link", "endpoint", "website", "homepage", "webhook"}
TEXT_WORDS = {
    "description",
    "content",
    "body",
    "text",
    "message",
    "note",
    "notes",
    "comment",
    "prompt",
    "summary",
    "assignment",
    "css",
    "error",
    "xml",
    "html",
    "markdown",
}
SECRET_WORDS = {
    "token",
    "secret",
    "hash",
    "password",
    "salt",
    "checksum",
    "signature",
    "apikey",
    "digest",
    "sha",
    "commit",
    "nonce",
}
JSON_WORDS = {"json", "options", "settings", "config", "metadata", "meta", "payload", "data"}


# --------------------------------------------------------------------------------------
# The schema, as the database says


@dataclass(frozen=True)
class Column:
    name: str
    decl: str  # declared type, as written
    notnull: bool
    default: str | None  # the DEFAULT's SQL text
    pk: int  # position in the primary key, 0 when not part of it
    generated: bool

    @property
    def affinity(self) -> str:
        """SQLite's affinity rules (https://sqlite.org/datatype3.html#determination_of_column_affinity)."""
        t = self.decl.upper()
        if "INT" in t:
            return "INTEGER"
        if any(s in t for s in ("CHAR", "CLOB", "TEXT")):
            return "TEXT"
        if "BLOB" in t or not t:
            return "BLOB"
        if any(s in t for s in ("REAL", "FLOA", "DOUB")):
            return "REAL"
        return "NUMERIC"


@dataclass(frozen=True)
class ForeignKey:
    parent: str
    columns: tuple[str, ...]
    parent_columns: tuple[str, ...]  # resolved: the parent's primary key when the FK names none


@dataclass
class Table:
    name: str
    sql: str
    columns: list[Column]
    fks: list[ForeignKey]
    unique_sets: list[tuple[str, ...]]  # primary key and unique indexes (column names only)
    checks: dict[str, list[Any]]  # column -> the values of its CHECK (col IN (...))
    rowid_alias: str | None  # the INTEGER PRIMARY KEY column, if any
    without_rowid: bool

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name.lower() == name.lower()), None)


def q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def is_history_table(name: str) -> bool:
    low = name.lower()
    return low in HISTORY_TABLES or (low.startswith("__") and "migration" in low)


def fillable_tables(conn: sqlite3.Connection) -> list[str]:
    """Ordinary tables: no sqlite_*, history, virtual or shadow tables. Sorted by name."""
    rows = conn.execute("SELECT name, type FROM pragma_table_list WHERE schema = 'main'").fetchall()
    virtual = [name for name, kind in rows if kind == "virtual"]
    names = []
    for name, kind in rows:
        if kind != "table" or name.lower().startswith("sqlite_") or is_history_table(name):
            continue
        # shadow tables are typed 'shadow' when their module is loaded; by name otherwise
        if any(name.startswith(v + "_") for v in virtual):
            continue
        names.append(name)
    return sorted(names)


_IDENT = r'(?:"(?:[^"]|"")+"|`[^`]+`|\[[^\]]+\]|[A-Za-z_][\w$]*)'
_CHECK_IN = re.compile(
    rf"CHECK\s*\(\s*(?P<col>{_IDENT})\s+IN\s*\((?P<items>[^()]*)\)\s*\)", re.IGNORECASE
)
_LITERAL = re.compile(r"'((?:[^']|'')*)'|(-?\d+(?:\.\d+)?)|(NULL)", re.IGNORECASE)


def unquote_ident(text: str) -> str:
    if text[:1] in '"`[':
        return text[1:-1].replace('""', '"')
    return text


def check_lists(sql: str) -> dict[str, list[Any]]:
    """col -> values, for each ``CHECK (col IN (...))`` of a CREATE TABLE statement."""
    found: dict[str, list[Any]] = {}
    for m in _CHECK_IN.finditer(sql or ""):
        values: list[Any] = []
        for s, num, null in _LITERAL.findall(m.group("items")):
            if null:
                continue
            if num:
                values.append(float(num) if "." in num else int(num))
            else:
                values.append(s.replace("''", "'"))
        if values:
            found[unquote_ident(m.group("col")).lower()] = values
    return found


def read_table(conn: sqlite3.Connection, name: str) -> Table:
    sql = conn.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)
    ).fetchone()[0]
    columns = [
        Column(n, t or "", bool(nn), d, pk, hidden in (2, 3))
        for _, n, t, nn, d, pk, hidden in conn.execute(f"PRAGMA table_xinfo({q(name)})")
    ]
    pk_cols = tuple(c.name for c in sorted((c for c in columns if c.pk), key=lambda c: c.pk))
    without_rowid = bool(
        conn.execute("SELECT wr FROM pragma_table_list WHERE name = ?", (name,)).fetchone()[0]
    )
    # A single INTEGER primary key of a rowid table is the rowid itself unless SQLite made an
    # index for it (declared `INTEGER PRIMARY KEY DESC`, say): then index_list has origin 'pk'.
    indexes = conn.execute(f"PRAGMA index_list({q(name)})").fetchall()
    rowid_alias = None
    if len(pk_cols) == 1 and not without_rowid:
        col = next(c for c in columns if c.name == pk_cols[0])
        if col.decl.upper() == "INTEGER" and not any(r[3] == "pk" for r in indexes):
            rowid_alias = col.name

    fk_rows: dict[int, list[tuple[Any, ...]]] = {}
    for row in conn.execute(f"PRAGMA foreign_key_list({q(name)})"):
        fk_rows.setdefault(row[0], []).append(row)
    fks = []
    for _, rows in sorted(fk_rows.items()):
        rows.sort(key=lambda r: r[1])
        parent = rows[0][2]
        actual = conn.execute(  # table names are case-insensitive; use the parent's own spelling
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ? COLLATE NOCASE",
            (parent,),
        ).fetchone()
        parent = actual[0] if actual else parent
        to = tuple(r[4] for r in rows)
        if any(t is None for t in to):
            to = _primary_key(conn, parent)
        fks.append(ForeignKey(parent, tuple(r[3] for r in rows), to))

    unique_sets: list[tuple[str, ...]] = []
    if pk_cols:
        unique_sets.append(pk_cols)
    for _, index, unique, _origin, _partial in indexes:
        if not unique:
            continue
        info = conn.execute(f"PRAGMA index_info({q(index)})").fetchall()
        cols = tuple(r[2] for r in sorted(info))
        if cols and all(c is not None for c in cols) and cols not in unique_sets:
            unique_sets.append(cols)
    return Table(name, sql, columns, fks, unique_sets, check_lists(sql), rowid_alias, without_rowid)


def _primary_key(conn: sqlite3.Connection, table: str) -> tuple[str, ...]:
    rows = conn.execute(f"PRAGMA table_info({q(table)})").fetchall()
    return tuple(r[1] for r in sorted((r for r in rows if r[5]), key=lambda r: r[5]))


def fill_order(tables: dict[str, Table]) -> tuple[list[str], set[tuple[str, int]]]:
    """Parents first. Returns the order and the (table, fk index) edges that point forward."""
    deps = {
        t: {fk.parent for fk in tab.fks if fk.parent in tables and fk.parent != t}
        for t, tab in tables.items()
    }
    done: list[str] = []
    forward: set[tuple[str, int]] = set()
    left = set(tables)
    while left:
        ready = sorted(t for t in left if deps[t] <= set(done))
        if not ready:  # a cycle: break it where the fewest NOT NULL edges point forward

            def cost(t: str) -> tuple[int, int, str]:
                tab = tables[t]
                edges = [fk for fk in tab.fks if fk.parent in left and fk.parent != t]
                hard = sum(1 for fk in edges if _fk_notnull(tab, fk))
                return hard, len(edges), t

            pick = min(left, key=cost)
            for i, fk in enumerate(tables[pick].fks):
                if fk.parent in left and fk.parent != pick:
                    forward.add((pick, i))
            ready = [pick]
        t = ready[0]
        done.append(t)
        left.remove(t)
    return done, forward


def _fk_notnull(table: Table, fk: ForeignKey) -> bool:
    return any((c := table.column(name)) is not None and c.notnull for name in fk.columns)


# --------------------------------------------------------------------------------------
# Values


def words(name: str) -> list[str]:
    """``providerAccountId`` / ``icon_repository_id`` -> lowercase words."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name)
    return [w.lower() for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def sql_default_text(default: str | None) -> str | None:
    """The string a DEFAULT 'literal' stands for, or None."""
    if default and len(default) >= 2 and default[0] == default[-1] == "'":
        return default[1:-1].replace("''", "'")
    return None


def is_boolean(col: Column) -> bool:
    if col.affinity not in ("INTEGER", "NUMERIC") or col.pk:
        return False
    if "BOOL" in col.decl.upper():
        return True
    if (col.default or "").strip().lower() in ("false", "true"):
        return True
    w = words(col.name)
    if not w or w[-1] in TIME_WORDS:
        return False
    return w[0] in BOOL_PREFIXES or w[-1] in BOOL_WORDS


def is_time(col: Column) -> bool:
    w = words(col.name)
    decl = col.decl.upper()
    return bool(w) and (w[-1] in TIME_WORDS or "DATE" in decl or "TIME" in decl)


def json_like(col: Column, n: int) -> str | None:
    text = sql_default_text(col.default)
    if text is not None and text.strip()[:1] in ("{", "["):
        try:
            shape = json.loads(text)
        except ValueError:
            shape = {}
        return json.dumps(_with_serial(shape, n))
    if (words(col.name) or [""])[-1] in JSON_WORDS and col.affinity in ("TEXT", "BLOB"):
        return json.dumps({"seq": n, "name": f"{col.name}-{n}"})
    return None


def _with_serial(shape: Any, n: int) -> Any:
    """The default's JSON with the serial put in its innermost object (or list)."""
    if isinstance(shape, dict):
        if len(shape) == 1:
            (key, inner), *_ = shape.items()
            if isinstance(inner, dict | list):
                return {key: _with_serial(inner, n)}
        return {**shape, "seq": n}
    if isinstance(shape, list):
        return [*shape, n]
    return {"value": shape, "seq": n}


def spread(table: Table, col: Column, n: int) -> int:
    """The serial moved into a range of its own per (table, column).

    Columns of the same name in two tables (item.x_offset, item_layout.x_offset) must not
    hold equal values by accident: a migration that copies values from one to the other is
    judged on whether it really copied them, not on the filler's coincidences.
    """
    bucket = zlib.crc32(f"{table.name}.{col.name}".lower().encode()) % 9973
    return 1000 * (bucket + 1) + n


def free_value(table: Table, col: Column, row: int, rng: random.Random) -> Any:
    """A plausible value for a column no constraint pins down; distinct for distinct rows."""
    single_pk = col.pk and sum(1 for c in table.columns if c.pk) == 1
    n = row if single_pk else spread(table, col, row)
    w = words(col.name)
    wset = set(w)
    aff = col.affinity
    label = w[-2] if len(w) >= 2 and w[-1] == "id" else (w[-1] if w else "value")
    if aff == "INTEGER":
        if is_time(col):
            return BASE_TIME + 86_400 * row + n % 86_400
        return n
    if aff == "REAL":
        return n + 0.5
    if aff == "NUMERIC":
        if is_time(col):
            return _iso(row, n % 86_400)
        return n * 10
    if aff == "BLOB" and col.decl:
        return f"{table.name}:{col.name}:{n}:{rng.getrandbits(32):08x}".encode()
    # TEXT, or no declared type: mostly by the last word of the name
    last = w[-1] if w else ""
    if (js := json_like(col, n)) is not None:
        return js
    if is_time(col):
        return _iso(row, n % 86_400)
    if "email" in wset:
        return f"{FIRST_NAMES[n % len(FIRST_NAMES)].lower()}{n}@example.com"
    if last in SECRET_WORDS or "".join(w) in SECRET_WORDS or "".join(w[-2:]) in SECRET_WORDS:
        return f"{n:04x}{rng.getrandbits(144):036x}"
    if w == ["id"] or single_pk:
        return f"{words(table.name)[-1] if table.name else 'row'}-{row}"
    if last in ("id", "uuid", "key", "slug", "code", "short", "identifier"):
        return f"{label}-{n}"
    if last in URL_WORDS or last in {"image", "avatar", "logo", "favicon", "icon"}:
        if wset & {"icon", "image", "logo", "favicon", "avatar", "background"}:
            return f"https://cdn.example.com/{table.name.lower()}/{label}-{n}.png"
        return f"https://{WORDS[n % len(WORDS)]}.example.com/{table.name.lower()}/{n}"
    if last in ("color", "colour"):
        return f"#{(n * 2654435761 + rng.getrandbits(8)) % 0xFFFFFF:06x}"
    if last in ("path", "file", "dir", "directory", "folder", "cwd"):
        return f"/data/{table.name.lower()}/{label}-{n}"
    if last in ("username", "login", "handle", "hostname", "host"):
        return f"{label}{n}.example.com" if last.startswith("host") else f"user{n}"
    if last in ("name", "title", "label", "nickname"):
        return f"{rng.choice(WORDS).capitalize()} {' '.join(w[:-1]) or table.name} {n}"
    if last in TEXT_WORDS:
        return f"{label.capitalize()} {n} of {table.name}: {rng.choice(WORDS)} {rng.choice(WORDS)}."
    return f"{label}-{n}"


def _iso(day: int, seconds: int = 0) -> str:
    stamp = dt.datetime.fromtimestamp(BASE_TIME + 86_400 * day + seconds, tz=dt.UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


# --------------------------------------------------------------------------------------
# Filling


@dataclass
class FillReport:
    rows: dict[str, int] = field(default_factory=dict)  # rows inserted per table
    problems: list[str] = field(default_factory=list)  # rows given up, tables skipped, and why

    def empty_tables(self, conn: sqlite3.Connection) -> list[str]:
        return [
            t for t in self.rows if not conn.execute(f"SELECT 1 FROM {q(t)} LIMIT 1").fetchone()
        ]


@dataclass
class _Slot:
    """Columns that take their values together from a short list of options."""

    columns: tuple[str, ...]
    options: list[tuple[Any, ...]]
    kind: str  # "fk", "check", "bool"; "self" and "pending" are filled in per row instead
    fk: ForeignKey | None = None


@dataclass
class _Fixup:
    table: Table
    fk: ForeignKey
    key: tuple[str, ...]  # columns that find the row again (rowid, or the primary key)
    key_values: tuple[Any, ...]


def fill(db_path: Path, rows_per_table: int = 3, seed: int = 0) -> dict[str, int]:
    """Insert `rows_per_table` plausible rows into every ordinary table; rows per table."""
    report = fill_report(db_path, rows_per_table, seed)
    for problem in report.problems:
        log.warning("fill %s: %s", db_path.name, problem)
    return report.rows


def fill_report(db_path: Path, rows_per_table: int = 3, seed: int = 0) -> FillReport:
    """As `fill`, with the rows given up and the tables skipped, each with its reason."""
    report = FillReport()
    with contextlib.closing(sqlite3.connect(db_path, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        names = fillable_tables(conn)
        tables = {name: read_table(conn, name) for name in names}
        order, forward = fill_order(tables)
        fixups: list[_Fixup] = []
        conn.execute("BEGIN IMMEDIATE")
        try:
            if any(_fk_notnull(tables[t], tables[t].fks[i]) for t, i in forward):
                conn.execute("PRAGMA defer_foreign_keys = ON")
            for name in order:
                table = tables[name]
                rng = random.Random(f"{seed}:{name}")
                pending = {fk for i, fk in enumerate(table.fks) if (name, i) in forward}
                report.rows[name] = _fill_table(
                    conn, table, rows_per_table, rng, pending, fixups, report.problems
                )
            _apply_fixups(conn, fixups, report.problems)
            _drop_violations(conn, report)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    return report


def _parent_rows(conn: sqlite3.Connection, fk: ForeignKey) -> list[tuple[Any, ...]]:
    cols = ", ".join(q(c) for c in fk.parent_columns)
    not_null = " AND ".join(f"{q(c)} IS NOT NULL" for c in fk.parent_columns)
    sql = f"SELECT DISTINCT {cols} FROM {q(fk.parent)} WHERE {not_null}"
    try:
        rows = conn.execute(f"{sql} ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:
        try:  # WITHOUT ROWID
            order = ", ".join(str(i + 1) for i in range(len(fk.parent_columns)))
            rows = conn.execute(f"{sql} ORDER BY {order}").fetchall()
        except sqlite3.OperationalError:
            return []  # no such table or column
    return [tuple(r) for r in rows]


def _existing_keys(conn: sqlite3.Connection, table: Table) -> dict[tuple[str, ...], set[Any]]:
    seen: dict[tuple[str, ...], set[Any]] = {}
    for cols in table.unique_sets:
        sql = f"SELECT {', '.join(q(c) for c in cols)} FROM {q(table.name)}"
        seen[cols] = {tuple(r) for r in conn.execute(sql)}
    return seen


def _slots(
    conn: sqlite3.Connection,
    table: Table,
    pending: set[ForeignKey],
    problems: list[str],
) -> tuple[list[_Slot], dict[str, Any], bool]:
    """The option lists of the constrained columns; fixed values; whether the table is fillable."""
    slots: list[_Slot] = []
    fixed: dict[str, Any] = {}
    taken: set[str] = set()
    ok = True
    for fk in table.fks:
        cols = tuple(c for c in fk.columns)
        if any(c.lower() in taken for c in cols):
            continue  # a column in two foreign keys: the first one decides
        taken |= {c.lower() for c in cols}
        notnull = _fk_notnull(table, fk)
        parent_exists = conn.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (fk.parent,)
        ).fetchone()
        if not parent_exists:  # even a NULL key fails: "no such table: main.<parent>"
            problems.append(
                f"{table.name}: not filled: foreign key ({', '.join(cols)}) -> {fk.parent}, "
                "a table that does not exist; with foreign keys ON SQLite refuses every INSERT"
            )
            ok = False
            continue
        if fk.parent.lower() == table.name.lower():
            slots.append(_Slot(cols, [], "self", fk))
            continue
        if fk in pending:  # a cycle's forward edge: filled in at the end
            slots.append(_Slot(cols, [], "pending", fk))
            continue
        options = _parent_rows(conn, fk)
        if options:
            slots.append(_Slot(cols, options, "fk", fk))
        elif not notnull:
            for c in cols:
                fixed[c] = None
        else:
            problems.append(
                f"{table.name}: not filled: NOT NULL foreign key ({', '.join(cols)}) -> "
                f"{fk.parent}({', '.join(fk.parent_columns)}), and {fk.parent} has no rows"
            )
            ok = False
    for col in table.columns:
        if col.generated or col.name.lower() in taken:
            continue
        values = table.checks.get(col.name.lower())
        if values:
            slots.append(_Slot((col.name,), [(v,) for v in values], "check"))
            taken.add(col.name.lower())
        elif is_boolean(col):
            slots.append(_Slot((col.name,), [(1,), (0,)], "bool"))
            taken.add(col.name.lower())
    return slots, fixed, ok


def _fill_table(
    conn: sqlite3.Connection,
    table: Table,
    rows: int,
    rng: random.Random,
    pending: set[ForeignKey],
    fixups: list[_Fixup],
    problems: list[str],
) -> int:
    slots, fixed, ok = _slots(conn, table, pending, problems)
    if not ok:
        return 0
    seen = _existing_keys(conn, table)
    existing = conn.execute(f"SELECT count(*) FROM {q(table.name)}").fetchone()[0]
    max_rowid = 0
    if not table.without_rowid:
        max_rowid = conn.execute(f"SELECT coalesce(max(rowid), 0) FROM {q(table.name)}").fetchone()[
            0
        ]
    n0 = existing + 1
    k = 0  # candidate serial, local to this fill
    inserted = 0
    insertable = [c for c in table.columns if not c.generated]
    chooser = _Chooser([len(slot.options) for slot in _choice_slots(slots)])
    for row in range(rows):
        errors: list[str] = []
        skips = 0
        while len(errors) < MAX_TRIES and skips < MAX_SKIPS:
            n = n0 + k
            combo = chooser.next()
            values = _candidate(conn, table, slots, fixed, insertable, k, n, max_rowid, rng, combo)
            k += 1
            if _duplicate(table, seen, values):
                skips += 1
                continue
            cols = [c.name for c in insertable]
            sql = (
                f"INSERT INTO {q(table.name)} ({', '.join(q(c) for c in cols)}) "
                f"VALUES ({', '.join('?' for _ in cols)})"
            )
            conn.execute("SAVEPOINT fill_row")
            try:
                cur = conn.execute(sql, [values[c] for c in cols])
            except sqlite3.Error as exc:
                conn.execute("ROLLBACK TO fill_row")
                conn.execute("RELEASE fill_row")
                if not isinstance(exc, sqlite3.IntegrityError):  # the schema, not the values
                    problems.append(f"{table.name}: not filled ({inserted} row(s) in): {exc}")
                    return inserted
                errors.append(str(exc))
                continue
            conn.execute("RELEASE fill_row")
            chooser.took(combo)
            inserted += 1
            for key_cols in table.unique_sets:
                seen[key_cols].add(tuple(values.get(c) for c in key_cols))
            for slot in slots:
                if slot.kind == "pending" and slot.fk is not None:
                    if table.without_rowid:
                        pk = next(s for s in table.unique_sets)
                        key_values = tuple(values[c] for c in pk)
                    else:
                        pk, key_values = ("rowid",), (cur.lastrowid,)
                    fixups.append(_Fixup(table, slot.fk, pk, key_values))
            break
        else:
            constrained = [c for slot in _choice_slots(slots) for c in slot.columns]
            why = (
                errors[-1]
                if errors
                else (
                    f"every value combination of ({', '.join(constrained)}) is taken "
                    "or makes a duplicate key"
                )
            )
            tried = f"{len(errors)} INSERT(s), {skips} duplicate candidate(s)"
            problems.append(f"{table.name}: row {row + 1} of {rows} given up after {tried}: {why}")
    return inserted


def _choice_slots(slots: list[_Slot]) -> list[_Slot]:
    return [slot for slot in slots if slot.kind not in ("self", "pending")]


class _Chooser:
    """Combinations of the slots' options: each unused one once, the least used options first.

    Greedy balance: the next combination is the untried one whose options have been taken the
    fewest times so far (ties: the lowest mixed-radix number). Children spread over their
    parents, booleans alternate, and composite keys made of slots stay distinct until every
    combination has been tried (then they repeat and the uniqueness check decides).
    """

    CAP = 4096  # combinations looked at per choice

    def __init__(self, sizes: list[int]) -> None:
        self.sizes = sizes
        self.usage: list[dict[int, int]] = [{} for _ in sizes]
        self.tried: set[int] = set()
        total = 1
        for size in sizes:
            total *= size
        self.total = min(total, self.CAP)

    def _digits(self, c: int) -> tuple[int, ...]:
        digits = []
        for size in self.sizes:
            c, d = divmod(c, size)
            digits.append(d)
        return tuple(digits)

    def next(self) -> tuple[int, ...]:
        if len(self.tried) >= self.total:
            self.tried.clear()
        best: tuple[int, int] | None = None
        for c in range(self.total):
            if c in self.tried:
                continue
            digits = self._digits(c)
            score = sum(self.usage[j].get(d, 0) for j, d in enumerate(digits))
            if best is None or score < best[0]:
                best = (score, c)
                if score == 0:
                    break
        assert best is not None
        self.tried.add(best[1])
        return self._digits(best[1])

    def took(self, combo: tuple[int, ...]) -> None:
        for j, d in enumerate(combo):
            self.usage[j][d] = self.usage[j].get(d, 0) + 1


def _candidate(
    conn: sqlite3.Connection,
    table: Table,
    slots: list[_Slot],
    fixed: dict[str, Any],
    insertable: list[Column],
    k: int,
    n: int,
    max_rowid: int,
    rng: random.Random,
    combo: tuple[int, ...],
) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for col in insertable:
        if col.name == table.rowid_alias:
            values[col.name] = max_rowid + 1 + k
        else:
            values[col.name] = free_value(table, col, n, rng)
    values.update(fixed)
    for slot, pick in zip(_choice_slots(slots), combo, strict=True):
        values.update(zip(slot.columns, slot.options[pick], strict=True))
    for slot in slots:
        assert slot.fk is not None or slot.kind not in ("self", "pending")
        if slot.kind == "pending" and slot.fk is not None:
            placeholder = _placeholder(table, slot.fk, values)
            values.update(zip(slot.columns, placeholder, strict=True))
        elif slot.kind == "self" and slot.fk is not None:
            earlier = _parent_rows(conn, slot.fk)
            choice: tuple[Any, ...]
            if earlier:  # the row inserted last: a chain, every row another parent
                choice = earlier[-1]
            elif not _fk_notnull(table, slot.fk):
                choice = tuple(None for _ in slot.columns)
            else:  # the first row of an empty table points at itself
                choice = tuple(values.get(c) for c in slot.fk.parent_columns)
            values.update(zip(slot.columns, choice, strict=True))
    return values


def _placeholder(table: Table, fk: ForeignKey, values: dict[str, Any]) -> tuple[Any, ...]:
    """A forward edge: NULL when allowed, else a value the fixup replaces before COMMIT."""
    if not _fk_notnull(table, fk):
        return tuple(None for _ in fk.columns)
    return tuple(values[c] for c in fk.columns)


def _duplicate(table: Table, seen: dict[tuple[str, ...], set[Any]], values: dict[str, Any]) -> bool:
    for cols in table.unique_sets:
        key = tuple(values.get(c) for c in cols)
        if all(v is not None for v in key) and key in seen[cols]:
            return True
    return False


def _apply_fixups(conn: sqlite3.Connection, fixups: list[_Fixup], problems: list[str]) -> None:
    """Point each cycle's forward edge at a parent row, now that every table is filled."""
    for i, fix in enumerate(fixups):
        options = _parent_rows(conn, fix.fk)
        if not options:
            if _fk_notnull(fix.table, fix.fk):
                problems.append(
                    f"{fix.table.name}: forward key ({', '.join(fix.fk.columns)}) -> "
                    f"{fix.fk.parent}: no parent row to point at"
                )
            continue
        choice = options[i % len(options)]
        sets = ", ".join(f"{q(c)} = ?" for c in fix.fk.columns)
        where = " AND ".join(f"{q(c)} = ?" for c in fix.key)
        conn.execute("SAVEPOINT fixup")
        try:
            conn.execute(
                f"UPDATE {q(fix.table.name)} SET {sets} WHERE {where}", [*choice, *fix.key_values]
            )
        except sqlite3.Error as exc:
            conn.execute("ROLLBACK TO fixup")
            problems.append(f"{fix.table.name}: forward key -> {fix.fk.parent} left as is: {exc}")
        conn.execute("RELEASE fixup")


def _drop_violations(conn: sqlite3.Connection, report: FillReport) -> None:
    """Deferred keys still dangling at the end: delete those rows rather than fail the fill."""
    for _ in range(5):
        bad = []
        for table in report.rows:
            try:  # a broken key (foreign key mismatch) makes the check itself fail
                bad += conn.execute(f"PRAGMA foreign_key_check({q(table)})").fetchall()
            except sqlite3.OperationalError:
                continue
        if not bad:
            return
        for table, rowid, parent, _fk in bad:
            if rowid is None:
                continue
            conn.execute(f"DELETE FROM {q(table)} WHERE rowid = ?", (rowid,))
            report.rows[table] = report.rows.get(table, 1) - 1
            report.problems.append(f"{table}: row {rowid} deleted: no row in {parent} for it")


def non_null_counts(conn: sqlite3.Connection, tables: Sequence[str]) -> Iterator[tuple[str, int]]:
    """("table.column", non-NULL values) for every column of the given tables."""
    for t in tables:
        cols = [r[1] for r in conn.execute(f"PRAGMA table_info({q(t)})")]
        if not cols:
            continue
        counts = conn.execute(
            f"SELECT {', '.join(f'count({q(c)})' for c in cols)} FROM {q(t)}"
        ).fetchone()
        for c, n in zip(cols, counts, strict=True):
            yield f"{t}.{c}", int(n)
