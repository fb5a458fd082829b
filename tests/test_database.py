"""Opening the database: SQLite's reasons for refusing, told as they are, with the right hint."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from harness import (
    Cli,
    applied,
    assert_one_clear_error,
    cli_env,
    db_state,
    entrypoint_argv,
    query,
    without_caps,
    write_plain,
)

INIT = [("0001_init", "CREATE TABLE t (id integer PRIMARY KEY, x blob);")]
NEXT = [("0002_next", "CREATE TABLE u (id integer);")]

WRITER_KILLED_MID_TRANSACTION = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("PRAGMA cache_size = 10")  # spill to the file before COMMIT
conn.execute("BEGIN")
conn.execute("UPDATE t SET x = randomblob(1000)")
os.kill(os.getpid(), signal.SIGKILL)
"""


def digest(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows = conn.execute("SELECT id, x FROM t ORDER BY id").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def with_hot_journal(tmp_path: Path) -> tuple[Path, Path, str]:
    """A rollback-journal database whose writer was killed mid-transaction: `<db>-journal`
    holds the pages to put back. Returns the database, the folder, the committed data's hash."""
    db = tmp_path / "app.db"
    folder = write_plain(tmp_path / "m", INIT)
    applied(db, folder, journal_mode="delete")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "WITH RECURSIVE c(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM c WHERE i < 2000) "
            "INSERT INTO t (id, x) SELECT i, randomblob(1000) FROM c"
        )
        conn.commit()
    committed = digest(db)
    subprocess.run([sys.executable, "-c", WRITER_KILLED_MID_TRANSACTION, db], check=False)
    journal = db.with_name("app.db-journal")
    assert journal.exists() and journal.stat().st_size > 0, "no hot journal was left"
    return db, folder, committed


@pytest.mark.parametrize("command", ["status", "plan", "check"])
def test_a_hot_journal_is_rolled_back_not_called_damage(
    tmp_path: Path, cli: Cli, command: str
) -> None:
    """It said "the file may be damaged; restore it from a backup": following that hint
    throws away everything committed since the backup. SQLite just rolls the journal back."""
    db, folder, committed = with_hot_journal(tmp_path)
    args = ["--db", db] + (["--migrations", folder] if command != "check" else [])
    proc = cli(command, *args)
    assert proc.returncode == 0, proc.stderr
    assert "hot rollback journal" in proc.stderr and "rolled the" in proc.stderr
    assert "damaged" not in proc.stderr
    assert not db.with_name("app.db-journal").exists()
    assert digest(db) == committed


def test_a_hot_journal_this_process_may_not_roll_back_is_explained(tmp_path: Path) -> None:
    db, folder, _ = with_hot_journal(tmp_path)
    journal = db.with_name("app.db-journal")
    journal_bytes, db_bytes = journal.read_bytes(), db.read_bytes()
    db.chmod(0o444)
    try:
        proc = subprocess.run(
            [
                *without_caps("dac_override"),
                *entrypoint_argv("status", "--db", db, "--migrations", folder),
            ],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        db.chmod(0o644)
    line = assert_one_clear_error(proc, 4, "hot rollback journal", "not damaged")
    assert "restore it from a backup" not in proc.stderr
    assert "do not restore a backup" in proc.stderr  # the hint warns against it
    assert "app.db-journal" in line
    assert (journal.read_bytes(), db.read_bytes()) == (journal_bytes, db_bytes)


def immutable(path: Path) -> None:
    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("chattr (e2fsprogs) is missing; the read-only file case covers the same")
    done = subprocess.run([chattr, "+i", path], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"this filesystem has no immutable attribute: {done.stderr.strip()}")


@pytest.mark.parametrize("how", ["immutable", "read-only-file"])
@pytest.mark.parametrize("backup", ["pending", "never"])
def test_a_database_the_entrypoint_cannot_write_is_not_a_migration_error(
    tmp_path: Path, how: str, backup: str
) -> None:
    """SQLite opens such a file read-only without a word; the first write failed as
    "fix the migration". It is refused before anything runs, saying why."""
    db = tmp_path / "app.db"
    folder = write_plain(tmp_path / "m", INIT)
    applied(db, folder)
    write_plain(folder, NEXT)
    before = db_state(db)
    prefix: tuple[str, ...] = ()
    if how == "immutable":
        immutable(db)
    else:  # root writes any file: without CAP_DAC_OVERRIDE, 0444 holds for it too
        db.chmod(0o444)
        prefix = without_caps("dac_override")
    try:
        proc = subprocess.run(
            [
                *prefix,
                *entrypoint_argv("run", "--db", db, "--migrations", folder, "--backup", backup),
            ],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        if how == "immutable":
            subprocess.run(["chattr", "-i", db], check=True)
        db.chmod(0o644)
    reason = "Operation not permitted" if how == "immutable" else "Permission denied"
    assert_one_clear_error(proc, 4, "cannot write", "app.db", reason)
    assert "chattr -i" in proc.stderr and "read-only mount" in proc.stderr
    assert "fix the migration" not in proc.stderr
    assert db_state(db) == before


# --- an empty file ------------------------------------------------------------------------------


def test_an_empty_file_is_a_new_database_wal_and_nothing_to_back_up(
    tmp_path: Path, cli: Cli
) -> None:
    """It was an existing database: its journal mode kept (delete), a 0-byte backup taken."""
    db = tmp_path / "app.db"
    db.touch()
    proc = cli("run", "--db", db, "--migrations", write_plain(tmp_path / "m", INIT))
    assert proc.returncode == 0, proc.stderr
    assert "app.db is empty (0 bytes): a new database" in proc.stderr
    assert "(new)" in proc.stderr
    assert str(query(db, "PRAGMA journal_mode")[0][0]) == "wal"
    assert not list((tmp_path / "backups").glob("*.backup"))
    assert query(db, "SELECT name FROM __litedeploy_migrations") == [("0001_init",)]


def test_an_empty_file_stays_an_empty_file_when_the_first_run_fails(
    tmp_path: Path, cli: Cli
) -> None:
    """Emptied, not deleted: it may be a bind-mounted file, which cannot be removed."""
    db = tmp_path / "app.db"
    db.touch()
    folder = write_plain(tmp_path / "m", [("0001_bad", "INSERT INTO nope VALUES (1);")])
    proc = cli("run", "--db", db, "--migrations", folder, "--findings", "warn", "--no-rehearse")
    assert_one_clear_error(proc, 6, "no such table: nope")
    assert db.exists() and db.stat().st_size == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "app.db.lock", "m"]


@pytest.mark.parametrize("command", ["backup", "check"])
def test_commands_that_need_a_database_say_the_file_is_empty(
    tmp_path: Path, cli: Cli, command: str
) -> None:
    db = tmp_path / "app.db"
    db.touch()
    assert_one_clear_error(cli(command, "--db", db), 4, "app.db is empty (0 bytes)")
    assert db.stat().st_size == 0


def test_status_of_an_empty_file(tmp_path: Path, cli: Cli) -> None:
    db = tmp_path / "app.db"
    db.touch()
    proc = cli("status", "--db", db, "--migrations", write_plain(tmp_path / "m", INIT))
    assert proc.returncode == 0, proc.stderr
    assert "app.db (is empty (0 bytes): no database yet)" in proc.stdout
    assert "pending" in proc.stdout


@pytest.mark.parametrize(
    "name",
    ["app.db", "a b.db", "a#b?c%d.db", "ünï çødé.db", "tab\there.db", "~x_y-z.db", "日本.db"],
)
def test_uri_quotes_a_name_as_urllib_does_and_sqlite_opens_it(tmp_path: Path, name: str) -> None:
    from urllib.parse import quote

    from entrypoint.safetynet.database import uri

    path = tmp_path / name
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE t (x)")
        conn.commit()
    assert uri(path) == f"file:{quote(str(path.resolve()))}?mode=ro"
    with contextlib.closing(sqlite3.connect(uri(path), uri=True)) as conn:
        assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("t",)]


