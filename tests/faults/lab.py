"""The fault lab: real `entrypoint` processes, killed or failed at named points, then restarted.

A scenario is a database with rows and a migrations folder. The lab first runs it once with
`LITEDEPLOY_FAULT_LOG` to list every injection point the run passes (`faults.point`), then,
for each point, starts from a fresh copy of the same database, injects the fault there
(`LITEDEPLOY_FAULT=NAME@N[:ACTION]`), and checks what the fault left:

- after the faulty run: the database is a *consistent prefix* of the migration (byte for
  byte in content the state after 0, 1, ... N of its migrations, never in between), or the
  run refused with a documented exit code and one error line, without a traceback;
- after starting again with no fault: exit 0, and the content equals a clean run's, row for
  row (so nothing was lost and nothing half-applied), history complete, integrity ok.

Every case returns a `Result` (what was injected, exit codes, rows before and after, what
held); tests assert on them and bench/faults.py writes docs/reliability.md from them.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
sys.path[:0] = [str(ROOT / "tests"), str(ROOT)]

from harness import CLI_ENV_VARS, write_journal  # noqa: E402

TIMEOUT_S = 120
# the faults injected at every point: kill -9, an I/O error, SIGTERM and SIGINT while the
# run waits there, and SIGTERM with the entrypoint as PID 1 (as in a container)
ACTIONS = ("kill", "sqlerror", "term", "int", "term-pid1")


def case_name(scenario: str, action: str, point: str) -> str:
    """The one name of a case, as results and docs/reliability.md carry it."""
    if action.endswith("-pid1"):
        action = f"{action.removesuffix('-pid1')} as PID 1"
    return f"{scenario}: {action} at {point}"


DOCUMENTED_EXITS = {0, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 126, 127, 130, 143}


# --------------------------------------------------------------------------------------
# Scenarios


INIT = """CREATE TABLE users (id integer PRIMARY KEY, email text NOT NULL, name text);
--> statement-breakpoint
CREATE TABLE posts (id integer PRIMARY KEY, user_id integer NOT NULL REFERENCES users(id)
  ON DELETE CASCADE, title text NOT NULL, body text);
