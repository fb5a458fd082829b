"""What `entrypoint run` does once its settings are known, with or without typer.

`RunRequest` is the whole of a command line and its environment, resolved; `run_request`
makes one from the values either parser produced; `launch` migrates (or pushes), hands the
files to the app's user, drops root and execs the app.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.contract import SIDE_FILES, side_file
from ..base.errors import UsageError
from ..base.record import Record
from ..engine.lock import lock_path
from ..handoff import app as handoff
from ..modes.migrate import migrate
from ..safetynet.backup_options import Method
from ..safetynet.integrity import Level
from ..settings import Findings, Options, Policy, PushOptions, check_relaxing
from .values import FormatChoice, Mode, TransactionChoice, make_options

if TYPE_CHECKING:
    from ..modes.push import Pushed

log = logging.getLogger("litedeploy.entrypoint")


@dataclass(eq=False, repr=False)
class RunRequest(Record):
    options: Options
    command: tuple[str, ...] = ()
    user: str | None = None
    mode: Mode = Mode.MIGRATE
    push: PushOptions = field(
        default_factory=PushOptions
    )  # push mode's own; ignored in migrate mode
    rehearsal: bool = False  # stop after migrating and checking (deploy's rehearsal)


def run_request(
    *,
    command: list[str] | tuple[str, ...] | None,
    db: Path | str,
    migrations: Path | str,
    fmt: str,
    table: str | None,
    transaction: str,
    backup: str,
    backup_method: str,
    check: str,
    findings: str,
    mode: str,
    user: str | None,
    env: str | None,
    strict: bool,
    deploy_id: str | None,
    allow: list[str] | tuple[str, ...] | None,
    schema: Path | str | None,
    rename: list[str] | tuple[str, ...] | None,
    accept_data_loss: bool,
    allow_push_in_production: bool,
    dry_run: bool,
    rehearsal: bool,
    **flags: Any,
) -> RunRequest:
    """A request from the values of `run`'s parameters (enums given as values or strings)."""
    options = make_options(
        Path(db),
        Path(migrations),
        FormatChoice(fmt),
        table,
        allow=list(allow or ()),
        one_transaction=TransactionChoice(transaction) is TransactionChoice.ALL,
        backup=Policy(backup),
        backup_method=Method(backup_method),
        check_level=Level(check),
        findings=Findings(findings),
        deploy_id=deploy_id or None,
        environment=env or None,
        strict_drift=strict,
        **flags,
    )
    return RunRequest(
        options=options,
        command=tuple(command or ()),
        user=user,
        mode=Mode(mode),
        push=PushOptions(
            schema=Path(schema) if schema is not None else None,
            renames=tuple(rename or ()),
            accept_data_loss=accept_data_loss,
            allow_in_production=allow_push_in_production,
            dry_run=dry_run,
        ),
        rehearsal=rehearsal,
    )


def launch(request: RunRequest) -> None:
    """Migrate (or push), then exec the app as its user; returns only without a command."""
    options, command = request.options, list(request.command)
    check_relaxing(options)
    account = handoff.lookup_user(request.user) if request.user else None
    if command:
        handoff.resolve_command(command)  # fail before migrating, not after
    push = request.push
    if request.mode is Mode.PUSH:
        from ..modes.push import push as push_schema  # only here: not on migrate's start-up path

        pushed = push_schema(options, push)
        if push.dry_run:
            print(push_text(pushed), flush=True)
            if pushed.refusal is not None:  # exit as the real push would: 15, same words
                raise pushed.refusal
            return
    elif push.dry_run:
        raise UsageError(
            "--dry-run is for --mode push",
            hint="`entrypoint plan` shows what migrate mode would do",
        )
    else:
        for name, given in (
            ("--schema", push.schema is not None),
            ("--rename", bool(push.renames)),
            ("--accept-data-loss", push.accept_data_loss),
        ):
            if given:
                log.warning("warning: %s is for --mode push; ignored in migrate mode", name)
        migrate(options)
    if request.rehearsal:
        log.info("rehearsal: migrations and checks passed; stopping before exec")
        return
    if account is not None:
        db = options.db_path
        db_files = [db, *(side_file(db, s) for s in SIDE_FILES), lock_path(db)]
        handoff.give_files_to(account, [db.parent, *db_files])
        handoff.drop_privileges(account)
    if command:
        handoff.exec_command(command)


def push_text(pushed: Pushed) -> str:
    """The push plan for a human: every change with its SQL, then the data at risk."""
    plan = pushed.plan
    lines = [
        f"declared schema: {pushed.declared.path} ({pushed.declared.kind})",
        f"changes: {len(plan.changes)}" + ("" if plan.changes else " (the schema already matches)"),
    ]
    for change in plan.changes:
        lines += ["", f"-- {change.summary}"]
        lines += [" ".join(s.split()) if "\n" not in s else s for s in change.statements]
    risks = plan.risks
    lines += ["", "data at risk:" + ("" if risks else " none")]
    for risk in risks:
        label = "CANNOT (rows would have to be deleted)" if not risk.fits else "LOSS"
        lines.append(f"  {label}: {risk.message}")
    if plan.ignored:
        lines += ["", f"left alone (push never drops them): {', '.join(plan.ignored)}"]
    if plan.uncovered:
        lines += ["", f"not in the declared schema, left alone: {', '.join(plan.uncovered)}"]
    for warning in [*pushed.declared.warnings, *plan.warnings]:
        lines += ["", f"warning: {warning}"]
    if pushed.refusal is not None:
        verdict = "the push would be refused (exit 15): " + pushed.refusal.message
    elif risks:
        verdict = "the push would apply, losing the data above (accepted)"
    else:
        verdict = "the push would apply cleanly"
    lines += ["", f"dry run: nothing was written; {verdict}"]
    return "\n".join(lines)
