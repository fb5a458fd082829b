"""One vocabulary of loss, and one way to acknowledge it.

A `Loss` is data that a migration makes vanish: rows of a table, non-NULL values of a
column, or a schema object (trigger, view, index, table). The rehearsal's judge measures
them on a copy, the post-migration check on the live file, and the static findings and
push mode predict them; all of them speak this vocabulary, so one acknowledgement covers
the same loss wherever it is seen:

- `-- litedeploy: allow RULE OBJECT` written in a pending migration (its author's word);
- `--allow RULE OBJECT` / `LITEDEPLOY_ALLOW` given by the operator (for images they did
  not write), recorded in the backup manifest and the run's log;
- `--allow-row-loss`: rows (and the values that went with them), never columns.

RULE is `lost-rows` (OBJECT a table), `lost-values` (`table.column`) or `lost-object`
(a trigger, view or index name); the static findings' rule names are accepted as aliases
(`drop-column` means `lost-values`, ...). A rule that predicts a failure rather than a
loss (`add-not-null-without-default`, ...) is acknowledged under its own name.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any, Literal

from ..base.record import Record
from ..engine.sources import Migration

Kind = Literal["rows", "values", "object"]
Verdict = Literal["explained", "warn", "block"]

LOSS_RULES: dict[str, str] = {
    "lost-rows": "rows that vanish without a DELETE saying so",
    "lost-values": "non-NULL values that vanish or change (a dropped column, a lossy type "
    "change, a rebuild that does not copy them)",
    "lost-object": "a trigger, view or index that vanishes without a DROP saying so",
}
_RULE_OF_KIND: dict[Kind, str] = {
    "rows": "lost-rows",
    "values": "lost-values",
    "object": "lost-object",
}

# Names a directive or --allow may use for the same thing.
ALIASES: dict[str, str] = {
    "drop-table-with-rows": "lost-rows",
    "drop-table": "lost-rows",
    "rebuild-loses-rows": "lost-rows",
    "drop-column-with-data": "lost-values",
    "drop-column": "lost-values",
    "rebuild-drops-column": "lost-values",
    "type-change-lossy": "lost-values",
    "type-change": "lost-values",
    "rebuild-drops-trigger": "lost-object",
    "rebuild-drops-index": "lost-object",
    "add-not-null": "add-not-null-without-default",
    "not-null": "not-null-over-nulls",
    "unique": "unique-over-duplicates",
}

_DIRECTIVE = re.compile(
    r"--\s*litedeploy:\s*allow\s+(?P<rule>[a-z][a-z-]*)\s+(?P<object>[^\s;]+)", re.IGNORECASE
)


def canonical(rule: str) -> str:
    """The rule a name stands for: `drop-column` -> `lost-values`."""
    rule = rule.strip().lower()
    return ALIASES.get(rule, rule)


def normal_object(name: str) -> str:
    """`"Users".legacy` -> `users.legacy`: quotes removed, case folded."""
    return ".".join(p.strip("`\"[]'") for p in name.split(".")).lower()


@dataclass(eq=False, repr=False)
class Loss(Record):
    """Rows, values or a schema object that vanish, with what was measured.

    `before` is how many there were and `lost` how many vanished; None means not measured
    (the message then says "unknown"). `verdict` is `explained` when a statement asks for it
    (a DELETE, an explicit DROP INDEX/TRIGGER/VIEW), `warn` when no data goes with it (an
    index), `block` otherwise; an acknowledged block lets the run through.
    """

    kind: Kind
    object: str
    verdict: Verdict
    before: int | None = None
    lost: int | None = None
    what: str = ""  # for objects: table, trigger, view, index; for values: how they went
    explained_by: str | None = None
    acknowledged_by: str | None = None

    @property
    def rule(self) -> str:
        return _RULE_OF_KIND[self.kind]

    @property
    def blocks(self) -> bool:
        return self.verdict == "block" and self.acknowledged_by is None

    @property
    def table(self) -> str:
        return self.object.rsplit(".", 1)[0] if self.kind == "values" else self.object

    @property
    def message(self) -> str:
        lost = "an unknown number of" if self.lost is None else str(self.lost)
        of = "" if self.before is None else f" of {self.before}"
        if self.kind == "rows":
            what = f"{self.object}: {lost}{of} row(s) vanish"
        elif self.kind == "values":
            what = f"{self.object}: {lost}{of} non-NULL value(s) vanish"
        else:
            what = f"{self.what or 'object'} {self.object} vanishes"
        if self.what and self.kind != "object":
            what += f" ({self.what})"
        if self.explained_by:
            return f"{what}, as {self.explained_by} says"
        if self.acknowledged_by:
            return f"{what}; acknowledged by {self.acknowledged_by}"
        return f"{what}; nothing keeps them and no statement says so"

    @property
    def directive(self) -> str:
        return f"-- litedeploy: allow {self.rule} {normal_object(self.object)}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "object": self.object,
            "rule": self.rule,
            "before": self.before,
            "lost": self.lost,
            "what": self.what or None,
            "verdict": self.verdict,
            "blocks": self.blocks,
            "explained_by": self.explained_by,
            "acknowledged_by": self.acknowledged_by,
            "message": self.message,
        }


@dataclass(eq=False, repr=False)
class Allow(Record):
    """One acknowledgement: a rule, an object, and who gave it."""

    rule: str
    object: str
    source: str

    def allows(self, rule: str, obj: str) -> bool:
        if canonical(rule) != self.rule:
            return False
        want = normal_object(obj)
        if self.rule == "lost-object":  # `table.trigger` (older directives) or `trigger`
            return want.rsplit(".", 1)[-1] == self.object.rsplit(".", 1)[-1]
        return want == self.object


def directives(migration: Migration) -> list[Allow]:
    """Every allow directive written anywhere in the migration's SQL (comments included)."""
    text = "".join(chunk.text for chunk in migration.chunks)
    return [
        Allow(
            canonical(m.group("rule")),
            normal_object(m.group("object")),
            f"-- litedeploy: allow {m.group('rule').lower()} "
            f"{normal_object(m.group('object'))} (in {migration.name})",
        )
        for m in _DIRECTIVE.finditer(text)
    ]


