"""Table rebuilds: SQLite's generalized ALTER TABLE, recognised in a migration's statements.

A rebuild creates the new table, copies the old one's rows into it, drops the old one and
renames the new one (drizzle-kit's shape), or renames the old one away first (the older
shape). Judged as one change by the findings; and a migration that rebuilds a table wants
foreign keys off around it, as SQLite's procedure says, whether or not the file says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .sqltext import (
    CreateTable,
    DropTable,
    Insert,
    Op,
    RenameTable,
    plain_column,
    select_list,
    table_refs,
)
from .statements import Statement


@dataclass
class Rebuild:
    """A table rebuilt as one change: `new` filled from `old`, `old` dropped, `new` renamed."""

    old: str
    new: str
    drop: int  # statement number of the DROP TABLE old
    copies: list[Insert] = field(default_factory=list)

    def copied_from(self, column: str) -> str | None:
        """The old column a new column copies as is, in the (first) copy."""
        for ins in self.copies:
            exprs = select_list(ins.select or "")
            if exprs is None:
                continue
            targets = ins.columns or []
            for target, expr in zip(targets, exprs, strict=False):
                if target.lower() == column.lower():
                    return plain_column(expr)
        return None


def find_rebuilds(statements: list[Statement], ops: list[Op]) -> dict[int, Rebuild]:
    """Rebuilds by the number of the statement that drops the old table.

    Two shapes: drizzle-kit's (create new; copy from old; drop old; rename new to old) and
    the older one (rename old to tmp; create old; copy from tmp; drop tmp). A rebuild whose
    copy is missing is still one (it copies no rows).
    """
    numbered = list(zip((s.number for s in statements), ops, strict=True))
    found: dict[int, Rebuild] = {}
    for i, (number, op) in enumerate(numbered):
        if not isinstance(op, DropTable):
            continue
        old = op.table.lower()
        earlier, later = [o for _, o in numbered[:i]], [o for _, o in numbered[i + 1 :]]
        copies = [
            o for o in earlier if isinstance(o, Insert) and o.select and _reads(o.select, old)
        ]
        created = {o.table.lower(): o.table for o in earlier if isinstance(o, CreateTable)}
        new = next(
            (
                o.table
                for o in later
                if isinstance(o, RenameTable)
                and o.new.lower() == old
                and o.table.lower() in created
            ),
            None,
        )
        if new is None and copies and copies[-1].table.lower() in created:
            renamed_before = any(
                isinstance(o, RenameTable) and o.new.lower() == old for o in earlier
            )
            new = copies[-1].table if renamed_before else None
        if new is not None:
            own = [c for c in copies if c.table.lower() == new.lower()]
            found[number] = Rebuild(op.table, new, number, own)
    return found


def _reads(select: str, table: str) -> bool:
    return any(r.name.lower() == table for r in table_refs(select))
