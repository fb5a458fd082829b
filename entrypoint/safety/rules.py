"""The rules behind the findings: each pending statement read against the schema at that
statement and the rows it will meet.

The pending migrations are walked with a `replay.Replay`: before a statement runs there,
the rules look at it with the schema as it stands *at that statement* (a column added
earlier in the pending range exists, with NULL or its default) and count rows and values
through the replay's rows (read-only queries on the live database). After a statement
that writes rows, the target table's constraints (NOT NULL, UNIQUE, CHECK) are checked
against the rows it will then hold, and at the end of each migration its foreign keys:
that is how `plan` predicts the failures SQLite raises on existing rows.

A drizzle-kit table rebuild (create `__new_x`, copy, drop `x`, rename) is recognised as
one change and judged as a whole when the old table is dropped: rows copied against rows
held, columns whose values were not carried, lossy type changes, objects not recreated.
"""

from __future__ import annotations

import re
import sqlite3

from ..base.ident import quote
from ..engine.rebuilds import Rebuild, find_rebuilds
from ..engine.sources import Migration
from ..engine.sqltext import (
    AddColumn,
    CreateIndex,
    DropColumn,
    DropTable,
    Insert,
    Maintenance,
    Op,
    Pragma,
    RenameColumn,
    RenameTable,
    Update,
    check_clauses,
    is_constant,
)
from ..engine.statements import Statement
from . import schema
from .files import FileAnalysis
from .findings import Finding, acknowledge
from .loss import Acknowledgements
from .replay import Replay
from .schema import affinity, unconvertible

TWO_PHASE = (
    "give the column a DEFAULT, or migrate in two phases: add it nullable, backfill it, then "
    "rebuild it as NOT NULL in a later migration"
)
ACK = "if the loss is intended, acknowledge it: -- litedeploy: allow {rule} {obj}"


def find(
    conn: sqlite3.Connection | None,
    migrations: list[Migration],
    acks: Acknowledgements | None = None,
) -> list[Finding]:
    """Analyse the pending migrations, in order, against the live database when given.

    Read-only: the live database is only queried; the schema is replayed in memory.
    Without a connection (a new database) nothing is counted and no data finding is made.
    """
    acks = acks if acks is not None else Acknowledgements.gather(migrations)
    replay = Replay(conn, live=conn)
    try:
        found = [f for m in migrations for f in Analysis(replay, m).run()]
    finally:
        replay.close()
    return acknowledge(found, acks)


