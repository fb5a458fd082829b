"""deploy.yml: load, validate with messages that name the field, and merge with flags."""

from __future__ import annotations

import math
import os
import shlex
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

import yaml

from . import VERSION, hosts
from .errors import ConfigError
from .hosts import HostSpec


@dataclass(frozen=True)
class Settings:
    """Everything a deploy needs; each field is a key of deploy.yml and a flag."""

    compose_file: Path = Path("docker-compose.yml")
    service: str = "app"
    project: str | None = None
    tag: str | None = None
    tag_variable: str = "APP_TAG"
    health_timeout: float = 60.0
    stable_seconds: float = 5.0
    probe_url: str | None = None
    db_path: Path | None = None
    backup_dir: Path | None = None
    rehearse: bool = True
    push: bool = (
        False  # staging: the entrypoint syncs the declared schema (LITEDEPLOY_MIGRATE_MODE=push)
    )
    compose: str = "auto"
    # The litedeploy image, for what must touch root-only files when deploy is not root
    # (datafolder.py): default $LITEDEPLOY_IMAGE, else litedeploy:<this version>.
    litedeploy_image: str | None = None
    state_dir: Path | None = None
    # How the new version replaces the old (strategy.py): start-first beside it behind the
    # proxy when its migrations are expand-only, else recreate; forced either way per release.
    strategy: str = "auto"
    # The reverse proxy in front of the app (proxy.py): its service, the file deploy writes the
    # chosen container's address into (`proxy_upstream`, {address} = CONTAINER:PORT), and the
    # command run in the proxy's container to apply it gracefully (none: it watches the file).
    proxy_service: str | None = None
    proxy_upstream_file: Path | None = None
    proxy_upstream: str = "set $litedeploy_upstream {address};"
    proxy_reload: tuple[str, ...] | None = None
    app_port: int = 8000
    # After the switch, the old container is kept this long, and the traffic goes back to it
    # if the new one fails meanwhile.
    grace_seconds: float = 10.0
    # Another engine than the local one: an ssh://, tcp:// or unix:// endpoint or a Docker
    # context (endpoint.py). Set per host by `hosts:`; alone, it deploys to that one host.
    docker_host: str | None = None
    # Compose's --env-file (the tag deploy started is pinned there instead of .env).
    env_file: Path | None = None
    # The fleet (hosts.py, fleet.py): its hosts, how many go first and must succeed before the
    # others start, how many deploy at once after them, and what a failure does to the hosts
    # already done: halt (they stay on the new release) or rollback-all.
    hosts: tuple[HostSpec, ...] = ()
    canary: int = 1
    parallel: int = 1
    on_failure: str = "halt"

    @property
    def files_image(self) -> str:
        """The image that handles root-only files for a non-root operator."""
        return (
            self.litedeploy_image or os.environ.get("LITEDEPLOY_IMAGE") or f"litedeploy:{VERSION}"
        )

    @property
    def state(self) -> Path:
        """Where the lock and the deploy history live: `.litedeploy/` beside the compose file."""
        return self.state_dir or self.compose_file.resolve().parent / ".litedeploy"


_TYPES: dict[str, tuple[type, ...]] = {
    "compose_file": (str,),
    "service": (str,),
    "project": (str,),
    "tag": (str, int, float),
    "tag_variable": (str,),
    "health_timeout": (int, float),
    "stable_seconds": (int, float),
    "probe_url": (str,),
    "db_path": (str,),
    "backup_dir": (str,),
    "rehearse": (bool,),
    "push": (bool,),
    "compose": (str,),
    "state_dir": (str,),
    "litedeploy_image": (str,),
    "strategy": (str,),
    "proxy_service": (str,),
    "proxy_upstream_file": (str,),
    "proxy_upstream": (str,),
    "proxy_reload": (list, str),
    "app_port": (int,),
    "grace_seconds": (int, float),
    "docker_host": (str,),
    "env_file": (str,),
    "hosts": (list, tuple),
    "canary": (int,),
    "parallel": (int,),
    "on_failure": (str,),
}
_PATHS = {"compose_file", "db_path", "backup_dir", "state_dir", "proxy_upstream_file", "env_file"}
STRATEGIES = ("auto", "start-first", "recreate")
ON_FAILURE = ("halt", "rollback-all")


