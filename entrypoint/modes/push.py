"""Push mode (staging): make the live schema the declared one, in one transaction, losing nothing.

The story: refuse in production; load the declared schema (drizzle-kit's newest snapshot or
a schema.sql); lock; plan the changes (`push_plan`); print them; refuse what would lose
data unless accepted, and what cannot be done without deleting rows in any case; back up;
then, with foreign keys off outside the transaction, apply every change in one transaction,
check foreign keys, that the schema is now the declared one and that every kept table still
has all its rows, and only then commit. Anything wrong rolls the whole push back.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from dataclasses import dataclass

from ..base.errors import FindingsBlock, MigrationFailed, PlanRefused
from ..engine import history
from ..engine.apply import violations, write_transaction
from ..engine.sources import load_source
from ..pushplan.declared import Declared, from_file, from_source
from ..pushplan.planner import PushPlan, Risk, ignored, parse_renames, plan_push
from ..safety.checks import CheckReport, check_database, row_counts
from ..safety.drift import differences
from ..safety.loss import Acknowledgements, canonical
from ..safety.schema import read_schema
from ..safetynet.backup import Backup
from ..safetynet.database import check_file, connect
from ..settings import Options, Policy, PushOptions
from .session import (
    Session,
    refuse_if_corrupt,
    remove_leftovers,
    restore_after_failed_check,
    session,
    take_run_backup,
)

log = logging.getLogger("litedeploy.entrypoint")


@dataclass(frozen=True)
class Pushed:
    """What push planned, and what it did."""

    declared: Declared
    plan: PushPlan
    applied: bool
    backup: Backup | None = None
    report: CheckReport | None = None
    # a dry run's answer: the error the real push would stop with (exit 15), None if it applies
    refusal: FindingsBlock | None = None


def push(options: Options, push_options: PushOptions) -> Pushed:
    """Plan and (unless a dry run) apply the push; on any failure the database is as it was."""
    if options.production and not push_options.allow_in_production:
        raise PlanRefused(
            f"push mode is refused in production (environment {options.environment!r}): it "
            "changes the schema without reviewed migrations",
            hint="deploy migrations (--mode migrate) to production; if you really mean it, "
            "--allow-push-in-production / LITEDEPLOY_ALLOW_PUSH_IN_PRODUCTION=1",
        )
    declared = _declared(options, push_options)
    log.info("push: declared schema %s (%s)", declared.path, declared.kind)
    for warning in declared.warnings:
        log.warning("push: warning: %s", warning)
    if push_options.dry_run:
        return _dry_run(options, push_options, declared)
    with session(options) as run:
        return _push(run, push_options, declared)


def _declared(options: Options, push_options: PushOptions) -> Declared:
    if push_options.schema is not None:
        return from_file(push_options.schema)
    return from_source(load_source(options.migrations_dir, options.format))


def _history_tables(options: Options) -> list[str]:
    return [history.DRIZZLE_TABLE, history.PLAIN_TABLE, *filter(None, [options.history_table])]


def _plan(
    conn: sqlite3.Connection, options: Options, push_options: PushOptions, declared: Declared
) -> PushPlan:
    with contextlib.closing(declared.load()) as want:
        return plan_push(
            conn,
            want,
            parse_renames(push_options.renames),
            history_tables=_history_tables(options),
            sync_triggers=declared.kind == "schema.sql",
            undeclared=declared.undeclared,
        )


def _dry_run(options: Options, push_options: PushOptions, declared: Declared) -> Pushed:
    """Plan against the database read-only (an empty one when it does not exist)."""
    if check_file(options.db_path):
        with contextlib.closing(connect(options.db_path, read_only=True)) as conn:
            plan = _plan(conn, options, push_options, declared)
    else:
        with contextlib.closing(sqlite3.connect(":memory:")) as conn:
            plan = _plan(conn, options, push_options, declared)
    _log(plan)
    refusal = refusal_of(plan, push_options, options) if plan.changes else None
    return Pushed(declared, plan, applied=False, refusal=refusal)


def _push(run: Session, push_options: PushOptions, declared: Declared) -> Pushed:
    options, existed = run.options, run.existed
    with run.connect() as conn:
        plan = _plan(conn, options, push_options, declared)
        _log(plan)
        if not plan.changes:
            log.info("push: the database already has the declared schema; nothing to change")
            remove_leftovers(options.backups)
            return Pushed(declared, plan, applied=False)
        _guard(plan, push_options, options)
        saved = None
        if existed and options.backup is not Policy.NEVER:
            saved = take_run_backup(options, None, [f"push of {declared.path.name}"])
        else:
            remove_leftovers(options.backups)
            if existed:
                refuse_if_corrupt(conn, options)
        counts_before = row_counts(conn)
        with contextlib.closing(declared.load()) as want:
            _apply(conn, plan, want, counts_before, _history_tables(options))
        report = check_database(conn, options.check_level)
        report.losses = []  # push compared rows itself, table by table, before committing
    if report.integrity:
        restore_after_failed_check(options, saved, report)
    log.info("push: %d change(s) applied in one transaction", len(plan.changes))
    return Pushed(declared, plan, applied=True, backup=saved, report=report)


def _guard(plan: PushPlan, push_options: PushOptions, options: Options) -> None:
    """Stop with `refusal_of`'s error, if there is one."""
    if (refusal := refusal_of(plan, push_options, options)) is not None:
        raise refusal


