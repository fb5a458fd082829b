"""Backups: `entrypoint backup`, the one inside `run`, manifests, retention, the WAL, a writer
committing all the while, and every way writing a backup can fail."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from harness import (
    Cli,
    applied,
    assert_one_clear_error,
    assert_unchanged,
    backup_files,
    cli_env,
    db_state,
    dump,
    dump_of_file,
    entrypoint_argv,
    manifest_of,
    mode_of,
    query,
    sha256_file,
    tmpfs,
    without_caps,
    write_plain,
)
from kill_sweep import killed_at_call

from entrypoint.safety.drift_memo import memo_path

INIT = (
    "CREATE TABLE items (id integer PRIMARY KEY, body text NOT NULL);\n"
    "INSERT INTO items (body) VALUES ('a'), ('b'), ('c');"
)
NEXT = "ALTER TABLE items ADD tag text;"

Invoke = Callable[..., Any]


def app(tmp_path: Path, *, pending: bool = True, rows: int = 0) -> tuple[Path, Path]:
    """data/app.db with 0001_init applied (plus `rows` 1 KB rows), and 0002_next pending."""
    data = tmp_path / "data"
    data.mkdir()
    db = data / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    applied(db, folder)
    if rows:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.executemany(
                "INSERT INTO items (body) VALUES (?)", (("x" * 1000,) for _ in range(rows))
            )
            conn.commit()
    if pending:
        write_plain(folder, [("0002_next", NEXT)])
    return db, folder


def run(
    call: Callable[..., Any],
    db: Path,
    folder: Path,
    *extra: str | Path,
    env: dict[str, str] | None = None,
) -> Any:
    """`entrypoint run` through `cli` (a real process) or `invoke` (in-process)."""
    return call("run", "--db", db, "--migrations", folder, *extra, env=env)


def columns(db: Path, table: str = "items") -> list[str]:
    return [r[1] for r in query(db, f"SELECT * FROM pragma_table_info('{table}')")]


# --- the backup command and its manifest ------------------------------------------------------


@pytest.mark.parametrize("level", ["quick", "integrity"])
def test_backup_is_verified_private_and_described(
    tmp_path: Path, invoke: Invoke, level: str
) -> None:
    db, _ = app(tmp_path)
    started = datetime.now(UTC)
    result = invoke("backup", "--db", db, "--deploy-id", "rel-42", "--check", level, "--json")
    finished = datetime.now(UTC)
    assert result.exit_code == 0, result.stderr
    folder = db.parent / "backups"
    [backup] = backup_files(folder)
    manifest_file = backup.with_name(backup.name + ".json")
    assert sorted(p.name for p in folder.iterdir()) == [backup.name, manifest_file.name]
    assert mode_of(folder) == 0o700
    assert mode_of(backup) == 0o600
    assert mode_of(manifest_file) == 0o600

    m = manifest_of(backup)
    assert json.loads(result.stdout) == {"path": str(backup), **m}
    assert m["file"] == backup.name
    assert m["source"] == str(db)
    assert m["size"] == backup.stat().st_size == db.stat().st_size
    assert m["sha256"] == sha256_file(backup)
    created = datetime.fromisoformat(m["created_at"].replace("Z", "+00:00"))
    assert started - timedelta(seconds=1) <= created <= finished
    assert m["created_at"].endswith("Z")
    assert m["sqlite_version"] == sqlite3.sqlite_version
    assert m["journal_mode"] == "wal"  # the first run created the database in WAL mode
    assert m["method"] == "copy"  # auto, on a quiet database
    assert m["check"] == f"{level}_check ok"
    assert m["deploy_id"] == "rel-42"
    assert m["head_before"] is None
    assert m["pending"] == []
    assert dump_of_file(backup) == dump(db)


def test_backup_text_output_and_deploy_id_from_the_environment(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, _ = app(tmp_path)
    result = invoke("backup", "--db", db, env={"LITEDEPLOY_DEPLOY_ID": "from-env"})
    assert result.exit_code == 0, result.stderr
    [backup] = backup_files(db.parent / "backups")
    assert result.stdout.splitlines()[0] == str(backup)
    assert "quick_check ok" in result.stdout
    assert manifest_of(backup)["deploy_id"] == "from-env"


def test_backup_of_a_missing_database_is_refused(tmp_path: Path, cli: Cli) -> None:
    db = tmp_path / "app.db"
    proc = cli("backup", "--db", db)
    assert_one_clear_error(proc, 4, str(db), "does not exist")
    assert not db.exists()
    assert not (tmp_path / "backups").exists()


@pytest.mark.parametrize("how", ["option", "env"])
def test_backup_dir(tmp_path: Path, invoke: Invoke, how: str) -> None:
    db, folder = app(tmp_path)
    elsewhere = tmp_path / "vol" / "snapshots"
    if how == "option":
        result = run(invoke, db, folder, "--backup-dir", elsewhere)
    else:
        result = run(invoke, db, folder, env={"LITEDEPLOY_BACKUP_DIR": str(elsewhere)})
    assert result.exit_code == 0, result.stderr
    assert len(backup_files(elsewhere)) == 1
    assert mode_of(elsewhere) == 0o700
    assert not (db.parent / "backups").exists()


# --- the backup inside `run`: when, and what its manifest says --------------------------------

POLICIES = [
    # policy, something pending, backup expected
    ("always", True, True),
    ("always", False, True),
    ("pending", True, True),
    ("pending", False, False),
    ("never", True, False),
    ("never", False, False),
]


@pytest.mark.parametrize(("policy", "pending", "expected"), POLICIES)
def test_backup_policy(
    tmp_path: Path, invoke: Invoke, policy: str, pending: bool, expected: bool
) -> None:
    db, folder = app(tmp_path, pending=pending)
    result = run(invoke, db, folder, "--backup", policy)
    assert result.exit_code == 0, result.stderr
    assert len(backup_files(db.parent / "backups")) == int(expected)
    if not expected:
        assert not (db.parent / "backups").exists()  # nothing created: a fast start stays fast
    assert ("tag" in columns(db)) == pending


@pytest.mark.parametrize(("policy", "pending", "expected"), [POLICIES[1], POLICIES[4]])
def test_backup_policy_from_the_environment(
    tmp_path: Path, invoke: Invoke, policy: str, pending: bool, expected: bool
) -> None:
    db, folder = app(tmp_path, pending=pending)
    result = run(invoke, db, folder, env={"LITEDEPLOY_BACKUP": policy})
    assert result.exit_code == 0, result.stderr
    assert len(backup_files(db.parent / "backups")) == int(expected)


def test_default_policy_backs_up_only_when_something_is_pending(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, folder = app(tmp_path, pending=False)
    assert run(invoke, db, folder).exit_code == 0
    assert backup_files(db.parent / "backups") == []
    write_plain(folder, [("0002_next", NEXT)])
    before = dump(db)
    result = run(invoke, db, folder, env={"LITEDEPLOY_DEPLOY_ID": "deploy-7"})
    assert result.exit_code == 0, result.stderr
    [backup] = backup_files(db.parent / "backups")
    m = manifest_of(backup)
    assert m["head_before"] == "0001_init"
    assert m["pending"] == ["0002_next"]
    assert m["deploy_id"] == "deploy-7"
    assert m["sha256"] == sha256_file(backup)
    assert dump_of_file(backup) == before  # taken before migrating
    assert "tag" in columns(db)
    assert str(backup) in result.stderr


def test_deploy_id_option_of_run(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = app(tmp_path)
    result = run(invoke, db, folder, "--deploy-id", "opt-1", env={"LITEDEPLOY_DEPLOY_ID": "env-1"})
    assert result.exit_code == 0, result.stderr
    [backup] = backup_files(db.parent / "backups")
    assert manifest_of(backup)["deploy_id"] == "opt-1"


@pytest.mark.parametrize("policy", ["always", "pending"])
def test_fresh_install_needs_no_backup(tmp_path: Path, invoke: Invoke, policy: str) -> None:
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    result = run(invoke, db, folder, "--backup", policy)
    assert result.exit_code == 0, result.stderr
    assert query(db, "SELECT count(*) FROM items") == [(3,)]
    assert not (db.parent / "backups").exists()


# --- listing and retention ---------------------------------------------------------------------


def test_backups_lists_them_as_a_table_and_as_json(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = app(tmp_path)
    assert invoke("backup", "--db", db, "--deploy-id", "manual").exit_code == 0
    assert run(invoke, db, folder, env={"LITEDEPLOY_DEPLOY_ID": "cutover-3"}).exit_code == 0
    first, second = backup_files(db.parent / "backups")

    result = invoke("backups", "--db", db)
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "BACKUP",
        "CREATED",
        "SIZE",
        "HEAD",
        "BEFORE",
        "PENDING",
        "DEPLOY",
        "ID",
    ]
    assert lines[1].split() == [
        first.name,
        manifest_of(first)["created_at"],
        str(first.stat().st_size),
        "-",
        "0",
        "manual",
    ]
    assert lines[2].split() == [
        second.name,
        manifest_of(second)["created_at"],
        str(second.stat().st_size),
        "0001_init",
        "1",
        "cutover-3",
    ]
    assert len(lines) == 3

    result = invoke("backups", "--db", db, "--json")
    assert result.exit_code == 0, result.stderr
    rows = json.loads(result.stdout)
    assert rows == [
        {"path": str(first), **manifest_of(first)},
        {"path": str(second), **manifest_of(second)},
    ]


def test_backups_with_none_yet(tmp_path: Path, invoke: Invoke) -> None:
    db, _ = app(tmp_path)
    result = invoke("backups", "--db", db)
    assert result.exit_code == 0
    assert result.stdout.strip() == f"no backups in {db.parent / 'backups'}"
    assert json.loads(invoke("backups", "--db", db, "--json").stdout) == []


def test_retention_keeps_the_newest(tmp_path: Path, invoke: Invoke) -> None:
    db, _ = app(tmp_path)
    made = []
    for i in range(4):
        result = invoke("backup", "--db", db, "--backup-keep", "2", "--deploy-id", f"d{i}")
        assert result.exit_code == 0, result.stderr
        made.append(Path(result.stdout.splitlines()[0]))
        assert backup_files(db.parent / "backups") == sorted(made[-2:])
    assert [manifest_of(b)["deploy_id"] for b in backup_files(db.parent / "backups")] == [
        "d2",
        "d3",
    ]
    assert sorted(p.name for p in (db.parent / "backups").iterdir()) == sorted(
        [b.name for b in made[-2:]] + [b.name + ".json" for b in made[-2:]]
    )


def test_retention_from_the_environment_in_run(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = app(tmp_path)
    for _ in range(2):
        assert invoke("backup", "--db", db).exit_code == 0
    result = run(
        invoke, db, folder, env={"LITEDEPLOY_BACKUP_KEEP": "1", "LITEDEPLOY_DEPLOY_ID": "newest"}
    )
    assert result.exit_code == 0, result.stderr
    [kept] = backup_files(db.parent / "backups")
    assert manifest_of(kept)["deploy_id"] == "newest"


# --- the WAL: the newest commits live only in app.db-wal until a checkpoint -------------------


@pytest.mark.parametrize("method", ["copy", "online", "auto"])
def test_backup_contains_commits_still_in_the_wal(tmp_path: Path, cli: Cli, method: str) -> None:
    db = tmp_path / "app.db"
    conn = sqlite3.connect(db, isolation_level=None)  # stays open: the WAL is not checkpointed
    try:
        assert conn.execute("PRAGMA journal_mode = wal").fetchone() == ("wal",)
        conn.execute("CREATE TABLE t (id integer PRIMARY KEY, v text)")
        conn.execute("INSERT INTO t (v) VALUES ('in the main file')")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        conn.execute("PRAGMA wal_autocheckpoint = 0")
        for i in range(50):
            conn.execute("INSERT INTO t (v) VALUES (?)", (f"only in the wal {i}",))
        expected = list(conn.iterdump())

        # The control: the main file alone lacks the newest commits; the WAL holds them.
        assert db.with_name("app.db-wal").stat().st_size > 0
        main_only = tmp_path / "main-only.db"
        shutil.copyfile(db, main_only)
        assert dump_of_file(main_only) == [*expected[:3], "COMMIT;"]

        proc = cli("backup", "--db", db, "--backup-method", method)
        assert proc.returncode == 0, proc.stderr
        [backup] = backup_files(tmp_path / "backups")
        assert dump_of_file(backup) == expected
        assert manifest_of(backup)["method"] == ("copy" if method == "auto" else method)
        conn.execute("INSERT INTO t (v) VALUES ('after the backup')")  # the app goes on
    finally:
        conn.close()
    assert query(db, "SELECT count(*) FROM t") == [(52,)]


# --- a writer commits continuously while backups are taken ------------------------------------

WRITER = r"""
import sqlite3, sys
from pathlib import Path

