"""Planning: each migration's state, and `run` refusing what needs a decision (exit 5)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    FIRST_WHEN,
    Cli,
    append_journal,
    applied,
    assert_one_clear_error,
    db_state,
    query,
    write_folders,
    write_journal,
    write_plain,
)

StatusOf = Callable[..., dict[str, Any]]


def table(name: str) -> str:
    return f"CREATE TABLE {name} (id integer PRIMARY KEY);"


def test_status_of_a_new_database_is_all_pending_and_creates_nothing(
    tmp_path: Path, status_of: StatusOf
) -> None:
    folder = write_plain(tmp_path / "m", [("0001_a", table("a")), ("0002_b", table("b"))])
    db = tmp_path / "app.db"
    data = status_of(db, folder)
    assert data["database_exists"] is False
    assert data["states"] == {"0001_a": "pending", "0002_b": "pending"}
    assert data["head"] is None
    assert not db.exists()


def test_status_applied_and_pending(tmp_path: Path, status_of: StatusOf) -> None:
    folder = write_journal(tmp_path / "m", [("0000_a", table("a")), ("0001_b", table("b"))])
    db = tmp_path / "app.db"
    applied(db, folder)
    append_journal(folder, "0002_c", table("c"), when=FIRST_WHEN + 10_000)
    data = status_of(db, folder)
    assert data["states"] == {"0000_a": "applied", "0001_b": "applied", "0002_c": "pending"}
    assert data["head"] == "0001_b"
    first = data["migrations"][0]
    assert first["hash"] == first["recorded_hash"]
    assert first["created_at"] == FIRST_WHEN


def test_status_table_for_humans(tmp_path: Path, invoke: Callable[..., Any]) -> None:
    folder = write_plain(tmp_path / "m", [("0001_a", table("a")), ("0002_b", table("b"))])
    db = tmp_path / "app.db"
    applied(db, folder)
    (folder / "0003_c.sql").write_text(table("c"))
    result = invoke("status", "--db", db, "--migrations", folder)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert any(line.split() == ["0001_a", "applied"] for line in lines), result.stdout
    assert any(line.split() == ["0003_c", "pending"] for line in lines), result.stdout


# --- the three states that need a decision, one scenario each -------------------------------


def out_of_order_journal(tmp_path: Path) -> tuple[Path, Path]:
    """A branch merged late: its journal entry's `when` is older than the newest applied row."""
    folder = write_journal(tmp_path / "m", [("0000_a", table("a")), ("0001_b", table("b"))])
    db = tmp_path / "app.db"
    applied(db, folder)
    append_journal(folder, "0002_late", table("late"), when=FIRST_WHEN + 500)
    return db, folder


def out_of_order_folders(tmp_path: Path) -> tuple[Path, Path]:
    """drizzle-kit 1.0: a folder that sorts before the newest applied one."""
    folder = write_folders(
        tmp_path / "m", [("20250101000000_a", table("a")), ("20250301000000_c", table("c"))]
    )
    db = tmp_path / "app.db"
    applied(db, folder)
    write_folders(folder, [("20250201000000_late", table("late"))])
    return db, folder


def changed_file(tmp_path: Path) -> tuple[Path, Path]:
    """An applied migration edited afterwards (and a new one pending behind it)."""
    folder = write_plain(tmp_path / "m", [("0001_a", table("a")), ("0002_b", table("b"))])
    db = tmp_path / "app.db"
    applied(db, folder)
    (folder / "0001_a.sql").write_text(table("a") + "\n-- reformatted after the fact\n")
    (folder / "0003_late").with_suffix(".sql").write_text(table("late"))
    return db, folder


