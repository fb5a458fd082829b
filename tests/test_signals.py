"""Stop signals before exec: the entrypoint stops at once, leaves nothing half-done, says so.

In a container the entrypoint is PID 1, which gets no default signal actions: a SIGTERM it
does not handle is ignored, and `docker stop` SIGKILLs it after its grace period. These
tests run it as PID 1 of a new PID namespace (`unshare --fork --pid --mount-proc`, as root)
and signal it the way Docker does, from outside.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable, Iterator
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

from entrypoint.engine.lock import migration_lock

INIT = (
    "CREATE TABLE users (id integer PRIMARY KEY, name text);\nINSERT INTO users VALUES (1, 'ann');"
)
ADD = [
    (
        "0002_add",
        "ALTER TABLE users ADD email text;\n"
        "UPDATE users SET email = name || '@example.com';\n"
        "CREATE INDEX users_email ON users (email);",
    ),
    ("0003_more", "CREATE TABLE posts (id integer PRIMARY KEY, body text);"),
]
COUNT_BELOW = "SELECT count(*) FROM users AS u WHERE u.id < users.id + 5"
PROMPT = 2.0  # seconds: `docker stop` gives 10 before SIGKILL


def pid_1_prefix() -> tuple[str, ...]:
    if os.geteuid() != 0:
        pytest.skip("a new PID namespace needs root (CI runs the suite as root)")
    unshare = shutil.which("unshare")
    if unshare is None:
        pytest.skip("unshare (util-linux) is missing")
    return (unshare, "--fork", "--pid", "--mount-proc")


def wait_for(condition: Callable[[], bool], what: str, limit: float = 30) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"gave up waiting for {what}"
        time.sleep(0.02)


class Started:
    """An entrypoint process (under unshare when `prefix` is given), its stderr in a file."""

    def __init__(
        self, tmp_path: Path, args: list[str | Path], env: dict[str, str], prefix: tuple[str, ...]
    ) -> None:
        self.log = tmp_path / "stderr.txt"
        with self.log.open("w") as stderr:
            self.proc = subprocess.Popen(
                [*prefix, *entrypoint_argv(*args)],
                cwd=tmp_path,
                env=cli_env(env),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=stderr,
            )
        self.pid = self._entrypoint_pid() if prefix else self.proc.pid

    def _entrypoint_pid(self) -> int:
        """The PID-1 process, as the outer namespace numbers it: unshare's only child."""
        children = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children")
        wait_for(lambda: children.read_text().strip() != "", "unshare to fork")
        return int(children.read_text().split()[0])

    def stderr(self) -> str:
        return self.log.read_text()

    def signal_and_wait(self, signum: int) -> tuple[int, float]:
        started = time.monotonic()
        os.kill(self.pid, signum)
        try:
            code = self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            code = -1
        return code, time.monotonic() - started

    def completed(self, code: int) -> subprocess.CompletedProcess[str]:
        return subprocess.CompletedProcess(self.proc.args, code, "", self.stderr())

    def kill(self) -> None:
        for pid in {self.pid, self.proc.pid}:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        self.proc.wait(timeout=15)


@contextlib.contextmanager
def started(
    tmp_path: Path, *args: str | Path, env: dict[str, str] | None = None, pid_1: bool = True
) -> Iterator[Started]:
    run = Started(tmp_path, list(args), env or {}, pid_1_prefix() if pid_1 else ())
    try:
        yield run
    finally:
        if run.proc.poll() is None:
            run.kill()


def database(tmp_path: Path, pending: list[tuple[str, str]]) -> tuple[Path, Path]:
    """data/app.db with 0001_init applied (WAL, as a first run makes it); `pending` to come."""
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    applied(db, folder)
    write_plain(folder, pending)
    return db, folder


def history(db: Path) -> list[str]:
    return [r[0] for r in query(db, "SELECT name FROM __litedeploy_migrations ORDER BY rowid")]


# --- waiting for the lock ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("signum", "code", "pid_1"),
    [
        (signal.SIGTERM, 143, True),  # docker stop
        (signal.SIGINT, 130, True),  # ctrl-c on `docker run -it`
        (signal.SIGHUP, 129, True),
        (signal.SIGTERM, 143, False),  # outside a container, too: not a bare kill
        (signal.SIGINT, 130, False),  # not a KeyboardInterrupt traceback
    ],
)
def test_a_stop_signal_during_the_lock_wait_exits_at_once(
    tmp_path: Path, signum: int, code: int, pid_1: bool
) -> None:
    db, folder = database(tmp_path, ADD)
    before = db_state(db)
    with migration_lock(db, timeout=5):
        args = ("run", "--db", db, "--migrations", folder, "--lock-timeout", "60")
        with started(tmp_path, *args, pid_1=pid_1) as run:
            wait_for(lambda: "waiting for the migration lock" in run.stderr(), "the lock wait")
            got, took = run.signal_and_wait(signum)
    assert_one_clear_error(run.completed(got), code, f"stopped by {signal.Signals(signum).name}")
    assert took < PROMPT, f"took {took:.1f}s to stop"
    assert "start again to carry on" in run.stderr()
    assert db_state(db) == before


# --- in the middle of migrating ---------------------------------------------------------------

# Where to hang, as LITEDEPLOY_FAULT counts it: the rehearsal applies the two pending
# migrations on its copy first (apply.statement 1-4, apply.commit 1-2), then the live run.
MIDDLE = {
    "rehearsal": "apply.statement@2",
    "after-backup": "migrate.backed_up",
    "live-statement": "apply.statement@6",  # the live 0002_add's second statement
    "live-commit": "apply.commit@3",  # the live 0002_add is written, not yet committed
}


