"""What the Deployer asks of the Docker host: the engine, Compose, and the health loop.

One object, passed in, so the deploy story can be driven against small fakes in fast tests
(tests/test_deploy_rollback_paths.py) beside the Docker tests that drive the real thing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

import docker
from docker.errors import NotFound

from . import engine, hostlock, stack
from .config import Settings
from .errors import LockHeld
from .health import stays_healthy, wait_until_healthy
from .lock import Stale
from .runner import Result, run
from .stack import Stack


@dataclass(frozen=True)
class Running:
    """The service's container as the engine sees it."""

    image_id: str  # sha256:...
    image: str  # the reference it was started from (repository:tag)


@dataclass(frozen=True)
class Box:
    """One container of the service (a start-first deploy runs two)."""

    id: str
    name: str  # what Docker's DNS answers on the project's network
    image: str  # the reference it was started from
    running: bool


class Host(Protocol):
    """The Docker host a deploy drives."""

    def connect(self) -> None: ...

    def resolve(self, settings: Settings, tag: str | None) -> Stack: ...

    def running(self, stack: Stack) -> Running | None: ...

    def image_id(self, ref: str) -> str | None: ...

    def keep_image(self, image_id: str, repository: str, tag: str) -> str: ...

    def entrypoint_of(self, ref: str) -> list[str]: ...

    def prune_rollback_tags(
        self, repository: str, keep: int, owned: Collection[str]
    ) -> list[str]: ...

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
    ) -> Result: ...

    def wait_until_healthy(
        self, stack: Stack, settings: Settings, container_id: str | None = None
    ) -> None: ...

    def failure_lines(self, stack: Stack, container_id: str | None = None) -> list[str]: ...

    def containers(self, stack: Stack) -> list[Box]: ...

    def stays_healthy(self, container_id: str, seconds: float) -> None: ...

    def remove(self, container_id: str) -> None: ...

    def pull(self, ref: str) -> str | None: ...

    def lock(
        self, project: str, deploy_id: str, target: str, image: str, where: str
    ) -> AbstractContextManager[Stale | None]: ...

    def lock_error(self, project: str, where: str) -> LockHeld | None: ...


class DockerHost:
    """The real one: the docker SDK for the engine, Compose and docker as processes."""

    def __init__(self) -> None:
        self._client: docker.DockerClient | None = None

    @property
    def client(self) -> docker.DockerClient:
        if self._client is None:
            self._client = engine.connect()
        return self._client

    def connect(self) -> None:
        self._client = engine.connect()

    def resolve(self, settings: Settings, tag: str | None) -> Stack:
        return stack.resolve(settings, tag)

    def running(self, stack: Stack) -> Running | None:
        container = engine.service_container(self.client, stack.project, stack.service.name)
        if container is None:
            return None
        image_id = str(container.attrs.get("Image"))
        configured = (container.attrs.get("Config") or {}).get("Image")
        return Running(image_id, str(configured or image_id))

    def image_id(self, ref: str) -> str | None:
        found = engine.image(self.client, ref)
        return None if found is None else str(found.id)

    def keep_image(self, image_id: str, repository: str, tag: str) -> str:
        return engine.keep_image(self.client, image_id, repository, tag)

    def entrypoint_of(self, ref: str) -> list[str]:
        return engine.entrypoint_of(self.client, ref)

    def prune_rollback_tags(self, repository: str, keep: int, owned: Collection[str]) -> list[str]:
        return engine.prune_rollback_tags(self.client, repository, keep, owned)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
    ) -> Result:
        return run(argv, env=env, cwd=cwd, timeout=timeout)

    def wait_until_healthy(
        self, stack: Stack, settings: Settings, container_id: str | None = None
    ) -> None:
        wait_until_healthy(
            self.client,
            stack.project,
            stack.service.name,
            timeout=settings.health_timeout,
            stable_seconds=settings.stable_seconds,
            probe_url=None if container_id else settings.probe_url,
            container_id=container_id,
        )

    def containers(self, stack: Stack) -> list[Box]:
        return [
            Box(
                id=str(c.id),
                name=str(c.name),
                image=str((c.attrs.get("Config") or {}).get("Image") or c.attrs.get("Image")),
                running=c.status == "running",
            )
            for c in engine.service_containers(self.client, stack.project, stack.service.name)
        ]

    def stays_healthy(self, container_id: str, seconds: float) -> None:
        stays_healthy(self.client, container_id, seconds)

    def remove(self, container_id: str) -> None:
        engine.remove_container(self.client, container_id)

    def pull(self, ref: str) -> str | None:
        """Pull an image onto the host; None when it came, else why not."""
        try:
            self.client.images.pull(ref)
        except engine.UNREACHABLE as exc:
            return str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
        return None

    def lock(
        self, project: str, deploy_id: str, target: str, image: str, where: str
    ) -> AbstractContextManager[Stale | None]:
        return hostlock.engine_lock(self.client, project, deploy_id, target, image, where)

    def lock_error(self, project: str, where: str) -> LockHeld | None:
        return hostlock.held_by(self.client, project, where)

    def failure_lines(self, stack: Stack, container_id: str | None = None) -> list[str]:
        """The container's last log lines and healthcheck results, for the operator."""
        try:
            container = (
                self.client.containers.get(container_id)
                if container_id
                else engine.service_container(self.client, stack.project, stack.service.name)
            )
        except NotFound:
            return []
        except engine.UNREACHABLE:
            return ["(no logs: the Docker engine does not answer)"]
        if container is None:
            return []
        with contextlib.suppress(Exception):
            container.reload()
        return [f"| {line}" for line in engine.last_logs(container)] + [
            f"health: {line}" for line in engine.health_log(container)
        ]