class Analysis(FileAnalysis):
    """The findings of one migration, replayed on top of the ones before it."""

    def __init__(self, replay: Replay, migration: Migration) -> None:
        super().__init__(migration)
        self.replay = replay
        self.rebuilt_objects: list[tuple[int, str, str, str]] = []  # (stmt, kind, table, name)
        self.written: set[str] = set()
        self.display: dict[str, str] = {}  # a rebuild's new table -> the table it replaces

    @property
    def counting(self) -> bool:
        return self.replay.live is not None

    def run(self) -> list[Finding]:
        m = self.migration
        self.files()
        rebuilds = find_rebuilds(m.statements, m.ops)
        self.display = {r.new.lower(): r.old for r in rebuilds.values()}
        rebuild_names = {r.new.lower() for r in rebuilds.values()} | {
            r.old.lower() for r in rebuilds.values()
        }
        fk_on = not m.wants_foreign_keys_off
        ref = f"{m.name} statement {{}}"
        attached = False
        for s, op in zip(m.statements, m.ops, strict=True):
            if s.number in rebuilds:
                self.rebuild(rebuilds[s.number])
            else:
                self.before(s, op, rebuild_names)
            error = self.replay.step(op, ref.format(s.number), foreign_keys_on=fk_on)
            if isinstance(op, Maintenance) and op.verb == "ATTACH":
                attached = True  # the replay cannot see the other file: no verdict after it
            if error is not None and not attached:
                self.add(
                    "statement-fails",
                    "block",
                    s.number,
                    f"statement {s.number} fails on the schema as it stands there: {error}",
                    "fix the statement: it fails on every database with this history",
                    m.name,
                    "failure",
                )
            if isinstance(op, RenameTable) and op.table.lower() in self.written:
                self.written = (self.written - {op.table.lower()}) | {op.new.lower()}
            self.after(s, op)
        self.end_of_migration()
        return sorted(self.findings, key=lambda f: f.statement or 0)

    # -- before a statement runs

    def before(self, s: Statement, op: Op, rebuild_names: set[str]) -> None:
        r = self.replay
        if isinstance(op, Pragma) and op.name == "foreign_keys":
            self.add(
                "pragma-foreign-keys",
                "info",
                s.number,
                f"statement {s.number} sets PRAGMA foreign_keys, which has no effect inside a "
                "transaction",
                "nothing to do: litedeploy turns foreign keys off around a migration that asks "
                "for it and checks them before committing",
                None,
            )
        elif isinstance(op, AddColumn):
            self.add_column(s, op)
        elif isinstance(op, DropColumn):
            self.dropping(
                "drop-column-with-data",
                s.number,
                f"{op.table}.{op.column}",
                r.values(op.table, op.column) if self.counting else 0,
                f"drops {op.table}.{op.column}",
                "non-NULL value(s)",
                self.moved(op.table, op.column),
            )
        elif isinstance(op, DropTable) and op.table.lower() not in rebuild_names:
            self.dropping(
                "drop-table-with-rows",
                s.number,
                op.table,
                r.count(op.table) if self.counting else 0,
                f"drops table {op.table}",
                "row(s)",
                self.moved_table(op.table),
            )
        elif (
            isinstance(op, RenameTable)
            and op.table.lower() not in rebuild_names
            and op.new.lower() not in rebuild_names
        ):
            self.renaming(s.number, op.table, f"table {op.table} to {op.new}")
        elif isinstance(op, RenameColumn):
            self.renaming(
                s.number, f"{op.table}.{op.old}", f"column {op.table}.{op.old} to {op.new}"
            )
        elif isinstance(op, CreateIndex) and op.unique and self.counting:
            groups = r.duplicates(op.table, op.columns, op.where)
            if groups:
                self.add(
                    "unique-over-duplicates",
                    "block",
                    s.number,
                    f"unique index {op.index} on {op.table}({', '.join(op.columns)}) over "
                    f"{groups} group(s) of duplicated values: SQLite refuses to create it",
                    "remove or merge the duplicates in an earlier migration, or make the index "
                    "partial",
                    op.table,
                    "failure",
                )

    def add_column(self, s: Statement, op: AddColumn) -> None:
        rows = self.replay.count(op.table) if self.counting else 0
        what = f"adds {op.table}.{op.column}"
        default = op.default
        if op.not_null and default is None and not op.generated:
            self.predicted(
                "add-not-null-without-default",
                s.number,
                f"{op.table}.{op.column}",
                rows,
                f"{what} NOT NULL without a DEFAULT",
                "Cannot add a NOT NULL column with default value NULL",
                TWO_PHASE,
            )
        elif default is not None and not is_constant(default) and not op.generated:
            self.predicted(
                "non-constant-default",
                s.number,
                f"{op.table}.{op.column}",
                rows,
                f"{what} with the non-constant DEFAULT {default}",
                "Cannot add a column with non-constant default",
                "add it with a constant default (or nullable), then set the values with an "
                "UPDATE; or rebuild the table with the new column",
            )

    def predicted(
        self, rule: str, number: int, obj: str, rows: int | None, what: str, error: str, hint: str
    ) -> None:
        table = obj.rsplit(".", 1)[0]
        if rows is None:
            self.add(
                rule,
                "warn",
                number,
                f"{what}: this fails if {table} has rows (its row count here is unknown)",
                hint,
                obj,
                "failure",
            )
        elif rows:
            self.add(
                rule,
                "block",
                number,
                f"{what}, but {table} has {rows} row(s): SQLite refuses it ({error})",
                hint,
                obj,
                "failure",
            )
        elif self.counting:
            self.add(
                rule,
                "info",
                number,
                f"{what}; {table} has no rows here, so it works here only",
                hint,
                obj,
                "note",
            )

    def moved(self, table: str, column: str) -> str | None:
        """Where the values now at table.column were copied to earlier in the pending range."""
        lin = self.replay.lineage
        places = {
            f"{loc.table}.{loc.column}"
            for key, exact in lin.originals_at(table, column)
            for loc in lin.locations.get(key, set())
            if (loc.table, loc.column) != (table.lower(), column.lower())
        }
        return ", ".join(sorted(places)) or None

    def moved_table(self, table: str) -> str | None:
        cols = self.replay.column_names(table)
        places = [p for c in cols if (p := self.moved(table, c))]
        return "; ".join(places) if places and len(places) >= max(1, len(cols) // 2) else None

    def dropping(
        self,
        rule: str,
        number: int,
        obj: str,
        n: int | None,
        what: str,
        unit: str,
        moved: str | None,
    ) -> None:
        hint = ACK.format(rule=rule.split("-with-")[0], obj=obj)
        if moved and n != 0:
            held = "an unknown number of" if n is None else str(n)
            self.add(
                "values-moved",
                "info",
                number,
                f"{what}, which holds {held} {unit}; earlier pending statements copied them "
                f"to {moved} (the rehearsal checks they are all kept)",
                hint,
                obj,
                "loss",
            )
        elif n is None:
            self.add(
                rule,
                "warn",
                number,
                f"{what}; it holds an unknown number of {unit}",
                hint,
                obj,
                "loss",
            )
        elif n:
            self.add(rule, "block", number, f"{what}, which holds {n} {unit}", hint, obj, "loss")

    def renaming(self, number: int, obj: str, what: str) -> None:
        self.add(
            "rename",
            "warn",
            number,
            f"renames {what}",
            "the old version still running during a rolling deploy uses the old name and "
            "fails; prefer add-new, copy, switch the code, then drop the old name later",
            obj,
        )

    # -- after a statement ran: the rows it leaves against the table's constraints

    def after(self, s: Statement, op: Op) -> None:
        if not self.counting:
            return
        if isinstance(op, Insert | Update):
            self.written.add(op.table.lower())
            self.constraints(s.number, op.table)
        elif isinstance(op, AddColumn):
            self.constraints(s.number, op.table, only=op.column)

    def constraints(self, number: int, table: str, only: str | None = None) -> None:
        """The table's NOT NULL, UNIQUE and CHECK constraints against the rows it now holds.

        `only`: a column just added (ADD COLUMN checks only the CHECKs that mention it).
        """
        r = self.replay
        if r.rows_of(table) is None:
            return
        shown = self.display.get(table.lower(), table)
        cols = r.columns(table)
        keyed = [c for c in cols if c.pk]
        rowid = keyed[0].name if len(keyed) == 1 and keyed[0].type.upper() == "INTEGER" else None
        for col in cols if only is None else []:
            if not col.not_null or col.name == rowid:
                continue
            n = r.count(table, f"{quote(table)}.{quote(col.name)} IS NULL")
            if n:
                self.add(
                    "not-null-over-nulls",
                    "block",
                    number,
                    f"{shown}.{col.name} is NOT NULL but {n} row(s) would hold NULL in it: "
                    "SQLite refuses the statement",
                    f"fill {col.name} (e.g. coalesce(..., <default>)) before making it NOT NULL",
                    f"{shown}.{col.name}",
                    "failure",
                )
        for key in schema.unique_keys(r.sim, table) if only is None else []:
            groups = r.duplicates(table, [quote(k) for k in key])
            if groups:
                self.add(
                    "unique-over-duplicates",
                    "block",
                    number,
                    f"{shown} is UNIQUE on ({', '.join(key)}) but {groups} group(s) of rows "
                    "would share a value: SQLite refuses the statement",
                    "remove or merge the duplicates in an earlier migration",
                    shown,
                    "failure",
                )
        for check in check_clauses(schema.create_sql(r.sim, table)):
            if only and only.lower() not in check.lower():
                continue
            n = r.count(table, f"NOT coalesce(({check}), 1)")
            if n:
                self.add(
                    "check-violated",
                    "block",
                    number,
                    f"{shown}: {n} row(s) would not meet CHECK ({' '.join(check.split())}): "
                    "SQLite refuses the statement",
                    "fix those rows in an earlier statement, or relax the CHECK",
                    shown,
                    "failure",
                )

    # -- a rebuild, judged when the old table is dropped

    def rebuild(self, rb: Rebuild) -> None:
        r, old, new = self.replay, rb.old, rb.new
        old_cols, new_cols = r.columns(old), r.columns(new)
        if not old_cols or not new_cols:
            return
        counting = self.counting
        before = r.count(old) if counting else 0
        after = r.count(new) if counting else 0
        if before and after is not None and before > after:
            self.add(
                "rebuild-loses-rows",
                "block",
                rb.drop,
                f"the rebuild of {old} copies {after} of its {before} row(s)",
                "copy every row (no filter in the copy); "
                + ACK.format(rule="rebuild-loses-rows", obj=old),
                old,
                "loss",
            )
        elif before and after is None:
            self.add(
                "rebuild-loses-rows",
                "warn",
                rb.drop,
                f"the rebuild of {old} copies an unknown number of its {before} row(s)",
                "the rehearsal on a copy counts them",
                old,
                "loss",
            )
        lin = r.lineage
        for col in old_cols:
            carried = any(
                loc.table == new.lower()
                for key, _ in lin.originals_at(old, col.name)
                for loc in lin.locations.get(key, set())
            )
            if carried or (not lin.originals_at(old, col.name) and self._copied(rb, col.name)):
                continue
            n = r.values(old, col.name) if counting else 0
            obj = f"{old}.{col.name}"
            moved = self.moved(old, col.name)
            if moved:
                self.add(
                    "values-moved",
                    "info",
                    rb.drop,
                    f"the rebuild of {old} drops column {col.name} ("
                    f"{'an unknown number of' if n is None else n} non-NULL value(s)); earlier "
                    f"pending statements copied them to {moved} (the rehearsal checks they are "
                    "all kept)",
                    ACK.format(rule="rebuild-drops-column", obj=obj),
                    obj,
                    "loss",
                )
                continue
            if n == 0:
                continue
            self.add(
                "rebuild-drops-column",
                "block" if n else "warn",
                rb.drop,
                f"the rebuild of {old} drops column {col.name}, which holds "
                f"{'an unknown number of' if n is None else n} non-NULL value(s)",
                ACK.format(rule="rebuild-drops-column", obj=obj),
                obj,
                "loss",
            )
        old_by = {c.name.lower(): c for c in old_cols}
        for col in new_cols:
            src = rb.copied_from(col.name)
            if src is None or src.lower() not in old_by or not counting:
                continue
            was, now = affinity(old_by[src.lower()].type), affinity(col.type)
            if was == now or now == "BLOB":
                continue
            values = r.column_values(new, col.name)
            n = unconvertible(values, now) if values is not None else None
            if n:
                obj = f"{old}.{col.name}"
                self.add(
                    "type-change-lossy",
                    "block",
                    rb.drop,
                    f"{obj} changes from {old_by[src.lower()].type or 'untyped'} to "
                    f"{col.type}: {n} value(s) do not convert to {now.lower()}",
                    "convert or clean the values first (e.g. CAST/round in the copy); "
                    + ACK.format(rule="type-change", obj=obj),
                    obj,
                    "loss",
                )
        self.sequence(rb)
        for child, fk in schema.children(r.sim, old):
            if child.lower() == new.lower():
                continue
            n = r.count(child) if counting else 0
            count = "an unknown number of rows" if n is None else f"{n} row(s)"
            action = fk.on_delete
            if action in ("CASCADE", "SET NULL", "SET DEFAULT"):
                effect = "empty them" if action == "CASCADE" else f"{action.lower()} them"
                message = (
                    f"{child} ({count}) references the rebuilt {old} ON DELETE {action}: this "
                    f"tool protects them, a plain migrator would {effect}"
                )
            else:
                message = (
                    f"{child} ({count}) references the rebuilt {old} (ON DELETE {action}): "
                    "this tool rebuilds with foreign keys off; a plain migrator fails with "
                    "FOREIGN KEY constraint failed when it holds rows"
                )
            self.add(
                "rebuild-has-children",
                "info",
                rb.drop,
                message,
                "run it with litedeploy (or another migrator that turns foreign keys off "
                "outside the transaction)",
                child,
            )
        for kind in ("index", "trigger"):
            for name in schema.objects_on(r.sim, kind, old):
                self.rebuilt_objects.append((rb.drop, kind, old, name))

    def _copied(self, rb: Rebuild, column: str) -> bool:
        for ins in rb.copies:
            if ins.select and re.search(rf"\b{re.escape(column)}\b", ins.select, re.IGNORECASE):
                return True
        return False

    def sequence(self, rb: Rebuild) -> None:
        r = self.replay
        live_name = r.lineage.live_table(rb.old)
        if r.live is None or live_name is None:
            return
        try:
            row = r.live.execute(
                "SELECT seq FROM sqlite_sequence WHERE name = ? COLLATE NOCASE", (live_name,)
            ).fetchone()
        except sqlite3.Error:
            return
        if row is None or row[0] is None:
            return
        counter = int(row[0])
        top = r.scalar(f"SELECT max(rowid) FROM main.{quote(live_name)}")  # noqa: S608
        kept = "AUTOINCREMENT" in schema.create_sql(r.sim, rb.new).upper()
        if not kept or counter > (top or 0):
            self.add(
                "rebuild-resets-autoincrement",
                "warn",
                rb.drop,
                f"the rebuild of {rb.old} resets its AUTOINCREMENT counter ({counter}) to "
                f"{(top or 0) if kept else 'nothing'}: ids of deleted rows will be reused",
                f"after the copy, set sqlite_sequence's seq for {rb.old} back to {counter}",
                rb.old,
            )

    # -- once the migration ran

    def end_of_migration(self) -> None:
        r = self.replay
        for number, kind, table, name in self.rebuilt_objects:
            if not r.exists(name):
                self.add(
                    f"rebuild-drops-{kind}",
                    "block" if kind == "trigger" else "warn",
                    number,
                    f"the rebuild of {table} drops its {kind} {name} and the migration does not "
                    "recreate it",
                    f"recreate {name} after the rename (copy its CREATE {kind.upper()} from the "
                    "old schema); " + ACK.format(rule=f"rebuild-drops-{kind}", obj=name),
                    name,
                    "loss" if kind == "trigger" else "note",
                )
        if self.counting:
            written = {t for t in self.written if r.exists(t)}
            # rows written, and the children of tables whose rows changed (a rebuild that
            # copies fewer parents leaves children pointing at nothing)
            checked = written | {
                child.lower() for t in written for child, _ in schema.children(r.sim, t)
            }
            for table in sorted(checked):
                self.foreign_keys(table)

    def foreign_keys(self, table: str) -> None:
        r = self.replay
        child = r.rows_of(table)
        if child is None:
            return
        for fk in schema.foreign_keys(r.sim, table):
            parent = r.rows_of(fk.table_to)
            if parent is None or "rowid" in fk.columns_to:
                continue
            present = " AND ".join(f"c.{quote(c)} IS NOT NULL" for c in fk.columns)
            match = " AND ".join(
                f"p.{quote(t)} = c.{quote(c)}"
                for c, t in zip(fk.columns, fk.columns_to, strict=False)
            )
            n = r.scalar(
                f"SELECT count(*) FROM ({child}) AS c WHERE {present} AND NOT EXISTS "  # noqa: S608
                f"(SELECT 1 FROM ({parent}) AS p WHERE {match})"
            )
            if not n:
                continue
            existing = self._live_orphans(table, fk.table_to)
            if existing is not None and n <= existing:
                continue
            self.add(
                "foreign-key-violated",
                "block",
                None,
                f"{table}: {n} row(s) would reference a missing {fk.table_to} "
                f"({', '.join(fk.columns)} -> {', '.join(fk.columns_to)}): the foreign key check "
                "fails and the migration is rolled back",
                "copy every parent row, or delete (or set NULL) the children first",
                table,
                "failure",
            )

    def _live_orphans(self, table: str, parent: str) -> int | None:
        live = self.replay.live
        name = self.replay.lineage.live_table(table)
        if live is None or name is None:
            return None
        try:
            return sum(
                1
                for row in live.execute("SELECT * FROM pragma_foreign_key_check(?)", (name,))
                if str(row[2]).lower() == parent.lower()
            )
        except sqlite3.Error:
            return None
