"""Option and environment values are checked before anything is touched: exit 2, one line."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Cli, applied, assert_one_clear_error, db_state, query, write_plain

from entrypoint.base.errors import UsageError

INIT = [("0001_init", "CREATE TABLE users (id integer PRIMARY KEY, name text);")]


def journal_mode(db: Path) -> str:
    return str(query(db, "PRAGMA journal_mode")[0][0])


@pytest.mark.parametrize(
    ("value", "needle"),
    [
        ("wal; DROP TABLE users", "is not one of wal, delete"),  # was pasted into the PRAGMA
        ("bogus", "'bogus' is not one of"),  # was accepted: SQLite kept its mode, exit 0
        ("off", "keeps no rollback journal"),
        ("OFF", "keeps no rollback journal"),
        ("wal2", "is not one of"),
    ],
)
@pytest.mark.parametrize("new", [True, False], ids=["new-db", "existing-db"])
def test_a_journal_mode_sqlite_cannot_roll_back_with_is_refused(
    tmp_path: Path, cli: Cli, value: str, needle: str, new: bool
) -> None:
    folder = write_plain(tmp_path / "m", INIT)
    db = tmp_path / "app.db"
    if not new:
        applied(db, folder)
        write_plain(folder, [("0002_more", "ALTER TABLE users ADD email text;")])
        before = db_state(db)
    proc = cli("run", "--db", db, "--migrations", folder, env={"LITEDEPLOY_JOURNAL_MODE": value})
    assert_one_clear_error(proc, 2, "--journal-mode", "LITEDEPLOY_JOURNAL_MODE", needle)
    if new:
        assert not db.exists()
    else:
        assert db_state(db) == before


@pytest.mark.parametrize("value", ["WAL", "Delete", " truncate "])
def test_journal_modes_are_read_in_any_case(tmp_path: Path, cli: Cli, value: str) -> None:
    db = tmp_path / "app.db"
    proc = cli(
        "run",
        "--db",
        db,
        "--migrations",
        write_plain(tmp_path / "m", INIT),
        "--journal-mode",
        value,
    )
    assert proc.returncode == 0, proc.stderr
    assert f"journal mode {value.strip().lower()}" in proc.stderr  # only WAL outlives the run
    if value == "WAL":
        assert journal_mode(db) == "wal"


def test_the_core_refuses_a_journal_mode_it_would_paste_into_sql(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with pytest.raises(UsageError, match="is not one of"):
        applied(db, write_plain(tmp_path / "m", INIT), journal_mode="wal; DROP TABLE users")
    assert not db.exists()


# --- paths SQLite is given ----------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--db", "--backup-dir", "--rehearsal-dir"])
def test_a_path_sqlite_cannot_open_is_exit_2(tmp_path: Path, cli: Cli, option: str) -> None:
    """A name that is not UTF-8 went into SQLite's URI: an internal error, after migrating."""
    folder = write_plain(tmp_path / "m", INIT)
    paths = {"--db": tmp_path / "app.db", option: tmp_path / "caf\udce9"}  # latin-1 é
    proc = cli("run", *[str(a) for pair in paths.items() for a in pair], "--migrations", folder)
    assert_one_clear_error(proc, 2, option, "is not valid UTF-8 (byte 0xe9")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m"]


def test_the_core_refuses_a_database_path_with_a_nul(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="contains a NUL byte"):
        applied(tmp_path / "app\0.db", write_plain(tmp_path / "m", INIT))


def test_a_database_path_that_is_a_dangling_link_is_refused(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "app.db").symlink_to(tmp_path / "gone" / "app.db")
    proc = cli(
        "run", "--db", tmp_path / "app.db", "--migrations", write_plain(tmp_path / "m", INIT)
    )
    assert_one_clear_error(proc, 4, "is a symbolic link to", "which does not exist")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.db", "m"]


@pytest.mark.parametrize("value", ["v1\nforged: true", "v1\x1b[2J", "x" * 201])
def test_a_deploy_id_is_one_short_line(tmp_path: Path, cli: Cli, value: str) -> None:
    """It is recorded in the backup's manifest and the log; the deploy finds backups by it."""
    db = tmp_path / "app.db"
    proc = cli(
        "run",
        "--db",
        db,
        "--migrations",
        write_plain(tmp_path / "m", INIT),
        env={"LITEDEPLOY_DEPLOY_ID": value},
    )
    assert_one_clear_error(proc, 2, "--deploy-id", "LITEDEPLOY_DEPLOY_ID")
    assert not db.exists()
