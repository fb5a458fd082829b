"""Restore: a verified backup swapped in, the replaced files kept in quarantine, and every
reason to refuse (the live database then byte-for-byte as it was)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from harness import (
    Cli,
    applied,
    assert_one_clear_error,
    assert_unchanged,
    backup_files,
    cli_env,
    corrupt_pages,
    db_state,
    dump,
    entrypoint_argv,
    manifest_of,
    mode_of,
    query,
    sha256_file,
    write_plain,
)

Invoke = Callable[..., Any]

INIT = (
    "CREATE TABLE items (id integer PRIMARY KEY, body text NOT NULL);\n"
    "INSERT INTO items (body) VALUES ('a'), ('b'), ('c');"
)
SIDE = ("app.db", "app.db-wal", "app.db-shm")


def app(tmp_path: Path, rows: int = 0) -> Path:
    """data/app.db in WAL mode (as a first run makes it), holding a few rows."""
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "app.db"
    applied(db, write_plain(tmp_path / "m", [("0001_init", INIT)]))
    if rows:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.executemany("INSERT INTO items (body) VALUES (?)", [("x" * 1000,)] * rows)
            conn.commit()
    return db


def add_row(db: Path, body: str) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO items (body) VALUES (?)", (body,))
        conn.commit()


def take_backup(invoke: Invoke, db: Path, deploy_id: str) -> Path:
    result = invoke("backup", "--db", db, "--deploy-id", deploy_id)
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.splitlines()[0])


# The app, killed right after a commit: the commit sits in app.db-wal, with app.db-shm beside.
CRASHING_WRITER = """
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("INSERT INTO items (body) VALUES ('written after the backup')")
conn.commit()
os.kill(os.getpid(), signal.SIGKILL)
"""


def crash_after_a_commit(db: Path) -> None:
    proc = subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(db)], timeout=60)
    assert proc.returncode == -9
    assert db.with_name("app.db-wal").stat().st_size > 0
    assert db.with_name("app.db-shm").exists()


def bodies(db: Path) -> list[str]:
    return [r[0] for r in query(db, "SELECT body FROM items ORDER BY id")]


# --- the round trip ---------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["file", "latest", "deploy-id"])
def test_restore_round_trip(tmp_path: Path, cli: Cli, invoke: Invoke, how: str) -> None:
    db = app(tmp_path)
    first = take_backup(invoke, db, "d1")
    at_first = dump(db)
    add_row(db, "between the backups")
    second = take_backup(invoke, db, "d2")
    at_second = dump(db)
    assert at_first != at_second
    crash_after_a_commit(db)
    db.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(db, 1234, 2345)
    replaced = {name: (db.parent / name).read_bytes() for name in SIDE}
    owner = (db.stat().st_uid, db.stat().st_gid)

    if how == "file":
        chosen, expected, args = first, at_first, [str(first)]
    elif how == "latest":
        chosen, expected, args = second, at_second, ["--latest"]
    else:
        chosen, expected, args = first, at_first, ["--deploy-id", "d1"]
    proc = cli("restore", "--db", db, *args)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr

    assert not db.with_name("app.db-wal").exists()  # the stale WAL is not applied to the backup
    assert not db.with_name("app.db-shm").exists()
    assert sha256_file(db) == manifest_of(chosen)["sha256"]
    assert dump(db) == expected
    assert mode_of(db) == 0o640
    assert (db.stat().st_uid, db.stat().st_gid) == owner

    [quarantine] = (db.parent / "quarantine").iterdir()
    assert sorted(p.name for p in quarantine.iterdir()) == sorted(SIDE)
    for name, data in replaced.items():  # moved aside exactly as they were
        assert (quarantine / name).read_bytes() == data, name
    assert bodies(quarantine / "app.db")[-1] == "written after the backup"  # nothing lost

    lines = proc.stdout.splitlines()
    assert lines[0] == f"restored {db} from {chosen}"
    assert str(quarantine) in lines[1]
    for name in SIDE:
        assert name in lines[1]


def test_restored_database_is_usable_and_backups_are_kept(tmp_path: Path, invoke: Invoke) -> None:
    db = app(tmp_path)
    backup = take_backup(invoke, db, "d1")
    add_row(db, "later")
    result = invoke("restore", "--db", db, "--latest")
    assert result.exit_code == 0, result.stderr
    assert bodies(db) == ["a", "b", "c"]
    add_row(db, "after the restore")  # the app can write to it
    assert bodies(db)[-1] == "after the restore"
    assert query(db, "PRAGMA journal_mode") == [("wal",)]
    assert backup_files(db.parent / "backups") == [backup]  # a restore deletes no backup


# --- refusals: one clear line, exit 12 or 13, the live database untouched ---------------------


@pytest.fixture
def live(tmp_path: Path, invoke: Invoke) -> tuple[Path, Path]:
    """A database with a good backup, then a change the backup lacks."""
    db = app(tmp_path, rows=200)
    backup = take_backup(invoke, db, "d1")
    add_row(db, "after the backup")
    return db, backup


def assert_refused(proc: subprocess.CompletedProcess[str], code: int, db: Path, *needles: str):
    assert_one_clear_error(proc, code, *needles)
    assert not (db.parent / "quarantine").exists()


def test_restore_of_a_missing_backup(tmp_path: Path, cli: Cli, live: tuple[Path, Path]) -> None:
    db, _ = live
    before = db_state(db)
    missing = tmp_path / "data" / "backups" / "app.db.20990101T000000.000000Z.backup"
    proc = cli("restore", "--db", db, missing)
    assert_refused(proc, 12, db, str(missing), "does not exist")
    assert_unchanged(db, before)


@pytest.mark.parametrize(
    ("args", "needle"),
    [(["--deploy-id", "nope"], "deploy id 'nope'"), ([], "say which backup")],
)
def test_restore_of_an_unknown_deploy_id_or_nothing(
    cli: Cli, live: tuple[Path, Path], args: list[str], needle: str
) -> None:
    db, _ = live
    before = db_state(db)
    assert_refused(cli("restore", "--db", db, *args), 12, db, needle)
    assert_unchanged(db, before)


def test_restore_latest_with_no_backups(tmp_path: Path, cli: Cli) -> None:
    db = app(tmp_path)
    before = db_state(db)
    assert_refused(cli("restore", "--db", db, "--latest"), 12, db, "no backups")
    assert_unchanged(db, before)


def test_restore_of_a_backup_that_no_longer_matches_its_manifest(
    cli: Cli, live: tuple[Path, Path]
) -> None:
    db, backup = live
    before = db_state(db)
    data = bytearray(backup.read_bytes())
    data[-100] ^= 0xFF  # one flipped bit in the free space of the last page: still "ok"
    backup.write_bytes(bytes(data))
    proc = cli("restore", "--db", db, "--latest")
    assert_refused(proc, 12, db, str(backup), "does not match its manifest")
    assert_unchanged(db, before)


@pytest.mark.parametrize("manifest", ["rewritten", "missing"])
def test_restore_of_a_corrupt_backup(cli: Cli, live: tuple[Path, Path], manifest: str) -> None:
    """Damaged pages, with a manifest that agrees (or none): quick_check catches it."""
    db, backup = live
    before = db_state(db)
    corrupt_pages(backup, [10, 11, 12])
    manifest_file = backup.with_name(backup.name + ".json")
    if manifest == "rewritten":
        manifest_file.write_text(json.dumps({**manifest_of(backup), "sha256": sha256_file(backup)}))
    else:
        manifest_file.unlink()
    proc = cli("restore", "--db", db, backup)
    assert_refused(proc, 12, db, str(backup), "is damaged")
    assert_unchanged(db, before)


def test_restore_of_a_file_that_is_not_sqlite(
    tmp_path: Path, cli: Cli, live: tuple[Path, Path]
) -> None:
    db, _ = live
    before = db_state(db)
    junk = tmp_path / "junk.backup"
    junk.write_bytes(os.urandom(8192))
    assert_refused(cli("restore", "--db", db, junk), 12, db, str(junk))
    assert_unchanged(db, before)


HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT count(*) FROM items").fetchone()
print("ready", flush=True)
sys.stdin.read()
"""

