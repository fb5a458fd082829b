"""`entrypoint run`'s gate: findings and the rehearsal refuse before the live database is touched.

And what comes after: drift from drizzle-kit's latest snapshot, a warning or (--strict) a refusal.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    ROOT,
    Cli,
    applied,
    assert_one_clear_error,
    backup_files,
    db_state,
    dump,
    make_db,
    manifest_of,
    query,
    write_journal,
)
from test_drift import PRICE_AS_TEXT
from test_plan_command import fixture_db

Invoke = Callable[..., Any]
FIXTURES = ROOT / "tests" / "fixtures"

INIT = (
    "CREATE TABLE t (id integer PRIMARY KEY, a text, b text);\n"
    "--> statement-breakpoint\n"
    "CREATE TABLE users (id integer PRIMARY KEY, email text, legacy text);"
)
SEED = (
    "INSERT INTO t VALUES (1, 'x', 'p'), (2, 'y', 'q'), (3, 'z', NULL);"
    "INSERT INTO users VALUES (1, 'a@example.com', 'A'), (2, 'b@example.com', NULL);"
)
# Lossy in ways no static rule sees: only the rehearsal's comparison catches them.
COLLAPSE_ROWS = "UPDATE OR REPLACE t SET id = 1;"  # three rows become one, no DELETE said so
BLANK_VALUES = "UPDATE t SET b = NULL;"  # t.b's values vanish, no DROP COLUMN said so
DROP_LEGACY = "ALTER TABLE users DROP COLUMN legacy;"


def seeded(tmp_path: Path, *later: tuple[str, str]) -> tuple[Path, Path]:
    """data/app.db with 0000_init applied and seeded; `later` migrations pending."""
    (tmp_path / "data").mkdir(parents=True)
    db = tmp_path / "data" / "app.db"
    folder = tmp_path / "m"
    write_journal(folder, [("0000_init", INIT)])
    applied(db, folder)
    make_db(db, SEED)
    write_journal(folder, [("0000_init", INIT), *later])
    return db, folder


def history(db: Path) -> list[str]:
    return [r[0] for r in query(db, "SELECT hash FROM __drizzle_migrations ORDER BY id")]


def assert_untouched(db: Path, before: bytes, proc_stderr: str) -> None:
    """Refused before the backup: the file is byte-for-byte as it was, nothing was written."""
    assert db.read_bytes() == before
    assert not (db.parent / "backups").exists()
    assert not (db.parent / "quarantine").exists()
    assert "Applying" not in proc_stderr


# --- findings ----------------------------------------------------------------------------------


def test_the_not_null_trap_is_refused_with_the_row_count(tmp_path: Path, cli: Cli) -> None:
    # The rehearsal fails on the copy (exit 6, a migration that fails); the finding that
    # predicted it says why, with the row count.
    db, folder = fixture_db(tmp_path, "not-null-trap", 1, "not-null-trap.sql")
    before = db.read_bytes()
    proc = cli("run", "--db", db, "--migrations", folder, "--", "true")
    line = assert_one_clear_error(proc, 6, "0001_add_stock", "add-not-null-without-default")
    assert "fails on a copy of the database" in line
    assert "Cannot add a NOT NULL column with default value NULL" in line
    assert "products has 2 row(s)" in line
    assert "the live database was not touched" in line
    assert "DEFAULT" in proc.stderr.splitlines()[-1]  # the hint: a default or two phases
    assert_untouched(db, before, proc.stderr)


def test_a_directive_acknowledges_a_finding_which_is_still_printed(
    tmp_path: Path, cli: Cli
) -> None:
    db, folder = seeded(tmp_path, ("0001_drop_legacy", DROP_LEGACY))
    refused = cli("run", "--db", db, "--migrations", folder)
    assert_one_clear_error(refused, 15, "users.legacy: 1 of 1 non-NULL value(s) vanish")
    assert "drops users.legacy, which holds 1 non-NULL value(s)" in refused.stderr  # explains
    sql = "-- litedeploy: allow drop-column users.legacy\n" + DROP_LEGACY
    (folder / "0001_drop_legacy.sql").write_text(sql)
    proc = cli("run", "--db", db, "--migrations", folder)
    assert proc.returncode == 0, proc.stderr
    acknowledged = (
        "acknowledged by -- litedeploy: allow drop-column users.legacy (in 0001_drop_legacy)"
    )
    assert f"finding block ({acknowledged}) [drop-column-with-data]" in proc.stderr
    assert (
        "rehearsal: users.legacy: 1 of 1 non-NULL value(s) vanish (the column is dropped by "
        f"0001_drop_legacy statement 1); {acknowledged}" in proc.stderr
    )
    assert [r[1] for r in query(db, "PRAGMA table_info(users)")] == ["id", "email"]


def test_a_directive_for_another_object_does_not_acknowledge(tmp_path: Path, cli: Cli) -> None:
    sql = "-- litedeploy: allow drop-column users.email\n" + DROP_LEGACY
    db, folder = seeded(tmp_path, ("0001_drop_legacy", sql))
    before = db.read_bytes()
    proc = cli("run", "--db", db, "--migrations", folder)
    assert_one_clear_error(proc, 15, "users.legacy")
    assert_untouched(db, before, proc.stderr)


# --- the operator's acknowledgement, for an image whose migrations cannot be edited ------------


@pytest.mark.parametrize("how", ["option", "env"])
def test_the_operator_acknowledges_a_named_loss_audited(tmp_path: Path, cli: Cli, how: str) -> None:
    db, folder = seeded(tmp_path, ("0001_drop_legacy", DROP_LEGACY))
    args: list[str | Path] = ["run", "--db", db, "--migrations", folder, "--env", "production"]
    if how == "option":
        proc = cli(*args, "--allow", "lost-values=users.legacy")
    else:
        proc = cli(*args, env={"LITEDEPLOY_ALLOW": "lost-values=users.legacy, lost-rows=other"})
    assert proc.returncode == 0, proc.stderr
    assert "acknowledged by the operator (--allow): lost-values=users.legacy" in proc.stderr
    assert "; acknowledged by --allow lost-values=users.legacy" in proc.stderr
    [backup] = backup_files(db.parent / "backups")
    acknowledged = manifest_of(backup)["acknowledged"]
    assert "lost-values=users.legacy" in acknowledged  # the audit trail, beside the backup
    assert [r[1] for r in query(db, "PRAGMA table_info(users)")] == ["id", "email"]


def test_an_operator_acknowledgement_names_exactly_one_object(tmp_path: Path, cli: Cli) -> None:
    db, folder = seeded(tmp_path, ("0001_drop_legacy", DROP_LEGACY))
    before = db.read_bytes()
    other = cli("run", "--db", db, "--migrations", folder, "--allow", "lost-values=users.email")
    assert_one_clear_error(other, 15, "users.legacy: 1 of 1 non-NULL value(s) vanish")
    for bad in ("lost-values=users.*", "lost-values", "everything"):
        proc = cli("run", "--db", db, "--migrations", folder, "--allow", bad)
        assert_one_clear_error(proc, 2, f"--allow {bad!r} is not RULE=OBJECT")
    assert_untouched(db, before, "")


# --- the rehearsal -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "needle", "directive"),
    [
        (COLLAPSE_ROWS, "t: 2 of 3 row(s) vanish", "lost-rows t"),
        (BLANK_VALUES, "t.b: 2 of 2 non-NULL value(s) vanish", "lost-values t.b"),
    ],
    ids=["rows", "values"],
)
def test_the_rehearsal_refuses_a_silent_loss_until_acknowledged(
    tmp_path: Path, cli: Cli, sql: str, needle: str, directive: str
) -> None:
    db, folder = seeded(tmp_path, ("0001_lossy", sql))
    before = db.read_bytes()
    proc = cli("run", "--db", db, "--migrations", folder)
    line = assert_one_clear_error(proc, 15, "rehearsal:", needle, "nothing keeps them")
    assert "the live database was not touched" in line
    assert f"-- litedeploy: allow {directive}" in proc.stderr.splitlines()[-1]  # the hint
    assert "rehearsal on a copy" in proc.stderr
    assert_untouched(db, before, proc.stderr)

    (folder / "0001_lossy.sql").write_text(f"-- litedeploy: allow {directive}\n{sql}")
    ok = cli("run", "--db", db, "--migrations", folder)
    assert ok.returncode == 0, ok.stderr  # the check after migrating accepts it too
    assert "acknowledged by -- litedeploy: allow" in ok.stderr
    assert len(history(db)) == 2
    assert not (db.parent / "quarantine").exists()


def test_allow_row_loss_acknowledges_the_rehearsals_lost_rows(tmp_path: Path, cli: Cli) -> None:
    db, folder = seeded(tmp_path, ("0001_lossy", COLLAPSE_ROWS))
    proc = cli("run", "--db", db, "--migrations", folder, "--allow-row-loss")
    assert proc.returncode == 0, proc.stderr
    assert "acknowledged by --allow-row-loss" in proc.stderr
    assert query(db, "SELECT count(*) FROM t") == [(1,)]


def test_no_rehearse_skips_the_copy_but_not_the_findings(tmp_path: Path, cli: Cli) -> None:
    db, folder = seeded(tmp_path, ("0001_drop_legacy", DROP_LEGACY))
    proc = cli("run", "--db", db, "--migrations", folder, "--no-rehearse")
    assert_one_clear_error(proc, 15, "drop-column-with-data")
    assert "rehearsal on a copy" not in proc.stderr

    db2, folder2 = seeded(tmp_path / "two", ("0001_add", "ALTER TABLE t ADD c text;"))
    quiet = cli("run", "--db", db2, "--migrations", folder2, env={"LITEDEPLOY_REHEARSE": "false"})
    assert quiet.returncode == 0, quiet.stderr
    assert "rehearsal on a copy" not in quiet.stderr
    rehearsed = cli("run", "--db", db2, "--migrations", folder2)
    assert rehearsed.returncode == 0  # nothing pending now: nothing to rehearse either
    assert "rehearsal on a copy" not in rehearsed.stderr


def test_a_host_side_rehearsal_is_judged_like_a_start(tmp_path: Path, cli: Cli) -> None:
    # deploy runs the new image on a snapshot with LITEDEPLOY_REHEARSAL=1: values moved
    # before a drop pass there as they do at start-up (the findings alone would block them)
    moved = (
        "CREATE TABLE legacy (user_id integer PRIMARY KEY REFERENCES users(id), legacy text);\n"
        "--> statement-breakpoint\n"
        "INSERT INTO legacy SELECT id, legacy FROM users;\n"
        "--> statement-breakpoint\n" + DROP_LEGACY
    )
    db, folder = seeded(tmp_path, ("0001_move", moved))
    proc = cli("run", "--db", db, "--migrations", folder, env={"LITEDEPLOY_REHEARSAL": "1"})
    assert proc.returncode == 0, proc.stderr
    assert "rehearsal on a copy" in proc.stderr and ": pass;" in proc.stderr
    assert "stopping before exec" in proc.stderr
    db2, folder2 = seeded(tmp_path / "lossy", ("0001_drop_legacy", DROP_LEGACY))
    refused = cli("run", "--db", db2, "--migrations", folder2, env={"LITEDEPLOY_REHEARSAL": "1"})
    assert_one_clear_error(refused, 15, "users.legacy: 1 of 1 non-NULL value(s) vanish")


def test_the_rehearsal_copy_goes_where_told_and_is_removed(tmp_path: Path, cli: Cli) -> None:
    db, folder = seeded(tmp_path, ("0001_add", "ALTER TABLE t ADD c text;"))
    workdir = tmp_path / "scratch"
    workdir.mkdir()
    proc = cli("run", "--db", db, "--migrations", folder, "--rehearsal-dir", workdir)
    assert proc.returncode == 0, proc.stderr
    assert "rehearsal on a copy" in proc.stderr and ": pass;" in proc.stderr
    assert list(workdir.iterdir()) == []


# --- relaxing: staging only --------------------------------------------------------------------


def test_findings_warn_lets_staging_through_with_the_findings_printed(
    tmp_path: Path, cli: Cli
) -> None:
    db, folder = seeded(tmp_path, ("0001_drop_legacy", DROP_LEGACY))
    proc = cli(
        "run", "--db", db, "--migrations", folder, "--findings", "warn", env={"APP_ENV": "staging"}
    )
    assert proc.returncode == 0, proc.stderr
    assert "not blocking (--findings warn): rehearsal: users.legacy: 1 of 1" in proc.stderr
    assert len(history(db)) == 2


@pytest.mark.parametrize("how", ["option", "env"])
def test_findings_warn_is_refused_in_production(tmp_path: Path, cli: Cli, how: str) -> None:
    db, folder = seeded(tmp_path, ("0001_drop_legacy", DROP_LEGACY))
    before = db.read_bytes()
    args: list[str | Path] = ["run", "--db", db, "--migrations", folder, "--findings", "warn"]
    if how == "option":
        proc = cli(*args, "--env", "production")
    else:
        proc = cli(*args, env={"APP_ENV": "production"})
    assert_one_clear_error(proc, 2, "--findings warn is refused in production")
    assert_untouched(db, before, proc.stderr)


def test_findings_warn_still_refuses_rows_the_check_would_restore(tmp_path: Path, cli: Cli) -> None:
    db, folder = seeded(tmp_path, ("0001_lossy", COLLAPSE_ROWS))
    before = db.read_bytes()
    proc = cli("run", "--db", db, "--migrations", folder, "--findings", "warn")
    assert_one_clear_error(proc, 15, "rows would be lost")
    assert "pass --allow-row-loss as well" in proc.stderr
    assert_untouched(db, before, proc.stderr)


# --- the shop, as drizzle-kit generated it -----------------------------------------------------


def test_the_shop_with_data_is_refused_until_its_two_losses_are_acknowledged(
    tmp_path: Path, cli: Cli
) -> None:
    """0003 turns '12.50' into an integer column; 0005 drops users.name that holds names."""
    db, folder = fixture_db(tmp_path, "shop", 3, "shop-with-orders.sql")
    before = db_state(db)
    proc = cli("run", "--db", db, "--migrations", folder)
    assert_one_clear_error(proc, 15, "2 blocking problem(s)", "products.price: 1 of 3")
    assert "blocking: rehearsal: users.name: 2 of 2 non-NULL value(s) vanish" in proc.stderr
    # the findings explain both: which value does not convert, and which column is dropped
    assert "[type-change-lossy] 0003_price_to_integer statement" in proc.stderr
    assert "[drop-column-with-data] 0005_drop_user_name statement 1: drops users.name" in (
        proc.stderr
    )
    assert db_state(db) == before

    for name, directive in [
        ("0003_price_to_integer.sql", "type-change products.price"),
        ("0005_drop_user_name.sql", "drop-column users.name"),
    ]:
        path = folder / name
        path.write_text(f"-- litedeploy: allow {directive}\n" + path.read_text())
    ok = cli("run", "--db", db, "--migrations", folder)
    assert ok.returncode == 0, ok.stderr
    assert "rehearsal on a copy" in ok.stderr and ": pass;" in ok.stderr
    assert query(db, "SELECT count(*) FROM reviews") == [(4,)]
    assert query(db, "SELECT count(*) FROM orders") == [(2,)]


# --- drift after run ---------------------------------------------------------------------------

DRIFT = "products.price: type TEXT in the database, integer in the snapshot"


def shop_at(tmp_path: Path, upto: int, *, table: str | None = None) -> tuple[Path, Path]:
    """An empty-ish shop database migrated with the first `upto` migrations of the fixture."""
    folder = tmp_path / "shop"
    shutil.copytree(FIXTURES / "drizzle-journal" / "shop", folder)
    partial = tmp_path / "partial"
    shutil.copytree(folder, partial)
    journal = json.loads((partial / "meta" / "_journal.json").read_text())
    journal["entries"] = journal["entries"][:upto]
    (partial / "meta" / "_journal.json").write_text(json.dumps(journal))
    (tmp_path / "data").mkdir()
    db = tmp_path / "data" / "app.db"
    extra = {"history_table": table} if table else {}
    applied(db, partial, **extra)
    return db, folder


def test_drift_after_run_is_a_warning(tmp_path: Path, cli: Cli) -> None:
    db, folder = shop_at(tmp_path, 6)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(PRICE_AS_TEXT)
    proc = cli("run", "--db", db, "--migrations", folder, "--", "true")
    assert proc.returncode == 0, proc.stderr
    snapshot = "the snapshot of 0005_drop_user_name (meta/0005_snapshot.json)"
    assert f"warning: drift from {snapshot}: {DRIFT}" in proc.stderr
    assert "--strict makes this refuse the start" in proc.stderr


def test_drift_with_strict_refuses_to_start(tmp_path: Path, cli: Cli) -> None:
    db, folder = shop_at(tmp_path, 6)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(PRICE_AS_TEXT)
    before = dump(db)
    proc = cli("run", "--db", db, "--migrations", folder, "--strict", "--", "true")
    assert_one_clear_error(proc, 11, "differs from drizzle-kit's snapshot", DRIFT)
    assert dump(db) == before


def test_drift_with_strict_after_migrating_restores_the_backup(tmp_path: Path, cli: Cli) -> None:
    db, folder = shop_at(tmp_path, 4)  # 0004 (rename) and 0005 (drop column) pending
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE INDEX by_hand ON products (sku)")
    before = dump(db)
    proc = cli(
        "run", "--db", db, "--migrations", folder, "--strict", env={"LITEDEPLOY_STRICT_DRIFT": "1"}
    )
    line = assert_one_clear_error(proc, 11, "by_hand", "restored the backup")
    [backup] = backup_files(db.parent / "backups")
    assert backup.name in line
    assert dump(db) == before
    assert (db.parent / "quarantine").is_dir()  # the migrated files, kept


def test_a_custom_history_table_is_not_drift(tmp_path: Path, cli: Cli) -> None:
    db, folder = shop_at(tmp_path, 6, table="schema_history")
    proc = cli(
        "run", "--db", db, "--migrations", folder, "--history-table", "schema_history", "--strict"
    )
    assert proc.returncode == 0, proc.stderr
    assert "drift" not in proc.stderr
    checked = cli(
        "check", "--db", db, "--migrations", folder, "--history-table", "schema_history", "--strict"
    )
    assert checked.returncode == 0, checked.stderr
    assert "drift: none" in checked.stdout


def test_a_rehearsal_folder_that_cannot_be_used_is_one_clear_error(
    tmp_path: Path, cli: Cli
) -> None:
    db, folder = seeded(tmp_path, ("0001_add", "ALTER TABLE t ADD c text;"))
    before = db.read_bytes()
    missing = tmp_path / "no-such-folder"
    for command in ("run", "rehearse"):
        proc = cli(command, "--db", db, "--migrations", folder, "--rehearsal-dir", missing)
        assert_one_clear_error(proc, 8, "cannot make the rehearsal's folder", str(missing))
        assert "LITEDEPLOY_REHEARSAL_DIR" in proc.stderr
    assert_untouched(db, before, "")


# --- the checks the rehearsal already made -----------------------------------------------------

REBUILD_T = (
    "PRAGMA foreign_keys=OFF;--> statement-breakpoint\n"
    "CREATE TABLE `__new_t` (`id` integer PRIMARY KEY, `a` text, `b` text DEFAULT '' NOT NULL);"
    "--> statement-breakpoint\n"
    "INSERT INTO `__new_t`(`id`, `a`, `b`) SELECT `id`, `a`, coalesce(`b`, '') FROM `t`;"
    "--> statement-breakpoint\n"
    "DROP TABLE `t`;--> statement-breakpoint\n"
    "ALTER TABLE `__new_t` RENAME TO `t`;--> statement-breakpoint\n"
    "PRAGMA foreign_keys=ON;"
)
CHECKED_ON_COPY = "foreign keys were checked on the rehearsal's copy of this data"


@pytest.mark.parametrize(
    ("extra", "sql", "skipped"),
    [
        ((), REBUILD_T, True),
        (("--no-rehearse",), REBUILD_T, False),
        ((), REBUILD_T.replace("coalesce(`b`, '')", "coalesce(`b`, datetime('now'))"), False),
    ],
    ids=["rehearsed", "no-rehearse", "clock-dependent"],
)
def test_a_rebuild_checked_on_the_copy_is_not_checked_again_before_commit(
    tmp_path: Path, cli: Cli, extra: tuple[str, ...], sql: str, skipped: bool
) -> None:
    db, folder = seeded(tmp_path, ("0001_rebuild_t", sql))
    proc = cli("run", "--db", db, "--migrations", folder, *extra)
    assert proc.returncode == 0, proc.stderr
    assert (CHECKED_ON_COPY in proc.stderr) is skipped
    assert "checks passed" in proc.stderr
    assert query(db, "SELECT count(*) FROM t") == [(3,)]


def test_a_commit_after_the_rehearsal_makes_the_live_run_check_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Another connection commits between the rehearsal's snapshot and the apply: the copy
    no longer shows this data, so the check before commit runs on the live database."""
    from entrypoint.modes import migrate as migrating
    from entrypoint.settings import Options

    db, folder = seeded(tmp_path, ("0001_rebuild_t", REBUILD_T))
    real = migrating.take_run_backup

    def backup_then_a_write(*args: Any, **kwargs: Any) -> Any:
        made = real(*args, **kwargs)
        with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as other:
            other.execute("INSERT INTO t VALUES (4, 'late', NULL)")
        return made

    monkeypatch.setattr(migrating, "take_run_backup", backup_then_a_write)
    with caplog.at_level("INFO", logger="litedeploy.entrypoint"):
        migrating.migrate(Options(db_path=db, migrations_dir=folder))
    assert CHECKED_ON_COPY not in caplog.text
    assert "Applied 0001_rebuild_t" in caplog.text
    assert query(db, "SELECT count(*) FROM t") == [(4,)]
