"""The gate `run` passes before it touches the live database: findings, then a rehearsal.

1. The findings of `entrypoint plan` (read-only queries on the live database). They
   explain; on their own they block only what no copy can judge: transaction control that
   would commit half a migration. With no copy (`--no-rehearse`) their predictions about
   the data block as well, and say so.
2. The rehearsal of `entrypoint rehearse`, the judge: the pending migrations applied to a
   snapshot copy, and every row and value looked for afterwards. Rows or values that
   vanish, unacknowledged, stop the run with exit 15; a migration that fails on the copy
   stops it with exit 6; both before the backup is even taken, so the live database is
   left exactly as it was.

A new database has no data to lose: only the findings about the files are looked for (a
migration that fails on it is rolled back and the new file removed by `run`). Acknowledged
losses are printed and let through. `--findings warn` (staging only: refused when the environment is
production) prints what would have blocked and goes on; a migration that fails on the copy
still stops the run, since it would fail on the live database too.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import TYPE_CHECKING, NoReturn

from ..base.errors import FindingsBlock, MigrationFailed
from ..base.record import Record
from ..engine.plan import Planned
from ..engine.sources import Migration
from ..settings import Findings, Options, check_relaxing
from .files import find_in_files
from .findings import Finding, blocking
from .loss import Acknowledgements, Loss

if TYPE_CHECKING:  # the rehearsal (and its judge) is loaded only when it runs
    from .rehearsal import RehearsalReport

log = logging.getLogger("litedeploy.entrypoint")


@dataclass(eq=False, repr=False)
class Passed(Record):
    """What the gate found and let through."""

    findings: list[Finding]
    rehearsal: RehearsalReport | None


def gate(
    conn: sqlite3.Connection,
    options: Options,
    planned: Planned,
    pending: list[Migration],
    *,
    exists: bool = True,
) -> Passed:
    """Raise FindingsBlock or MigrationFailed when something blocks; else say what was found.

    `planned` and `pending` are what `run` computed under its lock; the rehearsal uses them.
    """
    check_relaxing(options)
    acks = Acknowledgements.gather(pending, options.allow, row_loss=options.allow_row_loss)
    for allowed in acks.from_operator:
        log.warning("acknowledged by the operator (--allow): %s", allowed)
    # A new database has no data to lose, and a statement that fails on it is rolled back
    # with the new file removed: only the findings about the files can stop it, and only
    # those are looked for (no schema replayed).
    if exists:
        from .rules import find  # the replay and its schema model: for an existing database

        findings = find(conn, pending, acks)
    else:
        findings = find_in_files(pending, acks)
    rehearsing = options.rehearse and exists
    # Predictions about the data block only where no copy judges them: an existing database
    # run with --no-rehearse.
    static = exists and not rehearsing
    _log_findings(findings, judged_later=not static)
    stopping = [f for f in blocking(findings) if not f.judged_on_copy or static]
    blocked = [_line(f, rehearsing) for f in stopping]
    hint = stopping[0].hint if stopping else ""
    if blocked and options.findings is Findings.BLOCK:
        _refuse(blocked, hint)  # no need for a copy to know it will be refused
    report = None
    if rehearsing:
        from .rehearsal import rehearse

        report = rehearse(options, workdir=options.rehearsal_dir, planned=planned)
        _log_rehearsal(report)
        if report.failure is not None:
            raise _failed_on_copy(report, findings)
        losses = report.blocking()
        blocked += [f"rehearsal: {loss.message}" for loss in losses]
        if losses and not hint:
            hint = _loss_hint(losses[0])
    if not blocked:
        return Passed(findings, report)
    if options.findings is Findings.WARN:
        rows_lost = report is not None and any(loss.kind == "rows" for loss in report.blocking())
        if rows_lost and not options.allow_row_loss:
            raise FindingsBlock(
                f"{len(blocked)} blocking problem(s) and --findings warn, but rows would be "
                "lost and the check after migrating would restore the backup; first: "
                f"{blocked[0]}",
                hint="pass --allow-row-loss as well if losing those rows is intended",
            )
        for line in blocked:
            log.warning("not blocking (--findings warn): %s", line)
        return Passed(findings, report)
    _refuse(blocked, hint)


def _line(f: Finding, rehearsing: bool) -> str:
    static = f.judged_on_copy and not rehearsing
    note = " (judged from the SQL alone: --no-rehearse)" if static else ""
    return f"{f.migration} statement {f.statement}: [{f.rule}] {f.message}{note}"


def _loss_hint(loss: Loss) -> str:
    from .loss import normal_object

    obj = normal_object(loss.object)
    return (
        "fix the migration; if the loss is intended, say so in the migration "
        f"(-- litedeploy: allow {loss.rule} {obj}) or, for an image you cannot change, run with "
        f"--allow {loss.rule}={obj}" + (" or --allow-row-loss" if loss.kind == "rows" else "")
    )


def _failed_on_copy(report: RehearsalReport, findings: list[Finding]) -> MigrationFailed:
    assert report.failure is not None
    name = report.failure.migration or "the pending migrations"
    predicted = [
        f for f in findings if f.kind == "failure" and f.severity == "block" and f.migration == name
    ]
    why = f"; predicted: [{predicted[0].rule}] {predicted[0].message}" if predicted else ""
    return MigrationFailed(
        f"rehearsal: {name} fails on a copy of the database ({report.failure.error}){why}; "
        "the live database was not touched",
        hint=(
            predicted[0].hint
            if predicted
            else "fix the migration: it fails on this database's data"
        )
        + " (`entrypoint plan` and `entrypoint rehearse` show the whole report)",
    )


def _refuse(blocked: list[str], hint: str) -> NoReturn:
    for line in blocked:
        log.error("blocking: %s", line)
    raise FindingsBlock(
        f"{len(blocked)} blocking problem(s) before migrating, the live database was not "
        f"touched; first: {blocked[0]}",
        hint=hint or "run `entrypoint plan` and `entrypoint rehearse` for the whole report",
    )


def _log_findings(findings: list[Finding], *, judged_later: bool) -> None:
    for f in findings:
        at = f"statement {f.statement}" if f.statement is not None else "file"
        state = f" (acknowledged by {f.acknowledged})" if f.acknowledged else ""
        severity = f.severity
        if judged_later and f.judged_on_copy and severity == "block" and not f.acknowledged:
            severity = "warn"  # the rehearsal decides; say what was predicted
            state += " (the rehearsal on a copy decides)"
        line = f"finding {severity}{state} [{f.rule}] {f.migration} {at}: {f.message}"
        if f.blocks and severity == "block":
            log.error("%s", line)
        elif severity == "info":
            log.info("%s", line)
        else:
            log.warning("%s", line)


def _log_rehearsal(report: RehearsalReport) -> None:
    if not report.rehearsed:
        return
    for loss in report.losses:
        if loss.acknowledged_by or loss.verdict == "explained":
            log.info("rehearsal: %s", loss.message)
        else:
            log.warning("rehearsal: %s", loss.message)
    cost = report.cost
    log.info(
        "rehearsal on a copy (%d bytes): %s; snapshot %.0f ms, apply %.0f ms, compare %.0f ms",
        cost.snapshot_bytes,
        report.verdict,
        cost.snapshot_ms,
        cost.apply_ms,
        cost.compare_ms,
    )