LOCK_HOLDER = """
import sys
from pathlib import Path
from entrypoint.engine.lock import migration_lock
with migration_lock(Path(sys.argv[1]), 5):
    print("ready", flush=True)
    sys.stdin.read()
"""


@contextlib.contextmanager
def child(code: str, db: Path) -> Iterator[subprocess.Popen[str]]:
    """A process that does something to the database, then waits until stdin closes."""
    proc = subprocess.Popen(
        [sys.executable, "-c", code, str(db)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        env=cli_env(),
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        assert proc.wait(timeout=60) == 0


def test_restore_while_the_app_has_the_database_open(cli: Cli, live: tuple[Path, Path]) -> None:
    db, _ = live
    before = db_state(db)
    with child(HOLDER, db) as holder:
        proc = cli("restore", "--db", db, "--latest")
        assert_refused(proc, 13, db, f"pid {holder.pid}", "is open in")
        assert "stop the app" in proc.stderr
    assert_unchanged(db, before)
    assert bodies(db)[-1] == "after the backup"


def test_restore_while_an_app_in_another_container_has_it_open(
    tmp_path: Path, live: tuple[Path, Path]
) -> None:
    """Another PID namespace (as another container sharing the volume): /proc cannot show the
    app, but SQLite's locks can."""
    db, _ = live
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        pytest.skip("needs root and unshare(1) for a PID namespace of its own (CI runs as root)")
    before = db_state(db)
    with child(HOLDER, db):
        proc = subprocess.run(
            [
                unshare,
                "--pid",
                "--fork",
                "--mount-proc",
                *entrypoint_argv("restore", "--db", db, "--latest"),
            ],
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert_refused(proc, 13, db, "locked by another process")
    assert_unchanged(db, before)


def test_restore_while_another_process_holds_the_migration_lock(
    cli: Cli, live: tuple[Path, Path]
) -> None:
    db, _ = live
    before = db_state(db)
    with child(LOCK_HOLDER, db) as holder:
        proc = cli("restore", "--db", db, "--latest")
        assert_refused(proc, 13, db, "another litedeploy process", f"pid {holder.pid}")
    assert_unchanged(db, before)
    # The control: once the lock is free, the same restore goes through.
    assert cli("restore", "--db", db, "--latest").returncode == 0
    assert "after the backup" not in bodies(db)


def test_restore_onto_a_missing_database(tmp_path: Path, cli: Cli, invoke: Invoke) -> None:
    """The database deleted by hand: the backup is put there, there is nothing to quarantine."""
    db = app(tmp_path)
    backup = take_backup(invoke, db, "d1")
    for name in SIDE:
        with contextlib.suppress(FileNotFoundError):
            (db.parent / name).unlink()
    proc = cli("restore", "--db", db, "--latest")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [f"restored {db} from {backup}"]
    assert sha256_file(db) == manifest_of(backup)["sha256"]
    assert mode_of(db) == 0o644
    assert not (db.parent / "quarantine").exists()
