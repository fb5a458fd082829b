"""`deploy`: the host-side command. A thin typer layer over deployer.Deployer."""

from __future__ import annotations

import json
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from entrypoint.base.errors import EntrypointError

from . import engine, records
from .config import Settings, load_file, settings
from .datafolder import for_stack
from .deployer import Deployer, DeployReport, engine_stopped
from .errors import ConfigError, DeployError, PreflightFailed, exit_code
from .stack import resolve
from .status import running, stack_status

EXIT_CODES = """\b
Exit codes:
  0  deployed (or the command succeeded)
  2  usage or configuration error (deploy.yml, flags, compose file, a value the
     entrypoint's code refuses); nothing touched
  3  preflight failed (Docker unreachable, image missing, no disk, the database or a
     backup unusable), or a rollback refused before anything stopped (writes it would
     drop, an image that would refuse the database); nothing touched
  4  aborted before cutover: the rehearsal failed; production untouched
  5  the new version failed; rolled back, previous version healthy
  6  the new version failed and the rollback failed too (see the manual restore command)
  7  another deploy of this stack holds the lock, or another process holds the
     database (its migration lock, or open while a restore would replace it)
  1  a rollback or restore step failed (its message says which); in `deploy restore`,
     also a backup that is missing, damaged or could not be put back
  70 internal error (a bug: please report it with LITEDEPLOY_DEBUG=1 output)
"""

app = typer.Typer(
    name="deploy",
    help="Deploy a SQLite-backed Compose service: rehearse the new image's migrations on a "
    "snapshot, then cut over: start-first beside the running version behind the proxy when the "
    "migrations are expand-only (the proxy switched once the new one is healthy; a failing "
    "release is withdrawn, nothing restored), else `compose up --force-recreate`, wait for "
    "health, and roll back image and database when start-up fails.\n\nWith no command, "
    "deploys --tag.\n\n" + EXIT_CODES,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    invoke_without_command=True,
)


@contextmanager
def _errors_to_exit(*, restoring: bool = False) -> Iterator[None]:
    """The one place where errors become a message and an exit code (the entrypoint's errors
    by errors.FROM_ENTRYPOINT; `restoring`: in `deploy restore`)."""
    try:
        yield
    except (DeployError, EntrypointError) as exc:
        _say(f"error: {exc.message}")
        if exc.hint:
            _say(f"hint: {exc.hint}")
        raise typer.Exit(exit_code(exc, restoring=restoring)) from None
    except engine.UNREACHABLE as exc:  # a command other than deploy met a stopped engine
        stopped = engine_stopped(exc)
        _say(f"error: {stopped.message}")
        _say(f"hint: {stopped.hint}")
        raise typer.Exit(stopped.exit_code) from None


def _say(line: str) -> None:
    typer.echo(f"deploy: {line}", err=True)


