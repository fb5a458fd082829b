"""Findings: what a pending migration will do to this database, read from its SQL.

The rules that produce them live in `rules.py`; this module holds the model and the
policy. Findings *explain*: where a copy of the database can be made, the rehearsal on
that copy is the judge, and a finding blocks only when no copy is made (`--no-rehearse`),
or when it is about the migration itself rather than the data (transaction control that
would commit half a migration). Every finding that can block names an object, so it can
be acknowledged (`-- litedeploy: allow RULE OBJECT`, `--allow RULE OBJECT`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Literal

from ..base.record import Record
from .loss import LOSS_RULES, Acknowledgements

Severity = Literal["block", "warn", "info"]
# loss: data would vanish; failure: SQLite would refuse the statement on these rows;
# migration: about the file itself, whatever the data; note: for the operator's information.
Kind = Literal["loss", "failure", "migration", "note"]

RULES: dict[str, str] = {
    "add-not-null-without-default": "ADD COLUMN ... NOT NULL without a DEFAULT, on rows",
    "non-constant-default": "ADD COLUMN with a non-constant DEFAULT on a table with rows",
    "not-null-over-nulls": "a NOT NULL column would receive NULLs",
    "unique-over-duplicates": "a UNIQUE index, constraint or key over duplicated values",
    "check-violated": "a CHECK constraint the rows do not meet",
    "foreign-key-violated": "rows that would reference a parent that does not exist",
    "statement-fails": "a statement SQLite refuses on the schema as it stands at that point",
    "drop-table-with-rows": "DROP TABLE of a table that holds rows",
    "drop-column-with-data": "DROP COLUMN of a column that holds non-NULL values",
    "rebuild-drops-column": "a table rebuild that does not copy a column's values",
    "rebuild-loses-rows": "a table rebuild that copies fewer rows than the table holds",
    "rebuild-drops-trigger": "a table rebuild that does not recreate the old table's triggers",
    "rebuild-drops-index": "a table rebuild that does not recreate the old table's indexes",
    "rebuild-resets-autoincrement": "a table rebuild that resets an AUTOINCREMENT counter",
    "rebuild-has-children": "tables whose foreign keys reference a rebuilt table",
    "type-change-lossy": "a type change whose values do not convert cleanly",
    "values-moved": "values copied to another place before their column or table is dropped",
    "pragma-foreign-keys": "PRAGMA foreign_keys inside a migration",
    "foreign-keys-idiom": "COMMIT; PRAGMA foreign_keys=...; BEGIN: foreign keys off for the file",
    "transaction-control": "BEGIN / COMMIT / ROLLBACK / SAVEPOINT that would end the "
    "migration's transaction",
    "attach": "ATTACH or VACUUM INTO: a database file other than the migrated one is opened",
    "empty-chunk": "an empty or comment-only statement chunk",
    "rename": "RENAME of a table or column (breaks the old version during a rolling deploy)",
}

__all__ = ["LOSS_RULES", "RULES", "Finding", "acknowledge", "blocking"]


@dataclass(eq=False, repr=False)
class Finding(Record):
    """One thing a migration will do that the operator should know about."""

    rule: str
    severity: Severity
    migration: str
    statement: int | None
    message: str
    hint: str
    object: str | None
    kind: Kind = "note"
    acknowledged: str | None = None  # who acknowledged it, written out

    @property
    def blocks(self) -> bool:
        """Blocks a run that makes no copy (and a `migration` finding always)."""
        return self.severity == "block" and self.acknowledged is None

    @property
    def judged_on_copy(self) -> bool:
        """A prediction about the data, which the rehearsal on a copy decides instead."""
        return self.kind in ("loss", "failure")

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "blocks": self.blocks}


def acknowledge(findings: list[Finding], acks: Acknowledgements) -> list[Finding]:
    """Mark the blocking findings a directive or the operator acknowledges."""
    out = []
    for f in findings:
        why = (
            acks.covers(f.rule, f.object)
            if f.object is not None and f.severity == "block"
            else None
        )
        out.append(replace(f, acknowledged=why) if why else f)
    return out


def blocking(findings: Iterable[Finding]) -> list[Finding]:
    """Findings that stop a migration made without a copy: severity block, unacknowledged."""
    return [f for f in findings if f.blocks]
