"""Checks after migrating (rows lost, foreign keys) and `entrypoint check` on demand; a failed
check, or a failure after earlier migrations committed, puts the pre-run backup back."""

from __future__ import annotations

import contextlib
import json
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
    backup_files,
    corrupt_pages,
    db_state,
    dump,
    query,
    write_plain,
)

Invoke = Callable[..., Any]

INIT = """\
CREATE TABLE users (id integer PRIMARY KEY, name text NOT NULL);
CREATE TABLE posts (
  id integer PRIMARY KEY,
  user_id integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  title text
);
CREATE TABLE likes (
  id integer PRIMARY KEY,
  post_id integer NOT NULL REFERENCES posts(id) ON DELETE CASCADE
);
CREATE TABLE tags (id integer PRIMARY KEY, name text NOT NULL);
INSERT INTO users VALUES (1, 'ann'), (2, 'bob');
INSERT INTO posts VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 2, 'c');
INSERT INTO likes VALUES (1, 1), (2, 3), (3, 3);
INSERT INTO tags VALUES (1, 'red'), (2, 'green'), (3, 'blue'), (4, 'cyan'), (5, 'pink');
"""

# A hand-written rebuild to add a column, whose INSERT ... SELECT keeps only some rows.
LOSSY_REBUILD = """\
CREATE TABLE `__new_tags` (`id` integer PRIMARY KEY, `name` text NOT NULL, `color` text);
--> statement-breakpoint
INSERT INTO `__new_tags` (`id`, `name`) SELECT `id`, `name` FROM `tags` WHERE `id` <= 2;
--> statement-breakpoint
DROP TABLE `tags`;
--> statement-breakpoint
ALTER TABLE `__new_tags` RENAME TO `tags`;
"""


def shop(tmp_path: Path, *later: tuple[str, str]) -> tuple[Path, Path]:
    """data/app.db with 0001_init applied, and `later` migrations pending."""
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    applied(db, folder)
    write_plain(folder, later)
    return db, folder


# The safety net after applying, reached past the gate (as with --no-rehearse on a staging
# stack that relaxes findings): what the rehearsal would have refused, the check catches.
PAST_THE_GATE = ("--no-rehearse", "--findings", "warn")


def counts(db: Path) -> dict[str, int]:
    tables = ("users", "posts", "likes", "tags")
    return {t: query(db, f"SELECT count(*) FROM {t}")[0][0] for t in tables}


def history(db: Path) -> list[str]:
    return [r[0] for r in query(db, "SELECT name FROM __litedeploy_migrations ORDER BY rowid")]


def columns(db: Path, table: str) -> list[str]:
    return [r[1] for r in query(db, f"SELECT * FROM pragma_table_info('{table}')")]


def quarantined(db: Path) -> Path:
    [folder] = (db.parent / "quarantine").iterdir()
    return folder


# --- rows lost -------------------------------------------------------------------------------


def test_silent_row_loss_restores_the_backup(tmp_path: Path, cli: Cli) -> None:
    db, folder = shop(tmp_path, ("0002_tag_color", LOSSY_REBUILD))
    before = db_state(db)
    proc = cli("run", "--db", db, "--migrations", folder, *PAST_THE_GATE)
    line = assert_one_clear_error(proc, 11, "tags: 3 of 5 row(s) vanish", "restored the backup")
    assert "--allow-row-loss" in proc.stderr  # the hint says how to accept it
    after = db_state(db)
    assert after.dump == before.dump
    assert after.data == before.data  # the backup was a byte copy of the quiet database
    assert history(db) == ["0001_init"]
    [backup] = backup_files(db.parent / "backups")
    assert backup.name in line
    migrated = quarantined(db) / "app.db"  # kept, as the evidence
    assert query(migrated, "SELECT count(*) FROM tags") == [(2,)]
    assert "color" in columns(migrated, "tags")
    assert str(quarantined(db)) in proc.stderr


@pytest.mark.parametrize("how", ["option", "env"])
def test_row_loss_allowed(tmp_path: Path, invoke: Invoke, how: str) -> None:
    db, folder = shop(tmp_path, ("0002_tag_color", LOSSY_REBUILD))
    args: list[Any] = ["run", "--db", db, "--migrations", folder]
    if how == "option":
        result = invoke(*args, "--allow-row-loss")
    else:
        result = invoke(*args, env={"LITEDEPLOY_ALLOW_ROW_LOSS": "1"})
    assert result.exit_code == 0, result.stderr
    assert "rows removed: tags: 3 of 5 row(s) vanish; acknowledged by --allow-row-loss" in (
        result.stderr
    )  # still reported
    assert counts(db)["tags"] == 2
    assert history(db) == ["0001_init", "0002_tag_color"]
    assert not (db.parent / "quarantine").exists()