--> statement-breakpoint
CREATE INDEX posts_user ON posts (user_id);"""

STEPS = [
    ("0001_add_role", "ALTER TABLE `users` ADD `role` text DEFAULT 'member' NOT NULL;"),
    (
        "0002_rebuild_users",
        "PRAGMA foreign_keys=OFF;\n--> statement-breakpoint\n"
        "CREATE TABLE `__new_users` (`id` integer PRIMARY KEY, `email` text NOT NULL UNIQUE, "
        "`name` text, `role` text DEFAULT 'member' NOT NULL);\n--> statement-breakpoint\n"
        'INSERT INTO `__new_users`("id", "email", "name", "role") '
        'SELECT "id", "email", "name", "role" FROM `users`;\n--> statement-breakpoint\n'
        "DROP TABLE `users`;\n--> statement-breakpoint\n"
        "ALTER TABLE `__new_users` RENAME TO `users`;\n--> statement-breakpoint\n"
        "PRAGMA foreign_keys=ON;",
    ),
    (
        "0003_titles",
        "-- litedeploy: allow lost-values posts.title\n"
        "UPDATE posts SET title = upper(title) WHERE id % 2 = 0;",
    ),
    (
        "0004_tags",
        "CREATE TABLE tags (post_id integer NOT NULL REFERENCES posts(id) ON DELETE CASCADE, "
        "tag text NOT NULL);\n--> statement-breakpoint\n"
        "INSERT INTO tags SELECT id, 'imported' FROM posts WHERE id % 5 = 0;\n"
        "--> statement-breakpoint\nCREATE INDEX tags_post ON tags (post_id);",
    ),
]
FAILING = ("0005_broken", "CREATE TABLE later (x integer);\nINSERT INTO missing VALUES (1);")


@dataclass(frozen=True)
class Scenario:
    """A database at 0000_init with rows, and the migrations a start applies."""

    name: str
    steps: list[tuple[str, str]]
    extra: tuple[str, ...] = ()  # options for `entrypoint run`
    users: int = 200
    posts: int = 600
    body: int = 50  # posts' bodies are up to this long


SCENARIOS = {
    "migrate": Scenario("migrate", STEPS),
    "one-transaction": Scenario("one-transaction", STEPS, ("--transaction", "all")),
    # the last migration fails for real after three committed: the backup is restored
    "restore-after-failure": Scenario(
        "restore-after-failure", [*STEPS[:3], FAILING], ("--no-rehearse", "--findings", "warn")
    ),
}
# a few MB, so that a disk sized to it has no room for another copy
BIG_RESTORE = Scenario(
    "restore-after-failure-big",
    [*STEPS[:3], FAILING],
    ("--no-rehearse", "--findings", "warn"),
    posts=8000,
    body=1000,
)


def seed(db: Path, scenario: Scenario) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode = WAL")
        conn.executemany(
            "INSERT INTO users VALUES (?, ?, ?)",
            [(i, f"user{i}@example.com", f"User {i}") for i in range(1, scenario.users + 1)],
        )
        conn.executemany(
            "INSERT INTO posts VALUES (?, ?, ?, ?)",
            [
                (i, 1 + i % scenario.users, f"post {i}", "x" * (i % scenario.body))
                for i in range(1, scenario.posts + 1)
            ],
        )
        conn.commit()


# --------------------------------------------------------------------------------------
# Running the entrypoint


def env(**extra: str) -> dict[str, str]:
    out = {k: v for k, v in os.environ.items() if k not in CLI_ENV_VARS}
    out["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), out.get("PYTHONPATH")]))
    out.update(extra)
    return out


HUNG = 999  # the exit code a run gets in a Result when it did not end within TIMEOUT_S


def entrypoint(
    *args: str | Path, cwd: Path, extra_env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m entrypoint ARGS`; a run that does not end in TIMEOUT_S is killed and
    reported with the exit code HUNG."""
    argv = [sys.executable, "-m", "entrypoint", *map(str, args)]
    try:
        return subprocess.run(
            argv,
            cwd=cwd,
            env=env(**(extra_env or {})),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return subprocess.CompletedProcess(argv, HUNG, "", err + "\n(hung: killed by the lab)")


@dataclass
class Workspace:
    """A scenario laid out in a folder: data/app.db, migrations/, the clean references."""

    root: Path
    scenario: Scenario

    @property
    def db(self) -> Path:
        return self.root / "data" / "app.db"

    @property
    def migrations(self) -> Path:
        return self.root / "migrations"

    def run(self, *args: str, fault: str | None = None, log: Path | None = None) -> Any:
        extra = {}
        if fault:
            extra["LITEDEPLOY_FAULT"] = fault
        if log:
            extra["LITEDEPLOY_FAULT_LOG"] = str(log)
        argv = ["run", "--db", self.db, "--migrations", self.migrations, *self.scenario.extra]
        return entrypoint(*argv, *args, "--", "true", cwd=self.root, extra_env=extra)


def lay_out(root: Path, scenario: Scenario) -> Workspace:
    """A fresh workspace: 0000_init applied by the entrypoint, rows in, the rest pending."""
    shutil.rmtree(root, ignore_errors=True)
    (root / "data").mkdir(parents=True)
    ws = Workspace(root, scenario)
    write_journal(ws.migrations, [("0000_init", INIT)])
    proc = entrypoint("run", "--db", ws.db, "--migrations", ws.migrations, cwd=root)
    assert proc.returncode == 0, proc.stderr
    seed(ws.db, scenario)
    write_journal(ws.migrations, [("0000_init", INIT), *scenario.steps])
    return ws


def clone(ws: Workspace, root: Path) -> Workspace:
    """A copy of a laid-out workspace (database files and migrations)."""
    shutil.rmtree(root, ignore_errors=True)
    shutil.copytree(ws.root, root, symlinks=True)
    return Workspace(root, ws.scenario)


# --------------------------------------------------------------------------------------
# Reading a database


def content(db: Path) -> tuple[tuple[Any, ...], ...]:
    """Schema and every row of every table, ordered: two equal contents are the same data."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        out: list[tuple[Any, ...]] = []
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "ORDER BY type, name"
        ):
            out.append((kind, name, " ".join(str(sql).split())))
        for t in tables:
            cols = "*" if t != "__drizzle_migrations" else "hash, created_at"
            rows = conn.execute(f'SELECT {cols} FROM "{t}" ORDER BY 1, 2').fetchall()
            out.append((t, tuple(rows)))
        return tuple(out)


def rows(db: Path) -> int:
    """Rows in the app's tables (not the history)."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return sum(
            int(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0])
            for (t,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name NOT LIKE '\\_\\_%' ESCAPE '\\'"
            )
        )


