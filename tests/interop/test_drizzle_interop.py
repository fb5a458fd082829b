"""Interop with drizzle-orm's own migrator, run for real through Node.js.

Both migration formats, each against the drizzle release that reads it:

- ``journal``: drizzle-kit 0.31 output (``NNNN_tag.sql`` + ``meta/_journal.json``),
  migrated by drizzle-orm 0.45 (harness ``tests/interop/drizzle0``);
- ``folders``: drizzle-kit 1.0 output (``YYYYMMDDHHMMSS_name/migration.sql``),
  migrated by drizzle-orm 1.0.0-rc.5 (harness ``tests/interop/drizzle1``).

drizzle runs as ``node migrate.mjs DB DIR`` (better-sqlite3, its defaults: foreign keys
ON); litedeploy runs as ``python -m entrypoint run``. The migration folders are the
committed drizzle-kit output in ``tests/fixtures`` (see ``generate-fixtures.sh``).

Three groups:

(a) a fresh database: both tools leave the same schema and the same history rows;
(b) mixed histories: drizzle applies the first N migrations and litedeploy the rest, or the
    other way round; nothing is applied twice or skipped, and the other tool then has
    nothing left to do;
(c) the data-loss cases: drizzle's rebuild of ``products`` deletes every review through ON
    DELETE CASCADE (asserted, so the harness is known to reproduce the bug) or fails on the
    orders' foreign key; litedeploy keeps every row. And a NOT NULL column added to a
    non-empty table: litedeploy refuses and leaves the database file untouched.

The tests never skip: a missing ``node`` or ``node_modules`` is a failure that says what to
install.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from calendar import timegm
from dataclasses import dataclass
from pathlib import Path
from time import strptime
from typing import Any

import pytest
from harness import CLI_ENV_VARS  # the variables our CLI reads: a shell must not leak them in

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
SEEDS = FIXTURES / "seeds"
HISTORY_TABLE = "__drizzle_migrations"
APPLIED_AT = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?Z$")
TIMEOUT_S = 120


# --------------------------------------------------------------------------------------
# The two formats


@dataclass(frozen=True)
class Migration:
    name: str  # journal tag, or folder name
    sql: Path
    created_at: int  # what drizzle records: journal `when`, or the folder's UTC second x 1000

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.sql.read_bytes()).hexdigest()


@dataclass(frozen=True)
class Flavor:
    id: str
    format: str  # our --format
    harness: Path  # the Node folder with migrate.mjs
    history: Path  # a drizzle-kit output folder

    def with_history(self, history: Path) -> Flavor:
        return Flavor(self.id, self.format, self.harness, history)

    @property
    def journal(self) -> bool:
        return self.format == "drizzle-journal"

    def migrations(self) -> list[Migration]:
        if self.journal:
            journal = json.loads((self.history / "meta" / "_journal.json").read_text())
            return [
                Migration(e["tag"], self.history / f"{e['tag']}.sql", e["when"])
                for e in journal["entries"]
            ]
        folders = sorted(p for p in self.history.iterdir() if (p / "migration.sql").is_file())
        return [Migration(p.name, p / "migration.sql", folder_millis(p.name)) for p in folders]

    def expected_history(self) -> list[tuple[Any, ...]]:
        """The rows drizzle writes for every migration of this folder, worked out from the files."""
        if self.journal:  # 0.x: `id SERIAL` is no rowid alias, so id is always NULL
            return [(None, m.hash, m.created_at) for m in self.migrations()]
        return [(i, m.hash, m.created_at, m.name) for i, m in enumerate(self.migrations(), 1)]

    def first(self, n: int, dest: Path) -> Path:
        """A copy of the folder holding only its first n migrations."""
        keep = self.migrations()[:n]
        if self.journal:
            shutil.copytree(self.history, dest)
            journal_path = dest / "meta" / "_journal.json"
            journal = json.loads(journal_path.read_text())
            journal["entries"] = journal["entries"][:n]
            journal_path.write_text(json.dumps(journal, indent=2))
            kept = {m.name for m in keep}
            for sql in dest.glob("*.sql"):
                if sql.stem not in kept:
                    sql.unlink()
                    prefix = sql.stem.split("_")[0]
                    (dest / "meta" / f"{prefix}_snapshot.json").unlink(missing_ok=True)
        else:
            dest.mkdir()
            for m in keep:
                shutil.copytree(m.sql.parent, dest / m.name)
        return dest


JOURNAL = Flavor("journal", "drizzle-journal", HERE / "drizzle0", FIXTURES / "drizzle-journal/shop")
FOLDERS = Flavor("folders", "drizzle-folders", HERE / "drizzle1", FIXTURES / "drizzle-folders/shop")
FLAVORS = [pytest.param(JOURNAL, id="journal"), pytest.param(FOLDERS, id="folders")]
NOT_NULL_TRAP = JOURNAL.with_history(FIXTURES / "drizzle-journal/not-null-trap")

# In the shop history, 0003 rebuilds `products`; seeds go in after 0002.
SEEDED_AFTER = 3


def folder_millis(name: str) -> int:
    """drizzle 1.0's created_at for a folder: its YYYYMMDDHHMMSS prefix as UTC milliseconds."""
    return timegm(strptime(name[:14], "%Y%m%d%H%M%S")) * 1000


