"""A restore killed at any instruction: the next start finishes it, never starts on nothing.

Each test runs `entrypoint restore` (or `entrypoint run`, whose failed check restores the
backup) as a real process, kills it with SIGKILL at one place, then starts `entrypoint run`
again and looks at what the app would get: the backup's data, or (when the kill came before
the restore had recorded anything) the old database whole, its WAL included; never an empty
database, never the old file without its WAL. The replaced files must be in quarantine.
"""

from __future__ import annotations

import contextlib
import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    applied,
    assert_one_clear_error,
    cli_env,
    dump,
    dump_of_file,
    entrypoint_argv,
    query,
    write_plain,
)
from kill_sweep import killed_at_call

INIT = (
    "CREATE TABLE items (id integer PRIMARY KEY, body text NOT NULL);\n"
    "INSERT INTO items (body) VALUES ('a'), ('b'), ('c');"
)
# A rebuild that keeps only some rows: the check after migrating fails and restores.
LOSSY = """\
CREATE TABLE `__new_items` (`id` integer PRIMARY KEY, `body` text NOT NULL, `tag` text);
--> statement-breakpoint
INSERT INTO `__new_items` (`id`, `body`) SELECT `id`, `body` FROM `items` WHERE `id` <= 2;
--> statement-breakpoint
DROP TABLE `items`;
--> statement-breakpoint
ALTER TABLE `__new_items` RENAME TO `items`;
"""
PAST_THE_GATE = ("--no-rehearse", "--findings", "warn")
LATE = "written after the backup"

# The app, killed right after a commit: the commit sits in app.db-wal, with app.db-shm beside.
CRASHING_WRITER = f"""
import os, signal, sqlite3, sys
conn = sqlite3.connect(sys.argv[1])
conn.execute("INSERT INTO items (body) VALUES ('{LATE}')")
conn.commit()
os.kill(os.getpid(), signal.SIGKILL)
"""


