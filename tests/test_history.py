"""The history table, written exactly as drizzle's migrators write it."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import (
    FIRST_WHEN,
    Cli,
    applied,
    assert_one_clear_error,
    db_state,
    query,
    sha256_file,
    write_folders,
    write_journal,
    write_plain,
)

# The statements copied from drizzle-orm's source, whitespace included, since SQLite keeps the
# text of a CREATE TABLE in sqlite_master: 0.45 `sqlite-core/dialect.js` and 1.0.0-rc
# `sqlite-core/async/session.js` (migrateSync, which better-sqlite3 uses).
DRIZZLE_0X_CREATE = """
			CREATE TABLE IF NOT EXISTS "__drizzle_migrations" (
				id SERIAL PRIMARY KEY,
				hash text NOT NULL,
				created_at numeric
			)
		"""
DRIZZLE_1_0_CREATE = """
			CREATE TABLE IF NOT EXISTS "__drizzle_migrations" (
				id INTEGER PRIMARY KEY,
				hash text NOT NULL,
				created_at numeric,
				name text,
				applied_at TEXT
			)"""

ISO_MS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")

USERS = "CREATE TABLE users (id integer PRIMARY KEY, name text);"
POSTS = "CREATE TABLE posts (id integer PRIMARY KEY, user_id integer REFERENCES users(id));"
INDEX = "CREATE INDEX posts_user ON posts (user_id);"


def stored_create(create: str) -> str:
    """What sqlite_master holds after running a CREATE statement."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute(create)
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = '__drizzle_migrations'"
        ).fetchone()
    return str(row[0])


def master_sql(db: Path, name: str) -> str | None:
    rows = query(db, "SELECT sql FROM sqlite_master WHERE name = ?", (name,))
    return rows[0][0] if rows else None


def tables(db: Path) -> set[str]:
    return {r[0] for r in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}


def test_journal_folder_gets_drizzle_0x_table_and_rows(tmp_path: Path) -> None:
    whens = [FIRST_WHEN + 17, FIRST_WHEN + 86_400_123]
    folder = write_journal(
        tmp_path / "m", [("0000_users", USERS), ("0001_posts", POSTS)], whens=whens
    )
    db = tmp_path / "app.db"
    applied(db, folder)

    assert master_sql(db, "__drizzle_migrations") == stored_create(DRIZZLE_0X_CREATE)
    rows = query(
        db,
        "SELECT id, hash, created_at, typeof(created_at) FROM __drizzle_migrations ORDER BY rowid",
    )
    assert rows == [
        (None, sha256_file(folder / "0000_users.sql"), whens[0], "integer"),
        (None, sha256_file(folder / "0001_posts.sql"), whens[1], "integer"),
    ]
    assert {"users", "posts"} <= tables(db)
    assert "__litedeploy_migrations" not in tables(db)


