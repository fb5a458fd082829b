"""`deploy`: the host-side command. A thin typer layer over deployer.Deployer."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any

import typer

from entrypoint.base import loglines
from entrypoint.base.errors import EntrypointError

from . import VERSION, engine, records
from . import fleet as fleets
from .config import Settings, for_host, load_file, settings
from .datafolder import for_stack
from .deployer import Deployer, DeployReport, engine_stopped
from .endpoint import activate
from .errors import ConfigError, DeployError, PreflightFailed, exit_code
from .fleet import Fleet, FleetReport, child_launcher, run_fleet
from .hosts import HostSpec, select
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
With several hosts (a fleet), the code of the host that halted the rollout (its
preflight's or its deploy's), 6 when a rollback failed anywhere, 0 when all deployed.
"""

app = typer.Typer(
    name="deploy",
    help="Deploy a SQLite-backed Compose service: rehearse the new image's migrations on a "
    "snapshot, then cut over: start-first beside the running version behind the proxy when the "
    "migrations are expand-only (the proxy switched once the new one is healthy; a failing "
    "release is withdrawn, nothing restored), else `compose up --force-recreate`, wait for "
    "health, and roll back image and database when start-up fails.\n\nWith no command, "
    "deploys --tag.\n\n" + EXIT_CODES,
    add_completion=True,  # deploy --install-completion (bash, zsh, fish, PowerShell)
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
    """One line on stderr: `deploy: ...`, or a JSON object with LITEDEPLOY_LOG_FORMAT=json."""
    if loglines.asked(os.environ)[0] == "json":
        at = time.time()
        typer.echo(
            loglines.json_line(line, level=_level(line), created=at, source="deploy"), err=True
        )
    else:
        typer.echo(f"deploy: {line}", err=True)


def _level(line: str) -> str:
    """A line's level from its first word (a fleet's lines start with `[host] `)."""
    word = line.split("] ", 1)[1] if line.startswith("[") and "] " in line else line
    if word.startswith(("error:", "hint:", "internal error:")):
        return "error"
    return "warning" if word.startswith("warning:") else "info"


def _version(value: bool) -> None:
    if value:
        print(f"deploy (litedeploy) {VERSION}")
        raise typer.Exit()


@app.callback()
def main_command(
    ctx: typer.Context,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            envvar="LITEDEPLOY_CONFIG",
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
    host: Annotated[
        list[str] | None,
        typer.Option(
            "--host",
            help="Deploy to this host of deploy.yml's hosts: (by name), or to this Docker "
            "endpoint (ssh://user@host, tcp://host:2376, unix:///path) or context; repeat for "
            "several. Default: every host in deploy.yml, else the local engine.",
        ),
    ] = None,
    canary: Annotated[
        int | None,
        typer.Option(min=1, help="Fleet: how many hosts go first, alone [default: 1]."),
    ] = None,
    parallel: Annotated[
        int | None,
        typer.Option(
            min=1, help="Fleet: after the canary, how many hosts deploy at once [default: 1]."
        ),
    ] = None,
    on_failure: Annotated[
        str | None,
        typer.Option(
            help="Fleet: when a host fails (it rolls itself back, and no host after it "
            "starts), the hosts already done stay on the new release (halt) or are rolled "
            "back too (rollback-all) [default: halt].",
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
        "canary": canary,
        "parallel": parallel,
        "on_failure": on_failure,
    }
    with _errors_to_exit():
        if (refused := loglines.asked(os.environ)[1]) is not None:
            raise ConfigError(
                refused, hint="unset it, or set it to json for one JSON object a line"
            )
        path = config or (Path("deploy.yml") if Path("deploy.yml").is_file() else None)
        group = Group(
            load=lambda: settings(load_file(path) if path else {}, flags),
            as_json=as_json,
            hosts=list(host or []),
            child_args=child_args(path, flags),
        )
        if ctx.invoked_subcommand is not None:
            # Loaded by the command itself, so that `deploy CMD --help` works with a bad file.
            ctx.obj = group
            return
        fleet, selected = group.fleet()
        if not fleet.tag:
            raise ConfigError("no tag to deploy", hint="pass --tag TAG or set tag: in deploy.yml")
        if len(selected) > 1:
            _fleet_deploy(group, fleet, selected)
            return
        current = group.one(fleet, selected)
        assert current.tag is not None
        deployer = Deployer(current, _say)
        try:
            report = deployer.deploy(current.tag)
        except DeployError:
            _summary(deployer.report, as_json)
            raise
    _summary(report, as_json)


@dataclass(frozen=True)
class Group:
    """What the options before the command say: the settings (loaded when asked for), --json,
    the --host selection and the options a host's own `deploy` process is given."""

    load: Callable[[], Settings]
    as_json: bool
    hosts: list[str]
    child_args: list[str]

    def fleet(self) -> tuple[Settings, tuple[HostSpec, ...]]:
        """The file's and flags' settings, and the hosts they select (none: this engine)."""
        current = self.load()
        return current, select(current.hosts, self.hosts)

    def one(self, current: Settings, selected: tuple[HostSpec, ...]) -> Settings:
        """The settings of a command that acts on one host, this process pointed at it."""
        if not selected:
            return current
        if len(selected) > 1:
            raise ConfigError(
                f"this command acts on one host; {len(selected)} are selected "
                f"({', '.join(h.name for h in selected)})",
                hint="pass --host NAME",
            )
        activate(selected[0].docker_host)
        return for_host(current, selected[0])


def child_args(config: Path | None, flags: Mapping[str, object]) -> list[str]:
    """The options a host's own `deploy` process gets: the same file and flags, so that it
    resolves the same settings (the fleet's own options left out)."""
    argv = ["--config", str(config.resolve())] if config else []
    switches = {"rehearse": ("--rehearse", "--no-rehearse"), "push": ("--push", "--migrate")}
    for key, value in flags.items():
        if value is None or key in ("canary", "parallel", "on_failure"):
            continue
        if key in switches:
            argv.append(switches[key][0 if value else 1])
        else:
            argv += ["--" + key.replace("_", "-"), str(value)]
    return argv


def _rollout(group: Group, fleet: Settings, selected: tuple[HostSpec, ...]) -> Fleet:
    """A rollout of the fleet's tag to the selected hosts, each by its own deploy process."""
    assert fleet.tag is not None
    return Fleet(
        selected,
        fleet.tag,
        canary=fleet.canary,
        parallel=fleet.parallel,
        on_failure=fleet.on_failure,
        launch=child_launcher(group.child_args),
        say=_say,
    )


def _fleet_deploy(group: Group, fleet: Settings, selected: tuple[HostSpec, ...]) -> None:
    """Deploy to several hosts: canary, batches, one line per host, a summary, the exit code
    of the host that stopped the rollout."""
    report = run_fleet(_rollout(group, fleet, selected))
    _fleet_summary(report, group.as_json)
    if report.exit_code:
        raise typer.Exit(report.exit_code)


def _fleet_summary(report: FleetReport, as_json: bool) -> None:
    """One line per host and the summary on stderr (with --json too: the report goes to
    stdout)."""
    if as_json:
        typer.echo(json.dumps(report.as_dict(), indent=2))
    for run in report.hosts:
        _say(f"  {fleets.line(run)}")
    halted = f" (halted at {report.halted_at})" if report.halted_at else ""
    _say(f"fleet: {report.summary()}{halted}, {report.seconds:.1f}s")


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
    """The settings for a command that acts on one stack (of one host, pointed at it); config
    errors become the usual one line and exit 2.

    `--json` works before the command (`deploy --json status`) and after it.
    """
    group: Group = ctx.obj
    with _errors_to_exit():
        current = group.one(*group.fleet())
    return current, as_json or group.as_json


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
def preflight(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Check, changing nothing, that a deploy of --tag could start: Docker answers, the images
    are there (a fleet's host pulls them if it can), room on the disk, nobody holds the lock.
    With several hosts, every one of them at once."""
    group: Group = ctx.obj
    with _errors_to_exit():
        fleet, selected = group.fleet()
        if not fleet.tag:
            raise ConfigError("no tag to check", hint="pass --tag TAG or set tag: in deploy.yml")
        if len(selected) > 1:
            report = run_fleet(_rollout(group, fleet, selected), preflight_only=True)
            if as_json or group.as_json:
                typer.echo(json.dumps(report.preflight, indent=2))
            if report.exit_code:
                raise typer.Exit(report.exit_code)
            return
        current = group.one(fleet, selected)
        assert current.tag is not None
        found = Deployer(current, _say).check(current.tag)
    if as_json or group.as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    _say(
        f"ready: {found['running'] or 'nothing'} -> {found['to_image']} on {found['host']} "
        f"({found['seconds']:.1f}s)"
    )


def _each_host(ctx: typer.Context, command: str, as_json: bool) -> bool:
    """Run `command` on every selected host, when there are several: each host's own
    process, its output under a heading; True when it did (and exits with the worst code)."""
    group: Group = ctx.obj
    with _errors_to_exit():
        _, selected = group.fleet()
    if len(selected) < 2:
        return False
    launch = child_launcher(group.child_args)
    worst = 0
    found: dict[str, object] = {}
    for spec in selected:
        lines: list[str] = []
        child = launch(spec, [command, "--json"], lines.append)
        worst = max(worst, child.returncode)
        found[spec.name] = child.report or {"error": child.error}
        if not as_json:
            typer.echo(f"== {spec.name} ({spec.docker_host})")
            typer.echo(_host_text(command, child.report, child.error))
        if child.returncode != 0:
            for text in lines[-8:]:
                _say(f"[{spec.name}] {text}")
    if as_json:
        typer.echo(json.dumps(found, indent=2))
    if worst:
        raise typer.Exit(worst)
    return True


def _host_text(command: str, report: dict[str, object] | None, error: str | None) -> str:
    if report is None:
        return f"error: {error or 'no answer'}"
    if command == "status":
        running = report.get("running")
        what = (
            f"{running.get('image')} ({running.get('status')}, health "
            f"{running.get('health') or 'n/a'})"
            if isinstance(running, dict)
            else "nothing"
        )
        return f"running:    {what}\nmigrations: {report.get('migrations')}"
    return json.dumps(report, indent=2)


@app.command()
def status(ctx: typer.Context, as_json: JsonFlag = False) -> None:
    """Running image, health, migration head and latest backups (of every host of the
    fleet, one after the other; --host NAME for one)."""
    if _each_host(ctx, "status", as_json or ctx.obj.as_json):
        return
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
    """Every deploy, rollback and restore, from the append-only record (each host's, for a
    fleet: kept on this machine, in the state folder's hosts/NAME/)."""
    group: Group = ctx.obj
    with _errors_to_exit():
        fleet, selected = group.fleet()
    if len(selected) > 1:
        _fleet_history(fleet, selected, as_json or group.as_json)
        return
    current, as_json = _settings(ctx, as_json)
    entries = records.read(current.state)
    if as_json:
        typer.echo(json.dumps(entries, indent=2))
        return
    if not entries:
        typer.echo(f"no deploys recorded in {records.history_path(current.state)}")
        return
    for r in entries:
        _history_line(r)


def _fleet_history(fleet: Settings, selected: tuple[HostSpec, ...], as_json: bool) -> None:
    found = {h.name: records.read(for_host(fleet, h).state) for h in selected}
    if as_json:
        typer.echo(json.dumps(found, indent=2))
        return
    for name, entries in found.items():
        typer.echo(f"== {name}")
        for r in entries:
            _history_line(r)
        if not entries:
            typer.echo("no deploys recorded")


def _history_line(r: dict[str, Any]) -> None:
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
    entrypoint itself (LITEDEPLOY_BACKUP_KEEP).
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
            client,
            stack.service.repository,
            older_than,
            owned=records.rollback_tags(current.state),
            keep=keep,
            dry_run=dry_run,
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
    handler = logging.StreamHandler(sys.stderr)
    if loglines.asked(os.environ)[0] == "json":
        handler.setFormatter(loglines.JsonLines("deploy"))
    else:
        handler.setFormatter(logging.Formatter("deploy: %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    try:
        app()
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("LITEDEPLOY_DEBUG"):  # the traceback, and still the documented code
            traceback.print_exc()
        _say(
            f"internal error: {type(exc).__name__}: {exc} (set LITEDEPLOY_DEBUG=1 for a traceback)"
        )
        sys.exit(70)
