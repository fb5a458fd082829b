"""Progress of long copies (base/progress.py): one line in place on a terminal, plain lines now
and then otherwise, nothing for small files.

The module is driven with real files growing under it; the commands (backup, rehearse,
restore) on a real terminal (a pseudo-terminal) and a real pipe, with a database over the
threshold.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import logging
import os
import pty
import re
import select
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from harness import ROOT, Cli, cli_env, entrypoint_argv

from entrypoint.base import durable, progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def grow(path: Path, chunks: int, size: int, pause: float) -> None:
    with path.open("wb") as f:
        for _ in range(chunks):
            f.write(b"x" * size)
            f.flush()
            time.sleep(pause)


def test_a_terminal_gets_one_line_redrawn_then_cleared(tmp_path: Path) -> None:
    target = tmp_path / "copy"
    out = Terminal()
    with progress.watching("backup", target, 4 << 20, stream=out, small=1, every=0.02):
        grow(target, 4, 1 << 20, 0.06)
    text = out.getvalue()
    draws = text.split("\r")[1:]
    assert len(draws) >= 4  # redrawn in place, never a new line
    assert "\n" not in text
    assert all(
        re.fullmatch(r"entrypoint: backup: \S+ \S+ of 4.0 MiB \(\d+%\)\033\[K", d)
        for d in draws[:-1]
    )
    assert len(set(draws)) >= 3  # it moved
    assert draws[-1] == "\033[K"  # cleared: the line after it says what was done


def test_no_terminal_gets_plain_log_lines(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    target = tmp_path / "copy"
    out = io.StringIO()
    with (
        caplog.at_level(logging.INFO, logger="litedeploy.entrypoint"),
        progress.watching("restore", target, 3 << 20, stream=out, small=1, every=0.05),
    ):
        grow(target, 3, 1 << 20, 0.1)
    assert out.getvalue() == ""  # nothing drawn
    lines = [r.getMessage() for r in caplog.records]
    assert lines, "a long copy must not be silent"
    assert all(line.startswith("restore: ") and " of 3.0 MiB (" in line for line in lines)


def test_json_logs_get_log_lines_on_a_terminal_too(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LITEDEPLOY_LOG_FORMAT", "json")
    out = Terminal()
    with (
        caplog.at_level(logging.INFO, logger="litedeploy.entrypoint"),
        progress.watching("backup", tmp_path / "c", 2 << 20, stream=out, every=0.02, small=1),
    ):
        grow(tmp_path / "c", 2, 1 << 20, 0.06)
    assert out.getvalue() == ""
    assert any(r.getMessage().startswith("backup: ") for r in caplog.records)


def test_a_small_file_gets_nothing(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    out = Terminal()
    with (
        caplog.at_level(logging.INFO, logger="litedeploy.entrypoint"),
        progress.watching("backup", tmp_path / "c", progress.SMALL - 1, stream=out),
    ):
        grow(tmp_path / "c", 1, 1024, 0.3)
    assert out.getvalue() == ""
    assert caplog.records == []


def test_a_hash_counts_what_it_has_read(tmp_path: Path) -> None:
    """`counting` reports the bytes handed to it: a file's sha256, read in 1 MiB chunks."""
    target = tmp_path / "backup"
    target.write_bytes(b"x" * (3 << 20))
    out = Terminal()
    seen: list[int] = []
    with progress.counting("backup check", 3 << 20, stream=out, small=1, every=0.01) as read:

        def slow(n: int) -> None:
            read(n)
            seen.append(n)
            time.sleep(0.05)

        digest = durable.sha256_of(target, slow)
    assert digest == hashlib.sha256(target.read_bytes()).hexdigest()
    assert seen == [1 << 20] * 3
    text = out.getvalue()
    assert "\rentrypoint: backup check: 0 B of 3.0 MiB (0%)" in text
    assert re.search(r"backup check: [12]\.0 MiB of 3\.0 MiB \((33|66)%\)", text), text
    assert text.endswith("\r\x1b[K")


@pytest.mark.parametrize(
    ("size", "shown"),
    [(0, "0 B"), (1023, "1023 B"), (4096, "4 KiB"), (5 << 20, "5.0 MiB"), (3 << 30, "3.0 GiB")],
)
def test_sizes_read_as_people_write_them(size: int, shown: str) -> None:
    assert progress.human(size) == shown


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real database just over the threshold (in WAL mode, as apps keep them)."""
    db = tmp_path_factory.mktemp("big") / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode=wal")
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY, b blob)")
        rows = (progress.SMALL // 4000) + 200
        conn.executemany("INSERT INTO t (b) VALUES (randomblob(4000))", ([] for _ in range(rows)))
        conn.commit()
    assert db.stat().st_size > progress.SMALL
    return db


def on_a_terminal(*args: str | Path, cwd: Path) -> tuple[int, str]:
    """Run the entrypoint with stdin, stdout and stderr on a pseudo-terminal."""
    leader, follower = pty.openpty()
    proc = subprocess.Popen(
        entrypoint_argv(*args),
        cwd=cwd,
        env=cli_env(),
        stdin=follower,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        ready, _, _ = select.select([leader], [], [], 1)
        if not ready:
            if proc.poll() is not None:
                break
            continue
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # EIO: the process closed its end
            break
        if not chunk:
            break
        seen += chunk
    os.close(leader)
    return proc.wait(timeout=60), seen.decode()


def drawn(label: str, seen: str) -> bool:
    return bool(re.search(rf"\rentrypoint: {label}: \S+ \S+ of \S+ MiB \(\d+%\)\x1b\[K", seen))


def test_backup_rehearse_and_restore_show_progress_on_a_terminal(
    big: Path, tmp_path: Path, cli: Cli
) -> None:
    db = tmp_path / "app.db"
    db.write_bytes(big.read_bytes())
    code, seen = on_a_terminal("backup", "--db", db, cwd=tmp_path)
    assert code == 0, seen
    assert drawn("backup", seen), seen
    assert drawn("backup check", seen), seen  # the copy read back and hashed
    assert seen.count("\r\033[K") >= 2  # each line cleared before what follows
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "0001_u.sql").write_text("CREATE TABLE u (id integer PRIMARY KEY);\n")
    code, seen = on_a_terminal(
        "rehearse", "--db", db, "--migrations", folder, "--format", "sql", cwd=tmp_path
    )
    assert code == 0, seen
    assert drawn("rehearsal snapshot", seen), seen
    code, seen = on_a_terminal("restore", "--db", db, "--latest", cwd=tmp_path)
    assert code == 0, seen
    assert drawn("restore check", seen), seen  # the backup's hash, before anything moves
    assert drawn("restore", seen), seen
    # the same through a pipe, as `docker logs` sees it: a copy this short says nothing
    piped = cli("backup", "--db", db)
    assert piped.returncode == 0, piped.stderr
    assert "\r" not in piped.stderr and "backup: 0 B" not in piped.stderr


def test_nothing_for_a_small_database_on_a_terminal(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY)")
    code, seen = on_a_terminal("backup", "--db", db, cwd=ROOT)
    assert code == 0, seen
    assert "\x1b[K" not in seen and "(0%)" not in seen
