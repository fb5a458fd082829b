"""Push mode's planner on its own: `plan_push` against real SQLite files, no subprocess.

test_push.py drives push end to end through the CLI; here the plan itself is read: which live
column feeds which declared one in a rebuild, what is counted as lost (and that nothing is
when nothing is), the exact SQL of the simple changes, and that running that SQL on the live
file gives the declared schema with every row kept. The live database is always opened
read-only while planning: the planner only reads.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from harness import make_db, query
from test_push import master, migrated, rows, snapshot

from entrypoint.engine.history import DRIZZLE_TABLE, PLAIN_TABLE
from entrypoint.pushplan.declared import Declared, from_file
from entrypoint.pushplan.planner import PushPlan, parse_renames, plan_push

HISTORY = (DRIZZLE_TABLE, PLAIN_TABLE)  # what push passes when no --history-table is given


# --- helpers -------------------------------------------------------------------------------------


def declare(where: Path, sql: str) -> Declared:
    path = where / "schema.sql"
    path.write_text(sql)
    return from_file(path)


def plan_of(db: Path, declared: Declared, *renames: str) -> PushPlan:
    """The plan, as push makes it, with the live file opened read-only."""
    with (
        contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as live,
        contextlib.closing(declared.load()) as want,
    ):
        return plan_push(
            live,
            want,
            parse_renames(renames),
            history_tables=HISTORY,
            sync_triggers=declared.kind == "schema.sql",
        )


def planned(
    tmp_path: Path, live_sql: str, declared_sql: str, *renames: str
) -> tuple[Path, Declared, PushPlan]:
    db = make_db(tmp_path / "app.db", live_sql)
    declared = declare(tmp_path, declared_sql)
    raw = db.read_bytes()
    plan = plan_of(db, declared, *renames)
    assert db.read_bytes() == raw
    return db, declared, plan


def apply(db: Path, plan: PushPlan) -> None:
    """The plan's statements in one transaction, foreign keys off around it (as push runs them)."""
    with contextlib.closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute("PRAGMA foreign_keys = OFF")
        conn.execute("BEGIN IMMEDIATE")
        for sql in plan.statements:
            conn.execute(sql)
        conn.execute("COMMIT")


