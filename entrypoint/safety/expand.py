"""Expand-only: can the release before run on the database the pending migrations leave?

Issue 16's start-first deploy runs the new container beside the old one: the old code keeps
serving while the new one migrates, on the same database. That is safe only when every pending
migration is additive for the old code, the expand half of expand/contract: new tables, new
columns the old code need not write (nullable, or with a default), new non-unique indexes and
views. Anything else (a drop, a rename, a table rebuild, a type change, rows rewritten, a new
constraint the old code's writes may break) is a contract change, and the deploy falls back to
stopping the old version first.

The decision is static, on the statements as written (`sqltext`), and conservative: what is not
understood, or not known to be harmless, counts as a contract change, with its reason. Objects
created by the same pending migrations are new to the old code, so whatever is done to them
(seeding a new table, indexing it, renaming it) is part of the expansion.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ..base.record import Record
from ..engine.rebuilds import Rebuild, find_rebuilds
from ..engine.sources import Migration
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
)

# Pragmas a migration may set that change nothing another connection sees.
_HARMLESS_PRAGMAS = {"foreign_keys", "defer_foreign_keys", "foreign_key_check", "busy_timeout"}


@dataclass(eq=False, repr=False)
class Change(Record):
    """One statement's change, as the old code sees it."""

    migration: str
    statement: int
    what: str  # "new table reviews", "DROP TABLE users", ...
    expand: bool  # the old code can live with it

    def line(self) -> str:
        return f"{self.migration} statement {self.statement}: {self.what}"


@dataclass(eq=False, repr=False)
class Compatibility(Record):
    """Whether the pending migrations are expand-only, and each change that says so or not."""

    changes: list[Change]

    @property
    def expand_only(self) -> bool:
        return all(c.expand for c in self.changes)

    @property
    def contract(self) -> list[Change]:
        """The changes the old code cannot live with (empty when expand-only)."""
        return [c for c in self.changes if not c.expand]


def compatibility(pending: Sequence[Migration]) -> Compatibility:
    """Judge the pending migrations, in order, statement by statement."""
    new: set[str] = set()  # tables (and views) the pending migrations create: the old code has none
    changes: list[Change] = []
    for m in pending:
        rebuilds = find_rebuilds(m.statements, m.ops)
        rebuilt = {r.new.lower() for r in rebuilds.values()} | {
            r.old.lower() for r in rebuilds.values()
        }
        for s, op in zip(m.statements, m.ops, strict=True):
            if s.number in rebuilds:  # its DROP speaks for the whole rebuild
                table = _rebuilt_table(rebuilds[s.number], m)
                fresh = table.lower() in new
                what = f"rebuilds {'the new ' if fresh else ''}table {table} (copy, drop, rename)"
                changes.append(Change(m.name, s.number, what, expand=fresh))
                continue
            verdict = _judge(op, new, rebuilt)
            if verdict is not None:
                changes.append(Change(m.name, s.number, verdict[0], expand=verdict[1]))
    return Compatibility(changes)


def _rebuilt_table(rebuild: Rebuild, migration: Migration) -> str:
    """The table a rebuild gives a new shape, under the name the old code knows it by: in
    drizzle-kit's shape the one dropped (`x`, replaced by `__new_x` renamed `x` after the
    drop); in the older shape the one renamed away before it (`x` to `__x_old`, then `x`
    created again and filled from `__x_old`, which is dropped)."""
    before_drop = zip(migration.statements, migration.ops, strict=True)
    renamed_away = any(
        isinstance(o, RenameTable)
        and s.number < rebuild.drop
        and o.table.lower() == rebuild.new.lower()
        and o.new.lower() == rebuild.old.lower()
        for s, o in before_drop
    )
    return rebuild.new if renamed_away else rebuild.old


def _judge(op: Op, new: set[str], rebuilt: set[str]) -> tuple[str, bool] | None:
    """(what the statement does, whether the old code can live with it); None for statements
    that change nothing the old code sees (transaction control, reads, the foreign keys pragma)
    and for the steps of a rebuild other than its DROP, which speaks for the rebuild."""
    if isinstance(op, (TxControl, Select)):
        return None
    if isinstance(op, Pragma):
        if op.name in _HARMLESS_PRAGMAS:
            return None
        return f"PRAGMA {op.name}: not known to leave other connections alone", False
    if isinstance(op, Maintenance):
        if op.verb in ("ANALYZE", "REINDEX"):
            return None
        return f"{op.verb}: not run beside a serving version", False
    if isinstance(op, CreateTable):
        if op.table.lower() in rebuilt:
            return None  # the rebuild's new table: the DROP reports the rebuild
        new.add(op.table.lower())
        return f"new table {op.table}", True
    if isinstance(op, CreateIndex):
        if op.table.lower() in new:
            return f"index {op.index} on the new table {op.table}", True
        if op.unique:
            return (
                f"UNIQUE index {op.index} on {op.table}: the old code may write rows it refuses",
                False,
            )
        return f"new index {op.index} on {op.table}", True
    if isinstance(op, CreateObject):
        if op.kind == "trigger" and (op.table or "").lower() not in new:
            return f"trigger {op.name} on {op.table}: changes what the old code's writes do", False
        new.add(op.name.lower())
        return f"new {op.kind} {op.name}", True
    if isinstance(op, AddColumn):
        where = f"{op.table}.{op.column}"
        if op.table.lower() in new:
            return f"column {where} of the new table", True
        if op.not_null and op.default is None and not op.generated:
            return (
                f"new column {where} NOT NULL without a default: the old code's inserts fail",
                False,
            )
        return f"new column {where}", True
    if isinstance(op, Insert):
        if op.table.lower() in rebuilt:
            return None
        if op.table.lower() in new:
            return f"rows into the new table {op.table}", True
        return f"INSERT INTO {op.table}: rows the old code reads", False
    if isinstance(op, (Update, Delete)):
        verb = "UPDATE" if isinstance(op, Update) else "DELETE FROM"
        if op.table.lower() in new:
            return f"{verb} the new table {op.table}", True
        return f"{verb} {op.table}: rewrites rows the old code reads", False
    if isinstance(op, DropObject):
        if op.name.lower() in new:
            new.discard(op.name.lower())
            return f"DROP {op.kind.upper()} {op.name}, created by these migrations", True
        if op.kind == "index":
            return f"DROP INDEX {op.name}: the old code's queries give the same answers", True
        return f"DROP {op.kind.upper()} {op.name}: the old code may use it", False
    if isinstance(op, DropTable):
        if op.table.lower() in new:
            new.discard(op.table.lower())
            return f"DROP TABLE {op.table}, created by these migrations", True
        return f"DROP TABLE {op.table}: the old code reads it", False
    if isinstance(op, RenameTable):
        if op.table.lower() in rebuilt:
            return None
        if op.table.lower() in new:
            new.add(op.new.lower())
            return f"new table {op.table} renamed {op.new}", True
        return f"RENAME TABLE {op.table} TO {op.new}: the old code uses the old name", False
    if isinstance(op, RenameColumn):
        if op.table.lower() in new:
            return f"column of the new table {op.table} renamed", True
        return (
            f"RENAME COLUMN {op.table}.{op.old} TO {op.new}: the old code uses the old name",
            False,
        )
    if isinstance(op, DropColumn):
        if op.table.lower() in new:
            return f"column {op.column} of the new table {op.table} dropped", True
        return f"DROP COLUMN {op.table}.{op.column}: the old code reads it", False
    first = " ".join(op.sql.split())[:60]
    return f"not understood ({first}): counted as a contract change", False
