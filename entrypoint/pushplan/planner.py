"""Push mode's plan: the changes that turn the live schema into the declared one.

Both schemas are real SQLite schemas (the declared one loaded into memory), read with the
same pragmas (`schema.read_schema`) plus what pragmas do not show (CHECK clauses,
AUTOINCREMENT). Per table:

- declared, not live: CREATE TABLE (the declared statement);
- live, not declared: DROP TABLE, unless push ignores it (`sqlite_*`, `_litestream_*`,
  `libsql_*`, `_cf_*` and the history tables, as drizzle-kit push does);
- renamed: only when the operator says so (`--rename old=new`, `--rename t.old=new`), never
  guessed; ALTER TABLE ... RENAME;
- new columns that ALTER TABLE ADD COLUMN can take on a table with rows (nullable or with a
  literal default, not part of a key, not STORED generated): ADD COLUMN;
- anything else (type, NOT NULL, default, primary key, foreign keys, CHECK, UNIQUE, dropped
  columns): SQLite's generalized ALTER TABLE: create the declared table under a new name,
  copy the common columns, drop the old one, rename the new one, recreate indexes (and the
  views and triggers, which are dropped first and recreated last).

Every change that can lose data is counted on the live data (`Risk`): rows of a dropped
table, non-NULL values of a dropped column, values that do not convert to a new type,
NULLs under a new NOT NULL, duplicates under a new UNIQUE or primary key. Some can never be
applied without deleting rows (`fits` False), which push never does.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterable
from dataclasses import dataclass, field

from ..base.errors import UsageError
from ..base.ident import quote as q
from ..engine.sqltext import (
    check_clauses,
    column_default,
    column_definitions,
    generated_expression,
    rename_created_table,
    requalify,
)
from ..safety.schema import ForeignKey, Schema, Table, affinity, read_schema, unconvertible
from .future import Column, duplicate_groups, index_key, parent_rows, projection, rows_where

IGNORED_PREFIXES = ("sqlite_", "_litestream_", "libsql_", "_cf_")
REBUILD_PREFIX = "__litedeploy_new_"
# The defaults ALTER TABLE ADD COLUMN takes on a table with rows: a literal (after
# `normal_default`, which strips parentheses and folds case), optionally signed. Anything else
# (CURRENT_TIMESTAMP, a function, an operator) is refused: "Cannot add a column with
# non-constant default".
CONSTANT_DEFAULT = re.compile(
    r"[+-]? ?(?:\d+(?:\.\d*)?(?:e[+-]?\d+)?|\.\d+(?:e[+-]?\d+)?|0x[0-9a-f]+)"
    r"|'(?:[^']|'')*'|x'[0-9a-f]*'|null|true|false"
)


@dataclass(frozen=True)
class Rename:
    """`--rename old=new` (a table) or `--rename table.old=new` (a column of the declared table)."""

    table: str
    old: str
    new: str
    column: bool

    def __str__(self) -> str:
        return f"{self.table}.{self.old}={self.new}" if self.column else f"{self.old}={self.new}"


def parse_renames(values: Iterable[str]) -> list[Rename]:
    renames = []
    for value in values:
        left, eq, new = value.partition("=")
        table, dot, old = left.partition(".")
        if not eq or not new.strip() or not left.strip() or (dot and not (table and old)):
            raise UsageError(
                f"--rename {value!r} is not OLD=NEW or TABLE.OLD=NEW",
                hint="e.g. --rename products.name=title (a column) or --rename item=product",
            )
        if dot:
            renames.append(Rename(table.strip(), old.strip(), new.strip(), column=True))
        else:
            renames.append(Rename(table.strip(), table.strip(), new.strip(), column=False))
    return renames


@dataclass(frozen=True)
class Risk:
    """Data a change would lose, counted on the live database.

    `kind` is a finding's rule name, so `loss.canonical(kind)` is the loss it stands for
    (drop-table: lost-rows, drop-column and type-change: lost-values): the operator's
    `--allow` acknowledges a risk the way it acknowledges the same loss in migrate mode.
    """

    kind: str  # drop-table, drop-column, type-change, not-null-over-nulls, unique-over-duplicates,
    # add-not-null-without-default
    object: str
    count: int
    message: str
    fits: bool = True  # False: impossible without deleting rows; push refuses it regardless


@dataclass
class Change:
    """One step of the push, its statements and what it risks."""

    kind: str
    object: str
    detail: str
    statements: list[str] = field(default_factory=list)
    risks: list[Risk] = field(default_factory=list)

    @property
    def summary(self) -> str:
        return f"{self.kind} {self.object}" + (f": {self.detail}" if self.detail else "")


@dataclass
class PushPlan:
    """The changes in the order they run, and the live tables push leaves alone."""

    changes: list[Change]
    ignored: list[str]  # internal tables (history, sqlite_*, ...) push never touches
    # what the plan could not work out before writing (a count that failed): said, not refused
    warnings: list[str] = field(default_factory=list)
    # objects of the live database the declared schema does not cover, left as they are
    uncovered: list[str] = field(default_factory=list)

    @property
    def risks(self) -> list[Risk]:
        return [r for c in self.changes for r in c.risks]

    @property
    def statements(self) -> list[str]:
        return [s for c in self.changes for s in c.statements]


@dataclass(frozen=True)
class _Object:
    name: str
    table: str
    sql: str


def _objects(conn: sqlite3.Connection, kind: str) -> dict[str, _Object]:
    return {
        str(name).lower(): _Object(str(name), str(table), str(sql))
        for name, table, sql in conn.execute(
            "SELECT name, tbl_name, sql FROM sqlite_master WHERE type = ? AND sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite_%'",
            (kind,),
        )
    }


def ignored(name: str, history_tables: Iterable[str]) -> bool:
    low = name.lower()
    return low.startswith(IGNORED_PREFIXES) or low in {h.lower() for h in history_tables}


def normal_sql(sql: str) -> str:
    """Quotes dropped, whitespace collapsed, case folded: the same statement written two ways."""
    text = re.sub(r"[`\"\[\]]", "", sql)
    return re.sub(r"\s*([(),])\s*", r"\1", re.sub(r"\s+", " ", text)).strip().rstrip(";").lower()


def checks_of(sql: str) -> list[str]:
    """The CHECK clauses of a CREATE TABLE statement, normalised."""
    return sorted(normal_sql(c) for c in check_clauses(sql))


def plan_push(
    live: sqlite3.Connection,
    declared: sqlite3.Connection,
    renames: list[Rename],
    *,
    history_tables: Iterable[str],
    sync_triggers: bool,
    undeclared: Iterable[tuple[str, str]] = (),
) -> PushPlan:
    """The changes from `live` to `declared`. Only reads both.

    `sync_triggers`: the declared schema is complete (a schema.sql): views and triggers it
    lacks are dropped. Otherwise (a drizzle-kit snapshot, which records no triggers and only
    the views drizzle declares) those of the live database are left alone and listed.
    `undeclared`: (kind, name) of objects the migrations create and the declaration lacks.
    """
    planner = _Planner(live, declared, renames, list(history_tables), sync_triggers)
    return planner.plan(list(undeclared))


class _Planner:
    def __init__(
        self,
        live: sqlite3.Connection,
        declared: sqlite3.Connection,
        renames: list[Rename],
        history: list[str],
        sync_triggers: bool,
    ) -> None:
        self.live, self.declared, self.history = live, declared, history
        self.sync_triggers = sync_triggers
        special = _virtual_and_shadow(live)
        tables = _objects(live, "table")
        self.live_tables = {
            k: v for k, v in tables.items() if not ignored(v.name, history) and k not in special
        }
        self.kept = sorted(
            v.name for k, v in tables.items() if k not in self.live_tables and k not in special
        )
        shadows = _virtual_and_shadow(declared) - set(_virtual_tables(declared))
        self.want_tables = {
            k: v for k, v in _objects(declared, "table").items() if k not in shadows
        }
        self.special = special
        self.live_schema: Schema = read_schema(live, history)
        self.want_schema: Schema = read_schema(declared)
        self.table_renames, self.column_renames = self._check_renames(renames)
        # live tables renamed to another declared name: their own name, if still declared,
        # is a new table (`--rename incident=status_report` with a new `incident`)
        self.renamed_away = {v.lower() for v in self.table_renames.values()}
        self.warnings: list[str] = []
        self._carried_sql: dict[tuple[str, str], str] | None = None

    # --- renames -------------------------------------------------------------------------------

    def _check_renames(
        self, renames: list[Rename]
    ) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
        tables: dict[str, str] = {}  # declared name (lower) -> live name
        columns: dict[str, dict[str, str]] = {}  # declared table (lower) -> new col -> live col
        for r in renames:
            if not r.column:
                if r.old.lower() not in self.live_tables:
                    raise UsageError(f"--rename {r}: the database has no table {r.old}")
                if r.new.lower() not in self.want_tables:
                    raise UsageError(f"--rename {r}: the declared schema has no table {r.new}")
                if r.new.lower() in tables:
                    raise UsageError(f"--rename {r}: {r.new} is already renamed from another table")
                tables[r.new.lower()] = self.live_tables[r.old.lower()].name
        away = {v.lower() for v in tables.values()}
        for new in tables:
            if new in self.live_tables and new not in away:
                raise UsageError(
                    f"--rename {tables[new]}={self.want_tables[new].name}: the database already "
                    f"has a table {self.live_tables[new].name}",
                    hint=f"rename that one too (--rename {self.live_tables[new].name}=NEW), or "
                    "drop it with a migration first",
                )
        for r in renames:
            if not r.column:
                continue
            want = self.want_tables.get(r.table.lower())
            if want is None:
                raise UsageError(f"--rename {r}: the declared schema has no table {r.table}")
            live_name = tables.get(r.table.lower(), r.table)
            if r.table.lower() not in tables and (
                r.table.lower() not in self.live_tables or r.table.lower() in away
            ):
                raise UsageError(
                    f"--rename {r}: the database has no table {r.table} (the declared one is new)"
                )
            live_cols = {c.lower(): c for c in self._live_table(live_name).columns}
            want_cols = {c.lower(): c for c in self.want_schema[want.name].columns}
            if r.old.lower() not in live_cols:
                raise UsageError(f"--rename {r}: {live_name} has no column {r.old}")
            if r.new.lower() not in want_cols:
                raise UsageError(f"--rename {r}: the declared {want.name} has no column {r.new}")
            renames_of = columns.setdefault(want.name.lower(), {})
            if want_cols[r.new.lower()] in renames_of:
                raise UsageError(f"--rename {r}: {r.new} is already renamed from another column")
            renames_of[want_cols[r.new.lower()]] = live_cols[r.old.lower()]
        for table, renames_of in columns.items():
            live_name = tables.get(table, table)
            gone = {old.lower() for old in renames_of.values()}
            for new in renames_of:
                if new.lower() in {c.lower() for c in self._live_table(live_name).columns} - gone:
                    raise UsageError(
                        f"--rename {self.want_tables[table].name}.{renames_of[new]}={new}: "
                        f"{live_name} already has a column {new}",
                        hint=f"rename that one too ({self.want_tables[table].name}.{new}=OTHER)",
                    )
        return tables, columns

    def _live_table(self, name: str) -> Table:
        for key, table in self.live_schema.items():
            if key.lower() == name.lower():
                return table
        raise UsageError(f"the database has no table {name}")

    # --- the plan ------------------------------------------------------------------------------

    def plan(self, undeclared: list[tuple[str, str]]) -> PushPlan:
        creates, alters, fresh, drops = [], [], set(), []
        matched: set[str] = set()
        renames = self._table_renames()
        for key, want in self.want_tables.items():
            if want.sql.upper().lstrip().startswith("CREATE VIRTUAL"):
                if key not in self.special:  # created when missing, otherwise left alone
                    creates.append(
                        Change("create table", want.name, "virtual", [_statement(want.sql)])
                    )
                continue
            live_name = self._live_name(key)
            if live_name is None:
                creates.append(Change("create table", want.name, "", [_statement(want.sql)]))
                fresh.add(key)  # every declared index of it is created below
                continue
            matched.add(live_name.lower())
            change = self._table(want, live_name)
            if change is not None:
                alters.append(change)
                if change.kind == "rebuild table":
                    fresh.add(key)
        for key, live in self.live_tables.items():
            if key not in matched and key not in self.want_tables:
                rows = _count(self.live, f"SELECT count(*) FROM {q(live.name)}")  # noqa: S608
                risk = (
                    [Risk("drop-table", live.name, rows, f"drops {live.name} with {rows} row(s)")]
                    if rows
                    else []
                )
                drops.append(
                    Change(
                        "drop table",
                        live.name,
                        f"{rows} row(s)",
                        [f"DROP TABLE {q(live.name)};"],
                        risk,
                    )
                )
        structural = bool(drops or self.table_renames) or any(
            c.kind == "rebuild table" for c in alters
        )
        index_drops, index_creates = self._indexes(fresh)
        views_before, views_after = self._views_and_triggers(structural)
        changes = [
            *views_before,
            *index_drops,
            *renames,  # before the creates: a new table may take a renamed one's old name
            *creates,
            *alters,
            *drops,
            *index_creates,
            *views_after,
        ]
        return PushPlan(changes, self.kept, self.warnings, self._uncovered(undeclared))

    def _uncovered(self, undeclared: list[tuple[str, str]]) -> list[str]:
        """What push leaves alone that the declaration does not cover; a warning for what
        the migrations create and the live database lacks (push does not create it)."""
        virtual = [n for n in _virtual_tables(self.live) if n not in self.want_tables]
        names = {n.lower(): str(n) for (n,) in self.live.execute("SELECT name FROM sqlite_master")}
        shadows = sorted(self.special - set(_virtual_tables(self.live)))
        out = [
            f"virtual table {names[n]}"
            + (f" (and its {len(own)} shadow table(s))" if (own := _shadows(n, shadows)) else "")
            for n in virtual
        ]
        if not self.sync_triggers:
            for kind in ("view", "trigger"):
                out += [f"{kind} {o.name}" for o in self._kept(kind).values()]
        missing = [f"{kind} {name}" for kind, name in undeclared if name.lower() not in names]
        if missing:
            self.warnings.append(
                f"the migrations create {', '.join(missing)}, which the declared schema does "
                "not have (drizzle-kit's snapshot records no hand-written SQL): push does not "
                "create them; migrate mode runs them, or pass --schema with a schema.sql that "
                "declares them"
            )
        return out

    def _kept(self, kind: str) -> dict[str, _Object]:
        """Views and triggers of the live database a snapshot does not declare, that push
        keeps (recreated around a rebuild): triggers only while their table stays, under its
        new name when it is renamed. Their SQL is what SQLite's own ALTER TABLE ... RENAME
        makes of it (`_carried`): a view of a renamed table or column names the new one."""
        declared = _objects(self.declared, kind)
        surviving = self._surviving_tables() | self.renamed_away
        kept = {
            k: v
            for k, v in _objects(self.live, kind).items()
            if k not in declared and (kind == "view" or v.table.lower() in surviving)
        }
        carried = self._carried()
        return {k: _Object(v.name, v.table, carried.get((kind, k), v.sql)) for k, v in kept.items()}

    def _carried(self) -> dict[tuple[str, str], str]:
        """The live views' and triggers' SQL after this plan's renames, as SQLite rewrites it.

        Push drops every view and trigger before it renames or rebuilds, so SQLite never
        carries a rename into them on the live file; recreating them from their old SQL would
        point a view at a table's old name (or at the new table that took it) and a trigger
        at a column that is gone. So the renames run first on a scratch copy of the schema (no
        rows, in memory) and the objects are read back from it. An object the scratch copy
        cannot carry keeps its SQL, and a warning names it.
        """
        if self._carried_sql is not None:
            return self._carried_sql
        self._carried_sql = {}
        if not self.table_renames and not self.column_renames:
            return self._carried_sql
        scratch = sqlite3.connect(":memory:")
        try:
            self._carried_sql, failed = _carry(self.live, scratch, self._rename_statements())
        finally:
            scratch.close()
        named = [
            f"{kind} {name}"
            for kind, name in failed
            if kind not in ("view", "trigger") or name.lower() not in _objects(self.declared, kind)
        ]
        if named:
            self.warnings.append(
                f"{', '.join(named)}: not carried through the renames (SQLite could not read "
                "it on a copy of the schema), recreated from its SQL as it was; check that it "
                "names the renamed tables and columns"
            )
        return self._carried_sql

    def _rename_statements(self) -> list[str]:
        """The plan's renames as statements: tables (as `_table_renames` does them), then
        columns, each through a temporary name so that a swap cannot collide."""
        tables = [sql for change in self._table_renames() for sql in change.statements]
        columns = []
        for table, mapping in self.column_renames.items():
            name = self.want_tables[table].name
            temp = {new: f"{REBUILD_PREFIX}{i}" for i, new in enumerate(mapping)}
            columns += [
                f"ALTER TABLE {q(name)} RENAME COLUMN {q(old)} TO {q(temp[new])};"
                for new, old in mapping.items()
            ]
            columns += [
                f"ALTER TABLE {q(name)} RENAME COLUMN {q(temp[new])} TO {q(new)};"
                for new in mapping
            ]
        return tables + columns

    def _live_name(self, key: str) -> str | None:
        """The live table a declared one (folded name) is made from; None: it is new."""
        if key in self.table_renames:
            return self.table_renames[key]
        if key in self.live_tables and key not in self.renamed_away:
            return self.live_tables[key].name
        return None

    def _table_renames(self) -> list[Change]:
        """ALTER TABLE ... RENAME for each `--rename old=new`; every one through a temporary
        name first when one's new name is another one's old name (a chain or a swap)."""
        pairs = [(old, self.want_tables[new].name) for new, old in self.table_renames.items()]

        def rename(old: str, new: str, to: str, detail: str = "") -> Change:
            sql = f"ALTER TABLE {q(old)} RENAME TO {q(to)};"
            return Change("rename table", f"{old} -> {new}", detail, [sql])

        if not {new.lower() for _, new in pairs} & self.renamed_away:
            return [rename(old, new, new) for old, new in pairs]
        temp = {new: f"{REBUILD_PREFIX}{new}" for _, new in pairs}
        return [rename(old, new, temp[new], "through a temporary name") for old, new in pairs] + [
            rename(temp[new], new, new) for _, new in pairs
        ]

    def _table(self, want: _Object, live_name: str) -> Change | None:
        """Rename, add or rebuild: what this table needs (None: nothing)."""
        target = self.want_schema[want.name]
        have = self._live_table(live_name)
        mapping = self.column_renames.get(want.name.lower(), {})  # new -> old
        renamed = _renamed(have, {old: new for new, old in mapping.items()})
        live_sql = self.live_tables[live_name.lower()].sql
        same_extras = checks_of(live_sql) == checks_of(want.sql) and _autoincrement(
            live_sql
        ) == _autoincrement(want.sql)
        rename_sql = [
            f"ALTER TABLE {q(want.name)} RENAME COLUMN {q(old)} TO {q(new)};"
            for new, old in mapping.items()
        ]
        if same_extras and _same(target, renamed):
            if not rename_sql:
                return None
            return Change("rename columns", want.name, _renames_text(mapping), rename_sql)
        added = [c for c in target.columns if c not in renamed.columns]
        if same_extras and self._add_only(want.name, target, renamed, added):
            fragments = column_definitions(want.sql)
            adds = [f"ALTER TABLE {q(want.name)} ADD {fragments[c.lower()]};" for c in added]
            detail = ", ".join(f"add {c}" for c in added)
            if mapping:
                detail = f"{_renames_text(mapping)}, {detail}"
            return Change("alter table", want.name, detail, [*rename_sql, *adds])
        return self._rebuild(want, live_name, target, renamed, mapping)

    def _add_only(self, name: str, target: Table, renamed: Table, added: list[str]) -> bool:
        if not added or any(c not in target.columns for c in renamed.columns):
            return False
        if any(target.columns[c] != renamed.columns[c] for c in renamed.columns):
            return False
        if target.uniques != renamed.uniques or target.foreign_keys != renamed.foreign_keys:
            return False
        stored = _generated(self.declared, name, stored_only=True)
        for c in added:
            col = target.columns[c]
            default = col.default
            if col.primary_key or any(c in u for u in target.uniques):
                return False
            if col.not_null and default is None:
                return False
            if default is not None and not CONSTANT_DEFAULT.fullmatch(default):
                return False  # ADD COLUMN takes constant defaults only
            if c.lower() in stored:
                return False  # "cannot add a STORED column"; a VIRTUAL one it takes
        return True

    def _rebuild(
        self, want: _Object, live_name: str, target: Table, renamed: Table, mapping: dict[str, str]
    ) -> Change:
        live_cols = self._sources(live_name, mapping)
        # the live columns (after the renames) by their names folded, as SQLite matches them:
        # a column declared as Name is the live name, only spelt differently
        kept = {c.lower(): col for c, col in renamed.columns.items()}
        declared_cols = {c.lower() for c in target.columns}
        generated = _generated(self.declared, want.name)
        copy_to, copy_from, risks, notes = [], [], [], []
        rows = _count(self.live, f"SELECT count(*) FROM {q(live_name)}")  # noqa: S608
        for col_name, col in target.columns.items():
            source = mapping.get(col_name) or live_cols.get(col_name.lower())
            if col_name.lower() in generated:
                if col_name.lower() not in kept:
                    notes.append(f"add {col_name}")  # SQLite computes it, nothing to copy
                continue
            if source is None:
                if col.not_null and col.default is None and not col.primary_key and rows:
                    risks.append(
                        Risk(
                            "add-not-null-without-default",
                            f"{want.name}.{col_name}",
                            rows,
                            f"adds {want.name}.{col_name} NOT NULL without a default to "
                            f"{rows} row(s): no value to give them",
                            fits=False,
                        )
                    )
                notes.append(f"add {col_name}")
                continue
            old = kept.get(col_name.lower())
            expr = q(source)
            if old is not None:
                if affinity(old.type) != affinity(col.type):
                    notes.append(f"{col_name}: {old.type or '(none)'} -> {col.type}")
                    lost = (
                        unconvertible(_values(self.live, live_name, source), affinity(col.type))
                        or 0
                    )
                    if lost:
                        risks.append(
                            Risk(
                                "type-change",
                                f"{want.name}.{col_name}",
                                lost,
                                f"{want.name}.{col_name}: {lost} value(s) do not convert from "
                                f"{old.type} to {col.type}",
                            )
                        )
                if col.not_null and not old.not_null:
                    notes.append(f"{col_name}: NOT NULL")
                    nulls = _count(
                        self.live,
                        f"SELECT count(*) FROM {q(live_name)} WHERE {q(source)} IS NULL",  # noqa: S608
                    )
                    if nulls and col.default is not None:
                        expr = f"coalesce({q(source)}, {col.default})"
                    if nulls:
                        risks.append(
                            Risk(
                                "not-null-over-nulls",
                                f"{want.name}.{col_name}",
                                nulls,
                                f"{want.name}.{col_name} becomes NOT NULL over {nulls} NULL(s)"
                                + (
                                    f", which become its default {col.default}"
                                    if col.default is not None
                                    else " and has no default to put there"
                                ),
                                fits=col.default is not None,
                            )
                        )
            copy_to.append(q(col_name))
            copy_from.append(expr)
        for old_name in renamed.columns:
            if old_name.lower() not in declared_cols:
                source = live_cols.get(old_name.lower(), old_name)  # renamed ones are declared
                values = _count(
                    self.live,
                    f"SELECT count({q(source)}) FROM {q(live_name)}",  # noqa: S608
                )
                notes.append(f"drop {source}")
                if values:
                    risks.append(
                        Risk(
                            "drop-column",
                            f"{live_name}.{source}",
                            values,
                            f"drops {live_name}.{source} with {values} non-NULL value(s)",
                        )
                    )
        # New keys, and kept ones over a column whose type changes: text '1' and '01' are
        # two values, and one under INTEGER affinity.
        retyped = self._retyped(want.name, live_name)

        def recounted(key: tuple[str, ...]) -> bool:
            return any(c.lower() in retyped for c in key)

        keys = [u for u in target.uniques if u not in renamed.uniques or recounted(u)]
        pk = tuple(c for c, col in target.columns.items() if col.primary_key)
        old_pk = tuple(c for c, col in renamed.columns.items() if col.primary_key)
        if pk and (pk != old_pk or recounted(pk)):
            keys.append(pk)
        for key in keys:
            if key not in renamed.uniques and key != old_pk:
                notes.append(f"UNIQUE ({', '.join(key)})")
            dupes = self._duplicates(
                want.name, live_name, [q(c) for c in key], None, f"{want.name}({', '.join(key)})"
            )
            if dupes:
                risks.append(
                    Risk(
                        "unique-over-duplicates",
                        f"{want.name}({', '.join(key)})",
                        dupes,
                        f"{want.name}({', '.join(key)}) becomes unique over {dupes} group(s) "
                        "of duplicated values",
                        fits=False,
                    )
                )
        if target.foreign_keys != renamed.foreign_keys:
            notes.append("foreign keys")
            risks += self._orphans(want.name, live_name, target, renamed)
        live_checks = checks_of(self.live_tables[live_name.lower()].sql)
        if checks_of(want.sql) != live_checks:
            notes.append("CHECK")
            for clause in check_clauses(want.sql):
                if normal_sql(clause) in live_checks:
                    continue
                text = " ".join(clause.split())
                failing = self._count(want.name, live_name, f"NOT ({clause})", f"CHECK({text})")
                if failing:
                    risks.append(
                        Risk(
                            "check-fails",
                            f"{want.name}: CHECK({text})",
                            failing,
                            f"{want.name}: {failing} row(s) fail the new CHECK({text})",
                            fits=False,
                        )
                    )
        notes.extend(_diff_columns(target, renamed))
        temp = f"{REBUILD_PREFIX}{want.name}"
        create = requalify(rename_created_table(want.sql, temp), want.name, temp)
        copy = (
            f"INSERT INTO {q(temp)} ({', '.join(copy_to)}) "  # noqa: S608
            f"SELECT {', '.join(copy_from)} FROM {q(want.name)};"  # renamed already, if it was
        )
        statements = [
            _statement(create),
            copy,
            f"DROP TABLE {q(want.name)};",
            f"ALTER TABLE {q(temp)} RENAME TO {q(want.name)};",
        ]
        counter = _sequence(self.live, live_name)
        if counter is not None and _autoincrement(want.sql):
            # DROP TABLE forgets the counter; ids of deleted rows must not come back
            name = want.name.replace("'", "''")
            statements.append(
                f"UPDATE sqlite_sequence SET seq = {counter} "  # noqa: S608
                f"WHERE name = '{name}' AND seq < {counter};"
            )
            notes.append(f"AUTOINCREMENT counter kept at {counter}")
        detail = ", ".join(dict.fromkeys(notes)) or "table definition"
        return Change("rebuild table", want.name, detail, statements, risks)

    def _indexes(self, fresh: set[str]) -> tuple[list[Change], list[Change]]:
        """(drops before the tables change, creates after). `fresh`: tables created or rebuilt,
        which have none of their indexes yet."""
        want = _objects(self.declared, "index")
        have = {
            k: v
            for k, v in _objects(self.live, "index").items()
            if not ignored(v.table, self.history)
        }
        live_table_of = {  # live table (folded) -> the declared table it becomes (folded)
            name.lower(): k for k in self.want_tables if (name := self._live_name(k)) is not None
        }
        drops, creates = [], []
        for key, index in have.items():
            table = live_table_of.get(index.table.lower())
            same = (
                key in want
                and normal_sql(want[key].sql)
                == normal_sql(
                    _renamed_index_sql(index.sql, self.column_renames.get(table or "", {}))
                )
                and table == want[key].table.lower()
            )
            # DROP TABLE takes the indexes of a dropped table, and of a rebuilt one those it
            # recreates; one the rebuild would lose silently is dropped where the plan shows it
            gone_with_table = table is None or (table in fresh and key in want)
            if not same and not gone_with_table:
                drops.append(Change("drop index", index.name, "", [f"DROP INDEX {q(index.name)};"]))
        for key, index in want.items():
            table = index.table.lower()
            live = have.get(key)
            same = (
                live is not None
                and normal_sql(index.sql)
                == normal_sql(_renamed_index_sql(live.sql, self.column_renames.get(table, {})))
                and table not in fresh
            )
            if same:
                continue
            change = Change(
                "create index", index.name, f"on {index.table}", [_statement(index.sql)]
            )
            live_name = self._live_name(table)
            if live_name is not None and re.search(r"\bUNIQUE\b", index.sql, re.IGNORECASE):
                terms, where = index_key(index.sql)
                label = f"{index.table}({', '.join(terms)})"
                dupes = self._duplicates(index.table, live_name, terms, where, label)
                if dupes:
                    change.risks.append(
                        Risk(
                            "unique-over-duplicates",
                            label,
                            dupes,
                            f"unique index {index.name} over {dupes} group(s) of "
                            "duplicated values" + (f" (where {where})" if where else ""),
                            fits=False,
                        )
                    )
            creates.append(change)
        return drops, creates

    def _sources(self, live_name: str, mapping: dict[str, str]) -> dict[str, str]:
        """A declared column's name (folded) -> the live column its values come from: the
        same name, or the old one of a rename (whose own name, when declared again, is new)."""
        gone = {old.lower() for old in mapping.values()}
        sources = {
            c.lower(): c for c in self._live_table(live_name).columns if c.lower() not in gone
        }
        sources.update({new.lower(): old for new, old in mapping.items()})
        return sources

    def _future(self, table: str, live_name: str, *also: str) -> str:
        """The declared table's rows as the push will leave them (`future.projection`)."""
        want = self.want_tables[table.lower()]
        return projection(want.name, live_name, self._future_columns(table, live_name), *also)

    def _future_columns(self, table: str, live_name: str) -> list[Column]:
        """Each declared column and the expression of its value after the push."""
        want = self.want_tables[table.lower()]
        target = self.want_schema[want.name]
        definitions = column_definitions(want.sql)
        sources = self._sources(live_name, self.column_renames.get(want.name.lower(), {}))
        columns = []
        for name, col in target.columns.items():
            definition = definitions.get(name.lower(), "")
            if (expr := generated_expression(definition)) is not None:
                columns.append(Column(name, expr, generated=True))
                continue
            default = column_default(definition)
            source = sources.get(name.lower())
            if source is None:
                expr = f"({default})" if default is not None else "NULL"
            elif default is not None and col.not_null:
                expr = f"coalesce({q(source)}, ({default}))"
            else:
                expr = q(source)
            columns.append(Column(name, expr))
        return columns

    def _duplicates(
        self, table: str, live_name: str, terms: list[str], where: str | None, key: str
    ) -> int:
        """Groups of duplicates a new key over `terms` would meet in the table's future rows;
        0, with a warning, when they cannot be counted (the push then fails on them, if any,
        and rolls back)."""
        name = self.want_tables[table.lower()].name
        try:
            if self._retyped(name, live_name):
                return self._converted_duplicates(name, live_name, terms, where)
            return duplicate_groups(self.live, self._future(name, live_name), name, terms, where)
        except sqlite3.Error as exc:
            self.warnings.append(
                f"could not count the duplicates {key} would meet ({exc}); if there are any, "
                "the push fails on them and is rolled back"
            )
            return 0

    def _retyped(self, table: str, live_name: str) -> set[str]:
        """The declared table's columns (folded) whose values come from a live column of
        another affinity: SQLite converts them as the rebuild copies them."""
        target = self.want_schema[self.want_tables[table.lower()].name]
        have = self._live_table(live_name)
        sources = self._sources(live_name, self.column_renames.get(table.lower(), {}))
        return {
            name.lower()
            for name, col in target.columns.items()
            if (source := sources.get(name.lower())) in have.columns
            and affinity(have.columns[source].type) != affinity(col.type)
        }

    def _converted_duplicates(
        self, table: str, live_name: str, terms: list[str], where: str | None
    ) -> int:
        """`_duplicates` where a column changes type: the future rows are stored, as the
        rebuild stores them, into a TEMP table of the declared columns (no constraints), so
        that SQLite itself converts each value; nothing of the database file is written, and
        the table is dropped again."""
        want = self.want_tables[table.lower()]
        target = self.want_schema[want.name]
        definitions = column_definitions(want.sql)
        scratch = f"{REBUILD_PREFIX}count"
        columns, stored = [], []
        for name, col in target.columns.items():
            definition = definitions.get(name.lower(), "")
            if generated_expression(definition) is not None:
                columns.append(definition)
            else:
                columns.append(f"{q(name)} {col.type}")
                stored.append(q(name))
        future = self._future(want.name, live_name)
        self.live.execute(f"CREATE TEMP TABLE {q(scratch)} ({', '.join(columns)})")
        try:
            self.live.execute(
                f"{future} INSERT INTO temp.{q(scratch)} ({', '.join(stored)}) "  # noqa: S608
                f"SELECT {', '.join(stored)} FROM {q(want.name)}"
            )
            converted = f"WITH {q(want.name)} AS (SELECT * FROM temp.{q(scratch)})"  # noqa: S608
            return duplicate_groups(self.live, converted, want.name, terms, where)
        finally:
            self.live.execute(f"DROP TABLE temp.{q(scratch)}")

    def _orphans(self, name: str, live_name: str, target: Table, renamed: Table) -> list[Risk]:
        """New foreign keys the rows would break (the push's check before COMMIT would fail):
        counted on the parent's rows as the push leaves them (a referenced column the same
        push adds holds its default), or, for a new parent, none (every reference breaks)."""

        def shape(fk: ForeignKey) -> tuple[object, ...]:
            return (fk.columns, fk.table_to.lower(), fk.columns_to)

        had = {shape(fk) for fk in renamed.foreign_keys}
        risks = []
        for fk in sorted(target.foreign_keys, key=str):
            if shape(fk) in had or fk.table_to.lower() not in self.want_tables:
                continue
            parent = self._live_name(fk.table_to.lower())
            parent_table = self.want_schema[self.want_tables[fk.table_to.lower()].name]
            to = fk.columns_to or tuple(
                c for c, col in parent_table.columns.items() if col.primary_key
            )
            condition = " AND ".join(f"{q(c)} IS NOT NULL" for c in fk.columns)
            also: list[str] = []
            if parent is not None:
                declared = {c.lower() for c in parent_table.columns}
                if len(to) != len(fk.columns) or any(t.lower() not in declared for t in to):
                    continue  # not a key SQLite can use: its own check reports the mismatch
                rows = q(name)  # a key of the table itself: its own future rows
                if fk.table_to.lower() != name.lower():
                    rows = q(f"{REBUILD_PREFIX}parent")
                    also = [
                        parent_rows(
                            f"{REBUILD_PREFIX}parent",
                            parent,
                            self._future_columns(fk.table_to, parent),
                        )
                    ]
                match = " AND ".join(
                    f"p.{q(t)} = {q(name)}.{q(c)}" for c, t in zip(fk.columns, to, strict=True)
                )
                condition += f" AND NOT EXISTS (SELECT 1 FROM {rows} AS p WHERE {match})"  # noqa: S608
            label = f"{name}({', '.join(fk.columns)}) -> {fk.table_to}({', '.join(to)})"
            if orphans := self._count(name, live_name, condition, label, also):
                risks.append(
                    Risk(
                        "foreign-key-orphans",
                        label,
                        orphans,
                        f"{label}: {orphans} row(s) would reference no parent",
                        fits=False,
                    )
                )
        return risks

    def _count(
        self, table: str, live_name: str, condition: str, what: str, also: list[str] | None = None
    ) -> int:
        """The table's future rows matching `condition`; 0, with a warning, when they cannot
        be counted (the push then fails on them, if any, and rolls back)."""
        try:
            future = self._future(table, live_name, *(also or []))
            return rows_where(self.live, future, table, condition)
        except sqlite3.Error as exc:
            self.warnings.append(
                f"could not count the rows {what} would refuse ({exc}); if there are any, the "
                "push fails on them and is rolled back"
            )
            return 0

    def _views_and_triggers(self, structural: bool) -> tuple[list[Change], list[Change]]:
        """Views (and triggers of a schema.sql) synced; all dropped and recreated around a
        rebuild, so no view or trigger points at a table mid-rebuild."""
        before: list[Change] = []
        after: list[Change] = []
        for kind in ("view", "trigger"):
            have = _objects(self.live, kind)
            want = _objects(self.declared, kind)
            if not self.sync_triggers:
                want.update(self._kept(kind))
            for key, obj in have.items():
                if (
                    structural
                    or key not in want
                    or normal_sql(want[key].sql) != normal_sql(obj.sql)
                ):
                    before.append(
                        Change(
                            f"drop {kind}", obj.name, "", [f"DROP {kind.upper()} {q(obj.name)};"]
                        )
                    )
            dropped = {c.object.lower() for c in before if c.kind == f"drop {kind}"}
            for key, obj in want.items():
                if key not in have or key in dropped:
                    after.append(Change(f"create {kind}", obj.name, "", [_statement(obj.sql)]))
        return before, after

    def _surviving_tables(self) -> set[str]:
        return {k.lower() for k in self.want_tables}


