"""`entrypoint rehearse`: the pending migrations applied to a copy, compared with before."""

from __future__ import annotations

import json
import re
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import (
    ROOT,
    Cli,
    applied,
    assert_one_clear_error,
    assert_unchanged,
    db_state,
    make_db,
    write_journal,
)
from test_plan_command import fixture_db

from entrypoint.base.errors import PlanRefused
from entrypoint.safety.rehearsal import rehearse
from entrypoint.settings import Options, Policy

Invoke = Callable[..., Any]
FIXTURES = ROOT / "tests" / "fixtures"
BREAK = "--> statement-breakpoint\n"

INIT = (
    "CREATE TABLE t (id integer PRIMARY KEY, a text);\n"
    "--> statement-breakpoint\n"
    "CREATE TABLE parent (id integer PRIMARY KEY, name text);\n"
    "--> statement-breakpoint\n"
    "CREATE TABLE child (id integer PRIMARY KEY, parent_id integer NOT NULL "
    "REFERENCES parent(id) ON DELETE CASCADE, note text);\n"
    "--> statement-breakpoint\n"
    "CREATE TABLE grandchild (id integer PRIMARY KEY, child_id integer NOT NULL "
    "REFERENCES child(id) ON DELETE CASCADE);\n"
    "--> statement-breakpoint\n"
    "CREATE INDEX t_a_idx ON t (a);\n"
    "--> statement-breakpoint\n"
    "CREATE TRIGGER t_audit AFTER UPDATE ON t BEGIN SELECT 1; END;"
)
SEED = (
    "INSERT INTO t (id, a) VALUES (1, 'x'), (2, NULL), (3, 'y'), (4, NULL), (5, 'z');"
    "INSERT INTO parent (id, name) VALUES (1, 'p1'), (2, 'p2');"
    "INSERT INTO child (id, parent_id, note) VALUES (1, 1, 'a'), (2, 1, 'b'), (3, 2, 'c');"
    "INSERT INTO grandchild (id, child_id) VALUES (1, 1), (2, 3);"
)


def rebuild(where: str = "", *, keep_trigger: bool = True, keep_index: bool = True) -> str:
    """A hand-written rebuild of t, optionally filtering rows or forgetting its objects."""
    sql = [
        "CREATE TABLE __new_t (id integer PRIMARY KEY, a text NOT NULL DEFAULT '');",
        f"INSERT INTO __new_t (id, a) SELECT id, coalesce(a, '') FROM t {where};",
        "DROP TABLE t;",
        "ALTER TABLE __new_t RENAME TO t;",
    ]
    if keep_index:
        sql.append("CREATE INDEX t_a_idx ON t (a);")
    if keep_trigger:
        sql.append("CREATE TRIGGER t_audit AFTER UPDATE ON t BEGIN SELECT 1; END;")
    return "\n--> statement-breakpoint\n".join(sql)


def setup(tmp_path: Path, *pending: str) -> tuple[Path, Path]:
    """0000_init applied and seeded; `pending` become 0001_..., 0002_... (not applied)."""
    migrations = [("0000_init", INIT)]
    db = tmp_path / "app.db"
    applied(db, write_journal(tmp_path / "done", migrations), backup=Policy.NEVER)
    make_db(db, SEED)
    migrations += [(f"{i + 1:04d}_step", sql) for i, sql in enumerate(pending)]
    return db, write_journal(tmp_path / "m", migrations)


