"""Push mode: the declared schema synced into the live database, without losing anything."""

from __future__ import annotations

import contextlib
import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Cli, applied, assert_one_clear_error, db_state, dump, make_db, query

from entrypoint.pushplan.planner import normal_sql
from entrypoint.settings import Findings

FIXTURES = ROOT / "tests" / "fixtures"
JOURNAL = FIXTURES / "drizzle-journal" / "shop"
FOLDERS = FIXTURES / "drizzle-folders" / "shop"
SEED = (FIXTURES / "seeds" / "shop-reviews-only.sql").read_text()
STEPS = 6
# What the operator says at each step: the rename is declared, never guessed; 0003 ('12.50'
# into an integer column) and 0005 (users.name dropped with data) lose data on purpose.
STEP_FLAGS: dict[int, tuple[str, ...]] = {
    3: ("--accept-data-loss",),
    4: ("--rename", "products.name=title"),
    5: ("--accept-data-loss",),
}


def snapshot(fmt: str, step: int) -> Path:
    if fmt == "journal":
        return JOURNAL / "meta" / f"{step:04d}_snapshot.json"
    return sorted(FOLDERS.iterdir())[step] / "snapshot.json"


def migrations_upto(fmt: str, step: int, where: Path) -> Path:
    """A copy of the fixture holding only its first `step + 1` migrations."""
    folder = where / f"{fmt}-upto-{step}"
    shutil.rmtree(folder, ignore_errors=True)
    if fmt == "journal":
        shutil.copytree(JOURNAL, folder)
        journal_path = folder / "meta" / "_journal.json"
        journal = json.loads(journal_path.read_text())
        journal["entries"] = journal["entries"][: step + 1]
        journal_path.write_text(json.dumps(journal))
    else:
        folder.mkdir()
        for entry in sorted(FOLDERS.iterdir())[: step + 1]:
            shutil.copytree(entry, folder / entry.name)
    return folder


def migrated(fmt: str, step: int, where: Path, *, seed: bool = True) -> Path:
    """A database at `step` through the migration files (seeded once step 2 is reached)."""
    where.mkdir(parents=True, exist_ok=True)
    db = where / "app.db"
    if step >= 2 and seed:
        applied(db, migrations_upto(fmt, 2, where))
        make_db(db, SEED)
    applied(
        db,
        migrations_upto(fmt, step, where),
        findings=Findings.WARN,
        environment="test",
        rehearse=False,
    )
    return db


