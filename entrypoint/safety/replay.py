"""One model of what pending migrations do: the schema, where values go, and the rows.

`Replay` walks the pending statements in order. Before each statement it can say what the
schema is *at that statement* (an in-memory database that starts with the live schema and
runs every DDL statement), and it keeps two pictures of the data up to date:

- `Lineage`: where each value of the database before the migrations can be found now, as
  (table, column) locations, exact (copied as is) or derived (computed from it), plus the
  identity links that tie a moved row to its new home (`userSettings.userId = user.id`).
  The findings use it to tell a dropped column from one whose values were copied first;
  the rehearsal's judge uses it to know where to look for each value on the copy.
- `Rows` (only with a live connection): for each table, a SELECT over the live database
  that yields its rows as they will be at this statement: columns added earlier in the
  pending range appear with NULL or their default, renamed ones under their new name,
  rebuilt tables as their copy's SELECT. The findings count through it, read-only, so a
  count never runs against a column that does not exist yet. When a statement cannot be
  modelled the table's rows become unknown (None), and counts say "unknown".
"""

from __future__ import annotations

import contextlib
import re
import sqlite3

from ..base.ident import quote
from ..engine.sqltext import (
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
    Op,
    Pragma,
    RenameColumn,
    RenameTable,
    Select,
    TxControl,
    Update,
    column_refs,
    equalities,
    is_constant,
    plain_column,
    replace_tables,
    select_list,
    table_refs,
    where_clauses,
)
from . import schema
from .lineage import Lineage, Location

_I = re.IGNORECASE

# SQL that yields no rows; a table's rows are a SELECT text, EMPTY, or None (unknown).
EMPTY = "EMPTY"


