"""Split a migration file into statements, the way drizzle does and a little safer."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from functools import cached_property

from ..base.record import Record

BREAKPOINT = "--> statement-breakpoint"

_FK_PRAGMA = re.compile(
    r"^PRAGMA\s+(?:\"?main\"?\.)?\"?foreign_keys\"?\s*(?:=\s*(?P<eq>\S+?)|\(\s*(?P<call>[^)]*)\))?\s*;?\s*$",
    re.IGNORECASE,
)
_OFF_VALUES = {"off", "0", "false", "no", "'off'", "'0'", "'false'", "'no'"}


@dataclass(frozen=True)
class Statement:
    """One SQL statement of a migration; `number` counts from 1 within its file."""

    number: int
    sql: str

    @cached_property
    def code(self) -> str:
        """The statement with comments removed and whitespace trimmed (worked out once)."""
        return strip_comments(self.sql).strip()

    @property
    def foreign_keys_setting(self) -> bool | None:
        """False/True for `PRAGMA foreign_keys=OFF/ON`, None for anything else."""
        match = _FK_PRAGMA.match(self.code)
        if match is None:
            return None
        value = match.group("eq") or match.group("call")
        if value is None:
            return None  # a read of the setting, not an assignment
        return value.strip().lower() not in _OFF_VALUES

    @property
    def is_foreign_keys_pragma(self) -> bool:
        """True for any `PRAGMA foreign_keys` statement (read or assignment)."""
        return _FK_PRAGMA.match(self.code) is not None


@dataclass(eq=False, repr=False)
class Chunk(Record):
    """A piece of a migration file as written, kept to report what was skipped."""

    text: str
    skipped: bool


def strip_comments(sql: str) -> str:
    """Remove `--` and `/* */` comments outside string literals and quoted names."""
    if "--" not in sql and "/*" not in sql:
        return sql  # nothing could start a comment (most statements)
    out: list[str] = []
    i, n = 0, len(sql)
    while i < n:
        ch = sql[i]
        if ch in "'\"`[":
            close = "]" if ch == "[" else ch
            j = sql.find(close, i + 1)
            while j != -1 and close != "]" and sql.startswith(close, j + 1):  # '' is a '
                j = sql.find(close, j + 2)
            j = n if j == -1 else j
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
            plain = _PLAIN.match(sql, i)  # a run of text with no quote or comment in it
            j = plain.end() if plain else i + 1
            out.append(sql[i:j])
            i = j
    return "".join(out)


_PLAIN = re.compile(r"[^'\"`\[/-]+")


def is_blank(sql: str) -> bool:
    """True when a chunk holds no SQL: only whitespace, comments or semicolons."""
    return strip_comments(sql).replace(";", "").strip() == ""


def split_complete(sql: str) -> list[str]:
    """Split on `;` boundaries that end a complete statement (triggers stay whole).

    The pieces are exactly those of asking `sqlite3.complete_statement` about every prefix
    that ends at a `;`, but in one pass: that question costs the prefix's length, so asking
    it at every `;` of a data migration (800 kB of INSERTs with `;` in their strings) took
    minutes. The pass runs SQLite's own recogniser (complete.c) over the text once; each
    piece is then confirmed with complete_statement, once.
    """
    parts: list[str] = []
    start = state = 0
    for match in _LEXEME.finditer(sql):
        kind = match.lastgroup
        if kind == "open":
            break  # a string, name or comment that never closes: the rest is one piece
        if kind == "word":
            word = match.group()
            token = _KEYWORDS.get(word.lower(), _OTHER) if word.isascii() else _OTHER
        else:
            token = _TOKENS[kind or "other"]
        state = _TRANSITIONS[state][token]
        if state == _START:
            parts.append(sql[start : match.end()])
            start, state = match.end(), 0
    if not all(sqlite3.complete_statement(p) for p in parts):  # never seen; be exact anyway
        return _split_by_prefixes(sql)
    tail = sql[start:]
    if not is_blank(tail):
        parts.append(tail)
    return parts


# sqlite3_complete()'s tokens and state machine (SQLite's src/complete.c): a `;` ends a
# statement unless it is inside CREATE [TEMP] TRIGGER ... `; END;` (a CASE ... END in a
# trigger body never follows a `;`, so it cannot end one).
_SEMI, _WS, _OTHER, _EXPLAIN, _CREATE, _TEMP, _TRIGGER, _END = range(8)
_START = 1
_TRANSITIONS = (
    # SEMI WS OTHER EXPLAIN CREATE TEMP TRIGGER END
    (1, 0, 2, 3, 4, 2, 2, 2),  # 0 nothing yet
    (1, 1, 2, 3, 4, 2, 2, 2),  # 1 at the end of a statement
    (1, 2, 2, 2, 2, 2, 2, 2),  # 2 in a statement
    (1, 3, 3, 2, 4, 2, 2, 2),  # 3 after EXPLAIN
    (1, 4, 2, 2, 2, 4, 5, 2),  # 4 after CREATE [TEMP]
    (6, 5, 5, 5, 5, 5, 5, 5),  # 5 in a trigger
    (6, 6, 5, 5, 5, 5, 5, 7),  # 6 after a `;` in a trigger
    (1, 7, 5, 5, 5, 5, 5, 5),  # 7 after `; END` in a trigger
)
_KEYWORDS = {
    "explain": _EXPLAIN,
    "create": _CREATE,
    "temp": _TEMP,
    "temporary": _TEMP,
    "trigger": _TRIGGER,
    "end": _END,
}
_TOKENS = {"semi": _SEMI, "ws": _WS, "quoted": _OTHER, "other": _OTHER}
# As complete.c reads text: quotes have no escapes (`'it''s'` is two strings), identifier
# characters are [0-9A-Za-z_$] and every non-ASCII character, whitespace is " \t\n\f\r".
# (The word class is written as the ASCII it excludes: as [0-9A-Za-z_$\x80-\U0010ffff] it
# cost re.compile 4 ms of every start; tests/test_statements.py checks they are the same.)
_LEXEME = re.compile(
    r"""
    (?P<semi>;)
  | (?P<ws>[ \t\n\f\r]+|/\*.*?\*/|--[^\n]*\n)
  | (?P<quoted>'[^']*'|"[^"]*"|`[^`]*`|\[[^\]]*\])
  | (?P<word>[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]+)
  | (?P<open>/\*|--|['"`\[])
  | (?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _split_by_prefixes(sql: str) -> list[str]:
    """The definition split_complete implements: complete_statement on every prefix (slow)."""
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


def split_statements(sql: str) -> tuple[list[Statement], list[Chunk]]:
    """Split a file on drizzle's breakpoints when present, else on complete statements.

    Returns the statements to run and every chunk with whether it was skipped
    (empty or comment-only chunks, which drizzle's migrator crashes on).
    """
    pieces = sql.split(BREAKPOINT) if BREAKPOINT in sql else [sql]
    statements: list[Statement] = []
    chunks: list[Chunk] = []
    for piece in pieces:
        if is_blank(piece):
            chunks.append(Chunk(piece, skipped=True))
            continue
        chunks.append(Chunk(piece, skipped=False))
        for part in split_complete(piece):
            if not is_blank(part):
                statements.append(Statement(len(statements) + 1, part.strip()))
    return statements, chunks