def master(db: Path) -> list[tuple[str, str, str, str]]:
    """sqlite_master, normalised: quotes and whitespace do not count; history left out."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute(
            "SELECT type, name, tbl_name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "AND name NOT LIKE '__drizzle_migrations' ORDER BY type, name"
        ).fetchall()
    return [(t, n.lower(), tb.lower(), normal_sql(s or "")) for t, n, tb, s in rows]


def rows(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
                "AND name != '__drizzle_migrations' ORDER BY name"
            )
        ]
        return {t: conn.execute(f'SELECT * FROM "{t}" ORDER BY 1').fetchall() for t in tables}


def push(
    cli: Cli, db: Path, schema: Path, *flags: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return cli("run", "--mode", "push", "--db", db, "--schema", schema, *flags, env=env)


# --- every step of the shop: push gives what the migration gives ---------------------------------


@pytest.mark.parametrize("fmt", ["journal", "folders"])
@pytest.mark.parametrize("step", range(1, STEPS))
def test_push_of_each_step_matches_its_migration_and_keeps_every_row(
    tmp_path: Path, cli: Cli, fmt: str, step: int
) -> None:
    pushed = migrated(fmt, step - 1, tmp_path / "pushed")
    reference = migrated(fmt, step, tmp_path / "migrated", seed=step - 1 >= 2)
    proc = push(cli, pushed, snapshot(fmt, step), *STEP_FLAGS.get(step, ()))
    assert proc.returncode == 0, proc.stderr
    assert master(pushed) == master(reference)
    assert rows(pushed) == rows(reference)  # every row, every value the migration keeps
    if step >= 3:
        assert len(rows(pushed)["reviews"]) == 4  # the rebuilt parent's CASCADE children kept


@pytest.mark.parametrize("fmt", ["journal", "folders"])
def test_push_from_an_empty_database_creates_the_full_schema(
    tmp_path: Path, cli: Cli, fmt: str
) -> None:
    db = tmp_path / "new" / "app.db"
    db.parent.mkdir()
    proc = push(cli, db, snapshot(fmt, STEPS - 1))
    assert proc.returncode == 0, proc.stderr
    reference = migrated(fmt, STEPS - 1, tmp_path / "migrated", seed=False)
    assert master(db) == master(reference)
    assert query(db, "PRAGMA journal_mode") == [("wal",)]
    again = push(cli, db, snapshot(fmt, STEPS - 1))
    assert again.returncode == 0
    assert "already has the declared schema" in again.stderr


def test_the_newest_snapshot_of_the_migrations_folder_is_the_default(
    tmp_path: Path, cli: Cli
) -> None:
    db = migrated("journal", 2, tmp_path / "db")
    env = {
        "LITEDEPLOY_MIGRATE_MODE": "push",
        "LITEDEPLOY_ACCEPT_DATA_LOSS": "1",
        "LITEDEPLOY_PUSH_RENAMES": "products.name=title",
    }
    proc = cli("run", "--db", db, "--migrations", JOURNAL, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "0005_snapshot.json" in proc.stderr
    assert master(db) == master(migrated("journal", 5, tmp_path / "ref"))


# --- the data-loss guard -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("step", "needle"),
    [
        (3, "products.price: 1 value(s) do not convert from TEXT to INTEGER"),
        (5, "drops users.name with 2 non-NULL value(s)"),
    ],
)
def test_data_loss_is_refused_without_accept_and_changes_nothing(
    tmp_path: Path, cli: Cli, step: int, needle: str
) -> None:
    db = migrated("journal", step - 1, tmp_path / "db")
    before, raw = db_state(db), db.read_bytes()
    backups = len(list((db.parent / "backups").glob("*.backup")))  # from the set-up
    proc = push(cli, db, snapshot("journal", step))
    assert_one_clear_error(proc, 15, "push refused", needle, "not touched")
    assert "--accept-data-loss" in proc.stderr.splitlines()[-1]
    assert db.read_bytes() == raw and db_state(db) == before
    assert len(list((db.parent / "backups").glob("*.backup"))) == backups
    accepted = push(cli, db, snapshot("journal", step), "--accept-data-loss")
    assert accepted.returncode == 0, accepted.stderr
    assert f"data loss accepted (--accept-data-loss): {needle}" in accepted.stderr  # still said
    assert len(list((db.parent / "backups").glob("*.backup"))) == backups + 1


def test_a_rename_is_never_guessed(tmp_path: Path, cli: Cli) -> None:
    """Without --rename, name -> title is a drop and an add: refused, the titles would be lost."""
    db = migrated("journal", 3, tmp_path / "db")
    before = dump(db)
    proc = push(cli, db, snapshot("journal", 4))
    assert_one_clear_error(proc, 15, "cannot be made without deleting rows", "products.title")
    assert dump(db) == before


DUPES = """\
CREATE TABLE people (id integer PRIMARY KEY, email text, nick text);
INSERT INTO people VALUES (1, 'a@x', NULL), (2, 'a@x', 'b'), (3, 'c@x', NULL);
"""


@pytest.mark.parametrize(
    ("declared", "needle"),
    [
        (
            "CREATE TABLE people (id integer PRIMARY KEY, email text UNIQUE, nick text);",
            "people(email) becomes unique over 1 group(s) of duplicated values",
        ),
        (
            "CREATE TABLE people (id integer PRIMARY KEY, email text, nick text);\n"
            "CREATE UNIQUE INDEX people_email ON people (email);",
            "unique index people_email over 1 group(s) of duplicated values",
        ),
        (
            "CREATE TABLE people (id integer PRIMARY KEY, email text, nick text NOT NULL);",
            "people.nick becomes NOT NULL over 2 NULL(s) and has no default",
        ),
        (
            "CREATE TABLE people (id integer PRIMARY KEY, email text, nick text, "
            "age integer NOT NULL);",
            "adds people.age NOT NULL without a default to 3 row(s)",
        ),
    ],
    ids=["unique-constraint", "unique-index", "not-null", "add-not-null"],
)
def test_what_only_deleting_rows_could_fit_is_refused_even_when_accepted(
    tmp_path: Path, cli: Cli, declared: str, needle: str
) -> None:
    db = make_db(tmp_path / "app.db", DUPES)
    schema = tmp_path / "schema.sql"
    schema.write_text(declared)
    raw = db.read_bytes()
    proc = push(cli, db, schema, "--accept-data-loss")
    assert_one_clear_error(proc, 15, "cannot be made without deleting rows", needle)
    assert db.read_bytes() == raw


def test_not_null_with_a_default_fills_the_nulls_when_accepted(tmp_path: Path, cli: Cli) -> None:
    db = make_db(tmp_path / "app.db", DUPES)
    schema = tmp_path / "schema.sql"
    schema.write_text(
        "CREATE TABLE people (id integer PRIMARY KEY, email text, nick text NOT NULL DEFAULT '?');"
    )
    refused = push(cli, db, schema)
    assert_one_clear_error(refused, 15, "people.nick becomes NOT NULL over 2 NULL(s)", "'?'")
    proc = push(cli, db, schema, "--accept-data-loss")
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT id, nick FROM people ORDER BY id") == [(1, "?"), (2, "b"), (3, "?")]


# --- the production guard ------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["option", "env"])
def test_push_in_production_is_refused(tmp_path: Path, cli: Cli, how: str) -> None:
    db = migrated("journal", 1, tmp_path / "db")
    raw = db.read_bytes()
    if how == "option":
        proc = push(cli, db, snapshot("journal", 2), "--env", "production")
    else:
        proc = push(cli, db, snapshot("journal", 2), env={"APP_ENV": "production"})
    assert_one_clear_error(proc, 5, "push mode is refused in production")
    assert "--allow-push-in-production" in proc.stderr
    assert db.read_bytes() == raw
    forced = push(
        cli, db, snapshot("journal", 2), "--env", "production", "--allow-push-in-production"
    )
    assert forced.returncode == 0, forced.stderr


# --- what push leaves alone, and how it applies -------------------------------------------------


def test_tables_drizzle_push_ignores_are_never_dropped(tmp_path: Path, cli: Cli) -> None:
    db = migrated("journal", 5, tmp_path / "db")
    kept = ["_litestream_seq", "_litestream_lock", "libsql_wasm_func_table", "_cf_KV", "extra"]
    make_db(db, "".join(f"CREATE TABLE {t} (x);INSERT INTO {t} VALUES (1);" for t in kept))
    proc = push(cli, db, snapshot("journal", 5), "--accept-data-loss")
    assert proc.returncode == 0, proc.stderr
    names = {r[0] for r in query(db, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert set(kept[:-1]) | {"__drizzle_migrations"} <= names
    assert "extra" not in names  # not declared and not ignored: dropped (1 row, accepted)
    assert "drops extra with 1 row(s)" in proc.stderr
    assert len(query(db, "SELECT * FROM __drizzle_migrations")) == 6  # history untouched


SCHEMA_V1 = """\
CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, qty text);
CREATE INDEX items_name ON items (name);
CREATE TABLE audit (n integer);
CREATE TRIGGER items_audit AFTER INSERT ON items BEGIN INSERT INTO audit VALUES (new.id); END;
CREATE VIEW item_names AS SELECT name FROM items;
"""


def test_a_rebuild_keeps_indexes_views_and_triggers(tmp_path: Path, cli: Cli) -> None:
    db = make_db(tmp_path / "app.db", SCHEMA_V1 + "INSERT INTO items VALUES (1, 'a', '3');")
    schema = tmp_path / "schema.sql"
    schema.write_text(SCHEMA_V1.replace("qty text", "qty integer"))
    proc = push(cli, db, schema)
    assert proc.returncode == 0, proc.stderr
    assert "rebuild table items: qty: TEXT -> INTEGER" in proc.stderr
    assert query(db, "SELECT id, name, qty, typeof(qty) FROM items") == [(1, "a", 3, "integer")]
    assert master(db) == master(make_db(tmp_path / "ref.db", schema.read_text()))
    make_db(db, "INSERT INTO items VALUES (2, 'b', 1);")
    assert query(db, "SELECT n FROM audit") == [(1,), (2,)]  # the trigger is back and fires
    assert query(db, "SELECT name FROM item_names ORDER BY 1") == [("a",), ("b",)]


def test_a_failing_statement_rolls_the_whole_push_back(tmp_path: Path, cli: Cli) -> None:
    """A statement that fails inside the transaction (here a STRICT table refusing a value
    the accepted type change could not convert, which no count foresees) undoes it all."""
    db = make_db(tmp_path / "app.db", SCHEMA_V1 + "INSERT INTO items VALUES (1, 'a', 'many');")
    schema = tmp_path / "schema.sql"
    strict = SCHEMA_V1.replace("qty text);", "qty integer) STRICT;")
    schema.write_text(strict + "CREATE TABLE more (id integer PRIMARY KEY);")
    before = dump(db)
    proc = push(cli, db, schema, "--accept-data-loss")
    assert_one_clear_error(proc, 6, "rebuild table items", "cannot store TEXT value", "rolled back")
    assert dump(db) == before  # not even the new table `more`


def test_rows_a_new_check_would_refuse_are_refused_before_writing(tmp_path: Path, cli: Cli) -> None:
    db = make_db(tmp_path / "app.db", SCHEMA_V1 + "INSERT INTO items VALUES (1, 'a', '-3');")
    schema = tmp_path / "schema.sql"
    schema.write_text(SCHEMA_V1.replace("qty text", "qty text CHECK (qty > 0)"))
    before = dump(db)
    for proc in (push(cli, db, schema), push(cli, db, schema, "--dry-run")):
        assert_one_clear_error(proc, 15, "items: 1 row(s) fail the new CHECK(qty > 0)")
    assert dump(db) == before


def test_values_a_new_type_makes_equal_are_duplicates_before_writing(
    tmp_path: Path, cli: Cli
) -> None:
    """'7' and '07' are two texts under the kept UNIQUE, and one integer once the column is
    INTEGER: the dry run and the push both refuse it (15), as the rebuild's copy would fail."""
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE items (id integer PRIMARY KEY, code text UNIQUE);"
        "INSERT INTO items VALUES (1, '7'), (2, '07'), (3, 'x7');",
    )
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE items (id integer PRIMARY KEY, code integer UNIQUE);")
    before = dump(db)
    for proc in (push(cli, db, schema), push(cli, db, schema, "--dry-run")):
        assert_one_clear_error(
            proc, 15, "items(code) becomes unique over 1 group(s) of duplicated values"
        )
    assert dump(db) == before
    make_db(db, "DELETE FROM items WHERE id = 2;")
    proc = push(cli, db, schema, "--allow", "lost-values=items.code")  # 'x7' stays a text
    assert proc.returncode == 0, proc.stderr
    assert rows(db)["items"] == [(1, 7), (3, "x7")]


