"""The deploy story: preflight, lock, keep the old image, rehearse, cut over, wait, roll back."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import docker
import yaml

from entrypoint.base import faults
from entrypoint.base.contract import DEPLOY_ID_ENV, MODE_ENV, MODE_PUSH
from entrypoint.base.errors import EntrypointError
from entrypoint.safetynet.backup import Backup

from . import engine, pin, records, rehearsal
from .compose import split_image
from .config import Settings
from .datafolder import DataFolder, for_stack
from .errors import (
    Aborted,
    DeployError,
    PreflightFailed,
    RollbackFailed,
    RolledBack,
    StepFailed,
)
from .health import Unhealthy, wait_until_healthy
from .lock import deploy_lock
from .rehearsal import rehearse
from .runner import run
from .stack import Stack, resolve, room_for_deploy
from .writes import describe

Progress = Callable[[str], None]
KEEP_ROLLBACK_TAGS = 3  # images of the last deploys stay on the host for `deploy rollback`


@dataclass
class Report:
    """What happened, for the summary, `--json` and the history file."""

    deploy_id: str
    started_at: str
    outcome: str = "running"
    from_image: str | None = None
    to_image: str | None = None
    rollback_image: str | None = None
    backup: str | None = None
    quarantine: str | None = None
    error: str | None = None
    durations: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def engine_stopped(exc: Exception) -> StepFailed:
    """The engine stopped answering in the middle of a step: say so, and what to do next."""
    first = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
    return StepFailed(
        f"the Docker engine stopped answering during the deploy ({first})",
        hint="when it answers again, `deploy status` shows what runs; deploy again (the next "
        "deploy takes over) or `deploy rollback`",
    )


def new_deploy_id() -> str:
    """Sortable and unique: UTC time plus a little randomness."""
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class Deployer:
    """Runs one deploy (or rollback) of one stack, reporting progress a line per step."""

    def __init__(self, settings: Settings, progress: Progress) -> None:
        self.settings = settings
        self.progress = progress
        self.report = Report(new_deploy_id(), datetime.now(UTC).isoformat(timespec="seconds"))

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time a step and print one line for it (and give the fault suite a point each side)."""
        point = "deploy." + "-".join(name.split()[:2]).lower()
        faults.point(f"{point}.start")
        started = time.monotonic()
        try:
            yield
        except BaseException:
            self.report.durations[name] = round(time.monotonic() - started, 2)
            self.progress(f"✗ {name} ({self.report.durations[name]:.1f}s)")
            raise
        self.report.durations[name] = round(time.monotonic() - started, 2)
        self.progress(f"✓ {name} ({self.report.durations[name]:.1f}s)")
        faults.point(f"{point}.done")

    # -- the deploy -------------------------------------------------------------------------

    def deploy(self, tag: str) -> Report:
        """Deploy `tag`; raises a DeployError subclass whose exit code tells CI what happened."""
        try:
            with self.step("preflight"):
                client, stack, new_image = self._preflight(tag)
            self.report.to_image = stack.service.image
            target = stack.service.image
            with deploy_lock(self.settings.state, self.report.deploy_id, target) as stale:
                if stale is not None:
                    self.progress(
                        f"! the previous deploy {stale.deploy_id} (pid {stale.pid}) died "
                        f"{stale.age_seconds:.0f}s ago while holding the lock; taking over"
                    )
                try:
                    self._deploy_locked(client, stack, tag, new_image)
                except engine.UNREACHABLE as exc:
                    raise engine_stopped(exc) from exc
        except DeployError as exc:
            if self.report.outcome == "running":
                self.report.outcome = type(exc).__name__
            self.report.error = self.report.error or exc.message
            self._record()
            raise
        self._record()
        return self.report

    def _preflight(self, tag: str) -> tuple[docker.DockerClient, Stack, str]:
        client = engine.connect()
        stack = resolve(self.settings, tag)
        found = engine.image(client, stack.service.image)
        if found is None:
            raise PreflightFailed(
                f"image {stack.service.image} is not on this Docker host",
                hint="build or pull it first (docker image ls lists what is here)",
            )
        room_for_deploy(stack, self.settings.state)
        return client, stack, str(found.id)

    def _deploy_locked(
        self, client: docker.DockerClient, stack: Stack, tag: str, new_image: str
    ) -> None:
        previous = self._keep_previous(client, stack)
        if self.settings.rehearse:
            with self.step("rehearsal on a snapshot"):
                self._rehearse(client, stack)
        try:
            with self.step(f"cutover to {stack.service.image}"):
                self._up(stack, tag, self.report.deploy_id)
            with self.step("health"):
                self._await_health(client, stack)
        except (Unhealthy, DeployError) as exc:
            message = exc.message if isinstance(exc, DeployError) else str(exc)
            self.report.error = message
            self._roll_back(client, stack, previous, reason=message)
            return
        self.report.backup = self._backup_of_deploy(stack)
        self.report.outcome = "deployed"
        self._pin(tag)
        removed = engine.prune_rollback_tags(client, stack.service.repository, KEEP_ROLLBACK_TAGS)
        if removed:
            self.progress(
                f"  removed {len(removed)} old rollback tag(s), keeping {KEEP_ROLLBACK_TAGS}"
            )

    def _keep_previous(self, client: docker.DockerClient, stack: Stack) -> str | None:
        """Tag the running container's image so it can come back; returns its tag."""
        with self.step("record the running version"):
            container = engine.service_container(client, stack.project, stack.service.name)
            if container is None:
                self.progress("  nothing runs yet: first deploy")
                return None
            image_id = str(container.attrs.get("Image"))
            was = str(container.attrs.get("Config", {}).get("Image", image_id))
            self.report.from_image = was
            keep = f"rollback-{self.report.deploy_id}"
            self.report.rollback_image = engine.keep_image(
                client, image_id, stack.service.repository, keep
            )
            self.progress(f"  running {was} ({image_id[7:19]}), kept as {keep}")
            # Bring it back under its own tag while that still names the same image.
            repository, tag = split_image(was)
            same = engine.image(client, was)
            if repository == stack.service.repository and same is not None and same.id == image_id:
                return tag
            return keep

    def _rehearse(self, client: docker.DockerClient, stack: Stack) -> None:
        image = stack.service.image
        command = engine.entrypoint_of(client, image)
        ours = rehearsal.runs_litedeploy(command)
        if not ours:
            self.progress(
                f"! {image} starts with {command or 'no ENTRYPOINT'}, which does not look like "
                "litedeploy's entrypoint; rehearsing anyway, for at most the health timeout"
            )
        workdir = self.settings.state / f"rehearsal-{self.report.deploy_id}"
        try:
            result = rehearse(
                stack,
                image,
                workdir,
                name=f"litedeploy-rehearsal-{self.report.deploy_id}",
                timeout=max(self.settings.health_timeout, 600 if ours else 0),
                push=self.settings.push,
                take_snapshot=self.data(stack).snapshot,
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if result.ok:
            return
        self.report.outcome = "aborted"
        if not rehearsal.spoke(result):
            raise Aborted(
                f"the rehearsal could not run: {image} does not run litedeploy's entrypoint "
                f"(its ENTRYPOINT is {command or 'not set'}, and it said nothing as the "
                f"entrypoint does; exit {result.returncode}); production was not touched:\n"
                f"{result.tail(6)}",
                hint="build the image with `COPY --from=litedeploy:<version> /opt/litedeploy "
                '/opt/litedeploy` and `ENTRYPOINT ["/opt/litedeploy/entrypoint", "run", "--"]` '
                '(README, "Using the entrypoint in your image"), or deploy it with '
                "--no-rehearse",
            )
        raise Aborted(
            f"the new image's migrations failed on a snapshot of the database "
            f"(exit {result.returncode}); production was not touched:\n{result.tail(12)}",
            hint="fix the migration and build a new image; `deploy --no-rehearse` skips this",
        )

    def _up(self, stack: Stack, tag: str, deploy_id: str) -> None:
        """`compose up -d --no-deps --force-recreate` with the tag and DEPLOY_ID set."""
        override = self._override(stack, deploy_id)
        files = (*stack.compose.files, override)
        compose = type(stack.compose)(stack.compose.flavour, files, stack.compose.project)
        result = run(
            compose.up(stack.service.name),
            env={self.settings.tag_variable: tag},
            cwd=str(self.settings.compose_file.resolve().parent),
            timeout=max(self.settings.health_timeout, 300),
        )
        if not result.ok:
            raise StepFailed(f"compose up failed: {result.tail(5)}")

    def _override(self, stack: Stack, deploy_id: str) -> Path:
        """A compose override that passes DEPLOY_ID (and push mode), whatever the compose file
        says."""
        path = self.settings.state / "deploy-override.yml"
        environment = {DEPLOY_ID_ENV: deploy_id}
        if self.settings.push:
            environment[MODE_ENV] = MODE_PUSH
        model = {"services": {stack.service.name: {"environment": environment}}}
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        path.write_text(yaml.safe_dump(model), encoding="utf-8")
        return path

    def _backup_of_deploy(self, stack: Stack) -> str | None:
        found = self._find_backup(stack, self.report.deploy_id)
        return str(found.path) if found else None

    def data(self, stack: Stack) -> DataFolder:
        """The database and backups, touched here or, for a non-root operator, by a container
        of the litedeploy image (datafolder.py)."""
        return for_stack(self.settings, stack)

    def _find_backup(self, stack: Stack, deploy_id: str) -> Backup | None:
        matching = [b for b in self.data(stack).backups() if b.manifest.deploy_id == deploy_id]
        return matching[-1] if matching else None

    # -- rollback ---------------------------------------------------------------------------

    def _roll_back(
        self, client: docker.DockerClient, stack: Stack, previous: str | None, *, reason: str
    ) -> None:
        self.progress(f"! {reason}; rolling back")
        self._show_failure(client, stack)
        backup = self._find_backup(stack, self.report.deploy_id)
        try:
            with self.step("stop the new version"):
                self._stop(stack)
            if backup is not None:
                self.report.backup = str(backup.path)
                with contextlib.suppress(DeployError):
                    if written := self.data(stack).writes_since(backup.path):
                        self.progress(
                            f"  {describe(written)} differ from {backup.path.name} (the "
                            "migrations' changes and what the new version wrote): they go to "
                            "quarantine with the replaced database"
                        )
                with self.step("restore the pre-migration database"):
                    self._restore(stack, backup)
            if previous is None:
                self.progress("  nothing ran before this deploy: the service stays stopped")
            else:
                with self.step(f"bring back {self.report.from_image}"):
                    self._up(stack, previous, f"{self.report.deploy_id}-rollback")
                with self.step("health of the previous version"):
                    self._await_health(client, stack)
                self._pin(previous)
        except (Unhealthy, DeployError, EntrypointError, OSError) as exc:
            self.report.outcome = "rollback-failed"
            text = exc.message if isinstance(exc, DeployError | EntrypointError) else str(exc)
            self._show_failure(client, stack)  # the previous version's own words this time
            raise RollbackFailed(
                f"deploy failed ({reason}) and the rollback failed too: {text}",
                hint=f"{self._manual_restore(stack, backup)}; then start the previous image "
                f"({self.report.from_image or 'none'}) with `deploy --tag TAG`",
            ) from exc
        self.report.outcome = "rolled-back"
        raise RolledBack(
            f"deploy {self.report.deploy_id} failed ({reason}); rolled back to "
            f"{self.report.from_image or 'nothing (first deploy)'}"
            + (f", database restored from {backup.path.name}" if backup else ""),
            hint="the failing container's logs are above; the migrated database is in "
            f"{self.report.quarantine}"
            if self.report.quarantine
            else "the failing container's logs are above",
        )

    # -- operator commands --------------------------------------------------------------------

    def rollback_last(self, *, discard_writes: bool = False) -> Report:
        """Undo the last successful deploy: its previous image and its pre-migration backup.

        Nothing is stopped until the previous image has been rehearsed on the database it
        will find, and, when the backup is to be restored, until the rows written since it
        are counted: dropping them needs `discard_writes`.
        """
        last = next(
            (
                r
                for r in reversed(records.read(self.settings.state))
                if r.get("outcome") == "deployed"
            ),
            None,
        )
        if last is None or not last.get("rollback_image"):
            raise PreflightFailed(
                "there is no deploy to roll back (no successful deploy with a previous image in "
                f"{records.history_path(self.settings.state)})",
                hint="`deploy history` lists what was deployed",
            )
        keep = split_image(str(last["rollback_image"]))[1]
        self.report.from_image = last.get("to_image")
        self.report.to_image = last.get("from_image")
        client: docker.DockerClient | None = None
        stack: Stack | None = None
        backup: Backup | None = None
        stopped = False
        try:
            with self.step("preflight"):
                client = engine.connect()
                stack = resolve(self.settings, keep)
                if engine.image(client, stack.service.image) is None:
                    raise PreflightFailed(f"image {stack.service.image} is gone from this host")
            with deploy_lock(self.settings.state, self.report.deploy_id, stack.service.image):
                backup = self._find_backup(stack, str(last["deploy_id"]))
                self._check_writes(stack, backup, str(last["deploy_id"]), discard_writes)
                if self.settings.rehearse:
                    with self.step(f"rehearsal of {stack.service.image} on the database it finds"):
                        self._rehearse_rollback(stack, backup)
                with self.step("stop the current version"):
                    stopped = True
                    self._stop(stack)
                if backup is not None:
                    self.report.backup = str(backup.path)
                    with self.step("restore the database from before that deploy"):
                        self._restore(stack, backup)
                with self.step(f"bring back {last.get('from_image')}"):
                    self._up(stack, keep, self.report.deploy_id)
                with self.step("health"):
                    self._await_health(client, stack)
                self._pin(keep)
        except (Unhealthy, EntrypointError, DeployError) as exc:
            # Refused before anything stopped (the app runs as it did), or failed half-way.
            self.report.outcome = "rollback-failed" if stopped else "rollback-refused"
            self.report.error = (
                exc.message if isinstance(exc, DeployError | EntrypointError) else str(exc)
            )
            self._record()
            if isinstance(exc, DeployError) and not stopped:
                raise
            if client is not None and stack is not None:
                self._show_failure(client, stack)
            raise RollbackFailed(
                f"rollback failed: {self.report.error}",
                hint=(
                    f"{self._manual_restore(stack, backup)}; then `deploy --tag "
                    f"{split_image(str(last.get('to_image') or ''))[1] or 'TAG'}` brings back "
                    "the version that ran"
                    if stack is not None
                    else None
                ),
            ) from exc
        self.report.outcome = "rolled-back-by-hand"
        self._record()
        return self.report

    def restore_now(self, chosen: Path) -> Report:
        """Stop the service, restore a backup into place, start the same image again."""
        try:
            with self.step("preflight"):
                client = engine.connect()
                stack = resolve(self.settings, None)
                container = engine.service_container(client, stack.project, stack.service.name)
                running = str(container.attrs.get("Config", {}).get("Image")) if container else None
            tag = split_image(running)[1] if running else None
            self.report.from_image = running
            self.report.to_image = running
            with deploy_lock(self.settings.state, self.report.deploy_id, f"restore {chosen.name}"):
                with self.step("stop the app"):
                    self._stop(stack)
                with self.step(f"restore {chosen.name}"):
                    done = self.data(stack).restore(chosen)
                    self.report.backup = str(chosen)
                    self.report.quarantine = done["quarantine"]
                    for line in done["summary"]:
                        self.progress(f"  {line}")
                if tag is not None:
                    with self.step(f"start {running} again"):
                        self._up(stack, tag, self.report.deploy_id)
                    with self.step("health"):
                        self._await_health(client, stack)
                    self._pin(tag)
        except (Unhealthy, EntrypointError) as exc:
            self.report.outcome = "restore-failed"
            self.report.error = str(exc)
            self._record()
            raise RollbackFailed(f"restore failed: {exc}") from exc
        self.report.outcome = "restored"
        self._record()
        return self.report

    def _check_writes(
        self, stack: Stack, backup: Backup | None, deploy_id: str, discard: bool
    ) -> None:
        """Refuse (before anything stops) to drop rows written since the backup, unless told."""
        if backup is None:
            self.progress("  no backup to restore: the database stays as it is")
            return
        written = self.data(stack).writes_since(backup.path)
        if not written:
            self.progress(f"  nothing written since {backup.path.name}: restoring it drops nothing")
            return
        if not discard:
            raise PreflightFailed(
                f"rolling back restores {backup.path.name}, taken before deploy {deploy_id}; "
                f"{describe(written)} written since would be dropped from the database (kept "
                "only in quarantine); nothing was stopped",
                hint="`deploy rollback --discard-writes` rolls back anyway; or keep this version "
                "and fix forward with a new release",
            )
        self.progress(
            f"  --discard-writes: {describe(written)} written since {backup.path.name} leave "
            "the database (the replaced file is kept in quarantine)"
        )

    def _rehearse_rollback(self, stack: Stack, backup: Backup | None) -> None:
        """The previous image's entrypoint on a copy of the database it will find."""
        workdir = self.settings.state / f"rehearsal-{self.report.deploy_id}"
        try:
            result = rehearse(
                stack,
                stack.service.image,
                workdir,
                name=f"litedeploy-rehearsal-{self.report.deploy_id}",
                timeout=max(self.settings.health_timeout, 600),
                source=backup.path if backup is not None else None,
                take_snapshot=self.data(stack).snapshot,
            )
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if result.ok:
            return
        found = "the backup it restores" if backup is not None else "the database as it is now"
        raise PreflightFailed(
            f"{stack.service.image} would not start on {found} (exit {result.returncode}); "
            f"nothing was stopped, the current version keeps running:\n{result.tail(8)}",
            hint="when the database is ahead of that image (a migration ran since), restore a "
            "backup from before it first (`deploy restore NAME`; `deploy status` lists the "
            "newest), or keep this version and fix forward",
        )

    def _manual_restore(self, stack: Stack, backup: Backup | None) -> str:
        """The exact command that puts the pre-migration database back, for exit 6."""
        folder = stack.backup_dir
        if backup is not None:
            return (
                f"restore the backup taken before the migrations: `deploy restore "
                f"{backup.path.name}` (with the app stopped, `entrypoint restore --db "
                f"{stack.db_path} {backup.path}` does the same)"
            )
        try:
            newest = self.data(stack).backups()[-1:]
        except DeployError:
            newest = []
        if newest:
            return (
                f"this deploy took no backup (nothing was pending); the newest is "
                f"{newest[0].path.name}: `deploy restore {newest[0].path.name}`"
            )
        return f"there is no backup in {folder} to restore; `deploy status` shows what runs"

    def _pin(self, tag: str) -> None:
        """Write the tag that now runs into the stack's .env (pin.py says why)."""
        path = pin.dotenv(self.settings.compose_file)
        try:
            said = pin.pin(path, self.settings.tag_variable, tag)
        except OSError as exc:
            said = (
                f"could not write {path} ({exc.strerror}): plain `docker compose up -d` "
                f"starts the compose file's default tag unless {self.settings.tag_variable}"
                f"={tag} is set"
            )
            self.progress(f"! {said}")
            return
        self.progress(f"  {said}")

    def _stop(self, stack: Stack) -> None:
        stopped = run(stack.compose.stop(stack.service.name), timeout=120)
        if not stopped.ok:
            raise StepFailed(f"compose stop failed: {stopped.tail(3)}")

    def _await_health(self, client: docker.DockerClient, stack: Stack) -> None:
        wait_until_healthy(
            client,
            stack.project,
            stack.service.name,
            timeout=self.settings.health_timeout,
            stable_seconds=self.settings.stable_seconds,
            probe_url=self.settings.probe_url,
        )

    def _show_failure(self, client: docker.DockerClient, stack: Stack) -> None:
        try:
            container = engine.service_container(client, stack.project, stack.service.name)
        except engine.UNREACHABLE:
            self.progress("  (no logs: the Docker engine does not answer)")
            return
        if container is None:
            return
        with contextlib.suppress(Exception):
            container.reload()
        for line in engine.last_logs(container):
            self.progress(f"  | {line}")
        for line in engine.health_log(container):
            self.progress(f"  health: {line}")

    def _restore(self, stack: Stack, backup: Backup) -> None:
        done = self.data(stack).restore(backup.path, unless_sha256=backup.manifest.sha256)
        if done["already"]:
            self.progress("  the database already equals the backup (the entrypoint restored it)")
            return
        self.report.quarantine = done["quarantine"]
        for line in done["summary"]:
            self.progress(f"  {line}")

    def _record(self) -> None:
        self.report.durations["total"] = round(sum(self.report.durations.values()), 2)
        with contextlib.suppress(OSError):
            records.append(self.settings.state, self.report.as_dict())
