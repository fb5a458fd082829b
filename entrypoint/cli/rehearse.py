"""`entrypoint rehearse`: apply the pending migrations to a copy, say what happens to the data."""

from __future__ import annotations

import json

import typer

from ..base.contract import CLI_DEFAULT_DB
from ..base.errors import FindingsBlock
from ..safety.rehearsal import Loss, RehearsalReport, rehearse
from .options import (
    DEFAULT_MIGRATIONS,
    AllowOption,
    DbOption,
    FormatChoice,
    FormatOption,
    JsonOption,
    MigrationsOption,
    RehearsalDirOption,
    TableOption,
    make_options,
)
from .program import app, errors_to_exit


@app.command(
    "rehearse",
    epilog="Example: entrypoint rehearse --db ./data/app.db --migrations ./drizzle --json",
)
def rehearse_command(
    db: DbOption = CLI_DEFAULT_DB,
    migrations: MigrationsOption = DEFAULT_MIGRATIONS,
    fmt: FormatOption = FormatChoice.AUTO,
    table: TableOption = None,
    rehearsal_dir: RehearsalDirOption = None,
    as_json: JsonOption = False,
    allow: AllowOption = None,
) -> None:
    """Apply the pending migrations to a snapshot copy and look for every row and value.

    The live database is only read (copied with SQLite's online backup API into a private
    folder in $TMPDIR, twice: before and after; removed afterwards). Every row and non-NULL
    value of the copy before is looked for after: in the same row (matched by primary key,
    followed through renames and rebuilds) or moved to another table keyed by the same id.
    Reports rows per table, what vanished (rows, values, triggers, views, indexes) and what
    the rehearsal cost. Exits 15 when a migration fails on the copy or data vanishes that
    nobody acknowledged (-- litedeploy: allow RULE OBJECT, --allow RULE=OBJECT); rows a
    DELETE removes are reported, not blocking.
    """
    with errors_to_exit():
        report = rehearse(
            make_options(db, migrations, fmt, table, allow=allow), workdir=rehearsal_dir
        )
        if as_json:
            typer.echo(json.dumps(report.to_json(), indent=2))
        else:
            typer.echo(rehearsal_text(report))
        problems = report.problems()
        if problems:
            raise FindingsBlock(
                f"rehearsal: {len(problems)} blocking problem(s); first: {problems[0]}",
                hint="fix the migration: it fails on this database's data (the live database "
                "was not touched)"
                if report.failure is not None
                else "fix the migration (the live database was not touched); acknowledge an "
                "intended loss by name: -- litedeploy: allow RULE OBJECT in the migration, or "
                "--allow RULE=OBJECT",
            )


def rehearsal_text(report: RehearsalReport) -> str:
    """The report for a human: tables, lost values, vanished objects, verdict, cost."""
    lines = [f"database:   {report.database}"]
    if not report.database_exists:
        lines += [
            f"migrations: {report.migrations_dir} ({report.format})",
            f"pending:    {len(report.pending)} migration(s)",
            "the database does not exist: nothing to rehearse on (the migrations would create it)",
        ]
        return "\n".join(lines)
    lines += [
        f"migrations: {report.migrations_dir} ({report.format})",
        f"pending:    {len(report.pending)} migration(s)"
        + (f": {', '.join(report.pending)}" if report.pending else ""),
    ]
    if not report.pending:
        lines.append("nothing to apply")
    else:
        lines.append(f"applied on the copy: {len(report.applied)} of {len(report.pending)}")
        if report.failure is not None:
            name = report.failure.migration or "the migrations"
            lines.append(f"FAILED on the copy: {name}: {report.failure.error}")
        width = max([len(t.table) for t in report.tables] + [5])
        lines += ["", "rows before -> after:"]
        for t in report.tables:
            after = "gone" if t.after is None else str(t.after)
            renamed = f"  (now {t.now})" if t.now else ""
            flag = "" if t.after is not None and t.after >= t.before else "  <- fewer"
            lines.append(f"  {t.table:<{width}}  {t.before} -> {after}{renamed}{flag}")
        for title, kinds in (
            ("lost rows:", {"rows"}),
            ("lost values:", {"values"}),
            ("vanished objects:", {"object"}),
        ):
            own = [loss for loss in report.losses if loss.kind in kinds]
            lines += ["", title + ("" if own else " none")]
            lines += [f"  {_label(loss):<9} {loss.message}" for loss in own]
    problems = report.problems()
    verdict = {
        "pass": "nothing blocks",
        "block": f"{len(problems)} blocking problem(s)",
        "fail": f"a migration fails on the copy ({len(problems)} blocking problem(s))",
    }.get(report.verdict, report.verdict)
    cost = report.cost
    lines += [
        "",
        f"verdict: {verdict}",
        f"cost:    snapshot {cost.snapshot_ms} ms ({_size(cost.snapshot_bytes)}), apply "
        f"{cost.apply_ms} ms, compare {cost.compare_ms} ms, total {cost.total_ms} ms",
    ]
    return "\n".join(lines)


def _size(n: int) -> str:
    return f"{n} bytes" if n < 1 << 20 else f"{n / (1 << 20):.1f} MiB"


def _label(loss: Loss) -> str:
    return "ALLOWED" if loss.acknowledged_by else loss.verdict.upper()
