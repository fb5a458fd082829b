"""The deploy story: preflight, lock, keep the old image, rehearse, cut over, wait, roll back."""

from __future__ import annotations

import contextlib
import secrets
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, NoReturn

import yaml

from entrypoint.base import faults
from entrypoint.base.contract import DEPLOY_ID_ENV, MODE_ENV, MODE_PUSH
from entrypoint.base.errors import EntrypointError
from entrypoint.safetynet.backup import Backup

from . import engine, pin, records, rehearsal, strategy
from .compose import split_image
from .config import Settings
from .datafolder import DataFolder, for_stack
from .errors import (
    Aborted,
    ConfigError,
    DeployError,
    LockHeld,
    PreflightFailed,
    RollbackFailed,
    RolledBack,
    StepFailed,
)
from .health import Unhealthy
from .host import Box, DockerHost, Host
from .lock import Stale, deploy_lock, lock_error
from .proxy import Proxy, reload_failed
from .rehearsal import rehearsal_env, rehearse
from .runner import Result
from .stack import Stack, check_room, room_for_deploy
from .strategy import Choice, Strategy, Undecided, Verdict
from .writes import describe

Progress = Callable[[str], None]
KEEP_ROLLBACK_TAGS = 3  # images of the last deploys stay on the host for `deploy rollback`


class Outcome(StrEnum):
    """How a deploy, rollback or restore ended: the `outcome` of its line in the history."""

    RUNNING = "running"  # only while it runs; a line never says it
    DEPLOYED = "deployed"
    CONFIG_ERROR = "config-error"  # nothing touched
    PREFLIGHT_FAILED = "preflight-failed"  # nothing touched
    LOCKED = "locked"  # another deploy held the lock; nothing touched
    ABORTED = "aborted"  # the rehearsal failed; production untouched
    FAILED = "failed"  # a step failed outside the rollback's reach (the message says which)
    INTERRUPTED = "interrupted"  # stopped by a signal or a bug; the next deploy takes over
    ROLLED_BACK = "rolled-back"
    ROLLBACK_FAILED = "rollback-failed"
    ROLLBACK_REFUSED = "rollback-refused"  # `deploy rollback` refused before anything stopped
    ROLLED_BACK_BY_HAND = "rolled-back-by-hand"  # `deploy rollback` succeeded
    RESTORED = "restored"  # `deploy restore` succeeded
    RESTORE_FAILED = "restore-failed"


def outcome_of(exc: BaseException) -> Outcome:
    """The outcome of a run that ended with `exc` before it chose one itself."""
    for kind, outcome in (
        (ConfigError, Outcome.CONFIG_ERROR),
        (PreflightFailed, Outcome.PREFLIGHT_FAILED),
        (LockHeld, Outcome.LOCKED),
        (Aborted, Outcome.ABORTED),
        (RolledBack, Outcome.ROLLED_BACK),
        (RollbackFailed, Outcome.ROLLBACK_FAILED),
        (DeployError, Outcome.FAILED),
        (Exception, Outcome.FAILED),
    ):
        if isinstance(exc, kind):
            return outcome
    return Outcome.INTERRUPTED


@dataclass
class DeployReport:
    """What happened, for the summary, `--json` and the history file."""

    deploy_id: str
    started_at: str
    outcome: Outcome = Outcome.RUNNING
    from_image: str | None = None
    to_image: str | None = None
    rollback_image: str | None = None
    backup: str | None = None
    quarantine: str | None = None
    strategy: str | None = None  # start-first or recreate (strategy.py), once chosen
    error: str | None = None
    durations: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "outcome": str(self.outcome)}