db, ready, stop = sys.argv[1:4]
conn = sqlite3.connect(db, isolation_level=None, timeout=120)  # a generous busy timeout
assert conn.execute("PRAGMA journal_mode = wal").fetchone()[0] == "wal"
conn.execute("PRAGMA synchronous = NORMAL")
commits = 0
while not Path(stop).exists():
    conn.execute("BEGIN IMMEDIATE")
    batch = 1 + commits % 7
    conn.executemany("INSERT INTO events (body) VALUES (randomblob(700))", [()] * batch)
    conn.execute("UPDATE counter SET n = n + ?", (batch,))
    conn.execute("COMMIT")
    commits += 1
    if commits == 50:
        Path(ready).touch()
conn.close()
print(commits)
"""


def wait_for(condition: Callable[[], bool], what: str, limit: float = 60) -> None:
    """Poll until the condition holds; the limit only turns a hang into a failure."""
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


def consistent_counts(path: Path) -> tuple[int, int]:
    """(rows, counter) of a backup file, after it passes integrity_check."""
    with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro&immutable=1", uri=True)) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        rows = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        counter = conn.execute("SELECT n FROM counter").fetchone()[0]
    return rows, counter


def events_db(db: Path) -> Path:
    """A WAL database of 3,000 events and a counter the writers keep equal to their count."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode = wal")
        conn.execute("CREATE TABLE events (id integer PRIMARY KEY, body blob NOT NULL)")
        conn.execute("CREATE TABLE counter (n integer NOT NULL)")
        conn.executemany("INSERT INTO events (body) VALUES (randomblob(700))", [()] * 3000)
        conn.execute("INSERT INTO counter VALUES (3000)")
        conn.commit()
    return db


