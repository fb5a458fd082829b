"""The rules behind `findings.find`: pragmatic SQL parsing plus a schema replay in memory.

Each pending migration is replayed (see `replay.py`); before a statement runs there, the
rules look at it with the schema as it stands and count rows and values in the live database
(read-only). A drizzle-kit table rebuild (create `__new_x`, copy, drop `x`, rename) is
recognised as one change and judged as a whole.
"""

from __future__ import annotations

import re
import sqlite3

from .findings import Finding, Severity
from .replay import (
    NAME,
    QNAME,
    TX_CONTROL,
    Rebuild,
    Replay,
    affinity,
    plain_column,
    q,
    split_top,
    unquote,
)
from .sources import Migration
from .statements import Statement

_I, _IS = re.IGNORECASE, re.IGNORECASE | re.DOTALL

_CREATE_TABLE = re.compile(
    rf"^CREATE\s+(?:TEMP(?:ORARY)?\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<t>{QNAME})", _I
)
_DROP_TABLE = re.compile(rf"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<t>{QNAME})\s*;?$", _I)
_RENAME_TABLE = re.compile(
    rf"^ALTER\s+TABLE\s+(?P<t>{QNAME})\s+RENAME\s+TO\s+(?P<new>{NAME})\s*;?$", _I
)
_RENAME_COLUMN = re.compile(
    rf"^ALTER\s+TABLE\s+(?P<t>{QNAME})\s+RENAME\s+(?:COLUMN\s+)?(?P<old>{NAME})\s+TO\s+"
    rf"(?P<new>{NAME})\s*;?$",
    _I,
)
_ADD_COLUMN = re.compile(
    rf"^ALTER\s+TABLE\s+(?P<t>{QNAME})\s+ADD\s+(?:COLUMN\s+)?(?P<c>{NAME})(?P<rest>.*?);?$", _IS
)
_DROP_COLUMN = re.compile(
    rf"^ALTER\s+TABLE\s+(?P<t>{QNAME})\s+DROP\s+(?:COLUMN\s+)?(?P<c>{NAME})\s*;?$", _I
)
_UNIQUE_INDEX = re.compile(
    rf"^CREATE\s+UNIQUE\s+INDEX\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<i>{QNAME})\s+ON\s+(?P<t>{NAME})"
    r"\s*\((?P<cols>.*?)\)\s*(?:WHERE\s+(?P<where>.*?))?;?$",
    _IS,
)
_INSERT_SELECT = re.compile(
    rf"^INSERT\s+(?:OR\s+\w+\s+)?INTO\s+(?P<t>{QNAME})\s*(?:\((?P<cols>[^)]*)\))?\s*SELECT\s+"
    rf"(?P<distinct>DISTINCT\s+)?(?P<exprs>.*?)\s+FROM\s+(?P<src>{QNAME})(?P<rest>.*?);?$",
    _IS,
)
_INSERT = re.compile(rf"^(?:INSERT|REPLACE)\s+(?:OR\s+\w+\s+)?INTO\s+(?P<t>{QNAME})", _I)
_FILTERS = re.compile(r"\b(WHERE|LIMIT|GROUP\s+BY|HAVING|JOIN|INTERSECT|EXCEPT|OFFSET)\b", _I)
_NOT_NULL = re.compile(r"\bNOT\s+NULL\b", _I)
_NO_DEFAULT_NEEDED = re.compile(r"\b(DEFAULT|GENERATED)\b|\bAS\s*\(", _I)

TWO_PHASE = (
    "give the column a DEFAULT, or migrate in two phases: add it nullable, backfill it, then "
    "rebuild it as NOT NULL in a later migration"
)
ACK = "if the loss is intended, acknowledge it in the migration: -- litedeploy: allow {rule} {obj}"


def find_rebuilds(statements: list[Statement]) -> list[Rebuild]:
    created: dict[str, int] = {}
    dropped: dict[str, int] = {}
    found = []
    for s in statements:
        code = s.code
        if m := _CREATE_TABLE.match(code):
            created[unquote(m["t"]).lower()] = s.number
        elif m := _DROP_TABLE.match(code):
            dropped[unquote(m["t"]).lower()] = s.number
        elif m := _RENAME_TABLE.match(code):
            new, old = unquote(m["t"]), unquote(m["new"])
            c, d = created.get(new.lower()), dropped.get(old.lower())
            if c is not None and d is not None and c < d < s.number:
                found.append(Rebuild(old, new, c, _copy(statements, new, old, c, d), d, s.number))
    return found


def _copy(
    statements: list[Statement], new: str, old: str, start: int, end: int
) -> Statement | None:
    for s in statements:
        m = _INSERT_SELECT.match(s.code) if start < s.number < end else None
        if (
            m
            and unquote(m["t"]).lower() == new.lower()
            and unquote(m["src"]).lower() == old.lower()
        ):
            return s
    return None