_UNRESOLVED = re.compile(r"error in (view|trigger) (.+?): ")


def _carry(
    live: sqlite3.Connection, scratch: sqlite3.Connection, renames: list[str]
) -> tuple[dict[tuple[str, str], str], list[tuple[str, str]]]:
    """Run `renames` on a rowless copy of the live schema; the views' and triggers' SQL after
    them, by (kind, folded name), and the (kind, name) of those that could not be carried."""
    shadows = _virtual_and_shadow(live) - set(_virtual_tables(live))
    rows = live.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE "
        "'sqlite_%' AND type IN ('table', 'view', 'trigger') ORDER BY type = 'trigger', "
        "type = 'view', rowid"
    ).fetchall()
    failed: list[tuple[str, str]] = []
    for kind, name, sql in rows:
        if str(name).lower() in shadows:
            continue  # its virtual table makes it
        try:
            scratch.execute(sql)
        except sqlite3.Error:
            if kind == "table":  # a virtual table whose module this SQLite lacks: its columns
                columns = [str(r[1]) for r in live.execute(f"PRAGMA table_info({q(name)})")]
                scratch.execute(f"CREATE TABLE {q(name)} ({', '.join(map(q, columns))})")
            else:
                failed.append((kind, name))
    for statement in renames:
        while True:
            try:
                scratch.execute(statement)
                break
            except sqlite3.OperationalError as exc:
                # SQLite re-reads every view and trigger on a rename and refuses one that no
                # longer resolves; leave that one behind (named) and carry the others.
                unresolved = _UNRESOLVED.search(str(exc))
                if unresolved is None:
                    return {}, [*failed, ("view or trigger", "naming them")]
                kind, name = unresolved.groups()
                scratch.execute(f"DROP {kind.upper()} {q(name)}")
                failed.append((kind, name))
    carried = {
        (str(kind), str(name).lower()): str(sql)
        for kind, name, sql in scratch.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE type IN ('view', 'trigger')"
        )
    }
    return carried, failed


