"""Push mode on snapshots the real drizzle-kit wrote (0.31 journal, 1.0 folders).

Each test writes a short history as drizzle schema steps, has drizzle-kit generate its
migrations and snapshots (`drizzle_generate`), builds the live database by running
drizzle-kit's own SQL for the first steps, puts rows in, and pushes the newest snapshot
with `entrypoint run --mode push` as a staging container would. What is checked, for each
of issue 18's findings:

1. a partial unique index on a column the same push adds is counted on the rows as they
   will be (the column holding its default), never on the live table (where it does not
   exist: that was an internal error, exit 70);
2. every construct drizzle-kit records (expression and partial indexes, composite and named
   keys, CHECK, generated columns, views) loads, and is the schema drizzle-kit's own SQL makes;
3. a column whose default is not a constant is added by a rebuild (SQLite's ADD COLUMN
   refuses it on a table with rows), and the dry run says so;
4. the dry run exits as the real push does (0 or 15), with the same words;
5. a snapshot older than the newest migration is named, with the migrations it lacks;
6. a table renamed while a new one takes its name, and a column renamed while a new one
   takes its name, push both with `--rename`;
7. objects the migrations create and the snapshot lacks (FTS5 and its triggers) are named:
   not created on a new database, left alone on a migrated one.

After every push that applies, a dry run must report no change.
"""

from __future__ import annotations

import sqlite3
import subprocess
from pathlib import Path

import pytest
from drizzle_generate import Generated, Step, generate, upgrade
from drizzle_push import Harness
from harness import assert_one_clear_error, error_lines, run_cli

from entrypoint.pushplan.declared import from_file
from entrypoint.pushplan.planner import normal_sql
from entrypoint.safety.drift import differences
from entrypoint.safety.schema import read_schema

pytestmark = pytest.mark.interop

HARNESSES: list[Harness] = ["drizzle0", "drizzle1"]
IMPORTS = (
    "import { sql } from 'drizzle-orm';\n"
    "import { check, index, integer, primaryKey, sqliteTable, sqliteView, text, unique,\n"
    "  uniqueIndex } from 'drizzle-orm/sqlite-core';\n"
)


def schema(body: str) -> str:
    return IMPORTS + body


def build(gen: Generated, upto: int, db: Path, rows: str = "") -> Path:
    """`db` made by drizzle-kit's own SQL for its first `upto` migrations, then `rows`."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(db) as conn:
        for path in gen.migrations()[:upto]:
            for statement in path.read_text().split("--> statement-breakpoint"):
                if statement.strip():
                    conn.executescript(statement)
        conn.executescript(rows)
    conn.close()
    return db


def push(
    db: Path, *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_cli(
        "run", "--mode", "push", "--db", db, "--env", "staging", *args, "--", "true",
        cwd=db.parent, env=env,
    )  # fmt: skip


def push_folder(db: Path, gen: Generated, *args: str) -> subprocess.CompletedProcess[str]:
    """Push the newest snapshot of the migrations folder (the default, no --schema)."""
    return push(db, "--migrations", gen.folder, "--format", gen.format, *args)


def push_newest(
    db: Path, gen: Generated, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Push drizzle-kit's newest snapshot (`--schema`)."""
    return push(db, "--schema", gen.snapshot(-1), "--migrations", db.parent, *args, env=env)


def assert_settled(db: Path, gen: Generated) -> None:
    """A dry run after the push: nothing left to change."""
    again = push_newest(db, gen, "--dry-run")
    assert again.returncode == 0, again.stderr
    assert "changes: 0 (the schema already matches)" in again.stdout, again.stdout


