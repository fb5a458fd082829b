"""Expand-only (issue 16): whether the release before can run on the database the pending
migrations leave, statement by statement, on hand-written shapes and on the real histories."""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import write_plain

from entrypoint.engine.sources import Migration, load_source
from entrypoint.safety.expand import compatibility

CORPUS = Path(__file__).resolve().parent / "corpus"


def migrations(tmp_path: Path, *sqls: str) -> list[Migration]:
    folder = write_plain(
        tmp_path / "m", [(f"{i:04d}_step", sql) for i, sql in enumerate(sqls, start=1)]
    )
    return load_source(folder).migrations


EXPAND = {
    "new table": "CREATE TABLE tags (id integer PRIMARY KEY, name text NOT NULL);",
    "nullable column": "ALTER TABLE items ADD note text;",
    "defaulted NOT NULL column": "ALTER TABLE items ADD qty integer DEFAULT 0 NOT NULL;",
    "generated column": "ALTER TABLE items ADD big integer AS (qty * 2);",
    "index": "CREATE INDEX items_name ON items (name);",
    "view": "CREATE VIEW cheap AS SELECT * FROM items WHERE qty < 3;",
    "dropped index": "DROP INDEX items_name;",
    "a new table seeded, indexed, renamed": (
        "CREATE TABLE t2 (id integer PRIMARY KEY, v text);\n"
        "INSERT INTO t2 (v) VALUES ('a');\n"
        "CREATE UNIQUE INDEX t2_v ON t2 (v);\n"
        "UPDATE t2 SET v = 'b';\n"
        "ALTER TABLE t2 RENAME TO t3;"
    ),
    "foreign keys pragma and a transaction": (
        "PRAGMA foreign_keys=OFF;\nBEGIN;\nCREATE TABLE x (id integer);\nCOMMIT;"
    ),
    "analyze": "ANALYZE;",
}

CONTRACT = {
    "dropped table": ("DROP TABLE items;", "DROP TABLE items"),
    "dropped column": ("ALTER TABLE items DROP COLUMN name;", "DROP COLUMN items.name"),
    "renamed table": ("ALTER TABLE items RENAME TO goods;", "RENAME TABLE items TO goods"),
    "renamed column": (
        "ALTER TABLE items RENAME COLUMN name TO title;",
        "RENAME COLUMN items.name TO title",
    ),
    "NOT NULL column without a default": (
        "ALTER TABLE items ADD sku text NOT NULL;",
        "NOT NULL without a default",
    ),
    "unique index on an existing table": (
        "CREATE UNIQUE INDEX items_name_unique ON items (name);",
        "UNIQUE index items_name_unique",
    ),
    "rows rewritten": ("UPDATE items SET qty = qty + 1;", "UPDATE items: rewrites"),
    "rows deleted": ("DELETE FROM items WHERE qty = 0;", "DELETE FROM items"),
    "rows added to an existing table": ("INSERT INTO items (name) VALUES ('x');", "INSERT INTO"),
    "trigger on an existing table": (
        "CREATE TRIGGER t AFTER INSERT ON items BEGIN SELECT 1; END;",
        "trigger t on items",
    ),
    "dropped view": ("DROP VIEW cheap;", "DROP VIEW cheap"),
    "journal mode": ("PRAGMA journal_mode = DELETE;", "PRAGMA journal_mode"),
    "vacuum": ("VACUUM;", "VACUUM"),
    "not understood": ("SAVEPOINTX a;", "not understood"),
    "drizzle-kit rebuild": (
        "PRAGMA foreign_keys=OFF;--> statement-breakpoint\n"
        "CREATE TABLE `__new_items` (`id` integer PRIMARY KEY, `name` integer);"
        "--> statement-breakpoint\n"
        "INSERT INTO `__new_items`(`id`, `name`) SELECT `id`, `name` FROM `items`;"
        "--> statement-breakpoint\n"
        "DROP TABLE `items`;--> statement-breakpoint\n"
        "ALTER TABLE `__new_items` RENAME TO `items`;--> statement-breakpoint\n"
        "PRAGMA foreign_keys=ON;",
        "rebuilds table items",
    ),
    "older rebuild shape": (
        "ALTER TABLE items RENAME TO __items_old;\n"
        "CREATE TABLE items (id integer PRIMARY KEY, name integer);\n"
        "INSERT INTO items SELECT id, name FROM __items_old;\n"
        "DROP TABLE __items_old;",
        "rebuilds table items",
    ),
}