def test_foreign_keys_that_do_not_hold_are_refused_before_writing(tmp_path: Path, cli: Cli) -> None:
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE p (id integer PRIMARY KEY);CREATE TABLE c (id integer PRIMARY KEY, p_id int);"
        "INSERT INTO c VALUES (1, 42);",
    )
    schema = tmp_path / "schema.sql"
    schema.write_text(
        "CREATE TABLE p (id integer PRIMARY KEY);"
        "CREATE TABLE c (id integer PRIMARY KEY, p_id int REFERENCES p(id));"
    )
    before = dump(db)
    for proc in (push(cli, db, schema), push(cli, db, schema, "--dry-run")):
        assert_one_clear_error(proc, 15, "c(p_id) -> p(id): 1 row(s) would reference no parent")
    assert dump(db) == before


def test_a_foreign_key_to_a_key_the_same_push_adds_is_counted(tmp_path: Path, cli: Cli) -> None:
    """The parent's key column is new (NULL on its rows): every reference would break."""
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE p (id integer PRIMARY KEY);"
        "CREATE TABLE c (id integer PRIMARY KEY, p_code text);"
        "INSERT INTO p VALUES (1); INSERT INTO c VALUES (1, 'x'), (2, NULL);",
    )
    schema = tmp_path / "schema.sql"
    schema.write_text(
        "CREATE TABLE p (id integer PRIMARY KEY, code text UNIQUE);"
        "CREATE TABLE c (id integer PRIMARY KEY, p_code text REFERENCES p(code));"
    )
    before = dump(db)
    for proc in (push(cli, db, schema), push(cli, db, schema, "--dry-run")):
        assert_one_clear_error(proc, 15, "c(p_code) -> p(code): 1 row(s) would reference no parent")
    assert dump(db) == before
    # with the key declared with a default the child rows name, nothing breaks
    schema.write_text(
        "CREATE TABLE p (id integer PRIMARY KEY, code text NOT NULL DEFAULT 'x');"
        "CREATE UNIQUE INDEX p_code ON p (code);"
        "CREATE TABLE c (id integer PRIMARY KEY, p_code text REFERENCES p(code));"
    )
    assert push(cli, db, schema, "--dry-run").returncode == 0
    proc = push(cli, db, schema)
    assert proc.returncode == 0, proc.stderr
    assert rows(db)["c"] == [(1, "x"), (2, None)]