def rows(db: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as conn:
        found = conn.execute(sql).fetchall()
    conn.close()
    return found


def never_internal(proc: subprocess.CompletedProcess[str]) -> None:
    assert proc.returncode != 70, proc.stderr
    assert "internal error" not in proc.stderr and "Traceback" not in proc.stderr


@pytest.fixture(params=HARNESSES)
def harness(request: pytest.FixtureRequest) -> Harness:
    return request.param  # type: ignore[no-any-return]


# --- 2. every construct drizzle-kit records ------------------------------------------------------

CONSTRUCTS = schema("""
export const guests = sqliteTable(
  'guests',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    email: text('email').notNull(),
    type: text('type').notNull().default('main'),
    name: text('name'),
    createdAt: integer('created_at').notNull().default(sql`(strftime('%s', 'now'))`),
    upper: text('upper').generatedAlwaysAs(sql`upper("name")`, { mode: 'virtual' }),
    stored: text('stored').generatedAlwaysAs(sql`lower("email")`, { mode: 'stored' }),
  },
  (t) => [
    uniqueIndex('guests_email_unique').on(sql`lower(${t.email})`),
    uniqueIndex('guests_main_unique').on(t.name).where(sql`${t.type} = 'main'`),
    index('guests_mixed_idx').on(t.type, sql`lower(${t.name})`),
    check('guests_type_check', sql`${t.type} in ('main', 'plus')`),
    unique('guests_name_type_unique').on(t.name, t.type),
  ],
);

export const memberships = sqliteTable(
  'memberships',
  {
    guestId: integer('guest_id').notNull().references(() => guests.id, { onDelete: 'cascade' }),
    groupId: integer('group_id').notNull(),
  },
  (t) => [primaryKey({ columns: [t.guestId, t.groupId] })],
);

export const named = sqliteTable(
  'named',
  { a: integer('a').notNull(), b: integer('b').notNull() },
  (t) => [primaryKey({ name: 'named_pk', columns: [t.a, t.b] })],
);

export const mainGuests = sqliteView('main_guests').as((qb) =>
  qb.select({ id: guests.id, email: guests.email }).from(guests)
    .where(sql`${guests.type} = 'main'`),
);
""")


def objects(conn: sqlite3.Connection) -> dict[tuple[str, str], str]:
    return {
        (str(kind), str(name)): normal_sql(str(sql))
        for kind, name, sql in conn.execute(
            "SELECT type, name, sql FROM sqlite_master WHERE sql IS NOT NULL "
            "AND type IN ('index', 'view', 'trigger')"
        )
    }


def test_every_construct_loads_as_drizzle_kits_own_sql_makes_it(
    tmp_path: Path, harness: Harness
) -> None:
    gen = generate(harness, [Step("constructs", CONSTRUCTS)], tmp_path / "migrations")
    theirs = build(gen, 1, tmp_path / "theirs" / "app.db")

    declared = from_file(gen.snapshot(-1)).load()
    with sqlite3.connect(theirs) as made:
        assert differences(read_schema(declared), read_schema(made)) == []
        assert objects(declared) == objects(made)
        assert ("index", "guests_email_unique") in objects(made)  # the expression index
    made.close()

    fresh = tmp_path / "fresh" / "app.db"
    fresh.parent.mkdir()
    proc = push_newest(fresh, gen)
    assert proc.returncode == 0, proc.stderr
    assert_settled(fresh, gen)
    on_theirs = push_newest(theirs, gen, "--dry-run")
    assert on_theirs.returncode == 0, on_theirs.stderr
    assert "changes: 0 (the schema already matches)" in on_theirs.stdout


# --- 1. a partial unique index on a column the push adds -----------------------------------------

GUESTS_V1 = schema("""
export const guests = sqliteTable('guests', {
  id: integer('id').primaryKey(),
  email: text('email').notNull(),
  name: text('name'),
});
""")
GUESTS_TYPED = schema("""
export const guests = sqliteTable(
  'guests',
  {
    id: integer('id').primaryKey(),
    email: text('email').notNull(),
    name: text('name'),
    type: text('type').notNull().default('main'),
  },
  (t) => [uniqueIndex('guests_main_unique').on(t.name).where(sql`${t.type} = 'main'`)],
);
""")


@pytest.mark.parametrize(
    ("names", "dupes"),
    [([], 0), (["Ann", "Bo", None, None], 0), (["Ann", "Bo", "Ann"], 1)],
    ids=["no rows", "distinct", "one duplicate"],
)
def test_a_partial_unique_index_on_a_column_the_push_adds(
    tmp_path: Path, harness: Harness, names: list[str | None], dupes: int
) -> None:
    gen = generate(
        harness, [Step("init", GUESTS_V1), Step("typed", GUESTS_TYPED)], tmp_path / "migrations"
    )
    values = ", ".join(
        f"({i}, 'g{i}@x.org', {repr(n) if n else 'NULL'})" for i, n in enumerate(names, 1)
    )
    db = build(
        gen, 1, tmp_path / "db" / "app.db", f"INSERT INTO guests VALUES {values};" if names else ""
    )
    raw = db.read_bytes()

    dry = push_newest(db, gen, "--dry-run")
    debug = push_newest(db, gen, "--dry-run", env={"LITEDEPLOY_DEBUG": "1"})
    for proc in (dry, debug):
        never_internal(proc)
    if dupes:
        refusal = (
            "push refused: 1 change(s) cannot be made without deleting rows, which push never "
            f"does; first: unique index guests_main_unique over {dupes} group(s) of duplicated "
            'values (where "guests"."type" = \'main\')'
        )
        assert_one_clear_error(dry, 15, refusal)
        assert assert_one_clear_error(push_newest(db, gen), 15) == error_lines(dry.stderr)[0]
        assert db.read_bytes() == raw
        return
    assert dry.returncode == 0, dry.stderr
    assert "-- alter table guests: add type" in dry.stdout
    assert "-- create index guests_main_unique" in dry.stdout
    proc = push_newest(db, gen)
    assert proc.returncode == 0, proc.stderr
    assert rows(db, "SELECT count(*) FROM guests WHERE type = 'main'") == [(len(names),)]
    assert_settled(db, gen)


# --- 2 and 1. an expression index, counted on its expression -------------------------------------

GUESTS_LOWER = schema("""
export const guests = sqliteTable(
  'guests',
  { id: integer('id').primaryKey(), email: text('email').notNull(), name: text('name') },
  (t) => [uniqueIndex('guests_email_unique').on(sql`lower(${t.email})`)],
);
""")


@pytest.mark.parametrize("emails", [["a@x.org", "b@x.org"], ["a@x.org", "A@X.org"]])
def test_an_expression_unique_index(tmp_path: Path, harness: Harness, emails: list[str]) -> None:
    gen = generate(
        harness, [Step("init", GUESTS_V1), Step("lower", GUESTS_LOWER)], tmp_path / "migrations"
    )
    values = ", ".join(f"({i}, '{e}', NULL)" for i, e in enumerate(emails, 1))
    db = build(gen, 1, tmp_path / "db" / "app.db", f"INSERT INTO guests VALUES {values};")
    raw = db.read_bytes()
    proc = push_newest(db, gen)
    never_internal(proc)
    if emails[1] == "A@X.org":  # the same address under lower(): the index cannot be made
        assert_one_clear_error(
            proc, 15, "unique index guests_email_unique over 1 group(s) of duplicated values"
        )
        assert db.read_bytes() == raw
        return
    assert proc.returncode == 0, proc.stderr
    (sql,) = rows(db, "SELECT sql FROM sqlite_master WHERE name = 'guests_email_unique'")[0]
    assert 'lower("email")' in str(sql)
    assert_settled(db, gen)


# --- 3. a default that is not a constant ---------------------------------------------------------

GUESTS_STAMPED = schema("""
export const guests = sqliteTable('guests', {
  id: integer('id').primaryKey(),
  email: text('email').notNull(),
  name: text('name'),
  createdAt: integer('created_at').notNull().default(sql`(strftime('%s', 'now'))`),
  seenAt: text('seen_at').default(sql`CURRENT_TIMESTAMP`),
});
""")


def test_a_column_with_a_non_constant_default_is_added_by_a_rebuild(
    tmp_path: Path, harness: Harness
) -> None:
    gen = generate(
        harness, [Step("init", GUESTS_V1), Step("stamped", GUESTS_STAMPED)], tmp_path / "migrations"
    )
    db = build(
        gen, 1, tmp_path / "db" / "app.db",
        "INSERT INTO guests VALUES (1, 'a@x.org', 'Ann'), (2, 'b@x.org', NULL);",
    )  # fmt: skip
    dry = push_newest(db, gen, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "-- rebuild table guests: add created_at, add seen_at" in dry.stdout
    assert "the push would apply cleanly" in dry.stdout
    proc = push_newest(db, gen)
    assert proc.returncode == 0, proc.stderr
    kept = rows(db, "SELECT id, email, name, typeof(created_at), seen_at IS NOT NULL FROM guests")
    assert kept == [(1, "a@x.org", "Ann", "integer", 1), (2, "b@x.org", None, "integer", 1)]
    assert_settled(db, gen)


# --- 4. the dry run answers as the push does -----------------------------------------------------

GUESTS_NAMELESS = schema("""
export const guests = sqliteTable('guests', {
  id: integer('id').primaryKey(),
  email: text('email').notNull(),
});
""")


def test_the_dry_run_exits_as_the_push_would(tmp_path: Path, harness: Harness) -> None:
    gen = generate(
        harness,
        [Step("init", GUESTS_V1), Step("nameless", GUESTS_NAMELESS)],
        tmp_path / "migrations",
    )
    db = build(
        gen, 1, tmp_path / "db" / "app.db", "INSERT INTO guests VALUES (1, 'a@x.org', 'Ann');"
    )
    raw = db.read_bytes()
    refusal = "push refused: 1 change(s) would lose data; first: drops guests.name with 1 non-NULL"
    dry = push_newest(db, gen, "--dry-run")
    real = push_newest(db, gen)
    assert assert_one_clear_error(dry, 15, refusal) == assert_one_clear_error(real, 15, refusal)
    assert f"the push would be refused (exit 15): {refusal}" in dry.stdout
    assert db.read_bytes() == raw
    for accepted in (["--accept-data-loss"], ["--allow", "lost-values=guests.name"]):
        dry = push_newest(db, gen, "--dry-run", *accepted)
        assert dry.returncode == 0, dry.stderr
        assert "the push would apply, losing the data above (accepted)" in dry.stdout
        assert "needs --accept-data-loss" not in dry.stdout + dry.stderr
        assert db.read_bytes() == raw
    proc = push_newest(db, gen, "--accept-data-loss")
    assert proc.returncode == 0, proc.stderr
    assert_settled(db, gen)


# --- 5. the newest snapshot older than the newest migration -------------------------------------

GUESTS_INDEXED = schema("""
export const guests = sqliteTable(
  'guests',
  { id: integer('id').primaryKey(), email: text('email').notNull(), name: text('name') },
  (t) => [index('guests_name_idx').on(t.name)],
);
""")


def test_a_snapshot_older_than_the_newest_migration_is_named(
    tmp_path: Path, harness: Harness
) -> None:
    steps = [Step("init", GUESTS_V1), Step("indexed", GUESTS_INDEXED), Step("typed", GUESTS_TYPED)]
    gen = generate(harness, steps, tmp_path / "migrations")
    db = build(
        gen,
        3,
        tmp_path / "db" / "app.db",
        "INSERT INTO guests VALUES (1, 'a@x.org', 'Ann', 'main');",
    )
    gen.drop_snapshots(last=2)  # the two newest migrations were written without drizzle-kit
    first, *after = [p.stem if harness == "drizzle0" else p.parent.name for p in gen.migrations()]

    dry = push_folder(db, gen, "--dry-run")
    warning = (
        f"is older than the newest migration: it was written with {first}, and 2 migration(s) "
        f"after it have none ({', '.join(after)}); push targets the schema as that snapshot has "
        "it and undoes what those migrations changed"
    )
    assert warning in dry.stderr
    assert warning in dry.stdout
    assert "-- drop index guests_main_unique" in dry.stdout  # what it would undo, shown
    assert_one_clear_error(dry, 15, "drops guests.type with 1 non-NULL value(s)")


# --- 6. renames drizzle-kit made in two steps, pushed in one -------------------------------------

INCIDENT = schema("""
export const incident = sqliteTable('incident', {
  id: integer('id').primaryKey(),
  title: text('title').notNull(),
});
""")
STATUS_REPORT = schema("""
export const statusReport = sqliteTable('status_report', {
  id: integer('id').primaryKey(),
  title: text('title').notNull(),
});
""")
STATUS_REPORT_AND_INCIDENT = schema("""
export const statusReport = sqliteTable('status_report', {
  id: integer('id').primaryKey(),
  title: text('title').notNull(),
});
export const incident = sqliteTable('incident', {
  id: integer('id').primaryKey(),
  reportId: integer('report_id').references(() => statusReport.id),
  note: text('note'),
});
""")
TABLE_RENAMED = {
    "type": "rename",
    "kind": "table",
    "from": ["public", "incident"],
    "to": ["public", "status_report"],
}


def test_a_table_renamed_while_a_new_one_takes_its_name(tmp_path: Path, harness: Harness) -> None:
    steps = [
        Step("init", INCIDENT),
        Step("renamed", STATUS_REPORT, renames=(TABLE_RENAMED,)),
        Step("new_incident", STATUS_REPORT_AND_INCIDENT),
    ]
    gen = generate(harness, steps, tmp_path / "migrations")
    db = build(
        gen, 1, tmp_path / "db" / "app.db", "INSERT INTO incident VALUES (1, 'down'), (2, 'slow');"
    )
    theirs = build(gen, 3, tmp_path / "theirs" / "app.db")

    proc = push_newest(db, gen, "--rename", "incident=status_report")
    assert proc.returncode == 0, proc.stderr
    assert rows(db, "SELECT id, title FROM status_report") == [(1, "down"), (2, "slow")]
    assert rows(db, "SELECT count(*) FROM incident") == [(0,)]
    with sqlite3.connect(db) as ours, sqlite3.connect(theirs) as made:
        assert differences(read_schema(made), read_schema(ours)) == []
    ours.close()
    made.close()
    assert_settled(db, gen)


USERS = schema("""
export const users = sqliteTable('users', { id: integer('id').primaryKey(), name: text('name') });
""")
USERS_FULL = schema("""
export const users = sqliteTable('users', {
  id: integer('id').primaryKey(),
  fullName: text('full_name'),
});
""")
USERS_FULL_AND_NAME = schema("""
export const users = sqliteTable('users', {
  id: integer('id').primaryKey(),
  fullName: text('full_name'),
  name: text('name'),
});
""")
COLUMN_RENAMED = {
    "type": "rename",
    "kind": "column",
    "from": ["public", "users", "name"],
    "to": ["public", "users", "full_name"],
}


def test_a_column_renamed_while_a_new_one_takes_its_name(tmp_path: Path, harness: Harness) -> None:
    steps = [
        Step("init", USERS),
        Step("renamed", USERS_FULL, renames=(COLUMN_RENAMED,)),
        Step("short_name", USERS_FULL_AND_NAME),
    ]
    gen = generate(harness, steps, tmp_path / "migrations")
    db = build(
        gen, 1, tmp_path / "db" / "app.db", "INSERT INTO users VALUES (1, 'Ann Lee'), (2, NULL);"
    )
    raw = db.read_bytes()

    plain = push_newest(db, gen)  # without the rename: name stays, full_name is new
    assert plain.returncode == 0, plain.stderr
    assert rows(db, "SELECT id, full_name, name FROM users") == [
        (1, None, "Ann Lee"),
        (2, None, None),
    ]
    db.write_bytes(raw)

    proc = push_newest(db, gen, "--rename", "users.name=full_name")
    assert proc.returncode == 0, proc.stderr
    assert "rename name -> full_name, add name" in proc.stderr
    assert rows(db, "SELECT id, full_name, name FROM users") == [
        (1, "Ann Lee", None),
        (2, None, None),
    ]
    assert_settled(db, gen)


# --- 7. what the migrations create and the snapshot does not declare -----------------------------

NOTES = schema("""
export const notes = sqliteTable('notes', { id: integer('id').primaryKey(), body: text('body') });
""")
NOTES_PINNED = schema("""
export const notes = sqliteTable('notes', {
  id: integer('id').primaryKey(),
  body: text('body'),
  pinned: integer('pinned').notNull().default(0),
});
""")
FTS = """\
CREATE VIRTUAL TABLE notes_fts USING fts5(body, content='notes', content_rowid='id');
--> statement-breakpoint
CREATE TRIGGER notes_ai AFTER INSERT ON notes BEGIN
  INSERT INTO notes_fts(rowid, body) VALUES (new.id, new.body);
END;
"""


def test_objects_the_snapshot_does_not_declare_are_named(tmp_path: Path, harness: Harness) -> None:
    steps = [Step("init", NOTES), Step("fts", NOTES, sql=FTS), Step("pinned", NOTES_PINNED)]
    gen = generate(harness, steps, tmp_path / "migrations")

    fresh = tmp_path / "fresh" / "app.db"
    fresh.parent.mkdir()
    proc = push_folder(fresh, gen)
    assert proc.returncode == 0, proc.stderr
    assert (
        "the migrations create virtual table notes_fts, trigger notes_ai, which the declared "
        "schema does not have" in proc.stderr
    )
    assert rows(fresh, "SELECT count(*) FROM sqlite_master WHERE name LIKE 'notes_%'") == [(0,)]

    db = build(gen, 2, tmp_path / "db" / "app.db", "INSERT INTO notes VALUES (1, 'hello world');")
    proc = push_folder(db, gen)
    assert proc.returncode == 0, proc.stderr
    assert "the migrations create" not in proc.stderr
    assert (
        "not in the declared schema, left alone: virtual table notes_fts (and its 4 shadow "
        "table(s)), trigger notes_ai" in proc.stderr
    )
    assert rows(db, "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'hello'") == [(1,)]
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO notes (id, body) VALUES (2, 'second note')")
    conn.close()
    assert rows(db, "SELECT rowid FROM notes_fts WHERE notes_fts MATCH 'second'") == [(2,)]
    assert rows(db, "SELECT pinned FROM notes ORDER BY id") == [(0,), (0,)]


# --- 4 and 3. what would fail inside the push is foreseen by the dry run ------------------------

GUESTS_CHECKED = schema("""
export const groups = sqliteTable('groups', { id: integer('id').primaryKey() });
export const guests = sqliteTable(
  'guests',
  {
    id: integer('id').primaryKey(),
    email: text('email').notNull(),
    name: text('name'),
    groupId: integer('group_id').references(() => groups.id),
  },
  (t) => [check('guests_email_check', sql`${t.email} like '%@%'`)],
);
""")
GUESTS_GROUPED = schema("""
export const groups = sqliteTable('groups', { id: integer('id').primaryKey() });
export const guests = sqliteTable('guests', {
  id: integer('id').primaryKey(),
  email: text('email').notNull(),
  name: text('name'),
  groupId: integer('group_id'),
});
""")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ("(1, 'a@x.org', NULL, 1), (2, 'b@x.org', NULL, NULL)", None),
        ("(1, 'nobody', NULL, 1)", "guests: 1 row(s) fail the new CHECK("),
        (
            "(1, 'a@x.org', NULL, 1), (2, 'b@x.org', NULL, 9), (3, 'c@x.org', NULL, 8)",
            "guests(group_id) -> groups(id): 2 row(s) would reference no parent",
        ),
    ],
    ids=["both hold", "a row fails the CHECK", "rows point at no group"],
)
def test_a_new_check_or_foreign_key_the_rows_break_is_refused_before_writing(
    tmp_path: Path, harness: Harness, row: str, reason: str | None
) -> None:
    steps = [Step("grouped", GUESTS_GROUPED), Step("checked", GUESTS_CHECKED)]
    gen = generate(harness, steps, tmp_path / "migrations")
    rows_sql = f"INSERT INTO groups VALUES (1); INSERT INTO guests VALUES {row};"
    db = build(gen, 1, tmp_path / "db" / "app.db", rows_sql)
    raw = db.read_bytes()
    dry = push_newest(db, gen, "--dry-run")
    real = push_newest(db, gen, "--accept-data-loss")  # deleting rows is never accepted
    if reason is None:
        assert dry.returncode == 0, dry.stderr
        assert real.returncode == 0, real.stderr
        assert_settled(db, gen)
        return
    line = assert_one_clear_error(real, 15, "cannot be made without deleting rows", reason)
    assert assert_one_clear_error(dry, 15, reason) == line
    assert db.read_bytes() == raw


