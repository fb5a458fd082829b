"""Resolve a stack from the settings: Compose, the service, and where its database lives."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from entrypoint.base.contract import BACKUP_DIR_ENV, CLI_DEFAULT_DB, DB_PATH_ENV

from .compose import Compose, Flavour, Service, default_project, detect_flavour, host_path
from .compose import parse_service as parse
from .config import Settings
from .errors import ConfigError, PreflightFailed
from .runner import run


@dataclass(frozen=True)
class Stack:
    """One service of one Compose project, and its database on the host."""

    compose: Compose
    service: Service
    db_path: Path
    db_container_path: PurePosixPath
    backup_dir: Path

    @property
    def project(self) -> str:
        return self.compose.project


def compose_for(settings: Settings, flavour: Flavour | None = None) -> Compose:
    if not settings.compose_file.is_file():
        raise ConfigError(
            f"compose file {settings.compose_file} does not exist",
            hint="pass --compose-file or set compose_file: in deploy.yml",
        )
    if settings.env_file is not None and not settings.env_file.is_file():
        raise ConfigError(
            f"env file {settings.env_file} does not exist",
            hint="fix env_file: in deploy.yml (per host under hosts:, or at the top)",
        )
    return Compose(
        flavour=flavour or detect_flavour(settings.compose),
        files=(settings.compose_file.resolve(),),
        project=project_name(settings),
        env_file=settings.env_file,
    )


def project_name(settings: Settings) -> str:
    """The project Compose itself would use: flag, COMPOSE_PROJECT_NAME, `name:`, folder."""
    if settings.project:
        return settings.project
    if os.environ.get("COMPOSE_PROJECT_NAME"):
        return os.environ["COMPOSE_PROJECT_NAME"]
    with contextlib.suppress(OSError, yaml.YAMLError):
        model = yaml.safe_load(settings.compose_file.read_text(encoding="utf-8"))
        if isinstance(model, dict) and isinstance(model.get("name"), str) and model["name"]:
            return str(model["name"])
    return default_project(settings.compose_file)


# How deploy reads an image's run configuration (`Config` of `docker image inspect`); None
# when the image is not on this host or the engine does not answer.
ImageConfigOf = Callable[[str], Mapping[str, Any] | None]


def _from_engine(ref: str) -> Mapping[str, Any] | None:
    from . import engine

    try:
        return engine.image_config(engine.connect(attempts=1), ref)
    except (PreflightFailed, *engine.UNREACHABLE):
        # Then what the service says decides, and the default as litedeploy's image has it.
        return None


def database_in_container(
    service: Service, image_config: Mapping[str, Any] | None
) -> PurePosixPath:
    """The database file the entrypoint will open, by the entrypoint's own rules.

    `--db` in the container's argv (before the app's `--`), else DB_PATH (the service's
    environment over the image's), else CLI_DEFAULT_DB; a relative path is taken from the
    working directory (the service's `working_dir` over the image's WORKDIR, else /).
    """
    config = image_config or {}
    workdir = PurePosixPath(service.working_dir or config.get("WorkingDir") or "/")
    if service.entrypoint is not None:  # Docker drops the image's CMD with its ENTRYPOINT
        argv = [*service.entrypoint, *(service.command or ())]
    else:
        command = service.command if service.command is not None else _listed(config.get("Cmd"))
        argv = [*_listed(config.get("Entrypoint")), *command]
    image_env = {k: v for k, _, v in (item.partition("=") for item in _listed(config.get("Env")))}
    chosen = (
        _db_flag(argv)
        or service.environment.get(DB_PATH_ENV)
        or image_env.get(DB_PATH_ENV)
        or str(CLI_DEFAULT_DB)
    )
    return workdir / chosen


def _listed(value: object) -> list[str]:
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value] if isinstance(value, list) else []


def _db_flag(argv: list[str]) -> str | None:
    """The last `--db` of `... run [options] --`, as typer reads it; None if there is none."""
    if "run" not in argv:
        return None
    options = argv[argv.index("run") + 1 :]
    if "--" in options:
        options = options[: options.index("--")]
    found = None
    for i, arg in enumerate(options):
        if arg == "--db" and i + 1 < len(options):
            found = options[i + 1]
        elif arg.startswith("--db="):
            found = arg.removeprefix("--db=")
    return found


def resolve(
    settings: Settings,
    tag: str | None,
    *,
    flavour: Flavour | None = None,
    image_config: ImageConfigOf = _from_engine,
) -> Stack:
    """Ask Compose for the resolved model with the tag set, then find the database."""
    compose = compose_for(settings, flavour)
    env = {settings.tag_variable: tag} if tag else {}
    result = run(
        compose.config(), env=env, cwd=str(settings.compose_file.resolve().parent), timeout=60
    )
    if not result.ok:
        raise ConfigError(
            f"compose cannot read {settings.compose_file}: {result.tail(3)}",
            hint="check it with `docker compose config`",
        )
    service = parse(result.stdout, settings.service, str(settings.compose_file))
    db_container = database_in_container(service, image_config(service.image))
    db = settings.db_path or host_path(db_container, service.binds)
    if db is None:
        raise ConfigError(
            f"the database {db_container} of service {service.name} is not on a bind mount",
            hint="bind-mount its folder (e.g. ./data:/data) or pass --db-path",
        )
    backup_container = service.environment.get(BACKUP_DIR_ENV)
    backups = settings.backup_dir or (
        host_path(PurePosixPath(backup_container), service.binds) if backup_container else None
    )
    return Stack(
        compose=compose,
        service=service,
        db_path=Path(db),
        db_container_path=db_container,
        backup_dir=Path(backups) if backups else Path(db).parent / "backups",
    )


def room_for_deploy(stack: Stack, state_dir: Path) -> None:
    """Refuse, before anything is touched, a deploy whose disks cannot hold the rehearsal's
    snapshot and the entrypoint's backup of the database, with a margin.

    The host-side twin of the entrypoint's room_for_backup, which asks the same of the
    backup folder alone, in the container, when the deploy is already under way.
    """
    size = stack.db_path.stat().st_size if stack.db_path.exists() else 0
    for folder in {stack.db_path.parent, state_dir}:
        probe = folder if folder.exists() else folder.parent
        check_room(size, shutil.disk_usage(probe).free, str(probe))


def check_room(size: int, free: int, where: str) -> None:
    """Room for a snapshot and a backup of a `size`-byte database, with a margin."""
    needed = 2 * size + (64 << 20)
    if free < needed:
        raise PreflightFailed(
            f"not enough free disk in {where}: need {needed >> 20} MiB for a snapshot and a "
            f"backup of the {size >> 20} MiB database, {free >> 20} MiB free",
            hint="free some space before deploying",
        )
