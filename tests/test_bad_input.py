"""Bad input: one clear line on stderr, the documented exit code, and a database unchanged."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


def assert_unchanged(db: Path, before: DbState) -> None:
    after = db_state(db)
    assert after.dump == before.dump
    assert after.data == before.data


# --- every bad input, in one table ---------------------------------------------------------------


@dataclass
class Call:
    """How one bad input reaches the entrypoint: arguments, environment, a setpriv prefix."""

    args: list[str | Path]
    env: dict[str, str] = field(default_factory=dict)
    prefix: tuple[str, ...] = ()


Make = Callable[[Path, Path], Call]  # (tmp_path, the database to keep intact) -> the call
BAD: dict[str, tuple[Make, int, tuple[str, ...]]] = {}


def bad(code: int, *needles: str) -> Callable[[Make], Make]:
    """Register a bad input under its function's name: the exit code, words the line holds."""

    def register(make: Make) -> Make:
        BAD[make.__name__.replace("_", "-")] = (make, code, needles)
        return make

    return register


def run_call(folder: Path, db: Path, *extra: str | Path, env: dict[str, str] | None = None) -> Call:
    return Call(["run", "--db", db, "--migrations", folder, *extra], env or {})


def from_folder(make_folder: Callable[[Path], Path]) -> Make:
    return lambda tmp, db: run_call(make_folder(tmp), db)


def with_journal(tmp: Path, change: Callable[[dict[str, Any]], object]) -> Path:
    """The two-migration journal folder, its journal edited by `change` (on the parsed JSON)."""
    folder = journal_with_next(tmp)
    path = folder / "meta" / "_journal.json"
    journal = json.loads(path.read_text())
    change(journal)
    path.write_text(json.dumps(journal))
    return folder


def entry(**fields: object) -> Callable[[dict[str, Any]], object]:
    """A change to the journal's second entry; a value of ... removes the field."""

    def change(journal: dict[str, Any]) -> None:
        for key, value in fields.items():
            if value is ...:
                del journal["entries"][1][key]
            else:
                journal["entries"][1][key] = value

    return change


def journal_text(tmp: Path, text: str | bytes) -> Path:
    folder = journal_with_next(tmp)
    data = text if isinstance(text, bytes) else text.encode()
    (folder / "meta" / "_journal.json").write_bytes(data)
    return folder


def next_sql_replaced(tmp: Path, put: Callable[[Path], object]) -> Path:
    """The journal folder with 0001_next.sql replaced by whatever `put` makes at that path."""
    folder = journal_with_next(tmp)
    (folder / "0001_next.sql").unlink()
    put(folder / "0001_next.sql")
    return folder


def a_socket(path: Path) -> Path:
    with contextlib.closing(socket.socket(socket.AF_UNIX)) as sock:
        sock.bind(str(path))
    return path


def a_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def a_file(path: Path) -> Path:
    path.write_text("")
    return path


def a_folder(path: Path) -> Path:
    path.mkdir()
    return path


def a_link_to(target: Path) -> Callable[[Path], Path]:
    def make(path: Path) -> Path:
        path.symlink_to(target)
        return path

    return make


def copy_of(db: Path, tmp: Path, mode: int) -> Path:
    """The database copied to data/app.db with this mode."""
    other = tmp / "data" / "app.db"
    other.parent.mkdir()
    shutil.copy(db, other)
    other.chmod(mode)
    return other


# Migration folders that are wrong (exit 3), the first ones kept from before the table.
for _name, _make_folder, _needles in [
    ("missing-folder", missing_folder, ("nope", "does not exist")),
    ("malformed-journal", malformed_journal, ("_journal.json", "is not valid JSON", "line 1")),
    ("journal-entry-without-file", journal_entry_without_file, ("0001_next.sql", "missing")),
    ("tag-escaping-folder", tag_escaping_the_folder, ("../outside", "outside the migrations")),
    ("symlink-plain", symlink_out_of_plain_folder, ("0001_next.sql", "outside the migrations")),
    ("symlink-journal", symlink_out_of_journal_folder, ("0001_next", "outside the migrations")),
    ("symlink-folder", symlinked_migration_folder, ("20250102000000_next", "outside")),
    ("non-utf8-sql", non_utf8_sql, ("0001_next.sql", "not valid UTF-8", "byte 6")),
]:
    BAD[_name] = (from_folder(_make_folder), 3, _needles)

