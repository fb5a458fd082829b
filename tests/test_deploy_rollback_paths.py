"""Every branch of the Deployer's rollback, restore and refusal paths, fast: a small fake
Docker host (deploy/host.py's Host) in front of real SQLite files, real backups, the real
restore with its quarantine, the real lock and the real history file.

The same paths run end to end against a real engine and Compose in tests/deploy/; these
reach the branches a real engine makes slow or hard to provoke (a failing `compose stop`,
the previous version failing too, the engine vanishing mid-step).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

import pytest
import requests
import yaml

from deploy import records
from deploy.compose import Compose, Flavour, Service
from deploy.config import Settings
from deploy.deployer import Deployer, Outcome
from deploy.errors import (
    Aborted,
    DeployError,
    FolderError,
    PreflightFailed,
    RollbackFailed,
    RolledBack,
    StepFailed,
    exit_code,
)
from deploy.health import Unhealthy
from deploy.host import Running
from deploy.runner import Result
from deploy.stack import Stack
from entrypoint.safetynet.backup import take_backup

REPOSITORY = "shop"
ENTRYPOINT = ["/opt/litedeploy/entrypoint", "run", "--"]


@dataclass
class Version:
    """What a tag does when Compose starts it: migrate (taking its backup first, as the
    entrypoint does) and then come up healthy or not."""

    migrate: str | None = None  # SQL the entrypoint applies; None: nothing pending
    healthy: bool = True


@dataclass
class FakeHost:
    """The Docker host, as small as the Deployer needs it. Databases and backups are real."""

    db: Path
    backup_dir: Path
    versions: dict[str, Version]
    running_tag: str | None = None
    stop_fails: bool = False
    up_fails: set[str] = field(default_factory=set)
    rehearsal_fails: bool = False
    engine_gone_at: str | None = None  # a method name: the engine stops answering there
    calls: list[str] = field(default_factory=list)
    images: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for tag in self.versions:
            self.images[f"{REPOSITORY}:{tag}"] = f"sha256:{tag:0<64}"

    def _gone(self, method: str) -> None:
        if self.engine_gone_at == method:
            raise requests.exceptions.ConnectionError("connection refused by docker.sock")

    def connect(self) -> None:
        self._gone("connect")

    def resolve(self, settings: Settings, tag: str | None) -> Stack:
        compose = Compose(Flavour.V2, (settings.compose_file.resolve(),), "shop")
        image = f"{REPOSITORY}:{tag or self.running_tag or 'latest'}"
        service = Service("app", image, {"DB_PATH": "/data/app.db"})
        return Stack(compose, service, self.db, PurePosixPath("/data/app.db"), self.backup_dir)

    def running(self, stack: Stack) -> Running | None:
        self._gone("running")
        if self.running_tag is None:
            return None
        image = f"{REPOSITORY}:{self.running_tag}"
        return Running(self.images[image], image)

    def image_id(self, ref: str) -> str | None:
        return self.images.get(ref)

    def keep_image(self, image_id: str, repository: str, tag: str) -> str:
        self._gone("keep_image")
        self.images[f"{repository}:{tag}"] = image_id
        self.versions[tag] = self.versions[self._tag_of(image_id)]
        return f"{repository}:{tag}"

    def _tag_of(self, image_id: str) -> str:
        return next(r.split(":")[1] for r, i in self.images.items() if i == image_id)

    def entrypoint_of(self, ref: str) -> list[str]:
        return ENTRYPOINT

    def prune_rollback_tags(self, repository: str, keep: int, owned: Collection[str]) -> list[str]:
        return []

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
    ) -> Result:
        argv = tuple(argv)
        if argv[:2] == ("docker", "run"):  # the rehearsal, on its snapshot
            self.calls.append("rehearse")
            if self.rehearsal_fails:
                return Result(argv, 1, "", "entrypoint: error: migration 0002 failed\n")
            return Result(argv, 0, "", "entrypoint: rehearsal: the migrations apply\n")
        if "stop" in argv:
            self.calls.append("stop")
            if self.stop_fails:
                return Result(argv, 1, "", "Error response from daemon: cannot stop\n")
            return Result(argv, 0, "", "")
        assert "up" in argv, argv
        tag = (env or {})["APP_TAG"]
        self.calls.append(f"up {tag}")
        if tag in self.up_fails:
            return Result(argv, 1, "", f"pull access denied for {REPOSITORY}:{tag}\n")
        self.running_tag = tag
        override = Path(argv[argv.index("-f", argv.index("-f") + 1) + 1])
        deploy_id = yaml.safe_load(override.read_text())["services"]["app"]["environment"]
        self._entrypoint(self.versions[tag], deploy_id["LITEDEPLOY_DEPLOY_ID"])
        return Result(argv, 0, "", "")

    def _entrypoint(self, version: Version, deploy_id: str) -> None:
        """What litedeploy's entrypoint does at start-up: back up, then migrate."""
        if version.migrate is None or self._migrated():
            return  # nothing pending: no backup, no change
        take_backup(self.db, self.backup_dir, deploy_id=deploy_id, pending=["0002"])
        with contextlib.closing(sqlite3.connect(self.db)) as conn, conn:
            conn.executescript(version.migrate)

    def _migrated(self) -> bool:
        with contextlib.closing(sqlite3.connect(self.db)) as conn:
            return "done" in {r[1] for r in conn.execute("PRAGMA table_info(notes)")}

    def wait_until_healthy(self, stack: Stack, settings: Settings) -> None:
        self._gone("wait_until_healthy")
        self.calls.append(f"health {self.running_tag}")
        assert self.running_tag is not None
        if not self.versions[self.running_tag].healthy:
            raise Unhealthy("container 3f2a9c1d8e7b exited with code 1")

    def failure_lines(self, stack: Stack) -> list[str]:
        return [f"| {self.running_tag} says: boom"]


