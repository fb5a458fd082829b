"""Bad input: one clear line on stderr, the documented exit code, and a database unchanged."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import (
    DbState,
    applied,
    assert_one_clear_error,
    cli_env,
    db_state,
    entrypoint_argv,
    write_folders,
    write_journal,
    write_plain,
)

INIT = (
    "CREATE TABLE users (id integer PRIMARY KEY, name text);\nINSERT INTO users VALUES (1, 'ann');"
)
NEXT = "ALTER TABLE users ADD email text;"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    """A database with one migration applied and a row of data: the thing to keep intact."""
    path = tmp_path / "app.db"
    applied(path, write_journal(tmp_path / "good", [("0000_init", INIT)]))
    return path


def run(tmp_path: Path, db: Path, folder: Path, *extra: str, prefix: tuple[str, ...] = ()):
    return subprocess.run(
        [*prefix, *entrypoint_argv("run", "--db", db, "--migrations", folder, *extra)],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def journal_with_next(tmp_path: Path) -> Path:
    return write_journal(tmp_path / "m", [("0000_init", INIT), ("0001_next", NEXT)])


def missing_folder(tmp_path: Path) -> Path:
    return tmp_path / "nope"


def malformed_journal(tmp_path: Path) -> Path:
    folder = journal_with_next(tmp_path)
    (folder / "meta" / "_journal.json").write_text('{"version": "7", "entries": [')
    return folder


def journal_entry_without_file(tmp_path: Path) -> Path:
    folder = journal_with_next(tmp_path)
    (folder / "0001_next.sql").unlink()
    return folder


def tag_escaping_the_folder(tmp_path: Path) -> Path:
    (tmp_path / "outside.sql").write_text(NEXT)  # it exists: refused for where it is
    folder = write_journal(tmp_path / "m", [("0000_init", INIT), ("../outside", NEXT)])
    return folder


def symlink_out_of_plain_folder(tmp_path: Path) -> Path:
    (tmp_path / "outside.sql").write_text(NEXT)
    folder = write_plain(tmp_path / "m", [("0000_init", INIT)])
    (folder / "0001_next.sql").symlink_to(tmp_path / "outside.sql")
    return folder


def symlink_out_of_journal_folder(tmp_path: Path) -> Path:
    (tmp_path / "outside.sql").write_text(NEXT)
    folder = journal_with_next(tmp_path)
    (folder / "0001_next.sql").unlink()
    (folder / "0001_next.sql").symlink_to("../outside.sql")
    return folder


def symlinked_migration_folder(tmp_path: Path) -> Path:
    elsewhere = write_folders(tmp_path / "elsewhere", [("20250102000000_next", NEXT)])
    folder = write_folders(tmp_path / "m", [("20250101000000_init", INIT)])
    (folder / "20250102000000_next").symlink_to(elsewhere / "20250102000000_next")
    return folder


def non_utf8_sql(tmp_path: Path) -> Path:
    folder = journal_with_next(tmp_path)
    (folder / "0001_next.sql").write_bytes(b"-- caf\xe9 (latin-1)\nALTER TABLE users ADD b text;\n")
    return folder


CASES: dict[str, tuple[Callable[[Path], Path], int, tuple[str, ...]]] = {
    "missing-folder": (missing_folder, 3, ("nope", "does not exist")),
    "malformed-journal": (malformed_journal, 3, ("_journal.json", "is not valid JSON", "line 1")),
    "journal-entry-without-file": (journal_entry_without_file, 3, ("0001_next.sql", "missing")),
    "tag-escaping-folder": (tag_escaping_the_folder, 3, ("../outside", "outside the migrations")),
    "symlink-plain": (symlink_out_of_plain_folder, 3, ("0001_next.sql", "outside the migrations")),
    "symlink-journal": (symlink_out_of_journal_folder, 3, ("0001_next", "outside the migrations")),
    "symlink-folder": (symlinked_migration_folder, 3, ("20250102000000_next", "outside")),
    "non-utf8-sql": (non_utf8_sql, 3, ("0001_next.sql", "not valid UTF-8", "byte 6")),
}


def assert_unchanged(db: Path, before: DbState) -> None:
    after = db_state(db)
    assert after.dump == before.dump
    assert after.data == before.data


@pytest.mark.parametrize("case", CASES)
def test_bad_migrations_change_nothing(tmp_path: Path, db: Path, case: str) -> None:
    make, code, needles = CASES[case]
    folder = make(tmp_path)
    before = db_state(db)
    proc = run(tmp_path, db, folder)
    assert_one_clear_error(proc, code, *needles)
    assert_unchanged(db, before)


@pytest.mark.parametrize("case", ["missing-folder", "malformed-journal", "non-utf8-sql"])
def test_bad_migrations_do_not_create_a_database(tmp_path: Path, case: str) -> None:
    make, code, _ = CASES[case]
    folder = make(tmp_path)
    db = tmp_path / "data" / "app.db"
    db.parent.mkdir()
    proc = run(tmp_path, db, folder)
    assert_one_clear_error(proc, code)
    assert list(db.parent.iterdir()) == []


def test_failing_statement_names_file_statement_and_error(tmp_path: Path, db: Path) -> None:
    folder = write_journal(
        tmp_path / "m",
        [
            ("0000_init", INIT),
            ("0001_next", f"{NEXT}\n--> statement-breakpoint\nUPDATE users SET nope = 1;"),
        ],
    )
    before = db_state(db)
    proc = run(tmp_path, db, folder)
    assert_one_clear_error(
        proc, 6, str(folder / "0001_next.sql"), "statement 2", "no such column: nope"
    )
    assert_unchanged(db, before)


def test_database_that_is_not_sqlite(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    data = b"PK\x03\x04" + os.urandom(4092)  # a zip file, say
    db.write_bytes(data)
    proc = run(tmp_path, db, journal_with_next(tmp_path))
    assert_one_clear_error(proc, 4, "app.db", "not an SQLite database")
    assert db.read_bytes() == data


def test_database_with_sqlite_header_but_garbage_after(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    data = b"SQLite format 3\x00" + os.urandom(4080)
    db.write_bytes(data)
    proc = run(tmp_path, db, journal_with_next(tmp_path))
    assert_one_clear_error(proc, 4, "app.db")
    assert db.read_bytes() == data


def test_missing_database_folder(tmp_path: Path) -> None:
    db = tmp_path / "data" / "app.db"
    proc = run(tmp_path, db, journal_with_next(tmp_path))
    assert_one_clear_error(proc, 4, str(db.parent), "does not exist")
    assert not db.parent.exists()


# Root reads anything, so a chmod alone proves nothing when the suite runs as root (as in CI).
# There the entrypoint runs as root without CAP_DAC_OVERRIDE/CAP_DAC_READ_SEARCH (setpriv), so
# that file permissions apply to it as to any user; the files it needs stay readable to it as
# their owner.
def without_read_override() -> tuple[str, ...]:
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing")
    caps = "-dac_override,-dac_read_search"
    return (setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}", "--")


@pytest.mark.parametrize("fmt", ["auto", "drizzle-journal", "sql"])
def test_unreadable_migrations_folder(tmp_path: Path, db: Path, fmt: str) -> None:
    folder = journal_with_next(tmp_path)
    before = db_state(db)
    folder.chmod(0)
    try:
        proc = run(tmp_path, db, folder, "--format", fmt, prefix=without_read_override())
    finally:
        folder.chmod(0o755)
    assert_one_clear_error(proc, 3, str(folder), "Permission denied")
    assert_unchanged(db, before)


def test_unreadable_migration_file(tmp_path: Path, db: Path) -> None:
    folder = journal_with_next(tmp_path)
    before = db_state(db)
    (folder / "0001_next.sql").chmod(0)
    proc = run(tmp_path, db, folder, prefix=without_read_override())
    assert_one_clear_error(proc, 3, "0001_next.sql", "Permission denied")
    assert_unchanged(db, before)


def test_unreadable_database(tmp_path: Path, db: Path) -> None:
    before = db_state(db)
    db.chmod(0)
    try:
        proc = run(tmp_path, db, journal_with_next(tmp_path), prefix=without_read_override())
    finally:
        db.chmod(0o644)
    assert_one_clear_error(proc, 4, "app.db", "Permission denied")
    assert_unchanged(db, before)


@pytest.mark.parametrize("which", ["first", "second"])
def test_unreadable_migration_folder_of_drizzle_1_0(tmp_path: Path, which: str) -> None:
    names = ["20250101000000_a", "20250102000000_b"]
    folder = write_folders(
        tmp_path / "m", [(n, f"CREATE TABLE t{i} (x);") for i, n in enumerate(names)]
    )
    db = tmp_path / "data" / "app.db"
    db.parent.mkdir()
    locked = folder / names[0 if which == "first" else 1]
    locked.chmod(0)
    try:
        proc = run(tmp_path, db, folder, prefix=without_read_override())
    finally:
        locked.chmod(0o755)
    assert_one_clear_error(proc, 3, f"{locked.name}/migration.sql", "Permission denied")
    assert list(db.parent.iterdir()) == []
