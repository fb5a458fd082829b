"""Split a migration file into statements, the way drizzle does and a little safer."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass

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

    @property
    def code(self) -> str:
        """The statement with comments removed and whitespace trimmed."""
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


@dataclass(frozen=True)
class Chunk:
    """A piece of a migration file as written, kept to report what was skipped."""

    text: str
    skipped: bool


def strip_comments(sql: str) -> str:
    """Remove `--` and `/* */` comments outside string literals and quoted names."""
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


def is_blank(sql: str) -> bool:
    """True when a chunk holds no SQL: only whitespace, comments or semicolons."""
    return strip_comments(sql).replace(";", "").strip() == ""


def split_complete(sql: str) -> list[str]:
    """Split on `;` boundaries that end a complete statement (triggers stay whole)."""
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