def load_file(path: Path) -> dict[str, Any]:
    """Read deploy.yml into validated values; relative paths are taken from its folder."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start})") from exc
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(
            f"{path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}",
            hint="compare it with deploy.example.yml",
        ) from exc
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings, got {type(raw).__name__}")
    values = validate(raw, source=str(path), base=path.parent)
    for key in _PATHS & values.keys():
        values[key] = (path.parent / values[key]).resolve()
    return values


def validate(raw: dict[Any, Any], *, source: str, base: Path | None = None) -> dict[str, Any]:
    """Check keys and types; every message names the field."""
    values: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in _TYPES:
            known = ", ".join(sorted(_TYPES))
            raise ConfigError(f"{source}: {key}: unknown setting", hint=f"known settings: {known}")
        if value is None:
            continue
        allowed = _TYPES[key]
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            wanted = " or ".join(t.__name__ for t in allowed)
            raise ConfigError(f"{source}: {key}: must be {wanted} (got {value!r})")
        values[key] = str(value) if key == "tag" else value
    if isinstance(values.get("hosts"), list):
        values["hosts"] = hosts.parse(values["hosts"], source=source, base=base)
    for key in ("canary", "parallel"):
        if key in values and values[key] < 1:
            raise ConfigError(f"{source}: {key}: must be 1 or more (got {values[key]})")
    if values.get("on_failure", "halt") not in ON_FAILURE:
        raise ConfigError(
            f"{source}: on_failure: must be halt or rollback-all (got {values['on_failure']!r})"
        )
    for key in ("health_timeout", "stable_seconds", "grace_seconds"):
        if key in values and not 0 < values[key] < math.inf:  # also refuses NaN
            raise ConfigError(
                f"{source}: {key}: must be a positive number of seconds (got {values[key]})"
            )
    if values.get("compose", "auto") not in ("auto", "v1", "v2"):
        raise ConfigError(f"{source}: compose: must be auto, v1 or v2 (got {values['compose']!r})")
    if values.get("strategy", "auto") not in STRATEGIES:
        raise ConfigError(
            f"{source}: strategy: must be auto, start-first or recreate "
            f"(got {values['strategy']!r})"
        )
    if "proxy_reload" in values:
        reload = values["proxy_reload"]
        if isinstance(reload, str):
            reload = shlex.split(reload)
        if not reload or not all(isinstance(part, str) and part for part in reload):
            raise ConfigError(
                f"{source}: proxy_reload: must be a command as a list of words "
                '(e.g. ["nginx", "-s", "reload"])'
            )
        values["proxy_reload"] = tuple(reload)
    if "proxy_upstream" in values and "{address}" not in values["proxy_upstream"]:
        raise ConfigError(
            f"{source}: proxy_upstream: must contain {{address}}, where deploy puts the app "
            "container's CONTAINER:PORT"
        )
    if "app_port" in values and not 0 < values["app_port"] < 65536:
        raise ConfigError(f"{source}: app_port: must be a TCP port (got {values['app_port']})")
    if "probe_url" in values and not str(values["probe_url"]).startswith(("http://", "https://")):
        raise ConfigError(f"{source}: probe_url: must be an http:// or https:// URL")
    return values


def settings(file_values: dict[str, Any], flags: dict[str, Any]) -> Settings:
    """Flags win over deploy.yml, which wins over the defaults."""
    merged = {**file_values, **{k: v for k, v in flags.items() if v is not None}}
    for key, value in merged.items():
        if isinstance(value, tuple) and key != "hosts":
            merged[key] = list(value)
    checked = validate(
        {k: str(v) if k in _PATHS else v for k, v in merged.items()}, source="settings"
    )
    if "proxy_reload" in checked:
        merged["proxy_reload"] = checked["proxy_reload"]
    for key in _PATHS & merged.keys():
        merged[key] = Path(merged[key])
    known = {f.name for f in fields(Settings)}
    return Settings(**{k: v for k, v in merged.items() if k in known})


def for_host(fleet: Settings, spec: HostSpec) -> Settings:
    """The settings of a deploy to one host: the fleet's, the host's own values over them,
    its endpoint, and its own state folder (lock and history)."""
    values: dict[str, Any] = {k: Path(v) if k in _PATHS else v for k, v in spec.values.items()}
    values["state_dir"] = hosts.state_of(fleet.state, spec)
    return replace(fleet, **values, docker_host=spec.docker_host, hosts=())