# --------------------------------------------------------------------------------------
# Running the two tools


def require_harness(flavor: Flavor) -> None:
    """Fail (never skip) when drizzle's side cannot run, saying what to install."""
    rel = flavor.harness.relative_to(ROOT)
    hint = f"run `npm ci --no-audit --no-fund` in {rel}"
    if shutil.which("node") is None:
        pytest.fail(f"node (Node.js 20+) is not on PATH: install it, then {hint}", pytrace=False)
    wanted = json.loads((flavor.harness / "package.json").read_text())["dependencies"]
    for package, version in wanted.items():
        manifest = flavor.harness / "node_modules" / package / "package.json"
        if not manifest.is_file():
            pytest.fail(f"{rel}/node_modules is missing or incomplete: {hint}", pytrace=False)
        installed = json.loads(manifest.read_text())["version"]
        if installed != version:
            pytest.fail(
                f"{rel}/node_modules has {package} {installed}, not {version}: {hint}",
                pytrace=False,
            )


@dataclass(frozen=True)
class DrizzleResult:
    ok: bool
    error: str | None


def run_drizzle(flavor: Flavor, db: Path, folder: Path) -> DrizzleResult:
    """drizzle-orm's migrate() through better-sqlite3, in a Node process of its own."""
    require_harness(flavor)
    proc = subprocess.run(
        ["node", str(flavor.harness / "migrate.mjs"), str(db), str(folder)],
        cwd=flavor.harness,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    lines = proc.stdout.splitlines()
    assert len(lines) == 1, f"migrate.mjs: {proc.returncode=} {proc.stdout=} {proc.stderr=}"
    out = json.loads(lines[0])
    assert proc.returncode == (0 if out["result"] == "ok" else 1), (proc.returncode, out)
    return DrizzleResult(out["result"] == "ok", out["error"])


def drizzle_ok(flavor: Flavor, db: Path, folder: Path) -> None:
    result = run_drizzle(flavor, db, folder)
    assert result.ok, f"drizzle's migrate() failed: {result.error}"


def run_ours(
    flavor: Flavor, command: str, db: Path, folder: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in CLI_ENV_VARS}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "entrypoint", command, "--db", str(db)]
    return subprocess.run(
        [*argv, "--migrations", str(folder), "--format", flavor.format, *extra],
        cwd=db.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


# The shop's data makes two drizzle-kit migrations block ours: 0003 turns '12.50' into an
# integer column and 0005 drops users.name while it holds names. test_ours_refuses_the_shops_
# silent_losses_by_default shows the refusal; the comparisons pass the staging relax flag
# (findings printed, not blocking) so that both migrators apply the same SQL.
RELAXED = ("--findings", "warn", "--env", "staging")


def ours_ok(flavor: Flavor, db: Path, folder: Path) -> None:
    proc = run_ours(flavor, "run", db, folder, *RELAXED)
    assert proc.returncode == 0, f"entrypoint run exited {proc.returncode}:\n{proc.stderr}"


def our_states(flavor: Flavor, db: Path, folder: Path) -> dict[str, str]:
    proc = run_ours(flavor, "status", db, folder, "--json")
    assert proc.returncode == 0, f"entrypoint status exited {proc.returncode}:\n{proc.stderr}"
    return {m["name"]: m["state"] for m in json.loads(proc.stdout)["migrations"]}


# --------------------------------------------------------------------------------------
# Reading a database (stdlib sqlite3, read-only)


def connect_ro(db: Path) -> contextlib.closing[sqlite3.Connection]:
    return contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True))