MIGRATE = "ALTER TABLE notes ADD COLUMN done INTEGER NOT NULL DEFAULT 0;"
WRITES = "INSERT INTO notes(body, done) VALUES ('written by v2 before it failed', 1);"


def write(db: Path, body: str) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("INSERT INTO notes(body) VALUES (?)", (body,))


def dump(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return list(conn.iterdump())


@dataclass
class World:
    """A stack folder with a real database, the fake host and the progress lines."""

    settings: Settings
    host: FakeHost
    lines: list[str]

    def deployer(self, **changes: object) -> Deployer:
        settings = Settings(**{**self.settings.__dict__, **changes})  # type: ignore[arg-type]
        return Deployer(settings, self.lines.append, self.host)

    def history(self) -> list[str]:
        return [str(r["outcome"]) for r in records.read(self.settings.state)]

    def pinned(self) -> str:
        return (self.settings.compose_file.parent / ".env").read_text()


@pytest.fixture
def world(tmp_path: Path) -> World:
    (tmp_path / "docker-compose.yml").write_text("services: {app: {image: 'shop:${APP_TAG}'}}\n")
    db = tmp_path / "data" / "app.db"
    db.parent.mkdir()
    with contextlib.closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO notes(body) VALUES (?)", [("one",), ("two",)])
    host = FakeHost(
        db,
        tmp_path / "data" / "backups",
        {"v1": Version(), "v2": Version(migrate=MIGRATE + WRITES, healthy=False)},
        running_tag="v1",
    )
    settings = Settings(compose_file=tmp_path / "docker-compose.yml", health_timeout=1.0)
    return World(settings, host, [])


def test_a_new_version_that_fails_brings_back_the_previous_image_and_database(
    world: World,
) -> None:
    before = dump(world.host.db)

    with pytest.raises(RolledBack) as caught:
        world.deployer().deploy("v2")

    assert caught.value.exit_code == 5
    assert world.host.calls == ["rehearse", "up v2", "health v2", "stop", "up v1", "health v1"]
    assert dump(world.host.db) == before
    [record] = records.read(world.settings.state)
    assert record["outcome"] == "rolled-back" and record["from_image"] == "shop:v1"
    quarantined = Path(record["quarantine"], "app.db")
    assert "done" in "".join(dump(quarantined))  # the migrated database, kept
    assert "APP_TAG=v1" in world.pinned()
    assert "  | v2 says: boom" in world.lines
    assert any(line.startswith("  1 row(s) (notes 1) differ from ") for line in world.lines)


def test_a_first_deploy_that_fails_leaves_the_service_stopped_and_the_database_restored(
    world: World,
) -> None:
    world.host.running_tag = None
    before = dump(world.host.db)

    with pytest.raises(RolledBack):
        world.deployer().deploy("v2")

    assert world.host.calls == ["rehearse", "up v2", "health v2", "stop"]
    assert dump(world.host.db) == before
    assert "  nothing ran before this deploy: the service stays stopped" in world.lines
    assert world.history() == ["rolled-back"]


def test_nothing_pending_rolls_back_the_image_and_leaves_the_database(world: World) -> None:
    world.host.versions["v2"] = Version(migrate=None, healthy=False)
    write(world.host.db, "three")
    before = world.host.db.read_bytes()

    with pytest.raises(RolledBack):
        world.deployer().deploy("v2")

    assert world.host.db.read_bytes() == before
    assert not world.host.backup_dir.exists()
    [record] = records.read(world.settings.state)
    assert (record["outcome"], record["backup"], record["quarantine"]) == (
        "rolled-back",
        None,
        None,
    )


def test_compose_up_failing_is_rolled_back_like_a_failed_start(world: World) -> None:
    world.host.up_fails = {"v2"}

    with pytest.raises(RolledBack) as caught:
        world.deployer().deploy("v2")

    assert "compose up failed: pull access denied" in caught.value.message
    assert world.host.calls == ["rehearse", "up v2", "stop", "up v1", "health v1"]
    assert world.history() == ["rolled-back"]


def test_a_failed_stop_in_the_rollback_names_the_backup_to_restore(world: World) -> None:
    world.host.stop_fails = True

    with pytest.raises(RollbackFailed) as caught:
        world.deployer().deploy("v2")

    assert caught.value.exit_code == 6
    assert "compose stop failed: Error response from daemon" in caught.value.message
    [backup] = world.host.backup_dir.glob("*.backup")
    assert caught.value.hint is not None
    assert f"`deploy restore {backup.name}`" in caught.value.hint
    # Nothing was replaced: the new version still runs on its migrated database.
    assert "done" in "".join(dump(world.host.db))
    assert world.host.calls[-1] == "stop"
    assert world.history() == ["rollback-failed"]


def test_the_previous_version_failing_too_is_exit_6_with_the_database_restored(
    world: World,
) -> None:
    world.host.versions["v1"].healthy = False
    before = dump(world.host.db)

    with pytest.raises(RollbackFailed) as caught:
        world.deployer().deploy("v2")

    assert "the rollback failed too: container 3f2a9c1d8e7b exited" in caught.value.message
    assert dump(world.host.db) == before  # restored before v1 was started
    assert world.host.calls[-2:] == ["up v1", "health v1"]
    assert world.history() == ["rollback-failed"]


def test_a_failed_rehearsal_touches_nothing(world: World) -> None:
    world.host.rehearsal_fails = True
    before = world.host.db.read_bytes()

    with pytest.raises(Aborted) as caught:
        world.deployer().deploy("v2")

    assert caught.value.exit_code == 4
    assert "migration 0002 failed" in caught.value.message
    assert world.host.calls == ["rehearse"]
    assert world.host.db.read_bytes() == before
    assert world.history() == ["aborted"]


def test_an_image_that_is_not_here_is_refused_and_recorded(world: World) -> None:
    with pytest.raises(PreflightFailed) as caught:
        world.deployer().deploy("v9")

    assert "image shop:v9 is not on this Docker host" in caught.value.message
    assert world.host.calls == []
    assert world.history() == ["preflight-failed"]


def test_the_engine_vanishing_mid_step_is_one_clear_error_recorded(world: World) -> None:
    world.host.engine_gone_at = "keep_image"

    with pytest.raises(StepFailed) as caught:
        world.deployer().deploy("v2")

    assert caught.value.message.startswith("the Docker engine stopped answering during")
    assert world.host.calls == []
    [record] = records.read(world.settings.state)
    assert record["outcome"] == "failed" and record["error"] == caught.value.message


def deployed_v2(world: World) -> None:
    """v2 deployed (its migration applied, healthy), and the pinned tag says so."""
    world.host.versions["v2"] = Version(migrate=MIGRATE)
    world.deployer().deploy("v2")
    assert world.history()[-1] == "deployed"
    assert "done" in "".join(dump(world.host.db))
    world.host.calls.clear()


def test_rollback_refuses_to_drop_rows_written_since_and_stops_nothing(world: World) -> None:
    deployed_v2(world)
    write(world.host.db, "written after the deploy")
    before = world.host.db.read_bytes()

    with pytest.raises(PreflightFailed) as caught:
        world.deployer().rollback_last()

    assert "1 row(s) (notes 1) written since would be dropped" in caught.value.message
    assert world.host.calls == []
    assert world.host.db.read_bytes() == before
    assert world.history() == ["deployed", "rollback-refused"]


def test_rollback_with_discard_writes_brings_back_image_and_backup(world: World) -> None:
    before = dump(world.host.db)
    deployed_v2(world)
    write(world.host.db, "written after the deploy")

    report = world.deployer().rollback_last(discard_writes=True)

    assert report.outcome is Outcome.ROLLED_BACK_BY_HAND
    assert dump(world.host.db) == before
    kept = report.from_image  # what ran: v2, now replaced
    assert kept == "shop:v2" and world.host.running_tag is not None
    assert world.host.running_tag.startswith("rollback-")  # v1, under the tag kept for it
    assert world.host.calls == [
        "rehearse",
        "stop",
        f"up {world.host.running_tag}",
        f"health {world.host.running_tag}",
    ]
    assert world.history() == ["deployed", "rolled-back-by-hand"]


def test_rollback_whose_stop_fails_is_recorded_and_says_how_to_restore(world: World) -> None:
    deployed_v2(world)
    world.host.stop_fails = True

    with pytest.raises(RollbackFailed) as caught:
        world.deployer().rollback_last()

    assert "compose stop failed" in caught.value.message
    assert caught.value.hint is not None and "`deploy restore " in caught.value.hint
    assert world.history() == ["deployed", "rollback-failed"]


def test_restore_puts_the_backup_back_and_starts_the_same_image(world: World) -> None:
    deployed_v2(world)
    [backup] = world.host.backup_dir.glob("*.backup")
    write(world.host.db, "written after the deploy")

    report = world.deployer().restore_now(backup)

    assert report.outcome is Outcome.RESTORED
    assert world.host.calls == ["stop", "up v2", "health v2"]
    # v2's entrypoint migrated the restored database again (a second backup, before it).
    assert len(list(world.host.backup_dir.glob("*.backup"))) == 2
    assert "written after the deploy" not in "".join(dump(world.host.db))
    assert report.quarantine is not None
    assert "written after the deploy" in "".join(dump(Path(report.quarantine, "app.db")))
    assert world.history() == ["deployed", "restored"]


def test_restore_whose_stop_fails_is_written_to_the_history(world: World) -> None:
    """The bug this file was written for: a failed `compose stop` left no line at all."""
    deployed_v2(world)
    [backup] = world.host.backup_dir.glob("*.backup")
    world.host.stop_fails = True
    before = world.host.db.read_bytes()

    with pytest.raises(StepFailed) as caught:
        world.deployer().restore_now(backup)

    assert caught.value.exit_code == 1
    assert world.host.db.read_bytes() == before
    [*_, record] = records.read(world.settings.state)
    assert record["outcome"] == "restore-failed"
    assert record["error"].startswith("compose stop failed")


def test_every_line_in_the_history_is_json_with_a_known_outcome(world: World) -> None:
    with contextlib.suppress(DeployError):
        world.deployer().deploy("v2")
    deployed_v2(world)
    assert world.history() == ["rolled-back", "deployed"]
    lines = records.history_path(world.settings.state).read_text().splitlines()
    assert [Outcome(json.loads(line)["outcome"]) for line in lines] == [
        Outcome.ROLLED_BACK,
        Outcome.DEPLOYED,
    ]


def test_restore_whose_app_does_not_come_back_is_a_failed_step(world: World) -> None:
    deployed_v2(world)
    [backup] = world.host.backup_dir.glob("*.backup")
    world.host.versions["v2"].healthy = False

    with pytest.raises(StepFailed) as caught:
        world.deployer().restore_now(backup)

    assert caught.value.exit_code == 1  # a restore step failed; not 6, a failed rollback
    assert caught.value.message == "restore failed: container 3f2a9c1d8e7b exited with code 1"
    assert world.history() == ["deployed", "restore-failed"]


def test_restore_of_a_damaged_backup_is_refused_recorded_and_exit_1(world: World) -> None:
    deployed_v2(world)
    [backup] = world.host.backup_dir.glob("*.backup")
    with backup.open("r+b") as f:  # a flipped byte in the middle: its checksum no longer holds
        f.seek(backup.stat().st_size // 2)
        byte = f.read(1)
        f.seek(-1, 1)
        f.write(bytes([byte[0] ^ 0xFF]))
    before = world.host.db.read_bytes()

    with pytest.raises(FolderError) as caught:  # the entrypoint's RestoreFailed, carried
        world.deployer().restore_now(backup)

    assert "does not match its manifest" in caught.value.message
    assert exit_code(caught.value, restoring=True) == 1
    assert world.host.db.read_bytes() == before  # the live database was not replaced
    [*_, record] = records.read(world.settings.state)
    assert record["outcome"] == "restore-failed" and record["error"] == caught.value.message
