"""A failure after migrating while another process has the database open: the failure first.

The backup taken before the run is put back only when nobody has the database open (restore
would pull the file from under them). That refusal used to replace the failure itself: exit
13 "database in use", the migration's own error never printed.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from harness import Cli, assert_one_clear_error, query
from test_checks import LOSSY_REBUILD, PAST_THE_GATE, THREE, history, shop

HOLD_OPEN = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1])
conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
print("open", flush=True)
time.sleep(120)
"""


@contextmanager
def held_open(db: Path) -> Iterator[int]:
    """Another process (the old app, say) with the database open, idle."""
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD_OPEN, db], stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "open"
        yield proc.pid
    finally:
        proc.kill()
        proc.wait()


def test_a_failed_migration_is_reported_when_the_restore_is_refused(
    tmp_path: Path, cli: Cli
) -> None:
    db, folder = shop(tmp_path, *THREE)
    with held_open(db) as pid:
        proc = cli("run", "--db", db, "--migrations", folder, *PAST_THE_GATE)
    line = assert_one_clear_error(
        proc, 6, "0004_bad.sql", "no such table: nope", "the migrations before it had committed"
    )
    assert line.index("no such table") < line.index("was not restored")  # the failure first
    assert f"is open in pid {pid}" in line
    hint = next(x for x in proc.stderr.splitlines() if x.startswith("entrypoint: hint:"))
    assert "stop the app" in hint.lower() and "entrypoint restore" in hint
    assert "as migrated so far" in hint
    assert history(db) == ["0001_init", "0002_a", "0003_b"]  # consistent: each with its row
    assert not (db.parent / "quarantine").exists()


def test_a_failed_check_is_reported_when_the_restore_is_refused(tmp_path: Path, cli: Cli) -> None:
    db, folder = shop(tmp_path, ("0002_tag_color", LOSSY_REBUILD))
    with held_open(db):
        proc = cli("run", "--db", db, "--migrations", folder, *PAST_THE_GATE)
    line = assert_one_clear_error(proc, 11, "tags: 3 of 5 row(s) vanish", "was not restored")
    assert "is open in pid" in line
    assert history(db) == ["0001_init", "0002_tag_color"]
    assert query(db, "SELECT count(*) FROM tags") == [(2,)]