def schema(db: Path) -> list[tuple[str, str, str, str | None]]:
    """sqlite_master, sorted, with each statement's whitespace normalised."""
    with connect_ro(db) as conn:
        rows = conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master").fetchall()
    return sorted((t, n, tbl, " ".join(sql.split()) if sql else sql) for t, n, tbl, sql in rows)


def history_ddl(db: Path) -> str | None:
    """The exact CREATE TABLE text of the history table, as SQLite stored it."""
    with connect_ro(db) as conn:
        row = conn.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (HISTORY_TABLE,)
        ).fetchone()
    return row[0] if row else None


def history(db: Path, flavor: Flavor) -> list[tuple[Any, ...]]:
    """History rows as drizzle reads them: (id, hash, created_at[, name]), in insert order."""
    columns = "id, hash, created_at" if flavor.journal else "id, hash, created_at, name"
    with connect_ro(db) as conn:
        return conn.execute(f'SELECT {columns} FROM "{HISTORY_TABLE}" ORDER BY rowid').fetchall()


def applied_at(db: Path) -> list[Any]:
    with connect_ro(db) as conn:
        rows = conn.execute(f'SELECT applied_at FROM "{HISTORY_TABLE}" ORDER BY rowid')
        return [r[0] for r in rows]


def table_rows(db: Path) -> dict[str, list[dict[str, Any]]]:
    """Every row of every app table (history and sqlite_* tables left out), by rowid."""
    with connect_ro(db) as conn:
        conn.row_factory = sqlite3.Row
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name <> ? ORDER BY name",
                (HISTORY_TABLE,),
            )
        ]
        return {
            t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid')]
            for t in tables
        }


def count(db: Path, table: str) -> int:
    with connect_ro(db) as conn:
        return int(conn.execute(f'SELECT count(*) FROM "{table}"').fetchone()[0])


def file_state(db: Path) -> tuple[bytes, list[str]]:
    """The database file's bytes and its full dump: "unchanged" means both are equal."""
    with connect_ro(db) as conn:
        dump = list(conn.iterdump())
    return db.read_bytes(), dump


@dataclass(frozen=True)
class Snapshot:
    schema: list[tuple[str, str, str, str | None]]
    ddl: str | None
    history: list[tuple[Any, ...]]
    applied_at: list[Any] | None
    rows: dict[str, list[dict[str, Any]]]


def snapshot(db: Path, flavor: Flavor) -> Snapshot:
    return Snapshot(
        schema(db),
        history_ddl(db),
        history(db, flavor),
        None if flavor.journal else applied_at(db),
        table_rows(db),
    )


def assert_applied_at_format(db: Path, flavor: Flavor) -> None:
    if flavor.journal:
        return
    stamps = applied_at(db)
    assert stamps, "no history rows"
    for stamp in stamps:
        assert isinstance(stamp, str) and APPLIED_AT.match(stamp), f"applied_at {stamp!r}"


# --------------------------------------------------------------------------------------
# Shared set-ups

_REFERENCE: dict[str, Snapshot] = {}


def drizzle_reference(flavor: Flavor, tmp_path_factory: pytest.TempPathFactory) -> Snapshot:
    """What drizzle's migrate() leaves on a fresh database with the whole history (cached)."""
    if flavor.id not in _REFERENCE:
        db = tmp_path_factory.mktemp(f"reference-{flavor.id}") / "drizzle.db"
        drizzle_ok(flavor, db, flavor.history)
        _REFERENCE[flavor.id] = snapshot(db, flavor)
    return _REFERENCE[flavor.id]


def seeded(flavor: Flavor, where: Path, seed: str, applied: int = SEEDED_AFTER) -> Path:
    """A database where drizzle applied the first `applied` migrations, then `seed` was run."""
    where.mkdir(parents=True, exist_ok=True)
    db = where / "app.db"
    drizzle_ok(flavor, db, flavor.first(applied, where / f"first-{applied}"))
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript((SEEDS / seed).read_text())
    return db


def integer_affinity(value: Any) -> Any:
    """What SQLite stores when `value` goes into an INTEGER column (as 0003's INSERT ... SELECT)."""
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.execute("CREATE TABLE t (v integer)")
        conn.execute("INSERT INTO t VALUES (?)", (value,))
        return conn.execute("SELECT v FROM t").fetchone()[0]


