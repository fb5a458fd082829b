"""`deploy status` without Docker: status.py on real SQLite files, backups and deploy records,
with a stand-in for the one thing Docker gives (a container's `inspect` and `exec`), and the
CLI's printing of it, text and JSON.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from harness import applied, write_folders, write_journal, write_plain
from typer.testing import CliRunner

from deploy import cli, records
from deploy.compose import Compose, Flavour, Service
from deploy.datafolder import DataFolder
from deploy.stack import Stack
from deploy.status import Running, StackStatus, recorded_head, status_of
from entrypoint.safetynet.backup import take_backup
from entrypoint.settings import Policy

TWO = [("0000_users", "CREATE TABLE users (id INTEGER);"), ("0001_posts", "CREATE TABLE p (x);")]
IMAGE_ID = "sha256:0123456789ab" + "c" * 52


@dataclass
class Exec:
    exit_code: int
    output: tuple[bytes | None, bytes | None]


@dataclass
class Container:
    """What status reads of a docker-py Container: its name, `inspect`, and `exec`."""

    name: str
    attrs: dict[str, Any]
    answer: Exec | None = None
    ran: list[list[str]] = field(default_factory=list)

    def exec_run(self, argv: list[str], demux: bool) -> Exec:
        self.ran.append(argv)
        assert self.answer is not None and demux
        return self.answer


def container(entrypoint: list[str], answer: Exec | None = None) -> Container:
    return Container(
        name="shop-app-1",
        attrs={
            "Image": IMAGE_ID,
            "Config": {"Image": "shop:v2", "Entrypoint": entrypoint},
            "State": {
                "Status": "running",
                "Health": {"Status": "healthy", "Log": []},
                "StartedAt": "2026-12-02T10:00:00.5Z",
            },
        },
        answer=answer,
    )


def stack(tmp_path: Path) -> Stack:
    return Stack(
        compose=Compose(Flavour.V2, (tmp_path / "docker-compose.yml",), "shop"),
        service=Service(name="app", image="shop:v2", environment={}, binds=[]),
        db_path=tmp_path / "data" / "app.db",
        db_container_path=PurePosixPath("/data/app.db"),
        backup_dir=tmp_path / "data" / "backups",
    )


def migrated(db: Path, folder: Path) -> Path:
    db.parent.mkdir(parents=True, exist_ok=True)
    applied(db, folder, backup=Policy.NEVER)
    return db


# -- the head the database records, read on the host ----------------------------------------


def test_a_drizzle_0x_history_is_named_by_its_time(tmp_path: Path) -> None:
    db = migrated(tmp_path / "app.db", write_journal(tmp_path / "m", TWO))
    assert recorded_head(db) == "2 applied, latest 1740000001000 (__drizzle_migrations)"


def test_a_drizzle_1_history_by_its_name(tmp_path: Path) -> None:
    folder = write_folders(tmp_path / "m", [("20260101000000_a", "CREATE TABLE a (x);")])
    db = migrated(tmp_path / "app.db", folder)
    assert recorded_head(db) == "1 applied, latest 20260101000000_a (__drizzle_migrations)"


def test_litedeploys_own_history(tmp_path: Path) -> None:
    db = migrated(tmp_path / "app.db", write_plain(tmp_path / "m", TWO))
    assert recorded_head(db) == "2 applied, latest 0001_posts (__litedeploy_migrations)"


def test_without_a_history(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    assert recorded_head(db) == "no database yet"
    db.write_bytes(b"")
    assert recorded_head(db) == "no history table"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE __drizzle_migrations (id SERIAL, hash text, created_at numeric)")
        conn.commit()
    assert recorded_head(db) == "0 applied, latest - (__drizzle_migrations)"


def test_what_is_not_a_history_is_unreadable(tmp_path: Path) -> None:
    junk = tmp_path / "junk.db"
    junk.write_text("not an SQLite database" * 10)
    assert recorded_head(junk) == "unreadable: file is not a database"
    db = tmp_path / "app.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE __drizzle_migrations (title TEXT)")  # the app's own table
        conn.commit()
    said = recorded_head(db)
    assert said.startswith("unreadable: table '__drizzle_migrations' exists and is not a drizzle")


# -- the whole status ------------------------------------------------------------------------


def test_nothing_runs_and_the_newest_three_backups(tmp_path: Path) -> None:
    current = stack(tmp_path)
    migrated(current.db_path, write_plain(tmp_path / "m", TWO))
    made = [
        take_backup(current.db_path, current.backup_dir, deploy_id=f"d{i}", head_before="0000")
        for i in range(4)
    ]
    records.append(tmp_path / "state", {"deploy_id": "d2", "outcome": "deployed"})
    records.append(tmp_path / "state", {"deploy_id": "d3", "outcome": "rolled-back"})
    folder = DataFolder(current.db_path, current.backup_dir)

    found = status_of(current, None, folder, tmp_path / "state")

    assert found.running is None
    assert [b.manifest.deploy_id for b in found.backups] == ["d1", "d2", "d3"]
    assert found.last_deploy == {"deploy_id": "d3", "outcome": "rolled-back"}
    shown = found.as_dict()
    assert list(shown) == [
        "service",
        "project",
        "database",
        "running",
        "migrations",
        "latest_backups",
    ]
    assert shown["service"] == "app" and shown["project"] == "shop"
    assert shown["database"] == str(current.db_path)
    assert shown["running"] is None
    assert shown["migrations"] == "2 applied, latest 0001_posts (__litedeploy_migrations)"
    assert shown["latest_backups"] == [
        {"path": str(b.path), **asdict(b.manifest)} for b in made[1:]
    ]
    assert json.loads(json.dumps(shown)) == shown  # JSON as it is


def test_a_first_deploy_has_nothing_yet(tmp_path: Path) -> None:
    current = stack(tmp_path)
    found = status_of(current, None, DataFolder(current.db_path, current.backup_dir), tmp_path)
    assert (found.migrations, found.backups, found.last_deploy) == ("no database yet", [], None)


def test_what_runs_and_the_image_naming_its_migrations(tmp_path: Path) -> None:
    said = {
        "head": "0001_posts",
        "history_table": "__drizzle_migrations",
        "migrations": [{"state": "applied"}, {"state": "applied"}, {"state": "pending"}],
    }
    running = container(
        ["/opt/litedeploy/entrypoint", "run", "--"], Exec(0, (json.dumps(said).encode(), None))
    )
    current = stack(tmp_path)
    folder = DataFolder(current.db_path, current.backup_dir)

    found = status_of(current, running, folder, tmp_path)  # type: ignore[arg-type]

    assert running.ran == [["/opt/litedeploy/entrypoint", "status", "--json"]]
    assert found.migrations == "2 applied, latest 0001_posts, 1 pending (__drizzle_migrations)"
    assert found.running == Running(
        container="shop-app-1",
        image="shop:v2",
        image_id="0123456789ab",
        status="running",
        health="healthy",
        started_at="2026-12-02T10:00:00.5Z",
    )
    assert list(found.as_dict()["running"]) == [
        "container",
        "image",
        "image_id",
        "status",
        "health",
        "started_at",
    ]


def test_an_image_without_litedeploys_entrypoint_is_read_on_the_host(tmp_path: Path) -> None:
    current = stack(tmp_path)
    migrated(current.db_path, write_journal(tmp_path / "m", TWO))
    other = container(["docker-entrypoint.sh"])
    other.attrs["State"] = {"Status": "exited", "StartedAt": "2026-12-02T10:00:00Z"}
    folder = DataFolder(current.db_path, current.backup_dir)

    found = status_of(current, other, folder, tmp_path)  # type: ignore[arg-type]

    assert other.ran == []
    assert found.migrations == "2 applied, latest 1740000001000 (__drizzle_migrations)"
    assert found.running is not None and found.running.health is None


# -- the CLI prints it, and only prints it ---------------------------------------------------


def _status(tmp_path: Path) -> StackStatus:
    current = stack(tmp_path)
    migrated(current.db_path, write_plain(tmp_path / "m", TWO))
    take_backup(current.db_path, current.backup_dir, deploy_id="d1", head_before="0000_users")
    take_backup(current.db_path, current.backup_dir)
    running = container(["node", "server.js"])
    folder = DataFolder(current.db_path, current.backup_dir)
    return status_of(current, running, folder, tmp_path)  # type: ignore[arg-type]


@pytest.fixture
def printed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LITEDEPLOY_CONFIG", raising=False)

    def run(found: StackStatus, *args: str) -> str:
        monkeypatch.setattr(cli, "stack_status", lambda settings: found)
        result = CliRunner().invoke(cli.app, list(args))
        assert result.exit_code == 0, result.stderr
        return result.stdout

    return run


def test_the_text(tmp_path: Path, printed: Any) -> None:
    found = _status(tmp_path)
    first, second = found.backups
    assert printed(found, "status") == (
        "service:    app (project shop)\n"
        "running:    shop:v2 (0123456789ab), running, health healthy, "
        "since 2026-12-02T10:00:00.5Z\n"
        f"database:   {tmp_path / 'data' / 'app.db'}\n"
        "migrations: 2 applied, latest 0001_posts (__litedeploy_migrations)\n"
        "backups:\n"
        f"  {first.path.name}  {first.manifest.created_at}  head before: 0000_users  deploy d1\n"
        f"  {second.path.name}  {second.manifest.created_at}  head before: -  deploy -\n"
    )


def test_the_text_when_nothing_runs_and_no_backup_exists(tmp_path: Path, printed: Any) -> None:
    current = stack(tmp_path)
    found = status_of(current, None, DataFolder(current.db_path, current.backup_dir), tmp_path)
    assert printed(found, "status") == (
        "service:    app (project shop)\n"
        "running:    nothing\n"
        f"database:   {current.db_path}\n"
        "migrations: no database yet\n"
        "backups:    none\n"
    )


def test_the_json_before_or_after_the_command(tmp_path: Path, printed: Any) -> None:
    found = _status(tmp_path)
    expected = json.dumps(found.as_dict(), indent=2) + "\n"
    assert printed(found, "status", "--json") == expected
    assert printed(found, "--json", "status") == expected
