"""A database file's integrity: SQLite's quick_check or integrity_check."""

from __future__ import annotations

import sqlite3
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