# The journal: versions, entries, types, duplicates (exit 3).
for _name, _change, _needles in [
    ("journal-version-4", lambda j: j.update(version="4"), ("journal version '4'",)),
    ("journal-version-missing", lambda j: j.pop("version"), ("journal version None",)),
    ("journal-version-object", lambda j: j.update(version={"v": 7}), ("journal version {",)),
    ("journal-dialect-postgres", lambda j: j.update(dialect="postgresql"), ("'postgresql'",)),
    ("journal-entries-object", lambda j: j.update(entries={}), ("no 'entries' list",)),
    ("journal-entries-missing", lambda j: j.pop("entries"), ("no 'entries' list",)),
    ("journal-entry-a-number", lambda j: j["entries"].append(7), ("entries[2] is not an object",)),
    ("when-beyond-sqlite-integer", entry(when=2**63), ("entries[1].when", "from 0 to")),
    ("when-10e400", entry(when=10**400), ("entries[1].when", "from 0 to")),
    ("when-negative", entry(when=-1), ("entries[1].when", "(got -1)")),
    ("when-a-string", entry(when="1740000000000"), ("entries[1].when", "'1740000000000'")),
    ("when-a-fraction", entry(when=1740000000000.5), ("entries[1].when",)),
    ("when-a-boolean", entry(when=True), ("entries[1].when", "(got True)")),
    ("when-missing", entry(when=...), ("entries[1].when", "(got None)")),
    ("tag-missing", entry(tag=...), ("entries[1].tag is missing",)),
    ("tag-a-number", entry(tag=1), ("entries[1].tag", "(got 1)")),
    ("tag-a-list", entry(tag=["0001_next"]), ("entries[1].tag", "not a string")),
    ("tag-empty", entry(tag=""), ("entries[1].tag is missing",)),
    ("tag-with-nul", entry(tag="0001_next\x00"), ("entries[1].tag", "'\\x00' at character 9")),
    ("tag-with-newline", entry(tag="0001\nnext"), ("entries[1].tag", "'\\n' at character 4")),
    ("tag-with-escape", entry(tag="0001_\x1b[31mnext"), ("entries[1].tag", "'\\x1b'")),
    ("tag-lone-surrogate", entry(tag="0001_\ud800"), ("entries[1].tag", "character 5")),
]:
    BAD[_name] = (from_folder(lambda tmp, c=_change: with_journal(tmp, c)), 3, _needles)


@bad(3, "0000_init is listed more than once")
def tag_listed_twice(tmp: Path, db: Path) -> Call:
    return run_call(with_journal(tmp, entry(tag="0000_init")), db)


@bad(3, "_journal.json is not valid JSON", "line 1 column 1")
def journal_empty(tmp: Path, db: Path) -> Call:
    return run_call(journal_text(tmp, ""), db)


@bad(3, "_journal.json is not a journal drizzle-kit writes")
def journal_nested_deep(tmp: Path, db: Path) -> Call:
    return run_call(journal_text(tmp, "[" * 100_000 + "]" * 100_000), db)


@bad(3, "_journal.json is not a journal drizzle-kit writes", "digits")
def journal_5000_digit_number(tmp: Path, db: Path) -> Call:
    text = '{"version": "7", "entries": [], "x": ' + "9" * 5000 + "}"
    return run_call(journal_text(tmp, text), db)


@bad(3, f"_journal.json is {17 << 20} bytes", "a few kilobytes")
def journal_huge(tmp: Path, db: Path) -> Call:
    return run_call(journal_text(tmp, " " * (17 << 20)), db)


