"""What the real `drizzle-kit push --force` does to a live SQLite database, step by step.

For each step N = 1..5 of the shop history, a database holds the first N committed
migrations (steps 0000..N-1, applied by our `entrypoint run`, which keeps every row of
0003's rebuild), seeded where the seed fits, and `drizzle-kit push` (0.31.11, harness
drizzle0) brings it to step N's declared schema (`tests/interop/drizzle_push.py`). The
assertions are the observed truth, each with a comment saying what push lost or kept; they
are the yardstick for our own push mode, which must lose nothing. A few cases run
drizzle-kit 1.0.0-rc.5 (harness drizzle1) where it behaves differently.

Seeds: steps 0001/0002 get EARLY_SEED (the shop's users, products and one order, before
`sku` and `reviews` exist); from 0003 on, the committed shop-reviews-only.sql /
shop-with-orders.sql go in after migration 0002, as in test_drizzle_interop.py.

Like the other interop tests these never skip: a missing node or node_modules fails.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from drizzle_push import (
    HERE,
    PushResult,
    drizzle_push,
    hints_file,
    normalised_schema,
    shop_step,
)
from harness import run_cli

pytestmark = pytest.mark.interop

ROOT = HERE.parent.parent
FIXTURES = ROOT / "tests" / "fixtures"
JOURNAL = FIXTURES / "drizzle-journal" / "shop"
SEEDS = FIXTURES / "seeds"
SEEDED_AFTER = 3  # the shop seeds go in after migrations 0000-0002
REVIEWS_ONLY = "shop-reviews-only.sql"
WITH_ORDERS = "shop-with-orders.sql"
EARLY = "early"  # EARLY_SEED, for databases before 0002
EARLY_SEED = """
INSERT INTO users(id, email, name) VALUES (1, 'olena@example.com', 'Olena'),
  (2, 'taras@example.com', 'Taras');
INSERT INTO products(id, name, price) VALUES (1, 'Lamp', '12.50'), (2, 'Desk', '99'),
  (3, 'Chair', '45');
INSERT INTO orders(user_id, product_id, quantity) VALUES (1, 1, 2);
"""
SEEDS_PARAMS = [
    pytest.param(REVIEWS_ONLY, id="reviews-only"),
    pytest.param(WITH_ORDERS, id="orders"),
]

Rows = dict[str, list[dict[str, Any]]]


# --------------------------------------------------------------------------------------
# Harness check (the rule of test_drizzle_interop.py: fail, never skip)


def require_harness(harness: str) -> None:
    folder = HERE / harness
    hint = f"run `npm ci --no-audit --no-fund` in tests/interop/{harness}"
    if shutil.which("node") is None:
        pytest.fail(f"node (Node.js 20+) is not on PATH: install it, then {hint}", pytrace=False)
    wanted = json.loads((folder / "package.json").read_text())["dependencies"]
    for package, version in wanted.items():
        manifest = folder / "node_modules" / package / "package.json"
        if not manifest.is_file():
            pytest.fail(
                f"tests/interop/{harness}/node_modules is incomplete: {hint}", pytrace=False
            )
        installed = json.loads(manifest.read_text())["version"]
        if installed != version:
            pytest.fail(
                f"{harness} has {package} {installed}, not {version}: {hint}", pytrace=False
            )


@pytest.fixture(autouse=True)
def _harnesses() -> None:
    require_harness("drizzle0")
    require_harness("drizzle1")


# --------------------------------------------------------------------------------------
# Databases at a step (built once per module, copied per test)


def first_migrations(n: int, dest: Path) -> Path:
    """A copy of the committed journal folder holding only its first n migrations."""
    shutil.copytree(JOURNAL, dest)
    journal_path = dest / "meta" / "_journal.json"
    journal = json.loads(journal_path.read_text())
    journal["entries"] = journal["entries"][:n]
    journal_path.write_text(json.dumps(journal, indent=2))
    kept = {e["tag"] for e in journal["entries"]}
    for sql in dest.glob("*.sql"):
        if sql.stem not in kept:
            sql.unlink()
            (dest / "meta" / f"{sql.stem[:4]}_snapshot.json").unlink(missing_ok=True)
    return dest


def migrate(db: Path, n: int) -> None:
    """Our entrypoint applies the first n migrations (it keeps the rows 0003 rebuilds)."""
    folder = first_migrations(n, db.parent / f"migrations-{n}")
    proc = run_cli(
        "run", "--db", db, "--migrations", folder, "--format", "drizzle-journal",
        "--findings", "warn", "--env", "staging", "--no-rehearse",
        "--backup", "never", "--journal-mode", "delete",
        cwd=db.parent,
    )  # fmt: skip
    assert proc.returncode == 0, f"entrypoint run exited {proc.returncode}:\n{proc.stderr}"
    shutil.rmtree(folder)


def run_sql(db: Path, script: str) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(script)


_TEMPLATES: dict[tuple[int, str | None], Path] = {}


def database(n: int, seed: str | None, dest: Path, factory: pytest.TempPathFactory) -> Path:
    """A copy of a database holding the first n migrations (steps 0000..n-1), seeded."""
    key = (n, seed)
    if key not in _TEMPLATES:
        db = factory.mktemp(f"at-{n}-{seed or 'empty'}") / "app.db"
        if seed in (REVIEWS_ONLY, WITH_ORDERS):
            assert n >= SEEDED_AFTER
            migrate(db, SEEDED_AFTER)
            run_sql(db, (SEEDS / seed).read_text())
            if n > SEEDED_AFTER:
                migrate(db, n)
        else:
            assert seed is None or (seed == EARLY and n <= 2)  # before sku and reviews
            if n:
                migrate(db, n)
            if seed == EARLY:
                run_sql(db, EARLY_SEED)
        _TEMPLATES[key] = db
    dest.mkdir(parents=True, exist_ok=True)
    db = dest / "app.db"
    if _TEMPLATES[key].exists():
        shutil.copyfile(_TEMPLATES[key], db)
    return db


def migrated_schema(n: int, factory: pytest.TempPathFactory) -> list[tuple[str, str, str]]:
    """What the committed migrations 0000..n-1 leave (unseeded), normalised."""
    return normalised_schema(database(n, None, factory.mktemp(f"reference-{n}"), factory))


# --------------------------------------------------------------------------------------
# Reading a database


def table_rows(db: Path) -> Rows:
    """Every row of every app table (drizzle's history left out), by rowid."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        conn.row_factory = sqlite3.Row
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name <> '__drizzle_migrations' ORDER BY name"
            )
        ]
        return {
            t: [dict(r) for r in conn.execute(f'SELECT * FROM "{t}" ORDER BY rowid')]
            for t in tables
        }


