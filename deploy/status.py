"""`deploy status`, read: what runs, the migrations the database records, its newest backups
and the last deploy. Nothing is started, stopped or written; cli.py prints the result.

The database is read with the entrypoint's own code (its history table, its backups), so
the host says what the container would.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from docker.models.containers import Container

from entrypoint.base.errors import UsageError
from entrypoint.engine import history
from entrypoint.engine.sources import Format
from entrypoint.safetynet.backup import Backup
from entrypoint.safetynet.database import uri

from . import engine, records
from .config import Settings
from .datafolder import DataFolder, for_stack
from .stack import Stack, resolve

NEWEST_BACKUPS = 3  # how many backups status lists
# The history tables the host looks for without the image's settings, in this order, and the
# source format that names each (LITEDEPLOY_MIGRATIONS_TABLE set to another name is the
# image's to read).
HISTORY_TABLES = (Format.DRIZZLE_JOURNAL, Format.SQL)


@dataclass(frozen=True)
class Running:
    """The service's container, as Docker describes it."""

    container: str | None
    image: str | None  # as the container was created with it (a tag, usually)
    image_id: str  # the short id: 12 hex digits
    status: str | None  # running, restarting, exited...
    health: str | None  # None without a healthcheck
    started_at: str | None


@dataclass(frozen=True)
class StackStatus:
    """One stack's state, as `deploy status` shows it."""

    service: str
    project: str
    database: Path  # on the host
    running: Running | None  # None: no container of the service
    migrations: str  # applied, the latest, the history table (by the image when it runs)
    backups: list[Backup]  # the newest NEWEST_BACKUPS, oldest first
    last_deploy: dict[str, Any] | None  # the newest record of `deploy history`, if any

    def as_dict(self) -> dict[str, Any]:
        """What `deploy status --json` prints (the deploy history is `deploy history`'s)."""
        return {
            "service": self.service,
            "project": self.project,
            "database": str(self.database),
            "running": asdict(self.running) if self.running is not None else None,
            "migrations": self.migrations,
            "latest_backups": [{"path": str(b.path), **asdict(b.manifest)} for b in self.backups],
        }


def stack_status(settings: Settings) -> StackStatus:
    """The stack's status: Docker must answer; the compose file names the service."""
    client = engine.connect()
    stack = resolve(settings, settings.tag)
    container = engine.service_container(client, stack.project, stack.service.name)
    folder = for_stack(settings, stack)
    return status_of(stack, container, folder, settings.state, remote=folder.remote)


def status_of(
    stack: Stack,
    container: Container | None,
    folder: DataFolder,
    state_dir: Path,
    *,
    remote: bool = False,
) -> StackStatus:
    """The status of a resolved stack whose container (or None) is known. On another host
    (`remote`) the database is not read from here: only a running container is asked."""
    newest = folder.backups()[-NEWEST_BACKUPS:]
    deploys = records.read(state_dir)
    if remote:
        head = named_head(container) or "unknown (no running container of the app to ask)"
    else:
        head = named_head(container) or recorded_head(stack.db_path)
    return StackStatus(
        service=stack.service.name,
        project=stack.project,
        database=stack.db_path,
        running=running(container) if container is not None else None,
        migrations=head,
        backups=newest,
        last_deploy=deploys[-1] if deploys else None,
    )


def running(container: Container) -> Running:
    """What Docker says of a container: its image, state and health."""
    attrs = container.attrs
    state = attrs.get("State", {})
    return Running(
        container=container.name,
        image=attrs.get("Config", {}).get("Image"),
        image_id=str(attrs.get("Image", ""))[7:19],  # "sha256:" and 12 digits
        status=state.get("Status"),
        health=(state.get("Health") or {}).get("Status"),
        started_at=state.get("StartedAt"),
    )


def named_head(container: Container | None) -> str | None:
    """The migrations as the running image names them (its entrypoint's `status --json`);
    None without a container whose entrypoint answers."""
    if container is None:
        return None
    data = engine.entrypoint_status(container)
    if data is None:
        return None
    states = Counter(str(m.get("state")) for m in data.get("migrations") or [])
    applied = states.pop("applied", 0)
    extra = "".join(f", {n} {state}" for state, n in sorted(states.items()))
    return (
        f"{applied} applied, latest {data.get('head') or '-'}{extra} ({data.get('history_table')})"
    )


def recorded_head(db: Path) -> str:
    """How many migrations the database's history table records, and the latest, read on the
    host (read-only) by the entrypoint's history code: drizzle's table, else litedeploy's."""
    if not db.exists():
        return "no database yet"
    try:
        with contextlib.closing(sqlite3.connect(uri(db), uri=True)) as conn:
            for fmt in HISTORY_TABLES:
                table = history.locate(conn, fmt)
                if table.exists:
                    rows = history.read(conn, table)
                    return f"{len(rows)} applied, latest {_latest(table, rows)} ({table.name})"
    except sqlite3.Error as exc:
        return f"unreadable: {exc}"
    except UsageError as exc:  # a table of that name that is not a history table
        return f"unreadable: {exc.message}"
    return "no history table"


def _latest(table: history.HistoryTable, rows: list[history.Row]) -> str:
    """The newest row by name; drizzle 0.x rows have none, so by their created_at."""
    if not rows:
        return "-"
    last = rows[-1]
    return str(last.created_at if table.kind is history.Kind.DRIZZLE_V0 else last.name)
