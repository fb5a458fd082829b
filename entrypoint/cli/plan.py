"""`entrypoint plan`: each pending migration's statements and findings. Changes nothing."""

from __future__ import annotations

import contextlib
import json
import textwrap
from pathlib import Path
from typing import Any

import typer

from ..base.contract import CLI_DEFAULT_DB
from ..base.errors import FindingsBlock
from ..engine.plan import State
from ..engine.sources import Migration
from ..modes.migrate import Status, status
from ..safety.expand import compatibility
from ..safety.findings import Finding, blocking
from ..safety.rehearsal import acknowledgements
from ..safety.rules import find
from ..safetynet.database import connect
from .options import (
    DEFAULT_MIGRATIONS,
    AllowOption,
    DbOption,
    FormatChoice,
    FormatOption,
    JsonOption,
    MigrationsOption,
    TableOption,
    make_options,
)
from .program import app, errors_to_exit

_SQL_WIDTH = 96


@app.command(
    "plan",
    epilog="Example: entrypoint plan --db ./prod-copy.db --migrations ./drizzle --json",
)
def plan_command(
    db: DbOption = CLI_DEFAULT_DB,
    migrations: MigrationsOption = DEFAULT_MIGRATIONS,
    fmt: FormatOption = FormatChoice.AUTO,
    table: TableOption = None,
    as_json: JsonOption = False,
    allow: AllowOption = None,
) -> None:
    """Show what each pending migration will do to this database, and what would block it.

    Read-only: the database is only queried (a missing one counts as empty). Each statement is
    read against the schema at that statement and the rows it will meet, so failures SQLite
    would raise (NOT NULL, UNIQUE, CHECK, foreign keys, non-constant defaults) are predicted
    with their counts. Exits 15 when an unacknowledged blocking finding exists: what would
    block `run --no-rehearse`. `run` itself decides data losses with a rehearsal on a copy
    (`entrypoint rehearse`), which also finds values the SQL moved elsewhere.
    """
    with errors_to_exit():
        options = make_options(db, migrations, fmt, table, allow=allow)
        current = status(options)
        pending = [
            item.migration
            for item in current.plan.items
            if item.migration is not None and item.state in (State.PENDING, State.OUT_OF_ORDER)
        ]
        acks = acknowledgements(pending, options)
        if current.database_exists:
            with contextlib.closing(connect(db, read_only=True)) as conn:
                findings = find(conn, pending, acks)
        else:
            findings = find(None, pending, acks)
        if as_json:
            typer.echo(json.dumps(_plan_json(db, current, pending, findings), indent=2))
        else:
            typer.echo(_plan_text(db, current, pending, findings))
        blocked = blocking(findings)
        if blocked:
            first = blocked[0]
            raise FindingsBlock(
                f"{len(blocked)} blocking finding(s); first: {first.migration} statement "
                f"{first.statement}: [{first.rule}] {first.message}",
                hint=first.hint,
            )


def _plan_json(
    db: Path, current: Status, pending: list[Migration], findings: list[Finding]
) -> dict[str, Any]:
    states = {i.name: str(i.state) for i in current.plan.items}
    return {
        "database": str(db),
        "database_exists": current.database_exists,
        "migrations_dir": str(current.source.folder),
        "format": str(current.source.format),
        "history_table": current.table.name,
        "analysis": "live" if current.database_exists else "static",
        "blocking": len(blocking(findings)),
        # whether the release before can keep serving on the migrated database (issue 16)
        "expand_only": (fit := compatibility(pending)).expand_only,
        "contract_changes": [c.line() for c in fit.contract],
        "migrations": [
            {
                "name": m.name,
                "state": states[m.name],
                "statements": [{"number": s.number, "sql": s.sql} for s in m.statements],
                "findings": [f.to_json() for f in findings if f.migration == m.name],
            }
            for m in pending
        ],
    }


def _plan_text(db: Path, current: Status, pending: list[Migration], findings: list[Finding]) -> str:
    where = "" if current.database_exists else " (does not exist: static analysis only)"
    lines = [
        f"database:   {db}{where}",
        f"migrations: {current.source.folder} ({current.source.format})",
        f"pending:    {len(pending)} migration(s)",
    ]
    if not pending:
        lines.append("nothing to apply")
    for m in pending:
        lines += ["", f"== {m.name}"]
        for s in m.statements:
            one_line = " ".join(s.code.split())
            lines.append(f"  {s.number:>3}  {textwrap.shorten(one_line, _SQL_WIDTH)}")
        own = [f for f in findings if f.migration == m.name]
        if not own:
            lines.append("  findings: none")
            continue
        lines.append("  findings:")
        for f in own:
            severity = f"{f.severity}{' (acknowledged)' if f.acknowledged else ''}"
            f_hint = f"acknowledged by {f.acknowledged}" if f.acknowledged else f"hint: {f.hint}"
            at = f"stmt {f.statement}" if f.statement is not None else "file"
            lines.append(f"    {severity.upper():<7} {f.rule:<30} {at:<8} {f.message}")
            lines.append(f"    {'':<7} {'':<30} {'':<8} {f_hint}")
    total = len(blocking(findings))
    judged = sum(1 for f in blocking(findings) if f.judged_on_copy)
    verdict = f"{total} blocking finding(s)" if total else "nothing blocks"
    if judged:
        verdict += (
            f"; {judged} of them about the data, which `run` judges on a copy "
            "(`entrypoint rehearse`)"
        )
    lines += ["", verdict, _side_by_side(pending)]
    return "\n".join(lines)


def _side_by_side(pending: list[Migration]) -> str:
    """Whether the running version can keep serving while and after these migrations run."""
    fit = compatibility(pending)
    if fit.expand_only:
        return "expand-only: the version running now can keep serving on the migrated database"
    first, more = fit.contract[0], len(fit.contract) - 1
    extra = f" (and {more} more: --json lists them)" if more else ""
    return f"not expand-only: {first.line()}{extra}"