def table_info(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """PRAGMA table_info of every table but SQLite's own and the history."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        names = [
            str(r[0])
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name NOT IN (?, ?) ORDER BY name",
                HISTORY,
            )
        ]
        return {
            n: conn.execute("SELECT * FROM pragma_table_info(?)", (n,)).fetchall() for n in names
        }


def assert_declared(db: Path, declared: Declared, where: Path) -> None:
    """The database's tables, columns, indexes, views and triggers are the declared ones."""
    where.mkdir()
    reference = where / "declared.db"
    with contextlib.closing(sqlite3.connect(reference)) as conn:
        for sql in declared.statements:
            conn.execute(sql)
    assert table_info(db) == table_info(reference)
    assert master(db) == master(reference)


def changes(plan: PushPlan) -> list[tuple[str, str, str, list[str]]]:
    return [(c.kind, c.object, c.detail, c.statements) for c in plan.changes]


def summaries(plan: PushPlan) -> list[str]:
    return [c.summary for c in plan.changes]


def risks(plan: PushPlan) -> list[tuple[str, str, int, bool]]:
    return [(r.kind, r.object, r.count, r.fits) for r in plan.risks]


# --- the rebuild's column mapping ----------------------------------------------------------------


def test_a_rebuild_feeds_each_declared_column_from_its_live_column(tmp_path: Path) -> None:
    """Kept columns by name, the answered rename from its old name, the dropped column from
    nothing, the new NOT NULL column left to its default, the retyped column converted."""
    db, declared, plan = planned(
        tmp_path,
        "CREATE TABLE t (id integer PRIMARY KEY, name text, old text, qty text, note text);"
        "INSERT INTO t VALUES (1, 'a', 'x', '3', 'n1'), (2, 'b', NULL, '4', NULL);",
        "CREATE TABLE t (id integer PRIMARY KEY, title text, qty integer, note text, "
        "flag integer NOT NULL DEFAULT 0);",
        "t.name=title",
    )
    assert changes(plan) == [
        (
            "rebuild table",
            "t",
            "qty: TEXT -> INTEGER, add flag, drop old",
            [
                'CREATE TABLE "__litedeploy_new_t" (id integer PRIMARY KEY, title text, '
                "qty integer, note text, flag integer NOT NULL DEFAULT 0);",
                'INSERT INTO "__litedeploy_new_t" ("id", "title", "qty", "note") '
                'SELECT "id", "name", "qty", "note" FROM "t";',
                'DROP TABLE "t";',
                'ALTER TABLE "__litedeploy_new_t" RENAME TO "t";',
            ],
        )
    ]
    # only the dropped column's one non-NULL value is lost: '3' and '4' convert to integers
    assert risks(plan) == [("drop-column", "t.old", 1, True)]
    assert plan.risks[0].message == "drops t.old with 1 non-NULL value(s)"
    assert plan.ignored == []

    apply(db, plan)
    assert query(db, "SELECT id, title, qty, typeof(qty), note, flag FROM t ORDER BY id") == [
        (1, "a", 3, "integer", "n1", 0),
        (2, "b", 4, "integer", None, 0),
    ]
    assert_declared(db, declared, tmp_path / "ref")


def test_without_the_rename_answered_the_old_column_feeds_nothing(tmp_path: Path) -> None:
    """A rename is never guessed: name -> title is a drop (counted) and an empty new column."""
    db, declared, plan = planned(
        tmp_path,
        "CREATE TABLE t (id integer PRIMARY KEY, name text);"
        "INSERT INTO t VALUES (1, 'a'), (2, NULL), (3, 'c');",
        "CREATE TABLE t (id integer PRIMARY KEY, title text);",
    )
    assert summaries(plan) == ["rebuild table t: add title, drop name"]
    assert plan.statements[1] == 'INSERT INTO "__litedeploy_new_t" ("id") SELECT "id" FROM "t";'
    assert risks(plan) == [("drop-column", "t.name", 2, True)]
    apply(db, plan)
    assert query(db, "SELECT id, title FROM t ORDER BY id") == [(1, None), (2, None), (3, None)]
    assert_declared(db, declared, tmp_path / "ref")


def test_a_new_not_null_over_nulls_copies_its_default_into_them(tmp_path: Path) -> None:
    db, declared, plan = planned(
        tmp_path,
        "CREATE TABLE t (id integer PRIMARY KEY, n text);INSERT INTO t VALUES (1, NULL), (2, 'x');",
        "CREATE TABLE t (id integer PRIMARY KEY, n text NOT NULL DEFAULT 'd');",
    )
    assert summaries(plan) == ["rebuild table t: n: NOT NULL, n: default None -> 'd'"]
    assert plan.statements[1] == (
        'INSERT INTO "__litedeploy_new_t" ("id", "n") SELECT "id", coalesce("n", \'d\') FROM "t";'
    )
    assert risks(plan) == [("not-null-over-nulls", "t.n", 1, True)]
    assert (
        plan.risks[0].message == "t.n becomes NOT NULL over 1 NULL(s), which become its default 'd'"
    )
    apply(db, plan)
    assert query(db, "SELECT id, n FROM t ORDER BY id") == [(1, "d"), (2, "x")]
    assert_declared(db, declared, tmp_path / "ref")


def test_a_rebuild_keeps_the_autoincrement_counter(tmp_path: Path) -> None:
    table = "CREATE TABLE t (id integer PRIMARY KEY AUTOINCREMENT, v {});"
    db, declared, plan = planned(
        tmp_path,
        table.format("text") + "INSERT INTO t (v) VALUES ('1'), ('2'), ('3');"
        "DELETE FROM t WHERE id = 3;",
        table.format("integer"),
    )
    assert summaries(plan) == [
        "rebuild table t: v: TEXT -> INTEGER, AUTOINCREMENT counter kept at 3"
    ]
    assert plan.statements[-1] == "UPDATE sqlite_sequence SET seq = 3 WHERE name = 't' AND seq < 3;"
    assert risks(plan) == []
    apply(db, plan)
    assert query(db, "SELECT seq FROM sqlite_sequence WHERE name = 't'") == [(3,)]
    assert_declared(db, declared, tmp_path / "ref")


def test_a_renamed_table_and_column_keep_their_rows_index_and_view(tmp_path: Path) -> None:
    db, declared, plan = planned(
        tmp_path,
        "CREATE TABLE item (id integer PRIMARY KEY, name text);"
        "CREATE INDEX item_name ON item (name);"
        "CREATE VIEW names AS SELECT name FROM item;"
        "INSERT INTO item VALUES (1, 'a'), (2, 'b');",
        "CREATE TABLE product (id integer PRIMARY KEY, title text);\n"
        "CREATE INDEX item_name ON product (title);\n"
        "CREATE VIEW names AS SELECT title FROM product;",
        "item=product",
        "product.name=title",
    )
    assert changes(plan) == [
        ("drop view", "names", "", ['DROP VIEW "names";']),
        ("drop index", "item_name", "", ['DROP INDEX "item_name";']),
        ("rename table", "item -> product", "", ['ALTER TABLE "item" RENAME TO "product";']),
        (
            "rename columns",
            "product",
            "rename name -> title",
            ['ALTER TABLE "product" RENAME COLUMN "name" TO "title";'],
        ),
        ("create index", "item_name", "on product", ["CREATE INDEX item_name ON product (title);"]),
        ("create view", "names", "", ["CREATE VIEW names AS SELECT title FROM product;"]),
    ]
    assert risks(plan) == []
    apply(db, plan)
    assert query(db, "SELECT id, title FROM product ORDER BY id") == [(1, "a"), (2, "b")]
    assert_declared(db, declared, tmp_path / "ref")


# --- what is counted -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("live", "declared", "expected"),
    [
        pytest.param(
            "CREATE TABLE t (id integer PRIMARY KEY);"
            "CREATE TABLE gone (x); CREATE TABLE empty (x);"
            "INSERT INTO gone VALUES (1), (2), (NULL);",
            "CREATE TABLE t (id integer PRIMARY KEY);",
            [("drop-table", "gone", 3, True)],  # every row, NULL or not; the empty table: none
            id="drop-table-rows",
        ),
        pytest.param(
            "CREATE TABLE t (id integer PRIMARY KEY, a text, b text);"
            "INSERT INTO t VALUES (1, 'x', NULL), (2, NULL, NULL), (3, 'y', NULL);",
            "CREATE TABLE t (id integer PRIMARY KEY);",
            [("drop-column", "t.a", 2, True)],  # non-NULL values only; b holds none
            id="drop-column-values",
        ),
        pytest.param(
            "CREATE TABLE t (id integer PRIMARY KEY, a text, c text, d real);"
            "INSERT INTO t VALUES (1, '12.50', '1e3', 2.5), (2, '7', 'abc', 3.0),"
            "(3, NULL, '', 4.0);",
            "CREATE TABLE t (id integer PRIMARY KEY, a integer, c real, d integer);",
            [
                ("type-change", "t.a", 1, True),  # '12.50'; '7' converts, NULL is no value
                ("type-change", "t.c", 2, True),  # 'abc' and ''; '1e3' converts
                ("type-change", "t.d", 1, True),  # 2.5; 3.0 converts
            ],
            id="type-change-values",
        ),
        pytest.param(
            "CREATE TABLE t (id integer PRIMARY KEY, n text);"
            "INSERT INTO t VALUES (1, NULL), (2, 'x'), (3, NULL);",
            "CREATE TABLE t (id integer PRIMARY KEY, n text NOT NULL);",
            [("not-null-over-nulls", "t.n", 2, False)],
            id="not-null-without-default",
        ),
        pytest.param(
            "CREATE TABLE t (id integer PRIMARY KEY, e text);"
            "INSERT INTO t VALUES (1, 'a'), (2, 'a'), (3, 'b'), (4, 'b'), (5, 'b'), (6, 'c'),"
            "(7, NULL), (8, NULL);",
            "CREATE TABLE t (id integer PRIMARY KEY, e text UNIQUE);",
            [("unique-over-duplicates", "t(e)", 2, False)],  # groups; NULLs never collide
            id="unique-constraint",
        ),
        pytest.param(
            "CREATE TABLE t (id integer PRIMARY KEY, e text);"
            "INSERT INTO t VALUES (1, 'a'), (2, 'a'), (3, 'b'), (4, 'b'), (5, 'c');",
            "CREATE TABLE t (id integer PRIMARY KEY, e text);\n"
            "CREATE UNIQUE INDEX t_e ON t (e) WHERE e <> 'a';",
            [("unique-over-duplicates", "t(e)", 1, False)],  # the 'a' pair is outside the WHERE
            id="partial-unique-index",
        ),
        pytest.param(
            "CREATE TABLE t (a text, b text);"
            "INSERT INTO t VALUES ('x', '1'), ('x', '1'), ('x', '2'), ('y', NULL), ('y', NULL);",
            "CREATE TABLE t (a text, b text, PRIMARY KEY (a, b));",
            [("unique-over-duplicates", "t(a, b)", 1, False)],
            id="composite-primary-key",
        ),
        pytest.param(
            "CREATE TABLE t (id integer PRIMARY KEY); INSERT INTO t VALUES (1), (2), (3);",
            "CREATE TABLE t (id integer PRIMARY KEY, n integer NOT NULL);",
            [("add-not-null-without-default", "t.n", 3, False)],  # every row would need a value
            id="add-not-null-without-default",
        ),
    ],
)
def test_what_would_be_lost_is_counted_on_the_live_rows(
    tmp_path: Path, live: str, declared: str, expected: list[tuple[str, str, int, bool]]
) -> None:
    _, _, plan = planned(tmp_path, live, declared)
    assert risks(plan) == expected