def test_foreign_keys_that_do_not_hold_roll_back(tmp_path: Path, cli: Cli) -> None:
    """The check before COMMIT, where the plan does not count: a parent nobody declares."""
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE c (id integer PRIMARY KEY, p_id int);INSERT INTO c VALUES (1, 7);",
    )
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE c (id integer PRIMARY KEY, p_id int REFERENCES nowhere(id));")
    before = dump(db)
    proc = push(cli, db, schema)
    assert_one_clear_error(proc, 6, "foreign key check failed", "c rowid 1 -> nowhere")
    assert dump(db) == before


def test_dry_run_prints_the_plan_and_writes_nothing(tmp_path: Path, cli: Cli) -> None:
    db = migrated("journal", 2, tmp_path / "db")
    raw = db.read_bytes()
    proc = push(cli, db, snapshot("journal", 3), "--dry-run", "--", "false")
    out = proc.stdout
    assert "-- rebuild table products: price: TEXT -> INTEGER" in out
    assert 'INSERT INTO "__litedeploy_new_products"' in out
    assert "LOSS: products.price: 1 value(s) do not convert" in out
    assert "left alone (push never drops them): __drizzle_migrations" in out
    # the dry run answers as the real push would: exit 15, the same words
    refusal = "push refused: 1 change(s) would lose data; first: products.price: 1 value(s)"
    assert f"dry run: nothing was written; the push would be refused (exit 15): {refusal}" in out
    assert_one_clear_error(proc, 15, refusal)
    real = push(cli, db, snapshot("journal", 3), "--", "false")
    assert_one_clear_error(real, 15, refusal)
    assert db.read_bytes() == raw
    accepted = push(cli, db, snapshot("journal", 3), "--dry-run", "--accept-data-loss")
    assert accepted.returncode == 0, accepted.stderr
    assert "the push would apply, losing the data above (accepted)" in accepted.stdout
    assert "needs --accept-data-loss" not in accepted.stdout + accepted.stderr
    assert db.read_bytes() == raw
    fresh = tmp_path / "none" / "app.db"
    fresh.parent.mkdir()
    assert push(cli, fresh, snapshot("journal", 5), "--dry-run").returncode == 0
    assert not fresh.exists()