def integrity(db: Path) -> str:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return str(conn.execute("PRAGMA integrity_check").fetchone()[0])


@dataclass
class References:
    """The content after 0, 1, ... N of the scenario's migrations, from clean runs."""

    prefixes: list[tuple[tuple[Any, ...], ...]]
    final_rows: int
    start_rows: int


def references(ws: Workspace, scratch: Path) -> References:
    steps = ws.scenario.steps
    prefixes = []
    good = [s for s in steps if s != FAILING]
    for n in range(len(good) + 1):
        ref = clone(ws, scratch / f"ref{n}")
        write_journal(ref.migrations, [("0000_init", INIT), *good[:n]])
        proc = ref.run("--no-rehearse", "--findings", "warn", "--env", "staging")
        assert proc.returncode == 0, proc.stderr
        prefixes.append(content(ref.db))
    return References(prefixes, rows(scratch / f"ref{len(good)}" / "data" / "app.db"), rows(ws.db))


# --------------------------------------------------------------------------------------
# One case


@dataclass
class Result:
    """What one injected fault did, and what held."""

    case: str
    scenario: str
    injected: str
    first_exit: int
    first_error: str
    restart_exit: int | None
    rows_before: int
    rows_after: int
    prefix: int | None  # the faulty run left the content after this many migrations
    expected_rows: int
    held: bool
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def rows_lost(self) -> int:
        return max(0, self.expected_rows - self.rows_after)

    @property
    def hung(self) -> bool:
        return HUNG in (self.first_exit, self.restart_exit)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "rows_lost": self.rows_lost, "hung": self.hung}


def error_line(stderr: str) -> str:
    for line in stderr.splitlines():
        if line.startswith("entrypoint: error:"):
            return line[len("entrypoint: error: ") :][:200]
    return ""


def points(ws: Workspace, scratch: Path) -> list[str]:
    """Every injection point a clean run of the scenario passes, as NAME@N, in order."""
    probe = clone(ws, scratch / "probe")
    log = scratch / "points.log"
    log.unlink(missing_ok=True)
    proc = probe.run(log=log)
    expected = 6 if FAILING in ws.scenario.steps else 0
    assert proc.returncode == expected, proc.stderr
    return [line.strip() for line in log.read_text().splitlines() if line.strip()]


def inject(ws: Workspace, refs: References, point: str, action: str, scratch: Path) -> Result:
    """Run the scenario with `action` at `point`, then start again; what held."""
    started = time.monotonic()
    case = clone(ws, scratch / "case")
    fault = point if action == "kill" else f"{point}:{action}"
    first = case.run(fault=fault)
    problems: list[str] = []
    killed = first.returncode == -signal.SIGKILL
    if first.returncode == HUNG:
        problems.append("the run hung")
    elif not killed and first.returncode not in DOCUMENTED_EXITS:
        problems.append(f"exit {first.returncode} is not a documented code")
    if "Traceback" in first.stderr:
        problems.append("a traceback")
    if not killed and first.returncode and not error_line(first.stderr):
        problems.append("no error line")
    if integrity(case.db) != "ok":
        problems.append("the database fails integrity_check after the fault")
    now = content(case.db)
    prefix = next((i for i, ref in enumerate(refs.prefixes) if ref == now), None)
    if prefix is None:
        problems.append("the fault left content that is no migration's end: half-applied")
    again = case.run()
    failing = FAILING in ws.scenario.steps
    if failing:
        # the scenario ends in a failing migration: the restart must fail the same way,
        # leaving the content after the migrations that come before it
        if again.returncode != 6:
            problems.append(f"restart exited {again.returncode}, expected 6")
        if content(case.db) not in refs.prefixes:
            problems.append("after the restart the content is no migration's end")
        expected_rows = refs.start_rows
    else:
        if again.returncode != 0:
            problems.append(f"restart exited {again.returncode}: {error_line(again.stderr)}")
        if content(case.db) != refs.prefixes[-1]:
            problems.append("after the restart the content differs from a clean run's")
        expected_rows = refs.final_rows
    if integrity(case.db) != "ok":
        problems.append("the database fails integrity_check after the restart")
    after = rows(case.db)
    if after != expected_rows:
        problems.append(f"{after} rows after, {expected_rows} expected")
    return Result(
        case=case_name(ws.scenario.name, action, point),
        scenario=ws.scenario.name,
        injected=fault,
        first_exit=first.returncode,
        first_error=error_line(first.stderr) or ("killed (SIGKILL)" if killed else ""),
        restart_exit=again.returncode,
        rows_before=refs.start_rows,
        rows_after=after,
        prefix=prefix,
        expected_rows=expected_rows,
        held=not problems,
        problems=problems,
        seconds=round(time.monotonic() - started, 2),
    )