def test_when_nothing_is_lost_nothing_is_counted(tmp_path: Path) -> None:
    """Changes of every risky kind, each over data it cannot hurt."""
    db, declared, plan = planned(
        tmp_path,
        "CREATE TABLE t (id integer PRIMARY KEY, gone text, qty text, e text, n text);"
        "INSERT INTO t VALUES (1, NULL, '3', 'a', 'x'), (2, NULL, NULL, 'b', 'y'),"
        "(3, NULL, '-4', NULL, 'z');"
        "CREATE TABLE empty (id integer PRIMARY KEY);"
        "CREATE TABLE quiet (id integer PRIMARY KEY);",
        "CREATE TABLE t (id integer PRIMARY KEY, qty integer, e text UNIQUE, n text NOT NULL);\n"
        "CREATE TABLE quiet (id integer PRIMARY KEY, m integer NOT NULL);",
    )
    assert summaries(plan) == [
        "rebuild table t: qty: TEXT -> INTEGER, n: NOT NULL, drop gone, UNIQUE (e)",
        "rebuild table quiet: add m",  # NOT NULL without a default, on a table with no rows
        "drop table empty: 0 row(s)",
    ]
    assert plan.risks == []
    assert all(c.risks == [] for c in plan.changes)
    apply(db, plan)
    assert query(db, "SELECT id, qty, typeof(qty), e, n FROM t ORDER BY id") == [
        (1, 3, "integer", "a", "x"),
        (2, None, "null", "b", "y"),
        (3, -4, "integer", None, "z"),
    ]
    assert_declared(db, declared, tmp_path / "ref")