def _virtual_and_shadow(conn: sqlite3.Connection) -> set[str]:
    """Virtual tables (FTS, R*Tree) and their shadow tables: push leaves them alone."""
    return {
        str(name).lower()
        for name, kind in conn.execute(
            "SELECT name, type FROM pragma_table_list WHERE schema = 'main'"
        )
        if kind in ("virtual", "shadow")
    }


def _shadows(virtual: str, shadows: list[str]) -> list[str]:
    """The shadow tables of a virtual table (FTS5's `<name>_data`, `<name>_idx`, ...)."""
    return [s for s in shadows if s.startswith(f"{virtual}_")]


def _virtual_tables(conn: sqlite3.Connection) -> list[str]:
    return [
        str(name).lower()
        for (name,) in conn.execute(
            "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'virtual'"
        )
    ]


def _statement(sql: str) -> str:
    sql = sql.strip()
    return sql if sql.endswith(";") else sql + ";"


def _autoincrement(sql: str) -> bool:
    return "AUTOINCREMENT" in sql.upper()


def _same(want: Table, have: Table) -> bool:
    return (
        want.columns == have.columns
        and want.uniques == have.uniques
        and want.foreign_keys == have.foreign_keys
    )


def _renamed(table: Table, old_to_new: dict[str, str]) -> Table:
    """The live table as it is after the declared column renames (and without its indexes)."""

    def name(c: str) -> str:
        return old_to_new.get(c, c)

    return Table(
        columns={name(c): col for c, col in table.columns.items()},
        indexes={},
        uniques={tuple(name(c) for c in u) for u in table.uniques},
        foreign_keys={
            ForeignKey(
                tuple(name(c) for c in fk.columns),
                fk.table_to,
                fk.columns_to,
                fk.on_delete,
                fk.on_update,
            )
            for fk in table.foreign_keys
        },
    )