def unknown_row(tmp_path: Path) -> tuple[Path, Path]:
    """The database has a migration this image does not (a newer deploy ran, then a rollback)."""
    folder = write_journal(
        tmp_path / "m",
        [("0000_a", table("a")), ("0001_b", table("b")), ("0002_newer", table("newer"))],
    )
    db = tmp_path / "app.db"
    applied(db, folder)
    write_journal(folder, [("0000_a", table("a")), ("0001_b", table("b"))])
    (folder / "0002_newer.sql").unlink()
    return db, folder


def unknown_row_plain(tmp_path: Path) -> tuple[Path, Path]:
    folder = write_plain(tmp_path / "m", [("0001_a", table("a")), ("0002_newer", table("newer"))])
    db = tmp_path / "app.db"
    applied(db, folder)
    (folder / "0002_newer.sql").unlink()
    return db, folder


SCENARIOS = {
    "out-of-order-journal": (out_of_order_journal, "0002_late", "out-of-order"),
    "out-of-order-folders": (out_of_order_folders, "20250201000000_late", "out-of-order"),
    "changed": (changed_file, "0001_a", "changed"),
    "unknown-journal": (unknown_row, None, "unknown"),
    "unknown-plain": (unknown_row_plain, "0002_newer", "unknown"),
}
FLAGS = {
    "out-of-order": ("--allow-out-of-order", "LITEDEPLOY_ALLOW_OUT_OF_ORDER"),
    "changed": ("--allow-changed", "LITEDEPLOY_ALLOW_CHANGED"),
    "unknown": ("--allow-newer-database", "LITEDEPLOY_ALLOW_NEWER_DATABASE"),
}


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_status_reports_the_state(tmp_path: Path, status_of: StatusOf, scenario: str) -> None:
    make, name, state = SCENARIOS[scenario]
    db, folder = make(tmp_path)
    data = status_of(db, folder)
    flagged = [m for m in data["migrations"] if m["state"] == state]
    assert len(flagged) == 1, data["states"]
    if name is not None:
        assert flagged[0]["name"] == name
    else:  # a 0.x row carries no name: it is shown by its time and hash
        assert flagged[0]["name"].startswith(f"created_at={FIRST_WHEN + 2000} hash=")
    others = {m["state"] for m in data["migrations"]} - {state}
    assert others <= {"applied", "pending"}


