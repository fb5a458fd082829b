"""Shared helpers for the unit and CLI tests: tiny migration folders, databases, the CLI.

A module of its own (not conftest.py) so that test files can import it by a name no other
conftest.py in the tree can shadow.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from entrypoint.migrate import Options, Outcome, migrate

ROOT = Path(__file__).resolve().parent.parent

# Variables the CLI reads; the developer's shell must not leak them into a test.
CLI_ENV_VARS = (
    "DB_PATH",
    "MIGRATIONS_DIR",
    "MIGRATIONS_FORMAT",
    "MIGRATIONS_TABLE",
    "ALLOW_OUT_OF_ORDER",
    "ALLOW_CHANGED",
    "ALLOW_NEWER_DATABASE",
    "MIGRATE_TRANSACTION",
    "LOCK_TIMEOUT",
    "APP_USER",
    "LITEDEPLOY_DEBUG",
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