@pytest.mark.parametrize("where", MIDDLE)
def test_sigterm_in_the_middle_of_migrating_leaves_the_database_as_it_was(
    tmp_path: Path, where: str
) -> None:
    db, folder = database(tmp_path, ADD)
    before = db_state(db)
    reached = tmp_path / "faults.log"
    rehearsals = tmp_path / "rehearsals"
    rehearsals.mkdir()
    env = {"LITEDEPLOY_FAULT": f"{MIDDLE[where]}:hang", "LITEDEPLOY_FAULT_LOG": str(reached)}
    args = ("run", "--db", db, "--migrations", folder, "--rehearsal-dir", rehearsals)
    point = MIDDLE[where] if "@" in MIDDLE[where] else f"{MIDDLE[where]}@1"
    with started(tmp_path, *args, env=env) as run:
        wait_for(lambda: reached.exists() and point in reached.read_text().split(), point)
        time.sleep(0.2)  # into the hang
        got, took = run.signal_and_wait(signal.SIGTERM)
    assert_one_clear_error(run.completed(got), 143, "stopped by SIGTERM")
    assert took < PROMPT, f"took {took:.1f}s to stop"
    if where.startswith("live"):
        assert "migrate.backed_up@1" in reached.read_text()  # it was the live migration
    after = db_state(db)
    assert after.dump == before.dump
    assert after.data == before.data
    assert history(db) == ["0001_init"]
    assert list(rehearsals.iterdir()) == []  # the rehearsal's copies are gone too


def test_sigterm_between_two_migrations_keeps_the_one_committed_with_its_row(
    tmp_path: Path,
) -> None:
    db, folder = database(tmp_path, ADD)
    reached = tmp_path / "faults.log"
    env = {"LITEDEPLOY_FAULT": "apply.committed@3:hang", "LITEDEPLOY_FAULT_LOG": str(reached)}
    with started(tmp_path, "run", "--db", db, "--migrations", folder, env=env) as run:
        wait_for(lambda: reached.exists() and "apply.committed@3" in reached.read_text(), "commit")
        got, took = run.signal_and_wait(signal.SIGTERM)
    assert_one_clear_error(run.completed(got), 143, "stopped by SIGTERM")
    assert took < PROMPT
    assert history(db) == ["0001_init", "0002_add"]  # each migration whole, with its row
    assert query(db, "SELECT email FROM users") == [("ann@example.com",)]
    assert query(db, "SELECT name FROM sqlite_master WHERE name = 'posts'") == []
    again = subprocess.run(
        entrypoint_argv("run", "--db", db, "--migrations", folder),
        cwd=tmp_path,
        env=cli_env(),
        capture_output=True,
        timeout=60,
    )
    assert again.returncode == 0  # the next start carries on
    assert history(db) == ["0001_init", "0002_add", "0003_more"]


def test_a_stop_aborts_a_long_statement_instead_of_waiting_for_it(tmp_path: Path) -> None:
    """SQLite runs a statement in C, where Python cannot raise: the progress handler lets in."""
    db, folder = database(tmp_path, [])
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute(
            "WITH RECURSIVE c(x) AS (SELECT 2 UNION ALL SELECT x + 1 FROM c WHERE x < 400000) "
            "INSERT INTO users (id, name) SELECT x, 'u' || x FROM c"
        )
        conn.commit()
    # Seconds of work on the live rows (the findings' replay only sees the schema).
    write_plain(folder, [("0002_slow", f"UPDATE users SET name = ({COUNT_BELOW});")])
    before = db_state(db)
    args = ("run", "--db", db, "--migrations", folder, "--no-rehearse", "--findings", "warn")
    with started(tmp_path, *args) as run:
        wait_for(lambda: "Applying 0002_slow" in run.stderr(), "the statement to start")
        time.sleep(0.5)
        got, took = run.signal_and_wait(signal.SIGTERM)
    assert_one_clear_error(run.completed(got), 143, "stopped by SIGTERM")
    assert took < PROMPT, f"took {took:.1f}s to stop"
    assert db_state(db) == before


# --- exec ---------------------------------------------------------------------------------------


def test_the_app_starts_with_default_signal_dispositions(tmp_path: Path) -> None:
    """Python ignores SIGPIPE and SIGXFSZ, and an ignored signal stays ignored across exec."""
    db, folder = database(tmp_path, [])
    cat = shutil.which("cat")
    assert cat is not None
    argv = entrypoint_argv(
        "run", "--db", db, "--migrations", folder, "--", cat, "/proc/self/status"
    )
    proc = subprocess.run(
        argv, cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    masks = dict(line.split(":\t") for line in proc.stdout.splitlines() if line.startswith("Sig"))
    # What any child of this test inherits (subprocess restores SIGPIPE and SIGXFSZ): all
    # zeros normally; a test run started in the background by a non-interactive shell has
    # SIGINT and SIGQUIT ignored from its parent, and those rightly stay ignored.
    inherited = subprocess.run([cat, "/proc/self/status"], capture_output=True, text=True)
    baseline = dict(line.split(":\t") for line in inherited.stdout.splitlines() if "Sig" in line)
    assert masks["SigIgn"] == baseline["SigIgn"]  # SIGPIPE and SIGXFSZ not ignored by the app
    assert masks["SigBlk"] == "0000000000000000"
    assert masks["SigCgt"] == "0000000000000000"  # cat catches nothing itself
