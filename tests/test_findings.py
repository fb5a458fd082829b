"""Findings: every rule fires on a migration that should trigger it and not on its safe twin."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from harness import db_state, make_db, write_journal, write_plain

from entrypoint.engine.sources import load_source
from entrypoint.safety.files import find_in_files
from entrypoint.safety.findings import RULES, Finding, blocking
from entrypoint.safety.rules import find
from entrypoint.safetynet.database import connect

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
        "t.a is NOT NULL but 1 row(s) would hold NULL",
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
        "copies 2 of its 3 row(s)",
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
        "foreign-keys-idiom",
        "info",
        (ROWS, f"COMMIT;{BP}PRAGMA foreign_keys=OFF;{BP}BEGIN;{BP}CREATE TABLE x (id integer);"),
        (ROWS, f"PRAGMA foreign_keys=OFF;{BP}CREATE TABLE x (id integer);"),
        "statements 1, 3 end and restart the transaction",
    ),
    (
        "non-constant-default",
        "block",
        (ROWS, "ALTER TABLE `t` ADD `created_at` integer DEFAULT (unixepoch()) NOT NULL;"),
        (ROWS, "ALTER TABLE `t` ADD `created_at` integer DEFAULT 0 NOT NULL;"),
        "t has 3 row(s): SQLite refuses it (Cannot add a column with non-constant default)",
    ),
    (
        "check-violated",
        "block",
        (
            ROWS,
            rebuild("`id` integer PRIMARY KEY, `a` text CHECK (a IN ('x')), `b` text", COPY_ALL),
        ),
        (
            ROWS,
            rebuild(
                "`id` integer PRIMARY KEY, `a` text CHECK (a IN ('x', 'y')), `b` text", COPY_ALL
            ),
        ),
        "t: 1 row(s) would not meet CHECK (a IN ('x'))",
    ),
    (
        "foreign-key-violated",
        "block",
        (
            ROWS + "CREATE TABLE p (id integer PRIMARY KEY); INSERT INTO p VALUES (1);",
            rebuild(
                "`id` integer PRIMARY KEY, `a` text, `b` text REFERENCES p(id)",
                '"id", "a", "b"',
                '"id", "a", "id"',
            ),
        ),
        (
            ROWS + "CREATE TABLE p (id integer PRIMARY KEY); INSERT INTO p VALUES (1), (2), (3);",
            rebuild(
                "`id` integer PRIMARY KEY, `a` text, `b` text REFERENCES p(id)",
                '"id", "a", "b"',
                '"id", "a", "id"',
            ),
        ),
        "t: 2 row(s) would reference a missing p",
    ),
    (
        "statement-fails",
        "block",
        (ROWS, "ALTER TABLE `t` ADD `a` text;"),
        (ROWS, "ALTER TABLE `t` ADD `c` text;"),
        "duplicate column name: a",
    ),
    (
        "values-moved",
        "info",
        (
            ROWS,
            f"CREATE TABLE `t_a` (`t_id` integer PRIMARY KEY REFERENCES t(id), `a` text);{BP}"
            f"INSERT INTO `t_a` SELECT `id`, `a` FROM `t`;{BP}ALTER TABLE `t` DROP COLUMN `a`;",
        ),
        (
            ROWS,
            f"CREATE TABLE `t_a` (`t_id` integer, `a` text);{BP}ALTER TABLE `t` DROP COLUMN `a`;",
        ),
        "copied them to t_a.a",
    ),
    (
        "attach",
        "block",
        (ROWS, "ATTACH DATABASE 'other.db' AS o;\nINSERT INTO t SELECT * FROM o.t;"),
        (ROWS, "CREATE TABLE x (id integer);"),
        "opens a database file other than this one",
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
    found = analyse(tmp_path, ROWS, sql)
    # LIMIT 2 keeps 2 of 3 rows; b is dropped but holds nothing, so nothing is said of it
    assert [(f.rule, f.message) for f in found] == [
        ("rebuild-loses-rows", "the rebuild of t copies 2 of its 3 row(s)")
    ]


def test_the_older_rebuild_shape_is_recognised(tmp_path: Path) -> None:
    # rename the old table away, create the new one under its name, copy, drop the old one
    sql = (
        "ALTER TABLE t RENAME TO __t_old;\n"
        "CREATE TABLE t (id integer PRIMARY KEY, a text, b text, c text);\n"
        "INSERT INTO t SELECT id, a, b, NULL FROM __t_old;\n"
        "DROP TABLE __t_old;\n"
    )
    assert analyse(tmp_path, ROWS, sql) == []  # t keeps its name and every value


@pytest.mark.parametrize(
    ("copy", "rows"),
    [
        ('SELECT "id", "a", (SELECT max(x) FROM t AS o WHERE o.id = t.id) FROM `t`', 3),
        ('SELECT t."id", t."a", u."b" FROM `t` LEFT JOIN `t` AS u ON u.id = t.id', 3),
        ("SELECT id, a, b FROM `t` WHERE a = 'x'", 1),
    ],
    ids=["where-in-a-scalar-subquery", "left-join", "one-of-two-inserts"],
)
def test_a_rebuild_copy_is_counted_not_guessed(tmp_path: Path, copy: str, rows: int) -> None:
    setup = ROWS + "ALTER TABLE t ADD x integer;"
    copies = f'INSERT INTO `__new_t`("id", "a", "b") {copy};{BP}'
    if rows == 1:  # two INSERTs with complementary filters copy every row between them
        rest = "SELECT id, a, b FROM `t` WHERE a != 'x' OR a IS NULL"
        copies += f'INSERT INTO `__new_t`("id", "a", "b") {rest};{BP}'
    sql = (
        f"CREATE TABLE `__new_t` ({KEEP_ALL});{BP}{copies}"
        f"DROP TABLE `t`;{BP}ALTER TABLE `__new_t` RENAME TO `t`;"
    )
    found = analyse(tmp_path, setup, sql)
    assert of(found, "rebuild-loses-rows") == [] and blocking(found) == []


def test_unique_constraint_in_a_rebuild_over_duplicates(tmp_path: Path) -> None:
    new = "`id` integer PRIMARY KEY NOT NULL, `email` text UNIQUE"
    found = of(analyse(tmp_path, DUPS, rebuild(new, '"id", "email"')), "unique-over-duplicates")
    assert len(found) == 1 and "2 group(s)" in found[0].message


def test_rebuild_without_a_copy_loses_every_row(tmp_path: Path) -> None:
    sql = rebuild(KEEP_ALL, COPY_ALL).replace(
        'INSERT INTO `__new_t`("id", "a", "b") SELECT', "SELECT"
    )
    found = of(analyse(tmp_path, ROWS, sql), "rebuild-loses-rows")
    assert found and "copies 0 of its 3 row(s)" in found[0].message


def test_empty_table_makes_not_null_info_and_drops_silent(tmp_path: Path) -> None:
    setup = "CREATE TABLE t (id integer PRIMARY KEY, a text);"
    found = analyse(tmp_path, setup, "ALTER TABLE t ADD s integer NOT NULL;", "DROP TABLE t;")
    assert [(f.rule, f.severity) for f in found] == [("add-not-null-without-default", "info")]


def test_static_analysis_without_a_database(tmp_path: Path) -> None:
    # A new database has no data to lose; a statement that fails on the schema still shows.
    found = analyse(
        tmp_path,
        None,
        "CREATE TABLE t (id integer PRIMARY KEY, a text);",
        "ALTER TABLE t ADD s integer NOT NULL;\n" + "ALTER TABLE elsewhere ADD s integer NOT NULL;",
    )
    assert [(f.rule, f.statement, f.message) for f in found] == [
        (
            "statement-fails",
            2,
            "statement 2 fails on the schema as it stands there: no such table: elsewhere",
        )
    ]
    rows = analyse(
        tmp_path / "rows",
        None,
        "CREATE TABLE t (id integer, a text);",
        "INSERT INTO t VALUES (1, 'x');",
        "ALTER TABLE t DROP COLUMN a;",
    )
    assert rows == []  # the migrations' own rows are no data of the operator's


def test_a_column_added_earlier_exists_with_nulls_for_what_follows(tmp_path: Path) -> None:
    # dyad's shape: add a column, then a unique index on it; and a drop of a column that only
    # a pending statement adds. The live table has no such column: nothing may be counted
    # against the string literal SQLite would read the quoted name as.
    found = analyse(
        tmp_path,
        ROWS,
        "ALTER TABLE `t` ADD `slug` text;",
        "CREATE UNIQUE INDEX `t_slug_unique` ON `t` (`slug`);",
        f"DROP INDEX `t_slug_unique`;{BP}ALTER TABLE `t` DROP COLUMN `slug`;",
    )
    assert found == []
    defaulted = analyse(
        tmp_path / "defaulted",
        ROWS,
        "ALTER TABLE `t` ADD `kind` text DEFAULT 'main' NOT NULL;",
        "CREATE UNIQUE INDEX `t_kind_unique` ON `t` (`kind`);",
    )
    assert [(f.rule, f.message) for f in defaulted] == [
        (
            "unique-over-duplicates",
            "unique index t_kind_unique on t(`kind`) over 1 group(s) of duplicated values: "
            "SQLite refuses to create it",
        )
    ]


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


def test_a_directive_counts_in_any_pending_migration_only(tmp_path: Path) -> None:
    # A directive is its author's word about an object, whichever pending file holds it; one
    # in a migration that is not pending (applied long ago) says nothing about this run.
    found = analyse(
        tmp_path,
        ROWS,
        "-- litedeploy: allow drop-column t.a\nSELECT 1;",
        "ALTER TABLE t DROP COLUMN a;",
    )
    assert [f.acknowledged for f in found] == ["-- litedeploy: allow drop-column t.a (in 0001_m)"]
    folder = write_journal(
        tmp_path / "later" / "m",
        [
            ("0001_m", "-- litedeploy: allow drop-column t.a\nSELECT 1;"),
            ("0002_m", "ALTER TABLE t DROP COLUMN a;"),
        ],
    )
    db = make_db(tmp_path / "later" / "app.db", ROWS)
    with contextlib.closing(connect(db, read_only=True)) as conn:
        found = find(conn, load_source(folder).migrations[1:])
    assert [(f.rule, f.acknowledged) for f in found] == [("drop-column-with-data", None)]


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


def test_the_commit_pragma_begin_idiom_is_understood_not_blocked(tmp_path: Path) -> None:
    # homarr writes this in five files: the only way to turn foreign keys off under drizzle
    sql = (
        f"COMMIT TRANSACTION;{BP}PRAGMA foreign_keys=OFF;{BP}BEGIN TRANSACTION;{BP}"
        f"ALTER TABLE `t` ADD `c` text;{BP}"
        f"COMMIT TRANSACTION;{BP}PRAGMA foreign_keys=ON;{BP}BEGIN TRANSACTION;"
    )
    found = analyse(tmp_path, ROWS, sql)
    assert blocking(found) == []
    assert [f.rule for f in found] == [
        "foreign-keys-idiom",
        "pragma-foreign-keys",
        "pragma-foreign-keys",
    ]
    # transaction control that is not the idiom still blocks, and can be acknowledged
    bare = analyse(tmp_path / "bare", ROWS, f"ALTER TABLE `t` ADD `c` text;{BP}COMMIT;")
    assert [(f.rule, f.object, f.severity) for f in blocking(bare)] == [
        ("transaction-control", "0001_m", "block")
    ]
    acked = analyse(
        tmp_path / "acked",
        ROWS,
        "-- litedeploy: allow transaction-control 0001_m\n"
        f"ALTER TABLE `t` ADD `c` text;{BP}COMMIT;",
    )
    assert blocking(acked) == []


def _stops_a_new_database(findings: list[Finding]) -> list[tuple[str, str, int | None]]:
    """What stops `run` on a new database: blocking findings no copy judges (gate.py)."""
    return sorted(
        (f.migration, f.rule, f.statement) for f in findings if f.blocks and not f.judged_on_copy
    )


CORPUS = Path(__file__).parent / "corpus"
NEW_DATABASE_HISTORIES = [
    pytest.param([setup, unsafe], rule in ("transaction-control", "attach"), id=rule)
    for rule, _, (setup, unsafe), _, _ in CASES
] + [
    pytest.param(path, False, id=path.name)
    for path in sorted(CORPUS.iterdir())
    if (path / "meta").is_dir()
]


@pytest.mark.parametrize(("history", "stops"), NEW_DATABASE_HISTORIES)
def test_on_a_new_database_the_files_alone_stop_what_the_full_analysis_stops(
    tmp_path: Path, history: list[str] | Path, stops: bool
) -> None:
    """The gate looks only at the files on a new database (find_in_files): for every rule's
    unsafe case, run as a history from nothing, and for the real corpus histories, it
    stops exactly what the whole replay would have stopped, and says a subset of it."""
    folder = (
        history
        if isinstance(history, Path)
        else write_journal(tmp_path / "m", [(f"{i:04d}_m", s) for i, s in enumerate(history, 1)])
    )
    pending = load_source(folder).migrations
    whole, files = find(None, pending), find_in_files(pending)
    assert _stops_a_new_database(files) == _stops_a_new_database(whole)
    assert bool(_stops_a_new_database(whole)) is stops
    assert {(f.migration, f.rule, f.statement) for f in files} <= {
        (f.migration, f.rule, f.statement) for f in whole
    }