@bad(3, "cannot read", "_journal.json", "utf-8")
def journal_not_utf8(tmp: Path, db: Path) -> Call:
    return run_call(journal_text(tmp, b'{"version": "7", "caf\xe9": 1, "entries": []}'), db)


@bad(3, "the journal", "is a folder, not a regular file")
def journal_a_folder(tmp: Path, db: Path) -> Call:
    folder = journal_with_next(tmp)
    (folder / "meta" / "_journal.json").unlink()
    a_folder(folder / "meta" / "_journal.json")
    return run_call(folder, db, "--format", "drizzle-journal")


@bad(3, "the journal", "is a FIFO (named pipe)")
def journal_a_fifo(tmp: Path, db: Path) -> Call:
    folder = journal_with_next(tmp)
    (folder / "meta" / "_journal.json").unlink()
    a_fifo(folder / "meta" / "_journal.json")
    return run_call(folder, db, "--format", "drizzle-journal")


@bad(3, "cannot read", "_journal.json", "Permission denied")
def journal_unreadable(tmp: Path, db: Path) -> Call:
    folder = journal_with_next(tmp)
    (folder / "meta" / "_journal.json").chmod(0)
    return Call(run_call(folder, db).args, prefix=without_read_override())


# The SQL files (exit 3).


@bad(3, "0001_next.sql is UTF-16", "not UTF-8")
def sql_utf16(tmp: Path, db: Path) -> Call:
    folder = journal_with_next(tmp)
    (folder / "0001_next.sql").write_bytes(NEXT.encode("utf-16"))
    return run_call(folder, db)


@bad(3, "0001_next.sql contains a NUL byte (byte 33)")
def sql_with_nul(tmp: Path, db: Path) -> Call:
    folder = journal_with_next(tmp)
    (folder / "0001_next.sql").write_bytes(NEXT.encode() + b"\0\n")
    return run_call(folder, db)


@bad(3, "migration file", "0001_next.sql is a FIFO (named pipe)")
def sql_a_fifo(tmp: Path, db: Path) -> Call:
    return run_call(next_sql_replaced(tmp, a_fifo), db)


@bad(3, "migration file", "0001_next.sql is a socket")
def sql_a_socket(tmp: Path, db: Path) -> Call:
    return run_call(next_sql_replaced(tmp, a_socket), db)


@bad(3, "migration file", "0001_next.sql is a folder")
def sql_a_folder(tmp: Path, db: Path) -> Call:
    return run_call(next_sql_replaced(tmp, a_folder), db)


@bad(3, "0001_next.sql", "points outside the migrations folder")
def sql_linked_to_dev_null(tmp: Path, db: Path) -> Call:
    return run_call(next_sql_replaced(tmp, a_link_to(Path("/dev/null"))), db)


@bad(3, "migration file", "0001_next.sql is missing")
def sql_dangling_symlink(tmp: Path, db: Path) -> Call:
    return run_call(next_sql_replaced(tmp, a_link_to(Path("gone.sql"))), db)


@bad(3, "0001_next.sql", "Permission denied")
def sql_unreadable(tmp: Path, db: Path) -> Call:
    folder = journal_with_next(tmp)
    (folder / "0001_next.sql").chmod(0)
    return Call(run_call(folder, db).args, prefix=without_read_override())


@bad(3, "the migration name", "a byte that is not UTF-8 at character 8")
def sql_name_not_utf8(tmp: Path, db: Path) -> Call:
    folder = write_plain(tmp / "m", [("0000_init", INIT)])
    (folder / "0001_caf\udce9.sql").write_text(NEXT)
    return run_call(folder, db)


@bad(3, "the migration name", "'\\n' at character 4")
def sql_name_with_newline(tmp: Path, db: Path) -> Call:
    return run_call(write_plain(tmp / "m", [("0000_init", INIT), ("0001\nnext", NEXT)]), db)


