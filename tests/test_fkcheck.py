"""The foreign key check limited to what a migration can change (engine/fkcheck.py) reports
exactly what two whole-database `PRAGMA foreign_key_check` runs report, on real files."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from entrypoint.engine import fkcheck
from entrypoint.engine.apply import _ForeignKeys
from entrypoint.engine.sources import Migration

SHOP = """
CREATE TABLE products (id integer PRIMARY KEY NOT NULL, name text NOT NULL, price text);
CREATE TABLE reviews (id integer PRIMARY KEY, product_id integer NOT NULL
  REFERENCES products(id) ON DELETE CASCADE, body text);
CREATE TABLE users (id integer PRIMARY KEY, email text UNIQUE);
CREATE TABLE orders (id integer PRIMARY KEY, user_id integer REFERENCES users(id),
  product_id integer REFERENCES products(id));
CREATE TABLE notes (id integer PRIMARY KEY, user_email text REFERENCES users(email));
CREATE TABLE history (id integer PRIMARY KEY, name text);
INSERT INTO products VALUES (1, 'lamp', '10'), (2, 'desk', '20'), (3, 'mug', '3');
INSERT INTO reviews VALUES (1, 1, 'ok'), (2, 2, 'fine'), (3, 3, 'good');
INSERT INTO users VALUES (1, 'a@x'), (2, 'b@x');
INSERT INTO orders VALUES (1, 1, 1), (2, 2, 3);
INSERT INTO notes VALUES (1, 'a@x');
"""

REBUILD_PRODUCTS = """PRAGMA foreign_keys=OFF;
CREATE TABLE __new_products (id integer PRIMARY KEY NOT NULL, name text NOT NULL, price integer);
INSERT INTO __new_products (id, name, price) SELECT id, name, price FROM products {where};
DROP TABLE products;
ALTER TABLE __new_products RENAME TO products;
PRAGMA foreign_keys=ON;
"""


def make_db(path: Path, extra: str = "") -> Path:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(SHOP + extra)
    conn.close()
    return path


def migration(tmp_path: Path, sql: str) -> Migration:
    path = tmp_path / "0001_m.sql"
    path.write_text(sql)
    return Migration("0001_m", path, "hash", None, sql)


def run_statements(conn: sqlite3.Connection, m: Migration) -> None:
    from entrypoint.engine.sqltext import TxControl

    for statement, op in zip(m.statements, m.ops, strict=True):
        if isinstance(op, TxControl) or statement.is_foreign_keys_pragma:
            continue
        conn.execute(statement.sql)


def whole(db: Path, m: Migration) -> list[fkcheck.Violation]:
    """The reference: whole-database check before and after, foreign keys off, rolled back."""
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        before = fkcheck.violations(conn)
        run_statements(conn, m)
        after = fkcheck.violations(conn)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return sorted(after - before, key=lambda v: (v[0], v[1] or 0))


def narrowed(db: Path, m: Migration, baseline: str) -> tuple[list[fkcheck.Violation], bool]:
    """The narrowed check as apply.py runs it, with each kind of baseline; and whether it
    fell back to the whole database."""
    snapshot = db.with_name("before.db")
    shutil.copyfile(db, snapshot)
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")
        base: fkcheck.Baseline | None = None
        if baseline == "known":
            version = fkcheck.data_version(conn)
            base = fkcheck.Known(fkcheck.violations(conn), version)
        elif baseline == "snapshot":
            base = fkcheck.Snapshot(snapshot)
        conn.execute("BEGIN IMMEDIATE")
        checks = _ForeignKeys(conn, [m], "history", set(), base)
        run_statements(conn, m)
        new, _ = checks.new(conn)
        conn.execute("ROLLBACK")
    finally:
        conn.close()
    return new, checks.whole


BASELINES = ["none", "known", "snapshot"]


def assert_same(tmp_path: Path, sql: str, *, extra: str = "", fallback: bool = False) -> list:
    db = make_db(tmp_path / "app.db", extra)
    m = migration(tmp_path, sql)
    expected = whole(db, m)
    for baseline in BASELINES:
        got, was_whole = narrowed(db, m, baseline)
        assert got == expected, baseline
        assert was_whole is fallback, baseline
    return expected


def test_a_rebuilt_parent_that_loses_a_row_breaks_its_children(tmp_path: Path) -> None:
    new = assert_same(tmp_path, REBUILD_PRODUCTS.format(where="WHERE id <> 3"))
    assert new == [("orders", 2, "products", 0), ("reviews", 3, "products", 0)]


def test_a_rebuild_that_keeps_every_row_breaks_nothing(tmp_path: Path) -> None:
    assert assert_same(tmp_path, REBUILD_PRODUCTS.format(where="")) == []


def test_a_rebuilt_child_breaks_its_own_foreign_key(tmp_path: Path) -> None:
    sql = """PRAGMA foreign_keys=OFF;