def test_silent_row_loss_without_a_backup_is_left_as_migrated(tmp_path: Path, cli: Cli) -> None:
    db, folder = shop(tmp_path, ("0002_tag_color", LOSSY_REBUILD))
    proc = cli("run", "--db", db, "--migrations", folder, "--backup", "never", *PAST_THE_GATE)
    assert_one_clear_error(proc, 11, "tags: 3 of 5 row(s) vanish", "no backup to restore")
    assert counts(db)["tags"] == 2
    assert not (db.parent / "quarantine").exists()


def test_explicit_delete_and_its_cascade_are_reported_not_failed(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, folder = shop(
        tmp_path,
        ("0002_drop_bob", "DELETE FROM users WHERE id = 2;"),
        ("0003_clear_tags", 'DELETE FROM "tags";'),
    )
    result = invoke("run", "--db", db, "--migrations", folder)
    assert result.exit_code == 0, result.stderr
    assert counts(db) == {"users": 1, "posts": 2, "likes": 1, "tags": 0}
    said = result.stderr
    assert "rows removed: users: 1 of 2 row(s) vanish, as 0002_drop_bob statement 1 says" in said
    # the cascade, and its child
    assert (
        "rows removed: posts: 1 of 3 row(s) vanish, as 0002_drop_bob statement 1 "
        "(ON DELETE CASCADE) says" in said
    )
    assert (
        "rows removed: likes: 2 of 3 row(s) vanish, as 0002_drop_bob statement 1 "
        "(ON DELETE CASCADE) says" in said
    )
    assert "rows removed: tags: 5 of 5 row(s) vanish, as 0003_clear_tags statement 1 says" in said
    assert "rows lost" not in said
    assert history(db) == ["0001_init", "0002_drop_bob", "0003_clear_tags"]


def test_dropping_a_table_for_good_is_not_a_failure(tmp_path: Path, invoke: Invoke) -> None:
    sql = "-- litedeploy: allow drop-table tags\nDROP TABLE `tags`;"
    db, folder = shop(tmp_path, ("0002_drop_tags", sql))
    result = invoke("run", "--db", db, "--migrations", folder)
    assert result.exit_code == 0, result.stderr
    assert "tags: 5 of 5 row(s) vanish (the table is gone), as 0002_drop_tags statement" in (
        result.stderr
    )
    assert "tags" not in [r[0] for r in query(db, "SELECT name FROM sqlite_master")]


def test_a_table_emptied_without_being_asked_is_a_failure(tmp_path: Path, cli: Cli) -> None:
    """The rebuild copies nothing; a DROP of the same name does not explain it."""
    db, folder = shop(tmp_path, ("0002_tag_color", LOSSY_REBUILD.replace("<= 2", "> 100")))
    before = dump(db)
    proc = cli("run", "--db", db, "--migrations", folder, *PAST_THE_GATE)
    assert_one_clear_error(proc, 11, "tags: 5 of 5 row(s) vanish")
    assert dump(db) == before


def test_violations_already_there_do_not_block_a_migration(tmp_path: Path, invoke: Invoke) -> None:
    """The app wrote an orphan with foreign keys off; migrating neither adds nor fails on it."""
    db, folder = shop(tmp_path, ("0002_z", "CREATE TABLE z (id integer);"))
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO posts VALUES (9, 99, 'orphan')")
        conn.commit()
    result = invoke("run", "--db", db, "--migrations", folder)
    assert result.exit_code == 0, result.stderr
    assert "1 foreign key violation(s) were there before migrating" in result.stderr
    assert history(db) == ["0001_init", "0002_z"]


# --- a failure after earlier migrations committed --------------------------------------------

THREE = [
    ("0002_a", "CREATE TABLE a (id integer);\nINSERT INTO a VALUES (1);"),
    ("0003_b", "CREATE TABLE b (id integer);"),
    ("0004_bad", "CREATE TABLE c (id integer);\nINSERT INTO nope VALUES (1);"),
]


def test_the_rehearsal_catches_a_failing_migration_before_anything_is_touched(
    tmp_path: Path, cli: Cli
) -> None:
    db, folder = shop(tmp_path, *THREE)
    before = db_state(db)
    proc = cli("run", "--db", db, "--migrations", folder)
    line = assert_one_clear_error(proc, 6, "rehearsal: 0004_bad", "no such table: nope")
    assert "fails on a copy of the database" in line
    assert "live database was not touched" in line
    assert db_state(db) == before
    assert history(db) == ["0001_init"]
    assert not (db.parent / "backups").exists()  # refused before the backup was even taken
    assert not (db.parent / "quarantine").exists()
    assert "Applying" not in proc.stderr  # the copy's progress is not the live one's


def user_tables(db: Path) -> set[str]:
    rows = query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")
    return {r[0] for r in rows if not r[0].startswith("__")}


def test_failure_after_earlier_migrations_committed_restores_the_backup(
    tmp_path: Path, cli: Cli
) -> None:
    db, folder = shop(tmp_path, *THREE)
    before = db_state(db)
    # past the gate: no rehearsal, and the findings' prediction relaxed (staging)
    proc = cli("run", "--db", db, "--migrations", folder, *PAST_THE_GATE)
    assert_one_clear_error(
        proc, 6, "0004_bad.sql", "no such table: nope", "the backup taken before it was restored"
    )
    after = db_state(db)
    assert after.dump == before.dump
    assert after.data == before.data
    assert history(db) == ["0001_init"]
    partial = quarantined(db) / "app.db"
    assert {"a", "b"} <= user_tables(partial)  # what had committed, kept aside
    assert str(quarantined(db)) in proc.stderr


def test_failure_after_earlier_migrations_without_a_backup(tmp_path: Path, cli: Cli) -> None:
    db, folder = shop(tmp_path, *THREE)
    proc = cli("run", "--db", db, "--migrations", folder, "--backup", "never", *PAST_THE_GATE)
    assert_one_clear_error(proc, 6, "0004_bad.sql", "no such table: nope")
    assert "restored" not in proc.stderr
    assert history(db) == ["0001_init", "0002_a", "0003_b"]
    assert user_tables(db) == {"users", "posts", "likes", "tags", "a", "b"}
    assert not (db.parent / "quarantine").exists()


def test_failure_of_the_first_pending_migration_needs_no_restore(tmp_path: Path, cli: Cli) -> None:
    db, folder = shop(tmp_path, THREE[2])
    before = db_state(db)
    proc = cli("run", "--db", db, "--migrations", folder, *PAST_THE_GATE)
    assert_one_clear_error(proc, 6, "no such table: nope")
    assert "restored" not in proc.stderr
    assert db_state(db) == before  # rolled back by SQLite
    assert not (db.parent / "quarantine").exists()
    assert len(backup_files(db.parent / "backups")) == 1


# --- `entrypoint check` ----------------------------------------------------------------------


def test_check_of_a_sound_database(tmp_path: Path, cli: Cli) -> None:
    db, _ = shop(tmp_path)
    before = db_state(db)
    proc = cli("check", "--db", db)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["quick_check: ok", "foreign keys: ok"]
    assert "  tags: 5 rows" in lines
    assert "  posts: 3 rows" in lines
    assert "  __litedeploy_migrations: 1 rows" in lines

    proc = cli("check", "--db", db, "--json", "--check", "integrity")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {
        "ok": True,
        "integrity": [],
        "foreign_keys": [],
        "row_counts": {"__litedeploy_migrations": 1, **dict(sorted(counts(db).items()))},
    }
    assert db_state(db) == before  # a check writes nothing


def orphan(db: Path) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:  # foreign keys off, as sqlite3 has it
        conn.execute("INSERT INTO posts VALUES (9, 99, 'orphan')")
        conn.commit()


def test_check_finds_a_foreign_key_violation(tmp_path: Path, cli: Cli) -> None:
    db, _ = shop(tmp_path)
    orphan(db)
    before = db_state(db)
    proc = cli("check", "--db", db)
    assert_one_clear_error(proc, 11, "foreign key: posts rowid 9 -> users")
    assert "foreign keys: FAILED" in proc.stdout
    proc = cli("check", "--db", db, "--json")
    assert proc.returncode == 11
    report = json.loads(proc.stdout)
    assert report["ok"] is False
    assert report["foreign_keys"] == ["posts rowid 9 -> users"]
    assert db_state(db) == before


def test_check_finds_a_damaged_database(tmp_path: Path, cli: Cli) -> None:
    db, _ = shop(tmp_path)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executemany("INSERT INTO tags (name) VALUES (?)", [("x" * 1000,)] * 300)
        conn.commit()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    corrupt_pages(db, range(pages - 20, pages - 10))
    proc = cli("check", "--db", db, "--check", "integrity")
    line = assert_one_clear_error(proc, 11, "integrity:")
    assert re.search(r"malformed|corrupt|Tree|page", line), line
    assert "integrity_check: FAILED" in proc.stdout


def test_check_of_a_missing_database(tmp_path: Path, cli: Cli) -> None:
    proc = cli("check", "--db", tmp_path / "app.db")
    assert_one_clear_error(proc, 4, "does not exist")
    assert not (tmp_path / "app.db").exists()