@bad(3, "seed.sql does not start with a number")
def sql_name_without_number(tmp: Path, db: Path) -> Call:
    return run_call(write_plain(tmp / "m", [("0000_init", INIT), ("seed", NEXT)]), db)


@bad(3, "20251340250000_next", "real YYYYMMDDHHMMSS time")
def folder_time_no_real_time(tmp: Path, db: Path) -> Call:
    names = [("20250101000000_init", INIT), ("20251340250000_next", NEXT)]
    return run_call(write_folders(tmp / "m", names), db)


@bad(3, "next", "does not start with a YYYYMMDDHHMMSS timestamp")
def folder_without_time(tmp: Path, db: Path) -> Call:
    return run_call(write_folders(tmp / "m", [("20250101000000_init", INIT), ("next", NEXT)]), db)


@bad(3, "no migrations found")
def migrations_folder_empty(tmp: Path, db: Path) -> Call:
    return run_call(a_folder(tmp / "m"), db)


@bad(3, "does not exist or is not a folder")
def migrations_folder_a_file(tmp: Path, db: Path) -> Call:
    (tmp / "m").write_text(NEXT)
    return run_call(tmp / "m", db)


@bad(3, "/dev/null does not exist or is not a folder")
def migrations_folder_dev_null(tmp: Path, db: Path) -> Call:
    return run_call(Path("/dev/null"), db)


# The database path (exit 4, or 2 for a name SQLite cannot be given); the database the
# fixture made stays untouched beside them.


def other_db(make: Callable[[Path], Path]) -> Make:
    return lambda tmp, db: run_call(journal_with_next(tmp), make(tmp))


for _name, _make_db, _code, _needles in [
    ("db-a-folder", lambda t: a_folder(t / "d.db"), 4, ("d.db is not a file",)),
    ("db-a-fifo", lambda t: a_fifo(t / "d.db"), 4, ("d.db is not a file",)),
    ("db-a-socket", lambda t: a_socket(t / "d.db"), 4, ("d.db is not a file",)),
    ("db-dev-null", lambda t: Path("/dev/null"), 4, ("/dev/null is not a file",)),
    (
        "db-dangling-symlink",
        lambda t: a_link_to(t / "gone" / "d.db")(t / "d.db"),
        4,
        ("d.db is a symbolic link to", "which does not exist"),
    ),
    ("db-folder-missing", lambda t: t / "data" / "d.db", 4, ("folder", "does not exist")),
    (
        "db-folder-a-file",
        lambda t: a_file(t / "data") / "d.db",
        4,
        ("database folder", "does not exist"),
    ),
    ("db-path-not-utf8", lambda t: t / "caf\udce9.db", 2, ("--db", "not valid UTF-8")),
]:
    BAD[_name] = (other_db(_make_db), _code, _needles)


@bad(4, "data.db is not an SQLite database")
def db_a_zip_file(tmp: Path, db: Path) -> Call:
    other = tmp / "data.db"
    other.write_bytes(b"PK\x03\x04" + bytes(4092))
    return run_call(journal_with_next(tmp), other)


@bad(4, "cannot read", "app.db", "Permission denied")
def db_unreadable(tmp: Path, db: Path) -> Call:
    other = copy_of(db, tmp, 0)
    return Call(run_call(journal_with_next(tmp), other).args, prefix=without_read_override())


@bad(4, "cannot write", "app.db", "Permission denied")
def db_read_only_file(tmp: Path, db: Path) -> Call:
    other = copy_of(db, tmp, 0o444)
    return Call(run_call(journal_with_next(tmp), other).args, prefix=without_read_override())


for _option in ("--backup-dir", "--rehearsal-dir"):
    BAD[f"{_option[2:]}-not-utf8"] = (
        lambda tmp, db, o=_option: run_call(journal_with_next(tmp), db, o, tmp / "caf\udce9"),
        2,
        (_option, "not valid UTF-8"),
    )