CREATE TABLE __new_reviews (id integer PRIMARY KEY, product_id integer NOT NULL
  REFERENCES products(id) ON DELETE CASCADE, body text);
INSERT INTO __new_reviews (id, product_id, body) SELECT id, product_id + 1, body FROM reviews;
DROP TABLE reviews;
ALTER TABLE __new_reviews RENAME TO reviews;
"""
    assert assert_same(tmp_path, sql) == [("reviews", 3, "products", 0)]


def test_an_update_of_a_parent_key_and_a_delete_break_children(tmp_path: Path) -> None:
    sql = """PRAGMA foreign_keys=OFF;
UPDATE users SET email = 'c@x' WHERE id = 1;
DELETE FROM products WHERE id = 1;
"""
    new = assert_same(tmp_path, sql)
    assert new == [
        ("notes", 1, "users", 0),
        ("orders", 1, "products", 0),
        ("reviews", 1, "products", 0),
    ]


def test_an_update_in_a_child_breaks_it(tmp_path: Path) -> None:
    sql = "PRAGMA foreign_keys=OFF;\nUPDATE orders SET user_id = 9 WHERE id = 2;\n"
    assert assert_same(tmp_path, sql) == [("orders", 2, "users", 1)]


def test_a_statement_the_parser_cannot_read_checks_the_whole_database(tmp_path: Path) -> None:
    sql = (
        "PRAGMA foreign_keys=OFF;\n"
        "WITH gone AS (SELECT 2 AS id) DELETE FROM products WHERE id IN (SELECT id FROM gone);\n"
    )
    new = assert_same(tmp_path, sql, fallback=True)
    assert new == [("reviews", 2, "products", 0)]


def test_a_trigger_on_a_written_table_checks_the_whole_database(tmp_path: Path) -> None:
    trigger = """
CREATE TRIGGER users_gone AFTER DELETE ON history BEGIN DELETE FROM users WHERE id = 2; END;
INSERT INTO history VALUES (1, 'x');
"""
    sql = "PRAGMA foreign_keys=OFF;\nDELETE FROM history;\n"
    new = assert_same(tmp_path, sql, extra=trigger, fallback=True)
    assert new == [("orders", 2, "users", 1)]


def test_creating_a_trigger_checks_the_whole_database(tmp_path: Path) -> None:
    sql = """PRAGMA foreign_keys=OFF;
CREATE TRIGGER t AFTER INSERT ON history BEGIN DELETE FROM products WHERE id = 1; END;
INSERT INTO history VALUES (5, 'y');
"""
    new = assert_same(tmp_path, sql, fallback=True)
    assert new == [("orders", 1, "products", 0), ("reviews", 1, "products", 0)]


def test_violations_there_before_are_not_new(tmp_path: Path) -> None:
    # An orphan in an untouched table and one in a child of the rebuilt parent.
    extra = """