def shop_rows_after_all(before: dict[str, list[dict[str, Any]]]) -> dict[str, list[dict[str, Any]]]:
    """The seeded rows as they must look after 0003-0005: nothing lost, only reshaped."""
    after = {table: [dict(row) for row in rows] for table, rows in before.items()}
    for row in after["products"]:
        row["title"] = row.pop("name")  # 0004
        row["price"] = integer_affinity(row["price"])  # 0003
    for row in after["users"]:
        del row["name"]  # 0005
    return after


def assert_matches_drizzle(db: Path, flavor: Flavor, reference: Snapshot) -> None:
    """Schema, history-table DDL and history rows are those of an all-drizzle run."""
    assert history(db, flavor) == flavor.expected_history()  # one row per migration, in order
    assert history_ddl(db) == reference.ddl
    assert schema(db) == reference.schema
    assert_applied_at_format(db, flavor)


# --------------------------------------------------------------------------------------
# Harness sanity (drizzle only)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_drizzle_harness_on_fresh_database(
    flavor: Flavor, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """drizzle's own run is the yardstick: its history rows are exactly what the files say."""
    reference = drizzle_reference(flavor, tmp_path_factory)
    assert reference.history == flavor.expected_history()
    assert reference.ddl is not None and reference.ddl.startswith(f'CREATE TABLE "{HISTORY_TABLE}"')
    assert {t for t, *_ in reference.schema} == {"table", "index"}
    assert set(reference.rows) == {"orders", "products", "reviews", "users"}
    if not flavor.journal:
        assert all(APPLIED_AT.match(s) for s in reference.applied_at or [None])


# --------------------------------------------------------------------------------------
# (a) a fresh database