class Replay:
    """The schema at each statement, the lineage of values, and (with `live`) the rows."""

    def __init__(
        self,
        source: sqlite3.Connection | None,
        *,
        source_schema: str = "main",
        live: sqlite3.Connection | None = None,
        skip: tuple[str, ...] = (),
    ) -> None:
        self.sim = sqlite3.connect(":memory:", isolation_level=None)
        self.lineage = Lineage()
        self.rows: dict[str, str | None] = {}
        self.live = live
        self._counter = 0
        self.skip = {s.lower() for s in skip}
        if source is not None:
            self._copy_schema(source, source_schema)
        tables = {t: [c.name for c in schema.columns(self.sim, t)] for t in self._tables()}
        self.lineage.start(tables)
        for t in tables:
            self.rows[t.lower()] = f"SELECT * FROM main.{quote(t)}" if live is not None else EMPTY

    def _copy_schema(self, source: sqlite3.Connection, source_schema: str) -> None:
        rows = source.execute(
            f"SELECT type, name, sql FROM {quote(source_schema)}.sqlite_master "
            "WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%' ORDER BY CASE type "
            "WHEN 'table' THEN 0 WHEN 'index' THEN 1 WHEN 'view' THEN 2 ELSE 3 END"
        ).fetchall()
        for _kind, _name, sql in rows:
            with contextlib.suppress(sqlite3.Error):
                self.sim.execute(sql)

    def _tables(self) -> list[str]:
        return [t for t in schema.data_tables(self.sim) if t.lower() not in self.skip]

    def close(self) -> None:
        self.sim.close()

    # -- the schema as it stands

    def columns(self, table: str) -> list[schema.ColumnInfo]:
        return schema.columns(self.sim, table)

    def column_names(self, table: str) -> list[str]:
        return [c.name for c in self.columns(table)]

    def exists(self, name: str) -> bool:
        return schema.exists(self.sim, name)

    # -- one statement

    def step(self, op: Op, ref: str, *, foreign_keys_on: bool = True) -> str | None:
        """Account for the statement in the lineage and the rows, then run it in the schema.

        Returns SQLite's error when the statement fails on the schema as it stands (it
        would fail on any database with this schema), else None.
        """
        self._account(op, ref, foreign_keys_on)
        if isinstance(op, TxControl | Pragma | Maintenance):
            return None
        # The replay needs the schema, not the data: a data statement is only compiled
        # (EXPLAIN resolves every table and column name) so that a recursive CTE filling
        # millions of rows costs nothing here. DDL runs, on empty tables.
        data = isinstance(op, Insert | Update | Delete | Select)
        try:
            self.sim.execute(f"EXPLAIN {op.sql}" if data else op.sql)
        except sqlite3.Error as exc:
            return str(exc)
        if isinstance(op, CreateTable):
            self.lineage.created(op.table)
            if op.table.lower() not in self.rows:
                self.rows[op.table.lower()] = EMPTY
            if op.select is not None:
                self.rows[op.table.lower()] = None
        return None

    def _account(self, op: Op, ref: str, foreign_keys_on: bool) -> None:
        lin = self.lineage
        if isinstance(op, CreateTable):
            self.rows[op.table.lower()] = EMPTY
        elif isinstance(op, DropTable):
            lin.drop_table(op.table, ref)
            self.rows.pop(op.table.lower(), None)
        elif isinstance(op, RenameTable):
            lin.rename_table(op.table, op.new)
            self.rows[op.new.lower()] = self.rows.pop(op.table.lower(), None)
        elif isinstance(op, RenameColumn):
            lin.rename_column(op.table, op.old, op.new)
            self._project(
                op.table,
                {
                    c: quote(op.old) if c.lower() == op.new.lower() else None
                    for c in self._after_rename(op)
                },
            )
        elif isinstance(op, AddColumn):
            lin.touched.add(op.table.lower())
            self._add_column(op)
        elif isinstance(op, DropColumn):
            lin.drop_column(op.table, op.column, ref)
            keep = [c for c in self.column_names(op.table) if c.lower() != op.column.lower()]
            self._project(op.table, dict.fromkeys(keep))
        elif isinstance(op, Insert):
            self._insert(op)
        elif isinstance(op, Update):
            self._update(op)
        elif isinstance(op, Delete):
            self._delete(op, ref, foreign_keys_on)
        elif isinstance(op, DropObject):
            lin.dropped_objects[op.name.lower()] = ref
        elif isinstance(op, CreateObject | CreateIndex | Select | Pragma | TxControl | Maintenance):
            pass
        else:  # a statement nobody here understands: it may have written anything
            lin.everything_touched = True
            for t in list(self.rows):
                self.rows[t] = None

    def _after_rename(self, op: RenameColumn) -> list[str]:
        return [op.new if c.lower() == op.old.lower() else c for c in self.column_names(op.table)]

    # -- lineage of data statements

    def _sources(self, sql: str, target: str | None) -> dict[str, str]:
        """alias (lower) -> table for the tables a statement reads (and its target)."""
        found = {r.alias.lower(): r.name for r in table_refs(sql)}
        if target is not None:
            found.setdefault(target.lower(), target)
        return found

    def _resolve(
        self, ref: tuple[str | None, str], tables: dict[str, str]
    ) -> tuple[str, str] | None:
        qualifier, column = ref
        if qualifier is not None:
            table = tables.get(qualifier.lower(), qualifier)
            names = {c.lower(): c for c in self.column_names(table)}
            return (table, names[column.lower()]) if column.lower() in names else None
        for table in tables.values():
            names = {c.lower(): c for c in self.column_names(table)}
            if column.lower() in names:
                return table, names[column.lower()]
        return None

    def _value_refs(self, expr: str) -> list[tuple[str | None, str]]:
        """Column references that supply an expression's value (not its subqueries' filters)."""
        filters = [r for w in where_clauses(expr) for r in column_refs(w)]
        out = []
        for r in column_refs(expr):
            if r in filters:
                filters.remove(r)
            else:
                out.append(r)
        return out

    def _carry(self, target: str, column: str, expr: str, tables: dict[str, str]) -> None:
        """Record that target.column now holds the value of each column `expr` reads."""
        plain = plain_column(expr) is not None
        inner = select_list(expr.strip()[1:-1]) if expr.strip().startswith("(") else None
        if inner is not None and len(inner) == 1:  # a scalar subquery: its one result column
            sub_tables = self._sources(expr, None)
            plain = plain_column(inner[0]) is not None
            refs = [(r, sub_tables) for r in self._value_refs(inner[0])]
        else:
            refs = [(r, tables) for r in self._value_refs(expr)]
        for r, scope in refs:
            found = self._resolve(r, scope) or self._resolve(r, tables)
            if found is None:
                continue
            for key, exact in self.lineage.originals_at(*found):
                self.lineage.add(key, Location(target.lower(), column.lower(), exact and plain))

    def _links(self, sql: str, target: str, tables: dict[str, str]) -> None:
        """`source.x = target.y` in a filter: the row's identity moves with its values."""
        for eq in equalities(" ".join(where_clauses(sql))):
            sides = [self._resolve(eq.left, tables), self._resolve(eq.right, tables)]
            if None in sides:
                continue
            a, b = sides
            assert a is not None and b is not None
            for here, there in ((a, b), (b, a)):
                if here[0].lower() == target.lower() and there[0].lower() != target.lower():
                    for key, exact in self.lineage.originals_at(*there):
                        if exact:
                            self.lineage.add(key, Location(target.lower(), here[1].lower(), True))

    def _insert(self, op: Insert) -> None:
        lin = self.lineage
        target = op.table
        lin.touched.add(target.lower())
        cols = op.columns or self.column_names(target)
        if op.select is not None:
            tables = self._sources(op.select, None)
            exprs = select_list(op.select)
            if exprs is not None and not (len(exprs) == 1 and exprs[0] == "*"):
                for col, expr in zip(cols, exprs, strict=False):
                    self._carry(target, col, expr, tables)
            elif exprs == ["*"] and len(tables) == 1:
                source = next(iter(tables.values()))
                for col, src in zip(cols, self.column_names(source), strict=False):
                    self._carry(target, col, quote(src), tables)
            if tables:
                lin.rebuilt.add(target.lower())
        self._insert_rows(op, cols)

    def _update(self, op: Update) -> None:
        lin = self.lineage
        lin.touched.add(op.table.lower())
        tables = self._sources(op.sql, op.table)
        for col, expr in op.assignments:
            self._carry(op.table, col, expr, tables)
        self._links(op.sql, op.table, tables)
        if not op.assignments or op.from_clause or op.conflict:
            self.rows[op.table.lower()] = None
            return
        known = self._substitute(" ".join(e for _, e in op.assignments) + " " + (op.where or ""))
        if known is None:
            self.rows[op.table.lower()] = None
            return
        sets = {c.lower(): e for c, e in op.assignments}
        exprs: dict[str, str | None] = {}
        for c in self.column_names(op.table):
            e = sets.get(c.lower())
            if e is None:
                exprs[c] = None
                continue
            value = self._rewrite(e)
            if value is None:
                self.rows[op.table.lower()] = None
                return
            if op.where:
                where = self._rewrite(op.where)
                if where is None:
                    self.rows[op.table.lower()] = None
                    return
                exprs[c] = f"CASE WHEN ({where}) THEN ({value}) ELSE {quote(c)} END"
            else:
                exprs[c] = f"({value})"
        self._project(op.table, exprs)

    def _delete(self, op: Delete, ref: str, foreign_keys_on: bool) -> None:
        t = op.table.lower()
        self.lineage.delete(t, ref)
        self.lineage.touched.add(t)
        todo = [op.table] if foreign_keys_on else []
        while todo:  # rows deleted through ON DELETE CASCADE, all the way down
            for child, fk in schema.children(self.sim, todo.pop()):
                if fk.on_delete not in ("CASCADE", "SET NULL", "SET DEFAULT"):
                    continue
                self.lineage.touched.add(child.lower())
                self.rows[child.lower()] = None
                if fk.on_delete == "CASCADE" and child.lower() not in self.lineage.deleted:
                    self.lineage.delete(child.lower(), f"{ref} (ON DELETE CASCADE)")
                    todo.append(child)
        if op.where is None:
            self.rows[t] = EMPTY
            return
        where = self._rewrite(op.where)
        current = self.rows.get(t)
        if where is None or current is None:
            self.rows[t] = None
        elif current != EMPTY:
            self.rows[t] = (
                f"SELECT * FROM ({current}) AS {quote(op.table)} WHERE NOT coalesce(({where}), 0)"
            )

    # -- rows: SELECTs over the live database

    def _substitute(self, sql: str) -> dict[str, str] | None:
        """Subqueries for every table `sql` reads, or None when one is unknown."""
        out: dict[str, str] = {}
        for ref in table_refs(sql):
            body = self.rows_of(ref.name)
            if body is None:
                return None
            out[ref.name.lower()] = body
        return out

    def _rewrite(self, sql: str) -> str | None:
        """`sql` with every table it reads replaced by its rows at this point, or None."""
        if re.search(r"\bWITH\b", sql, _I):
            return None
        tables = self._substitute(sql)
        if tables is None:
            return None
        done = replace_tables(sql, tables)
        return None if done.missing else done.text

    def rows_of(self, table: str) -> str | None:
        """A SELECT yielding the table's rows at this statement (EMPTY as a SELECT), or None."""
        key = table.lower()
        if key not in self.rows:
            return None
        body = self.rows[key]
        if body == EMPTY:
            names = self.column_names(table) or ["_"]
            return "SELECT " + ", ".join(f"NULL AS {quote(c)}" for c in names) + " WHERE 0"
        return body

    def _project(self, table: str, exprs: dict[str, str | None]) -> None:
        """New rows for the table: each column's expression over its current rows (None: as is)."""
        key = table.lower()
        current = self.rows.get(key)
        if current is None or current == EMPTY:
            return
        select = ", ".join(
            f"{e} AS {quote(c)}" if e is not None else quote(c) for c, e in exprs.items()
        )
        self.rows[key] = f"SELECT {select} FROM ({current}) AS {quote(table)}"

    def _add_column(self, op: AddColumn) -> None:
        exprs: dict[str, str | None] = dict.fromkeys(self.column_names(op.table))
        default = op.default
        if op.generated:
            m = re.search(r"\bAS\s*\((.*)\)", op.definition, re.IGNORECASE | re.DOTALL)
            value = m.group(1) if m else None
            if value is None:
                self.rows[op.table.lower()] = None
                return
            exprs[op.column] = f"({value})"
        else:
            exprs[op.column] = f"({default})" if default is not None else "NULL"
        self._project(op.table, exprs)

    def _insert_rows(self, op: Insert, cols: list[str]) -> None:
        key = op.table.lower()
        current = self.rows.get(key)
        if current is None or op.conflict is not None:
            self.rows[key] = None
            return
        names = self.column_names(op.table)
        defaults = {c.name.lower(): c.default for c in self.columns(op.table)}
        if op.select is None:
            new = "SELECT " + ", ".join(
                f"{defaults.get(c.lower()) or 'NULL'} AS {quote(c)}" for c in names
            )
        else:
            body = self._rewrite(op.select)
            if body is None:
                self.rows[key] = None
                return
            self._counter += 1
            cte = f"_ld_rows{self._counter}"
            given = {c.lower() for c in cols}
            picked = ", ".join(
                f"{quote(cte)}.{quote(c)}"
                if c.lower() in given
                else f"{defaults.get(c.lower()) or 'NULL'} AS {quote(c)}"
                for c in names
            )
            new = (
                f"WITH {quote(cte)}({', '.join(quote(c) for c in cols)}) AS ({body}) "
                f"SELECT {picked} FROM {quote(cte)}"
            )
        if current == EMPTY:
            self.rows[key] = new
        else:
            self.rows[key] = f"SELECT * FROM ({current}) UNION ALL SELECT * FROM ({new})"

    # -- counting through the rows

    def count(self, table: str, where: str | None = None) -> int | None:
        """Rows of the table at this statement (matching `where`), or None when unknown."""
        body = self.rows_of(table)
        if body is None:
            return None
        if self.rows.get(table.lower()) == EMPTY:
            return 0
        test = f" WHERE {where}" if where else ""
        return self.scalar(f"SELECT count(*) FROM ({body}) AS {quote(table)}{test}")

    def values(self, table: str, column: str) -> int | None:
        """Non-NULL values of table.column at this statement, or None when unknown."""
        return self.count(table, f"{quote(table)}.{quote(column)} IS NOT NULL")

    def duplicates(self, table: str, exprs: list[str], where: str | None = None) -> int | None:
        """Groups of rows sharing a value of the key (NULLs never collide)."""
        body = self.rows_of(table)
        if body is None:
            return None
        if self.rows.get(table.lower()) == EMPTY:
            return 0
        terms = [re.sub(r"\s+(ASC|DESC)\s*$", "", e, flags=_I) for e in exprs]
        terms = [re.sub(r"\s+COLLATE\s+\w+\s*$", "", e, flags=_I) for e in terms]
        key = ", ".join(f"({t})" for t in terms)
        tests = " AND ".join(f"({t}) IS NOT NULL" for t in terms)
        if where:
            tests += f" AND ({where})"
        return self.scalar(
            f"SELECT count(*) FROM (SELECT 1 FROM ({body}) AS {quote(table)} "
            f"WHERE {tests} GROUP BY {key} HAVING count(*) > 1)"
        )

    def column_values(self, table: str, column: str) -> list[object] | None:
        """The non-NULL values of a column at this statement (for type-conversion checks)."""
        body = self.rows_of(table)
        if body is None:
            return None
        if self.rows.get(table.lower()) == EMPTY:
            return []
        conn = self.live if self.live is not None else self.sim
        col = f"{quote(table)}.{quote(column)}"
        try:
            return [
                r[0]
                for r in conn.execute(
                    f"SELECT {col} FROM ({body}) AS {quote(table)} WHERE {col} IS NOT NULL"
                )
            ]
        except sqlite3.Error:
            return None

    def scalar(self, sql: str) -> int | None:
        """One integer read through the rows (on the live database), or None on any error."""
        conn = self.live if self.live is not None else self.sim
        try:
            row = conn.execute(sql).fetchone()
        except sqlite3.Error:
            return None
        return int(row[0] or 0) if row else 0


def constant_default(definition: str) -> bool:
    """True when an ADD COLUMN definition's default is one SQLite accepts on a table with rows."""
    from ..engine.sqltext import column_default

    default = column_default(definition)
    return default is None or is_constant(default)
