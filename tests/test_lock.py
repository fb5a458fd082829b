"""One migrator per database: the others wait for the lock, then find nothing to do."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from harness import (
    applied,
    assert_one_clear_error,
    cli_env,
    db_state,
    entrypoint_argv,
    query,
    write_plain,
)

from entrypoint.base.errors import UsageError
from entrypoint.engine.lock import migration_lock

MIGRATIONS = [
    ("0001_a", "CREATE TABLE a (id integer);"),  # no IF NOT EXISTS: a second run would fail
    ("0002_b", "CREATE TABLE b (id integer);"),
]
WAITING = "waiting for the migration lock"


def wait_for(condition: Callable[[], bool], what: str, limit: float = 30) -> None:
    """Poll until the condition holds; the limit only turns a hang into a failure."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.05)


def start_run(tmp_path: Path, tag: str, *args: str | Path) -> tuple[subprocess.Popen[bytes], Path]:
    log = tmp_path / f"{tag}.stderr"
    with log.open("w") as stderr:
        proc = subprocess.Popen(
            entrypoint_argv("run", *args),
            cwd=tmp_path,
            env=cli_env(),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
        )
    return proc, log


def test_concurrent_runs_apply_each_migration_once(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    db = tmp_path / "app.db"
    args = ("--db", db, "--migrations", folder, "--lock-timeout", "60")
    with migration_lock(db, timeout=5):  # both must queue behind us, whatever the scheduler
        runs = [start_run(tmp_path, f"run{i}", *args) for i in range(2)]
        wait_for(lambda: all(WAITING in log.read_text() for _, log in runs), "both to wait")
        for _, log in runs:
            assert f"held by pid {os.getpid()} on {socket.gethostname()}" in log.read_text()
    for proc, _ in runs:
        assert proc.wait(timeout=60) == 0
    logs = [log.read_text() for _, log in runs]
    assert sorted("Applied 0002_b" in text for text in logs) == [False, True], logs
    assert sum("nothing to apply; database is at 0002_b" in text for text in logs) == 1, logs
    assert query(db, "SELECT name FROM __litedeploy_migrations ORDER BY rowid") == [
        ("0001_a",),
        ("0002_b",),
    ]


def test_waiter_reads_the_history_only_after_getting_the_lock(tmp_path: Path) -> None:
    """A run that waited sees what the holder did, even on a database that did not exist
    when it started, and a refusal then must not delete the holder's new database."""
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    older_image = write_plain(tmp_path / "older", MIGRATIONS[:1])
    db = tmp_path / "app.db"
    with migration_lock(db, timeout=5):
        proc, log = start_run(tmp_path, "waiter", "--db", db, "--migrations", older_image)
        wait_for(lambda: WAITING in log.read_text(), "the run to wait")
        # Meanwhile the holder (a newer image) creates and migrates the database.
        applied(tmp_path / "elsewhere.db", folder)
        shutil.copy(tmp_path / "elsewhere.db", db)
        before = db_state(db)
    assert proc.wait(timeout=60) == 5  # the database is ahead of the older image
    assert "0002_b" in log.read_text()
    assert db.exists()
    assert db_state(db) == before


def test_lock_timeout_exits_7_naming_the_holder(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    db = tmp_path / "app.db"
    applied(db, write_plain(tmp_path / "first", MIGRATIONS[:1]))
    before = db_state(db)
    with migration_lock(db, timeout=5):
        proc = subprocess.run(
            entrypoint_argv("run", "--db", db, "--migrations", folder, "--lock-timeout", "0.3"),
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert_one_clear_error(proc, 7, f"pid {os.getpid()} on {socket.gethostname()}", "0.3s")
    assert "--lock-timeout" in proc.stderr  # the hint
    assert db_state(db) == before
    assert query(db, "SELECT name FROM __litedeploy_migrations") == [("0001_a",)]


def test_lock_timeout_on_a_new_database_creates_nothing(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    db = tmp_path / "app.db"
    with migration_lock(db, timeout=5):
        proc = subprocess.run(
            entrypoint_argv("run", "--db", db, "--migrations", folder, "--lock-timeout", "0"),
            cwd=tmp_path,
            env=cli_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert_one_clear_error(proc, 7)
    assert not db.exists()


@pytest.mark.parametrize("value", ["nan", "NaN", "inf", "-inf", "-1", "1e9", "ten"])
def test_a_lock_timeout_that_would_never_end_is_refused(tmp_path: Path, value: str) -> None:
    """LITEDEPLOY_LOCK_TIMEOUT=nan used to wait for ever behind a holder (nan >= deadline is
    never true)."""
    folder = write_plain(tmp_path / "m", MIGRATIONS)
    db = tmp_path / "app.db"
    applied(db, write_plain(tmp_path / "first", MIGRATIONS[:1]))
    before = db_state(db)
    with migration_lock(db, timeout=5):
        proc = subprocess.run(
            entrypoint_argv("run", "--db", db, "--migrations", folder),
            cwd=tmp_path,
            env=cli_env({"LITEDEPLOY_LOCK_TIMEOUT": value}),
            capture_output=True,
            text=True,
            timeout=20,
        )
    assert_one_clear_error(proc, 2, "--lock-timeout", "LITEDEPLOY_LOCK_TIMEOUT")
    assert db_state(db) == before


@pytest.mark.parametrize("command", ["backup", "restore"])
def test_every_command_validates_its_lock_timeout(tmp_path: Path, command: str) -> None:
    db = tmp_path / "app.db"
    applied(db, write_plain(tmp_path / "m", MIGRATIONS))
    extra = ["--latest"] if command == "restore" else []
    proc = subprocess.run(
        entrypoint_argv(command, "--db", db, "--lock-timeout", "nan", *extra),
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert_one_clear_error(proc, 2, "--lock-timeout", "nan")


@pytest.mark.parametrize("timeout", [float("nan"), float("inf"), -1.0])
def test_the_lock_itself_refuses_a_wait_without_end(tmp_path: Path, timeout: float) -> None:
    lock = migration_lock(tmp_path / "app.db", timeout)
    with pytest.raises(UsageError, match="finite number of seconds"), lock:
        pass
    assert not (tmp_path / "app.db.lock").exists()
