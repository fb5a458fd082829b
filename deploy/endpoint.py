"""Which Docker engine a deploy drives: the local one, or a host of the fleet by its endpoint.

An endpoint is what the Docker CLI and SDK already understand: `ssh://user@host[:port]`,
`tcp://host:port` (TLS through the usual DOCKER_TLS_VERIFY and DOCKER_CERT_PATH, or a
context), `unix:///path`, or the name of a Docker context (`docker context ls`). Nothing of
litedeploy's runs on the host: its engine's API is the only channel.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

HOST_ENV = "DOCKER_HOST"
CONTEXT_ENV = "DOCKER_CONTEXT"
SCHEMES = ("ssh://", "tcp://", "unix://", "npipe://")


def is_endpoint(value: str) -> bool:
    """An address (scheme://...) rather than a context's name."""
    return value.startswith(SCHEMES)


def environment(docker_host: str) -> dict[str, str]:
    """The variables that point Docker's CLI, Compose and the SDK at `docker_host`."""
    return {HOST_ENV: docker_host} if is_endpoint(docker_host) else {CONTEXT_ENV: docker_host}


_active: list[str] = []  # the endpoint activate() was given, when it is not DOCKER_HOST's


def activate(
    docker_host: str,
    env: os._Environ[str] | dict[str, str] = os.environ,
    *,
    relay: bool = True,
) -> None:
    """Point this process (and every command it runs) at `docker_host`: a deploy to one host
    of a fleet runs in its own process, so the whole process talks to that engine. An ssh://
    endpoint goes through this process's relay (sshrelay.py): the SDK, Compose (v1 too) and
    the docker CLI all share one ssh connection to the host."""
    for key in (HOST_ENV, CONTEXT_ENV):
        env.pop(key, None)
    _active[:] = []
    if relay and docker_host.startswith("ssh://"):
        from .sshrelay import relay_for

        env[HOST_ENV] = relay_for(docker_host).url
        _active.append(docker_host)
        return
    env.update(environment(docker_host))


def describe(env: Mapping[str, str] = os.environ) -> str:
    """The engine this process talks to, for messages."""
    if _active:
        return _active[0]
    if env.get(HOST_ENV):
        return env[HOST_ENV]
    if env.get(CONTEXT_ENV):
        return f"context {env[CONTEXT_ENV]}"
    return "the local engine"
