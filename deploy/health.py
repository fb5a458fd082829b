"""One health loop: healthy (or running and stable), failing fast on every sign of trouble."""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

import docker
from docker.errors import NotFound
from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_fixed

from .engine import UNREACHABLE, service_container

PENDING = object()


class Unhealthy(Exception):
    """The new container failed; the message says how."""


@dataclass(frozen=True)
class Observation:
    """A container's state at one poll."""

    container_id: str
    status: str
    health: str | None
    restart_count: int
    exit_code: int
    started_at: str


def observe(attrs: dict[str, Any]) -> Observation:
    """Read the fields that matter from `docker inspect` output."""
    state = attrs.get("State") or {}
    health = state.get("Health")
    return Observation(
        container_id=str(attrs.get("Id", ""))[:12],
        status=str(state.get("Status", "unknown")),
        health=str(health.get("Status")) if health else None,
        restart_count=int(attrs.get("RestartCount") or 0),
        exit_code=int(state.get("ExitCode") or 0),
        started_at=str(state.get("StartedAt", "")),
    )


def verdict(seen: Observation, first: Observation, stable_for: float, stable_seconds: float) -> str:
    """'ok', 'wait', or the reason the container failed."""
    if seen.status in ("exited", "dead"):
        return f"container {seen.container_id} {seen.status} with code {seen.exit_code}"
    if seen.status == "restarting" or seen.restart_count > first.restart_count:
        return f"container {seen.container_id} is restarting (restart count {seen.restart_count})"
    if seen.health == "unhealthy":
        return f"container {seen.container_id} is unhealthy"
    if seen.health == "healthy":
        return "ok"
    if seen.health is None and seen.status == "running" and stable_for >= stable_seconds:
        return "ok"
    return "wait"


def wait_until_healthy(
    client: docker.DockerClient,
    project: str,
    service: str,
    *,
    timeout: float,
    stable_seconds: float = 5.0,
    probe_url: str | None = None,
    poll: float = 0.5,
    container_id: str | None = None,
) -> Observation:
    """Poll until the service's container (or the one `container_id` names: a start-first
    deploy's new one, beside the old) is healthy, or raise Unhealthy at the first failure."""
    first: Observation | None = None
    running_since: float | None = None
    last: Observation | None = None

    engine_down: str | None = None

    def check() -> object:
        nonlocal first, running_since, last, engine_down
        try:
            container = (
                client.containers.get(container_id)
                if container_id
                else service_container(client, project, service)
            )
            if container is None:
                raise Unhealthy(f"no container for service {service} (was it removed?)")
            container.reload()
        except NotFound as exc:
            raise Unhealthy(f"container of {service} vanished: {exc}") from exc
        except UNREACHABLE as exc:  # the engine restarting: wait for it, within the timeout
            engine_down = str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__
            return PENDING
        engine_down = None
        seen = observe(container.attrs)
        first = first or seen
        last = seen
        if seen.status == "running":
            running_since = running_since or time.monotonic()
        stable_for = time.monotonic() - running_since if running_since else 0.0
        outcome = verdict(seen, first, stable_for, stable_seconds)
        if outcome == "wait":
            return PENDING
        if outcome != "ok":
            raise Unhealthy(outcome)
        if probe_url and not _probe(probe_url):
            return PENDING
        return seen

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_fixed(poll),
        retry=retry_if_result(lambda r: r is PENDING),  # failures raise: never retried
    )
    try:
        result = retrying(check)
    except RetryError as exc:
        state = f"status {last.status}, health {last.health}" if last else "no container seen"
        if engine_down is not None:
            state = f"the Docker engine stopped answering: {engine_down}"
        probe = f", probe {probe_url} not answering" if probe_url else ""
        raise Unhealthy(f"not healthy after {timeout:g}s ({state}{probe})") from exc
    assert isinstance(result, Observation)
    return result


def stays_healthy(
    client: docker.DockerClient, container_id: str, seconds: float, *, poll: float = 0.5
) -> None:
    """Watch a container that was healthy for `seconds`; raise Unhealthy as soon as it exits,
    restarts or turns unhealthy (the grace period after a start-first switch)."""
    first: Observation | None = None
    deadline = time.monotonic() + seconds
    while True:
        try:
            container = client.containers.get(container_id)
        except NotFound as exc:
            raise Unhealthy(f"container {container_id[:12]} vanished") from exc
        except UNREACHABLE:
            container = None  # the engine restarting: say nothing yet
        if container is not None:
            seen = observe(container.attrs)
            first = first or seen
            outcome = verdict(seen, first, seconds, 0.0)
            if outcome not in ("ok", "wait"):
                raise Unhealthy(outcome)
        if time.monotonic() >= deadline:
            return
        time.sleep(min(poll, max(deadline - time.monotonic(), 0.0)))


def _probe(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - operator's URL
            return 200 <= int(response.status) < 300
    except (urllib.error.URLError, OSError, ValueError):
        return False
