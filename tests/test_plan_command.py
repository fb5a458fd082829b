"""`entrypoint plan`: statements and findings per pending migration; exit 15 when one blocks."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

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

from entrypoint.settings import Policy

Invoke = Callable[..., Any]
FIXTURES = ROOT / "tests" / "fixtures"


def fixture_db(tmp_path: Path, name: str, upto: int, seed: str) -> tuple[Path, Path]:
    """The fixture's first `upto` migrations applied, then the seed (a file in seeds/ or SQL)."""
    folder = tmp_path / name
    shutil.copytree(FIXTURES / "drizzle-journal" / name, folder)
    partial = tmp_path / f"{name}-applied"
    shutil.copytree(folder, partial)
    journal_path = partial / "meta" / "_journal.json"
    journal = json.loads(journal_path.read_text())
    journal["entries"] = journal["entries"][:upto]
    journal_path.write_text(json.dumps(journal))
    db = tmp_path / "app.db"
    applied(db, partial, backup=Policy.NEVER)
    sql = seed if " " in seed else (FIXTURES / "seeds" / seed).read_text()
    make_db(db, sql)
    return db, folder


def plan_json(invoke: Invoke, db: Path, folder: Path, code: int) -> dict[str, Any]:
    result = invoke("plan", "--db", db, "--migrations", folder, "--json")
    assert result.exit_code == code, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def findings(data: dict[str, Any]) -> list[dict[str, Any]]:
    return [f for m in data["migrations"] for f in m["findings"]]


def test_not_null_trap_is_blocked_with_the_row_count(tmp_path: Path, cli: Cli) -> None:
    db, folder = fixture_db(tmp_path, "not-null-trap", 1, "not-null-trap.sql")
    before = db_state(db)
    proc = cli("plan", "--db", db, "--migrations", folder)
    line = assert_one_clear_error(proc, 15, "0001_add_stock", "add-not-null-without-default")
    assert "products has 2 row(s)" in line
    assert "0001_add_stock" in proc.stdout and "ALTER TABLE `products` ADD `stock`" in proc.stdout
    assert "BLOCK" in proc.stdout and "hint: give the column a DEFAULT" in proc.stdout
    assert_unchanged(db, before)
    proc = cli("plan", "--db", db, "--migrations", folder, "--json")
    assert proc.returncode == 15
    data = json.loads(proc.stdout)
    assert data["blocking"] == 1 and data["analysis"] == "live"
    [migration] = data["migrations"]
    assert migration["name"] == "0001_add_stock" and migration["state"] == "pending"
    assert migration["statements"] == [
        {"number": 1, "sql": "ALTER TABLE `products` ADD `stock` integer NOT NULL;"}
    ]
    [finding] = migration["findings"]
    assert finding == {
        "rule": "add-not-null-without-default",
        "severity": "block",
        "migration": "0001_add_stock",
        "statement": 1,
        "message": finding["message"],
        "hint": finding["hint"],
        "object": "products.stock",
        "kind": "failure",
        "acknowledged": None,
        "blocks": True,
    }
    assert "2 row(s)" in finding["message"]
    assert_unchanged(db, before)


def test_shop_rebuild_rename_and_dropped_column(tmp_path: Path, invoke: Invoke) -> None:
    db, folder = fixture_db(tmp_path, "shop", 3, "shop-reviews-only.sql")
    before = db_state(db)
    data = plan_json(invoke, db, folder, 15)
    assert [m["name"] for m in data["migrations"]] == [
        "0003_price_to_integer",
        "0004_rename_product_name_to_title",
        "0005_drop_user_name",
    ]
    found = {(f["migration"][:4], f["rule"], f["object"]): f for f in findings(data)}
    child = found[("0003", "rebuild-has-children", "reviews")]
    assert child["severity"] == "info"
    assert "ON DELETE CASCADE" in child["message"] and "4 row(s)" in child["message"]
    assert "a plain migrator would empty them" in child["message"]
    assert found[("0003", "rebuild-has-children", "orders")]["severity"] == "info"
    lossy = found[("0003", "type-change-lossy", "products.price")]
    assert "1 value(s)" in lossy["message"]
    assert found[("0004", "rename", "products.name")]["severity"] == "warn"
    dropped = found[("0005", "drop-column-with-data", "users.name")]
    assert dropped["blocks"] and "2 non-NULL" in dropped["message"]
    assert not any(f["rule"] == "drop-table-with-rows" for f in findings(data))
    # issue 16: none of the three can run beside the version before them
    assert data["expand_only"] is False
    assert [line.split(":")[0] for line in data["contract_changes"]] == [
        "0003_price_to_integer statement 4",
        "0004_rename_product_name_to_title statement 1",
        "0005_drop_user_name statement 1",
    ]
    assert "rebuilds table products" in data["contract_changes"][0]
    text = invoke("plan", "--db", db, "--migrations", folder)
    assert "not expand-only: 0003_price_to_integer statement 4: rebuilds table products" in (
        text.stdout
    )
    assert "(and 2 more: --json lists them)" in text.stdout
    assert_unchanged(db, before)