@app.callback()
def main_command(
    ctx: typer.Context,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="DEPLOY_CONFIG",
            readable=False,
            help="deploy.yml with the settings below (flags win) [default: ./deploy.yml].",
        ),
    ] = None,
    compose_file: Annotated[
        Path | None,
        typer.Option(readable=False, help="Compose file [default: docker-compose.yml]."),
    ] = None,
    service: Annotated[str | None, typer.Option(help="The app's service [default: app].")] = None,
    project: Annotated[
        str | None, typer.Option(help="Compose project name [default: the compose file's folder].")
    ] = None,
    compose: Annotated[
        str | None, typer.Option(help="Which Compose: auto, v2 (`docker compose`) or v1.")
    ] = None,
    tag: Annotated[str | None, typer.Option(help="The image tag to deploy.")] = None,
    tag_variable: Annotated[
        str | None,
        typer.Option(help="Variable the compose file takes the tag from [default: APP_TAG]."),
    ] = None,
    health_timeout: Annotated[
        float | None, typer.Option(help="Seconds to wait for health [default: 60].")
    ] = None,
    stable_seconds: Annotated[
        float | None,
        typer.Option(help="Without a healthcheck: seconds running without restarts [default: 5]."),
    ] = None,
    probe_url: Annotated[
        str | None, typer.Option(help="Also require this URL to answer 2xx before success.")
    ] = None,
    db_path: Annotated[
        Path | None,
        typer.Option(
            readable=False,
            help="Host path of the database [default: from DB_PATH and bind mounts].",
        ),
    ] = None,
    backup_dir: Annotated[
        Path | None,
        typer.Option(
            readable=False, help="Host path of the backups [default: <db folder>/backups]."
        ),
    ] = None,
    rehearse: Annotated[
        bool | None,
        typer.Option(
            "--rehearse/--no-rehearse",
            help="Run the new image's migrations on a snapshot first [default: on].",
        ),
    ] = None,
    push: Annotated[
        bool | None,
        typer.Option(
            "--push/--migrate",
            help="Staging only: the new container syncs the declared schema (the entrypoint's "
            "--mode push) instead of applying migrations; the entrypoint refuses it where "
            "APP_ENV is production [default: --migrate].",
        ),
    ] = None,
    strategy: Annotated[
        str | None,
        typer.Option(
            help="How the new version replaces the running one: start-first (beside it, the "
            "proxy switched when it is healthy; needs proxy_service in deploy.yml), recreate "
            "(stop, then start; restore on failure), or auto: start-first when the new "
            "image's pending migrations are expand-only [default: auto].",
        ),
    ] = None,
    grace_seconds: Annotated[
        float | None,
        typer.Option(
            help="Start-first: how long the old container is kept after the switch, the "
            "traffic going back to it if the new one fails meanwhile [default: 10].",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
) -> None:
    """Deploy a tag (no command), or manage the stack with a command."""
    flags = {
        "compose_file": compose_file,
        "service": service,
        "project": project,
        "compose": compose,
        "tag": tag,
        "tag_variable": tag_variable,
        "health_timeout": health_timeout,
        "stable_seconds": stable_seconds,
        "probe_url": probe_url,
        "db_path": db_path,
        "backup_dir": backup_dir,
        "rehearse": rehearse,
        "push": push,
        "strategy": strategy,
        "grace_seconds": grace_seconds,
    }
    with _errors_to_exit():
        path = config or (Path("deploy.yml") if Path("deploy.yml").is_file() else None)
        if ctx.invoked_subcommand is not None:
            # Loaded by the command itself, so that `deploy CMD --help` works with a bad file.
            ctx.obj = (lambda: settings(load_file(path) if path else {}, flags), as_json)
            return
        current = settings(load_file(path) if path else {}, flags)
        if not current.tag:
            raise ConfigError("no tag to deploy", hint="pass --tag TAG or set tag: in deploy.yml")
        deployer = Deployer(current, _say)
        try:
            report = deployer.deploy(current.tag)
        except DeployError:
            _summary(deployer.report, as_json)
            raise
    _summary(report, as_json)


def _summary(report: DeployReport, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
        return
    took = report.durations.get("total", 0.0)
    if report.outcome == "rolled-back":
        _say(
            f"rolled back: {report.to_image} failed, {report.from_image or 'nothing'} runs again "
            f"(deploy {report.deploy_id}, {took:.1f}s)"
        )
        return
    _say(
        f"{report.outcome}: {report.from_image or 'nothing'} -> {report.to_image} "
        f"(deploy {report.deploy_id}, {took:.1f}s)"
    )


JsonFlag = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]


def _settings(ctx: typer.Context, as_json: bool) -> tuple[Settings, bool]:
    """The settings for a command; config errors become the usual one line and exit 2.

    `--json` works before the command (`deploy --json status`) and after it.
    """
    load, group_json = ctx.obj
    with _errors_to_exit():
        current: Settings = load()
    return current, as_json or group_json


@app.command()
def rollback(
    ctx: typer.Context,
    discard_writes: Annotated[
        bool,
        typer.Option(
            "--discard-writes",
            help="Roll back even though rows were written since that deploy's backup: they "
            "leave the database (the replaced file is kept in quarantine). Without it, the "
            "rollback counts them and refuses before stopping anything.",
        ),
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Undo the last successful deploy: previous image and its pre-migration database.

    Before anything stops, the previous image is rehearsed on the database it will find
    (--no-rehearse skips it), and the rows written since the backup are counted.
    """
    current, as_json = _settings(ctx, as_json)
    with _errors_to_exit():
        report = Deployer(current, _say).rollback_last(discard_writes=discard_writes)
    _summary(report, as_json)


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Running image, health, migration head and latest backups."""
    current, as_json = _settings(ctx, as_json)
    with _errors_to_exit():
        found = stack_status(current)
    if as_json:
        typer.echo(json.dumps(found.as_dict(), indent=2))
        return
    typer.echo(f"service:    {found.service} (project {found.project})")
    if found.running is not None:
        run = found.running
        typer.echo(
            f"running:    {run.image} ({run.image_id}), {run.status}, "
            f"health {run.health or 'n/a'}, since {run.started_at}"
        )
    else:
        typer.echo("running:    nothing")
    typer.echo(f"database:   {found.database}")
    typer.echo(f"migrations: {found.migrations}")
    typer.echo("backups:" + ("" if found.backups else "    none"))
    for b in found.backups:
        typer.echo(
            f"  {b.path.name}  {b.manifest.created_at}  head before: "
            f"{b.manifest.head_before or '-'}  deploy {b.manifest.deploy_id or '-'}"
        )


@app.command()
def history(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Every deploy, rollback and restore, from the append-only record."""
    current, as_json = _settings(ctx, as_json)
    entries = records.read(current.state)
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        typer.echo(f"no deploys recorded in {records.history_path(current.state)}")
        return
    for r in entries:
        took = (r.get("durations") or {}).get("total", 0.0)
        backup = Path(r["backup"]).name if r.get("backup") else "-"
        typer.echo(
            f"{r.get('deploy_id')}  {r.get('started_at')}  {r.get('outcome'):<20} "
            f"{r.get('from_image') or '-'} -> {r.get('to_image') or '-'}  "
            f"{took:.1f}s  backup {backup}" + (f"  {r['strategy']}" if r.get("strategy") else "")
        )


@app.command()
def backup(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Take a verified backup of the live database now (online: the app keeps serving)."""
    current, as_json = _settings(ctx, as_json)
    with _errors_to_exit():
        stack = resolve(current, current.tag)
        made = for_stack(current, stack).take_backup()
    if as_json:
        typer.echo(json.dumps({"path": str(made.path), **asdict(made.manifest)}, indent=2))
    else:
        typer.echo(f"{made.path} ({made.manifest.size} bytes, {made.manifest.check})")


@app.command()
def restore(
    ctx: typer.Context,
    backup_file: Annotated[Path | None, typer.Argument(help="Backup file to restore.")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="The newest backup.")] = False,
    deploy_id: Annotated[
        str | None, typer.Option("--deploy-id", help="The backup taken for this deploy id.")
    ] = None,
    as_json: JsonFlag = False,
) -> None:
    """Stop the app, restore a backup (live files to quarantine), start the app again."""
    current, as_json = _settings(ctx, as_json)
    with _errors_to_exit(restoring=True):
        stack = resolve(current, current.tag)
        chosen = for_stack(current, stack).find(backup_file, latest=latest, deploy_id=deploy_id)
        report = Deployer(current, _say).restore_now(chosen)
    _summary(report, as_json)


@app.command()
def logs(
    ctx: typer.Context,
    lines: Annotated[int, typer.Option("--lines", "-n", min=1, help="How many lines.")] = 100,
    as_json: JsonFlag = False,
) -> None:
    """The app container's most recent log lines (stdout and stderr)."""
    current, as_json = _settings(ctx, as_json)
    with _errors_to_exit():
        client = engine.connect()
        stack = resolve(current, current.tag)
        container = engine.service_container(client, stack.project, stack.service.name)
        if container is None:
            raise PreflightFailed(
                f"no container of service {stack.service.name} (project {stack.project})",
                hint="`deploy status` shows what runs; `deploy --tag TAG` starts it",
            )
        found = engine.last_logs(container, lines)
    if as_json:
        typer.echo(json.dumps({"container": container.name, "lines": found}, indent=2))
        return
    for line in found:
        typer.echo(line)


@app.command()
def prune(
    ctx: typer.Context,
    older_than: Annotated[
        float,
        typer.Option("--older-than", min=0, metavar="DAYS", help="Remove what is older than this."),
    ] = 14,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List what would be removed; remove nothing.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Remove rollback images and quarantine folders older than --older-than days.

    Kept whatever their age: the running image, the image `deploy rollback` would bring
    back, and a quarantine folder an unfinished restore names. Backups are pruned by the
    entrypoint itself (BACKUP_KEEP).
    """
    from . import prune as pruning

    current, as_json = _settings(ctx, as_json)
    with _errors_to_exit():
        client = engine.connect()
        stack = resolve(current, current.tag)
        keep = set()
        container = engine.service_container(client, stack.project, stack.service.name)
        if container is not None:
            keep.add(str(running(container).image))
        last = next(
            (r for r in reversed(records.read(current.state)) if r.get("outcome") == "deployed"),
            None,
        )
        if last is not None and last.get("rollback_image"):
            keep.add(str(last["rollback_image"]))
        removed = pruning.rollback_images(
            client, stack.service.repository, older_than, keep=keep, dry_run=dry_run
        ) + for_stack(current, stack).prune_quarantines(older_than, dry_run=dry_run)
    if as_json:
        typer.echo(json.dumps([asdict(r) for r in removed], indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for r in removed:
        size = f", {r.size / 1e6:.1f} MB" if r.what == "quarantine" else ""
        typer.echo(f"{verb} {r.what} {r.name} ({r.age_days:.0f} days old{size})")
    typer.echo(f"{len(removed)} item(s) {verb}, older than {older_than:g} days")


@app.command(hidden=True)
def files(
    op: Annotated[str, typer.Argument(help="The operation (datafolder.OPS).")],
    args_json: Annotated[str, typer.Argument(help="Its arguments, as a JSON object.")],
) -> None:
    """Internal: one data-folder operation, run by deploy in a container of the litedeploy
    image for an operator who is not root. JSON in, JSON out (datafolder.py)."""
    from .datafolder import answer

    out, code = answer(op, args_json)
    typer.echo(out)
    raise typer.Exit(code)


def main() -> None:
    """Console-script entry point."""
    logging.basicConfig(level=logging.INFO, format="deploy: %(message)s", stream=sys.stderr)
    try:
        app()
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("LITEDEPLOY_DEBUG"):
            raise
        _say(
            f"internal error: {type(exc).__name__}: {exc} (set LITEDEPLOY_DEBUG=1 for a traceback)"
        )
        sys.exit(70)