PRAGMA foreign_keys=OFF;
INSERT INTO notes VALUES (2, 'nobody@x');
INSERT INTO reviews VALUES (4, 77, 'orphan');
"""
    new = assert_same(tmp_path, REBUILD_PRODUCTS.format(where="WHERE id <> 2"), extra=extra)
    assert new == [("reviews", 2, "products", 0)]


def test_a_renamed_child_with_old_orphans_reports_them_as_the_whole_check_does(
    tmp_path: Path,
) -> None:
    extra = "PRAGMA foreign_keys=OFF;\nINSERT INTO reviews VALUES (4, 77, 'orphan');\n"
    sql = "PRAGMA foreign_keys=OFF;\nALTER TABLE reviews RENAME TO product_reviews;\n"
    assert assert_same(tmp_path, sql, extra=extra) == [("product_reviews", 4, "products", 0)]


# Rows enough that the mismatch is found on a copy of the schema, not by reading them all.
FILLED = (
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 500) "
    "INSERT INTO history (name) SELECT hex(randomblob(200)) FROM n;\n"
)
SIZES = pytest.mark.parametrize("fill", ["", FILLED], ids=["nearly-empty", "filled"])


def _sized(db: Path, fill: str) -> Path:
    conn = sqlite3.connect(db)
    try:
        assert fkcheck._nearly_empty(conn) is (fill == "")
    finally:
        conn.close()
    return db


@SIZES
def test_a_dropped_unique_index_of_a_parent_is_a_mismatch_either_way(
    tmp_path: Path, fill: str
) -> None:
    extra = "CREATE TABLE tags (name text);\nCREATE UNIQUE INDEX tags_name ON tags (name);\n"
    extra += "CREATE TABLE tagged (tag text REFERENCES tags(name));\n"
    db = _sized(make_db(tmp_path / "app.db", extra + fill), fill)
    m = migration(tmp_path, "PRAGMA foreign_keys=OFF;\nDROP INDEX tags_name;\n")
    with pytest.raises(sqlite3.OperationalError, match="foreign key mismatch"):
        whole(db, m)
    for baseline in BASELINES:
        with pytest.raises(sqlite3.OperationalError, match="foreign key mismatch"):
            narrowed(db, m, baseline)


@SIZES
def test_a_mismatch_outside_the_scope_is_raised_as_the_whole_check_raises_it(
    tmp_path: Path, fill: str
) -> None:
    extra = "CREATE TABLE loose (a text);\nCREATE TABLE pointing (x REFERENCES loose(a));\n"
    db = _sized(make_db(tmp_path / "app.db", extra + fill), fill)
    m = migration(tmp_path, REBUILD_PRODUCTS.format(where=""))
    with pytest.raises(sqlite3.OperationalError, match="foreign key mismatch"):
        whole(db, m)
    for baseline in BASELINES:
        with pytest.raises(sqlite3.OperationalError, match="foreign key mismatch"):
            narrowed(db, m, baseline)


def test_the_scope_of_a_rebuild_is_the_table_and_its_children(tmp_path: Path) -> None:
    db = make_db(tmp_path / "app.db")
    m = migration(tmp_path, REBUILD_PRODUCTS.format(where=""))
    conn = sqlite3.connect(db)
    try:
        written = fkcheck.touched(conn, [m])
        assert written == {"products", "__new_products"}
        assert fkcheck.scope(conn, written) == {"products", "reviews", "orders"}
        users = fkcheck.touched(conn, [migration(tmp_path, "UPDATE users SET email = 'z';")])
        assert fkcheck.scope(conn, users) == {"users", "orders", "notes"}
    finally:
        conn.close()


def test_a_known_baseline_is_not_used_after_another_connection_committed(
    tmp_path: Path,
) -> None:
    db = make_db(tmp_path / "app.db")
    conn = sqlite3.connect(db, isolation_level=None)
    other = sqlite3.connect(db, isolation_level=None)
    try:
        baseline = fkcheck.Known(fkcheck.violations(conn), fkcheck.data_version(conn))
        assert baseline.usable(conn)
        other.execute("PRAGMA foreign_keys = OFF")
        other.execute("INSERT INTO reviews VALUES (9, 99, 'orphan')")
        assert not baseline.usable(conn)
    finally:
        other.close()
        conn.close()


@pytest.mark.parametrize(
    ("sql", "same"),
    [
        (REBUILD_PRODUCTS.format(where=""), True),
        ("UPDATE products SET price = price * 100;", True),
        ("INSERT INTO history (name) SELECT name FROM products ORDER BY id;", True),
        ("UPDATE products SET price = abs(random());", False),
        ("INSERT INTO history (name) VALUES (hex(randomblob(4)));", False),
        ("UPDATE products SET name = datetime('now');", False),
        ("UPDATE products SET name = date();", False),
        ("ALTER TABLE products ADD seen integer DEFAULT (unixepoch()) NOT NULL;", False),
        ("UPDATE products SET name = CURRENT_TIMESTAMP;", False),
        (
            "INSERT INTO history (name) VALUES ('a'); UPDATE history SET id = last_insert_rowid();",
            False,
        ),
        ("UPDATE products SET name = strftime('%Y', '2020-01-01');", False),  # conservative
    ],
)
def test_repeatable_sql_gives_the_same_rows_on_the_same_data(
    tmp_path: Path, sql: str, same: bool
) -> None:
    assert fkcheck.repeatable([migration(tmp_path, sql)]) is same