@pytest.mark.parametrize("method", ["online", "auto"])
def test_backups_while_a_writer_commits(tmp_path: Path, cli: Cli, method: str) -> None:
    db = events_db(tmp_path / "app.db")
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(db), str(ready), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: ready.exists() or writer.poll() is not None, "the writer to start")
        made = []
        for _ in range(3 if writer.poll() is None else 0):
            proc = cli("backup", "--db", db, "--backup-method", method, "--check", "integrity")
            assert proc.returncode == 0, proc.stderr
            made.append(Path(proc.stdout.splitlines()[0]))
    finally:
        stop.touch()
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err  # it never failed, "database is locked" included
    assert len(made) == 3
    counts = [consistent_counts(b) for b in made]
    for rows, counter in counts:
        assert rows == counter  # each backup is one consistent snapshot
    assert [rows for rows, _ in counts] == sorted({rows for rows, _ in counts})  # it went on
    live_rows = query(db, "SELECT count(*) FROM events")[0][0]
    assert query(db, "SELECT n FROM counter") == [(live_rows,)]
    assert live_rows > counts[-1][0]
    assert int(out) > 50
    for backup in made:
        m = manifest_of(backup)
        assert m["sha256"] == sha256_file(backup)
        assert m["method"] in (["online"] if method == "online" else ["copy", "online"])