# --- issue 19: drift on a history drizzle-kit 1.0 converted (`drizzle-kit up`) -------------------

KEYED = schema("""
export const tags = sqliteTable('tags', { slug: text('slug').primaryKey(), label: text('label') });
export const tagged = sqliteTable(
  'tagged',
  { tag: text('tag').notNull(), item: integer('item').notNull() },
  (t) => [primaryKey({ columns: [t.tag, t.item] })],
);
""")


def test_a_history_converted_to_1_0_shows_no_drift_on_its_own_database(tmp_path: Path) -> None:
    """drizzle-kit up records every key column as nullable; the database 0.31's SQL made says
    NOT NULL: not drift (it was 1-30 false lines per real history, and --strict refused)."""
    journal = generate("drizzle0", [Step("init", KEYED)], tmp_path / "journal")
    db = tmp_path / "db" / "app.db"
    db.parent.mkdir()
    ran = run_cli(
        "run", "--db", db, "--migrations", journal.folder, "--format", journal.format, "--", "true",
        cwd=db.parent,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    converted = upgrade(journal, tmp_path / "converted")
    snapshot = converted.snapshot(-1).read_text()
    assert '"notNull":false' in snapshot.replace(" ", "")  # what drizzle-kit 1.0 writes
    check = run_cli(
        "check", "--db", db, "--migrations", converted.folder, "--strict", cwd=db.parent
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "drift: none" in check.stdout