# --- the SQL of the simple changes, applied ------------------------------------------------------

BASE = "CREATE TABLE t (id integer PRIMARY KEY, name text);"
BASE_ROWS = "INSERT INTO t VALUES (1, 'a'), (2, NULL);"


@pytest.mark.parametrize(
    ("live", "declared", "expected"),
    [
        pytest.param(
            "",
            BASE,
            [("create table", "t", "", [BASE])],
            id="create-table-into-an-empty-database",
        ),
        pytest.param(
            BASE + BASE_ROWS,
            BASE + "\nCREATE TABLE u (id integer PRIMARY KEY, t_id integer REFERENCES t(id));",
            [
                (
                    "create table",
                    "u",
                    "",
                    ["CREATE TABLE u (id integer PRIMARY KEY, t_id integer REFERENCES t(id));"],
                )
            ],
            id="create-table",
        ),
        pytest.param(
            BASE + BASE_ROWS,
            "CREATE TABLE t (id integer PRIMARY KEY, name text, note text, "
            "n integer NOT NULL DEFAULT 7);",
            [
                (
                    "alter table",
                    "t",
                    "add note, add n",
                    [
                        'ALTER TABLE "t" ADD note text;',
                        'ALTER TABLE "t" ADD n integer NOT NULL DEFAULT 7;',
                    ],
                )
            ],
            id="add-columns",
        ),
        pytest.param(
            BASE + BASE_ROWS + "CREATE TABLE gone (x); CREATE INDEX gone_x ON gone (x);",
            BASE,
            [("drop table", "gone", "0 row(s)", ['DROP TABLE "gone";'])],  # its index goes with it
            id="drop-table",
        ),
        pytest.param(
            BASE + BASE_ROWS,
            BASE + "\nCREATE UNIQUE INDEX t_name ON t (name) WHERE name IS NOT NULL;",
            [
                (
                    "create index",
                    "t_name",
                    "on t",
                    ["CREATE UNIQUE INDEX t_name ON t (name) WHERE name IS NOT NULL;"],
                )
            ],
            id="create-index",
        ),
        pytest.param(
            BASE + BASE_ROWS + "CREATE INDEX t_name ON t (name);",
            BASE,
            [("drop index", "t_name", "", ['DROP INDEX "t_name";'])],
            id="drop-index",
        ),
        pytest.param(
            BASE + BASE_ROWS + "CREATE INDEX t_name ON t (name);",
            BASE + "\nCREATE INDEX t_name ON t (id, name);",
            [
                ("drop index", "t_name", "", ['DROP INDEX "t_name";']),
                ("create index", "t_name", "on t", ["CREATE INDEX t_name ON t (id, name);"]),
            ],
            id="change-index",
        ),
    ],
)
def test_simple_changes_are_the_expected_sql_and_give_the_declared_schema(
    tmp_path: Path, live: str, declared: str, expected: list[tuple[str, str, str, list[str]]]
) -> None:
    db, schema, plan = planned(tmp_path, live, declared)
    assert changes(plan) == expected
    assert plan.risks == []
    before = query(db, "SELECT id, name FROM t ORDER BY id") if live else []
    apply(db, plan)
    assert_declared(db, schema, tmp_path / "ref")
    assert query(db, "SELECT id, name FROM t ORDER BY id") == before  # every row kept