@pytest.mark.parametrize("flavor", FLAVORS)
def test_fresh_database_same_schema_and_history_as_drizzle(
    flavor: Flavor, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reference = drizzle_reference(flavor, tmp_path_factory)
    db = tmp_path / "ours.db"

    ours_ok(flavor, db, flavor.history)

    assert history_ddl(db) == reference.ddl  # byte for byte
    assert schema(db) == reference.schema
    assert history(db, flavor) == reference.history
    assert_applied_at_format(db, flavor)


# --------------------------------------------------------------------------------------
# (b) mixed histories

SPLITS = [1, 3, 5]  # 3: the second tool gets 0003's rebuild; 5: only the last migration


@pytest.mark.parametrize("first", SPLITS)
@pytest.mark.parametrize("flavor", FLAVORS)
def test_drizzle_first_then_ours(
    flavor: Flavor, first: int, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reference = drizzle_reference(flavor, tmp_path_factory)
    db = tmp_path / "app.db"

    drizzle_ok(flavor, db, flavor.first(first, tmp_path / "first"))
    assert len(history(db, flavor)) == first
    ours_ok(flavor, db, flavor.history)

    assert_matches_drizzle(db, flavor, reference)
    mixed = snapshot(db, flavor)
    drizzle_ok(flavor, db, flavor.history)  # drizzle again: nothing left to apply
    assert snapshot(db, flavor) == mixed
    assert set(our_states(flavor, db, flavor.history).values()) == {"applied"}


@pytest.mark.parametrize("first", SPLITS)
@pytest.mark.parametrize("flavor", FLAVORS)
def test_ours_first_then_drizzle(
    flavor: Flavor, first: int, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reference = drizzle_reference(flavor, tmp_path_factory)
    db = tmp_path / "app.db"

    ours_ok(flavor, db, flavor.first(first, tmp_path / "first"))
    assert len(history(db, flavor)) == first
    drizzle_ok(flavor, db, flavor.history)

    assert_matches_drizzle(db, flavor, reference)
    mixed = snapshot(db, flavor)
    ours_ok(flavor, db, flavor.history)  # ours again: nothing left to apply
    assert snapshot(db, flavor) == mixed


# --------------------------------------------------------------------------------------
# (c) where drizzle loses or blocks data


@pytest.mark.parametrize("flavor", FLAVORS)
def test_drizzle_loses_every_review_and_reports_success(flavor: Flavor, tmp_path: Path) -> None:
    """The bug, reproduced: 0003's DROP TABLE products cascades into reviews."""
    db = seeded(flavor, tmp_path, "shop-reviews-only.sql")
    assert count(db, "reviews") == 4

    drizzle_ok(flavor, db, flavor.history)  # reported as a success...

    assert count(db, "reviews") == 0  # ...with every review gone
    assert count(db, "products") == 3
    assert history(db, flavor) == flavor.expected_history()


@pytest.mark.parametrize("flavor", FLAVORS)
def test_ours_keeps_every_review_with_drizzles_history(flavor: Flavor, tmp_path: Path) -> None:
    theirs = seeded(flavor, tmp_path / "drizzle", "shop-reviews-only.sql")
    drizzle_ok(flavor, theirs, flavor.history)
    db = seeded(flavor, tmp_path / "ours", "shop-reviews-only.sql")
    before = table_rows(db)
    assert len(before["reviews"]) == 4

    ours_ok(flavor, db, flavor.history)

    assert table_rows(db) == shop_rows_after_all(before)  # all 4 reviews, every other row
    assert history(db, flavor) == history(theirs, flavor)  # hash, created_at (and id, name)
    assert schema(db) == schema(theirs)
    assert_applied_at_format(db, flavor)


@pytest.mark.parametrize("flavor", FLAVORS)
def test_ours_refuses_the_shops_silent_losses_by_default(flavor: Flavor, tmp_path: Path) -> None:
    """Drizzle turns '12.50' into 12.5 and drops every user's name without a word; ours asks."""
    theirs = seeded(flavor, tmp_path / "drizzle", "shop-reviews-only.sql")
    drizzle_ok(flavor, theirs, flavor.history)
    with connect_ro(theirs) as conn:
        assert conn.execute(
            "SELECT price, typeof(price) FROM products WHERE id = 1"
        ).fetchone() == (
            12.5,
            "real",
        )
    db = seeded(flavor, tmp_path / "ours", "shop-reviews-only.sql")
    before = file_state(db)

    proc = run_ours(flavor, "run", db, flavor.history)

    assert proc.returncode == 15, proc.stderr
    assert "[type-change-lossy]" in proc.stderr and "products.price" in proc.stderr
    assert "[drop-column-with-data]" in proc.stderr and "users.name" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert file_state(db) == before  # byte for byte: refused before anything was written


@pytest.mark.parametrize("flavor", FLAVORS)
def test_drizzle_fails_on_orders_foreign_key_and_changes_nothing(
    flavor: Flavor, tmp_path: Path
) -> None:
    db = seeded(flavor, tmp_path, "shop-with-orders.sql")
    before = file_state(db)

    result = run_drizzle(flavor, db, flavor.history)

    assert not result.ok
    assert "FOREIGN KEY constraint failed" in (result.error or "")
    assert file_state(db) == before  # rolled back: nothing applied, no row lost
    assert len(history(db, flavor)) == SEEDED_AFTER


@pytest.mark.parametrize("flavor", FLAVORS)
def test_ours_keeps_every_row_with_orders_then_drizzle_has_nothing_to_do(
    flavor: Flavor, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    reference = drizzle_reference(flavor, tmp_path_factory)
    db = seeded(flavor, tmp_path, "shop-with-orders.sql")
    before = table_rows(db)
    assert len(before["orders"]) == 2

    ours_ok(flavor, db, flavor.history)

    assert table_rows(db) == shop_rows_after_all(before)
    assert_matches_drizzle(db, flavor, reference)
    migrated = snapshot(db, flavor)
    drizzle_ok(flavor, db, flavor.history)  # drizzle afterwards: succeeds, applies nothing
    assert snapshot(db, flavor) == migrated


def test_drizzle_fails_on_not_null_trap_and_changes_nothing(tmp_path: Path) -> None:
    db = seeded(NOT_NULL_TRAP, tmp_path, "not-null-trap.sql", applied=1)
    before = file_state(db)

    result = run_drizzle(NOT_NULL_TRAP, db, NOT_NULL_TRAP.history)

    assert not result.ok
    assert "Cannot add a NOT NULL column with default value NULL" in (result.error or "")
    assert file_state(db) == before


def test_ours_refuses_not_null_trap_and_leaves_file_untouched(tmp_path: Path) -> None:
    db = seeded(NOT_NULL_TRAP, tmp_path, "not-null-trap.sql", applied=1)
    before = file_state(db)

    proc = run_ours(NOT_NULL_TRAP, "run", db, NOT_NULL_TRAP.history)

    assert proc.returncode != 0, proc.stderr
    assert "Traceback" not in proc.stderr
    after = file_state(db)
    assert after[1] == before[1]  # the full dump
    assert after[0] == before[0]  # and the file, byte for byte