class Analysis:
    """The findings of one migration, replayed on top of the ones before it."""

    def __init__(self, replay: Replay, migration: Migration) -> None:
        self.replay = replay
        self.migration = migration
        self.findings: list[Finding] = []
        self.after: list[tuple[int, str, str, str]] = []  # checked once the migration ran

    def add(
        self,
        rule: str,
        severity: Severity,
        statement: int | None,
        message: str,
        hint: str,
        obj: str | None,
    ) -> None:
        self.findings.append(
            Finding(rule, severity, self.migration.name, statement, message, hint, obj)
        )

    def run(self) -> list[Finding]:
        for chunk_number, chunk in enumerate(self.migration.chunks, 1):
            if chunk.skipped:
                self.add(
                    "empty-chunk",
                    "warn",
                    None,
                    f"statement chunk {chunk_number} is empty or only comments",
                    "remove the empty `--> statement-breakpoint` piece: drizzle's own migrator "
                    "fails on it (litedeploy skips it)",
                    None,
                )
        rebuilds = find_rebuilds(self.migration.statements)
        by_drop = {r.drop: r for r in rebuilds}
        by_rename = {r.rename: r for r in rebuilds}
        parts = {n for r in rebuilds for n in (r.create, r.drop, r.rename)}
        parts |= {r.insert.number for r in rebuilds if r.insert}
        for s in self.migration.statements:
            if s.number in by_drop:
                self.rebuild(by_drop[s.number])
            elif s.number in by_rename:
                self.replay.execute(s)
                self.replay.rebuilt(by_rename[s.number])
                continue
            elif s.number not in parts:
                self.statement(s)
            self.track(s, rebuild_part=s.number in parts)
            self.replay.execute(s)
        for number, kind, table, name in self.after:
            if not self.replay.exists(name):
                self.add(
                    f"rebuild-drops-{kind}",
                    "block" if kind == "trigger" else "warn",
                    number,
                    f"the rebuild of {table} drops its {kind} {name} and the migration does not "
                    "recreate it",
                    f"recreate {name} after the rename (copy its CREATE {kind.upper()} from the "
                    "old schema); "
                    + ACK.format(rule=f"rebuild-drops-{kind}", obj=f"{table}.{name}"),
                    f"{table}.{name}",
                )
        return self.findings

    def track(self, s: Statement, *, rebuild_part: bool) -> None:
        """Keep the map from replayed tables to live tables up to date (before executing)."""
        code, r = s.code, self.replay
        if m := _CREATE_TABLE.match(code):
            r.created(unquote(m["t"]))
        elif (m := _DROP_TABLE.match(code)) and not rebuild_part:
            r.dropped(unquote(m["t"]))
        elif m := _RENAME_TABLE.match(code):
            r.renamed(unquote(m["t"]), unquote(m["new"]))
        elif m := _RENAME_COLUMN.match(code):
            r.column_renamed(unquote(m["t"]), unquote(m["old"]), unquote(m["new"]))
        elif m := _DROP_COLUMN.match(code):
            r.column_dropped(unquote(m["t"]), unquote(m["c"]))
        elif (m := _INSERT.match(code)) and not rebuild_part:
            r.filled.add(unquote(m["t"]).lower())

    def statement(self, s: Statement) -> None:
        code, r = s.code, self.replay
        if m := TX_CONTROL.match(code):
            self.add(
                "transaction-control",
                "block",
                s.number,
                f"statement {s.number} is {m[1].upper()}: transaction control inside a migration",
                "remove it: each migration already runs in a transaction, and a COMMIT inside "
                "it ends that transaction early so a later failure cannot be rolled back",
                None,
            )
        elif s.is_foreign_keys_pragma:
            self.add(
                "pragma-foreign-keys",
                "info",
                s.number,
                f"statement {s.number} sets PRAGMA foreign_keys, which has no effect inside a "
                "transaction",
                "nothing to do: litedeploy turns foreign keys off around a migration that asks "
                "for it and checks them before committing",
                None,
            )
        elif m := _ADD_COLUMN.match(code):
            table, col = unquote(m["t"]), unquote(m["c"])
            if _NOT_NULL.search(m["rest"]) and not _NO_DEFAULT_NEEDED.search(m["rest"]):
                n = r.rows(table)
                what = f"adds {table}.{col} NOT NULL without a DEFAULT"
                if n is None:
                    self.add(
                        "add-not-null-without-default",
                        "warn",
                        s.number,
                        f"{what}: this fails if {table} has rows",
                        TWO_PHASE,
                        f"{table}.{col}",
                    )
                elif n:
                    self.add(
                        "add-not-null-without-default",
                        "block",
                        s.number,
                        f"{what}, but {table} has {n} row(s): SQLite refuses it "
                        "(Cannot add a NOT NULL column with default value NULL)",
                        TWO_PHASE,
                        f"{table}.{col}",
                    )
                else:
                    self.add(
                        "add-not-null-without-default",
                        "info",
                        s.number,
                        f"{what}; {table} is empty now, so it works here only",
                        TWO_PHASE,
                        f"{table}.{col}",
                    )
        elif m := _DROP_COLUMN.match(code):
            table, col = unquote(m["t"]), unquote(m["c"])
            self.data_loss(
                "drop-column-with-data",
                s.number,
                f"{table}.{col}",
                r.values(table, col),
                f"drops {table}.{col}",
                "non-NULL value(s)",
            )
        elif m := _DROP_TABLE.match(code):
            table = unquote(m["t"])
            self.data_loss(
                "drop-table-with-rows",
                s.number,
                table,
                r.rows(table),
                f"drops table {table}",
                "row(s)",
            )
        elif m := _RENAME_TABLE.match(code):
            self.renaming(
                s.number, unquote(m["t"]), f"table {unquote(m['t'])} to {unquote(m['new'])}"
            )
        elif m := _RENAME_COLUMN.match(code):
            table, old = unquote(m["t"]), unquote(m["old"])
            self.renaming(
                s.number, f"{table}.{old}", f"column {table}.{old} to {unquote(m['new'])}"
            )
        elif m := _UNIQUE_INDEX.match(code):
            table = unquote(m["t"])
            groups = r.duplicates(table, split_top(m["cols"]), m["where"])
            if groups:
                self.add(
                    "unique-over-duplicates",
                    "block",
                    s.number,
                    f"unique index {unquote(m['i'])} on {table}({m['cols'].strip()}) over "
                    f"{groups} group(s) of duplicated values: the migration will fail",
                    "remove or merge the duplicates in an earlier migration, or make the index "
                    "partial",
                    table,
                )

    def data_loss(
        self, rule: str, number: int, obj: str, n: int | None, what: str, unit: str
    ) -> None:
        hint = ACK.format(rule=rule.split("-with-")[0], obj=obj)
        if n is None:
            self.add(rule, "warn", number, f"{what}; whatever it holds is lost", hint, obj)
        elif n:
            self.add(rule, "block", number, f"{what}, which holds {n} {unit}", hint, obj)

    def renaming(self, number: int, obj: str, what: str) -> None:
        self.add(
            "rename",
            "warn",
            number,
            f"renames {what}",
            "the old version still running during a rolling deploy uses the old name and "
            "fails; prefer add-new, copy, switch the code, then drop the old name later",
            obj,
        )

    def rebuild(self, rb: Rebuild) -> None:
        r, old, new = self.replay, rb.old, rb.new
        old_cols, new_cols = r.columns_of(old), r.columns_of(new)
        if not old_cols or not new_cols:
            return
        old_by = {c.name.lower(): c for c in old_cols}
        rows = r.rows(old)
        exprs_text, filtered = "", False
        if rb.insert is not None:
            m = _INSERT_SELECT.match(rb.insert.code)
            assert m is not None
            targets = [unquote(c) for c in split_top(m["cols"] or "")] or [c.name for c in new_cols]
            exprs = split_top(m["exprs"])
            if exprs == ["*"]:
                exprs = [q(c.name) for c in old_cols]
            exprs_text = m["exprs"]
            rb.targets = {t.lower() for t in targets}
            for target, expr in zip(targets, exprs, strict=False):
                src = plain_column(expr)
                if src is not None and src.lower() in old_by:
                    rb.columns[target.lower()] = old_by[src.lower()].name
            filtered = bool(m["distinct"]) or bool(_FILTERS.search(m["rest"]))
        where = rb.insert.number if rb.insert else rb.drop
        if rb.insert is None or filtered:
            how = "copies no rows" if rb.insert is None else "copies rows through a filter"
            if rows != 0:
                self.add(
                    "rebuild-loses-rows",
                    "block" if rows else "warn",
                    where,
                    f"the rebuild of {old} {how} (WHERE/LIMIT/DISTINCT/GROUP BY/JOIN) and "
                    f"{old} has {rows if rows is not None else 'an unknown number of'} row(s)",
                    "copy every row (no WHERE, LIMIT or DISTINCT in the copy); "
                    + ACK.format(rule="rebuild-loses-rows", obj=old),
                    old,
                )
        copied = {v.lower() for v in rb.columns.values()}
        new_names = {c.name.lower() for c in new_cols}
        for col in old_cols:
            lost = col.name.lower() not in copied and col.name.lower() not in new_names
            used = re.search(rf"\b{re.escape(col.name)}\b", exprs_text, _I)
            if lost and not used:
                n = r.values(old, col.name)
                obj = f"{old}.{col.name}"
                sev: Severity = "block" if n else ("warn" if n is None else "info")
                held = "an unknown number of" if n is None else str(n)
                self.add(
                    "rebuild-drops-column",
                    sev,
                    rb.drop,
                    f"the rebuild of {old} drops column {col.name}, which holds {held} "
                    "non-NULL value(s)",
                    ACK.format(rule="rebuild-drops-column", obj=obj),
                    obj,
                )
        for col in new_cols:
            src = rb.columns.get(col.name.lower())
            if not col.notnull:
                continue
            if src is not None and not old_by[src.lower()].notnull:
                n = r.values(old, src, null=True)
                if n:
                    self.add(
                        "not-null-over-nulls",
                        "block",
                        where,
                        f"{old}.{col.name} becomes NOT NULL but {n} row(s) hold NULL in it: "
                        "the copy fails",
                        f"backfill the NULLs of {src} in an earlier migration, or copy "
                        f"coalesce({src}, <default>) into it",
                        f"{old}.{col.name}",
                    )
            rowid = col.pk and affinity(col.type) == "INTEGER"
            filled = col.name.lower() in rb.targets
            if not filled and col.default is None and not rowid and rows and rb.insert:
                self.add(
                    "not-null-over-nulls",
                    "block",
                    where,
                    f"{old}.{col.name} is NOT NULL without a DEFAULT and the rebuild does "
                    f"not copy a value into it: the copy fails on {rows} row(s)",
                    TWO_PHASE,
                    f"{old}.{col.name}",
                )
        for key in r.unique_keys(new):
            sources = [rb.columns.get(k.lower()) for k in key]
            if all(sources) and rows:
                groups = r.duplicates(old, [q(s) for s in sources if s])
                if groups:
                    self.add(
                        "unique-over-duplicates",
                        "block",
                        where,
                        f"the rebuilt {old} is UNIQUE on ({', '.join(key)}) but {groups} "
                        "group(s) of rows share a value: the copy fails",
                        "remove or merge the duplicates in an earlier migration",
                        old,
                    )
        for col in new_cols:
            src = rb.columns.get(col.name.lower())
            if src is None:
                continue
            before, after = affinity(old_by[src.lower()].type), affinity(col.type)
            if before != after and after != "BLOB":
                n = r.lossy(old, src, after)
                if n:
                    obj = f"{old}.{col.name}"
                    self.add(
                        "type-change-lossy",
                        "block",
                        where,
                        f"{obj} changes from {old_by[src.lower()].type or 'untyped'} to "
                        f"{col.type}: {n} value(s) do not convert to {after.lower()}",
                        "convert or clean the values first (e.g. CAST/round in the copy); "
                        + ACK.format(rule="type-change", obj=obj),
                        obj,
                    )
        seq = r.sequence(old)
        if seq is not None:
            counter, top = seq
            kept = "AUTOINCREMENT" in r.sql_of(new).upper()
            if not kept or counter > top:
                self.add(
                    "rebuild-resets-autoincrement",
                    "warn",
                    rb.drop,
                    f"the rebuild of {old} resets its AUTOINCREMENT counter ({counter}) to "
                    f"{top if kept else 'nothing'}: ids of deleted rows will be reused",
                    f"after the copy, set sqlite_sequence's seq for {old} back to {counter}",
                    old,
                )
        for child, action in r.children_of(old):
            n = r.rows(child)
            count = f"{n} row(s)" if n is not None else "rows"
            if action in ("CASCADE", "SET NULL", "SET DEFAULT"):
                effect = "empty them" if action == "CASCADE" else f"{action.lower()} them"
                message = (
                    f"{child} ({count}) references the rebuilt {old} ON DELETE {action}: this "
                    f"tool protects them, a plain migrator would {effect}"
                )
            else:
                message = (
                    f"{child} ({count}) references the rebuilt {old} (ON DELETE {action}): "
                    "this tool rebuilds with foreign keys off; a plain migrator fails with "
                    "FOREIGN KEY constraint failed when it holds rows"
                )
            self.add(
                "rebuild-has-children",
                "info",
                rb.drop,
                message,
                "run it with litedeploy (or another migrator that turns foreign keys off "
                "outside the transaction)",
                child,
            )
        for kind in ("index", "trigger"):
            for name in r.objects_on(kind, old):
                self.after.append((rb.drop, kind, old, name))


def analyse(conn: sqlite3.Connection | None, migrations: list[Migration]) -> list[Finding]:
    replay = Replay(conn)
    try:
        return [f for m in migrations for f in Analysis(replay, m).run()]
    finally:
        replay.close()