@pytest.mark.parametrize(
    ("flag", "needle"),
    [
        ("products.nope=title", "products has no column nope"),
        ("products.name=nope", "the declared products has no column nope"),
        ("justone", "is not OLD=NEW or TABLE.OLD=NEW"),
        ("ghost=products", "the database has no table ghost"),
    ],
)
def test_bad_renames_are_usage_errors(tmp_path: Path, cli: Cli, flag: str, needle: str) -> None:
    db = migrated("journal", 3, tmp_path / "db")
    proc = push(cli, db, snapshot("journal", 4), "--rename", flag)
    assert_one_clear_error(proc, 2, needle)


def test_dry_run_is_for_push_mode_only(tmp_path: Path, cli: Cli) -> None:
    proc = cli("run", "--db", tmp_path / "app.db", "--migrations", JOURNAL, "--dry-run")
    assert_one_clear_error(proc, 2, "--dry-run is for --mode push")
    assert not (tmp_path / "app.db").exists()


def test_a_table_rename_when_declared(tmp_path: Path, cli: Cli) -> None:
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE item (id integer PRIMARY KEY, name text);INSERT INTO item VALUES (1, 'a');",
    )
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE product (id integer PRIMARY KEY, name text, sku text);")
    proc = push(cli, db, schema, "--rename", "item=product")
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT id, name, sku FROM product") == [(1, "a", None)]


FTS = """\
CREATE TABLE notes (id integer PRIMARY KEY, body text);
CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes', content_rowid='id');
"""