def process(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None, argv: list[str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        argv if argv is not None else entrypoint_argv(*args),
        cwd=cwd,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )


class App:
    """data/app.db with a backup, then a commit the backup lacks left in its WAL."""

    def __init__(self, tmp_path: Path) -> None:
        self.root = tmp_path
        (tmp_path / "data").mkdir()
        self.db = tmp_path / "data" / "app.db"
        self.migrations = write_plain(tmp_path / "m", [("0001_init", INIT)])
        applied(self.db, self.migrations)
        proc = process("backup", "--db", self.db, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        self.backup = Path(proc.stdout.splitlines()[0])
        self.at_backup = dump_of_file(self.backup)
        subprocess.run([sys.executable, "-c", CRASHING_WRITER, str(self.db)], timeout=60)
        assert self.db.with_name("app.db-wal").stat().st_size > 0
        self.before_restore = dump(self.db)  # read through the WAL, as the app would
        assert LATE in str(self.before_restore)

    def run(self, *extra: str, env: dict[str, str] | None = None) -> Any:
        return process(
            "run", "--db", self.db, "--migrations", self.migrations, *extra, env=env, cwd=self.root
        )

    def restore(self, env: dict[str, str] | None = None) -> Any:
        return process("restore", "--db", self.db, "--latest", env=env, cwd=self.root)

    def quarantined(self) -> list[Path]:
        root = self.db.parent / "quarantine"
        return sorted(root.iterdir()) if root.is_dir() else []

    def assert_restored(self) -> None:
        """The backup's data at the database path, the replaced files whole in quarantine."""
        assert dump(self.db) == self.at_backup
        [kept] = self.quarantined()
        assert {"app.db", "app.db-wal"} <= {p.name for p in kept.iterdir()}
        assert dump(kept / "app.db") == self.before_restore  # with its WAL: nothing lost
        assert not self.db.with_name("app.db.restoring").exists()
        assert not self.db.with_name(".app.db.restore-copy").exists()

    def assert_restored_or_untouched(self) -> str:
        """Killed before the intent was on disk, a restore has not begun: the old data, whole."""
        if dump(self.db) == self.before_restore:
            assert not self.db.with_name("app.db.restoring").exists()
            return "untouched"
        self.assert_restored()
        return "restored"


def points_passed(run: Callable[[dict[str, str]], Any], log: Path, prefix: str) -> list[str]:
    """Every fault point (name@count) a run passes, in order, that starts with `prefix`."""
    proc = run({"LITEDEPLOY_FAULT_LOG": str(log)})
    assert proc.returncode in (0, 11), proc.stderr
    return [p for p in log.read_text().split() if p.startswith(prefix)]


def assert_killed(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode == -signal.SIGKILL, proc.stderr


RESTORE_POINTS = [
    "restore.intent@1",
    "restore.copied@1",
    "restore.quarantined@1",
    "restore.unlinked@1",
    "restore.unlinked@2",
    "restore.renamed@1",
]


def test_the_restore_passes_every_point(tmp_path: Path) -> None:
    """The list the tests below kill at is the list a restore goes through (-wal and -shm)."""
    app = App(tmp_path)
    assert points_passed(app.restore, tmp_path / "points", "restore.") == RESTORE_POINTS


@pytest.mark.parametrize("point", RESTORE_POINTS)
def test_restore_killed_at_a_point_is_finished_by_the_next_start(
    tmp_path: Path, point: str
) -> None:
    app = App(tmp_path)
    assert_killed(app.restore({"LITEDEPLOY_FAULT": point}))
    assert app.db.exists()  # at every point, a database at the path

    proc = app.run()
    assert proc.returncode == 0, proc.stderr
    assert "(new)" not in proc.stderr
    assert "a restore of" in proc.stderr and "was interrupted" in proc.stderr
    app.assert_restored()


def test_restore_killed_at_every_call(tmp_path: Path) -> None:
    """SIGKILL at each file-changing call in turn, until a restore gets through whole."""
    outcomes = []
    for call in range(1, 100):
        case = tmp_path / str(call)
        case.mkdir()
        app = App(case)
        killed = killed_at_call(call, "restore", "--db", app.db, "--latest", cwd=case)
        if killed.returncode == 0:
            break
        assert_killed(killed)
        proc = app.run()
        assert proc.returncode == 0, f"killed at call {call}: {proc.stderr}"
        assert "(new)" not in proc.stderr, f"killed at call {call}: started on an empty database"
        outcomes.append(app.assert_restored_or_untouched())
    else:
        raise AssertionError("the restore never got through")
    assert outcomes[0] == "untouched"
    assert outcomes[-1] == "restored"
    assert len(outcomes) > 10


@pytest.mark.parametrize("point", RESTORE_POINTS)
def test_an_io_error_at_a_point_is_one_clear_error(tmp_path: Path, point: str) -> None:
    app = App(tmp_path)
    proc = app.restore({"LITEDEPLOY_FAULT": f"{point}:error"})
    assert_one_clear_error(proc, 12, str(app.backup))
    if point in ("restore.intent@1", "restore.copied@1", "restore.quarantined@1"):
        assert "the live database was not touched" in proc.stderr
        assert dump(app.db) == app.before_restore
        assert app.quarantined() == []
        assert not app.db.with_name("app.db.restoring").exists()
        return
    assert "the next `entrypoint run`" in proc.stderr
    proc = app.run()
    assert proc.returncode == 0, proc.stderr
    app.assert_restored()


# --- the automatic restore inside `run`, after a failed check ---------------------------------


class Failing(App):
    """App, then a pending migration that loses rows: `run` restores the backup it takes."""

    def __init__(self, tmp_path: Path) -> None:
        super().__init__(tmp_path)
        self.good = self.migrations
        self.migrations = write_plain(tmp_path / "m2", [("0001_init", INIT), ("0002_lossy", LOSSY)])
        self.before_run = self.before_restore

    def failing_run(self, env: dict[str, str] | None = None) -> Any:
        return self.run(*PAST_THE_GATE, env=env)

    def good_run(self) -> Any:
        return process("run", "--db", self.db, "--migrations", self.good, cwd=self.root)


def run_backup(db: Path) -> Path:
    [made] = sorted((db.parent / "backups").glob("*.backup"))[-1:]
    return made


def test_the_automatic_restore_passes_every_point(tmp_path: Path) -> None:
    app = Failing(tmp_path)
    assert points_passed(app.failing_run, tmp_path / "points", "restore.") == [
        "restore.intent@1",
        "restore.copied@1",
        "restore.quarantined@1",
        "restore.renamed@1",  # the run closed its connection: SQLite removed -wal and -shm
    ]


@pytest.mark.parametrize(
    "point", ["restore.intent@1", "restore.copied@1", "restore.quarantined@1", "restore.renamed@1"]
)
def test_automatic_restore_killed_at_a_point(tmp_path: Path, point: str) -> None:
    app = Failing(tmp_path)
    assert_killed(app.failing_run({"LITEDEPLOY_FAULT": point}))
    taken = run_backup(app.db)
    assert dump_of_file(taken) == app.before_run  # the backup `run` took before migrating

    proc = app.good_run()  # the operator goes back to the image without the lossy migration
    assert proc.returncode == 0, proc.stderr
    assert "(new)" not in proc.stderr
    assert "was interrupted" in proc.stderr
    assert dump(app.db) == app.before_run
    [kept] = app.quarantined()
    migrated = kept / "app.db"  # the evidence: what the lossy migration made
    assert query(migrated, "SELECT count(*) FROM items") == [(2,)]
    assert not app.db.with_name("app.db.restoring").exists()


# --- a restore that cannot be finished ----------------------------------------------------------


def test_an_interrupted_restore_whose_backup_is_gone(tmp_path: Path) -> None:
    """Killed after the intent, the backup then deleted: the start refuses (exit 12), touching
    nothing; restoring another backup takes the interrupted restore's place."""
    app = App(tmp_path)
    older = app.backup
    proc = process("backup", "--db", app.db, cwd=tmp_path)  # a second, newer backup
    newer = Path(proc.stdout.splitlines()[0])
    assert_killed(app.restore({"LITEDEPLOY_FAULT": "restore.intent@1"}))
    assert json.loads(app.db.with_name("app.db.restoring").read_text())["backup"] == str(newer)
    newer.unlink()

    proc = app.run()
    line = assert_one_clear_error(proc, 12, "was interrupted and cannot be finished", str(newer))
    assert "does not exist" in line
    assert "Applying" not in proc.stderr
    assert dump(app.db) == app.before_restore
    assert app.db.with_name("app.db.restoring").exists()  # still refusing, start after start

    proc = process("restore", "--db", app.db, older, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert dump(app.db) == dump_of_file(older)
    app.at_backup = dump_of_file(older)
    app.assert_restored()
    assert app.run().returncode == 0


def test_a_garbled_intent_refuses_the_start(tmp_path: Path) -> None:
    app = App(tmp_path)
    app.db.with_name("app.db.restoring").write_text('{"backup": "/etc/shadow"')
    proc = app.run()
    assert_one_clear_error(proc, 12, "app.db.restoring", "was interrupted")
    assert dump(app.db) == app.before_restore
    proc = app.restore()  # the way out the hint gives
    assert proc.returncode == 0, proc.stderr
    app.assert_restored()


def test_a_second_start_after_a_finished_restore_has_nothing_to_do(tmp_path: Path) -> None:
    app = App(tmp_path)
    assert_killed(app.restore({"LITEDEPLOY_FAULT": "restore.renamed@1"}))
    proc = app.run()
    assert proc.returncode == 0, proc.stderr
    assert "had swapped the files before it was interrupted" in proc.stderr
    app.assert_restored()
    proc = app.run()
    assert proc.returncode == 0, proc.stderr
    assert "interrupted" not in proc.stderr
    with contextlib.closing(sqlite3.connect(app.db)) as conn:  # and the app can write
        conn.execute("INSERT INTO items (body) VALUES ('after')")
        conn.commit()
