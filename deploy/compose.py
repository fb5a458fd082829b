"""Docker Compose v1 and v2: argv built as data (never run here), and the resolved service."""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from .errors import ConfigError, PreflightFailed
from .runner import run


class Flavour(StrEnum):
    """Which Compose: the v2 CLI plugin or the old Python v1."""

    V2 = "v2"
    V1 = "v1"


@dataclass(frozen=True)
class Compose:
    """How to call Compose for one stack."""

    flavour: Flavour
    files: tuple[Path, ...]
    project: str
    env_file: Path | None = None  # --env-file: instead of the .env beside the compose file

    def base(self) -> list[str]:
        argv = ["docker", "compose"] if self.flavour is Flavour.V2 else ["docker-compose"]
        if self.env_file is not None:
            argv += ["--env-file", str(self.env_file)]
        for f in self.files:
            argv += ["-f", str(f)]
        return [*argv, "-p", self.project]

    def config(self) -> list[str]:
        return [*self.base(), "config"]

    def up(self, service: str) -> list[str]:
        """Recreate one service, nothing else: the cutover."""
        return [*self.base(), "up", "-d", "--no-deps", "--force-recreate", service]

    def up_beside(self, service: str, count: int) -> list[str]:
        """Start the new configuration beside the running container(s), which stay as they
        are: the start-first cutover (docker-rollout's way; v1 and v2 alike)."""
        return [
            *self.base(),
            "up",
            "-d",
            "--no-deps",
            "--no-recreate",
            "--scale",
            f"{service}={count}",
            service,
        ]

    def start(self, service: str) -> list[str]:
        """Start a service if it does not run; leave it as it is if it does."""
        return [*self.base(), "up", "-d", "--no-deps", "--no-recreate", service]

    def exec(self, service: str, argv: list[str]) -> list[str]:
        """Run a command in the service's running container, no TTY."""
        return [*self.base(), "exec", "-T", service, *argv]

    def stop(self, service: str, timeout: int = 10) -> list[str]:
        return [*self.base(), "stop", "-t", str(timeout), service]


def detect_flavour(wanted: str = "auto") -> Flavour:
    """`docker compose` (v2) if it answers, else `docker-compose` (v1)."""
    candidates = [Flavour(wanted)] if wanted != "auto" else [Flavour.V2, Flavour.V1]
    for flavour in candidates:
        argv = (
            ["docker", "compose", "version"]
            if flavour is Flavour.V2
            else ["docker-compose", "version"]
        )
        if run(argv, timeout=30).ok:
            return flavour
    raise PreflightFailed(
        "Docker Compose was not found" + ("" if wanted == "auto" else f" ({wanted})"),
        hint="install the compose plugin (`docker compose`) or docker-compose v1",
    )


def default_project(compose_file: Path) -> str:
    """Compose's own default: the compose file's folder name, normalised."""
    name = compose_file.resolve().parent.name.lower()
    return re.sub(r"[^a-z0-9_-]", "", name) or "default"


@dataclass(frozen=True)
class Service:
    """One service of the resolved compose model (`compose config`, variables substituted)."""

    name: str
    image: str
    environment: dict[str, str] = field(default_factory=dict)
    binds: list[tuple[Path, PurePosixPath]] = field(default_factory=list)
    has_healthcheck: bool = False
    # What the service sets over its image's own (None: the image's applies).
    entrypoint: tuple[str, ...] | None = None
    command: tuple[str, ...] | None = None
    working_dir: str | None = None

    @property
    def repository(self) -> str:
        """The image name without its tag."""
        return split_image(self.image)[0]


def split_image(image: str) -> tuple[str, str]:
    """`name:tag` -> (name, tag); a registry port is not a tag, a digest is kept whole."""
    if "@" in image:
        return image.split("@", 1)[0], image.split("@", 1)[1]
    name, sep, tag = image.rpartition(":")
    if not sep or "/" in tag:
        return image, "latest"
    return name, tag


def parse_service(config_yaml: str, service: str, source: str) -> Service:
    """Pick one service out of `compose config` output (v1 and v2 shapes)."""
    try:
        model = yaml.safe_load(config_yaml)
    except yaml.YAMLError as exc:
        raise ConfigError(f"cannot read the output of compose config for {source}: {exc}") from exc
    services = (model or {}).get("services") or {}
    if service not in services:
        known = ", ".join(sorted(services)) or "none"
        raise ConfigError(
            f"{source} has no service {service!r} (services: {known})",
            hint="set --service / service: in deploy.yml to the app's service",
        )
    spec: dict[str, Any] = services[service] or {}
    image = spec.get("image")
    if not isinstance(image, str) or not image:
        raise ConfigError(
            f"service {service!r} in {source} has no image",
            hint="give it `image: NAME:${APP_TAG}` so each deploy pins a tag",
        )
    return Service(
        name=service,
        image=image,
        environment=_environment(spec.get("environment")),
        binds=_binds(spec.get("volumes") or []),
        has_healthcheck=_has_healthcheck(spec.get("healthcheck")),
        entrypoint=_argv(spec.get("entrypoint")),
        command=_argv(spec.get("command")),
        working_dir=str(spec["working_dir"]) if spec.get("working_dir") else None,
    )


def _argv(raw: object) -> tuple[str, ...] | None:
    """An exec-form list as is; a string split as Compose splits it (shell words)."""
    if isinstance(raw, list):
        return tuple(str(part) for part in raw)
    if isinstance(raw, str):
        return tuple(shlex.split(raw))
    return None


def _environment(raw: object) -> dict[str, str]:
    if isinstance(raw, dict):
        return {str(k): str(v) for k, v in raw.items() if v is not None}
    if isinstance(raw, list):
        pairs = (str(item).partition("=") for item in raw)
        return {k: v for k, sep, v in pairs if sep}
    return {}


def _binds(volumes: list[Any]) -> list[tuple[Path, PurePosixPath]]:
    binds = []
    for volume in volumes:
        if isinstance(volume, dict):
            if volume.get("type") == "bind" and volume.get("source") and volume.get("target"):
                binds.append((Path(volume["source"]), PurePosixPath(volume["target"])))
        elif isinstance(volume, str):
            parts = volume.split(":")
            if len(parts) >= 2 and parts[0].startswith(("/", ".")):
                binds.append((Path(parts[0]), PurePosixPath(parts[1])))
    return binds


def _has_healthcheck(raw: object) -> bool:
    if not isinstance(raw, dict) or raw.get("disable"):
        return False
    test = raw.get("test")
    return not (isinstance(test, list) and test[:1] == ["NONE"])


def host_path(
    container_path: PurePosixPath, binds: list[tuple[Path, PurePosixPath]]
) -> Path | None:
    """Where a path inside the container lives on the host, through the deepest bind mount."""
    best: tuple[Path, PurePosixPath] | None = None
    for source, target in binds:
        inside = container_path == target or target in container_path.parents
        if inside and (best is None or len(target.parts) > len(best[1].parts)):
            best = (source, target)
    if best is None:
        return None
    return best[0].joinpath(*container_path.relative_to(best[1]).parts)
