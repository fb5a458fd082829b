"""Splitting a migration file into statements: drizzle's breakpoints, else complete statements."""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from split_reference import (
    big_data_migration,
    compare,
    corpus_files,
    corpus_roots,
    split_by_prefixes,
    strip_comments_by_char,
)

from entrypoint.engine.statements import split_complete, split_statements, strip_comments

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


# --- the split is SQLite's own, in one pass ----------------------------------------------------

# Pieces chosen to reach every state of sqlite3_complete: keywords in any case, strings and
# names of all four kinds (closed or not), comments (closed or not), `;` everywhere.
# fmt: off
FRAGMENTS = [
    ";", " ", "\n", "\t", "\f", "\v", "x", "1end", "$a", "é", "(", ")", ",", "'a;b'",
    "'it''s;'", '"q;"', '"a""b;"', "`b;`", "[c;]", "'open", '"open', "[open", "-- c;\n",
    "-- c;", "/* d; */", "/*", "/", "-", "CREATE", "create", "TEMP", "TeMpOrArY", "TRIGGER",
    "trigger", "END", "end", "ending", "EXPLAIN", "BEGIN", "CASE", "WHEN", "THEN", "ELSE",
    "SELECT", "t",
]

# Statement openings that steer sqlite3_complete into its trigger and EXPLAIN states, and the
# separators it has to tell apart (\v is not whitespace to it, \f is).
STARTS = [
    "CREATE TRIGGER x BEGIN", "create temp trigger", "CREATE TEMPORARY TRIGGER", "explain",
    "EXPLAIN CREATE TRIGGER", "CREATE TABLE t", "CREATE", "SELECT 1", "; END;", ";END", "END;",
]
SEPARATORS = [" ", "", "\n", "\f", "\v", "\r", "/*c*/", "--c\n", "/**/"]
# fmt: on


def random_sql(rng: random.Random) -> str:
    out = []
    for _ in range(rng.randint(1, 6)):
        out.append(rng.choice(STARTS))
        for _ in range(rng.randint(0, 8)):
            out += [rng.choice(SEPARATORS), rng.choice(FRAGMENTS)]
        out.append(rng.choice(SEPARATORS))
    return "".join(out)


def test_split_is_what_complete_statement_says_at_every_semicolon() -> None:
    rng = random.Random(11)
    for _ in range(5000):
        text = random_sql(rng)
        assert split_complete(text) == split_by_prefixes(text), text


def test_comments_are_stripped_as_before() -> None:
    rng = random.Random(12)
    for _ in range(3000):
        text = random_sql(rng)
        assert strip_comments(text) == strip_comments_by_char(text), text


def test_trigger_with_case_end_in_its_body_stays_whole() -> None:
    trigger = (
        "CREATE TEMP TRIGGER t_upd AFTER UPDATE ON t BEGIN\n"
        "  UPDATE t SET x = CASE WHEN NEW.x > 0 THEN 'pos;' ELSE 'neg;' END;\n"
        "  SELECT CASE NEW.x WHEN 1 THEN 1 END;\n"
        "END;"
    )
    text = f"CREATE TABLE t (x);\n{trigger}\nDELETE FROM t;"
    assert sqls(text) == ["CREATE TABLE t (x);", trigger, "DELETE FROM t;"]


def test_an_800_kb_data_migration_splits_into_its_statements() -> None:
    """800 kB, 70,000 `;` inside one INSERT's strings: the split the old code took a minute on."""
    text, expected = big_data_migration(800_000)
    assert len(text) > 800_000 and text.count(";") > 60_000
    assert sqls(text) == expected
    conn = sqlite3.connect(":memory:")
    for sql in expected:
        conn.execute(sql)
    rows = conn.execute("SELECT count(*) FROM notes").fetchone()[0]
    assert rows > 10_000
    assert conn.execute("SELECT count(*) FROM audit").fetchone()[0] == rows


@pytest.mark.parametrize(
    "root", corpus_roots(), ids=lambda p: p.name.replace("migrations", p.parent.name)
)
def test_every_corpus_file_splits_as_complete_statement_says(root: Path) -> None:
    files = corpus_files(root)
    assert files
    for path in files:
        _, differences = compare(path)
        assert differences == []


def test_the_lexers_word_characters_are_sqlites() -> None:
    """complete.c's identifier characters: [0-9A-Za-z_$] and every non-ASCII character; the
    class is written as the ASCII it leaves out (cheaper to compile), so check every one."""
    from entrypoint.engine.statements import _LEXEME

    def sqlite_id_char(c: str) -> bool:
        return not c.isascii() or c.isalnum() or c in "_$"

    wrong = [
        hex(code)
        for code in [*range(0xD800), *range(0xE000, 0x11000), 0x1F600, 0xE0001, 0x10FFFF]
        if ((m := _LEXEME.match(chr(code))) is not None and m.lastgroup == "word")
        != sqlite_id_char(chr(code))
    ]
    assert wrong == []
