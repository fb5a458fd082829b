"""Checks on a database: integrity, foreign keys, and row counts before and after migrating."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from ..base.ident import quote
from ..engine.sources import Migration
from ..safetynet.integrity import Level, integrity_problems
from . import schema
from .loss import Loss


def foreign_key_problems(conn: sqlite3.Connection) -> list[str]:
    """Rows whose parent is missing, as `table rowid N -> parent`."""
    return [problem_line(v) for v in conn.execute("PRAGMA foreign_key_check")]


def problem_line(violation: tuple[str, int | None, str, int]) -> str:
    """One row of `PRAGMA foreign_key_check` as `table rowid N -> parent`."""
    table, rowid, parent, _ = violation
    return f"{table} rowid {rowid} -> {parent}"


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table, for every table that holds rows (not sqlite_*, virtual or shadow)."""
    return {
        t: int(conn.execute(f"SELECT count(*) FROM {quote(t)}").fetchone()[0])  # noqa: S608
        for t in schema.data_tables(conn)
    }


def row_losses(before: dict[str, int], after: dict[str, int]) -> list[Loss]:
    """Tables that lost rows (or vanished while holding rows), by count."""
    return [
        Loss(
            "rows",
            table,
            "block",
            count,
            count - after.get(table, 0),
            "" if table in after else "the table is gone",
        )
        for table, count in before.items()
        if count > after.get(table, 0)
    ]


@dataclass
class CheckReport:
    """What `entrypoint check` and the post-migration checks found."""

    integrity: list[str] = field(default_factory=list)
    foreign_keys: list[str] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.integrity or self.foreign_keys or self.losses)

    def problems(self) -> list[str]:
        """One line per problem found, most serious first."""
        lines = [f"integrity: {p}" for p in self.integrity[:10]]
        lines += [f"foreign key: {p}" for p in self.foreign_keys[:10]]
        lines += [f"rows lost: {loss.message}" for loss in self.losses]
        return lines


def check_database(
    conn: sqlite3.Connection,
    level: Level = Level.QUICK,
    *,
    counts_before: dict[str, int] | None = None,
) -> CheckReport:
    """Run every check; row losses are computed only when counts from before are given."""
    report = CheckReport(integrity=integrity_problems(conn, level))
    if report.integrity:
        return report  # other checks on a damaged file would only add noise
    report.foreign_keys = foreign_key_problems(conn)
    report.counts = row_counts(conn)
    if counts_before is not None:
        report.losses = row_losses(counts_before, report.counts)
    return report


def explained_losses(
    conn: sqlite3.Connection, migrations: Sequence[Migration], losses: list[Loss]
) -> tuple[list[Loss], list[Loss]]:
    """Split row losses into those the migrations ask for and those nobody asked for.

    A loss is asked for when a statement deletes from the table, drops it for good (a
    rebuild that drops and recreates it does not count), or the table is an ON DELETE
    CASCADE descendant of a table deleted from.
    """
    from ..engine.sqltext import Delete, DropTable  # after migrating only: not on start-up's path

    deleted: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for m in migrations:
        for s, op in zip(m.statements, m.ops, strict=True):
            ref = f"{m.name} statement {s.number}"
            if isinstance(op, Delete):
                deleted.setdefault(op.table.lower(), ref)
            elif isinstance(op, DropTable):
                dropped.setdefault(op.table.lower(), ref)
    cascade = _cascade_descendants(conn, set(deleted))
    expected, unexpected = [], []
    for loss in losses:
        name = loss.object.lower()
        why = deleted.get(name) or (
            f"{deleted[cascade[name]]} (ON DELETE CASCADE)" if name in cascade else None
        )
        if why is None and loss.what == "the table is gone":
            why = dropped.get(name)
        if why:
            expected.append(replace(loss, verdict="explained", explained_by=why))
        else:
            unexpected.append(loss)
    return expected, unexpected


def _cascade_descendants(conn: sqlite3.Connection, parents: set[str]) -> dict[str, str]:
    """Tables emptied through ON DELETE CASCADE from `parents`, each with its root parent."""
    children: dict[str, set[str]] = {}
    for table in schema.data_tables(conn):
        for fk in schema.foreign_keys(conn, table):
            if fk.on_delete == "CASCADE":
                children.setdefault(fk.table_to.lower(), set()).add(table.lower())
    found: dict[str, str] = {}
    todo = [(p, p) for p in parents]
    while todo:
        parent, root = todo.pop()
        for child in children.get(parent, set()) - set(found):
            found[child] = root
            todo.append((child, root))
    return found
