"""Applying: foreign keys as the app's driver has them, drizzle-kit rebuilds done right,
per-migration or all-in-one transactions, and failures that leave no trace."""

from __future__ import annotations

import contextlib
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    Cli,
    applied,
    assert_one_clear_error,
    db_state,
    make_db,
    query,
    write_journal,
    write_plain,
)

from entrypoint.base.errors import MigrationFailed
from entrypoint.engine import history
from entrypoint.engine.apply import apply_migrations
from entrypoint.engine.sources import Format, load_source
from entrypoint.safetynet.database import connect

Invoke = Callable[..., Any]

INIT = """\
CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE posts (
  id integer PRIMARY KEY,
  user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title text
);
CREATE TABLE notes (id integer PRIMARY KEY, user_id integer REFERENCES users(id), body text);
INSERT INTO users VALUES (1, 'ann'), (2, 'bob');
INSERT INTO posts VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 2, 'c');
INSERT INTO notes VALUES (1, 1, 'x');
"""

# What drizzle-kit generates to add a column it cannot ALTER in: a table rebuild.
REBUILD_USERS = """\
PRAGMA foreign_keys=OFF;--> statement-breakpoint
CREATE TABLE `__new_users` (`id` integer PRIMARY KEY, `name` text NOT NULL, `email` text);
--> statement-breakpoint
INSERT INTO `__new_users`("id", "name") SELECT "id", "name" FROM `users`{where};
--> statement-breakpoint
DROP TABLE `users`;--> statement-breakpoint
ALTER TABLE `__new_users` RENAME TO `users`;--> statement-breakpoint
PRAGMA foreign_keys=ON;"""


def counts(db: Path) -> dict[str, int]:
    return {t: query(db, f"SELECT count(*) FROM {t}")[0][0] for t in ("users", "posts", "notes")}


def recorded(db: Path, table: str = "__drizzle_migrations") -> int:
    return int(query(db, f"SELECT count(*) FROM {table}")[0][0])


def shop(tmp_path: Path, *later: tuple[str, str]) -> tuple[Path, Path]:
    """A journal folder whose first migration has been applied, with `later` ones pending."""
    folder = write_journal(tmp_path / "m", [("0000_init", INIT)])
    db = tmp_path / "app.db"
    applied(db, folder)
    write_journal(folder, [("0000_init", INIT), *later])
    return db, folder


def run(invoke: Invoke, db: Path, folder: Path, *extra: str) -> Any:
    return invoke("run", "--db", db, "--migrations", folder, *extra)