def counts(rows: Rows) -> dict[str, int]:
    return {table: len(r) for table, r in rows.items()}


def columns(db: Path, table: str) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return [r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')]


def dump(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return list(conn.iterdump())


def statements(result: PushResult) -> str:
    """The part of push's --verbose output listing the statements it ran."""
    marker = "You are about to execute current statements:"
    assert marker in result.output, result.output
    return result.output.split(marker, 1)[1]


def push_ok(schema_ts: Path, db: Path, **kwargs: Any) -> PushResult:
    result = drizzle_push(schema_ts, db, **kwargs)
    assert result.ok, result.output
    return result


def push_again_changes_nothing(schema_ts: Path, db: Path, **kwargs: Any) -> None:
    before = dump(db)
    result = push_ok(schema_ts, db, **kwargs)
    assert "No changes detected" in result.output, result.output
    assert dump(db) == before


def reshaped(rows: Rows, table: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Rows:
    """A copy of rows with `change` applied to every row of `table`."""
    return {t: [change(dict(r)) if t == table else dict(r) for r in rs] for t, rs in rows.items()}


def numeric_price(row: dict[str, Any]) -> dict[str, Any]:
    """'12.50' -> 12.5 and '99' -> 99: what INTEGER affinity stores on INSERT ... SELECT."""
    price = row["price"]
    return {**row, "price": float(price) if "." in price else int(price)}


def without(column: str) -> Callable[[dict[str, Any]], dict[str, Any]]:
    return lambda row: {k: v for k, v in row.items() if k != column}


# --------------------------------------------------------------------------------------
# Step by step (drizzle-kit 0.31, --force)


def test_push_0001_adds_sku_with_default_keeps_every_row(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(1, EARLY, tmp_path, tmp_path_factory)
    before = table_rows(db)
    assert counts(before) == {"orders": 1, "products": 3, "users": 2}

    result = push_ok(shop_step(1), db)

    assert "ALTER TABLE `products` ADD `sku` text DEFAULT '' NOT NULL;" in statements(result)
    # kept: every row; the new NOT NULL column is filled from its default
    assert table_rows(db) == reshaped(before, "products", lambda r: {**r, "sku": ""})
    assert normalised_schema(db) == migrated_schema(2, tmp_path_factory)
    push_again_changes_nothing(shop_step(1), db)


def test_push_0002_creates_reviews_keeps_every_row(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(2, EARLY, tmp_path, tmp_path_factory)
    before = table_rows(db)

    result = push_ok(shop_step(2), db)

    assert "CREATE TABLE `reviews`" in statements(result)
    assert "CREATE INDEX `reviews_product_idx`" in statements(result)
    # kept: every row; reviews is new and empty
    assert table_rows(db) == {**before, "reviews": []}
    assert normalised_schema(db) == migrated_schema(3, tmp_path_factory)


@pytest.mark.parametrize("seed", SEEDS_PARAMS)
def test_push_0003_rebuilds_products_with_foreign_keys_off_and_keeps_every_review(
    seed: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Unlike migration 0003 under drizzle's migrator (reviews cascaded away, or the orders'
    foreign key fails), push's PRAGMA foreign_keys=OFF takes effect: it runs outside a
    transaction (autocommit), so DROP TABLE products cascades into nothing."""
    db = database(3, seed, tmp_path, tmp_path_factory)
    before = table_rows(db)
    assert len(before["reviews"]) == 4

    result = push_ok(shop_step(3), db)

    sql = statements(result)
    assert sql.index("PRAGMA foreign_keys=OFF;") < sql.index("DROP TABLE `products`;")
    assert sql.index("DROP TABLE `products`;") < sql.index("PRAGMA foreign_keys=ON;")
    after = table_rows(db)
    # kept: all 4 reviews (and both orders with that seed); prices converted '12.50' -> 12.5
    assert after == reshaped(before, "products", numeric_price)
    assert [(r["price"]) for r in after["products"]] == [12.5, 99, 45]
    assert columns(db, "products") == ["id", "name", "price", "sku"]
    assert normalised_schema(db) == migrated_schema(4, tmp_path_factory)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    push_again_changes_nothing(shop_step(3), db)


@pytest.mark.parametrize("seed", SEEDS_PARAMS)
def test_push_0004_rename_answered_renames_in_place(
    seed: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(4, seed, tmp_path, tmp_path_factory)
    before = table_rows(db)
    renames = hints_file(shop_step(4))
    assert renames is not None

    result = push_ok(shop_step(4), db, renames=renames)  # the prompt, answered in a pty

    assert result.answers == ("products.title: renamed from name",)
    assert 'ALTER TABLE `products` RENAME COLUMN "name" TO "title";' in statements(result)
    # kept: every row and every product name, now under `title`
    assert table_rows(db) == reshaped(
        before, "products", lambda r: {"title" if k == "name" else k: v for k, v in r.items()}
    )
    assert columns(db, "products") == ["id", "title", "price", "sku"]
    assert normalised_schema(db) == migrated_schema(5, tmp_path_factory)
    push_again_changes_nothing(shop_step(4), db, renames=renames)


def test_push_0004_unanswered_rename_exits_0_and_changes_nothing(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Without a terminal drizzle-kit 0.31 cannot ask "created or renamed?": it prints an
    error and (sic) exits 0 having done nothing. PushResult.ok looks past the exit code."""
    db = database(4, REVIEWS_ONLY, tmp_path, tmp_path_factory)
    before = dump(db)

    result = drizzle_push(shop_step(4), db)

    assert result.returncode == 0  # drizzle-kit's exit code says success...
    assert "Interactive prompts require a TTY terminal" in result.output  # ...it is not
    assert not result.ok
    assert dump(db) == before  # kept: everything, nothing was run


def test_push_0004_answered_create_truncates_products_and_cascades_into_reviews(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(4, REVIEWS_ONLY, tmp_path, tmp_path_factory)
    before = table_rows(db)

    result = push_ok(shop_step(4), db, renames={"products.title": None})

    assert result.answers == ("products.title: created",)
    sql = statements(result)
    # a NOT NULL column without default on a non-empty table: push empties the table first
    assert sql.index("delete from products;") < sql.index(
        "ALTER TABLE `products` ADD `title` text NOT NULL;"
    )
    assert "ALTER TABLE `products` DROP COLUMN `name`;" in sql
    after = table_rows(db)
    # lost: every product, and every review with them (ON DELETE CASCADE, foreign keys ON)
    assert counts(after) == {**counts(before), "products": 0, "reviews": 0}
    assert after["users"] == before["users"]  # kept: users
    assert columns(db, "products") == ["id", "price", "sku", "title"]  # title goes last


def test_push_0004_answered_create_with_orders_fails_on_the_foreign_key_at_once(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(4, WITH_ORDERS, tmp_path, tmp_path_factory)
    before = dump(db)

    result = drizzle_push(shop_step(4), db, renames={"products.title": None})

    assert result.returncode == 1
    assert "FOREIGN KEY constraint failed" in result.output
    # kept: everything, because the failing `delete from products;` is the first statement
    # (push runs in autocommit: a later failure would leave the earlier statements applied)
    assert dump(db) == before


@pytest.mark.parametrize("seed", SEEDS_PARAMS)
def test_push_0005_drops_users_name_with_its_data_silently(
    seed: str, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(5, seed, tmp_path, tmp_path_factory)
    before = table_rows(db)
    assert [u["name"] for u in before["users"]][:2] == ["Olena", "Taras"]

    result = push_ok(shop_step(5), db)

    assert "ALTER TABLE `users` DROP COLUMN `name`;" in statements(result)
    assert "data loss" not in result.output.lower()  # --force: no word about the names
    # lost: every user's name; kept: every row of every table
    assert table_rows(db) == reshaped(before, "users", without("name"))
    assert columns(db, "users") == ["id", "email"]
    assert normalised_schema(db) == migrated_schema(6, tmp_path_factory)
    push_again_changes_nothing(shop_step(5), db)


def test_push_0005_without_force_cannot_confirm_and_changes_nothing(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(5, WITH_ORDERS, tmp_path, tmp_path_factory)
    before = dump(db)

    piped = drizzle_push(shop_step(5), db, force=False)
    # in a terminal, the data-loss question is left unanswered: drizzle-kit is killed
    in_pty = drizzle_push(shop_step(5), db, force=False, renames={})

    assert piped.returncode == 0 and not piped.ok  # exits 0 without a terminal, as above
    assert "Interactive prompts require a TTY terminal" in piped.output
    assert in_pty.returncode == -9 and not in_pty.ok
    assert in_pty.unanswered is not None and "No, abort" in in_pty.unanswered
    assert "You're about to delete name column in users table with 2 items" in in_pty.output
    assert "THIS ACTION WILL CAUSE DATA LOSS" in in_pty.output
    assert dump(db) == before  # kept: everything


def test_push_onto_an_empty_database_creates_the_full_schema(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = tmp_path / "new.db"  # no file yet: push creates it

    result = push_ok(shop_step(5), db)

    assert "DROP" not in statements(result)
    assert table_rows(db) == {"orders": [], "products": [], "reviews": [], "users": []}
    # the same tables and indexes as all six migrations, and no drizzle history table
    assert normalised_schema(db) == migrated_schema(6, tmp_path_factory)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    assert "__drizzle_migrations" not in names
    push_again_changes_nothing(shop_step(5), db)


# --------------------------------------------------------------------------------------
# drizzle-kit 1.0.0-rc.5 (harness drizzle1), where it differs


def test_drizzle1_push_0003_also_rebuilds_users_and_keeps_every_row(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(3, WITH_ORDERS, tmp_path, tmp_path_factory)
    before = table_rows(db)

    result = push_ok(shop_step(3), db, harness="drizzle1")

    # 1.0 wants UNIQUE inline, not drizzle-kit 0.x's users_email_unique index: users too is
    # rebuilt, and the index dropped
    assert "DROP TABLE `users`;" in result.output
    assert "DROP TABLE `products`;" in result.output
    assert "DROP INDEX IF EXISTS `users_email_unique`;" in result.output
    # kept: every row of every table (foreign keys off around both rebuilds)
    assert table_rows(db) == reshaped(before, "products", numeric_price)
    assert ("index", "users_email_unique") not in {(t, n) for t, n, _ in normalised_schema(db)}


def test_drizzle1_push_0005_force_still_wants_a_data_loss_hint(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(5, WITH_ORDERS, tmp_path, tmp_path_factory)
    before = dump(db)

    result = drizzle_push(shop_step(5), db, harness="drizzle1")  # --force, no terminal

    assert result.returncode == 2 and not result.ok
    assert "missing_hints" in result.output
    assert '"type": "confirm_data_loss", "kind": "column"' in result.output
    assert dump(db) == before  # kept: everything, users.name included


# --------------------------------------------------------------------------------------
# The helper itself


def test_shop_step_names() -> None:
    step = shop_step(4)
    assert step.is_absolute() and step.name == "0004_rename_product_name_to_title.ts"
    for alias in ("0004", "4", "0004_rename_product_name_to_title", "rename_product_name_to_title"):
        assert shop_step(alias) == step
    with pytest.raises(LookupError):
        shop_step(9)


def test_a_hang_becomes_a_timeout_and_the_work_folder_goes(tmp_path: Path) -> None:
    harness = HERE / "drizzle0"
    before = set(harness.glob(".push-*"))

    with pytest.raises(subprocess.TimeoutExpired):
        drizzle_push(shop_step(5), tmp_path / "app.db", timeout=0.05)
    with pytest.raises(subprocess.TimeoutExpired):
        drizzle_push(shop_step(5), tmp_path / "app.db", timeout=0.05, renames={})

    assert set(harness.glob(".push-*")) <= before