@pytest.mark.parametrize("case", EXPAND)
def test_additive_changes_are_expand_only(tmp_path: Path, case: str) -> None:
    found = compatibility(migrations(tmp_path, EXPAND[case]))
    assert found.expand_only, [c.line() for c in found.contract]
    assert found.contract == []


@pytest.mark.parametrize("case", CONTRACT)
def test_changes_the_old_code_cannot_live_with(tmp_path: Path, case: str) -> None:
    sql, reason = CONTRACT[case]
    found = compatibility(migrations(tmp_path, sql))
    assert not found.expand_only
    lines = [c.line() for c in found.contract]
    assert len(lines) == 1, lines  # one reason per change: a rebuild is one, not five
    assert reason in lines[0]
    assert lines[0].startswith("0001_step statement ")


def test_one_contract_change_anywhere_decides_and_every_one_is_named(tmp_path: Path) -> None:
    found = compatibility(
        migrations(
            tmp_path,
            "CREATE TABLE a (id integer);",
            "ALTER TABLE items DROP COLUMN name;",
            "ALTER TABLE items ADD note text;\nDROP TABLE old_things;",
        )
    )
    assert not found.expand_only
    assert [c.line() for c in found.contract] == [
        "0002_step statement 1: DROP COLUMN items.name: the old code reads it",
        "0003_step statement 2: DROP TABLE old_things: the old code reads it",
    ]
    assert [c.what for c in found.changes if c.expand] == ["new table a", "new column items.note"]


def test_a_table_created_earlier_in_the_same_release_is_new_to_the_old_code(
    tmp_path: Path,
) -> None:
    found = compatibility(
        migrations(
            tmp_path,
            "CREATE TABLE tags (id integer PRIMARY KEY, name text);",
            "ALTER TABLE tags ADD sku text NOT NULL DEFAULT '';\n"
            "ALTER TABLE tags RENAME COLUMN name TO label;\n"
            "ALTER TABLE tags DROP COLUMN sku;",
        )
    )
    assert found.expand_only, [c.line() for c in found.contract]


def test_nothing_pending_is_expand_only() -> None:
    assert compatibility([]).expand_only


def decisions(history: str) -> dict[str, bool]:
    source = load_source(CORPUS / history)
    return {m.name[:4]: compatibility([m]).expand_only for m in source.migrations}


def test_the_corpus_histories_one_release_per_migration() -> None:
    """Each real migration as a release of its own: the additive ones start first, and the
    contract ones are named for what they are (checked against the files by hand)."""
    dyad = decisions("dyad")
    assert [k for k, v in dyad.items() if not v] == ["0026", "0038", "0040", "0041", "0045"]
    dyad_src = load_source(CORPUS / "dyad").migrations
    alone = [c.what.split(":")[0] for c in compatibility(dyad_src[40:41]).contract]
    triggers = [
        "trigger chat_search_messages_after_insert on messages",
        "trigger chat_search_messages_after_update on messages",
        "trigger chat_search_messages_after_delete on messages",
        "trigger chat_search_chats_after_title_update on chats",
        "trigger chat_search_chats_after_delete on chats",
    ]
    assert alone == [*triggers, "INSERT INTO chat_search_dirty_messages"]
    # with 0039, which creates the dirty tables, in the same release, filling one is part of
    # the expansion; the triggers on the old tables still are not
    together = [c.what.split(":")[0] for c in compatibility(dyad_src[39:41]).contract]
    assert together == triggers
    homarr = decisions("homarr")
    contract = [k for k, v in homarr.items() if not v]
    assert contract == [
        "0001", "0006", "0012", "0013", "0015", "0016",
        "0018", "0023", "0025", "0030", "0035", "0039",
    ]  # fmt: skip
    rebuilds = compatibility([load_source(CORPUS / "homarr").migrations[1]]).contract
    assert [c.what for c in rebuilds] == ["rebuilds table user (copy, drop, rename)"]
    assert homarr["0029"]  # new layout tables, filled from the existing ones