@pytest.mark.usefixtures("non_utc_timezone")
def test_folder_format_gets_drizzle_1_0_table_and_rows(tmp_path: Path) -> None:
    folder = write_folders(
        tmp_path / "m", [("20250220153045_users", USERS), ("20250221090000_posts", POSTS)]
    )
    db = tmp_path / "app.db"
    before = datetime.now(UTC).replace(microsecond=0)
    applied(db, folder)
    after = datetime.now(UTC)

    assert master_sql(db, "__drizzle_migrations") == stored_create(DRIZZLE_1_0_CREATE)
    rows = query(
        db,
        "SELECT id, hash, created_at, typeof(created_at), name, applied_at "
        "FROM __drizzle_migrations ORDER BY id",
    )
    assert [r[:5] for r in rows] == [
        (
            1,
            sha256_file(folder / "20250220153045_users" / "migration.sql"),
            1_740_065_445_000,
            "integer",
            "20250220153045_users",
        ),
        (
            2,
            sha256_file(folder / "20250221090000_posts" / "migration.sql"),
            int(datetime(2025, 2, 21, 9, 0, 0, tzinfo=UTC).timestamp()) * 1000,
            "integer",
            "20250221090000_posts",
        ),
    ]
    for row in rows:
        assert ISO_MS.match(row[5]), row[5]
        when = datetime.strptime(row[5], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert before <= when <= after


def test_plain_folder_gets_litedeploy_table(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", [("0001_users", USERS), ("0002_posts", POSTS)])
    db = tmp_path / "app.db"
    applied(db, folder)

    assert "__drizzle_migrations" not in tables(db)
    rows = query(db, "SELECT name, hash, applied_at FROM __litedeploy_migrations ORDER BY rowid")
    assert [r[:2] for r in rows] == [
        ("0001_users", sha256_file(folder / "0001_users.sql")),
        ("0002_posts", sha256_file(folder / "0002_posts.sql")),
    ]
    assert all(ISO_MS.match(r[2]) for r in rows)


def test_custom_history_table_name(tmp_path: Path) -> None:
    folder = write_journal(tmp_path / "m", [("0000_users", USERS)])
    db = tmp_path / "app.db"
    applied(db, folder, history_table="schema_history")
    assert "__drizzle_migrations" not in tables(db)
    assert query(db, "SELECT id, created_at FROM schema_history") == [(None, FIRST_WHEN)]


def test_history_written_by_drizzle_0x_is_continued(
    tmp_path: Path, status_of: Callable[..., dict[str, Any]]
) -> None:
    """Rows as drizzle's migrate() leaves them: nothing re-applied, the rest applied."""
    folder = write_journal(
        tmp_path / "m", [("0000_users", USERS), ("0001_posts", POSTS), ("0002_index", INDEX)]
    )
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(USERS + POSTS)  # migrations 0000 and 0001 applied by drizzle
        conn.execute(DRIZZLE_0X_CREATE)
        for i, tag in enumerate(["0000_users", "0001_posts"]):
            conn.execute(
                'INSERT INTO "__drizzle_migrations" ("hash", "created_at") VALUES(?, ?)',
                (sha256_file(folder / f"{tag}.sql"), FIRST_WHEN + 1000 * i),
            )
        conn.commit()
    assert status_of(db, folder)["states"] == {
        "0000_users": "applied",
        "0001_posts": "applied",
        "0002_index": "pending",
    }
    outcome = applied(db, folder)
    assert [a.name for a in outcome.applied] == ["0002_index"]
    assert query(db, "SELECT count(*) FROM __drizzle_migrations") == [(3,)]
    assert master_sql(db, "posts_user") is not None


def test_folder_source_upgrades_a_0x_table_in_place(
    tmp_path: Path, status_of: Callable[..., dict[str, Any]]
) -> None:
    """drizzle-kit 1.0 folders against a 0.x history: add name/applied_at, back-fill, go on."""
    names = ["20250220153045_users", "20250221090000_posts", "20250222120000_index"]
    folder = write_folders(tmp_path / "m", list(zip(names, [USERS, POSTS, INDEX], strict=True)))
    db = tmp_path / "app.db"
    sources = [folder / n / "migration.sql" for n in names]
    millis = [1_740_065_445_000, int(datetime(2025, 2, 21, 9, tzinfo=UTC).timestamp()) * 1000]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(USERS + POSTS)
        conn.execute(DRIZZLE_0X_CREATE)
        # 0.x wrote the journal's `when`, which has milliseconds the folder name does not.
        for source, ms in zip(sources[:2], millis, strict=True):
            conn.execute(
                'INSERT INTO "__drizzle_migrations" ("hash", "created_at") VALUES(?, ?)',
                (sha256_file(source), ms + 421),
            )
        conn.commit()

    assert list(status_of(db, folder)["states"].values()) == ["applied", "applied", "pending"]
    outcome = applied(db, folder)
    assert [a.name for a in outcome.applied] == ["20250222120000_index"]  # nothing re-applied

    columns = [r[1] for r in query(db, "SELECT * FROM pragma_table_info('__drizzle_migrations')")]
    assert columns == ["id", "hash", "created_at", "name", "applied_at"]
    rows = query(db, "SELECT hash, created_at, name, applied_at FROM __drizzle_migrations")
    assert [r[:3] for r in rows] == [
        (sha256_file(sources[0]), millis[0] + 421, names[0]),
        (sha256_file(sources[1]), millis[1] + 421, names[1]),
        (
            sha256_file(sources[2]),
            int(datetime(2025, 2, 22, 12, tzinfo=UTC).timestamp()) * 1000,
            names[2],
        ),
    ]
    assert rows[0][3] is None and rows[1][3] is None  # back-filled rows: applied_at NULL
    assert ISO_MS.match(rows[2][3])
    assert list(status_of(db, folder)["states"].values()) == ["applied"] * 3


# --- a name that cannot be the history ------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("sqlite_history", "is reserved"),  # was: internal error from SQLite
        ("SQLite_Stat1", "is reserved"),
        ("users", "exists and is not a litedeploy history table"),  # the app's own table
        ("USERS", "exists and is not a litedeploy history table"),  # names ignore case
        ("users_name", "taken by the database's index"),
        ("recent", "taken by the database's view"),
        ("his\ntory", "contains a control character"),
    ],
)
@pytest.mark.parametrize("command", ["run", "status"])
def test_a_history_table_name_that_cannot_be_one_is_refused(
    tmp_path: Path, cli: Cli, name: str, needle: str, command: str
) -> None:
    folder = write_plain(
        tmp_path / "m",
        [
            (
                "0001_init",
                "CREATE TABLE users (id integer PRIMARY KEY, name text);\n"
                "CREATE INDEX users_name ON users (name);\n"
                "CREATE VIEW recent AS SELECT * FROM users;\n"
                "INSERT INTO users VALUES (1, 'ann');",
            )
        ],
    )
    db = tmp_path / "app.db"
    applied(db, folder)
    write_plain(folder, [("0002_more", "ALTER TABLE users ADD email text;")])
    before = db_state(db)
    proc = cli(command, "--db", db, "--migrations", folder, "--history-table", name)
    assert_one_clear_error(proc, 2, needle)
    assert db_state(db) == before


def test_a_drizzle_folder_against_a_litedeploy_history_is_refused(tmp_path: Path, cli: Cli) -> None:
    """A history of another layout under the name asked for: not read as drizzle's."""
    db = tmp_path / "app.db"
    applied(db, write_plain(tmp_path / "plain", [("0001_init", "CREATE TABLE a (id integer);")]))
    folder = write_journal(tmp_path / "m", [("0000_init", "CREATE TABLE b (id integer);")])
    before = db_state(db)
    proc = cli(
        "run", "--db", db, "--migrations", folder, "--history-table", "__litedeploy_migrations"
    )
    assert_one_clear_error(proc, 2, "not a drizzle history table", "created_at")
    assert db_state(db) == before
