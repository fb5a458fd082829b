"""The statement split as first written, the oracle of the one-pass split, and a big file.

`split_by_prefixes` asks `sqlite3.complete_statement` about every prefix that ends at a `;`:
the definition of where a statement ends, and quadratic in the number of `;` inside one.
tests/test_statements.py, scripts/check_split.py and bench/split.py compare the entrypoint's
split with it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from entrypoint.engine.statements import BREAKPOINT, is_blank, split_complete

ROOT = Path(__file__).resolve().parent.parent


def split_by_prefixes(sql: str) -> list[str]:
    """entrypoint/engine/statements.py's split_complete before it was made linear, verbatim."""
    parts: list[str] = []
    start = 0
    pos = sql.find(";")
    while pos != -1:
        candidate = sql[start : pos + 1]
        if sqlite3.complete_statement(candidate):
            parts.append(candidate)
            start = pos + 1
        pos = sql.find(";", pos + 1)
    tail = sql[start:]
    if not is_blank(tail):
        parts.append(tail)
    return parts


def strip_comments_by_char(sql: str) -> str:
    """statements.strip_comments before it skipped runs of plain text, verbatim."""
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            j = i + 1
            while j < n:
                if sql[j] == close:
                    if close != "]" and j + 1 < n and sql[j + 1] == close:
                        j += 2
                        continue
                    break
                j += 1
            out.append(sql[i : j + 1])
            i = j + 1
        elif sql.startswith("--", i):
            j = sql.find("\n", i)
            i = n if j == -1 else j
        elif sql.startswith("/*", i):
            j = sql.find("*/", i + 2)
            i = n if j == -1 else j + 2
            out.append(" ")
        else:
            out.append(ch)
            i += 1
    return "".join(out)


BIG_HEAD = """\
CREATE TABLE notes (id integer PRIMARY KEY, body text, kind text);
CREATE TABLE audit (msg text);
CREATE TRIGGER notes_audit AFTER INSERT ON notes
BEGIN
  INSERT INTO audit (msg) VALUES (
    CASE WHEN NEW.kind = 'a;b' THEN 'kind a; id ' || NEW.id ELSE 'other; ' || NEW.id END
  );
  UPDATE audit SET msg = msg || ';' WHERE msg LIKE '%;%' AND CASE NEW.id WHEN 1 THEN 1 END;
END;"""
COMMENT = "-- rows; copied; from the old table"
BIG_TAIL = """\
/* a block comment; with; semicolons */ UPDATE notes SET kind = 'done; really' WHERE id = 1;"""


def big_data_migration(size: int = 800_000) -> tuple[str, list[str]]:
    """A data migration of about `size` bytes, and the statements split_statements finds.

    One INSERT carries almost all of it, thousands of rows whose strings hold `;` (the
    case that made splitting quadratic), after a trigger whose body has `;` and CASE ... END.
    """
    rows: list[str] = []
    length = 0
    while length < size:
        n = len(rows) + 1
        row = f"({n}, 'line {n}; of; many ; semicolons;', '{'a;b' if n % 2 else 'c'}')"
        rows.append(row)
        length += len(row) + 2
    insert = "INSERT INTO notes (id, body, kind) VALUES\n" + ",\n".join(rows) + ";"
    expected = [
        "CREATE TABLE notes (id integer PRIMARY KEY, body text, kind text);",
        "CREATE TABLE audit (msg text);",
        BIG_HEAD[BIG_HEAD.index("CREATE TRIGGER") :],
        f"{COMMENT}\n{insert}",
        BIG_TAIL,
    ]
    text = f"{BIG_HEAD}\n{COMMENT}\n{insert}\n{BIG_TAIL}\n"
    return text, expected


EXTRA_CORPUS = Path("/work/extra-corpus")


def corpus_roots() -> list[Path]:
    """The real migration histories on this machine (those outside tests/ are local only)."""
    roots = sorted(p for p in (ROOT / "tests" / "corpus").iterdir() if p.is_dir())
    roots += sorted(EXTRA_CORPUS.glob("*/migrations"))
    roots += sorted(EXTRA_CORPUS.glob("_local-only/*/migrations"))
    return roots


def corpus_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.sql"))


def compare(path: Path) -> tuple[int, list[str]]:
    """Statements in one file, and each place where the two splits differ.

    Compared on what split_statements feeds the split (each chunk between drizzle's
    breakpoints, or the whole file) and on the whole file as well.
    """
    text = path.read_text(encoding="utf-8")
    chunks = text.split(BREAKPOINT) if BREAKPOINT in text else [text]
    count, differences = 0, []
    for number, piece in enumerate([*chunks, text] if len(chunks) > 1 else chunks):
        old, new = split_by_prefixes(piece), split_complete(piece)
        if number < len(chunks):
            count += sum(1 for part in old if not is_blank(part))
        if old != new:
            where = "whole file" if number == len(chunks) else f"chunk {number + 1}"
            differences.append(f"{path} ({where}): {len(old)} pieces before, {len(new)} now")
    return count, differences