APP = r"""
import sqlite3, sys, threading, time
from pathlib import Path

# An app serving from the database: a long report holds a read transaction for 3 s (so a
# checkpoint cannot reset the WAL under it) while a writer commits every 10 ms with a busy
# timeout of 1 s, as better-sqlite3's default is a few seconds.
db, ready, stop = sys.argv[1:4]
failures, commits = [], 0

def report() -> None:
    conn = sqlite3.connect(db, isolation_level=None, timeout=5)
    while not Path(stop).exists():
        conn.execute("BEGIN")
        conn.execute("SELECT count(*) FROM events").fetchone()
        time.sleep(3)
        conn.execute("COMMIT")
    conn.close()

writer = sqlite3.connect(db, isolation_level=None, timeout=1)
writer.execute("INSERT INTO events (body) VALUES (randomblob(700))")  # frames in the WAL
writer.execute("UPDATE counter SET n = n + 1")
threading.Thread(target=report, daemon=True).start()
while not Path(stop).exists():
    try:
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("INSERT INTO events (body) VALUES (randomblob(700))")
        writer.execute("UPDATE counter SET n = n + 1")
        writer.execute("COMMIT")
        commits += 1
    except sqlite3.OperationalError as exc:
        failures.append(str(exc))
        if writer.in_transaction:
            writer.execute("ROLLBACK")
    if commits == 20:
        Path(ready).touch()
    time.sleep(0.01)
print(commits, len(failures), failures[:1])
"""


