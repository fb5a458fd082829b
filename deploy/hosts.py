"""The fleet's hosts: `hosts:` in deploy.yml, `--host` on the command line, and the settings
of a deploy to one of them.

    hosts:
      - name: eu-1
        docker_host: ssh://deploy@eu-1.example.com
      - name: us-1
        docker_host: tcp-us-1           # a Docker context (TLS certificates live there)
        db_path: /srv/shop/data/app.db  # per-host values win over the file's

Each host is deployed by its own `deploy --host NAME` process (fleet.py), with the values
below over the file's, its own lock and history in `<state_dir>/hosts/NAME/`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .endpoint import is_endpoint
from .errors import ConfigError

# What may differ from host to host: where its stack lives and what it is called.
PER_HOST = {
    "compose_file": (str,),
    "env_file": (str,),
    "project": (str,),
    "db_path": (str,),
    "backup_dir": (str,),
    "state_dir": (str,),
}
PER_HOST_PATHS = {"compose_file", "env_file", "db_path", "backup_dir", "state_dir"}
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


@dataclass(frozen=True)
class HostSpec:
    """One host of the fleet: its name, its Docker endpoint and its own values."""

    name: str
    docker_host: str
    values: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    ad_hoc: bool = field(default=False, compare=False)  # given by --host, not in deploy.yml

    @property
    def flag(self) -> str:
        """What `--host` names it by in a host's own process."""
        return self.docker_host if self.ad_hoc else self.name


def parse(raw: object, *, source: str, base: Path | None) -> tuple[HostSpec, ...]:
    """`hosts:` of deploy.yml, checked; relative paths are taken from `base` (its folder)."""
    if not isinstance(raw, list) or not raw:
        raise ConfigError(
            f"{source}: hosts: must be a list of hosts, each with a name and a docker_host",
            hint="see the hosts: example in deploy.example.yml",
        )
    found: list[HostSpec] = []
    for i, item in enumerate(raw, 1):
        where = f"{source}: hosts[{i}]"
        if isinstance(item, str):  # a bare endpoint or context
            item = {"docker_host": item}
        if not isinstance(item, dict):
            raise ConfigError(f"{where}: must be a mapping (name:, docker_host:, ...)")
        docker_host = item.get("docker_host")
        if not isinstance(docker_host, str) or not docker_host:
            raise ConfigError(
                f"{where}: docker_host: required, an ssh://, tcp:// or unix:// endpoint or a "
                "Docker context name"
            )
        name = item.get("name", name_of(docker_host))
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigError(
                f"{where}: name: must be letters, digits, '.', '_' or '-' (got {name!r})"
            )
        values: dict[str, Any] = {}
        for key, value in item.items():
            if key in ("name", "docker_host"):
                continue
            if key not in PER_HOST:
                raise ConfigError(
                    f"{where} ({name}): {key}: not a per-host setting",
                    hint=f"per host: name, docker_host, {', '.join(PER_HOST)}; the others are "
                    "the fleet's, at the top of deploy.yml",
                )
            if not isinstance(value, PER_HOST[key]):
                raise ConfigError(f"{where} ({name}): {key}: must be a string (got {value!r})")
            values[key] = (
                ((base / value).resolve() if base else Path(value))
                if key in PER_HOST_PATHS
                else value
            )
        found.append(HostSpec(name, docker_host, values))
    names = [h.name for h in found]
    if twice := sorted({n for n in names if names.count(n) > 1}):
        raise ConfigError(f"{source}: hosts: {', '.join(twice)} named twice")
    return tuple(found)


def name_of(docker_host: str) -> str:
    """A host's name when none is given: its endpoint without scheme and user, made safe."""
    bare = docker_host.split("://", 1)[-1].rsplit("@", 1)[-1].strip("/")
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", bare).strip("-")[:63] or "host"


def select(configured: tuple[HostSpec, ...], wanted: list[str]) -> tuple[HostSpec, ...]:
    """The hosts a command acts on: every configured one, or those `--host` names (a name
    from deploy.yml, else an endpoint or context given on the spot)."""
    if not wanted:
        return configured
    by_name = {h.name: h for h in configured}
    by_endpoint = {h.docker_host: h for h in configured}
    chosen: list[HostSpec] = []
    for item in wanted:
        spec = by_name.get(item) or by_endpoint.get(item)
        if spec is None:
            if not is_endpoint(item) and configured:
                raise ConfigError(
                    f"--host {item}: no such host in deploy.yml (hosts: {', '.join(by_name)})",
                    hint="give a configured name, or an ssh://, tcp:// or unix:// endpoint",
                )
            spec = HostSpec(name_of(item), item, ad_hoc=True)
        if spec.name in {c.name for c in chosen}:
            raise ConfigError(f"--host {item}: {spec.name} is given twice")
        chosen.append(spec)
    return tuple(chosen)


def state_of(state: Path, spec: HostSpec) -> Path:
    """Where a host's lock and history live: its own state_dir, else <state>/hosts/NAME."""
    own = spec.values.get("state_dir")
    return Path(own) if own else state / "hosts" / spec.name
