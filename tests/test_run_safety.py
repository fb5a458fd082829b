"""What `run` checks before it migrates: a damaged database, the journal mode of a new one, and
whether the database folder is a volume that outlives the container."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    Cli,
    applied,
    assert_one_clear_error,
    assert_unchanged,
    backup_files,
    corrupt_pages,
    db_state,
    make_db,
    query,
    tmpfs,
    write_plain,
)

Invoke = Callable[..., Any]

INIT = (
    "CREATE TABLE items (id integer PRIMARY KEY, body text NOT NULL);\n"
    "INSERT INTO items (body) VALUES ('a');"
)
NEXT = ("0002_next", "ALTER TABLE items ADD tag text;")
NOT_A_MOUNT = "is not a mount point"


def journal_mode(db: Path) -> str:
    return str(query(db, "PRAGMA journal_mode")[0][0])


# --- a damaged database is not migrated ------------------------------------------------------


def damaged(tmp_path: Path) -> tuple[Path, Path]:
    """A database whose b-tree pages (not page 1, not the history's) are overwritten."""
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    applied(db, folder)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executemany("INSERT INTO items (body) VALUES (?)", [("x" * 1000,)] * 300)
        conn.commit()
        pages = conn.execute("PRAGMA page_count").fetchone()[0]
    corrupt_pages(db, range(pages - 20, pages - 10))
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        # The history still reads (the plan can be made); SQLite's own check sees the damage.
        assert conn.execute("SELECT count(*) FROM __litedeploy_migrations").fetchone() == (1,)
        try:
            problems = conn.execute("PRAGMA quick_check").fetchall()
        except sqlite3.DatabaseError as exc:
            problems = [(str(exc),)]
        assert problems != [("ok",)]
    write_plain(folder, [NEXT])
    return db, folder


@pytest.mark.parametrize("policy", ["pending", "always", "never"])
def test_damaged_database_is_not_migrated(tmp_path: Path, cli: Cli, policy: str) -> None:
    db, folder = damaged(tmp_path)
    before = db.read_bytes()  # a damaged file cannot be dumped; its bytes must not change
    proc = cli("run", "--db", db, "--migrations", folder, "--backup", policy)
    assert_one_clear_error(proc, 10, str(db), "damaged", "refusing to migrate")
    assert "Applying" not in proc.stderr
    assert db.read_bytes() == before
    assert backup_files(db.parent / "backups") == []  # a copy that failed its check is deleted
    if (db.parent / "backups").exists():
        assert list((db.parent / "backups").iterdir()) == []


# --- WAL on the first run --------------------------------------------------------------------


def test_a_new_database_is_created_in_wal_mode(tmp_path: Path, invoke: Invoke) -> None:
    db = tmp_path / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    result = invoke("run", "--db", db, "--migrations", folder)
    assert result.exit_code == 0, result.stderr
    assert journal_mode(db) == "wal"
    assert db.read_bytes()[18:20] == b"\x02\x02"  # the file header says WAL


@pytest.mark.parametrize("how", ["option", "env"])
def test_a_new_database_in_the_journal_mode_asked_for(
    tmp_path: Path, invoke: Invoke, how: str
) -> None:
    db = tmp_path / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    args: list[Any] = ["run", "--db", db, "--migrations", folder]
    if how == "option":
        result = invoke(*args, "--journal-mode", "delete")
    else:
        result = invoke(*args, env={"LITEDEPLOY_JOURNAL_MODE": "delete"})
    assert result.exit_code == 0, result.stderr
    assert journal_mode(db) == "delete"


def test_an_existing_database_keeps_its_journal_mode(tmp_path: Path, invoke: Invoke) -> None:
    db = make_db(tmp_path / "app.db", "CREATE TABLE kept (id integer);")
    assert journal_mode(db) == "delete"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    result = invoke("run", "--db", db, "--migrations", folder)
    assert result.exit_code == 0, result.stderr
    assert journal_mode(db) == "delete"
    write_plain(folder, [NEXT])
    result = invoke("run", "--db", db, "--migrations", folder, "--journal-mode", "wal")
    assert result.exit_code == 0, result.stderr
    assert journal_mode(db) == "wal"
    assert "journal mode wal" in result.stderr


# --- the database folder should be a volume --------------------------------------------------


def app_in(data: Path, tmp_path: Path) -> tuple[Path, Path]:
    db = data / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    applied(db, folder)
    write_plain(folder, [NEXT])
    return db, folder


def test_a_folder_that_is_not_a_mount_point_is_warned_about(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "data").mkdir()
    db, folder = app_in(tmp_path / "data", tmp_path)
    proc = cli("run", "--db", db, "--migrations", folder)
    assert proc.returncode == 0, proc.stderr
    [warning] = [line for line in proc.stderr.splitlines() if NOT_A_MOUNT in line]
    assert warning.startswith("entrypoint: warning: database folder ")
    assert str(db.parent) in warning
    assert "--require-volume" in warning
    assert "error" not in proc.stderr


@pytest.mark.parametrize("how", ["option", "env"])
def test_require_volume_refuses_a_folder_that_is_not_a_mount_point(
    tmp_path: Path, cli: Cli, how: str
) -> None:
    (tmp_path / "data").mkdir()
    db, folder = app_in(tmp_path / "data", tmp_path)
    before = db_state(db)
    args: list[Any] = ["run", "--db", db, "--migrations", folder]
    if how == "option":
        proc = cli(*args, "--require-volume")
    else:
        proc = cli(*args, env={"LITEDEPLOY_REQUIRE_VOLUME": "1"})
    assert_one_clear_error(proc, 14, str(db.parent), NOT_A_MOUNT)
    assert "Applying" not in proc.stderr
    assert_unchanged(db, before)
    assert not (db.parent / "backups").exists()


@pytest.mark.parametrize("require", [False, True])
def test_a_mounted_folder_passes(tmp_path: Path, cli: Cli, require: bool) -> None:
    with tmpfs(tmp_path / "data", "size=64m") as data:
        db, folder = app_in(data, tmp_path)
        extra = ["--require-volume"] if require else []
        proc = cli("run", "--db", db, "--migrations", folder, *extra)
        assert proc.returncode == 0, proc.stderr
        assert NOT_A_MOUNT not in proc.stderr
        assert "warning" not in proc.stderr
        assert "tag" in [r[1] for r in query(db, "SELECT * FROM pragma_table_info('items')")]


def test_a_full_disk_during_a_migration_says_it_is_the_machine(tmp_path: Path, cli: Cli) -> None:
    fill = (
        "CREATE TABLE big (x text);\n"
        "INSERT INTO big WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n "
        "WHERE i < 4000) SELECT zeroblob(1000) FROM n;"
    )
    with tmpfs(tmp_path / "small", "size=1m") as small:
        folder = write_plain(tmp_path / "m", [("0001_big", fill)])
        db = small / "app.db"
        proc = cli("run", "--db", db, "--migrations", folder, "--backup", "never")
        assert_one_clear_error(proc, 6, "0001_big", "database or disk is full")
        assert "this is the machine, not the migration" in proc.stderr.splitlines()[-1]
        assert not db.exists()  # the new database it would have created is gone


def test_outside_a_container_the_host_disk_is_the_volume(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Run on the host (no /.dockerenv, no /run/.containerenv, no `container` variable), the
    entrypoint neither warns about volumes nor refuses with --require-volume."""
    from entrypoint.safetynet.database import check_volume, in_container

    monkeypatch.delenv("container", raising=False)
    host, data = tmp_path / "host-root", tmp_path / "data"
    host.mkdir()
    data.mkdir()
    assert not in_container(host)
    check_volume(data, required=True, root=host)  # no NoVolume
    check_volume(data, required=False, root=host)
    assert NOT_A_MOUNT not in caplog.text
    (host / ".dockerenv").touch()  # the same folders, seen from inside a container
    assert in_container(host)
    check_volume(data, required=False, root=host)
    assert NOT_A_MOUNT in caplog.text
    (host / ".dockerenv").unlink()
    monkeypatch.setenv("container", "podman")
    assert in_container(host)


def test_a_folder_below_a_bind_mount_is_on_the_volume(tmp_path: Path, cli: Cli) -> None:
    """The database in data/db/ under a volume mounted at data/: not a mount point itself,
    but not the container's filesystem either."""
    with tmpfs(tmp_path / "data", "size=64m") as data:
        (data / "db").mkdir()
        db, folder = app_in(data / "db", tmp_path)
        proc = cli("run", "--db", db, "--migrations", folder, "--require-volume")
        assert proc.returncode == 0, proc.stderr
        assert NOT_A_MOUNT not in proc.stderr
