"""Shared helpers for the unit and CLI tests: tiny migration folders, databases, the CLI.

A module of its own (not conftest.py) so that test files can import it by a name no other
conftest.py in the tree can shadow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from entrypoint.modes.migrate import Outcome, migrate
from entrypoint.settings import Options

ROOT = Path(__file__).resolve().parent.parent

# Variables the CLI reads; the developer's shell must not leak them into a test.
CLI_ENV_VARS = (
    "DB_PATH",
    "MIGRATIONS_DIR",
    "LITEDEPLOY_MIGRATIONS_FORMAT",
    "LITEDEPLOY_MIGRATIONS_TABLE",
    "LITEDEPLOY_ALLOW_OUT_OF_ORDER",
    "LITEDEPLOY_ALLOW_CHANGED",
    "LITEDEPLOY_ALLOW_NEWER_DATABASE",
    "LITEDEPLOY_MIGRATE_TRANSACTION",
    "LITEDEPLOY_LOCK_TIMEOUT",
    "LITEDEPLOY_APP_USER",
    "LITEDEPLOY_DEBUG",
    "LITEDEPLOY_BACKUP",
    "LITEDEPLOY_BACKUP_DIR",
    "LITEDEPLOY_BACKUP_KEEP",
    "LITEDEPLOY_BACKUP_METHOD",
    "LITEDEPLOY_CHECK",
    "LITEDEPLOY_JOURNAL_MODE",
    "LITEDEPLOY_REQUIRE_VOLUME",
    "LITEDEPLOY_ALLOW_ROW_LOSS",
    "LITEDEPLOY_ALLOW",
    "LITEDEPLOY_FAULT",
    "LITEDEPLOY_FAULT_LOG",
    "LITEDEPLOY_DEPLOY_ID",
    "LITEDEPLOY_FINDINGS",
    "LITEDEPLOY_REHEARSE",
    "LITEDEPLOY_REHEARSAL_DIR",
    "APP_ENV",
    "LITEDEPLOY_STRICT_DRIFT",
    "LITEDEPLOY_REHEARSAL",
    "LITEDEPLOY_MIGRATE_MODE",
    "LITEDEPLOY_LOG_FORMAT",
    "LITEDEPLOY_PUSH_SCHEMA",
    "LITEDEPLOY_PUSH_RENAMES",
    "LITEDEPLOY_ACCEPT_DATA_LOSS",
    "LITEDEPLOY_ALLOW_PUSH_IN_PRODUCTION",
)

Pairs = Sequence[tuple[str, str | bytes]]

# A journal's default `when` values: one second apart, from a fixed instant.
FIRST_WHEN = 1_740_000_000_000


def _data(sql: str | bytes) -> bytes:
    return sql if isinstance(sql, bytes) else sql.encode("utf-8")


def write_journal(
    folder: Path,
    migrations: Pairs,
    *,
    whens: Sequence[int] | None = None,
    version: str = "7",
) -> Path:
    """A drizzle-kit 0.x folder: `NNNN_tag.sql` files and `meta/_journal.json`."""
    (folder / "meta").mkdir(parents=True, exist_ok=True)
    whens = list(whens) if whens is not None else [FIRST_WHEN + 1000 * i for i in range(99)]
    entries = []
    for idx, (tag, sql) in enumerate(migrations):
        (folder / f"{tag}.sql").write_bytes(_data(sql))
        entries.append(
            {"idx": idx, "version": "6", "when": whens[idx], "tag": tag, "breakpoints": True}
        )
    journal = {"version": version, "dialect": "sqlite", "entries": entries}
    (folder / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2))
    return folder


def append_journal(folder: Path, tag: str, sql: str, when: int) -> None:
    """Add one entry at the end of an existing journal (a branch merged late, say)."""
    path = folder / "meta" / "_journal.json"
    journal = json.loads(path.read_text())
    entries = journal["entries"]
    entries.append(
        {"idx": len(entries), "version": "6", "when": when, "tag": tag, "breakpoints": True}
    )
    (folder / f"{tag}.sql").write_text(sql)
    path.write_text(json.dumps(journal, indent=2))


def write_folders(folder: Path, migrations: Pairs) -> Path:
    """A drizzle-kit 1.0 folder: `YYYYMMDDHHMMSS_name/migration.sql` (+ snapshot.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in migrations:
        (folder / name).mkdir()
        (folder / name / "migration.sql").write_bytes(_data(sql))
        (folder / name / "snapshot.json").write_text('{"version": "7", "dialect": "sqlite"}')
    return folder


def write_plain(folder: Path, migrations: Pairs) -> Path:
    """A plain folder of `NNNN_name.sql` files."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, sql in migrations:
        (folder / f"{name}.sql").write_bytes(_data(sql))
    return folder


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def query(db: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Read from a database in a short-lived connection of its own."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def make_db(db: Path, sql: str) -> Path:
    """A database that some other tool (or the app) already wrote to."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(sql)
    return db


@dataclass(frozen=True)
class DbState:
    """Everything a test compares to say "the database did not change"."""

    data: bytes
    dump: list[str]


def db_state(db: Path) -> DbState:
    data = db.read_bytes()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        dump = list(conn.iterdump())
    return DbState(data, dump)


def applied(db: Path, folder: Path, **options: Any) -> Outcome:
    """Set-up step: migrate through the Python API (fast; the CLI is tested on its own)."""
    return migrate(Options(db_path=db, migrations_dir=folder, **options))


def cli_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in CLI_ENV_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(extra or {})
    return env


def entrypoint_argv(*args: str | Path) -> list[str]:
    return [sys.executable, "-m", "entrypoint", *map(str, args)]


Cli = Callable[..., subprocess.CompletedProcess[str]]


def run_cli(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `python -m entrypoint ARGS` as a real process; never raises on the exit code."""
    return subprocess.run(
        entrypoint_argv(*args),
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("entrypoint: error:")]


def assert_one_clear_error(proc: subprocess.CompletedProcess[str], code: int, *needles: str) -> str:
    """The documented exit code, exactly one error line naming what is wrong, no traceback."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    errors = error_lines(proc.stderr)
    assert len(errors) == 1, proc.stderr
    for needle in needles:
        assert needle in errors[0], proc.stderr
    return errors[0]


def assert_unchanged(db: Path, before: DbState) -> None:
    """The live database, byte for byte and dump for dump, is what it was."""
    after = db_state(db)
    assert after.dump == before.dump
    assert after.data == before.data


def dump(db: Path) -> list[str]:
    """The database's SQL dump, read without writing anything beside it."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return list(conn.iterdump())


def dump_of_file(path: Path) -> list[str]:
    """The dump of a file opened as it is (immutable: no -wal or -shm is read or made)."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)) as conn:
        return list(conn.iterdump())


def backup_files(folder: Path) -> list[Path]:
    """The `*.backup` files in a backup folder, oldest name first."""
    return sorted(folder.glob("*.backup")) if folder.is_dir() else []


def manifest_of(backup: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(backup.with_name(backup.name + ".json").read_text())
    return data


def corrupt_pages(db: Path, pages: Sequence[int]) -> None:
    """Overwrite whole b-tree pages (1-based, never page 1) so the header stays valid."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        page_size = int(conn.execute("PRAGMA page_size").fetchone()[0])
    assert 1 not in pages
    with db.open("r+b") as f:
        for page in pages:
            f.seek((page - 1) * page_size)
            f.write(b"\xa5" * page_size)


def mode_of(path: Path) -> int:
    return path.stat().st_mode & 0o777


def without_caps(*caps: str) -> tuple[str, ...]:
    """A `setpriv` prefix that runs a root command without these capabilities.

    Root bypasses file permissions, so a permission test proves nothing when the suite runs
    as root (as in CI); without CAP_DAC_OVERRIDE (and friends) permissions apply to it as to
    any user. As another user, no prefix is needed.
    """
    if os.geteuid() != 0:
        return ()
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root and setpriv (util-linux) is missing")
    dropped = ",".join(f"-{c}" for c in caps)
    return (setpriv, f"--inh-caps={dropped}", f"--bounding-set={dropped}", "--")


@contextlib.contextmanager
def tmpfs(where: Path, options: str) -> Iterator[Path]:
    """Mount a tmpfs at `where` (created if needed) for the block; always unmounted after."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (CI runs the suite as root)")
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], check=True)
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(where)], check=True)