def sweep(
    scenario: Scenario, scratch: Path, actions: tuple[str, ...] = ("kill",), every: int = 1
) -> Iterator[Result]:
    """Inject each action at every `every`-th point the scenario passes (1: all of them)."""
    ws = lay_out(scratch / "base", scenario)
    refs = references(ws, scratch)
    for i, point in enumerate(points(ws, scratch)):
        if i % every:
            continue
        for action in actions:
            if action in SIGNALS:
                yield signal_at(ws, refs, point, action, scratch)
            elif action.endswith("-pid1") and action[: -len("-pid1")] in SIGNALS:
                yield signal_at(ws, refs, point, action[: -len("-pid1")], scratch, pid1=True)
            else:
                yield inject(ws, refs, point, action, scratch)


def action_for(point: str) -> str:
    """The I/O error a point meets in life: SQLite's for SQL work, the OS's for file copies."""
    sqlite_work = ("apply.", "migrate.", "rehearsal.")
    return "sqlerror" if point.startswith(sqlite_work) else "error"


Reporter = Callable[[Result], None]


# --------------------------------------------------------------------------------------
# Concurrent starts, a writer committing throughout, full disks


def concurrent_starts(scratch: Path, n: int, *, new: bool) -> Result:
    """`n` starts at the same moment on one database (or none yet): one migrates, all end 0."""
    started = time.monotonic()
    scenario = SCENARIOS["migrate"]
    ws = lay_out(scratch / "base", scenario)
    refs = references(ws, scratch)
    case = clone(ws, scratch / "case")
    if new:  # no database yet: the migrations create it (0000_init included)
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{case.db}{suffix}").unlink(missing_ok=True)
    argv = ["run", "--db", case.db, "--migrations", case.migrations, "--", "true"]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "entrypoint", *map(str, argv)],
            cwd=case.root,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    outs = [p.communicate(timeout=TIMEOUT_S)[1] for p in procs]
    codes = [p.returncode for p in procs]
    problems = [
        f"a start exited {c}: {error_line(o)}" for c, o in zip(codes, outs, strict=True) if c
    ]
    problems += ["a traceback"] if any("Traceback" in o for o in outs) else []
    migrated = sum(1 for o in outs if "Applying 0004_tags" in o)
    if migrated != 1:
        problems.append(f"{migrated} starts applied the migrations, expected exactly 1")
    expected_rows = refs.final_rows if not new else 0
    final = content(case.db)
    if not new and final != refs.prefixes[-1]:
        problems.append("the content differs from a clean run's")
    if integrity(case.db) != "ok":
        problems.append("the database fails integrity_check")
    after = rows(case.db)
    if after != expected_rows:
        problems.append(f"{after} rows, {expected_rows} expected")
    return Result(
        case=f"{n} concurrent starts on {'a new' if new else 'an existing'} database",
        scenario="concurrency",
        injected=f"{n} processes at once",
        first_exit=max(codes),
        first_error=next((error_line(o) for o in outs if error_line(o)), ""),
        restart_exit=None,
        rows_before=0 if new else refs.start_rows,
        rows_after=after,
        prefix=None,
        expected_rows=expected_rows,
        held=not problems,
        problems=problems,
        seconds=round(time.monotonic() - started, 2),
    )