def test_an_answered_rename_and_an_added_column_need_no_rebuild(tmp_path: Path) -> None:
    db, declared, plan = planned(
        tmp_path,
        BASE + BASE_ROWS,
        "CREATE TABLE t (id integer PRIMARY KEY, title text, note text);",
        "t.name=title",
    )
    assert changes(plan) == [
        (
            "alter table",
            "t",
            "rename name -> title, add note",
            [
                'ALTER TABLE "t" RENAME COLUMN "name" TO "title";',
                'ALTER TABLE "t" ADD note text;',
            ],
        )
    ]
    assert plan.risks == []
    apply(db, plan)
    assert query(db, "SELECT id, title, note FROM t ORDER BY id") == [
        (1, "a", None),
        (2, None, None),
    ]
    assert_declared(db, declared, tmp_path / "ref")


# --- nothing to do -------------------------------------------------------------------------------

SCHEMA = """\
CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, qty integer DEFAULT 0);
CREATE INDEX items_name ON items (name);
CREATE TABLE audit (n integer);
CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN INSERT INTO audit VALUES (new.id); END;
CREATE VIEW item_names AS SELECT name FROM items;
"""


def test_a_database_that_already_is_the_declared_schema_gives_an_empty_plan(
    tmp_path: Path,
) -> None:
    """Written differently (quotes, case, spacing) is still the same schema; the tables push
    ignores are listed, never planned."""
    _, _, plan = planned(
        tmp_path,
        SCHEMA
        + "INSERT INTO items VALUES (1, 'a', 2);"
        + "CREATE TABLE __drizzle_migrations (id integer); CREATE TABLE _litestream_seq (x);",
        SCHEMA.replace("items (name)", '"items"  ( `name` )').replace("CREATE VIEW", "create view"),
    )
    assert plan.changes == []
    assert plan.statements == []
    assert plan.risks == []
    assert plan.ignored == ["__drizzle_migrations", "_litestream_seq"]


@pytest.mark.parametrize("fmt", ["journal", "folders"])
def test_a_migrated_database_against_its_own_snapshot_gives_an_empty_plan(
    tmp_path: Path, fmt: str
) -> None:
    db = migrated(fmt, 5, tmp_path / "db")
    plan = plan_of(db, from_file(snapshot(fmt, 5)))
    assert plan.changes == []
    assert plan.ignored == ["__drizzle_migrations"]


# --- a drizzle-kit snapshot: the shop after release 1, pushed to its newest snapshot --------------


@pytest.mark.parametrize("fmt", ["journal", "folders"])
def test_the_shop_pushed_to_its_newest_snapshot_matches_its_migrations(
    tmp_path: Path, fmt: str
) -> None:
    db = migrated(fmt, 2, tmp_path / "db")  # seeded: 2 users, 3 products, 4 reviews
    declared = from_file(snapshot(fmt, 5))
    plan = plan_of(db, declared, "products.name=title")
    rebuilt = [c for c in plan.changes if c.kind == "rebuild table"]
    assert [(c.object, c.detail) for c in rebuilt] == [
        ("products", "price: TEXT -> INTEGER"),
        ("users", "drop name"),
    ]
    assert rebuilt[0].statements[1] == (
        'INSERT INTO "__litedeploy_new_products" ("id", "title", "price", "sku") '
        'SELECT "id", "name", "price", "sku" FROM "products";'
    )
    assert rebuilt[1].statements[1] == (
        'INSERT INTO "__litedeploy_new_users" ("id", "email") SELECT "id", "email" FROM "users";'
    )
    assert risks(plan) == [
        ("type-change", "products.price", 1, True),  # '12.50'
        ("drop-column", "users.name", 2, True),
    ]
    apply(db, plan)
    reference = migrated(fmt, 5, tmp_path / "migrated")
    assert master(db) == master(reference)
    assert table_info(db) == table_info(reference)
    assert rows(db) == rows(reference)
    assert len(rows(db)["reviews"]) == 4  # the rebuilt parent's CASCADE children kept
    assert plan_of(db, declared).changes == []  # and pushing again has nothing left to do


# --- bugs found while writing these tests --------------------------------------------------------


