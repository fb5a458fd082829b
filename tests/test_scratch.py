"""The rehearsal's copies left by a killed run are removed by the next rehearsal; nothing else is.

A run SIGKILLed during its rehearsal leaves two copies of the database in $TMPDIR (or
--rehearsal-dir). The folder's name says which process made it (pid and start time), so
the next run removes the folders of processes that are gone and only those.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import Cli, applied, query, write_plain

from entrypoint.safety import scratch

INIT = (
    "CREATE TABLE items (id integer PRIMARY KEY, body text NOT NULL);\n"
    "INSERT INTO items (body) VALUES ('a'), ('b'), ('c');"
)
NEXT = "ALTER TABLE items ADD tag text;"


def app(tmp_path: Path) -> tuple[Path, Path]:
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    applied(db, folder)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executemany("INSERT INTO items (body) VALUES (?)", [("x" * 1000,)] * 500)
        conn.commit()
    write_plain(folder, [("0002_next", NEXT)])
    return db, folder


def rehearsal_folders(where: Path) -> list[Path]:
    return sorted(p for p in where.iterdir() if p.name.startswith(scratch.PREFIX))


def test_a_run_killed_during_its_rehearsal_leaves_a_copy_the_next_run_removes(
    tmp_path: Path, cli: Cli
) -> None:
    db, folder = app(tmp_path)
    where = tmp_path / "scratch"
    where.mkdir()
    args = ("run", "--db", db, "--migrations", folder, "--rehearsal-dir", where)
    proc = cli(*args, env={"LITEDEPLOY_FAULT": "rehearsal.applied@1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    [left] = rehearsal_folders(where)
    assert {p.name for p in left.iterdir()} >= {"before.db", "after.db"}
    assert scratch.NAME.fullmatch(left.name)

    proc = cli(*args)
    assert proc.returncode == 0, proc.stderr
    assert f"removed {left}, the rehearsal copy of a run that is gone" in proc.stderr
    assert rehearsal_folders(where) == []
    assert "tag" in [r[1] for r in query(db, "SELECT * FROM pragma_table_info('items')")]


@contextlib.contextmanager
def live_process() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    try:
        yield proc
    finally:
        assert proc.stdin is not None
        proc.stdin.close()
        proc.wait(timeout=30)


def folder_of(where: Path, pid: int, started: int, tail: str = "abcd1234") -> Path:
    made = where / f"{scratch.PREFIX}{pid}-{started}-{tail}"
    made.mkdir()
    (made / "before.db").write_bytes(b"a copy")
    return made


def test_only_folders_of_processes_that_are_gone_are_removed(tmp_path: Path) -> None:
    with live_process() as child:
        start = scratch._start_time(child.pid)
        assert start is not None
        running = folder_of(tmp_path, child.pid, start)
        pid_reused = folder_of(tmp_path, child.pid, start + 1)  # same pid, another process
        mine = folder_of(tmp_path, os.getpid(), scratch._start_time(os.getpid()) or 0)
        gone = folder_of(tmp_path, 4_000_000, 1)  # beyond pid_max: no such process
        legacy = tmp_path / "litedeploy-rehearsal-k2j3h4g5"  # an older release's: no pid
        legacy.mkdir()
        other = tmp_path / "something-else-1-2-abc"
        other.mkdir()
        a_file = tmp_path / f"{scratch.PREFIX}4000000-1-file0000"
        a_file.write_text("not a folder")

        removed = scratch.remove_stale(tmp_path)

        assert sorted(removed) == sorted([pid_reused, gone])
        for kept in (running, mine, legacy, other, a_file):
            assert kept.exists(), kept


def test_the_prefix_names_this_process(tmp_path: Path) -> None:
    made = Path(tempfile.mkdtemp(prefix=scratch.prefix(), dir=tmp_path))
    found = scratch.NAME.fullmatch(made.name)
    assert found is not None
    assert int(found[1]) == os.getpid()
    assert scratch.remove_stale(tmp_path) == []  # this process is alive


def test_no_symlink_is_followed(tmp_path: Path) -> None:
    """A link named like a stale folder, and links inside a stale folder: none is followed."""
    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("keep")
    where = tmp_path / "tmp"
    where.mkdir()
    link = where / f"{scratch.PREFIX}4000000-1-link0000"
    link.symlink_to(victim)
    stale = folder_of(where, 4_000_000, 2)
    (stale / "into-victim").symlink_to(victim)
    (stale / "a-file-of-victim").symlink_to(victim / "keep.txt")

    assert scratch.remove_stale(where) == [stale]
    assert link.is_symlink()
    assert (victim / "keep.txt").read_text() == "keep"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's folder")
def test_another_users_folder_is_left(tmp_path: Path) -> None:
    theirs = folder_of(tmp_path, 4_000_000, 3)
    os.chown(theirs, 4321, 4321)
    assert scratch.remove_stale(tmp_path) == []
    assert theirs.exists()


def test_a_missing_or_unreadable_workdir_is_no_error(tmp_path: Path) -> None:
    assert scratch.remove_stale(tmp_path / "missing") == []