def test_nothing_blocks_exits_0(tmp_path: Path, invoke: Invoke) -> None:
    folder = write_journal(
        tmp_path / "m", [("0000_init", "CREATE TABLE t (id integer PRIMARY KEY, a text);")]
    )
    db = make_db(tmp_path / "app.db", "CREATE TABLE other (id integer);")
    data = plan_json(invoke, db, folder, 0)
    assert data["blocking"] == 0 and findings(data) == []
    assert data["expand_only"] is True and data["contract_changes"] == []
    text = invoke("plan", "--db", db, "--migrations", folder)
    assert text.exit_code == 0 and "findings: none" in text.stdout
    assert "nothing blocks" in text.stdout
    assert "expand-only: the version running now can keep serving" in text.stdout


def test_missing_database_is_empty_and_static(tmp_path: Path, invoke: Invoke) -> None:
    db = tmp_path / "absent.db"
    data = plan_json(invoke, db, FIXTURES / "drizzle-journal" / "shop", 0)
    assert data["database_exists"] is False and data["analysis"] == "static"
    assert len(data["migrations"]) == 6
    assert {f["rule"] for f in findings(data)} == {
        "pragma-foreign-keys",
        "rebuild-has-children",
        "rename",
    }
    assert not db.exists()


def test_acknowledged_finding_is_reported_but_does_not_block(
    tmp_path: Path, invoke: Invoke
) -> None:
    seed = "INSERT INTO users (id, email, name) VALUES (1, 'a@x', 'A'), (2, 'b@x', 'B');"
    db, folder = fixture_db(tmp_path, "shop", 5, seed)
    path = folder / "0005_drop_user_name.sql"
    path.write_text("-- litedeploy: allow drop-column users.name\n" + path.read_text())
    data = plan_json(invoke, db, folder, 0)
    [finding] = findings(data)
    assert finding["acknowledged"] and not finding["blocks"] and "2 non-NULL" in finding["message"]
    text = invoke("plan", "--db", db, "--migrations", folder)
    assert text.exit_code == 0 and "BLOCK (ACKNOWLEDGED)" in text.stdout


def test_nothing_pending(tmp_path: Path, invoke: Invoke) -> None:
    folder = write_journal(tmp_path / "m", [("0000_init", "CREATE TABLE t (id integer);")])
    db = tmp_path / "app.db"
    applied(db, folder, backup=Policy.NEVER)
    data = plan_json(invoke, db, folder, 0)
    assert data["migrations"] == []
    assert "nothing to apply" in invoke("plan", "--db", db, "--migrations", folder).stdout


def test_plan_reports_source_errors_like_other_commands(tmp_path: Path, invoke: Invoke) -> None:
    result = invoke("plan", "--db", tmp_path / "app.db", "--migrations", tmp_path / "nowhere")
    assert result.exit_code == 3


def test_plan_predicts_what_sqlite_refuses_on_these_rows(tmp_path: Path, cli: Cli) -> None:
    """What only the rehearsal used to catch: a non-constant default on a table with rows,
    a CHECK the rows break, counted against the schema each statement meets."""
    db, folder = fixture_db(tmp_path, "not-null-trap", 1, "not-null-trap.sql")
    steps = [
        ("0001_add_stock", "ALTER TABLE `products` ADD `added_at` integer DEFAULT (unixepoch());"),
        (
            "0002_kind",
            "ALTER TABLE `products` ADD `kind` text DEFAULT 'x' CHECK (kind IN ('a', 'b'));",
        ),
    ]
    for name, sql in steps:
        (folder / f"{name}.sql").write_text(sql)
    journal_path = folder / "meta" / "_journal.json"
    journal = json.loads(journal_path.read_text())
    last = journal["entries"][-1]
    journal["entries"].append(
        {**last, "idx": last["idx"] + 1, "tag": "0002_kind", "when": last["when"] + 1}
    )
    journal_path.write_text(json.dumps(journal))
    before = db_state(db)
    proc = cli("plan", "--db", db, "--migrations", folder)
    line = assert_one_clear_error(proc, 15, "2 blocking finding(s)", "non-constant-default")
    assert "products has 2 row(s): SQLite refuses it (Cannot add a column with non-constant" in line
    assert "check-violated" in proc.stdout and "2 row(s) would not meet CHECK" in proc.stdout
    assert_unchanged(db, before)
