"""The gate `run` passes before it touches the live database: findings, then a rehearsal.

1. The findings of `entrypoint plan`, on the live database (read-only queries).
2. The rehearsal of `entrypoint rehearse`: the pending migrations applied to a snapshot copy,
   rows, values and schema objects compared (skipped for a new database, and with
   `--no-rehearse`).

Blocking findings and unexplained losses stop the run with exit 15, and a migration that fails
on the copy with exit 6, before the backup is even taken: the live database is left exactly as
it was. Acknowledged ones are printed and let
through. `--findings warn` (staging only: refused when the environment is production) prints
what would have blocked and goes on; a migration that fails on the copy still stops the run,
since it would fail on the live database too.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from typing import NoReturn

from .errors import FindingsBlock, MigrationFailed, UsageError
from .findings import Finding, allow_row_loss, blocking, find
from .rehearsal import RehearsalReport, rehearse
from .settings import Findings, Options
from .sources import Migration

log = logging.getLogger("litedeploy.entrypoint")


@dataclass(frozen=True)
class Passed:
    """What the gate found and let through."""

    findings: list[Finding]
    rehearsal: RehearsalReport | None


def check_relaxing(options: Options) -> None:
    """`--findings warn` is for staging: refuse it where the environment says production."""
    if options.findings is Findings.WARN and options.production:
        raise UsageError(
            f"--findings warn is refused in production (environment {options.environment!r})",
            hint="acknowledge an intended loss in the migration itself "
            "(-- litedeploy: allow RULE OBJECT) or fix the migration",
        )


def gate(conn: sqlite3.Connection, options: Options, pending: list[Migration]) -> Passed:
    """Raise FindingsBlock when something blocks; otherwise say what was found."""
    check_relaxing(options)
    findings = find(conn, pending)
    if options.allow_row_loss:
        findings = allow_row_loss(findings)
    _log_findings(findings)
    stopping = blocking(findings)
    blocked = [f"{f.migration} statement {f.statement}: [{f.rule}] {f.message}" for f in stopping]
    first_hint = stopping[0].hint if stopping else ""
    report = None
    if blocked and options.findings is Findings.BLOCK:
        _refuse(blocked, first_hint)  # no need for a copy to know it will be refused
    if options.rehearse:
        report = rehearse(options, workdir=options.rehearsal_dir)
        _log_rehearsal(report)
        if report.failure is not None:
            name = report.failure.migration or "the pending migrations"
            raise MigrationFailed(
                f"rehearsal: {name} fails on a copy of the database ({report.failure.error}); "
                "the live database was not touched",
                hint="fix the migration: it fails on this database's data "
                "(`entrypoint rehearse` shows the whole report)",
            )
        losses = report.blocking()
        blocked += [f"rehearsal: {loss.message}" for loss in losses]
        if losses and not first_hint:
            loss = losses[0]
            first_hint = (
                "fix the migration; if the loss is intended, say so in the migration "
                f"(-- litedeploy: allow {loss.rule} {loss.object})"
                + (" or pass --allow-row-loss" if loss.kind == "rows" else "")
            )
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
    _refuse(blocked, first_hint)


def _refuse(blocked: list[str], hint: str) -> NoReturn:
    raise FindingsBlock(
        f"{len(blocked)} blocking problem(s) before migrating, the live database was not "
        f"touched; first: {blocked[0]}",
        hint=hint or "run `entrypoint plan` and `entrypoint rehearse` for the whole report",
    )


def _log_findings(findings: list[Finding]) -> None:
    for f in findings:
        at = f"statement {f.statement}" if f.statement is not None else "file"
        state = " (acknowledged)" if f.acknowledged else ""
        line = f"finding {f.severity}{state} [{f.rule}] {f.migration} {at}: {f.message}"
        if f.blocks:
            log.error("%s", line)
        elif f.severity == "info":
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