def test_changed_shows_both_hashes(tmp_path: Path, status_of: StatusOf) -> None:
    db, folder = changed_file(tmp_path)
    item = status_of(db, folder)["migrations"][0]
    assert item["state"] == "changed"
    assert item["recorded_hash"] == query(db, "SELECT hash FROM __litedeploy_migrations")[0][0]
    assert item["hash"] != item["recorded_hash"]


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_run_refuses_and_changes_nothing(tmp_path: Path, cli: Cli, scenario: str) -> None:
    make, name, state = SCENARIOS[scenario]
    db, folder = make(tmp_path)
    before = db_state(db)
    proc = cli("run", "--db", db, "--migrations", folder)
    line = assert_one_clear_error(proc, 5, *([name] if name else []))
    flag = FLAGS[state][0]
    assert flag in proc.stderr  # the hint names the way out
    assert "Applying" not in proc.stderr
    assert db_state(db) == before, line


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("how", ["flag", "env"])
def test_run_proceeds_when_allowed(
    tmp_path: Path, invoke: Callable[..., Any], scenario: str, how: str
) -> None:
    make, name, state = SCENARIOS[scenario]
    db, folder = make(tmp_path)
    rows_before = query(db, "SELECT count(*) FROM sqlite_master")[0][0]
    flag, var = FLAGS[state]
    if how == "flag":
        proc = invoke("run", "--db", db, "--migrations", folder, flag)
    else:
        proc = invoke("run", "--db", db, "--migrations", folder, env={var: "1"})
    assert proc.exit_code == 0, proc.stderr
    assert "error" not in proc.stderr
    tables = {r[0] for r in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    if state == "out-of-order":
        assert "late" in tables  # the late migration was applied
        assert f"Applied {name}" in proc.stderr
    elif state == "changed":
        assert "late" in tables  # the pending one behind the changed one was applied
        assert "Applying 0001_a" not in proc.stderr  # the changed one was not re-run
    else:
        assert "Applying" not in proc.stderr
        assert query(db, "SELECT count(*) FROM sqlite_master")[0][0] == rows_before


def test_allowed_out_of_order_migration_is_then_applied(
    tmp_path: Path, status_of: StatusOf
) -> None:
    db, folder = out_of_order_journal(tmp_path)
    applied(db, folder, allow_out_of_order=True)
    assert set(status_of(db, folder)["states"].values()) == {"applied"}
    assert query(db, "SELECT created_at FROM __drizzle_migrations ORDER BY rowid") == [
        (FIRST_WHEN,),
        (FIRST_WHEN + 1000,),
        (FIRST_WHEN + 500,),
    ]


def test_one_refusal_at_a_time_names_every_migration_of_its_kind(tmp_path: Path, cli: Cli) -> None:
    folder = write_plain(tmp_path / "m", [("0001_a", table("a")), ("0002_b", table("b"))])
    db = tmp_path / "app.db"
    applied(db, folder)
    (folder / "0001_a.sql").write_text(table("a") + " -- edited")
    (folder / "0002_b.sql").write_text(table("b") + " -- edited")
    proc = cli("run", "--db", db, "--migrations", folder)
    line = assert_one_clear_error(proc, 5, "2 migration(s)", "0001_a", "0002_b")
    assert "changed" in line


def test_status_json_is_machine_readable_for_every_state(tmp_path: Path, cli: Cli) -> None:
    """The real process prints only JSON on stdout (logs go to stderr)."""
    db, folder = changed_file(tmp_path)
    proc = cli("status", "--db", db, "--migrations", folder, "--json")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [m["state"] for m in data["migrations"]] == ["changed", "applied", "pending"]


def test_a_database_ahead_of_the_image_names_the_backup_to_restore(
    tmp_path: Path, cli: Cli
) -> None:
    """v2 migrated the database (its run backed it up first); v1 starts again on it: the
    refusal names v2's backup, taken at v1's newest migration, and restoring it by the
    command in the hint lets v1 start."""
    v1 = write_journal(tmp_path / "v1", [("0000_a", table("a")), ("0001_b", table("b"))])
    v2 = write_journal(
        tmp_path / "v2",
        [("0000_a", table("a")), ("0001_b", table("b")), ("0002_newer", table("newer"))],
    )
    db = tmp_path / "data" / "app.db"
    db.parent.mkdir()
    assert cli("run", "--db", db, "--migrations", v1).returncode == 0
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO a VALUES (1)")
    assert cli("run", "--db", db, "--migrations", v2).returncode == 0
    refused = cli("run", "--db", db, "--migrations", v1)
    hint = assert_one_clear_error(refused, 5, "missing from this image")
    [backup] = (db.parent / "backups").glob("*.backup")
    hint_line = next(line for line in refused.stderr.splitlines() if "hint:" in line)
    assert str(backup) in hint_line and "at 0001_b" in hint_line, hint
    assert f"entrypoint restore --db {db} {backup}" in hint_line
    assert f"deploy restore {backup.name}" in hint_line
    assert "--allow-newer-database" in hint_line
    restored = cli("restore", "--db", db, backup.name)  # a bare name: looked up in backups/
    assert restored.returncode == 0, restored.stderr
    assert cli("run", "--db", db, "--migrations", v1).returncode == 0
    assert query(db, "SELECT id FROM a") == [(1,)]


def test_without_a_matching_backup_the_refusal_keeps_its_advice(tmp_path: Path, cli: Cli) -> None:
    db, folder = unknown_row(tmp_path)
    refused = cli("run", "--db", db, "--migrations", folder)
    assert_one_clear_error(refused, 5, "missing from this image")
    assert "deploy the newer image, or start this one anyway" in refused.stderr