def refusal_of(plan: PushPlan, push_options: PushOptions, options: Options) -> FindingsBlock | None:
    """What cannot fit without deleting rows, and data loss nobody accepted: the error push
    stops with (the dry run's answer too); None when the plan may be applied.

    A loss is accepted one by one by the operator's --allow (the same vocabulary as
    migrate mode: --allow lost-values=users.name), or wholesale by --accept-data-loss.
    """
    impossible = [r for r in plan.risks if not r.fits]
    if impossible:
        return FindingsBlock(
            f"push refused: {len(impossible)} change(s) cannot be made without deleting rows, "
            f"which push never does; first: {impossible[0].message}",
            hint=_rename_hint(plan, impossible)
            or "fix the data first (deduplicate, fill the NULLs, give the column a default), "
            "or write a migration that says what to do with those rows",
        )
    acks = Acknowledgements.gather([], options.allow)
    for risk in plan.risks:
        if (why := acks.covers(risk.kind, risk.object)) is not None:
            log.warning("push: data loss acknowledged by %s: %s", why, risk.message)
    losing = [r for r in plan.risks if acks.covers(r.kind, r.object) is None]
    if losing and not push_options.accept_data_loss:
        return FindingsBlock(
            f"push refused: {len(losing)} change(s) would lose data; first: {losing[0].message}; "
            "the database was not touched",
            hint="if losing it is intended, acknowledge each loss (--allow "
            f"{canonical(losing[0].kind)}={losing[0].object}) or all of them with "
            "--accept-data-loss / LITEDEPLOY_ACCEPT_DATA_LOSS=1 (the counts are printed again)",
        )
    for risk in losing:
        log.warning("push: data loss accepted (--accept-data-loss): %s", risk.message)
    return None


def _rename_hint(plan: PushPlan, impossible: list[Risk]) -> str | None:
    """A new NOT NULL column push cannot fill, in a table losing a column with values: most
    likely a rename drizzle-kit was told about and push was not."""
    dropped: dict[str, list[str]] = {}
    for risk in plan.risks:
        if risk.kind == "drop-column":
            table, _, column = risk.object.rpartition(".")
            dropped.setdefault(table.lower(), []).append(column)

    def plain(name: str) -> str:  # userId, user_id and USER_ID alike
        return name.replace("_", "").lower()

    for risk in impossible:
        table, _, column = risk.object.rpartition(".")
        if risk.kind == "add-not-null-without-default" and table.lower() in dropped:
            candidates = dropped[table.lower()]
            old = next((c for c in candidates if plain(c) == plain(column)), candidates[0])
            return (
                f"if {table}.{column} is {table}.{old} renamed, say so: --rename "
                f"{table}.{old}={column} (push never guesses a rename); otherwise give it a "
                "default, or write a migration that fills it"
            )
    return None


def _apply(
    conn: sqlite3.Connection,
    plan: PushPlan,
    want: sqlite3.Connection,
    counts_before: dict[str, int],
    history_tables: list[str],
) -> None:
    """Every statement in one transaction, foreign keys off around it and checked before commit."""
    with write_transaction(conn, foreign_keys_off=True):
        existing = violations(conn)
        for change in plan.changes:
            for sql in change.statements:
                try:
                    conn.execute(sql)
                except sqlite3.Error as exc:
                    raise MigrationFailed(
                        f"push: {change.summary}: {exc} [{' '.join(sql.split())[:100]}]; "
                        "rolled back, nothing was changed",
                        hint="a value the declared table refuses (a STRICT type, a collation) "
                        "is for the data to fix first; anything else the dry run should have "
                        "foreseen: please report it with the declared schema and the dry run",
                    ) from exc
        _verify(conn, plan, want, counts_before, existing, history_tables)


def _verify(
    conn: sqlite3.Connection,
    plan: PushPlan,
    want: sqlite3.Connection,
    counts_before: dict[str, int],
    existing: set[tuple[str, int | None, str, int]],
    history_tables: list[str],
) -> None:
    """Before COMMIT: no new foreign key violations, the declared schema, every row kept."""
    new = sorted(violations(conn) - existing, key=str)
    if new:
        shown = "; ".join(f"{t} rowid {rowid} -> {parent}" for t, rowid, parent, _ in new[:5])
        raise MigrationFailed(
            f"push: foreign key check failed: {len(new)} row(s) reference a missing parent "
            f"({shown}); rolled back, nothing was changed",
            hint="the declared foreign keys do not hold for the data: fix the data first",
        )
    live = {
        n: t for n, t in read_schema(conn, history_tables).items() if not ignored(n, history_tables)
    }
    left = differences(read_schema(want), live)
    if left:
        raise MigrationFailed(
            f"push: the schema after pushing still differs from the declared one ({left[0]}); "
            "rolled back, nothing was changed",
            hint="please report this with the declared schema and `--dry-run` output",
        )
    dropped = {c.object.lower() for c in plan.changes if c.kind == "drop table"}
    renamed = {
        old.lower(): new
        for c in plan.changes
        if c.kind == "rename table"
        for old, new in [c.object.split(" -> ")]
    }
    after = row_counts(conn)
    by_lower = {t.lower(): n for t, n in after.items()}
    for table, before in counts_before.items():
        if table.lower() in dropped or ignored(table, history_tables):
            continue
        now = by_lower.get(renamed.get(table.lower(), table).lower())
        if now is None or now < before:
            raise MigrationFailed(
                f"push: {table} would keep {now if now is not None else 0} of its {before} "
                "row(s); rolled back, nothing was changed",
                hint="please report this with the declared schema and `--dry-run` output",
            )


def _log(plan: PushPlan) -> None:
    if plan.uncovered:
        log.info("push: not in the declared schema, left alone: %s", ", ".join(plan.uncovered))
    for warning in plan.warnings:
        log.warning("push: warning: %s", warning)
    for change in plan.changes:
        log.info("push: %s", change.summary)
        for risk in change.risks:
            label = "cannot be done without deleting rows" if not risk.fits else "data loss"
            log.warning("push: %s: %s", label, risk.message)
