"""The findings a migration's text gives on its own: empty chunks, transaction control,
statements that open another database file. No schema is replayed and nothing is counted,
so this is all a new database needs (see `find_in_files`); `rules.Analysis` builds on it.
"""

from __future__ import annotations

from ..engine.sources import Migration
from ..engine.sqltext import Maintenance
from .findings import Finding, Kind, Severity, acknowledge
from .loss import Acknowledgements


def find_in_files(
    migrations: list[Migration], acks: Acknowledgements | None = None
) -> list[Finding]:
    """Only the findings about the files themselves: empty chunks, transaction control,
    other database files. No schema is replayed and nothing is counted.

    All that can block on a new database: every other finding is about data (rows it
    would lose, statements failing on its rows or schema), and a new database has none;
    a statement that fails there is rolled back and the new file removed by `run`.
    """
    acks = acks if acks is not None else Acknowledgements.gather(migrations)
    found = [f for m in migrations for f in FileAnalysis(m).files()]
    return acknowledge(found, acks)


class FileAnalysis:
    """The findings one migration's text gives on its own."""

    def __init__(self, migration: Migration) -> None:
        self.migration = migration
        self.findings: list[Finding] = []

    def add(
        self,
        rule: str,
        severity: Severity,
        statement: int | None,
        message: str,
        hint: str,
        obj: str | None,
        kind: Kind = "note",
    ) -> None:
        self.findings.append(
            Finding(rule, severity, self.migration.name, statement, message, hint, obj, kind)
        )

    def files(self) -> list[Finding]:
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
        self.transactions()
        self.other_files()
        return sorted(self.findings, key=lambda f: f.statement or 0)

    def other_files(self) -> None:
        m = self.migration
        for s, op in zip(m.statements, m.ops, strict=True):
            if isinstance(op, Maintenance) and op.opens_another_file:
                self.add(
                    "attach",
                    "block",
                    s.number,
                    f"statement {s.number} ({op.verb}) opens a database file other than this "
                    "one: the backup does not cover it and the rehearsal may not write it",
                    "move the data with the app, or with a migration of the other database; if "
                    "this one must run, acknowledge it (-- litedeploy: allow attach "
                    f"{m.name}) and run it with --no-rehearse",
                    m.name,
                    "migration",
                )

    def transactions(self) -> None:
        m = self.migration
        if m.foreign_keys_idiom:
            numbers = sorted(m.foreign_keys_idiom)
            self.add(
                "foreign-keys-idiom",
                "info",
                numbers[0],
                f"statements {', '.join(map(str, numbers))} end and restart the transaction to "
                "set PRAGMA foreign_keys: litedeploy runs the whole file in one transaction, "
                f"foreign keys {'OFF' if m.wants_foreign_keys_off else 'ON'} around it and "
                "checked before commit",
                "nothing to do",
                None,
            )
        for s in m.transaction_control:
            self.add(
                "transaction-control",
                "block",
                s.number,
                f"statement {s.number} is {s.code.split()[0].upper()}: it would end the "
                "migration's transaction, so a later failure could not be rolled back",
                "remove it (each migration already runs in one transaction); if the file is "
                "already applied elsewhere and cannot change, acknowledge it: "
                f"-- litedeploy: allow transaction-control {m.name} (or --allow "
                f"transaction-control {m.name}); litedeploy then skips it and runs the file in "
                "one transaction",
                m.name,
                "migration",
            )