@pytest.mark.parametrize("default", ["(CURRENT_TIMESTAMP)", "(unixepoch())", "CURRENT_TIMESTAMP"])
def test_a_new_column_with_a_non_constant_default_is_a_rebuild(
    tmp_path: Path, default: str
) -> None:
    db, declared, plan = planned(
        tmp_path,
        "CREATE TABLE t (id integer PRIMARY KEY); INSERT INTO t VALUES (1);",
        f"CREATE TABLE t (id integer PRIMARY KEY, created integer DEFAULT {default});",
    )
    assert [c.kind for c in plan.changes] == ["rebuild table"]
    apply(db, plan)
    assert query(db, "SELECT count(*) FROM t WHERE created IS NOT NULL") == [(1,)]
    assert_declared(db, declared, tmp_path / "ref")


def test_a_new_stored_generated_column_is_a_rebuild(tmp_path: Path) -> None:
    db, declared, plan = planned(
        tmp_path,
        "CREATE TABLE t (id integer PRIMARY KEY, a integer); INSERT INTO t VALUES (1, 2);",
        "CREATE TABLE t (id integer PRIMARY KEY, a integer, "
        "g integer GENERATED ALWAYS AS (a * 2) STORED);",
    )
    assert [c.kind for c in plan.changes] == ["rebuild table"]
    apply(db, plan)
    assert query(db, "SELECT id, a, g FROM t") == [(1, 2, 4)]
    assert_declared(db, declared, tmp_path / "ref")


def test_a_column_renamed_only_in_case_is_not_counted_as_dropped(tmp_path: Path) -> None:
    db, declared, plan = planned(
        tmp_path,
        "CREATE TABLE t (id integer PRIMARY KEY, name text); INSERT INTO t VALUES (1, 'a');",
        "CREATE TABLE t (id integer PRIMARY KEY, Name text);",
    )
    assert plan.statements[1] == (
        'INSERT INTO "__litedeploy_new_t" ("id", "Name") SELECT "id", "name" FROM "t";'
    )
    assert risks(plan) == []  # today: [("drop-column", "t.name", 1, True)]
    apply(db, plan)
    assert query(db, "SELECT id, Name FROM t") == [(1, "a")]  # nothing was lost
    assert_declared(db, declared, tmp_path / "ref")


LIVE_ROWS = (
    "CREATE TABLE t (id integer PRIMARY KEY, name text, qty integer NOT NULL DEFAULT 0);"
    "INSERT INTO t VALUES (1, 'a', 2), (2, NULL, 0), (3, 'c', -5);"
)


@pytest.mark.parametrize(
    ("declared", "detail", "new"),
    [
        pytest.param(
            "created text DEFAULT (CURRENT_TIMESTAMP)",
            "add created",
            "SELECT count(*) FROM t WHERE created IS NOT NULL",  # each row got its own value
            id="non-constant-default",
        ),
        pytest.param(
            "twice integer GENERATED ALWAYS AS (qty * 2) STORED",
            "add twice",
            "SELECT count(*) FROM t WHERE twice = qty * 2",
            id="stored-generated",
        ),
        pytest.param(
            "note text, made integer DEFAULT (unixepoch()), "
            "twice integer GENERATED ALWAYS AS (qty * 2) STORED",
            "add note, add made, add twice",
            "SELECT count(*) FROM t WHERE note IS NULL AND made > 0 AND twice = qty * 2",
            id="both-with-a-plain-column",
        ),
    ],
)
def test_a_rebuild_for_a_column_add_column_cannot_take_keeps_every_row(
    tmp_path: Path, declared: str, detail: str, new: str
) -> None:
    db, schema, plan = planned(
        tmp_path,
        LIVE_ROWS,
        f"CREATE TABLE t (id integer PRIMARY KEY, name text, qty integer NOT NULL DEFAULT 0, "
        f"{declared});",
    )
    assert summaries(plan) == [f"rebuild table t: {detail}"]
    assert plan.statements[1] == (
        'INSERT INTO "__litedeploy_new_t" ("id", "name", "qty") SELECT "id", "name", "qty" '
        'FROM "t";'
    )
    assert plan.risks == []
    before = query(db, "SELECT id, name, qty FROM t ORDER BY id")
    apply(db, plan)
    assert query(db, "SELECT id, name, qty FROM t ORDER BY id") == before
    assert query(db, new) == [(3,)]
    assert_declared(db, schema, tmp_path / "ref")
    assert plan_of(db, schema).changes == []