def test_data_migration_cascades_with_foreign_keys_on(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = shop(tmp_path, ("0001_drop_bob", "DELETE FROM users WHERE id = 2;"))
    result = run(invoke, db, folder)
    assert result.exit_code == 0, result.stderr
    assert counts(db) == {"users": 1, "posts": 2, "notes": 1}  # bob's post went with him


def test_data_migration_that_orphans_rows_fails_with_foreign_keys_on(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, folder = shop(tmp_path, ("0001_drop_ann", "DELETE FROM users WHERE id = 1;"))
    before = db_state(db)
    result = run(invoke, db, folder)
    assert result.exit_code == 6
    assert "FOREIGN KEY constraint failed" in result.stderr
    assert db_state(db) == before


def test_rebuild_the_drizzle_way_loses_rows(tmp_path: Path) -> None:
    """Control for the next test: one transaction with foreign keys ON deletes the children."""
    db = make_db(tmp_path / "control.db", INIT)
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("BEGIN")
        conn.execute("DELETE FROM notes")  # so the NO ACTION child does not abort the drop
        for chunk in REBUILD_USERS.format(where="").split("--> statement-breakpoint"):
            conn.execute(chunk)  # the PRAGMA is silently ignored inside the transaction
        conn.execute("COMMIT")
    assert query(db, "SELECT count(*) FROM posts") == [(0,)]


def test_rebuild_with_foreign_keys_off_keeps_cascading_children(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, folder = shop(tmp_path, ("0001_users_email", REBUILD_USERS.format(where="")))
    result = run(invoke, db, folder)
    assert result.exit_code == 0, result.stderr
    assert counts(db) == {"users": 2, "posts": 3, "notes": 1}
    assert "email" in [r[1] for r in query(db, "SELECT * FROM pragma_table_info('users')")]
    assert re.search(r"statement 1: PRAGMA foreign_keys=OFF skipped", result.stderr)
    assert re.search(r"statement 6: PRAGMA foreign_keys=ON skipped", result.stderr)
    assert query(db, "PRAGMA foreign_key_check") == []
    assert recorded(db) == 2


def test_rebuild_that_leaves_orphans_is_rolled_back(tmp_path: Path, cli: Cli) -> None:
    """The rebuild copies only ann; bob's post (rowid 3) would point at nothing."""
    rebuild = REBUILD_USERS.format(where=" WHERE id = 1")
    db, folder = shop(tmp_path, ("0001_users_email", rebuild))
    before = db_state(db)
    gated = cli("run", "--db", db, "--migrations", folder)  # the rehearsal fails on the copy
    line = assert_one_clear_error(gated, 6, "rehearsal: 0001_users_email fails on a copy")
    assert "posts rowid 3 -> users" in line
    assert (
        "predicted: [foreign-key-violated] posts: 1 row(s) would reference a missing users" in line
    )
    assert db_state(db) == before
    # Past the gate (as on a staging stack that relaxes it), the foreign key check rolls back.
    proc = cli("run", "--db", db, "--migrations", folder, "--no-rehearse", "--findings", "warn")
    assert_one_clear_error(proc, 6, "0001_users_email", "posts rowid 3 -> users")
    assert db_state(db) == before
    assert counts(db) == {"users": 2, "posts": 3, "notes": 1}


def test_session_foreign_keys_setting_is_restored(tmp_path: Path) -> None:
    ok = REBUILD_USERS.format(where="")
    orphaning = REBUILD_USERS.format(where=" WHERE id = 1")
    plain = "INSERT INTO users VALUES (3, 'cy');"
    for initially_on in (True, False):
        for sql, should_fail in [(ok, False), (orphaning, True), (plain, False)]:
            work = tmp_path / f"{initially_on}-{len(sql)}"
            db = make_db(work.with_suffix(".db"), INIT)
            source = load_source(write_plain(work, [("0001_change", sql)]))
            with contextlib.closing(connect(db)) as conn:
                conn.execute(f"PRAGMA foreign_keys = {'ON' if initially_on else 'OFF'}")
                table = history.locate(conn, Format.SQL)
                try:
                    apply_migrations(
                        conn,
                        table,
                        source.migrations,
                        prepare=lambda tx: history.create(tx, table),  # noqa: B023 (run at once)
                    )
                except MigrationFailed:
                    assert should_fail
                else:
                    assert not should_fail
                setting = conn.execute("PRAGMA foreign_keys").fetchone()[0]
            assert setting == int(initially_on), (initially_on, sql)
            assert query(db, "SELECT count(*) FROM posts") == [(3,)]


FAILING_THIRD = [
    ("0001_a", "CREATE TABLE a (id integer);"),
    ("0002_b", "CREATE TABLE b (id integer);"),
    ("0003_c", "CREATE TABLE c (id integer);\nINSERT INTO nope VALUES (1);\n"),
    ("0004_d", "CREATE TABLE d (id integer);"),
]


def user_tables(db: Path) -> set[str]:
    rows = query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in rows if not r[0].startswith("__")}


def test_each_migration_commits_on_its_own(tmp_path: Path, cli: Cli) -> None:
    db = make_db(tmp_path / "app.db", "CREATE TABLE kept (id integer);")
    folder = write_plain(tmp_path / "m", FAILING_THIRD)
    # past the gate, which predicts the failure: no rehearsal, findings relaxed (staging)
    proc = cli(
        "run",
        "--db",
        db,
        "--migrations",
        folder,
        "--backup",
        "never",
        "--no-rehearse",
        "--findings",
        "warn",
    )
    line = assert_one_clear_error(proc, 6)
    assert str(folder / "0003_c.sql") in line
    assert "statement 2 failed" in line
    assert "no such table: nope" in line
    assert user_tables(db) == {"kept", "a", "b"}  # c's first statement rolled back too
    names = [r[0] for r in query(db, "SELECT name FROM __litedeploy_migrations ORDER BY rowid")]
    assert names == ["0001_a", "0002_b"]
    assert re.search(r"Applied 0001_a in \d+ ms", proc.stderr)


def test_transaction_all_applies_nothing_on_failure(tmp_path: Path, invoke: Invoke) -> None:
    db = make_db(tmp_path / "app.db", "CREATE TABLE kept (id integer);")
    folder = write_plain(tmp_path / "m", FAILING_THIRD)
    before = db_state(db)
    result = run(invoke, db, folder, "--transaction", "all")
    assert result.exit_code == 6
    assert "statement 2 failed: no such table: nope" in result.stderr
    assert db_state(db) == before  # not even the history table was created


def test_transaction_all_applies_everything(tmp_path: Path, invoke: Invoke) -> None:
    db = tmp_path / "app.db"
    folder = write_plain(tmp_path / "m", [FAILING_THIRD[0], FAILING_THIRD[1], FAILING_THIRD[3]])
    result = run(invoke, db, folder, "--transaction", "all")
    assert result.exit_code == 0, result.stderr
    assert user_tables(db) == {"a", "b", "d"}
    assert recorded(db, "__litedeploy_migrations") == 3


@pytest.mark.parametrize("transaction", ["each", "all"])
def test_new_database_whose_first_migration_failed_is_removed(
    tmp_path: Path, invoke: Invoke, transaction: str
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    db = data / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_bad", "CREATE TABLE a (id integer);\nBOGUS;")])
    result = run(invoke, db, folder, "--transaction", transaction)
    assert result.exit_code == 6
    assert not db.exists()
    # The lock file stays by design: unlinking a lock file others may be waiting on would let
    # two migrators in at once. Nothing else may be left behind.
    assert sorted(p.name for p in data.iterdir()) == ["app.db.lock"]


def test_skipped_chunks_are_logged_and_the_rest_applies(tmp_path: Path, invoke: Invoke) -> None:
    sql = (
        "CREATE TABLE a (id integer);\n--> statement-breakpoint\n\n"
        "--> statement-breakpoint\n-- nothing\n--> statement-breakpoint\n"
        "CREATE TABLE b (id integer);"
    )
    folder = write_journal(tmp_path / "m", [("0000_init", sql)])
    db = tmp_path / "app.db"
    result = run(invoke, db, folder)
    assert result.exit_code == 0, result.stderr
    assert "0000_init: skipped 2 empty or comment-only chunk(s)" in result.stderr
    assert user_tables(db) == {"a", "b"}


def test_second_run_applies_nothing(tmp_path: Path, invoke: Invoke) -> None:
    folder = write_plain(tmp_path / "m", FAILING_THIRD[:2])
    db = tmp_path / "app.db"
    assert run(invoke, db, folder).exit_code == 0
    before = db_state(db)
    result = run(invoke, db, folder)
    assert result.exit_code == 0
    assert "nothing to apply; database is at 0002_b" in result.stderr
    assert db_state(db) == before


@pytest.mark.parametrize("journal", ["wal", "delete"])
@pytest.mark.parametrize("initially", [0, 1, 2, 3], ids=["OFF", "NORMAL", "FULL", "EXTRA"])
def test_commits_sync_once_at_the_end_in_wal_and_the_setting_is_restored(
    tmp_path: Path, journal: str, initially: int
) -> None:
    """In WAL mode at FULL or EXTRA the run's commits go at NORMAL and the WAL is synced once
    after them; whatever the outcome, the session's own level comes back."""
    ok = REBUILD_USERS.format(where="")
    orphaning = REBUILD_USERS.format(where=" WHERE id = 1")
    for sql, should_fail in [(ok, False), (orphaning, True)]:
        work = tmp_path / f"{len(sql)}"
        db = make_db(work.with_suffix(".db"), INIT)
        source = load_source(write_plain(work, [("0001_a", "SELECT 1;"), ("0002_b", sql)]))
        seen: list[str] = []
        with contextlib.closing(connect(db)) as conn:
            conn.execute(f"PRAGMA journal_mode = {journal}")
            conn.execute(f"PRAGMA synchronous = {initially}")
            table = history.locate(conn, Format.SQL)
            conn.set_trace_callback(seen.append)
            with contextlib.suppress(MigrationFailed) if should_fail else contextlib.nullcontext():
                apply_migrations(
                    conn,
                    table,
                    source.migrations,
                    prepare=lambda tx: history.create(tx, table),  # noqa: B023 (run at once)
                )
                assert not should_fail, "the orphaning rebuild must fail"
            conn.set_trace_callback(None)
            assert conn.execute("PRAGMA synchronous").fetchone()[0] == initially
        relaxed = "PRAGMA main.synchronous = NORMAL" in seen
        assert relaxed is (journal == "wal" and initially >= 2)
        assert recorded(db, table.name) == (1 if should_fail else 2)


def test_a_failed_sync_after_the_commits_restores_the_backup(tmp_path: Path, cli: Cli) -> None:
    """The fsync of the WAL failing (an injected EIO) is a failed migration: the database
    is put back from the backup taken before the run, the migrated file kept in quarantine."""
    db, folder = shop(tmp_path, ("0001_users_email", REBUILD_USERS.format(where="")))
    before = db_state(db)
    fault = {"LITEDEPLOY_FAULT": "apply.sync@1:error"}
    proc = cli("run", "--db", db, "--migrations", folder, env=fault)
    line = assert_one_clear_error(proc, 6, "could not be synced to disk")
    assert "the backup taken before it was restored" in line
    assert db_state(db) == before
    assert [p.name for p in (tmp_path / "quarantine").glob("*/*")] == ["app.db"]