WRITER = """
import sqlite3, sys, time
db, done, stop = sys.argv[1], sys.argv[2], sys.argv[3]
conn = sqlite3.connect(db, timeout=60, isolation_level=None)
conn.execute("CREATE TABLE IF NOT EXISTS events (id integer PRIMARY KEY, at real)")
with open(done, "a") as out:
    i = 0
    while True:
        i += 1
        conn.execute("INSERT INTO events VALUES (?, ?)", (i, time.time()))
        out.write(f"{i}\\n"); out.flush()
        if i > 20:
            import os
            if os.path.exists(stop):
                break
        time.sleep(0.002)
"""


def writer_throughout(scratch: Path) -> Result:
    """A process commits a row every few ms while a start backs up, rehearses and migrates."""
    started = time.monotonic()
    ws = lay_out(scratch / "base", SCENARIOS["migrate"])
    refs = references(ws, scratch)
    case = clone(ws, scratch / "case")
    done, stop = scratch / "committed.txt", scratch / "stop"
    stop.unlink(missing_ok=True)
    done.unlink(missing_ok=True)
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(case.db), str(done), str(stop)])
    time.sleep(0.3)
    proc = case.run()
    stop.touch()
    writer.wait(timeout=60)
    problems = []
    if proc.returncode != 0:
        problems.append(f"the start exited {proc.returncode}: {error_line(proc.stderr)}")
    committed = {int(x) for x in done.read_text().split()}
    with contextlib.closing(sqlite3.connect(f"file:{case.db}?mode=ro", uri=True)) as conn:
        present = {int(r[0]) for r in conn.execute("SELECT id FROM events")}
    missing = committed - present
    if missing:
        problems.append(f"{len(missing)} row(s) the writer committed are missing")
    without_events = tuple(
        x for x in content(case.db) if x[:1] != ("events",) and "events" not in x
    )
    reference = tuple(x for x in refs.prefixes[-1] if x[:1] != ("events",) and "events" not in x)
    if without_events != reference:
        problems.append("the migrated content differs from a clean run's")
    if integrity(case.db) != "ok":
        problems.append("the database fails integrity_check")
    return Result(
        case="a writer commits throughout a start (backup, rehearsal, migrations)",
        scenario="writer",
        injected=f"{len(committed)} commits by another process during the run",
        first_exit=proc.returncode,
        first_error=error_line(proc.stderr),
        restart_exit=None,
        rows_before=refs.start_rows,
        rows_after=rows(case.db),
        prefix=None,
        expected_rows=refs.final_rows + len(committed),
        held=not problems,
        problems=problems,
        seconds=round(time.monotonic() - started, 2),
    )


@contextlib.contextmanager
def tmpfs(where: Path, size: int) -> Iterator[Path]:
    """A tmpfs of `size` bytes mounted at `where` for the block (root only)."""
    where.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where)], check=True
    )
    try:
        yield where
    finally:
        if subprocess.run(["umount", str(where)], check=False).returncode:
            subprocess.run(["umount", "-l", str(where)], check=True)


