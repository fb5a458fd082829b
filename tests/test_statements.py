"""Splitting a migration file into statements: drizzle's breakpoints, else complete statements."""

from __future__ import annotations

import sqlite3

from entrypoint.statements import split_statements

TRIGGER = """\
CREATE TRIGGER audit_insert AFTER INSERT ON t
BEGIN
  INSERT INTO log(msg) VALUES ('inserted; id=' || NEW.id);
  UPDATE counters SET n = n + 1;
END;"""


def sqls(text: str) -> list[str]:
    return [s.sql for s in split_statements(text)[0]]


def test_breakpoints_split_drizzle_chunks() -> None:
    text = (
        "CREATE TABLE a (id integer);\n--> statement-breakpoint\n"
        "CREATE TABLE b (id integer);\n--> statement-breakpoint\n"
        "CREATE INDEX a_id ON a (id);"
    )
    statements, chunks = split_statements(text)
    assert [s.sql for s in statements] == [
        "CREATE TABLE a (id integer);",
        "CREATE TABLE b (id integer);",
        "CREATE INDEX a_id ON a (id);",
    ]
    assert [s.number for s in statements] == [1, 2, 3]
    assert [c.skipped for c in chunks] == [False, False, False]


def test_breakpoint_chunk_holding_a_trigger_stays_whole() -> None:
    text = f"CREATE TABLE t (id integer);\n--> statement-breakpoint\n{TRIGGER}"
    assert sqls(text) == ["CREATE TABLE t (id integer);", TRIGGER]


def test_without_breakpoints_splits_on_complete_statements() -> None:
    text = "CREATE TABLE a (id integer);\nCREATE TABLE b (id integer);\nINSERT INTO a VALUES (1);\n"
    assert sqls(text) == [
        "CREATE TABLE a (id integer);",
        "CREATE TABLE b (id integer);",
        "INSERT INTO a VALUES (1);",
    ]


def test_trigger_body_semicolons_do_not_split() -> None:
    text = f"CREATE TABLE t (id integer);\n{TRIGGER}\nINSERT INTO t VALUES (1);\n"
    assert sqls(text) == ["CREATE TABLE t (id integer);", TRIGGER, "INSERT INTO t VALUES (1);"]


def test_semicolons_in_string_literals_and_comments_do_not_split() -> None:
    text = (
        "-- a comment; with a semicolon\n"
        "INSERT INTO notes (body) VALUES ('one; two; three');\n"
        'INSERT INTO notes (body) VALUES ("quoted;name");\n'
        "/* block; comment */ INSERT INTO notes (body) VALUES ('it''s; fine');\n"
    )
    statements = sqls(text)
    assert len(statements) == 3
    assert "'one; two; three'" in statements[0]
    assert '"quoted;name"' in statements[1]
    assert "'it''s; fine'" in statements[2]


def test_split_statements_run_as_written() -> None:
    """The pieces are real statements: executing them one by one builds what the file says."""
    text = (
        "CREATE TABLE t (id integer primary key);\n"
        "CREATE TABLE log (msg text);\nCREATE TABLE counters (n integer);\n"
        "INSERT INTO counters VALUES (0);\n"
        f"{TRIGGER}\nINSERT INTO t VALUES (7);\n"
    )
    conn = sqlite3.connect(":memory:")
    for sql in sqls(text):
        conn.execute(sql)  # execute() refuses more than one statement at a time
    assert conn.execute("SELECT msg FROM log").fetchall() == [("inserted; id=7",)]
    assert conn.execute("SELECT n FROM counters").fetchall() == [(1,)]


def test_last_statement_without_semicolon_is_kept() -> None:
    assert sqls("CREATE TABLE a (id integer);\nCREATE TABLE b (id integer)\n") == [
        "CREATE TABLE a (id integer);",
        "CREATE TABLE b (id integer)",
    ]


def test_empty_and_comment_only_chunks_are_skipped_and_reported() -> None:
    text = (
        "CREATE TABLE a (id integer);\n--> statement-breakpoint\n"
        "\n--> statement-breakpoint\n"
        "-- nothing to do here\n/* really */\n--> statement-breakpoint\n"
        ";\n--> statement-breakpoint\n"
        "CREATE TABLE b (id integer);"
    )
    statements, chunks = split_statements(text)
    assert [s.sql for s in statements] == [
        "CREATE TABLE a (id integer);",
        "CREATE TABLE b (id integer);",
    ]
    assert [s.number for s in statements] == [1, 2]
    assert [c.skipped for c in chunks] == [False, True, True, True, False]


def test_comment_only_file_has_no_statements() -> None:
    statements, chunks = split_statements("-- generated, nothing changed\n")
    assert statements == []
    assert [c.skipped for c in chunks] == [True]


def test_foreign_keys_pragmas_are_recognised() -> None:
    statements, _ = split_statements(
        "PRAGMA foreign_keys=OFF;\n--> statement-breakpoint\n"
        "PRAGMA foreign_keys = on;\n--> statement-breakpoint\n"
        "PRAGMA foreign_keys;\n--> statement-breakpoint\n"
        "PRAGMA journal_mode=WAL;"
    )
    assert [s.foreign_keys_setting for s in statements] == [False, True, None, None]
    assert [s.is_foreign_keys_pragma for s in statements] == [True, True, True, False]