def rehearse_json(invoke: Invoke, db: Path, folder: Path, code: int) -> dict[str, Any]:
    result = invoke("rehearse", "--db", db, "--migrations", folder, "--json")
    assert result.exit_code == code, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def losses(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Losses by object: a table (its rows), table.column (its values) or an object name."""
    return {x["object"]: x for x in data["losses"]}


def rows(data: dict[str, Any]) -> dict[str, tuple[int, int | None]]:
    return {t["table"]: (t["before"], t["after"]) for t in data["tables"]}


def test_rebuild_whose_insert_select_drops_rows_is_blocked(tmp_path: Path, cli: Cli) -> None:
    db, folder = setup(tmp_path, rebuild("WHERE a IS NOT NULL"))
    before = db_state(db)
    proc = cli("rehearse", "--db", db, "--migrations", folder)
    line = assert_one_clear_error(proc, 15, "t: 2 of 5 row(s) vanish")
    assert "nothing keeps them and no statement says so" in line
    assert re.search(r"^  t +5 -> 3  <- fewer$", proc.stdout, re.MULTILINE), proc.stdout
    assert "BLOCK" in proc.stdout and "verdict: " in proc.stdout
    assert_unchanged(db, before)
    assert not list(tmp_path.glob("**/rehearsal.db"))


def test_safe_twin_of_the_rebuild_passes(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = setup(tmp_path, rebuild())
    before = db_state(db)
    data = rehearse_json(invoke, db, folder, 0)
    assert data["verdict"] == "pass" and data["blocking"] == 0
    assert rows(data)["t"] == (5, 5) and data["losses"] == []
    text = invoke("rehearse", "--db", db, "--migrations", folder)
    assert text.exit_code == 0 and "nothing blocks" in text.stdout
    assert_unchanged(db, before)


def test_explicit_delete_and_its_cascade_are_reported_not_blocking(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, folder = setup(tmp_path, "DELETE FROM parent WHERE id = 1;")
    before = db_state(db)
    data = rehearse_json(invoke, db, folder, 0)
    assert rows(data) == {
        "t": (5, 5),
        "parent": (2, 1),
        "child": (3, 1),
        "grandchild": (2, 1),
    }
    found = losses(data)
    assert {name for name, loss in found.items() if loss["kind"] == "rows"} == {
        "parent",
        "child",
        "grandchild",
    }
    assert all(loss["verdict"] == "explained" for loss in data["losses"])
    assert found["parent"]["explained_by"] == "0001_step statement 1"
    assert found["child"]["explained_by"] == "0001_step statement 1 (ON DELETE CASCADE)"
    assert found["grandchild"]["explained_by"] == "0001_step statement 1 (ON DELETE CASCADE)"
    assert (found["child"]["before"], found["child"]["lost"]) == (3, 2)
    assert "child.note" not in found  # the values went with the deleted rows
    assert_unchanged(db, before)


def test_a_dropped_column_with_data_blocks_until_acknowledged(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, folder = setup(tmp_path, "ALTER TABLE child DROP COLUMN note;")
    data = rehearse_json(invoke, db, folder, 15)
    [loss] = data["losses"]
    assert loss["object"] == "child.note" and loss["verdict"] == "block" and loss["blocks"]
    assert (loss["before"], loss["lost"]) == (3, 3)
    assert loss["what"] == "the column is dropped by 0001_step statement 1"
    assert loss["rule"] == "lost-values"
    acked = "-- litedeploy: allow drop-column child.note\nALTER TABLE child DROP COLUMN note;"
    db, folder = setup(tmp_path / "acked", acked)
    [loss] = rehearse_json(invoke, db, folder, 0)["losses"]
    assert loss["acknowledged_by"] == "-- litedeploy: allow drop-column child.note (in 0001_step)"
    db, folder = setup(tmp_path / "operator", "ALTER TABLE child DROP COLUMN note;")
    result = invoke(
        "rehearse",
        "--db",
        db,
        "--migrations",
        folder,
        "--json",
        "--allow",
        "lost-values=child.note",
    )
    assert result.exit_code == 0, result.stderr
    [loss] = json.loads(result.stdout)["losses"]
    assert loss["acknowledged_by"] == "--allow lost-values=child.note"

    lossy = (
        "CREATE TABLE __new_child (id integer PRIMARY KEY, parent_id integer NOT NULL "
        "REFERENCES parent(id) ON DELETE CASCADE);\n--> statement-breakpoint\n"
        "INSERT INTO __new_child (id, parent_id) SELECT id, parent_id FROM child;\n"
        "--> statement-breakpoint\nDROP TABLE child;\n--> statement-breakpoint\n"
        "ALTER TABLE __new_child RENAME TO child;"
    )
    db, folder = setup(tmp_path / "lossy", "PRAGMA foreign_keys=OFF;\n" + BREAK + lossy)
    data = rehearse_json(invoke, db, folder, 15)
    [loss] = data["losses"]
    assert loss["object"] == "child.note" and loss["blocks"]
    assert loss["what"] == "the column is not carried over"
    assert rows(data)["grandchild"] == (2, 2)  # foreign keys OFF, as `run` applies it

    # A rebuild without the pragma (projects whose own runner turns foreign keys off write
    # them so) still runs with foreign keys off: the DROP TABLE does not cascade.
    db, folder = setup(tmp_path / "no-pragma", lossy)
    data = rehearse_json(invoke, db, folder, 15)
    assert rows(data)["grandchild"] == (2, 2)
    assert [x["object"] for x in data["losses"]] == ["child.note"]


def test_renamed_table_and_column_are_not_losses(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = setup(
        tmp_path,
        "ALTER TABLE t RENAME COLUMN a TO b;",
        "ALTER TABLE t RENAME TO things;",
    )
    data = rehearse_json(invoke, db, folder, 0)
    assert data["losses"] == []
    [t] = [t for t in data["tables"] if t["table"] == "t"]
    assert t == {"table": "t", "before": 5, "after": 5, "now": "things"}


def test_rows_a_delete_removed_stay_explained_through_a_later_rebuild(
    tmp_path: Path, invoke: Invoke
) -> None:
    # fpx-studio: DELETE FROM settings in 0009, settings rebuilt in 0021
    db, folder = setup(tmp_path, "DELETE FROM t WHERE a IS NULL;", rebuild())
    data = rehearse_json(invoke, db, folder, 0)
    [loss] = data["losses"]
    assert (loss["object"], loss["lost"], loss["verdict"]) == ("t", 2, "explained")
    assert loss["explained_by"] == "0001_step statement 1"


def test_a_table_without_a_primary_key_is_matched_row_by_row(
    tmp_path: Path, invoke: Invoke
) -> None:
    # srcbook's config(baseDir) has no key: its rows are matched by rowid, not lost
    db = tmp_path / "app.db"
    first = [("0000_init", "CREATE TABLE config (baseDir text NOT NULL);")]
    applied(db, write_journal(tmp_path / "done", first), backup=Policy.NEVER)
    make_db(db, "INSERT INTO config VALUES ('/a'), ('/b'), ('/c');")
    later = [
        "ALTER TABLE `config` RENAME COLUMN `baseDir` TO `base_dir`;\n"
        + BREAK
        + "ALTER TABLE `config` ADD `language` text DEFAULT 'ts' NOT NULL;",
        "UPDATE `config` SET `base_dir` = json_object('path', `base_dir`);",
    ]
    folder = write_journal(
        tmp_path / "m", [*first, *((f"000{i}_step", sql) for i, sql in enumerate(later, 1))]
    )
    data = rehearse_json(invoke, db, folder, 0)
    assert data["losses"] == [] and rows(data)["config"] == (3, 3)  # the path is kept inside


def test_vanished_trigger_blocks_vanished_index_warns_explicit_drop_explains(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, folder = setup(tmp_path, rebuild(keep_trigger=False, keep_index=False))
    data = rehearse_json(invoke, db, folder, 15)
    found = losses(data)
    assert found["t_audit"]["what"] == "trigger" and found["t_audit"]["blocks"]
    assert found["t_a_idx"]["what"] == "index" and found["t_a_idx"]["verdict"] == "warn"
    assert data["blocking"] == 1

    db, folder = setup(tmp_path / "explicit", "DROP TRIGGER t_audit;", "DROP INDEX t_a_idx;")
    data = rehearse_json(invoke, db, folder, 0)
    assert {loss["object"]: loss["verdict"] for loss in data["losses"]} == {
        "t_a_idx": "explained",
        "t_audit": "explained",
    }


def test_a_table_dropped_with_rows_blocks_until_acknowledged(
    tmp_path: Path, invoke: Invoke
) -> None:
    db, folder = setup(tmp_path, "DROP TABLE grandchild;")
    data = rehearse_json(invoke, db, folder, 15)
    assert rows(data)["grandchild"] == (2, None)
    [loss] = data["losses"]  # its rows; their values go with them, not said twice
    assert (loss["kind"], loss["object"], loss["before"], loss["lost"]) == (
        "rows",
        "grandchild",
        2,
        2,
    )
    assert loss["what"] == "the table is dropped by 0001_step statement 1"
    db, folder = setup(tmp_path / "acked", "DROP TABLE grandchild;")
    result = invoke(
        "rehearse", "--db", db, "--migrations", folder, "--json", "--allow", "drop-table=grandchild"
    )
    assert result.exit_code == 0, result.stderr


def test_not_null_trap_fails_on_the_copy_with_sqlites_error(tmp_path: Path, cli: Cli) -> None:
    db, folder = fixture_db(tmp_path, "not-null-trap", 1, "not-null-trap.sql")
    before = db_state(db)
    proc = cli("rehearse", "--db", db, "--migrations", folder)
    line = assert_one_clear_error(proc, 15, "0001_add_stock", "failed on the copy")
    assert "Cannot add a NOT NULL column with default value NULL" in line
    assert "FAILED on the copy" in proc.stdout and "products  2 -> 2" in proc.stdout
    assert_unchanged(db, before)
    proc = cli("rehearse", "--db", db, "--migrations", folder, "--json")
    assert proc.returncode == 15
    data = json.loads(proc.stdout)
    assert data["verdict"] == "fail" and data["applied"] == []
    assert data["failed"]["migration"] == "0001_add_stock"
    assert "Cannot add a NOT NULL column" in data["failed"]["error"]
    assert_unchanged(db, before)


def test_shop_rehearses_cleanly_keeping_every_review(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = fixture_db(tmp_path, "shop", 3, "shop-reviews-only.sql")
    before = db_state(db)
    data = rehearse_json(invoke, db, folder, 15)
    assert (
        data["applied"]
        == data["pending"]
        == [
            "0003_price_to_integer",
            "0004_rename_product_name_to_title",
            "0005_drop_user_name",
        ]
    )
    # every row kept through the products rebuild (drizzle's migrator empties reviews here);
    # the two true losses: '12.50' is stored as 12.5 in an integer column, and users.name
    assert rows(data) == {"orders": (0, 0), "products": (3, 3), "reviews": (4, 4), "users": (2, 2)}
    assert {x["object"]: (x["lost"], x["before"], x["what"]) for x in data["losses"]} == {
        "products.price": (1, 3, "changed in products.price"),
        "users.name": (2, 2, "the column is dropped by 0005_drop_user_name statement 1"),
    }
    assert all(x["blocks"] for x in data["losses"])
    assert_unchanged(db, before)


def test_json_shape_and_cost(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = fixture_db(tmp_path, "shop", 3, "shop-reviews-only.sql")
    data = rehearse_json(invoke, db, folder, 15)
    assert set(data) == {
        "database",
        "database_exists",
        "migrations_dir",
        "format",
        "history_table",
        "pending",
        "applied",
        "failed",
        "tables",
        "losses",
        "blocking",
        "verdict",
        "cost",
    }
    assert data["database_exists"] is True and data["format"] == "drizzle-journal"
    assert data["history_table"] == "__drizzle_migrations"
    assert "__drizzle_migrations" not in rows(data)
    assert set(data["losses"][0]) == {
        "kind",
        "object",
        "rule",
        "before",
        "lost",
        "what",
        "verdict",
        "blocks",
        "explained_by",
        "acknowledged_by",
        "message",
    }
    cost = data["cost"]
    assert set(cost) == {"snapshot_ms", "apply_ms", "compare_ms", "total_ms", "snapshot_bytes"}
    assert all(cost[k] >= 0 for k in cost)
    assert cost["snapshot_bytes"] == db.stat().st_size
    text = invoke("rehearse", "--db", db, "--migrations", folder).stdout
    assert "cost:    snapshot " in text and " ms" in text and "rows before -> after:" in text


def test_missing_database_has_nothing_to_rehearse(tmp_path: Path, invoke: Invoke) -> None:
    db = tmp_path / "absent.db"
    folder = FIXTURES / "drizzle-journal" / "shop"
    data = rehearse_json(invoke, db, folder, 0)
    assert data["database_exists"] is False and data["verdict"] == "nothing to rehearse"
    assert len(data["pending"]) == 6 and data["tables"] == []
    text = invoke("rehearse", "--db", db, "--migrations", folder)
    assert text.exit_code == 0 and "nothing to rehearse on" in text.stdout
    assert not db.exists()


def test_nothing_pending(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = setup(tmp_path)
    data = rehearse_json(invoke, db, folder, 0)
    assert data["pending"] == [] and data["verdict"] == "pass"
    assert "nothing to apply" in invoke("rehearse", "--db", db, "--migrations", folder).stdout


def test_the_copy_is_removed_on_success_failure_and_refusal(tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    db, folder = setup(tmp_path, "ALTER TABLE t ADD stock integer NOT NULL;")
    before = db_state(db)
    report = rehearse(Options(db_path=db, migrations_dir=folder), workdir=work)
    assert report.failure is not None and report.problems()
    assert list(work.iterdir()) == []
    (folder / "0000_init.sql").write_text(INIT + "\n-- edited after it was applied")
    with pytest.raises(PlanRefused):
        rehearse(Options(db_path=db, migrations_dir=folder), workdir=work)
    assert list(work.iterdir()) == []
    assert_unchanged(db, before)


def test_one_transaction_failure_names_no_single_migration(tmp_path: Path) -> None:
    db, folder = setup(
        tmp_path, "CREATE TABLE u (id integer);", "ALTER TABLE t ADD s int NOT NULL;"
    )
    report = rehearse(Options(db_path=db, migrations_dir=folder, one_transaction=True))
    assert report.applied == [] and report.failure is not None
    assert report.failure.migration is None and "0002_step" in report.failure.error
    report = rehearse(Options(db_path=db, migrations_dir=folder))
    assert report.applied == ["0001_step"] and report.failure is not None
    assert report.failure.migration == "0002_step"


def _before_rows(report: Any, table: str) -> int:
    return int(next(t.before for t in report.tables if t.table == table))


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """How each snapshot was taken: "online" (the backup API) or "file" (a kernel copy)."""
    from entrypoint.safety import rehearsal

    used: list[str] = []
    real = rehearsal.online_copy

    def online(source: Any, target: Path) -> None:
        used.append("online")
        real(source, target)

    monkeypatch.setattr(rehearsal, "online_copy", online)
    return used


def test_the_snapshot_holds_the_rows_still_in_the_wal(tmp_path: Path, copies: list[str]) -> None:
    """With frames in the WAL (a writer still connected, no checkpoint) the snapshot is the
    backup API's and holds them; once the WAL is gone, a file copy, and the same rows."""
    db, folder = setup(tmp_path, "CREATE TABLE u (id integer);")
    writer = sqlite3.connect(db, isolation_level=None)
    try:
        writer.execute("PRAGMA wal_autocheckpoint = 0")
        writer.execute("INSERT INTO t (id, a) VALUES (6, 'only in the wal')")
        assert (db.parent / "app.db-wal").stat().st_size > 0
        report = rehearse(Options(db_path=db, migrations_dir=folder))
        assert copies == ["online"]
        assert _before_rows(report, "t") == 6
    finally:
        writer.close()  # the last connection checkpoints and removes the WAL
    assert not (db.parent / "app.db-wal").exists()
    before = db_state(db)
    report = rehearse(Options(db_path=db, migrations_dir=folder))
    assert copies == ["online"]  # no second online copy: the file was copied
    assert _before_rows(report, "t") == 6
    assert_unchanged(db, before)


@pytest.mark.parametrize("journal", ["wal", "delete"])
def test_snapshots_taken_while_a_writer_commits_are_consistent(
    tmp_path: Path, journal: str, copies: list[str]
) -> None:
    """A writer commits pairs of rows throughout: every snapshot holds whole pairs, by
    either way of copying (rollback journal: always the file; WAL: as the WAL allows)."""
    db, folder = setup(tmp_path, "CREATE TABLE u (id integer);")
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.close()
    stop = threading.Event()

    def write() -> None:
        w = sqlite3.connect(db, isolation_level=None, timeout=30)
        try:
            n = 100
            while not stop.is_set():
                w.execute("BEGIN IMMEDIATE")
                w.execute("INSERT INTO t (id, a) VALUES (?, 'x'), (?, 'y')", (n, n + 1))
                w.execute("COMMIT")
                n += 2
        finally:
            w.close()

    thread = threading.Thread(target=write)
    thread.start()
    try:
        counts = [
            _before_rows(rehearse(Options(db_path=db, migrations_dir=folder)), "t")
            for _ in range(8)
        ]
    finally:
        stop.set()
        thread.join()
    assert all((c - 5) % 2 == 0 for c in counts), counts  # 5 seeded rows, then pairs
    assert counts == sorted(counts) and counts[-1] > 5
    if journal == "delete":
        assert copies == []


def test_counting_the_snapshot_on_its_own_connection_counts_what_the_judge_would(
    tmp_path: Path,
) -> None:
    """The rehearsal counts `before` on a second connection while the migrations run; the
    judge used to count it attached. Both must give the same numbers."""
    from entrypoint.safety.judge import BEFORE, measure, measure_file

    before = tmp_path / "before.db"
    with sqlite3.connect(before) as conn:
        conn.executescript(
            """
            CREATE TABLE "odd name" (id integer PRIMARY KEY, a text, b blob);
            CREATE TABLE items (id integer PRIMARY KEY, note text);
            CREATE TABLE __drizzle_migrations (id integer PRIMARY KEY, hash text);
            INSERT INTO "odd name" (a, b) VALUES ('x', NULL), (NULL, x'00'), ('y', x'01');
            INSERT INTO items (note) VALUES ('n'), (NULL);
            INSERT INTO __drizzle_migrations (hash) VALUES ('h');
            """
        )
    conn.close()
    skip = ["__drizzle_migrations"]
    alone = measure_file(before, skip)
    with sqlite3.connect(":memory:") as conn:
        conn.execute(f"ATTACH DATABASE ? AS {BEFORE}", (f"file:{before}?mode=ro",))
        attached = measure(conn, skip, schema_name=BEFORE)
    conn.close()
    assert alone == attached
    assert alone.rows == {"odd name": 3, "items": 2}
    assert alone.values["odd name"] == {"id": 3, "a": 2, "b": 2}