def _renames_text(mapping: dict[str, str]) -> str:
    return ", ".join(f"rename {old} -> {new}" for new, old in mapping.items())


def _diff_columns(want: Table, have: Table) -> list[str]:
    notes = []
    kept = {c.lower(): col for c, col in have.columns.items()}
    for c, col in want.columns.items():
        old = kept.get(c.lower())
        if old is None:
            continue
        if old.default != col.default:
            notes.append(f"{c}: default {old.default} -> {col.default}")
        if old.primary_key != col.primary_key:
            notes.append(f"{c}: primary key")
        if old.not_null and not col.not_null:
            notes.append(f"{c}: nullable")
    return notes


def _generated(conn: sqlite3.Connection, table: str, *, stored_only: bool = False) -> set[str]:
    """The table's generated columns (hidden 2: VIRTUAL, 3: STORED), folded."""
    kinds = (3,) if stored_only else (2, 3)
    return {
        str(r[1]).lower()
        for r in conn.execute("SELECT * FROM pragma_table_xinfo(?)", (table,))
        if r[6] in kinds
    }


def _renamed_index_sql(sql: str, mapping: dict[str, str]) -> str:
    """An index's SQL with the live column names replaced by their declared new names."""
    for new, old in mapping.items():
        sql = re.sub(rf"(?<![\w$]){re.escape(old)}(?![\w$])", new, sql)
    return sql


def _sequence(conn: sqlite3.Connection, table: str) -> int | None:
    """The table's AUTOINCREMENT counter, when it has one."""
    try:
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = ?", (table,)).fetchone()
    except sqlite3.OperationalError:  # no AUTOINCREMENT table in this database at all
        return None
    return int(row[0]) if row and row[0] is not None else None


def _count(conn: sqlite3.Connection, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


def _values(conn: sqlite3.Connection, table: str, column: str) -> list[object]:
    sql = f"SELECT {q(column)} FROM {q(table)} WHERE {q(column)} IS NOT NULL"  # noqa: S608
    return [r[0] for r in conn.execute(sql)]