# Every option's environment variable, with nonsense (exit 2).
for _var, _value, _needles in [
    ("LITEDEPLOY_LOCK_TIMEOUT", "nan", ("--lock-timeout", "got 'nan'")),
    ("LITEDEPLOY_LOCK_TIMEOUT", "inf", ("--lock-timeout", "got 'inf'")),
    ("LITEDEPLOY_LOCK_TIMEOUT", "-5", ("--lock-timeout", "from 0 to 86400")),
    ("LITEDEPLOY_LOCK_TIMEOUT", "soon", ("--lock-timeout", "'soon' is not a number of seconds")),
    ("LITEDEPLOY_BACKUP_KEEP", "0", ("--backup-keep", "1<=x<=10000")),
    ("LITEDEPLOY_BACKUP_KEEP", "1e3", ("--backup-keep", "'1e3' is not a valid int")),
    ("LITEDEPLOY_BACKUP_KEEP", "99999999999999999999", ("--backup-keep", "1<=x<=10000")),
    ("LITEDEPLOY_BACKUP", "sometimes", ("--backup", "'sometimes' is not one of")),
    ("LITEDEPLOY_BACKUP_METHOD", "rsync", ("--backup-method", "'rsync'")),
    ("LITEDEPLOY_CHECK", "thorough", ("--check", "'thorough'")),
    ("LITEDEPLOY_MIGRATIONS_FORMAT", "yaml", ("--format", "'yaml'")),
    ("LITEDEPLOY_MIGRATE_TRANSACTION", "sometimes", ("--transaction", "'sometimes'")),
    ("LITEDEPLOY_JOURNAL_MODE", "off", ("--journal-mode", "keeps no rollback journal")),
    ("LITEDEPLOY_JOURNAL_MODE", "wal; DROP TABLE users", ("--journal-mode", "is not one of")),
    ("LITEDEPLOY_JOURNAL_MODE", "bogus", ("--journal-mode", "'bogus' is not one of")),
    ("LITEDEPLOY_ALLOW_CHANGED", "maybe", ("--allow-changed", "not a valid boolean")),
    ("LITEDEPLOY_ALLOW_OUT_OF_ORDER", "2", ("--allow-out-of-order", "not a valid boolean")),
    (
        "LITEDEPLOY_ALLOW_NEWER_DATABASE",
        "perhaps",
        ("--allow-newer-database", "not a valid boolean"),
    ),
    ("LITEDEPLOY_REQUIRE_VOLUME", "if-you-like", ("--require-volume", "not a valid boolean")),
    ("LITEDEPLOY_ALLOW_ROW_LOSS", "lots", ("--allow-row-loss", "not a valid boolean")),
    ("LITEDEPLOY_REHEARSE", "sure", ("--rehearse", "not a valid boolean")),
    ("LITEDEPLOY_STRICT_DRIFT", "very", ("--strict", "not a valid boolean")),
    ("LITEDEPLOY_REHEARSAL", "x", ("--rehearsal", "not a valid boolean")),
    ("LITEDEPLOY_ACCEPT_DATA_LOSS", "x", ("--accept-data-loss", "not a valid boolean")),
    (
        "LITEDEPLOY_ALLOW_PUSH_IN_PRODUCTION",
        "x",
        ("--allow-push-in-production", "not a valid boolean"),
    ),
    ("LITEDEPLOY_FINDINGS", "ignore", ("--findings", "'ignore'")),
    ("LITEDEPLOY_MIGRATE_MODE", "yolo", ("--mode", "'yolo'")),
    ("LITEDEPLOY_ALLOW", "nonsense", ("--allow 'nonsense' is not RULE=OBJECT",)),
    ("LITEDEPLOY_DEPLOY_ID", "v1\nforged", ("--deploy-id", "control character")),
    ("LITEDEPLOY_APP_USER", "no-such-user-xyz", ("user 'no-such-user-xyz' does not exist",)),
    ("LITEDEPLOY_MIGRATIONS_TABLE", "sqlite_history", ("--history-table", "is reserved")),
    (
        "LITEDEPLOY_MIGRATIONS_TABLE",
        "users",
        ("'users' exists and is not a drizzle history table",),
    ),
    ("LITEDEPLOY_MIGRATIONS_TABLE", "his\ttory", ("--history-table", "control character")),
]:
    BAD[f"env {_var}={_value!r}"] = (
        lambda tmp, db, v=_var, x=_value: run_call(journal_with_next(tmp), db, env={v: x}),
        2,
        _needles,
    )


