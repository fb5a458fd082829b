"""The Docker engine through the docker SDK: reach it, find the service's container, keep images."""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Collection
from typing import Any

import docker
import requests
from docker.context import ContextAPI
from docker.errors import DockerException, ImageNotFound, NotFound
from docker.models.containers import Container
from docker.models.images import Image
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential

from . import endpoint, sshrelay
from .errors import PreflightFailed


def connect(attempts: int = 4) -> docker.DockerClient:
    """A client that has answered a ping; retried, since a just-started engine may lag.

    The engine is the environment's: DOCKER_HOST (ssh:// through the `ssh` binary, as the
    Docker CLI does it, so the operator's ssh config and agent apply), else DOCKER_CONTEXT,
    else the local socket (endpoint.py)."""
    try:
        for attempt in Retrying(
            stop=stop_after_attempt(attempts),
            wait=wait_exponential(multiplier=0.5, max=4),
            retry=retry_if_exception_type(DockerException),
            reraise=True,
        ):
            with attempt:
                client = _client()
                client.ping()
                return client
    except (DockerException, requests.exceptions.RequestException) as exc:
        where = endpoint.describe()
        said = next((r.last_error for r in sshrelay.relays() if r.last_error), None)
        raise PreflightFailed(
            f"Docker is not reachable ({where}): {said or _short(exc)}",
            hint="start the engine (systemctl start docker) or check DOCKER_HOST"
            if where == "the local engine"
            else f"check that {where} answers: `docker info` with the same endpoint",
        ) from exc
    raise AssertionError("unreachable")  # pragma: no cover - Retrying either returns or raises


def _client() -> docker.DockerClient:
    context = os.environ.get(endpoint.CONTEXT_ENV)
    if context and not os.environ.get(endpoint.HOST_ENV):
        found = ContextAPI.get_context(context)
        if found is None:
            raise PreflightFailed(
                f"there is no Docker context named {context}",
                hint="`docker context ls` lists them; or give the host as ssh://, tcp:// or "
                "unix://",
            )
        if str(found.Host).startswith("ssh://"):
            return docker.DockerClient(base_url=sshrelay.relay_for(str(found.Host)).url, timeout=30)
        return docker.DockerClient(base_url=found.Host, tls=found.TLSConfig or False, timeout=30)
    host = os.environ.get(endpoint.HOST_ENV, "")
    if host.startswith("ssh://"):
        return docker.DockerClient(base_url=sshrelay.relay_for(host).url, timeout=30)
    return docker.from_env(timeout=30)


# What the SDK raises when the engine does not answer (restarting, stopped, socket gone):
# its own errors, and requests' connection errors, which it lets through.
UNREACHABLE = (DockerException, requests.exceptions.RequestException)


def _short(exc: Exception) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text[:200]


def service_containers(client: docker.DockerClient, project: str, service: str) -> list[Container]:
    """The service's containers (running first, oldest first), found by Compose's labels (v1
    and v2 alike); one-off `compose run` containers left out."""
    found = client.containers.list(
        all=True,
        filters={
            "label": [
                f"com.docker.compose.project={project}",
                f"com.docker.compose.service={service}",
            ]
        },
        ignore_removed=True,
    )
    found = [c for c in found if c.labels.get("com.docker.compose.oneoff", "False") != "True"]
    found.sort(key=lambda c: (c.status != "running", c.attrs.get("Created", "")))
    return found


def service_container(client: docker.DockerClient, project: str, service: str) -> Container | None:
    """The service's container: the oldest running one, else the oldest."""
    found = service_containers(client, project, service)
    return found[0] if found else None


def image(client: docker.DockerClient, ref: str) -> Image | None:
    """A local image by name or id, or None."""
    try:
        return client.images.get(ref)
    except (ImageNotFound, NotFound):
        return None


def entrypoint_of(client: docker.DockerClient, ref: str) -> list[str]:
    """The image's ENTRYPOINT (exec form, as a list; empty when it has none)."""
    found = image(client, ref)
    config = (found.attrs.get("Config") or {}) if found is not None else {}
    value = config.get("Entrypoint") or []
    return [str(v) for v in ([value] if isinstance(value, str) else value)]


def image_config(client: docker.DockerClient, ref: str) -> dict[str, Any] | None:
    """The image's run configuration (Env, WorkingDir, Entrypoint, Cmd), or None if absent."""
    found = image(client, ref)
    return None if found is None else dict(found.attrs.get("Config") or {})


def entrypoint_status(container: Container) -> dict[str, Any] | None:
    """`entrypoint status --json` run inside the app's container, by the entrypoint its
    ENTRYPOINT names (everything before `run`): the migrations by name, as the image knows
    them. None when the container has no such entrypoint or the command fails."""
    config = container.attrs.get("Config") or {}
    entry = config.get("Entrypoint") or []
    entry = [entry] if isinstance(entry, str) else [str(e) for e in entry]
    if "run" not in entry:
        return None
    argv = [*entry[: entry.index("run")], "status", "--json"]
    try:
        result = container.exec_run(argv, demux=True)
    except UNREACHABLE:
        return None
    out = result.output[0] if isinstance(result.output, tuple) else None
    if result.exit_code != 0 or not isinstance(out, bytes):
        return None
    try:
        data = json.loads(out)
    except ValueError:
        return None
    return data if isinstance(data, dict) else None


def remove_container(client: docker.DockerClient, container_id: str, timeout: int = 10) -> None:
    """Stop a container (SIGTERM, SIGKILL after `timeout` s) and remove it; gone already is
    fine."""
    try:
        container = client.containers.get(container_id)
        container.stop(timeout=timeout)
        container.remove(v=False)
    except NotFound:
        return


def keep_image(client: docker.DockerClient, image_id: str, repository: str, tag: str) -> str:
    """Tag an image so it can come back even if its original tag moves or is pruned."""
    client.images.get(image_id).tag(repository, tag)
    return f"{repository}:{tag}"


def prune_rollback_tags(
    client: docker.DockerClient, repository: str, keep: int, owned: Collection[str]
) -> list[str]:
    """Remove all but the newest `keep` of this stack's rollback-<deploy id> tags (ids sort by
    time). Only tags in `owned` (the ones this stack's deploys made, from its history) are
    touched: another stack on the host may share the repository (staging beside production),
    and its rollback tags are its own."""
    tags = sorted(
        tag
        for img in client.images.list(name=repository)
        for tag in img.tags
        if tag.startswith(f"{repository}:rollback-") and tag in owned
    )
    doomed = tags[: max(len(tags) - keep, 0)]
    for tag in doomed:
        with contextlib.suppress(DockerException):  # in use by a container: keep it
            client.images.remove(tag)
    return doomed


def last_logs(container: Container, lines: int = 30) -> list[str]:
    """The container's last log lines (stdout and stderr)."""
    try:
        raw: bytes = container.logs(tail=lines, stdout=True, stderr=True)
    except DockerException:
        return []
    return raw.decode(errors="replace").rstrip().splitlines()


def health_log(container: Container) -> list[str]:
    """The last healthcheck results Docker kept (up to 5)."""
    health: dict[str, Any] = (container.attrs.get("State") or {}).get("Health") or {}
    return [
        f"exit {entry.get('ExitCode')}: {str(entry.get('Output', '')).strip()[:200]}"
        for entry in health.get("Log") or []
    ]
