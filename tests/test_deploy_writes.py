"""writes.py: the rows a restore would drop, live database against its backup."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from deploy.writes import describe, writes_since


def make(path: Path, *statements: str) -> Path:
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        for sql in statements:
            conn.execute(sql)
    return path


BASE = (
    "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
    "CREATE TABLE reviews (id INTEGER PRIMARY KEY, user_id INTEGER, body TEXT)",
    "CREATE TABLE __drizzle_migrations (id INTEGER PRIMARY KEY, hash TEXT, created_at NUMERIC)",
    "INSERT INTO users VALUES (1, 'ann'), (2, 'bob')",
    "INSERT INTO reviews VALUES (1, 1, 'fine')",
    "INSERT INTO __drizzle_migrations VALUES (1, 'h', 1)",
)


def test_a_copy_of_the_backup_drops_nothing(tmp_path: Path) -> None:
    backup = make(tmp_path / "backup.db", *BASE)
    live = make(tmp_path / "live.db", *BASE)
    assert writes_since(live, backup) == {}


def test_new_and_changed_rows_count_deleted_ones_do_not(tmp_path: Path) -> None:
    backup = make(tmp_path / "backup.db", *BASE)
    live = make(
        tmp_path / "live.db",
        *BASE,
        "INSERT INTO reviews VALUES (2, 2, 'new'), (3, 1, 'newer')",
        "UPDATE users SET name = 'Ann' WHERE id = 1",
        "DELETE FROM users WHERE id = 2",  # comes back with the backup: not a loss
        "INSERT INTO __drizzle_migrations VALUES (2, 'h2', 2)",  # the history: not counted
    )
    counts = writes_since(live, backup)
    assert counts == {"reviews": 2, "users": 1}
    assert describe(counts) == "3 row(s) (reviews 2, users 1)"


def test_a_migration_that_added_a_column_changed_no_row(tmp_path: Path) -> None:
    """After `ALTER TABLE users ADD email`, the rows' common columns still match."""
    backup = make(tmp_path / "backup.db", *BASE)
    live = make(
        tmp_path / "live.db",
        *BASE,
        "ALTER TABLE users ADD email TEXT",
        "UPDATE users SET email = name || '@example.com'",
        "CREATE TABLE visits (id INTEGER PRIMARY KEY)",
        "INSERT INTO visits VALUES (1), (2)",
    )
    assert writes_since(live, backup) == {"visits": 2}


def test_no_live_database_drops_nothing(tmp_path: Path) -> None:
    backup = make(tmp_path / "backup.db", *BASE)
    assert writes_since(tmp_path / "gone.db", backup) == {}


def test_odd_names_are_quoted(tmp_path: Path) -> None:
    odd = ('CREATE TABLE "order items" ("the id" INTEGER PRIMARY KEY, "a""b" TEXT)',)
    backup = make(tmp_path / "backup #1.db", *odd)
    live = make(tmp_path / "live?.db", *odd, "INSERT INTO \"order items\" VALUES (1, 'x')")
    assert writes_since(live, backup) == {"order items": 1}