@bad(2, "--db", "(env var: 'DB_PATH')", "not valid UTF-8")
def env_db_path_not_utf8(tmp: Path, db: Path) -> Call:
    return Call(
        ["run", "--migrations", journal_with_next(tmp)], {"DB_PATH": str(tmp / "\udcff.db")}
    )


@bad(2, "--findings warn is refused in production")
def findings_warn_in_production(tmp: Path, db: Path) -> Call:
    return run_call(
        journal_with_next(tmp), db, env={"LITEDEPLOY_FINDINGS": "warn", "APP_ENV": "production"}
    )


@bad(2, "--rename 'no-equals-sign' is not OLD=NEW")
def push_rename_nonsense(tmp: Path, db: Path) -> Call:
    schema = tmp / "schema.sql"
    schema.write_text(INIT.split(";")[0] + ";")
    args = ("--mode", "push", "--schema", schema, "--rename", "no-equals-sign", "--dry-run")
    return run_call(journal_with_next(tmp), db, *args)


@bad(2, "--dry-run is for --mode push")
def dry_run_without_push(tmp: Path, db: Path) -> Call:
    return run_call(journal_with_next(tmp), db, "--dry-run")


@bad(2, "no such option: --lock-timout")
def option_misspelt(tmp: Path, db: Path) -> Call:
    return run_call(journal_with_next(tmp), db, "--lock-timout", "5")


# The app command (126, 127), refused before migrating.


def script(tmp: Path, data: bytes) -> Path:
    path = tmp / "server"
    path.write_bytes(data)
    path.chmod(0o755)
    return path


@bad(126, "neither #! nor an ELF header")
def command_without_shebang(tmp: Path, db: Path) -> Call:
    return run_call(journal_with_next(tmp), db, "--", script(tmp, b"node server.js\n"))


@bad(126, "'/opt/none/node', which does not exist")
def command_interpreter_missing(tmp: Path, db: Path) -> Call:
    return run_call(journal_with_next(tmp), db, "--", script(tmp, b"#!/opt/none/node\n"))


@bad(127, "command not found: no-such-server-xyz")
def command_not_found(tmp: Path, db: Path) -> Call:
    return run_call(journal_with_next(tmp), db, "--", "no-such-server-xyz")


def test_there_are_at_least_60_distinct_bad_inputs() -> None:
    assert len(BAD) >= 60, len(BAD)


@pytest.mark.parametrize("case", BAD)
def test_a_bad_input_is_one_clear_error_and_changes_nothing(
    tmp_path: Path, db: Path, case: str
) -> None:
    """The documented exit code, one `entrypoint: error:` line naming what is wrong, no
    traceback or internal error, and the database as it was."""
    make, code, needles = BAD[case]
    call = make(tmp_path, db)
    before = db_state(db)
    proc = subprocess.run(
        [*call.prefix, *entrypoint_argv(*call.args)],
        cwd=tmp_path,
        env=cli_env(call.env),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert_one_clear_error(proc, code, *needles)
    assert "Applying" not in proc.stderr
    assert_unchanged(db, before)


@pytest.mark.parametrize("case", ["missing-folder", "malformed-journal", "non-utf8-sql"])
def test_bad_migrations_do_not_create_a_database(tmp_path: Path, case: str) -> None:
    make, code, _ = BAD[case]
    db = tmp_path / "data" / "app.db"
    db.parent.mkdir()
    call = make(tmp_path, db)
    proc = run(tmp_path, db, Path(call.args[4]))
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