# --- a read transaction that pins the main file ------------------------------------------------


@pytest.mark.parametrize("mode", ["wal", "delete"])
def test_a_quiet_read_pins_the_main_file_while_others_write(tmp_path: Path, mode: str) -> None:
    """The backup and the rehearsal copy the main file under `begin_quiet_read`: while it
    lasts, writers commit (in WAL mode) or are kept out (rollback journal), checkpoints
    cannot copy anything into the file, and its bytes stay as they were."""
    from entrypoint.safetynet.database import begin_quiet_read

    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute(f"PRAGMA journal_mode = {mode}")
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY, x blob)")
        conn.executemany("INSERT INTO t (x) VALUES (randomblob(900))", [()] * 200)
        if mode == "wal":
            assert conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
    before = hashlib.sha256(db.read_bytes()).hexdigest()
    reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
    writer = sqlite3.connect(db, isolation_level=None, timeout=0.2)
    try:
        assert begin_quiet_read(reader, db)
        if mode == "wal":
            for _ in range(50):  # commits go to the WAL; no checkpoint may reach the file
                writer.execute("INSERT INTO t (x) VALUES (randomblob(900))")
            busy = writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0]
            assert busy == 1
            writer.execute("PRAGMA wal_checkpoint(PASSIVE)")
        else:
            with pytest.raises(sqlite3.OperationalError, match="locked"):
                writer.execute("INSERT INTO t (x) VALUES (randomblob(900))")
        assert hashlib.sha256(db.read_bytes()).hexdigest() == before
        assert reader.execute("SELECT count(*) FROM t").fetchone() == (200,)
        reader.execute("COMMIT")
        if mode == "wal":  # the reader gone, the frames reach the file
            assert writer.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()[0] == 0
            assert hashlib.sha256(db.read_bytes()).hexdigest() != before
    finally:
        writer.close()
        reader.close()
    assert query(db, "SELECT count(*) FROM t") == [(250 if mode == "wal" else 200,)]


def test_a_read_that_sees_wal_frames_is_not_quiet(tmp_path: Path) -> None:
    from entrypoint.safetynet.database import begin_quiet_read

    db = tmp_path / "app.db"
    keeper = sqlite3.connect(db, isolation_level=None)  # keeps the WAL from closing
    try:
        keeper.execute("PRAGMA journal_mode = wal")
        keeper.execute("CREATE TABLE t (id integer PRIMARY KEY)")  # a frame in the WAL
        reader = sqlite3.connect(f"file:{db}?mode=ro", uri=True, isolation_level=None)
        try:
            assert not begin_quiet_read(reader, db)
            assert not reader.in_transaction  # ended, for the caller's other way
        finally:
            reader.close()
    finally:
        keeper.close()
