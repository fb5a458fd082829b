"""The rehearsal writes nothing but its copy: ATTACH and VACUUM INTO are fenced off.

A migration that attached another database file and moved rows out of it ran twice before,
once on the rehearsal's copy and once for real, both against the same attached file: the
rehearsal's DELETE emptied the real file, the real run then moved nothing, and `run` exited 0.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from harness import Cli, applied, assert_one_clear_error, make_db, query, write_journal

from entrypoint.settings import Policy

INIT = "CREATE TABLE notes (id integer PRIMARY KEY, body text);"


def setup(tmp_path: Path, sql: str) -> tuple[Path, Path, Path]:
    """data/app.db at 0000_init; `sql` pending as 0001_move; other.db with 50 rows."""
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "app.db"
    applied(db, write_journal(tmp_path / "done", [("0000_init", INIT)]), backup=Policy.NEVER)
    other = tmp_path / "other.db"
    make_db(other, "CREATE TABLE old_notes (id integer PRIMARY KEY, body text);")
    with sqlite3.connect(other) as conn:
        conn.executemany("INSERT INTO old_notes VALUES (?, ?)", [(i, f"n{i}") for i in range(50)])
    folder = write_journal(tmp_path / "m", [("0000_init", INIT), ("0001_move", sql)])
    return db, folder, other


MOVE = (
    "ATTACH DATABASE '{other}' AS legacy;\n"
    "INSERT INTO notes SELECT id, body FROM legacy.old_notes;\n"
    "DELETE FROM legacy.old_notes;\n"
)


def test_a_migration_opening_another_file_is_refused_before_anything_runs(
    tmp_path: Path, cli: Cli
) -> None:
    db, folder, other = setup(tmp_path, "")
    (folder / "0001_move.sql").write_text(MOVE.format(other=other))
    before = db.read_bytes()
    proc = cli("run", "--db", db, "--migrations", folder)
    line = assert_one_clear_error(proc, 15, "0001_move statement 1: [attach]", "(ATTACH)")
    assert "the backup does not cover it" in line
    assert query(other, "SELECT count(*) FROM old_notes") == [(50,)]
    assert db.read_bytes() == before


def test_the_rehearsal_cannot_write_the_attached_file(tmp_path: Path, cli: Cli) -> None:
    db, folder, other = setup(tmp_path, "")
    sql = "-- litedeploy: allow attach 0001_move\n" + MOVE.format(other=other)
    (folder / "0001_move.sql").write_text(sql)
    before = db.read_bytes()
    for command in ("run", "rehearse"):
        proc = cli(command, "--db", db, "--migrations", folder)
        code = 6 if command == "run" else 15
        line = assert_one_clear_error(proc, code, "0001_move", str(other))
        assert "outside the rehearsal's copy" in line
        assert query(other, "SELECT count(*) FROM old_notes") == [(50,)]  # untouched
        assert db.read_bytes() == before
    # acknowledged and run without a rehearsal, it does what it says, once
    proc = cli("run", "--db", db, "--migrations", folder, "--no-rehearse")
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT count(*) FROM notes") == [(50,)]
    assert query(other, "SELECT count(*) FROM old_notes") == [(0,)]


def test_vacuum_into_writes_no_file_from_the_rehearsal(tmp_path: Path, cli: Cli) -> None:
    # SQLite refuses VACUUM inside the migration's transaction anyway; the fence would
    # refuse the file too (VACUUM INTO asks for SQLITE_ATTACH)
    target = tmp_path / "copy-of-app.db"
    sql = f"-- litedeploy: allow attach 0001_move\nVACUUM INTO '{target}';\n"
    db, folder, _ = setup(tmp_path, sql)
    proc = cli("rehearse", "--db", db, "--migrations", folder)
    assert_one_clear_error(proc, 15, "0001_move failed on the copy")
    assert not target.exists()
    found = cli("plan", "--db", db, "--migrations", folder)
    assert "[attach]" not in found.stderr and "attach" in found.stdout  # acknowledged, shown


def test_transaction_control_never_commits_half_a_migration(tmp_path: Path, cli: Cli) -> None:
    """Reachable in staging (--findings warn): COMMIT in the middle used to leave the first
    half applied with no history row; with the rehearsal on it was an internal error."""
    sql = (
        "CREATE TABLE a (x integer);\nCOMMIT;\n"
        "CREATE TABLE b (y integer);\nINSERT INTO nope VALUES (1);"
    )
    db, folder, _ = setup(tmp_path, sql)
    before = db.read_bytes()
    relaxed = ("--findings", "warn", "--env", "staging")
    proc = cli("run", "--db", db, "--migrations", folder, *relaxed)
    assert_one_clear_error(proc, 6, "0001_move", "no such table: nope", "fails on a copy")
    assert db.read_bytes() == before
    proc = cli("run", "--db", db, "--migrations", folder, *relaxed, "--no-rehearse")
    assert_one_clear_error(proc, 6, "statement 4 failed", "no such table: nope")
    assert "statement 2: COMMIT skipped" in proc.stderr
    tables = {r[0] for r in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert not {"a", "b"} & tables  # the whole file rolled back, as the hint says
    assert "nothing of it" in proc.stderr.splitlines()[-1]
    assert query(db, "SELECT count(*) FROM __drizzle_migrations") == [(1,)]