@dataclass(frozen=True)
class BringBack:
    """Stop what runs, put a database back, start a known version: the three restore paths
    (a failed deploy's rollback, `deploy rollback`, `deploy restore`). Step names are the
    lines the operator reads (and the fault suite's points)."""

    stop: str
    restore: str
    start: str
    health: str
    backup: Backup | Path | None  # None: the database stays as it is
    tag: str | None  # None: nothing ran before; the service stays stopped
    tell_writes: bool = False  # say what differs from the backup before replacing it
    idle: str = "nothing ran before: the service stays stopped"  # said when `tag` is None

    @property
    def path(self) -> Path | None:
        return self.backup.path if isinstance(self.backup, Backup) else self.backup

    @property
    def sha256(self) -> str | None:
        """A backup's own checksum: a database that already equals it is kept as it is."""
        return self.backup.manifest.sha256 if isinstance(self.backup, Backup) else None


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
    """Runs one deploy (or rollback, or restore) of one stack, reporting progress a line per
    step, on `host` (the real Docker host unless a test passes a fake)."""

    def __init__(self, settings: Settings, progress: Progress, host: Host | None = None) -> None:
        self.settings = settings
        self.progress = progress
        self.host: Host = host or DockerHost()
        self.report = DeployReport(new_deploy_id(), datetime.now(UTC).isoformat(timespec="seconds"))

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

    @contextlib.contextmanager
    def recorded(self, done: Outcome) -> Iterator[None]:
        """Whatever happens inside, the history gets one line for this run: `done` when it
        returns, else the outcome it chose or the one its error names."""
        try:
            try:
                yield
            except engine.UNREACHABLE as exc:
                raise engine_stopped(exc) from exc
        except BaseException as exc:
            if self.report.outcome is Outcome.RUNNING:
                self.report.outcome = outcome_of(exc)
            if self.report.error is None:
                self.report.error = (
                    exc.message if isinstance(exc, DeployError) else str(exc) or type(exc).__name__
                )
            self._record()
            raise
        self.report.outcome = done
        self._record()

    # -- the deploy -------------------------------------------------------------------------

    def deploy(self, tag: str) -> DeployReport:
        """Deploy `tag`; raises a DeployError subclass whose exit code tells CI what happened."""
        with self.recorded(Outcome.DEPLOYED):
            with self.step("preflight"):
                stack = self._preflight(tag)
            self.report.to_image = stack.service.image
            target = stack.service.image
            with self._lock(stack, target) as stale:
                if stale is not None:
                    self.progress(
                        f"! the previous deploy {stale.deploy_id} (pid {stale.pid}) died "
                        f"{stale.age_seconds:.0f}s ago while holding the lock; taking over"
                    )
                self._deploy_locked(stack, tag)
        return self.report

    @property
    def remote(self) -> bool:
        """A fleet's host (or another engine named by docker_host): its files are reached
        only through containers on its engine."""
        return self.settings.docker_host is not None

    @property
    def where(self) -> str:
        return self.settings.docker_host or "this Docker host"

    def _preflight(self, tag: str) -> Stack:
        self.host.connect()
        stack = self.host.resolve(self.settings, tag)
        self._image_on_host(stack.service.image)
        if self.remote:
            if Proxy.of(self.settings) is not None:
                raise ConfigError(
                    "start-first deploys behind a proxy are not supported on a fleet's hosts "
                    "yet (the proxy's upstream file is written on this machine)",
                    hint="leave proxy_service out of the fleet's deploy.yml: each host is "
                    "recreated, and rolled back on failure",
                )
            # What touches the database there runs in a container of litedeploy's image.
            self._image_on_host(self.settings.files_image)
            size, free = self.data(stack).room()
            check_room(size, free, f"{stack.db_path.parent} on {self.where}")
        else:
            room_for_deploy(stack, self.settings.state)
        if Proxy.of(self.settings) is None and self.settings.strategy == Strategy.START_FIRST:
            raise ConfigError(
                "strategy start-first needs a proxy to switch, and deploy.yml names none",
                hint="set proxy_service, proxy_upstream_file and proxy_reload (deploy.example.yml)"
                ", or deploy with --strategy recreate",
            )
        return stack

    def _image_on_host(self, ref: str) -> None:
        """The image is on the host; a fleet's host that lacks it pulls it first."""
        if self.host.image_id(ref) is not None:
            return
        if not self.remote:
            raise PreflightFailed(
                f"image {ref} is not on this Docker host",
                hint="build or pull it first (docker image ls lists what is here)",
            )
        failed = self.host.pull(ref)
        if failed is None and self.host.image_id(ref) is not None:
            self.progress(f"  pulled {ref} on {self.where}")
            return
        raise PreflightFailed(
            f"image {ref} is not on {self.where} and could not be pulled: {failed}",
            hint="push it to a registry that host can reach, or load it there (`docker save "
            f"{ref} | docker --host {self.where} load`)",
        )

    @contextlib.contextmanager
    def _lock(self, stack: Stack, target: str) -> Iterator[Stale | None]:
        """This stack's deploy lock: the state folder's flock, and on a fleet's host the
        host's own (hostlock.py), so that two machines never deploy it at once."""
        with deploy_lock(self.settings.state, self.report.deploy_id, target) as stale:
            if not self.remote:
                yield stale
                return
            with self.host.lock(
                stack.project, self.report.deploy_id, target, self.settings.files_image, self.where
            ) as left:
                yield stale or left

    def check(self, tag: str) -> dict[str, Any]:
        """The fleet's preflight of one host: reachable, the images there (pulled if they
        can be), room on its disk, nobody holding its lock. Nothing is changed, nothing
        recorded; raises what a deploy's preflight would."""
        started = time.monotonic()
        stack = self._preflight(tag)
        running = self.host.running(stack)
        error = self.host.lock_error(stack.project, self.where) if self.remote else None
        if error is None:
            error = lock_error(self.settings.state)
        if error is not None:
            raise error
        return {
            "host": self.where,
            "project": stack.project,
            "running": running.image if running else None,
            "to_image": stack.service.image,
            "database": str(stack.db_path),
            "seconds": round(time.monotonic() - started, 2),
        }

    def _deploy_locked(self, stack: Stack, tag: str) -> None:
        proxy = Proxy.of(self.settings)
        if proxy is not None:
            self._start_proxy(stack, proxy)
        previous = self._keep_previous(stack)
        if self.settings.rehearse:
            with self.step("rehearsal on a snapshot"):
                self._rehearse(stack)
        with self.step("strategy"):
            choice = self._choose(stack, proxy, running=previous is not None)
        self.report.strategy = str(choice.strategy)
        self.progress(f"  {choice.line()}")
        if choice.strategy is Strategy.START_FIRST:
            assert proxy is not None
            self._start_first(stack, tag, proxy)
        else:
            try:
                with self.step(f"cutover to {stack.service.image}"):
                    self._up(stack, tag, self.report.deploy_id)
                with self.step("health"):
                    self.host.wait_until_healthy(stack, self.settings)
            except (Unhealthy, DeployError) as exc:
                message = exc.message if isinstance(exc, DeployError) else str(exc)
                self.report.error = message
                self._roll_back(stack, previous, reason=message)
            if proxy is not None:
                with self.step("proxy to the new container"):
                    self._switch(stack, proxy, self._serving(stack).name)
        self.report.backup = self._backup_of_deploy(stack)
        self.report.outcome = Outcome.DEPLOYED  # whatever the tidying below meets
        self._pin(tag)
        removed = self.host.prune_rollback_tags(
            stack.service.repository, KEEP_ROLLBACK_TAGS, self._rollback_tags()
        )
        if removed:
            self.progress(
                f"  removed {len(removed)} old rollback tag(s), keeping {KEEP_ROLLBACK_TAGS}"
            )

    def _rollback_tags(self) -> set[str]:
        """This stack's rollback tags: its history's, and the one this deploy just made."""
        made = {self.report.rollback_image} if self.report.rollback_image else set()
        return records.rollback_tags(self.settings.state) | made

    # -- start-first (strategy.py) ------------------------------------------------------------

    def _choose(self, stack: Stack, proxy: Proxy | None, *, running: bool) -> Choice:
        """Start-first or recreate, and why; the new image's plan decides under `auto`."""
        wanted = self.settings.strategy
        verdict: Verdict | str | None = None
        if wanted != Strategy.RECREATE and proxy is not None and running:
            verdict = self._judge(stack, stack.service.image)
        return strategy.choose(
            wanted,
            proxy=proxy is not None,
            running=running,
            push=self.settings.push,
            verdict=verdict,
        )

    def _judge(self, stack: Stack, image: str) -> Verdict | str:
        """The new image's `entrypoint plan --json` on a snapshot of the live database: are its
        pending migrations expand-only? A string says why it cannot tell."""
        program = strategy.program_of(self.host.entrypoint_of(image))
        if program is None:
            return (
                f"cannot tell whether the migrations are expand-only: {image}'s ENTRYPOINT does "
                "not run litedeploy's `run`"
            )
        workdir = self.settings.state / f"plan-{self.report.deploy_id}"
        try:
            self.data(stack).snapshot(None, workdir, stack.db_container_path.name)
            result = self.host.run(
                strategy.plan_argv(stack, image, program, workdir),
                env=rehearsal_env(stack),
                timeout=max(self.settings.health_timeout, 300),
            )
            return strategy.read_plan(result)
        except Undecided as exc:
            return f"cannot tell whether the migrations are expand-only: {exc}"
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _start_proxy(self, stack: Stack, proxy: Proxy) -> None:
        """The proxy runs (started if it does not; left as it is if it does), its upstream
        folder made first."""
        with self.step(f"the proxy ({proxy.service}) running"):
            proxy.prepare()
            result = self.host.run(
                stack.compose.start(proxy.service),
                env={self.settings.tag_variable: self._tag_running() or "latest"},
                cwd=str(self.settings.compose_file.resolve().parent),
                timeout=300,
            )
            if not result.ok:
                raise PreflightFailed(
                    f"cannot start the proxy service {proxy.service}: {result.tail(3)}",
                    hint="check the proxy's service in the compose file (proxy_service in "
                    "deploy.yml names it)",
                )

    def _tag_running(self) -> str | None:
        return pin.pinned(self._pin_file(), self.settings.tag_variable)

    def _pin_file(self) -> Path:
        """Where Compose reads the tag from: the env file deploy.yml names, else `.env`."""
        return self.settings.env_file or pin.dotenv(self.settings.compose_file)

    def _serving(self, stack: Stack) -> Box:
        running = [b for b in self.host.containers(stack) if b.running]
        if not running:
            raise StepFailed(f"no running container of service {stack.service.name}")
        return running[-1]  # the newest

    def _switch(self, stack: Stack, proxy: Proxy, container: str) -> None:
        """Point the proxy at one container and apply it gracefully."""
        proxy.write(container)
        argv = proxy.reload_argv(stack.compose)
        if argv is not None:
            result = self.host.run(
                argv, cwd=str(self.settings.compose_file.resolve().parent), timeout=60
            )
            if not result.ok:
                raise reload_failed(proxy, result)
        self.progress(f"  {proxy.upstream_file.name}: {proxy.line(container).strip()}")

    def _start_first(self, stack: Stack, tag: str, proxy: Proxy) -> None:
        """Start the new version beside the old, on the same database; switch the proxy when
        it is healthy; keep the old one through the grace period, then stop it. A failure
        before the switch never touches the old version; one during the grace period switches
        back. Either way nothing is restored: the migrations were expand-only."""
        old = [b for b in self.host.containers(stack) if b.running]
        # The one the proxy sends traffic to (an interrupted deploy may have left a second,
        # never switched to), else the newest.
        named = proxy.pointed_at()
        serving = next((b for b in old if b.name == named), old[-1])
        with self.step(f"proxy pinned to {serving.name}"):
            self._switch(stack, proxy, serving.name)
        new: list[Box] = []
        try:
            with self.step(f"start {stack.service.image} beside {serving.name}"):
                try:
                    self._up(stack, tag, self.report.deploy_id, beside=len(old) + 1)
                finally:
                    new = [
                        b for b in self.host.containers(stack) if b.id not in {o.id for o in old}
                    ]
                if not new:
                    raise StepFailed("compose started no new container")
            with self.step(f"health of {new[0].name}, then {self.settings.stable_seconds:g}s more"):
                # Switching early buys nothing (the old one serves), so a release that dies
                # just after its first health check must not get the traffic first.
                self.host.wait_until_healthy(stack, self.settings, new[0].id)
                self.host.stays_healthy(new[0].id, self.settings.stable_seconds)
        except (Unhealthy, DeployError) as exc:
            self._withdraw(stack, new, serving, exc, switched=False)
        fresh = new[0]
        grace = self.settings.grace_seconds
        try:
            with self.step(f"switch the proxy to {fresh.name}"):
                self._switch(stack, proxy, fresh.name)
            with self.step(f"grace period of {grace:g}s, {serving.name} kept"):
                self.host.stays_healthy(fresh.id, grace)
        except (Unhealthy, DeployError) as exc:
            with self.step(f"switch back to {serving.name}"):
                self._switch(stack, proxy, serving.name)
            self._withdraw(stack, new, serving, exc, switched=True)
        with self.step(f"drain and stop {', '.join(b.name for b in old)}"):
            for box in old:
                self.host.remove(box.id)

    def _withdraw(
        self, stack: Stack, new: list[Box], serving: Box, exc: Exception, *, switched: bool
    ) -> NoReturn:
        """The new container failed beside the old: remove it; the old one serves on."""
        reason = exc.message if isinstance(exc, DeployError) else str(exc)
        self.report.error = reason
        self.progress(f"! {reason}; withdrawing the new version")
        for box in new:
            for line in self.host.failure_lines(stack, box.id):
                self.progress(f"  {line}")
        with self.step("remove the new container"):
            for box in new:
                self.host.remove(box.id)
        where = (
            f"the proxy was switched back to {serving.name}"
            if switched
            else f"the proxy never switched: {serving.name} kept serving"
        )
        raise RolledBack(
            f"deploy {self.report.deploy_id} failed ({reason}); {where}, never stopped, "
            f"{self.report.from_image or serving.image} runs on; nothing restored: the "
            "migrations were expand-only and every write is kept",
            hint=(exc.hint if isinstance(exc, DeployError) and exc.hint else None)
            or "the failing container's logs are above; the release's expand-only migrations "
            "stay applied (the next release finds them done)",
        )

    def _keep_previous(self, stack: Stack) -> str | None:
        """Tag the running container's image so it can come back; returns its tag."""
        with self.step("record the running version"):
            running = self.host.running(stack)
            if running is None:
                self.progress("  nothing runs yet: first deploy")
                return None
            was = running.image
            self.report.from_image = was
            keep = f"rollback-{self.report.deploy_id}"
            self.report.rollback_image = self.host.keep_image(
                running.image_id, stack.service.repository, keep
            )
            self.progress(f"  running {was} ({running.image_id[7:19]}), kept as {keep}")
            # Bring it back under its own tag while that still names the same image.
            repository, tag = split_image(was)
            same = self.host.image_id(was)
            if repository == stack.service.repository and same == running.image_id:
                return tag
            return keep

    def _rehearse(self, stack: Stack) -> None:
        image = stack.service.image
        command = self.host.entrypoint_of(image)
        ours = rehearsal.runs_litedeploy(command)
        if not ours:
            self.progress(
                f"! {image} starts with {command or 'no ENTRYPOINT'}, which does not look like "
                "litedeploy's entrypoint; rehearsing anyway, for at most the health timeout"
            )
        result = self._rehearsal(
            stack,
            image,
            timeout=max(self.settings.health_timeout, 600 if ours else 0),
            push=self.settings.push,
        )
        if result.ok:
            return
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

    def _rehearsal(
        self,
        stack: Stack,
        image: str,
        *,
        timeout: float,
        push: bool = False,
        source: Path | None = None,
    ) -> Result:
        """`image`'s entrypoint on a snapshot of the database (or of `source`), in a workdir
        of the state folder that goes when it is done."""
        if self.remote:  # a volume on that host, made and removed through its engine
            volume = f"litedeploy-rehearsal-{self.report.deploy_id}"
            try:
                return self._rehearse_in(stack, image, volume, timeout, push, source)
            finally:
                self.host.run(["docker", "volume", "rm", "--force", volume], timeout=60)
        workdir = self.settings.state / f"rehearsal-{self.report.deploy_id}"
        try:
            return self._rehearse_in(stack, image, workdir, timeout, push, source)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def _rehearse_in(
        self,
        stack: Stack,
        image: str,
        workdir: Path | str,
        timeout: float,
        push: bool,
        source: Path | None,
    ) -> Result:
        return rehearse(
            stack,
            image,
            workdir,
            name=f"litedeploy-rehearsal-{self.report.deploy_id}",
            timeout=timeout,
            push=push,
            source=source,
            take_snapshot=self.data(stack).snapshot,
            runner=self.host.run,
        )

    def _up(self, stack: Stack, tag: str, deploy_id: str, *, beside: int = 0) -> None:
        """`compose up -d --no-deps --force-recreate` with the tag and LITEDEPLOY_DEPLOY_ID set
        (with `beside`, scaled up to that many containers, the running ones left as they are)."""
        override = self._override(stack, deploy_id)
        files = (*stack.compose.files, override)
        compose = replace(stack.compose, files=files)
        name = stack.service.name
        result = self.host.run(
            compose.up_beside(name, beside) if beside else compose.up(name),
            env={self.settings.tag_variable: tag},
            cwd=str(self.settings.compose_file.resolve().parent),
            timeout=max(self.settings.health_timeout, 300),
        )
        if not result.ok:
            raise StepFailed(
                f"compose up failed: {result.tail(5)}",
                hint="start-first runs two containers of the service: it must publish no fixed "
                "host port and have no container_name (the proxy is the way in)"
                if beside
                else None,
            )

    def _override(self, stack: Stack, deploy_id: str) -> Path:
        """A compose override that passes LITEDEPLOY_DEPLOY_ID (and push mode), whatever the
        compose file says."""
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

    # -- bringing a version back ----------------------------------------------------------------

    def _bring_back(self, stack: Stack, back: BringBack, deploy_id: str) -> None:
        """Stop the service, restore `back.backup` (if any), start `back.tag` (if any) and wait
        for it to be healthy, then pin it. Raises what the first failing step raised."""
        with self.step(back.stop):
            self._stop(stack)
        if back.path is not None:
            self.report.backup = str(back.path)
            if back.tell_writes:
                with contextlib.suppress(DeployError):
                    if written := self.data(stack).writes_since(back.path):
                        self.progress(
                            f"  {describe(written)} differ from {back.path.name} (the "
                            "migrations' changes and what the new version wrote): they go to "
                            "quarantine with the replaced database"
                        )
            with self.step(back.restore):
                self._restore(stack, back.path, back.sha256)
        if back.tag is None:
            self.progress(f"  {back.idle}")
            return
        with self.step(back.start):
            self._up(stack, back.tag, deploy_id)
        with self.step(back.health):
            self.host.wait_until_healthy(stack, self.settings)
        self._pin(back.tag)

    def _roll_back(self, stack: Stack, previous: str | None, *, reason: str) -> None:
        """The new version failed: the previous image and the pre-migration database back."""
        self.progress(f"! {reason}; rolling back")
        self._show_failure(stack)
        backup = self._find_backup(stack, self.report.deploy_id)
        back = BringBack(
            stop="stop the new version",
            restore="restore the pre-migration database",
            start=f"bring back {self.report.from_image}",
            health="health of the previous version",
            backup=backup,
            tag=previous,
            tell_writes=True,
            idle="nothing ran before this deploy: the service stays stopped",
        )
        try:
            self._bring_back(stack, back, f"{self.report.deploy_id}-rollback")
        except (Unhealthy, DeployError, EntrypointError, OSError) as exc:
            text = exc.message if isinstance(exc, DeployError | EntrypointError) else str(exc)
            self._show_failure(stack)  # the previous version's own words this time
            raise RollbackFailed(
                f"deploy failed ({reason}) and the rollback failed too: {text}",
                hint=f"{self._manual_restore(stack, backup)}; then start the previous image "
                f"({self.report.from_image or 'none'}) with `deploy --tag TAG`",
            ) from exc
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

    def rollback_last(self, *, discard_writes: bool = False) -> DeployReport:
        """Undo the last successful deploy: its previous image and its pre-migration backup.

        Nothing is stopped until the previous image has been rehearsed on the database it
        will find, and, when the backup is to be restored, until the rows written since it
        are counted: dropping them needs `discard_writes`.
        """
        last = next(
            (
                r
                for r in reversed(records.read(self.settings.state))
                if r.get("outcome") == Outcome.DEPLOYED
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
        stack: Stack | None = None
        backup: Backup | None = None
        stopped = False
        with self.recorded(Outcome.ROLLED_BACK_BY_HAND):
            try:
                with self.step("preflight"):
                    self.host.connect()
                    stack = self.host.resolve(self.settings, keep)
                    if self.host.image_id(stack.service.image) is None:
                        raise PreflightFailed(f"image {stack.service.image} is gone from this host")
                with self._lock(stack, stack.service.image):
                    backup = self._find_backup(stack, str(last["deploy_id"]))
                    self._check_writes(stack, backup, str(last["deploy_id"]), discard_writes)
                    if self.settings.rehearse:
                        with self.step(
                            f"rehearsal of {stack.service.image} on the database it finds"
                        ):
                            self._rehearse_rollback(stack, backup)
                    stopped = True
                    back = BringBack(
                        stop="stop the current version",
                        restore="restore the database from before that deploy",
                        start=f"bring back {last.get('from_image')}",
                        health="health",
                        backup=backup,
                        tag=keep,
                    )
                    self._bring_back(stack, back, self.report.deploy_id)
            except (Unhealthy, EntrypointError, DeployError, *engine.UNREACHABLE) as exc:
                # Refused before anything stopped (the app runs as it did), or failed half-way.
                self.report.outcome = (
                    Outcome.ROLLBACK_FAILED if stopped else Outcome.ROLLBACK_REFUSED
                )
                if isinstance(exc, engine.UNREACHABLE):
                    exc = engine_stopped(exc)
                self.report.error = (
                    exc.message if isinstance(exc, DeployError | EntrypointError) else str(exc)
                )
                if isinstance(exc, DeployError) and not stopped:
                    raise exc from None
                if stack is not None:
                    self._show_failure(stack)
                raise RollbackFailed(
                    f"rollback failed: {self.report.error}",
                    hint=(
                        f"{self._manual_restore(stack, backup)}; then `deploy --tag "
                        f"{split_image(str(last.get('to_image') or ''))[1] or 'TAG'}` brings "
                        "back the version that ran"
                        if stack is not None
                        else None
                    ),
                ) from exc
        return self.report

    def restore_now(self, chosen: Path) -> DeployReport:
        """Stop the service, restore a backup into place, start the same image again."""
        stopped = False
        with self.recorded(Outcome.RESTORED):
            try:
                with self.step("preflight"):
                    self.host.connect()
                    stack = self.host.resolve(self.settings, None)
                    running = self.host.running(stack)
                image = running.image if running else None
                self.report.from_image = image
                self.report.to_image = image
                with self._lock(stack, f"restore {chosen.name}"):
                    stopped = True
                    back = BringBack(
                        stop="stop the app",
                        restore=f"restore {chosen.name}",
                        start=f"start {image} again",
                        health="health",
                        backup=chosen,
                        tag=split_image(image)[1] if image else None,
                        idle="nothing was running: the service stays stopped",
                    )
                    self._bring_back(stack, back, self.report.deploy_id)
            except (DeployError, EntrypointError):
                if stopped:  # a step failed (a failed `compose stop` too): the line says so
                    self.report.outcome = Outcome.RESTORE_FAILED
                raise  # the CLI maps an entrypoint error to deploy's code (errors.exit_code)
            except Unhealthy as exc:
                self.report.outcome = Outcome.RESTORE_FAILED
                raise StepFailed(
                    f"restore failed: {exc}",
                    hint="the database is the restored one; `deploy logs` says why the app "
                    "did not come back; `deploy status` shows what runs",
                ) from exc
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
        result = self._rehearsal(
            stack,
            stack.service.image,
            timeout=max(self.settings.health_timeout, 600),
            source=backup.path if backup is not None else None,
        )
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
        path = self._pin_file()
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
        stopped = self.host.run(stack.compose.stop(stack.service.name), timeout=120)
        if not stopped.ok:
            raise StepFailed(f"compose stop failed: {stopped.tail(3)}")

    def _show_failure(self, stack: Stack) -> None:
        for line in self.host.failure_lines(stack):
            self.progress(f"  {line}")

    def _restore(self, stack: Stack, backup: Path, sha256: str | None) -> None:
        done = self.data(stack).restore(backup, unless_sha256=sha256)
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
