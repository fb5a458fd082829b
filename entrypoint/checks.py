"""Checks on a database: integrity, foreign keys, and row counts before and after migrating."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path

from .database import uri


class Level(StrEnum):
    """How thorough the integrity check is."""

    QUICK = "quick"
    INTEGRITY = "integrity"


def integrity_problems(conn: sqlite3.Connection, level: Level = Level.QUICK) -> list[str]:
    """SQLite's quick_check or integrity_check; an empty list means the file is sound."""
    pragma = "quick_check" if level is Level.QUICK else "integrity_check"
    try:
        rows = [r[0] for r in conn.execute(f"PRAGMA {pragma}")]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def file_problems(path: Path, level: Level = Level.QUICK, *, immutable: bool = False) -> list[str]:
    """Integrity problems of a database file, opened read-only (immutable: not even -shm)."""
    try:
        conn = sqlite3.connect(uri(path, immutable=immutable), uri=True)
    except sqlite3.Error as exc:
        return [str(exc)]
    try:
        return integrity_problems(conn, level)
    finally:
        conn.close()


def foreign_key_problems(conn: sqlite3.Connection) -> list[str]:
    """Rows whose parent is missing, as `table rowid N -> parent`."""
    return [
        f"{table} rowid {rowid} -> {parent}"
        for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check")
    ]


def row_counts(conn: sqlite3.Connection) -> dict[str, int]:
    """Rows per table, for every ordinary table (not sqlite_* internals, not virtual tables)."""
    tables = [
        r[0]
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"
        )
    ]
    return {
        t: conn.execute(f'SELECT count(*) FROM "{t.replace(chr(34), chr(34) * 2)}"').fetchone()[0]  # noqa: S608
        for t in tables
    }


@dataclass(frozen=True)
class RowLoss:
    """A table that has fewer rows after migrating than before (after is None: table gone)."""

    table: str
    before: int
    after: int | None

    def __str__(self) -> str:
        after = "table dropped" if self.after is None else f"{self.after} after"
        return f"{self.table}: {self.before} rows before, {after}"


def row_losses(before: dict[str, int], after: dict[str, int]) -> list[RowLoss]:
    """Tables that lost rows (or vanished while holding rows)."""
    return [
        RowLoss(table, count, after.get(table))
        for table, count in before.items()
        if count > after.get(table, 0)
    ]


@dataclass
class Report:
    """What `entrypoint check` and the post-migration checks found."""

    integrity: list[str] = field(default_factory=list)
    foreign_keys: list[str] = field(default_factory=list)
    losses: list[RowLoss] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not (self.integrity or self.foreign_keys or self.losses)

    def problems(self) -> list[str]:
        """One line per problem found, most serious first."""
        lines = [f"integrity: {p}" for p in self.integrity[:10]]
        lines += [f"foreign key: {p}" for p in self.foreign_keys[:10]]
        lines += [f"rows lost: {loss}" for loss in self.losses]
        return lines


def check_database(
    conn: sqlite3.Connection,
    level: Level = Level.QUICK,
    *,
    counts_before: dict[str, int] | None = None,
) -> Report:
    """Run every check; row losses are computed only when counts from before are given."""
    report = Report(integrity=integrity_problems(conn, level))
    if report.integrity:
        return report  # other checks on a damaged file would only add noise
    report.foreign_keys = foreign_key_problems(conn)
    report.counts = row_counts(conn)
    if counts_before is not None:
        report.losses = row_losses(counts_before, report.counts)
    return report


_NAME = r"""(?:"(?P<dq>(?:[^"]|"")+)"|`(?P<bt>[^`]+)`|\[(?P<br>[^\]]+)\]|(?P<bare>[\w$]+))"""
_SCHEMA = r"""(?:(?:"main"|`main`|\[main\]|main)\s*\.\s*)?"""
_DELETE = re.compile(rf"^DELETE\s+FROM\s+{_SCHEMA}{_NAME}", re.IGNORECASE)
_DROP = re.compile(rf"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?{_SCHEMA}{_NAME}", re.IGNORECASE)


def _table_name(match: re.Match[str]) -> str:
    if match.group("dq") is not None:
        return match.group("dq").replace('""', '"')
    return match.group("bt") or match.group("br") or match.group("bare")


def explained_losses(
    conn: sqlite3.Connection, statements: list[str], losses: list[RowLoss]
) -> tuple[list[RowLoss], list[RowLoss]]:
    """Split row losses into those the migrations ask for and those nobody asked for.

    A loss is asked for when a statement deletes from the table, drops it for good (a
    rebuild that drops and recreates it does not count), or the table is an ON DELETE
    CASCADE descendant of a table deleted from.
    """
    deleted: set[str] = set()
    dropped: set[str] = set()
    for sql in statements:
        if match := _DELETE.match(sql):
            deleted.add(_table_name(match).lower())
        elif match := _DROP.match(sql):
            dropped.add(_table_name(match).lower())
    explained = deleted | _cascade_descendants(conn, deleted)
    expected, unexpected = [], []
    for loss in losses:
        name = loss.table.lower()
        if name in explained or (loss.after is None and name in dropped):
            expected.append(loss)
        else:
            unexpected.append(loss)
    return expected, unexpected


def _cascade_descendants(conn: sqlite3.Connection, parents: set[str]) -> set[str]:
    children: dict[str, set[str]] = {}
    for (table,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ):
        for fk in conn.execute("SELECT * FROM pragma_foreign_key_list(?)", (table,)):
            if str(fk[6]).upper() == "CASCADE":  # on_delete
                children.setdefault(str(fk[2]).lower(), set()).add(table.lower())
    found: set[str] = set()
    todo = list(parents)
    while todo:
        for child in children.get(todo.pop(), set()) - found:
            found.add(child)
            todo.append(child)
    return found
