"""Findings: every rule fires on a migration that should trigger it and not on its safe twin."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from harness import db_state, make_db, write_journal, write_plain

from entrypoint.database import connect
from entrypoint.findings import RULES, Finding, blocking, find
from entrypoint.sources import load_source

BP = "--> statement-breakpoint\n"


def rebuild(new_cols: str, copy: str, select: str | None = None, tail: str = "", after: str = ""):
    """drizzle-kit's table rebuild of `t`, as it writes it."""
    return (
        f"PRAGMA foreign_keys=OFF;{BP}"
        f"CREATE TABLE `__new_t` ({new_cols});{BP}"
        f"INSERT INTO `__new_t`({copy}) SELECT {select or copy} FROM `t`{tail};{BP}"
        f"DROP TABLE `t`;{BP}"
        f"ALTER TABLE `__new_t` RENAME TO `t`;{BP}"
        f"{after}PRAGMA foreign_keys=ON;"
    )


def analyse(tmp_path: Path, setup: str | None, *migrations: str) -> list[Finding]:
    """Findings of the migrations against a database made by `setup` (None: no database)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    folder = write_journal(
        tmp_path / "m", [(f"{i:04d}_m", sql) for i, sql in enumerate(migrations, 1)]
    )
    pending = load_source(folder).migrations
    if setup is None:
        return find(None, pending)
    db = make_db(tmp_path / "app.db", setup)
    before = db_state(db)
    with contextlib.closing(connect(db, read_only=True)) as conn:
        found = find(conn, pending)
    assert db_state(db) == before  # read-only, always
    return found


def of(findings: list[Finding], rule: str) -> list[Finding]:
    return [f for f in findings if f.rule == rule]


ROWS = "CREATE TABLE t (id integer PRIMARY KEY, a text, b text);" + (
    "INSERT INTO t VALUES (1, 'x', NULL), (2, NULL, NULL), (3, 'y', NULL);"
)
EMPTY = "CREATE TABLE e (id integer PRIMARY KEY);"
DUPS = (
    "CREATE TABLE t (id integer PRIMARY KEY, email text);"
    "INSERT INTO t VALUES (1, 'a'), (2, 'a'), (3, 'b'), (4, 'b'), (5, 'c'), (6, NULL), (7, NULL);"
)
KEEP_ALL = "`id` integer PRIMARY KEY NOT NULL, `a` text, `b` text"
COPY_ALL = '"id", "a", "b"'
TRIGGER = "CREATE TRIGGER t_audit AFTER INSERT ON t BEGIN SELECT 1; END;"
AUTOINC = (
    "CREATE TABLE t (id integer PRIMARY KEY AUTOINCREMENT, a text);"
    "INSERT INTO t (a) VALUES ('x'), ('y'), ('z');"
)
AUTOINC_NEW = "`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL, `a` text"
CHILD = (
    "CREATE TABLE c (id integer PRIMARY KEY, t_id integer REFERENCES t(id) ON DELETE CASCADE);"
    "INSERT INTO c VALUES (1, 1), (2, 1);"
)
PRICES = "CREATE TABLE t (id integer PRIMARY KEY, price text);"
PRICE_NEW = "`id` integer PRIMARY KEY NOT NULL, `price` integer"

# rule, severity, (setup, migration) that fires, (setup, migration) that is safe, in message
CASES = [
    (
        "add-not-null-without-default",
        "block",
        (ROWS, "ALTER TABLE `t` ADD `stock` integer NOT NULL;"),
        (ROWS, "ALTER TABLE `t` ADD `stock` integer DEFAULT 0 NOT NULL;"),
        "3 row(s)",
    ),
    (
        "not-null-over-nulls",
        "block",
        (ROWS, rebuild("`id` integer PRIMARY KEY NOT NULL, `a` text NOT NULL, `b` text", COPY_ALL)),
        (
            ROWS,
            rebuild(
                "`id` integer PRIMARY KEY NOT NULL, `a` text NOT NULL, `b` text",
                COPY_ALL,
                '"id", coalesce("a", \'\'), "b"',
            ),
        ),
        "1 row(s) hold NULL",
    ),
    (
        "unique-over-duplicates",
        "block",
        (DUPS, "CREATE UNIQUE INDEX `t_email_unique` ON `t` (`email`);"),
        (DUPS, "CREATE INDEX `t_email_idx` ON `t` (`email`);"),
        "2 group(s)",
    ),
    (
        "drop-table-with-rows",
        "block",
        (ROWS + EMPTY, "DROP TABLE `t`;"),
        (ROWS + EMPTY, "DROP TABLE `e`;"),
        "3 row(s)",
    ),
    (
        "drop-column-with-data",
        "block",
        (ROWS, "ALTER TABLE `t` DROP COLUMN `a`;"),
        (ROWS, "ALTER TABLE `t` DROP COLUMN `b`;"),
        "2 non-NULL",
    ),
    (
        "rebuild-drops-column",
        "block",
        (ROWS, rebuild("`id` integer PRIMARY KEY NOT NULL, `b` text", '"id", "b"')),
        (ROWS, rebuild(KEEP_ALL, COPY_ALL)),
        "drops column a, which holds 2",
    ),
    (
        "rebuild-loses-rows",
        "block",
        (ROWS, rebuild(KEEP_ALL, COPY_ALL, tail=' WHERE "a" IS NOT NULL')),
        (ROWS, rebuild(KEEP_ALL, COPY_ALL)),
        "3 row(s)",
    ),
    (
        "rebuild-drops-trigger",
        "block",
        (ROWS + TRIGGER, rebuild(KEEP_ALL, COPY_ALL)),
        (ROWS + TRIGGER, rebuild(KEEP_ALL, COPY_ALL, after=TRIGGER + BP)),
        "t_audit",
    ),
    (
        "rebuild-drops-index",
        "warn",
        (ROWS + "CREATE INDEX t_a ON t(a);", rebuild(KEEP_ALL, COPY_ALL)),
        (
            ROWS + "CREATE INDEX t_a ON t(a);",
            rebuild(KEEP_ALL, COPY_ALL, after="CREATE INDEX `t_a` ON `t` (`a`);" + BP),
        ),
        "t_a",
    ),
    (
        "rebuild-resets-autoincrement",
        "warn",
        (AUTOINC + "DELETE FROM t WHERE id = 3;", rebuild(AUTOINC_NEW, '"id", "a"')),
        (AUTOINC, rebuild(AUTOINC_NEW, '"id", "a"')),
        "counter (3) to 2",
    ),
    (
        "rebuild-has-children",
        "info",
        (ROWS + CHILD, rebuild(KEEP_ALL, COPY_ALL)),
        (ROWS, rebuild(KEEP_ALL, COPY_ALL)),
        "c (2 row(s)) references the rebuilt t ON DELETE CASCADE",
    ),
    (
        "type-change-lossy",
        "block",
        (
            PRICES + "INSERT INTO t VALUES (1, '12.50'), (2, '99');",
            rebuild(PRICE_NEW, '"id", "price"'),
        ),
        (
            PRICES + "INSERT INTO t VALUES (1, '12'), (2, '99');",
            rebuild(PRICE_NEW, '"id", "price"'),
        ),
        "1 value(s) do not convert to integer",
    ),
    (
        "pragma-foreign-keys",
        "info",
        (ROWS, "PRAGMA foreign_keys=OFF;\nCREATE TABLE x (id integer);"),
        (ROWS, "CREATE TABLE x (id integer);"),
        "PRAGMA foreign_keys",
    ),
    (
        "transaction-control",
        "block",
        (ROWS, "BEGIN;\nCREATE TABLE x (id integer);\nCOMMIT;"),
        (ROWS, "CREATE TRIGGER t_ins AFTER INSERT ON t BEGIN SELECT 1; END;"),
        "BEGIN",
    ),
    (
        "empty-chunk",
        "warn",
        (
            ROWS,
            f"CREATE TABLE x (id integer);\n{BP}-- nothing here\n{BP}CREATE TABLE y (id integer);",
        ),
        (ROWS, f"CREATE TABLE x (id integer);\n{BP}CREATE TABLE y (id integer);"),
        "chunk 2",
    ),
    (
        "rename",
        "warn",
        (ROWS, 'ALTER TABLE `t` RENAME COLUMN "a" TO "title";'),
        (ROWS, "ALTER TABLE `t` ADD `title` text;"),
        "t.a to title",
    ),
]


def test_every_rule_has_a_case() -> None:
    assert {c[0] for c in CASES} == set(RULES)


@pytest.mark.parametrize(
    ("rule", "severity", "unsafe", "safe", "needle"), CASES, ids=[c[0] for c in CASES]
)
def test_rule_fires_and_its_safe_twin_is_silent(
    tmp_path: Path,
    rule: str,
    severity: str,
    unsafe: tuple[str, str],
    safe: tuple[str, str],
    needle: str,
) -> None:
    fired = of(analyse(tmp_path / "unsafe", *unsafe), rule)
    assert fired, f"{rule} did not fire"
    assert fired[0].severity == severity
    assert needle in fired[0].message
    assert fired[0].hint
    assert fired[0].migration == "0001_m"
    assert of(analyse(tmp_path / "safe", *safe), rule) == []


def test_a_plain_rebuild_is_one_change_not_a_drop_and_a_rename(tmp_path: Path) -> None:
    found = analyse(tmp_path, ROWS, rebuild(KEEP_ALL, COPY_ALL))
    assert [f.rule for f in found] == ["pragma-foreign-keys", "pragma-foreign-keys"]
    assert blocking(found) == []


def test_a_hand_written_rebuild_with_other_names_is_recognised(tmp_path: Path) -> None:
    sql = (
        "CREATE TABLE t_tmp (id integer PRIMARY KEY, a text);\n"
        "INSERT INTO t_tmp (id, a) SELECT id, a FROM t LIMIT 2;\n"
        "DROP TABLE t;\n"
        "ALTER TABLE t_tmp RENAME TO t;\n"
    )
    rules = {f.rule for f in analyse(tmp_path, ROWS, sql)}
    assert rules == {"rebuild-loses-rows", "rebuild-drops-column"}  # LIMIT, and b (all NULL)


def test_unique_constraint_in_a_rebuild_over_duplicates(tmp_path: Path) -> None:
    new = "`id` integer PRIMARY KEY NOT NULL, `email` text UNIQUE"
    found = of(analyse(tmp_path, DUPS, rebuild(new, '"id", "email"')), "unique-over-duplicates")
    assert len(found) == 1 and "2 group(s)" in found[0].message


def test_rebuild_without_a_copy_loses_every_row(tmp_path: Path) -> None:
    sql = rebuild(KEEP_ALL, COPY_ALL).replace(
        'INSERT INTO `__new_t`("id", "a", "b") SELECT', "SELECT"
    )
    found = of(analyse(tmp_path, ROWS, sql), "rebuild-loses-rows")
    assert found and "copies no rows" in found[0].message


def test_empty_table_makes_not_null_info_and_drops_silent(tmp_path: Path) -> None:
    setup = "CREATE TABLE t (id integer PRIMARY KEY, a text);"
    found = analyse(tmp_path, setup, "ALTER TABLE t ADD s integer NOT NULL;", "DROP TABLE t;")
    assert [(f.rule, f.severity) for f in found] == [("add-not-null-without-default", "info")]


def test_static_analysis_without_a_database(tmp_path: Path) -> None:
    # Tables the migrations create are empty; tables nobody created are unknown (warn).
    found = analyse(
        tmp_path,
        None,
        "CREATE TABLE t (id integer PRIMARY KEY, a text);",
        "ALTER TABLE t ADD s integer NOT NULL;\n" + "ALTER TABLE elsewhere ADD s integer NOT NULL;",
    )
    assert [(f.object, f.severity) for f in found] == [("t.s", "info"), ("elsewhere.s", "warn")]
    rows = analyse(
        tmp_path / "rows",
        None,
        "CREATE TABLE t (id integer, a text);",
        "INSERT INTO t VALUES (1, 'x');",
        "ALTER TABLE t DROP COLUMN a;",
    )
    assert [(f.rule, f.severity) for f in rows] == [("drop-column-with-data", "warn")]


def test_later_migrations_see_earlier_renames(tmp_path: Path) -> None:
    found = analyse(
        tmp_path,
        ROWS,
        'ALTER TABLE t RENAME COLUMN "a" TO "title";',
        "ALTER TABLE t RENAME TO things;",
        "ALTER TABLE things DROP COLUMN title;",
    )
    drops = of(found, "drop-column-with-data")
    assert len(drops) == 1 and "2 non-NULL" in drops[0].message
    assert drops[0].migration == "0003_m"
    assert len(of(found, "rename")) == 2


def test_counts_follow_a_rebuilt_table(tmp_path: Path) -> None:
    found = analyse(tmp_path, ROWS, rebuild(KEEP_ALL, COPY_ALL), "ALTER TABLE t DROP COLUMN a;")
    drops = of(found, "drop-column-with-data")
    assert drops and "2 non-NULL" in drops[0].message


def test_directive_acknowledges_one_rule_and_one_object(tmp_path: Path) -> None:
    sql = (
        "-- litedeploy: allow drop-column t.a\n"
        "ALTER TABLE `t` DROP COLUMN `a`;\n"
        "ALTER TABLE `t` DROP COLUMN `b`;\n"
        "DROP TABLE `t`;\n"
    )
    setup = ROWS + "UPDATE t SET b = 'z';"
    found = analyse(tmp_path, setup, sql)
    by_object = {(f.rule, f.object): f for f in found}
    assert by_object[("drop-column-with-data", "t.a")].acknowledged
    assert not by_object[("drop-column-with-data", "t.b")].acknowledged
    assert not by_object[("drop-table-with-rows", "t")].acknowledged
    assert [f.object for f in blocking(found)] == ["t.b", "t"]


def test_directive_takes_the_full_rule_id_and_quoted_names(tmp_path: Path) -> None:
    sql = '/* x */ DROP TABLE "T"; -- litedeploy: allow drop-table-with-rows `t`\n'
    found = analyse(tmp_path, ROWS, sql)
    assert len(found) == 1 and found[0].acknowledged and blocking(found) == []


def test_directive_in_another_migration_does_not_count(tmp_path: Path) -> None:
    found = analyse(
        tmp_path,
        ROWS,
        "-- litedeploy: allow drop-column t.a\nSELECT 1;",
        "ALTER TABLE t DROP COLUMN a;",
    )
    assert [f.acknowledged for f in found] == [False]


def test_plain_sql_folder_without_breakpoints(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", [("0001_drop", "DROP TABLE t;\nBEGIN;\nCOMMIT;\n")])
    db = make_db(tmp_path / "app.db", ROWS)
    with contextlib.closing(connect(db, read_only=True)) as conn:
        found = find(conn, load_source(folder).migrations)
    assert [(f.rule, f.statement) for f in found] == [
        ("drop-table-with-rows", 1),
        ("transaction-control", 2),
        ("transaction-control", 3),
    ]