def test_constant_defaults_and_virtual_columns_are_still_added_in_place(tmp_path: Path) -> None:
    """What ALTER TABLE ADD COLUMN does take, on a table with rows: literals, parenthesised or
    signed, and VIRTUAL generated columns."""
    added = [
        "a integer DEFAULT (1)",
        "b integer DEFAULT -1",
        "c text DEFAULT ('x y')",
        "d blob DEFAULT x'00'",
        "e real DEFAULT 1.5e3",
        "f integer DEFAULT TRUE",
        "g integer GENERATED ALWAYS AS (qty + 1) VIRTUAL",
    ]
    db, schema, plan = planned(
        tmp_path,
        LIVE_ROWS,
        "CREATE TABLE t (id integer PRIMARY KEY, name text, qty integer NOT NULL DEFAULT 0, "
        + ", ".join(added)
        + ");",
    )
    assert [c.kind for c in plan.changes] == ["alter table"]
    assert plan.statements == [f'ALTER TABLE "t" ADD {a};' for a in added]
    apply(db, plan)
    assert query(db, "SELECT id, name, qty, a, b, c, hex(d), e, f, g FROM t ORDER BY id") == [
        (1, "a", 2, 1, -1, "x y", "00", 1500.0, 1, 3),
        (2, None, 0, 1, -1, "x y", "00", 1500.0, 1, 1),
        (3, "c", -5, 1, -1, "x y", "00", 1500.0, 1, -4),
    ]
    assert_declared(db, schema, tmp_path / "ref")


def test_a_column_renamed_only_in_case_keeps_every_row_and_is_still_checked(
    tmp_path: Path,
) -> None:
    """name -> Name is the same column: its values are copied, not counted as dropped, and
    what changes about it (here its type and NOT NULL) is counted as for any kept column."""
    db, schema, plan = planned(
        tmp_path,
        "CREATE TABLE t (id integer PRIMARY KEY, name text, qty text);"
        "INSERT INTO t VALUES (1, 'a', '3'), (2, NULL, 'x'), (3, 'c', NULL);",
        "CREATE TABLE t (id integer PRIMARY KEY, Name text NOT NULL DEFAULT '-', QTY integer);",
    )
    assert summaries(plan) == [
        "rebuild table t: Name: NOT NULL, QTY: TEXT -> INTEGER, Name: default None -> '-'"
    ]
    assert plan.statements[1] == (
        'INSERT INTO "__litedeploy_new_t" ("id", "Name", "QTY") '
        'SELECT "id", coalesce("name", \'-\'), "qty" FROM "t";'
    )
    assert risks(plan) == [
        ("not-null-over-nulls", "t.Name", 1, True),  # the NULL becomes '-'
        ("type-change", "t.QTY", 1, True),  # 'x'; '3' converts
    ]
    apply(db, plan)
    assert query(db, "SELECT id, Name, QTY FROM t ORDER BY id") == [
        (1, "a", 3),
        (2, "-", "x"),
        (3, "c", None),
    ]
    assert_declared(db, schema, tmp_path / "ref")
    assert plan_of(db, schema).changes == []


# --- hand-written views and triggers a snapshot does not declare, through renames -------------


def plan_kept(db: Path, declared: Declared, *renames: str) -> PushPlan:
    """The plan as push makes it from a drizzle-kit snapshot, which records no triggers (and
    views only when declared): the live ones it lacks are kept, not dropped."""
    raw = db.read_bytes()
    with (
        contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as live,
        contextlib.closing(declared.load()) as want,
    ):
        plan = plan_push(
            live, want, parse_renames(renames), history_tables=HISTORY, sync_triggers=False
        )
    assert db.read_bytes() == raw
    return plan


def objects(db: Path) -> list[tuple[str, str, str]]:
    """The views and triggers: (type, name, the table a trigger is on), and their SQL apart."""
    return query(
        db,
        "SELECT type, name, tbl_name FROM sqlite_master WHERE type IN ('view', 'trigger') "
        "ORDER BY type, name",
    )