def test_a_backup_never_keeps_the_apps_writers_waiting_on_a_long_reader(
    tmp_path: Path, cli: Cli
) -> None:
    db = events_db(tmp_path / "app.db")
    ready, stop = tmp_path / "ready", tmp_path / "stop"
    app = subprocess.Popen(
        [sys.executable, "-c", APP, str(db), str(ready), str(stop)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_for(lambda: ready.exists() or app.poll() is not None, "the app to start")
        proc = cli("backup", "--db", db)
        time.sleep(1.5)  # the writer carries on after the backup too
    finally:
        stop.touch()
        out, err = app.communicate(timeout=120)
    assert app.returncode == 0, err
    assert proc.returncode == 0, proc.stderr
    commits, failed, first = out.split(" ", 2)
    # A TRUNCATE checkpoint waiting for the report would hold the writer off past its 1 s.
    assert (int(failed), first.strip()) == (0, "[]")
    assert int(commits) > 50
    backup = Path(proc.stdout.splitlines()[0])
    rows, counter = consistent_counts(backup)
    assert rows == counter


# --- faults: one clear line, a distinct exit code, the live database unchanged ----------------


def run_with(
    prefix: tuple[str, ...], tmp_path: Path, *args: str | Path
) -> subprocess.CompletedProcess[str]:
    """The CLI as a real process, behind a prefix such as `setpriv ... --`."""
    return subprocess.run(
        [*prefix, *entrypoint_argv(*args)],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def folder_is_a_file(tmp_path: Path) -> tuple[Path, tuple[str, ...], str]:
    target = tmp_path / "backups-file"
    target.write_text("not a folder")
    return target, (), "File exists"


def parent_not_writable(tmp_path: Path) -> tuple[Path, tuple[str, ...], str]:
    parent = tmp_path / "ro"
    parent.mkdir(mode=0o555)
    parent.chmod(0o555)
    return parent / "backups", without_caps("dac_override", "dac_read_search"), "Permission denied"


def folder_of_another_user(tmp_path: Path) -> tuple[Path, tuple[str, ...], str]:
    if os.geteuid() != 0:
        pytest.skip("needs root to give the folder to another user (CI runs as root)")
    folder = tmp_path / "theirs"
    folder.mkdir(mode=0o755)
    os.chown(folder, 65534, 65534)
    prefix = without_caps("dac_override", "dac_read_search", "fowner")
    return folder, prefix, "is not writable"  # and never chmodded to make it so


UNWRITABLE = {
    "a-regular-file": folder_is_a_file,
    "parent-not-writable": parent_not_writable,
    "owned-by-another-user": folder_of_another_user,
}


@pytest.mark.parametrize("command", ["run", "backup"])
@pytest.mark.parametrize("case", UNWRITABLE)
def test_backup_folder_not_writable(tmp_path: Path, case: str, command: str) -> None:
    db, folder = app(tmp_path)
    target, prefix, reason = UNWRITABLE[case](tmp_path)
    before = db_state(db)
    if command == "run":
        args: tuple[str | Path, ...] = ("run", "--db", db, "--migrations", folder)
    else:
        args = ("backup", "--db", db)
    proc = run_with(prefix, tmp_path, *args, "--backup-dir", target)
    assert_one_clear_error(proc, 8, str(target), reason)
    assert "Applying" not in proc.stderr
    assert_unchanged(db, before)
    assert "tag" not in columns(db)
    if target.is_dir():
        assert list(target.iterdir()) == []
        assert mode_of(target) == 0o755  # a folder it did not create keeps its mode


MIB_RE = re.compile(r"need ([\d.]+) MiB \(database ([\d.]+) MiB plus margin\), ([\d.]+) MiB free")


@pytest.mark.parametrize("command", ["run", "backup"])
def test_full_disk_stops_before_writing(tmp_path: Path, cli: Cli, command: str) -> None:
    db, folder = app(tmp_path, rows=2000)  # ~2 MB: larger than the 1 MiB filesystem
    assert db.stat().st_size > 1 << 20
    before = db_state(db)
    with tmpfs(tmp_path / "small", "size=1m,mode=0700") as small:
        if command == "run":
            proc = run(cli, db, folder, "--backup-dir", small)
        else:
            proc = cli("backup", "--db", db, "--backup-dir", small)
        line = assert_one_clear_error(proc, 9, str(small), "not enough free space")
        assert list(small.iterdir()) == []
    found = MIB_RE.search(line)
    assert found, line
    needed, size, free = map(float, found.groups())
    assert size == pytest.approx(db.stat().st_size / (1 << 20), abs=0.05)
    assert needed > size
    assert free <= 1.0
    assert "Applying" not in proc.stderr
    assert_unchanged(db, before)
    # The control: with room enough, the same backup is taken.
    with tmpfs(tmp_path / "big", "size=64m,mode=0700") as big:
        proc = cli("backup", "--db", db, "--backup-dir", big)
        assert proc.returncode == 0, proc.stderr
        assert len(backup_files(big)) == 1


def fill_inodes(mount: Path, leave: int) -> None:
    """Create empty files beside the backup folder until only `leave` inodes are free."""
    for i in range(1000):
        if os.statvfs(mount).f_ffree <= leave:
            return
        (mount / f"filler-{i}").touch()
    raise AssertionError("the filesystem does not run out of inodes")


@pytest.mark.parametrize("free_inodes", [0, 1])
@pytest.mark.parametrize("method", ["copy", "online"])
def test_write_failure_leaves_no_temporary_file(
    tmp_path: Path, cli: Cli, method: str, free_inodes: int
) -> None:
    """Out of inodes: the copy (or its manifest, or SQLite's journal of it) cannot be created."""
    db, folder = app(tmp_path)
    before = db_state(db)
    with tmpfs(tmp_path / "vol", "size=64m,nr_inodes=16") as vol:
        backups = vol / "backups"
        backups.mkdir(mode=0o700)
        fill_inodes(vol, free_inodes)
        proc = run(cli, db, folder, "--backup-dir", backups, "--backup-method", method)
        assert_one_clear_error(proc, 8, str(backups))
        assert "Applying" not in proc.stderr
        assert list(backups.iterdir()) == []
        assert_unchanged(db, before)
        # The control: with inodes to spare, the same backup is taken.
        for filler in vol.glob("filler-*"):
            filler.unlink()
        proc = cli("backup", "--db", db, "--backup-dir", backups, "--backup-method", method)
        assert proc.returncode == 0, proc.stderr
        assert len(backup_files(backups)) == 1


# --- a backup killed mid-way leaves a temporary file; the next start removes it ---------------


def leftover_names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("command", ["backup", "run"])
def test_leftover_temporary_files_are_removed(tmp_path: Path, invoke: Invoke, command: str) -> None:
    db, folder = app(tmp_path)
    backups = db.parent / "backups"
    backups.mkdir(mode=0o700)
    stale = backups / ".app.db.20250101T000000.000000Z.backup.99999.tmp"
    stale.write_bytes(b"SQLite format 3\x00" + b"\x00" * 4000)  # half a copy
    stale.with_name(stale.name + "-journal").write_bytes(b"\x00" * 512)
    before = dump(db)
    result = run(invoke, db, folder) if command == "run" else invoke("backup", "--db", db)
    assert result.exit_code == 0, result.stderr
    assert leftover_names(backups) == []
    assert "left by an interrupted backup" in result.stderr
    [backup] = backup_files(backups)
    assert dump_of_file(backup) == before


def test_leftover_is_removed_by_a_start_with_nothing_to_apply(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, folder = app(tmp_path, pending=False)
    backups = db.parent / "backups"
    backups.mkdir(mode=0o700)
    stale = backups / ".app.db.20250101T000000.000000Z.backup.99999.tmp"
    stale.write_bytes(b"\x00" * 4096)
    result = run(invoke, db, folder)
    assert result.exit_code == 0, result.stderr
    assert "nothing to apply" in result.stderr
    assert leftover_names(backups) == []
    assert backup_files(backups) == []


# The entrypoint itself, SIGKILLed at a fixed point: the first fsync of the backup it writes
# (the temporary file is then complete on disk but not yet renamed).
KILLED_AT_FSYNC = """
import os, signal, sys
os.fsync = lambda fd: os.kill(os.getpid(), signal.SIGKILL)
from entrypoint.cli import main
main()
"""


@pytest.mark.parametrize("method", ["copy", "online"])
def test_backup_killed_mid_way(tmp_path: Path, cli: Cli, method: str) -> None:
    db, folder = app(tmp_path, rows=3000)
    before = db_state(db)
    backups = db.parent / "backups"
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            KILLED_AT_FSYNC,
            "backup",
            "--db",
            str(db),
            "--backup-method",
            method,
        ],
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    [leftover] = [p for p in backups.iterdir() if p.name.endswith(".tmp")]
    assert leftover.stat().st_size > 0
    assert backup_files(backups) == []
    assert_unchanged(db, before)

    proc = run(cli, db, folder)
    assert proc.returncode == 0, proc.stderr
    assert f"removed {leftover}" in proc.stderr
    assert leftover_names(backups) == []
    [backup] = backup_files(backups)
    assert dump_of_file(backup) == before.dump
    assert "tag" in columns(db)


# --- retention never trusts a clock with the backups that matter ------------------------------

FAILS_HALF_WAY = "ALTER TABLE items ADD flag integer;\nINSERT INTO nowhere VALUES (1);"


def date_manifest(backup: Path, created_at: str) -> None:
    """Give a backup's manifest another time (as a copy from a host with a wrong clock has)."""
    m = manifest_of(backup)
    m["created_at"] = created_at
    backup.with_name(backup.name + ".json").write_text(json.dumps(m))


@pytest.mark.parametrize("created_at", ["2099-01-01T00:00:00.000Z", "not a time", ""])
def test_a_backup_dated_in_the_future_does_not_cost_the_run_its_own(
    tmp_path: Path, cli: Cli, created_at: str
) -> None:
    """Keep 1, a manifest dated 2099 (or garbage) in the folder: the run's own backup stays,
    so a migration failing after another committed still has a backup to restore."""
    db, folder = app(tmp_path, pending=False)
    proc = cli("backup", "--db", db)
    assert proc.returncode == 0, proc.stderr
    odd = Path(proc.stdout.splitlines()[0])
    date_manifest(odd, created_at)
    write_plain(folder, [("0002_next", NEXT), ("0003_broken", FAILS_HALF_WAY)])
    before = dump(db)

    proc = run(cli, db, folder, "--backup-keep", "1", "--no-rehearse", "--findings", "warn")
    line = assert_one_clear_error(proc, 6, "0003_broken", "the backup taken before it")
    assert "was restored" in line
    assert dump(db) == before  # not half-migrated
    assert "tag" not in columns(db)
    [taken] = [b for b in backup_files(db.parent / "backups") if b != odd]
    assert dump_of_file(taken) == before
    assert odd.exists()  # left alone, and named
    assert f"backup {odd.name} says it was made at {created_at!r}" in proc.stderr


def fake_backups(tmp_path: Path, stamps: list[str]) -> tuple[Path, list[Path]]:
    """Backups (real copies, with manifests) whose manifests carry the given times."""
    db, _ = app(tmp_path, pending=False)
    made = []
    for stamp in stamps:
        proc = run_with((), tmp_path, "backup", "--db", db, "--backup-keep", "99")
        assert proc.returncode == 0, proc.stderr
        made.append(Path(proc.stdout.splitlines()[0]))
        date_manifest(made[-1], stamp)
    return db.parent / "backups", made


def test_prune_ranks_only_credible_times_and_never_deletes_the_rest(tmp_path: Path) -> None:
    from entrypoint.safetynet.backup import prune

    now = datetime.now(UTC)
    stamps = [
        (now - timedelta(days=3)).isoformat().replace("+00:00", "Z"),  # 0: oldest
        "2099-01-01T00:00:00.000Z",  # 1: in the future
        (now - timedelta(days=1)).isoformat().replace("+00:00", "Z"),  # 2
        "garbage",  # 3: not a time
        (now - timedelta(days=2)).isoformat().replace("+00:00", "Z"),  # 4
        (now + timedelta(minutes=1)).isoformat().replace("+00:00", "Z"),  # 5: a skewed clock
    ]
    folder, made = fake_backups(tmp_path, stamps)
    removed = prune(folder, 2)
    assert sorted(removed) == sorted([made[0], made[4]])
    assert backup_files(folder) == sorted([made[1], made[2], made[3], made[5]])


def test_prune_keeps_the_newest_backup_that_matches_its_manifest(tmp_path: Path) -> None:
    from entrypoint.safetynet.backup import prune

    now = datetime.now(UTC)
    stamps = [(now - timedelta(hours=h)).isoformat().replace("+00:00", "Z") for h in (3, 2, 1)]
    folder, made = fake_backups(tmp_path, stamps)
    with made[2].open("r+b") as f:  # the newest, truncated: not the backup it says it is
        f.truncate(4096)
    assert prune(folder, 1) == [made[0]]
    assert backup_files(folder) == [made[1], made[2]]


def test_restore_latest_passes_over_a_backup_dated_in_the_future(tmp_path: Path, cli: Cli) -> None:
    db, _ = app(tmp_path, pending=False)
    proc = cli("backup", "--db", db, "--deploy-id", "future")
    assert proc.returncode == 0, proc.stderr
    date_manifest(Path(proc.stdout.splitlines()[0]), "2099-01-01T00:00:00.000Z")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO items (body) VALUES ('in the real latest')")
        conn.commit()
    proc = cli("backup", "--db", db, "--deploy-id", "real")
    assert proc.returncode == 0, proc.stderr
    real = Path(proc.stdout.splitlines()[0])
    proc = cli("restore", "--db", db, "--latest")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == f"restored {db} from {real}"
    assert "--latest passes over" in proc.stderr


# --- a backup killed at each of its points: the next start cleans up and goes on --------------

BACKUP_POINTS = ["backup.copy@1", "backup.manifest@1", "backup.published@1", "backup.pruned@1"]


@pytest.mark.parametrize("point", BACKUP_POINTS)
def test_a_run_killed_at_a_backup_point(tmp_path: Path, cli: Cli, point: str) -> None:
    db, folder = app(tmp_path, rows=300)
    for _ in range(2):  # older backups, for retention to prune
        assert cli("backup", "--db", db).returncode == 0
    before = db_state(db)
    backups = db.parent / "backups"

    proc = run(cli, db, folder, "--backup-keep", "1", env={"LITEDEPLOY_FAULT": point})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert_unchanged(db, before)  # the backup comes before anything is applied
    for backup in backup_files(backups):
        assert manifest_of(backup)["sha256"] == sha256_file(backup)  # never one without

    proc = run(cli, db, folder, "--backup-keep", "1")
    assert proc.returncode == 0, proc.stderr
    assert "tag" in columns(db)
    assert leftover_names(backups) == []
    names = sorted(p.name for p in backups.iterdir() if p != memo_path(db, backups))
    assert names == sorted(
        [b.name for b in backup_files(backups)] + [b.name + ".json" for b in backup_files(backups)]
    )  # every backup with its manifest, no manifest without its backup
    newest = max(backup_files(backups), key=lambda b: manifest_of(b)["created_at"])
    assert dump_of_file(newest) == before.dump


def test_the_points_a_backup_passes(tmp_path: Path, cli: Cli) -> None:
    db, folder = app(tmp_path)
    assert cli("backup", "--db", db).returncode == 0
    log = tmp_path / "points"
    proc = run(cli, db, folder, "--backup-keep", "1", env={"LITEDEPLOY_FAULT_LOG": str(log)})
    assert proc.returncode == 0, proc.stderr
    assert [p for p in log.read_text().split() if p.startswith("backup.")] == BACKUP_POINTS


def test_no_backup_of_a_database_half_way_through_a_restore(tmp_path: Path, cli: Cli) -> None:
    db, folder = app(tmp_path, pending=False)
    assert cli("backup", "--db", db).returncode == 0
    proc = cli("restore", "--db", db, "--latest", env={"LITEDEPLOY_FAULT": "restore.copied@1"})
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    proc = cli("backup", "--db", db)
    assert_one_clear_error(proc, 8, "a restore into", "was interrupted")
    assert run(cli, db, folder).returncode == 0  # which finishes the restore
    assert cli("backup", "--db", db).returncode == 0


def test_a_backup_killed_at_every_call(tmp_path: Path) -> None:
    """SIGKILL at each file-changing call of `entrypoint backup` in turn: never a backup
    without its manifest, and the next start removes whatever was left."""
    for call in range(1, 100):
        case = tmp_path / str(call)
        case.mkdir()
        db, folder = app(case)
        before = db_state(db)
        backups = db.parent / "backups"
        killed = killed_at_call(call, "backup", "--db", db, cwd=case)
        if killed.returncode == 0:
            break
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        assert_unchanged(db, before)
        for backup in backup_files(backups):
            assert backup.with_name(backup.name + ".json").exists(), f"call {call}: no manifest"
        proc = run_with((), case, "run", "--db", db, "--migrations", folder)
        assert proc.returncode == 0, proc.stderr
        names = {p.name for p in backups.iterdir()}
        assert {n for n in names if n.endswith(".backup.json")} == {
            b.name + ".json" for b in backup_files(backups)
        }, f"call {call}: a manifest without its backup was left"
        assert leftover_names(backups) == []
    else:
        raise AssertionError("the backup never got through")
    assert call > 5
