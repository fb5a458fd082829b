"""Findings: what a pending migration will do to this database, and whether that blocks.

The rules that produce them live in `rules.py`; this module holds the model, the directive
comments that acknowledge an intended loss, and the policy (what blocks).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from .sources import Migration

Severity = Literal["block", "warn", "info"]

RULES: dict[str, str] = {
    "add-not-null-without-default": "ADD COLUMN ... NOT NULL without a DEFAULT",
    "not-null-over-nulls": "a column becomes NOT NULL while rows hold NULL in it",
    "unique-over-duplicates": "a UNIQUE index or constraint over duplicated values",
    "drop-table-with-rows": "DROP TABLE of a table that holds rows",
    "drop-column-with-data": "DROP COLUMN of a column that holds non-NULL values",
    "rebuild-drops-column": "a table rebuild that loses columns",
    "rebuild-loses-rows": "a table rebuild that does not copy every row",
    "rebuild-drops-trigger": "a table rebuild that does not recreate the old table's triggers",
    "rebuild-drops-index": "a table rebuild that does not recreate the old table's indexes",
    "rebuild-resets-autoincrement": "a table rebuild that resets an AUTOINCREMENT counter",
    "rebuild-has-children": "tables whose foreign keys reference a rebuilt table",
    "type-change-lossy": "a type change whose values do not convert cleanly",
    "pragma-foreign-keys": "PRAGMA foreign_keys inside a migration",
    "transaction-control": "BEGIN / COMMIT / ROLLBACK / SAVEPOINT inside a migration",
    "empty-chunk": "an empty or comment-only statement chunk",
    "rename": "RENAME of a table or column (breaks the old version during a rolling deploy)",
}

# What the rehearsal on a copy finds; a directive names one to acknowledge an intended loss.
LOSS_RULES: dict[str, str] = {
    "lost-rows": "rows that disappeared on the copy without a DELETE or DROP TABLE saying so",
    "lost-values": "non-NULL values that disappeared on the copy without a DROP COLUMN saying so",
    "lost-object": "a table, trigger, view or index that vanished on the copy without a DROP",
}

# Findings about whole rows: the operator's --allow-row-loss acknowledges these too.
ROW_LOSS_RULES = frozenset({"drop-table-with-rows", "rebuild-loses-rows"})

# Short names a directive may use instead of the full rule id.
ALIASES: dict[str, str] = {
    "add-not-null": "add-not-null-without-default",
    "not-null": "not-null-over-nulls",
    "unique": "unique-over-duplicates",
    "drop-table": "drop-table-with-rows",
    "drop-column": "drop-column-with-data",
    "type-change": "type-change-lossy",
}

_DIRECTIVE = re.compile(
    r"--\s*litedeploy:\s*allow\s+(?P<rule>[a-z][a-z-]*)\s+(?P<object>[^\s;]+)", re.IGNORECASE
)


@dataclass(frozen=True)
class Finding:
    """One thing a migration will do that the operator should know about."""

    rule: str
    severity: Severity
    migration: str
    statement: int | None
    message: str
    hint: str
    object: str | None
    acknowledged: bool = False

    @property
    def blocks(self) -> bool:
        return self.severity == "block" and not self.acknowledged

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "blocks": self.blocks}


@dataclass(frozen=True)
class Directive:
    """`-- litedeploy: allow RULE OBJECT` in a migration's SQL."""

    rule: str
    object: str

    def covers(self, finding: Finding) -> bool:
        return finding.object is not None and self.allows(finding.rule, finding.object)

    def allows(self, rule: str, obj: str) -> bool:
        """True when this directive names `rule` (or its alias) and exactly `obj`."""
        return rule == ALIASES.get(self.rule, self.rule) and normal_object(obj) == self.object


def normal_object(name: str) -> str:
    """`"Users".legacy` -> `users.legacy`: quotes removed, case folded."""
    return ".".join(p.strip("`\"[]'") for p in name.split(".")).lower()


def directives(migration: Migration) -> list[Directive]:
    """Every allow directive written anywhere in the migration's SQL (comments included)."""
    text = "".join(chunk.text for chunk in migration.chunks)
    return [
        Directive(m.group("rule").lower(), normal_object(m.group("object")))
        for m in _DIRECTIVE.finditer(text)
    ]


def allowing(migrations: list[Migration], rule: str, obj: str) -> str | None:
    """The directive among the migrations' that allows `rule` on `obj`, written out; or None."""
    for m in migrations:
        for d in directives(m):
            if d.allows(rule, obj):
                return f"-- litedeploy: allow {d.rule} {d.object} (in {m.name})"
    return None


def acknowledge(findings: list[Finding], migrations: list[Migration]) -> list[Finding]:
    """Mark the findings a directive in their own migration acknowledges."""
    by_name = {m.name: directives(m) for m in migrations}
    return [
        replace(f, acknowledged=True)
        if any(d.covers(f) for d in by_name.get(f.migration, []))
        else f
        for f in findings
    ]


def allow_row_loss(findings: list[Finding]) -> list[Finding]:
    """Acknowledge the findings about lost rows (the operator passed --allow-row-loss)."""
    return [replace(f, acknowledged=True) if f.rule in ROW_LOSS_RULES else f for f in findings]


def blocking(findings: list[Finding]) -> list[Finding]:
    """Findings that stop a migration: severity block and not acknowledged."""
    return [f for f in findings if f.blocks]


def find(conn: sqlite3.Connection | None, migrations: list[Migration]) -> list[Finding]:
    """Analyse the pending migrations, in order, against the live database when given.

    Read-only: the live database is only queried (row and value counts); the schema is
    replayed in an in-memory database. Without a connection the analysis is static.
    """
    from .rules import analyse  # rules imports this module's model

    return acknowledge(analyse(conn, migrations), migrations)
