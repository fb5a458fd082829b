"""The SQL-text toolkit: tokens, names, and what kind of statement a migration statement is.

Everything that reads migration SQL as text (the findings, the rehearsal's judge, the
post-migration check, push mode) goes through here, so that they agree on what a
statement does. It is a tokenizer plus a small recogniser for the statement shapes that
matter to data (create / drop / rename / add / drop column / insert / update / delete /
pragma / transaction control), not a full SQL parser: whatever it does not recognise is
`Other`, and callers treat that as "unknown", never as "safe".
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

from ..base.ident import quote
from ..base.record import Record

_I = re.IGNORECASE

# SQLite's identifier characters (its tokenizer's sqlite3IsIdChar): ASCII letters, `_`, and
# every character from U+0080 on; digits and `$` after the first. Written as negated ASCII
# ranges: a class spelling out U+0080-U+FFFF costs re.compile ~5 ms, on every start-up.
_ID_START = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"
_ID_CHAR = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"
# One identifier, quoted any of SQLite's four ways or bare; QNAME allows `schema.name`.
NAME = rf"(?:`[^`]*`|\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|{_ID_START}{_ID_CHAR}*)"
QNAME = rf"(?:{NAME}\s*\.\s*)?{NAME}"

_TOKEN = re.compile(
    rf"""
    (?P<ws>\s+)
  | (?P<comment>--[^\n]*|/\*.*?(?:\*/|\Z))
  | (?P<blob>[xX]'[0-9a-fA-F]*')
  | (?P<string>'(?:[^']|'')*'?)
  | (?P<ident>"(?:[^"]|"")*"?|`[^`]*`?|\[[^\]]*\]?)
  | (?P<number>(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?|0[xX][0-9a-fA-F]+)
  | (?P<word>{_ID_START}{_ID_CHAR}*)
  | (?P<param>[?:@$][\w$]*)
  | (?P<op>\|\||<<|>>|<=|>=|==|!=|<>|->>|->|.)
    """,
    re.VERBOSE | re.DOTALL,
)


class Token(NamedTuple):
    """One lexical token: kind (word, ident, string, number, blob, param, op), text, offset.

    A named tuple: a statement has hundreds of tokens, and a tuple is made in C (a frozen
    dataclass sets each field through object.__setattr__, three times slower).
    """

    kind: str
    text: str
    start: int

    @property
    def end(self) -> int:
        return self.start + len(self.text)

    @property
    def upper(self) -> str:
        return self.text.upper() if self.kind == "word" else ""

    @property
    def is_name(self) -> bool:
        return self.kind in ("word", "ident")

    @property
    def name(self) -> str:
        """The identifier this token spells, quotes removed."""
        return unquote(self.text) if self.is_name else self.text


def tokens(sql: str) -> list[Token]:
    """The tokens of a statement, without whitespace and comments."""
    return list(_token_stream(sql))


def _token_stream(sql: str) -> Iterator[Token]:
    for m in _TOKEN.finditer(sql):
        kind = m.lastgroup or "op"
        if kind not in ("ws", "comment"):
            yield Token(kind, m.group(), m.start())


def unquote(name: str) -> str:
    """The last part of a possibly qualified, possibly quoted name: `"a"."b""c"` -> `b"c`."""
    part = re.findall(NAME, name)[-1] if re.search(NAME, name) else name
    if part[:1] == '"':
        return part[1:-1].replace('""', '"')
    if part[:1] in "`[":
        return part[1:-1]
    return str(part)


def split_top(text: str) -> list[str]:
    """Split on commas outside parentheses, strings and quoted names."""
    parts, depth, start = [], 0, 0
    for t in tokens(text):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif t.text == "," and depth == 0:
            parts.append(text[start : t.start].strip())
            start = t.end
    parts.append(text[start:].strip())
    return [p for p in parts if p]


def plain_column(expr: str) -> str | None:
    """`"price"`, `price` or `products.price` -> `price`; None for anything computed."""
    toks = tokens(expr)
    if len(toks) == 1 and toks[0].is_name and toks[0].upper not in _NOT_COLUMNS:
        return toks[0].name
    if len(toks) == 3 and toks[0].is_name and toks[1].text == "." and toks[2].is_name:
        return toks[2].name
    return None


_NOT_COLUMNS = {"NULL", "TRUE", "FALSE", "CURRENT_TIME", "CURRENT_DATE", "CURRENT_TIMESTAMP"}


def is_constant(expr: str) -> bool:
    """True when an expression is a literal SQLite accepts as an ADD COLUMN default.

    SQLite refuses `ALTER TABLE ADD COLUMN ... DEFAULT (expr)` with a non-constant
    expression on a table that has rows ("Cannot add a column with non-constant default");
    literals, signed numbers, NULL, TRUE/FALSE and parenthesised literals are constant.
    CURRENT_TIME / _DATE / _TIMESTAMP are refused as well.
    """
    toks = [t for t in tokens(expr) if t.text not in "()"]
    if toks and toks[0].text in "+-":
        toks = toks[1:]
    if len(toks) != 1:
        return False
    t = toks[0]
    return t.kind in ("string", "number", "blob") or t.upper in ("NULL", "TRUE", "FALSE")


# --------------------------------------------------------------------------------------
# Statement kinds


# The shapes are records (base/record.py): frozen dataclasses' behaviour, defined at a fifth
# of their cost (these 17 were 14 ms of every start that applies a migration).
@dataclass(eq=False, repr=False)
class Op(Record):
    """A statement whose shape is not one of the ones below (or not understood)."""

    sql: str


@dataclass(eq=False, repr=False)
class CreateTable(Op):
    table: str
    select: str | None = None  # CREATE TABLE ... AS SELECT


@dataclass(eq=False, repr=False)
class CreateIndex(Op):
    index: str
    table: str
    unique: bool
    columns: list[str]
    where: str | None


@dataclass(eq=False, repr=False)
class CreateObject(Op):
    """CREATE VIEW / TRIGGER / VIRTUAL TABLE."""

    kind: str  # view, trigger, virtual table
    name: str
    table: str | None  # a trigger's table


@dataclass(eq=False, repr=False)
class DropTable(Op):
    table: str


@dataclass(eq=False, repr=False)
class DropObject(Op):
    kind: str  # index, trigger, view
    name: str


@dataclass(eq=False, repr=False)
class RenameTable(Op):
    table: str
    new: str


@dataclass(eq=False, repr=False)
class RenameColumn(Op):
    table: str
    old: str
    new: str


@dataclass(eq=False, repr=False)
class AddColumn(Op):
    table: str
    column: str
    definition: str  # everything after the column name

    @property
    def default(self) -> str | None:
        """The DEFAULT expression as written, or None."""
        return column_default(self.definition)

    @property
    def not_null(self) -> bool:
        return re.search(r"\bNOT\s+NULL\b", self.definition, _I) is not None

    @property
    def generated(self) -> bool:
        return re.search(r"\bGENERATED\b|\bAS\s*\(", self.definition, _I) is not None


@dataclass(eq=False, repr=False)
class DropColumn(Op):
    table: str
    column: str


@dataclass(eq=False, repr=False)
class Insert(Op):
    table: str
    columns: list[str]  # empty: every column in order
    select: str | None  # the SELECT (or VALUES) part; None for DEFAULT VALUES
    conflict: str | None  # OR REPLACE / OR IGNORE / ... or an ON CONFLICT clause, upper case
    replace: bool = False  # REPLACE INTO


@dataclass(eq=False, repr=False)
class Update(Op):
    table: str
    assignments: list[tuple[str, str]]  # (column, expression); empty when not understood
    where: str | None
    conflict: str | None  # UPDATE OR ...
    from_clause: bool = False  # UPDATE ... FROM (joins another table)


@dataclass(eq=False, repr=False)
class Delete(Op):
    table: str
    where: str | None


@dataclass(eq=False, repr=False)
class Pragma(Op):
    name: str
    value: str | None


@dataclass(eq=False, repr=False)
class TxControl(Op):
    verb: str  # BEGIN, COMMIT, END, ROLLBACK, SAVEPOINT, RELEASE


@dataclass(eq=False, repr=False)
class Maintenance(Op):
    """ATTACH, DETACH, VACUUM, ANALYZE, REINDEX: nothing that changes the schema's data."""

    verb: str

    @property
    def opens_another_file(self) -> bool:
        """ATTACH and VACUUM INTO open a database file other than the one being migrated."""
        if self.verb == "ATTACH":
            return True
        return self.verb == "VACUUM" and any(t.upper == "INTO" for t in tokens(self.sql))


@dataclass(eq=False, repr=False)
class Select(Op):
    pass


_TX = {"BEGIN", "COMMIT", "END", "ROLLBACK", "SAVEPOINT", "RELEASE"}
_MAINTENANCE = {"ATTACH", "DETACH", "VACUUM", "ANALYZE", "REINDEX"}


class _Reader:
    """A cursor over a statement's tokens, read from the text as far as they are looked at:
    most statements are told apart by their first few (a CREATE TABLE by four, whatever its
    columns), so classifying a whole history costs a fraction of tokenising it."""

    def __init__(self, sql: str) -> None:
        self.sql = sql
        self._unread = _token_stream(sql)
        self._read: list[Token] = []
        self.i = 0

    @property
    def toks(self) -> list[Token]:
        """Every token of the statement (the rest are read now)."""
        self._read.extend(self._unread)
        return self._read

    def at(self, j: int) -> Token | None:
        """The token at index `j`, or None past the end."""
        while len(self._read) <= j:
            t = next(self._unread, None)
            if t is None:
                return None
            self._read.append(t)
        return self._read[j]

    def peek(self, ahead: int = 0) -> Token | None:
        return self.at(self.i + ahead)

    def word(self, *words: str) -> bool:
        """Consume the given keywords in order when they are next; True when consumed."""
        for k, w in enumerate(words):
            t = self.peek(k)
            if t is None or t.upper != w:
                return False
        self.i += len(words)
        return True

    def qname(self) -> str | None:
        """Consume `name` or `schema.name`; the name without its schema."""
        t = self.peek()
        if t is None or not t.is_name:
            return None
        self.i += 1
        dot, nxt = self.peek(), self.peek(1)
        if dot is not None and dot.text == "." and nxt is not None and nxt.is_name:
            self.i += 2
            return nxt.name
        return t.name

    def rest(self) -> str:
        """The text from the current token to the end, without a trailing semicolon."""
        t = self.peek()
        return "" if t is None else self.sql[t.start :].strip().rstrip(";").strip()

    def group(self) -> str | None:
        """Consume a parenthesised group; its inner text."""
        t = self.peek()
        if t is None or t.text != "(":
            return None
        depth, j = 0, self.i
        while (u := self.at(j)) is not None:
            if u.text == "(":
                depth += 1
            elif u.text == ")":
                depth -= 1
                if depth == 0:
                    self.i = j + 1
                    return self.sql[t.end : u.start]
            j += 1
        return None


def classify(code: str) -> Op:
    """What a statement (comments already removed) does, as far as data is concerned."""
    code = code.strip()
    r = _Reader(code)
    first = r.peek()
    if first is None:
        return Op(code)
    verb = first.upper
    try:
        if verb in _TX:
            return TxControl(code, verb)
        if verb in _MAINTENANCE:
            return Maintenance(code, verb)
        if verb == "PRAGMA":
            return _pragma(code, r)
        if verb == "CREATE":
            return _create(code, r)
        if verb == "DROP":
            return _drop(code, r)
        if verb == "ALTER":
            return _alter(code, r)
        if verb in ("INSERT", "REPLACE"):
            return _insert(code, r)
        if verb == "UPDATE":
            return _update(code, r)
        if verb == "DELETE":
            return _delete(code, r)
        if verb in ("SELECT", "VALUES", "EXPLAIN"):
            return Select(code)
    except _NotUnderstood:
        pass
    return Op(code)


class _NotUnderstood(Exception):
    pass


def _need(value: str | None) -> str:
    if value is None:
        raise _NotUnderstood
    return value


def _pragma(code: str, r: _Reader) -> Pragma:
    r.word("PRAGMA")
    name = _need(r.qname()).lower()
    t = r.peek()
    value = None
    if t is not None and t.text == "=":
        r.i += 1
        value = r.rest()
    elif t is not None and t.text == "(":
        value = r.group()
    return Pragma(code, name, value.strip() if value is not None else None)


def _create(code: str, r: _Reader) -> Op:
    r.word("CREATE")
    r.word("TEMP") or r.word("TEMPORARY")
    unique = r.word("UNIQUE")
    if r.word("VIRTUAL", "TABLE"):
        r.word("IF", "NOT", "EXISTS")
        return CreateObject(code, "virtual table", _need(r.qname()), None)
    if r.word("TABLE"):
        r.word("IF", "NOT", "EXISTS")
        table = _need(r.qname())
        select = None
        if r.word("AS"):
            select = r.rest()
        return CreateTable(code, table, select)
    if r.word("INDEX"):
        r.word("IF", "NOT", "EXISTS")
        index = _need(r.qname())
        if not r.word("ON"):
            raise _NotUnderstood
        table = _need(r.qname())
        inner = _need(r.group())
        return CreateIndex(code, index, table, unique, split_top(inner), _where_after(code))
    for kind in ("VIEW", "TRIGGER"):
        if r.word(kind):
            r.word("IF", "NOT", "EXISTS")
            name = _need(r.qname())
            on: str | None = None
            if kind == "TRIGGER":
                for j in range(r.i, len(r.toks)):
                    if r.toks[j].upper == "ON":
                        r.i = j + 1
                        on = r.qname()
                        break
            return CreateObject(code, kind.lower(), name, on)
    return Op(code)


def _where_after(code: str) -> str | None:
    """The WHERE clause of a CREATE INDEX (after its column list), or None."""
    depth = 0
    toks = tokens(code)
    for i, t in enumerate(toks):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0 and t.upper == "WHERE":
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            return code[nxt.start :].strip().rstrip(";").strip() if nxt else None
    return None


def _drop(code: str, r: _Reader) -> Op:
    r.word("DROP")
    for kind in ("TABLE", "INDEX", "TRIGGER", "VIEW"):
        if r.word(kind):
            r.word("IF", "EXISTS")
            name = _need(r.qname())
            if kind == "TABLE":
                return DropTable(code, name)
            return DropObject(code, kind.lower(), name)
    return Op(code)


def _alter(code: str, r: _Reader) -> Op:
    r.word("ALTER")
    if not r.word("TABLE"):
        return Op(code)
    table = _need(r.qname())
    if r.word("RENAME", "TO"):
        return RenameTable(code, table, _need(r.qname()))
    if r.word("RENAME"):
        r.word("COLUMN")
        old = _need(r.qname())
        if not r.word("TO"):
            raise _NotUnderstood
        return RenameColumn(code, table, old, _need(r.qname()))
    if r.word("ADD"):
        r.word("COLUMN")
        column = _need(r.qname())
        return AddColumn(code, table, column, r.rest())
    if r.word("DROP"):
        r.word("COLUMN")
        return DropColumn(code, table, _need(r.qname()))
    return Op(code)


def _conflict(r: _Reader) -> str | None:
    if r.word("OR"):
        t = r.peek()
        if t is None:
            raise _NotUnderstood
        r.i += 1
        return f"OR {t.upper}"
    return None


def _insert(code: str, r: _Reader) -> Op:
    replace = r.word("REPLACE")
    conflict = "OR REPLACE" if replace else None
    if not replace:
        r.word("INSERT")
        conflict = _conflict(r)
    if not r.word("INTO"):
        raise _NotUnderstood
    table = _need(r.qname())
    if r.word("AS"):
        r.qname()
    columns: list[str] = []
    nxt = r.peek()
    if nxt is not None and nxt.text == "(":
        columns = [unquote(c) for c in split_top(_need(r.group()))]
    if r.word("DEFAULT", "VALUES"):
        return Insert(code, table, columns, None, conflict, replace)
    body = r.rest()
    upsert = _top_level_keyword(body, ("ON", "CONFLICT"))
    if upsert is not None:
        conflict = conflict or "ON CONFLICT"
        body = body[:upsert].strip()
    first = tokens(body)[:1]
    if not first or first[0].upper not in ("SELECT", "VALUES", "WITH"):
        raise _NotUnderstood
    return Insert(code, table, columns, body, conflict, replace)


def _top_level_keyword(text: str, words: tuple[str, ...]) -> int | None:
    """Offset of a keyword sequence outside parentheses, or None."""
    toks = tokens(text)
    depth = 0
    for i, t in enumerate(toks):
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0 and all(
            i + k < len(toks) and toks[i + k].upper == w for k, w in enumerate(words)
        ):
            return t.start
    return None


def _update(code: str, r: _Reader) -> Op:
    r.word("UPDATE")
    conflict = _conflict(r)
    table = _need(r.qname())
    if r.word("AS"):
        raise _NotUnderstood  # an alias for the target: rare, and it changes name resolution
    if not r.word("SET"):
        raise _NotUnderstood
    body = r.rest()
    where_at = _top_level_keyword(body, ("WHERE",))
    from_at = _top_level_keyword(body, ("FROM",))
    returning = _top_level_keyword(body, ("RETURNING",))
    end = min(x for x in (where_at, from_at, returning, len(body)) if x is not None)
    sets = body[:end]
    where = None
    if where_at is not None:
        stop = returning if returning is not None and returning > where_at else len(body)
        where = body[where_at + len("WHERE") : stop].strip()
    assignments: list[tuple[str, str]] = []
    for part in split_top(sets):
        left, eq, right = part.partition("=")
        col = plain_column(left)
        if not eq or col is None:
            assignments = []
            break
        assignments.append((col, right.strip()))
    return Update(code, table, assignments, where, conflict, from_at is not None)


def _delete(code: str, r: _Reader) -> Op:
    r.word("DELETE")
    if not r.word("FROM"):
        raise _NotUnderstood
    table = _need(r.qname())
    body = r.rest()
    where_at = _top_level_keyword(body, ("WHERE",))
    where = body[where_at + len("WHERE") :].strip() if where_at is not None else None
    if where is None and body:
        raise _NotUnderstood  # INDEXED BY, RETURNING, LIMIT ...: not modelled
    return Delete(code, table, where)


def column_default(definition: str) -> str | None:
    """The DEFAULT of a column definition (`text DEFAULT 'x' NOT NULL` -> `'x'`)."""
    toks = tokens(definition)
    for i, t in enumerate(toks):
        if t.upper == "DEFAULT" and i + 1 < len(toks):
            nxt = toks[i + 1]
            if nxt.text == "(":
                depth = 0
                for j in range(i + 1, len(toks)):
                    depth += {"(": 1, ")": -1}.get(toks[j].text, 0)
                    if depth == 0:
                        return definition[nxt.start : toks[j].end]
                return None
            if nxt.text in "+-" and i + 2 < len(toks):
                return definition[nxt.start : toks[i + 2].end]
            return nxt.text
    return None


def generated_expression(definition: str) -> str | None:
    """The expression of a generated column (`text AS (upper(name)) STORED` -> `(upper(name))`)."""
    toks = tokens(definition)
    depth = 0
    for i, t in enumerate(toks):
        depth += {"(": 1, ")": -1}.get(t.text, 0)
        if depth == 0 and t.upper == "AS" and i + 1 < len(toks) and toks[i + 1].text == "(":
            inner = 0
            for j in range(i + 1, len(toks)):
                inner += {"(": 1, ")": -1}.get(toks[j].text, 0)
                if inner == 0:
                    return definition[toks[i + 1].start : toks[j].end]
            return None
    return None


# --------------------------------------------------------------------------------------
# Inside SELECTs: table references, column references, equalities


_CLAUSE_END = {
    "WHERE",
    "GROUP",
    "ORDER",
    "LIMIT",
    "HAVING",
    "WINDOW",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "ON",
    "USING",
    "RETURNING",
}
_JOIN_WORDS = {"JOIN", "LEFT", "RIGHT", "FULL", "INNER", "OUTER", "CROSS", "NATURAL"}
_NOT_ALIASES = _CLAUSE_END | _JOIN_WORDS | {"SET", "VALUES", "SELECT", "AS", "INDEXED", "NOT"}


class TableRef(NamedTuple):
    """A table named in a FROM or JOIN clause: where it is written, its name and alias."""

    name: str
    alias: str
    start: int  # offset of the reference (name and alias) in the text
    end: int


def table_refs(sql: str) -> list[TableRef]:
    """Every table named in a FROM / JOIN clause of the text, subqueries included.

    Table-valued functions (`json_each(...)`) and subqueries are not table references.
    """
    toks = tokens(sql)
    refs = []
    expecting = False
    depth_of_from: list[int] = []
    depth = 0
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
            while depth_of_from and depth_of_from[-1] > depth:
                depth_of_from.pop()
        if t.upper in ("FROM", "JOIN"):
            expecting = True
            if t.upper == "FROM":
                depth_of_from.append(depth)
            i += 1
            continue
        if t.text == "," and depth_of_from and depth_of_from[-1] == depth:
            expecting = True
            i += 1
            continue
        if t.upper in _CLAUSE_END and depth_of_from and depth_of_from[-1] == depth:
            depth_of_from.pop()
        if expecting:
            expecting = False
            if t.is_name and t.upper not in ("SELECT", "WITH", "VALUES"):
                j = i
                name = t.name
                if j + 2 < len(toks) and toks[j + 1].text == "." and toks[j + 2].is_name:
                    j += 2
                    name = toks[j].name
                if j + 1 < len(toks) and toks[j + 1].text == "(":
                    i = j + 1
                    continue  # a table-valued function
                alias, end = name, toks[j].end
                k = j + 1
                if k < len(toks) and toks[k].upper == "AS":
                    k += 1
                if k < len(toks) and toks[k].is_name and toks[k].upper not in _NOT_ALIASES:
                    alias, end = toks[k].name, toks[k].end
                    j = k
                refs.append(TableRef(name, alias, t.start, end))
                i = j + 1
                continue
        i += 1
    return refs


def column_refs(expr: str) -> list[tuple[str | None, str]]:
    """(qualifier, column) for every name in an expression that can be a column.

    Names followed by `(` (functions) and keywords are left out; a name inside a quoted
    identifier always counts. Qualifier is the table or alias before a dot, if any.
    """
    toks = tokens(expr)
    out: list[tuple[str | None, str]] = []
    i = 0
    while i < len(toks):
        t = toks[i]
        if t.is_name:
            nxt = toks[i + 1] if i + 1 < len(toks) else None
            if nxt is not None and nxt.text == "(":
                i += 1
                continue
            if nxt is not None and nxt.text == "." and i + 2 < len(toks) and toks[i + 2].is_name:
                out.append((t.name, toks[i + 2].name))
                i += 3
                continue
            if t.kind == "ident" or t.upper not in _KEYWORDS:
                out.append((None, t.name))
        i += 1
    return out


class Equality(NamedTuple):
    """`a.x = b.y` between two column references."""

    left: tuple[str | None, str]
    right: tuple[str | None, str]


def equalities(expr: str) -> list[Equality]:
    """Every `column = column` comparison written in the text."""
    toks = tokens(expr)
    out = []

    def ref_at(j: int, backwards: bool) -> tuple[tuple[str | None, str], int] | None:
        if backwards:
            if j >= 0 and toks[j].is_name:
                if j >= 2 and toks[j - 1].text == "." and toks[j - 2].is_name:
                    return (toks[j - 2].name, toks[j].name), j - 2
                return (None, toks[j].name), j
            return None
        if j < len(toks) and toks[j].is_name:
            if j + 2 < len(toks) and toks[j + 1].text == "." and toks[j + 2].is_name:
                return (toks[j].name, toks[j + 2].name), j + 2
            if j + 1 < len(toks) and toks[j + 1].text == "(":
                return None
            return (None, toks[j].name), j
        return None

    for i, t in enumerate(toks):
        if t.text in ("=", "=="):
            left = ref_at(i - 1, backwards=True)
            right = ref_at(i + 1, backwards=False)
            if left and right and left[0][1].upper() not in _KEYWORDS:
                out.append(Equality(left[0], right[0]))
    return out


def select_list(select: str) -> list[str] | None:
    """The result expressions of a simple `SELECT a, b FROM ...`; None for compound selects."""
    toks = tokens(select)
    if not toks or toks[0].upper != "SELECT":
        return None
    depth = 0
    start = toks[0].end
    if len(toks) > 1 and toks[1].upper in ("DISTINCT", "ALL"):
        start = toks[1].end
    end = len(select)
    for t in toks[1:]:
        if t.text == "(":
            depth += 1
        elif t.text == ")":
            depth -= 1
        elif depth == 0 and t.upper in ("FROM", "WHERE", "GROUP", "ORDER", "LIMIT"):
            end = t.start
            break
        elif depth == 0 and t.upper in ("UNION", "EXCEPT", "INTERSECT"):
            return None
    return split_top(select[start:end])


def where_clauses(sql: str) -> Iterator[str]:
    """The text of every WHERE and ON clause in a statement (subqueries included)."""
    toks = tokens(sql)
    for i, t in enumerate(toks):
        if t.upper in ("WHERE", "ON") and i + 1 < len(toks):
            depth = 0
            end = len(sql)
            for u in toks[i + 1 :]:
                if u.text == "(":
                    depth += 1
                elif u.text == ")":
                    depth -= 1
                    if depth < 0:
                        end = u.start
                        break
                elif depth == 0 and u.upper in _CLAUSE_END | _JOIN_WORDS and u.upper != "ON":
                    end = u.start
                    break
            yield sql[toks[i + 1].start : end]


_KEYWORDS = {
    "SELECT",
    "FROM",
    "WHERE",
    "AND",
    "OR",
    "NOT",
    "NULL",
    "IS",
    "IN",
    "AS",
    "ON",
    "JOIN",
    "LEFT",
    "RIGHT",
    "INNER",
    "OUTER",
    "CROSS",
    "NATURAL",
    "USING",
    "CASE",
    "WHEN",
    "THEN",
    "ELSE",
    "END",
    "LIKE",
    "GLOB",
    "BETWEEN",
    "EXISTS",
    "DISTINCT",
    "ALL",
    "GROUP",
    "BY",
    "ORDER",
    "LIMIT",
    "OFFSET",
    "HAVING",
    "UNION",
    "EXCEPT",
    "INTERSECT",
    "ASC",
    "DESC",
    "TRUE",
    "FALSE",
    "COLLATE",
    "ESCAPE",
    "CAST",
    "CURRENT_TIME",
    "CURRENT_DATE",
    "CURRENT_TIMESTAMP",
    "VALUES",
    "WITH",
    "RECURSIVE",
    "FILTER",
    "OVER",
    "PARTITION",
    "WINDOW",
    "ISNULL",
    "NOTNULL",
    "REGEXP",
    "MATCH",
}


@dataclass
class Rewritten:
    """Text with some table references replaced; `missing` lists names nobody could give."""

    text: str
    missing: list[str] = field(default_factory=list)


def replace_tables(sql: str, source: dict[str, str]) -> Rewritten:
    """Replace each FROM/JOIN reference to a table in `source` (lower-case name -> a
    parenthesised subquery) with `(subquery) AS alias`; names not in `source` are listed
    in `missing`."""
    out = Rewritten(sql)
    pieces = []
    at = 0
    for ref in table_refs(sql):
        body = source.get(ref.name.lower())
        if body is None:
            out.missing.append(ref.name)
            continue
        pieces.append(sql[at : ref.start])
        pieces.append(f"({body}) AS {quote(ref.alias)}")
        at = ref.end
    pieces.append(sql[at:])
    out.text = "".join(pieces)
    return out


# --------------------------------------------------------------------------------------
# CREATE TABLE text


def check_clauses(create_sql: str) -> list[str]:
    """The expressions of a CREATE TABLE's CHECK constraints (column and table ones)."""
    toks = tokens(create_sql)
    out = []
    for i, t in enumerate(toks):
        if t.upper == "CHECK" and i + 1 < len(toks) and toks[i + 1].text == "(":
            depth = 0
            for j in range(i + 1, len(toks)):
                depth += {"(": 1, ")": -1}.get(toks[j].text, 0)
                if depth == 0:
                    out.append(create_sql[toks[i + 1].end : toks[j].start])
                    break
    return out


_CONSTRAINTS = {"CONSTRAINT", "PRIMARY", "UNIQUE", "CHECK", "FOREIGN"}


def column_definitions(create_sql: str) -> dict[str, str]:
    """column name (lower) -> its definition as written, from a CREATE TABLE statement."""
    r = _Reader(create_sql)
    for j, t in enumerate(r.toks):
        if t.text == "(":
            r.i = j
            break
    body = r.group() or ""
    out = {}
    for part in split_top(body):
        first = tokens(part)[:1]
        if first and first[0].is_name and first[0].upper not in _CONSTRAINTS:
            out[first[0].name.lower()] = part
    return out


def requalify(sql: str, old: str, new: str) -> str:
    """`old.column` written as `new.column` (a CHECK drizzle-kit 0.31 writes as
    `"guests"."email"`, inside a table created under another name to be renamed back)."""
    toks = tokens(sql)
    out, last = [], 0
    for t, nxt in itertools.pairwise(toks):
        if t.is_name and t.name.lower() == old.lower() and nxt.text == ".":
            out += [sql[last : t.start], quote(new)]
            last = t.end
    return "".join(out) + sql[last:]


def rename_created_table(create_sql: str, name: str) -> str:
    """A CREATE TABLE statement with the table's name replaced (`schema.` dropped)."""
    r = _Reader(create_sql)
    r.word("CREATE")
    r.word("TEMP") or r.word("TEMPORARY")
    if not r.word("TABLE"):
        raise ValueError("not a CREATE TABLE statement")
    r.word("IF", "NOT", "EXISTS")
    start = r.peek()
    if start is None or r.qname() is None:
        raise ValueError("CREATE TABLE without a name")
    end = r.toks[r.i - 1].end
    return create_sql[: start.start] + quote(name) + create_sql[end:]