def test_a_kept_trigger_and_view_follow_their_table_when_a_new_table_takes_its_name(
    tmp_path: Path,
) -> None:
    """`--rename incident=status_report` with a new `incident` declared: the hand-written
    trigger and view of the old table go with it, as SQLite's own RENAME would carry them,
    never onto the new table that took the name."""
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE incident (id integer PRIMARY KEY, title text, updated integer);"
        "CREATE TABLE audit (what text);"
        "CREATE TRIGGER incident_touch AFTER UPDATE ON incident BEGIN "
        "UPDATE incident SET updated = 1 WHERE id = new.id; "
        "INSERT INTO audit VALUES ('incident ' || new.id); END;"
        "CREATE VIEW open_incidents AS SELECT id, title FROM incident WHERE updated IS NULL;"
        "INSERT INTO incident VALUES (1, 'db down', NULL), (2, 'slow', NULL);",
    )
    declared = declare(
        tmp_path,
        "CREATE TABLE status_report (id integer PRIMARY KEY, title text, updated integer);\n"
        "CREATE TABLE incident (id integer PRIMARY KEY, kind text NOT NULL);\n"
        "CREATE TABLE audit (what text);",
    )
    plan = plan_kept(db, declared, "incident=status_report")
    apply(db, plan)
    assert objects(db) == [
        ("trigger", "incident_touch", "status_report"),
        ("view", "open_incidents", "open_incidents"),
    ]
    assert query(db, "SELECT id, title FROM open_incidents ORDER BY id") == [
        (1, "db down"),
        (2, "slow"),
    ]
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE status_report SET title = 'db back' WHERE id = 1")
        conn.execute("INSERT INTO incident VALUES (7, 'outage')")  # the new table: no trigger
        conn.commit()
    assert query(db, "SELECT id, updated FROM status_report ORDER BY id") == [(1, 1), (2, None)]
    assert query(db, "SELECT what FROM audit") == [("incident 1",)]
    assert "view open_incidents" in plan.uncovered and "trigger incident_touch" in plan.uncovered


def test_a_kept_trigger_names_a_renamed_column_after_a_rebuild(tmp_path: Path) -> None:
    """A rebuild (here a new NOT NULL default) drops the triggers first: the one recreated
    names the column by its new name, as `ALTER TABLE ... RENAME COLUMN` would have."""
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE item (id integer PRIMARY KEY, name text, seen integer);"
        "CREATE TRIGGER item_seen AFTER UPDATE OF name ON item BEGIN "
        "UPDATE item SET seen = coalesce(seen, 0) + 1 WHERE id = new.id; END;"
        "INSERT INTO item VALUES (1, 'a', NULL);",
    )
    declared = declare(
        tmp_path,
        "CREATE TABLE item (id integer PRIMARY KEY, title text NOT NULL DEFAULT '', seen integer);",
    )
    plan = plan_kept(db, declared, "item.name=title")
    assert "rebuild table" in {c.kind for c in plan.changes}
    apply(db, plan)
    [(sql,)] = query(db, "SELECT sql FROM sqlite_master WHERE name = 'item_seen'")
    assert "title" in sql and "name" not in sql.replace("item_seen", "")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("UPDATE item SET title = 'b' WHERE id = 1")
        conn.commit()
    assert query(db, "SELECT title, seen FROM item") == [("b", 1)]
    assert plan.warnings == []


def test_a_view_sqlite_cannot_read_is_kept_as_it_was_and_named(tmp_path: Path) -> None:
    """A view over a table that no longer exists (SQLite allows creating one) stops SQLite's
    rename: it is recreated from its old SQL, and the warning says so."""
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE item (id integer PRIMARY KEY, name text);"
        "CREATE VIEW stale AS SELECT * FROM gone;"
        "CREATE VIEW names AS SELECT name FROM item;"
        "INSERT INTO item VALUES (1, 'a');",
    )
    declared = declare(tmp_path, "CREATE TABLE product (id integer PRIMARY KEY, name text);")
    plan = plan_kept(db, declared, "item=product")
    [warning] = plan.warnings
    assert warning.startswith("view stale: not carried through the renames")
    apply(db, plan)
    assert query(db, "SELECT sql FROM sqlite_master WHERE name = 'stale'") == [
        ("CREATE VIEW stale AS SELECT * FROM gone",)
    ]
    assert query(db, "SELECT name FROM names") == [("a",)]


def test_a_new_unique_index_counts_values_as_the_new_type_stores_them(tmp_path: Path) -> None:
    """'1.0' and '1' differ as text and are one REAL; 'b' and 'B' stay two (no NOCASE)."""
    db, _, plan = planned(
        tmp_path,
        "CREATE TABLE m (id integer PRIMARY KEY, v text, k text);"
        "INSERT INTO m VALUES (1, '1.0', 'b'), (2, '1', 'B'), (3, '2.5', 'c');",
        "CREATE TABLE m (id integer PRIMARY KEY, v real, k text);\n"
        "CREATE UNIQUE INDEX m_v ON m (v);\nCREATE UNIQUE INDEX m_k ON m (k);",
    )
    assert [(r.kind, r.object, r.count) for r in plan.risks] == [
        ("unique-over-duplicates", "m(v)", 1)
    ]
    with contextlib.closing(sqlite3.connect(db)) as conn:  # and the push itself would fail
        conn.execute("BEGIN")
        with pytest.raises(sqlite3.IntegrityError):
            for sql in plan.statements:
                conn.execute(sql)
        conn.rollback()