def test_virtual_tables_and_their_shadow_tables_are_left_alone(tmp_path: Path, cli: Cli) -> None:
    db = make_db(
        tmp_path / "app.db",
        FTS + "INSERT INTO notes VALUES (1, 'hello world');"
        "INSERT INTO notes_fts (rowid, body) VALUES (1, 'hello world');",
    )
    schema = tmp_path / "schema.sql"
    schema.write_text("CREATE TABLE notes (id integer PRIMARY KEY, body text, pinned integer);")
    proc = push(cli, db, schema)  # notes_fts is not declared: still never dropped
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'hello'") == [(1,)]
    assert (
        "not in the declared schema, left alone: virtual table notes_fts (and its 4 shadow "
        "table(s))" in proc.stderr
    )

    fresh = tmp_path / "fresh.db"
    schema.write_text(FTS)
    created = push(cli, fresh, schema)  # a declared virtual table is created when missing
    assert created.returncode == 0, created.stderr
    assert master(fresh) == master(make_db(tmp_path / "ref.db", FTS))
    assert push(cli, fresh, schema).returncode == 0


def test_a_rebuild_keeps_the_autoincrement_counter(tmp_path: Path, cli: Cli) -> None:
    """Ids of deleted rows are never handed out again, rebuild or not."""
    table = "CREATE TABLE t (id integer PRIMARY KEY AUTOINCREMENT, v {type});"
    db = make_db(
        tmp_path / "app.db",
        table.format(type="text") + "INSERT INTO t (v) VALUES ('1'), ('2'), ('3');"
        "DELETE FROM t WHERE id = 3;",
    )
    schema = tmp_path / "schema.sql"
    schema.write_text(table.format(type="integer"))
    proc = push(cli, db, schema)
    assert proc.returncode == 0, proc.stderr
    assert "AUTOINCREMENT counter kept at 3" in proc.stderr
    make_db(db, "INSERT INTO t (v) VALUES (4);")
    assert query(db, "SELECT id, v FROM t ORDER BY id") == [(1, 1), (2, 2), (4, 4)]


@pytest.mark.parametrize(
    ("step", "allow"),
    [(3, "lost-values=products.price"), (5, "drop-column=users.name")],
)
def test_a_named_loss_is_acknowledged_like_in_migrate_mode(
    tmp_path: Path, cli: Cli, step: int, allow: str
) -> None:
    """One way to acknowledge a loss, in both modes: --allow names it, nothing else passes."""
    db = migrated("journal", step - 1, tmp_path / "db")
    refused = push(cli, db, snapshot("journal", step), "--allow", "lost-rows=nothing")
    assert_one_clear_error(refused, 15, "push refused")
    assert (
        f"--allow {allow.replace('drop-column', 'lost-values')}" in refused.stderr.splitlines()[-1]
    )
    proc = push(cli, db, snapshot("journal", step), "--allow", allow)
    assert proc.returncode == 0, proc.stderr
    assert "push: data loss acknowledged by --allow" in proc.stderr


def test_references_to_a_table_the_push_creates_are_refused_before_writing(
    tmp_path: Path, cli: Cli
) -> None:
    """The new parent is empty: every reference in the rows would be broken."""
    db = make_db(
        tmp_path / "app.db",
        "CREATE TABLE c (id integer PRIMARY KEY, g_id int);INSERT INTO c VALUES (1, 3), (2, NULL);",
    )
    schema = tmp_path / "schema.sql"
    schema.write_text(
        "CREATE TABLE g (id integer PRIMARY KEY);"
        "CREATE TABLE c (id integer PRIMARY KEY, g_id int REFERENCES g(id));"
    )
    before = dump(db)
    proc = push(cli, db, schema)
    assert_one_clear_error(proc, 15, "c(g_id) -> g(id): 1 row(s) would reference no parent")
    assert dump(db) == before
    make_db(tmp_path / "empty.db", "CREATE TABLE c (id integer PRIMARY KEY, g_id int);")
    assert push(cli, tmp_path / "empty.db", schema).returncode == 0


def test_a_rename_push_was_not_told_about_is_named_in_the_hint(tmp_path: Path, cli: Cli) -> None:
    """drizzle-kit was told products.name became title; push, not told, cannot fill the new
    NOT NULL title, and its hint says which --rename would."""
    db = migrated("journal", 3, tmp_path / "db")
    raw = db.read_bytes()
    proc = push(cli, db, snapshot("journal", 4))
    assert_one_clear_error(proc, 15, "adds products.title NOT NULL without a default")
    assert (
        "hint: if products.title is products.name renamed, say so: --rename products.name=title"
        in proc.stderr
    )
    assert db.read_bytes() == raw
    told = push(cli, db, snapshot("journal", 4), "--rename", "products.name=title")
    assert told.returncode == 0, told.stderr