def full_disk(scratch: Path, place: str) -> Result:
    """A start whose `place` (database, backups, rehearsal, restore) has no room left."""
    started = time.monotonic()
    scenario = BIG_RESTORE if place == "restore" else SCENARIOS["migrate"]
    ws = lay_out(scratch / "base", scenario)
    refs = references(ws, scratch)
    size = ws.db.stat().st_size + sum(
        Path(f"{ws.db}{s}").stat().st_size for s in ("-wal",) if Path(f"{ws.db}{s}").exists()
    )
    mount = scratch / "mnt"
    extra: list[str] = []
    # the restore case fills up during the migrations (6) or during the restore's copy (12):
    # either way the database must end at a migration's end, with one clear line
    expected = {"database": {9}, "backups": {9}, "rehearsal": {8}, "restore": {6, 12}}[place]
    with tmpfs(
        mount, max(size * 13 // 10, 1 << 20) if place in ("database", "restore") else 64 << 10
    ):
        case = clone(ws, scratch / "case")
        if place in ("database", "restore"):  # the data folder itself on the small disk
            shutil.copytree(case.root / "data", mount / "data")
            shutil.rmtree(case.root / "data")
            (case.root / "data").symlink_to(mount / "data")
            if place == "restore":  # the backup elsewhere: the restore's copy is what fails
                extra = ["--backup-dir", str(scratch / "backups")]
        elif place == "backups":
            extra = ["--backup-dir", str(mount / "backups")]
        else:
            extra = ["--rehearsal-dir", str(mount)]
        before = content(case.db)
        proc = case.run(*extra)
        problems = []
        if proc.returncode not in expected:
            problems.append(
                f"exit {proc.returncode}, expected {expected}: {error_line(proc.stderr)}"
            )
        if "Traceback" in proc.stderr:
            problems.append("a traceback")
        if not error_line(proc.stderr):
            problems.append("no error line")
        now = content(case.db)
        if place == "restore":
            if now not in refs.prefixes:
                problems.append("the database is no migration's end: half-applied")
        elif now != before:
            problems.append("the database changed although the run was refused")
        if integrity(case.db) != "ok":
            problems.append("the database fails integrity_check")
        after = rows(case.db)
    return Result(
        case=f"no room left for the {place}",
        scenario="full-disk",
        injected=f"a full tmpfs under the {place}",
        first_exit=proc.returncode,
        first_error=error_line(proc.stderr),
        restart_exit=None,
        rows_before=refs.start_rows,
        rows_after=after,
        prefix=None,
        expected_rows=refs.start_rows,
        held=not problems,
        problems=problems,
        seconds=round(time.monotonic() - started, 2),
    )


def random_kills(scratch: Path, iterations: int, seed_value: int = 1) -> list[Result]:
    """kill -9 at random moments of a run (not only at the named points), then restart."""
    import random

    rng = random.Random(seed_value)
    scenario = Scenario("random-kills", STEPS, posts=20000, body=400)
    ws = lay_out(scratch / "base", scenario)
    refs = references(ws, scratch)
    probe = clone(ws, scratch / "probe")
    t0 = time.monotonic()
    proc = probe.run()
    assert proc.returncode == 0, proc.stderr
    span = time.monotonic() - t0
    out = []
    for i in range(iterations):
        started = time.monotonic()
        case = clone(ws, scratch / "case")
        delay = rng.uniform(0.05, span)
        argv = ["run", "--db", case.db, "--migrations", case.migrations, "--", "true"]
        running = subprocess.Popen(
            [sys.executable, "-m", "entrypoint", *map(str, argv)],
            cwd=case.root,
            env=env(),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        time.sleep(delay)
        running.kill()
        _, err = running.communicate(timeout=TIMEOUT_S)
        problems = []
        now = content(case.db)
        prefix = next((k for k, ref in enumerate(refs.prefixes) if ref == now), None)
        if prefix is None:
            problems.append("the kill left content that is no migration's end")
        again = case.run()
        if again.returncode != 0:
            problems.append(f"restart exited {again.returncode}: {error_line(again.stderr)}")
        if content(case.db) != refs.prefixes[-1]:
            problems.append("after the restart the content differs from a clean run's")
        after = rows(case.db)
        out.append(
            Result(
                case=f"kill -9 after {delay:.2f} s of a {span:.2f} s run (#{i + 1})",
                scenario="random-kills",
                injected=f"SIGKILL at {delay:.2f} s",
                first_exit=running.returncode,
                first_error="killed (SIGKILL)" if running.returncode == -9 else error_line(err),
                restart_exit=again.returncode,
                rows_before=refs.start_rows,
                rows_after=after,
                prefix=prefix,
                expected_rows=refs.final_rows,
                held=not problems and after == refs.final_rows,
                problems=problems,
                seconds=round(time.monotonic() - started, 2),
            )
        )
    return out


def case_names(scratch: Path) -> set[str]:
    """The names of the cases the suite has now (random kills aside): one run per scenario."""
    names = set()
    for scenario in SCENARIOS.values():
        ws = lay_out(scratch / scenario.name, scenario)
        for point in points(ws, scratch / scenario.name):
            names |= {case_name(scenario.name, action, point) for action in ACTIONS}
    names |= {
        f"{n} concurrent starts on {'a new' if new else 'an existing'} database"
        for n in (2, 4, 8)
        for new in (False, True)
    }
    names.add("a writer commits throughout a start (backup, rehearsal, migrations)")
    names |= {f"no room left for the {p}" for p in ("database", "backups", "rehearsal", "restore")}
    return names


SIGNALS = {"term": (signal.SIGTERM, 143), "int": (signal.SIGINT, 130)}
STOP_WITHIN = 20  # seconds


def children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def signal_at(
    ws: Workspace, refs: References, point: str, name: str, scratch: Path, *, pid1: bool = False
) -> Result:
    """The run waits at `point` (a hang there); SIGTERM or SIGINT it: it must stop at once,
    with its documented code, leaving a migration's end; then start again."""
    started = time.monotonic()
    sig, expected = SIGNALS[name]
    case = clone(ws, scratch / "case")
    log = scratch / "signal.log"
    log.unlink(missing_ok=True)
    argv = [sys.executable, "-m", "entrypoint", "run", "--db", str(case.db)]
    argv += ["--migrations", str(case.migrations), *ws.scenario.extra, "--", "true"]
    if pid1:  # PID 1 of a PID namespace, as in a container: no default signal actions
        argv = ["unshare", "--fork", "--pid", "--mount-proc", *argv]
    extra = {"LITEDEPLOY_FAULT": f"{point}:hang", "LITEDEPLOY_FAULT_LOG": str(log)}
    proc = subprocess.Popen(
        argv,
        cwd=case.root,
        env=env(**extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
        log.exists() and any(line.strip() == point for line in log.read_text().splitlines())
    ):
        time.sleep(0.02)
    target = proc.pid
    if pid1:
        inner = children(proc.pid)
        target = inner[0] if inner else proc.pid
    os.kill(target, sig)
    problems: list[str] = []
    try:
        # A stop takes about 0.1 s, also with both CPUs busy and the disk syncing; the limit
        # is for a run that does not stop at all, on a CI machine running the Docker tests.
        _, err = proc.communicate(timeout=STOP_WITHIN)
    except subprocess.TimeoutExpired:
        os.kill(target, signal.SIGUSR1)  # faults.py: every thread's stack on stderr
        time.sleep(1)
        proc.kill()
        _, err = proc.communicate()
        dump = err[m.start() :] if (m := re.search(r"(Current t|T)hread 0x", err)) else err
        stacks = " | ".join(line.strip() for line in dump.splitlines()[:60] if line.strip())
        problems.append(f"did not stop within {STOP_WITHIN} s of {sig.name}; stacks: {stacks}")
    code = proc.returncode
    if code != expected and not problems:
        problems.append(f"exit {code}, expected {expected} ({error_line(err)})")
    if "Traceback" in err:
        problems.append("a traceback")
    now = content(case.db)
    prefix = next((i for i, ref in enumerate(refs.prefixes) if ref == now), None)
    if prefix is None:
        problems.append("the signal left content that is no migration's end: half-applied")
    again = case.run()
    failing = FAILING in ws.scenario.steps
    if again.returncode != (6 if failing else 0):
        problems.append(f"restart exited {again.returncode}: {error_line(again.stderr)}")
    expected_rows = refs.start_rows if failing else refs.final_rows
    after = rows(case.db)
    if after != expected_rows:
        problems.append(f"{after} rows after, {expected_rows} expected")
    where = " as PID 1" if pid1 else ""
    return Result(
        case=case_name(ws.scenario.name, f"{name}-pid1" if pid1 else name, point),
        scenario=ws.scenario.name,
        injected=f"{sig.name}{where} while waiting at {point}",
        first_exit=code if code is not None else HUNG,
        first_error=error_line(err),
        restart_exit=again.returncode,
        rows_before=refs.start_rows,
        rows_after=after,
        prefix=prefix,
        expected_rows=expected_rows,
        held=not problems,
        problems=problems,
        seconds=round(time.monotonic() - started, 2),
    )