def parse_allow(value: str) -> tuple[str, str]:
    """`lost-values users.name` (or `lost-values=users.name`) -> (rule, object); ValueError."""
    parts = value.replace("=", " ").split()
    if len(parts) != 2 or not re.fullmatch(r"[a-z][a-z-]*", parts[0].lower()):
        raise ValueError(value)
    rule, obj = canonical(parts[0]), normal_object(parts[1])
    if "*" in obj or not obj.strip("."):
        raise ValueError(value)
    return rule, obj


@dataclass(eq=False, repr=False)
class Acknowledgements(Record):
    """What the pending migrations' directives and the operator acknowledge."""

    allows: tuple[Allow, ...] = ()
    row_loss: bool = False  # --allow-row-loss

    @classmethod
    def gather(
        cls,
        migrations: Sequence[Migration],
        operator: Iterable[tuple[str, str]] = (),
        *,
        row_loss: bool = False,
    ) -> Acknowledgements:
        found = [a for m in migrations for a in directives(m)]
        found += [Allow(canonical(r), normal_object(o), f"--allow {r}={o}") for r, o in operator]
        return cls(tuple(found), row_loss)

    def covers(self, rule: str, obj: str) -> str | None:
        """Who acknowledges `rule` on `obj`, written out; None when nobody does."""
        for a in self.allows:
            if a.allows(rule, obj):
                return a.source
        if self.row_loss and canonical(rule) == "lost-rows":
            return "--allow-row-loss"
        return None

    def apply(self, losses: list[Loss]) -> list[Loss]:
        """Mark the blocking losses acknowledged; a table's values with its acknowledged rows."""
        by_table: dict[str, str] = {}
        out = list(losses)
        for i, loss in enumerate(out):
            if loss.kind == "rows" and loss.blocks and (why := self.covers(loss.rule, loss.object)):
                out[i] = replace(loss, acknowledged_by=why)
                by_table[loss.object.lower()] = why
        for i, loss in enumerate(out):
            if not loss.blocks or loss.kind == "rows":
                continue
            why = self.covers(loss.rule, loss.object)
            if why is None and loss.kind == "values":  # a table's rows go with their values
                why = by_table.get(loss.table.lower())
            if why is not None:
                out[i] = replace(loss, acknowledged_by=why)
        return out

    @property
    def from_operator(self) -> list[str]:
        """The operator's acknowledgements, for the log line and the backup manifest."""
        return [f"{a.rule}={a.object}" for a in self.allows if a.source.startswith("--allow ")]
