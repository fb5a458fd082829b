"""Fleet deploys on three real Docker engines (scripts/engines.sh starts them on this machine:
each its own dockerd, socket, data root and bridge), one of them reached over ssh:// through an
sshd on 127.0.0.1. Each host has its own stack folder, project, port and database.

The stories run in order on one fleet (each starts from where the one before left it):
a first release to all three; a preflight that meets an unreachable host and one that meets a
held lock (nothing touched anywhere); a good release (canary, then two at once); a release that
crashes on host 2 only (halt: host 1 stays, host 2 is rolled back with its database restored,
host 3 never touched); the same with rollback-all (host 1 rolled back too).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from stack import (
    DEMO_COMPOSE,
    ROOT,
    CommandError,
    build_variant,
    free_port,
    http_get,
    litedeploy_image,
)

pytestmark = [pytest.mark.docker, pytest.mark.fleet]

TABLES = {
    f"v{n}": f"CREATE TABLE `fleet_v{n}` (`id` integer PRIMARY KEY NOT NULL);" for n in (2, 3, 4)
}
LOCK_LABEL = "io.litedeploy.lock."


def engines() -> tuple[list[str], list[str], str]:
    """The engines' unix endpoints, their ssh:// endpoints and the ssh wrapper's folder, which
    scripts/test.sh exports (FLEET_ENGINES, FLEET_SSH_ENDPOINTS, FLEET_SSH_PATH)."""
    unix = os.environ.get("FLEET_ENGINES", "").split()
    ssh = os.environ.get("FLEET_SSH_ENDPOINTS", "").split()
    path = os.environ.get("FLEET_SSH_PATH", "")
    if len(unix) < 3 or len(ssh) < 3 or not path:
        pytest.fail(
            "the fleet tests need three extra engines: run them through scripts/test.sh, which "
            "starts them (scripts/engines.sh) and sets FLEET_ENGINES, FLEET_SSH_ENDPOINTS and "
            "FLEET_SSH_PATH",
            pytrace=False,
        )
    return unix, ssh, path


def on(engine: str, *args: str, check: bool = True, stdin: Any = None) -> str:
    """`docker ARGS` against one engine."""
    done = subprocess.run(
        ["docker", *args],
        env={**os.environ, "DOCKER_HOST": engine},
        capture_output=True,
        text=stdin is None,
        timeout=600,
        check=False,
        stdin=stdin,
    )
    if check and done.returncode != 0:
        raise CommandError(f"docker {' '.join(args)} on {engine}: {done.stderr!r}")
    out = done.stdout
    return out if isinstance(out, str) else out.decode()


def image_id(engine: str | None, ref: str) -> str | None:
    argv = ["image", "inspect", "--format", "{{.Id}}", ref]
    if engine is None:
        done = subprocess.run(["docker", *argv], capture_output=True, text=True, check=False)
        return done.stdout.strip() if done.returncode == 0 else None
    try:
        return on(engine, *argv).strip()
    except CommandError:
        return None


def load(engine: str, refs: dict[str, str]) -> None:
    """Put main-engine images on `engine` under other names: {name there: image here}; moved
    with docker save | docker load when that engine lacks them."""
    missing = sorted(
        {src for dst, src in refs.items() if image_id(engine, dst) != image_id(None, src)}
    )
    if missing:
        saver = subprocess.Popen(["docker", "save", *missing], stdout=subprocess.PIPE)
        on(engine, "load", "-q", stdin=saver.stdout)
        assert saver.wait(timeout=600) == 0
    for dst, src in refs.items():
        if dst != src:
            on(engine, "tag", src, dst)


@dataclass
class Host:
    name: str
    engine: str  # its unix endpoint: how the test looks at it
    endpoint: str  # how deploy.yml names it
    dir: Path
    project: str
    port: int

    @property
    def db(self) -> Path:
        return self.dir / "data" / "app.db"

    def container(self) -> dict[str, Any] | None:
        ids = on(
            self.engine, "ps", "-aq", "--filter", f"label=com.docker.compose.project={self.project}"
        ).split()
        if not ids:
            return None
        data: list[dict[str, Any]] = json.loads(on(self.engine, "inspect", ids[0]))
        return data[0]

    def image(self) -> str | None:
        info = self.container()
        return None if info is None else str(info["Config"]["Image"])

    def started_at(self) -> str | None:
        info = self.container()
        return None if info is None else str(info["State"]["StartedAt"])

    def tables(self) -> set[str]:
        import sqlite3

        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        finally:
            conn.close()

    def history(self, fleet_dir: Path) -> list[dict[str, Any]]:
        path = fleet_dir / ".litedeploy" / "hosts" / self.name / "history.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def locks(self) -> list[str]:
        return on(
            self.engine, "ps", "-aq", "--filter", f"name=litedeploy-lock-{self.project}"
        ).split()

    def down(self) -> None:
        subprocess.run(
            [
                "docker",
                "compose",
                "-p",
                self.project,
                "-f",
                str(self.dir / "docker-compose.yml"),
                "down",
                "-v",
                "-t",
                "0",
            ],
            env={**os.environ, "DOCKER_HOST": self.engine},
            capture_output=True,
            timeout=120,
            check=False,
        )
        for lock in self.locks():
            on(self.engine, "rm", "-f", lock, check=False)


def new_host(root: Path, name: str, engine: str, endpoint: str, project: str) -> Host:
    """A host's own stack folder: the demo's compose file, ./data, an env file with its port."""
    folder = root / name
    (folder / "data").mkdir(parents=True)
    compose = re.sub(r"\n\s*build: \.\n", "\n", DEMO_COMPOSE.read_text())
    (folder / "docker-compose.yml").write_text(compose)
    port = free_port()
    (folder / "app.env").write_text(f"APP_PORT={port}\n")
    return Host(name, engine, endpoint, folder, project, port)


def hold_lock(owner: Host, /, **labels: str) -> None:
    """The host's lock, as a deploy described by `labels` would have left it."""
    argv = ["create", "--name", f"litedeploy-lock-{owner.project}"]
    for key, value in labels.items():
        argv += ["--label", f"{LOCK_LABEL}{key}={value}"]
    on(owner.engine, *argv, "--entrypoint", "true", litedeploy_image())


def write_deploy_yml(root: Path, hosts: list[Host], *top: str) -> None:
    """The fleet's deploy.yml: `top` lines, then each host with its stack folder's files."""
    lines = [*top, "hosts:"]
    for h in hosts:
        lines += [
            f"  - name: {h.name}",
            f"    docker_host: {h.endpoint}",
            f"    compose_file: {h.name}/docker-compose.yml",
            f"    env_file: {h.name}/app.env",
            f"    project: {h.project}",
        ]
    (root / "deploy.yml").write_text("\n".join(lines) + "\n")


@dataclass
class Fleet:
    dir: Path
    hosts: list[Host]
    ssh_path: str

    def deploy(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "PATH": f"{self.ssh_path}:{os.environ['PATH']}",
        }
        return subprocess.run(
            [sys.executable, "-m", "deploy", "--compose", "v2", *args],
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def state(self) -> list[tuple[str | None, str | None]]:
        return [(h.image(), h.started_at()) for h in self.hosts]


@pytest.fixture(scope="module")
def fleet_images(demo_image: str) -> dict[str, str]:
    """v2..v4 (a table each, on v1), and v3, v4 that crash after migrating, built once."""
    built = {"v1": demo_image}
    migrations: dict[str, str] = {}
    for n in (2, 3, 4):
        migrations[f"01{n:02d}_fleet_v{n}"] = TABLES[f"v{n}"]
        built[f"v{n}"] = build_variant(f"fleet-v{n}", migrations=dict(migrations))
        if n > 2:
            built[f"v{n}-crash"] = build_variant(
                f"fleet-v{n}-crash", migrations=dict(migrations), env={"DEMO_FAIL": "crash"}
            )
    return built


@pytest.fixture(scope="module")
def fleet(
    tmp_path_factory: pytest.TempPathFactory, fleet_images: dict[str, str]
) -> Iterator[Fleet]:
    unix, ssh, ssh_path = engines()
    root = tmp_path_factory.mktemp("fleet")
    hosts = []
    uid = uuid.uuid4().hex[:8]
    for i in range(3):
        name = f"h{i + 1}"
        # Host 2 is reached over ssh://; the others over their sockets.
        endpoint = ssh[i] if i == 1 else unix[i]
        hosts.append(new_host(root, name, unix[i], endpoint, f"ldfleet-{uid}-{name}"))
        # What each engine must have: litedeploy's image (it handles the files there) and the
        # releases; host 2's v3 and v4 are the crashing builds, under the same tags.
        refs = {litedeploy_image(): litedeploy_image()}
        for release in ("v1", "v2", "v3", "v4"):
            crash = i == 1 and release in ("v3", "v4")
            refs[f"litedeploy-demo:{release}"] = fleet_images[
                f"{release}-crash" if crash else release
            ]
        load(unix[i], refs)
    write_deploy_yml(root, hosts, "health_timeout: 60")
    made = Fleet(root, hosts, ssh_path)
    try:
        yield made
    finally:
        for h in hosts:
            h.down()
        shutil.rmtree(root, ignore_errors=True)


def said(done: subprocess.CompletedProcess[str]) -> str:
    return f"exit {done.returncode}\n--- stderr\n{done.stderr}\n--- stdout\n{done.stdout}"


def test_a_first_release_goes_to_every_host(fleet: Fleet) -> None:
    done = fleet.deploy("--tag", "v1", "--parallel", "2")
    assert done.returncode == 0, said(done)
    for h in fleet.hosts:
        assert h.image() == "litedeploy-demo:v1"
        status, body = http_get(f"http://127.0.0.1:{h.port}/health")
        assert status == 200, body
        assert [r["outcome"] for r in h.history(fleet.dir)] == ["deployed"]
        assert h.locks() == []
    assert "fleet: 3 deployed" in done.stderr
    assert "[h2] ✓ preflight" in done.stderr  # host 2's own lines, over ssh


def test_an_unreachable_host_at_preflight_touches_nothing(fleet: Fleet) -> None:
    before = fleet.state()
    text = (fleet.dir / "deploy.yml").read_text()
    broken = text.replace(fleet.hosts[2].endpoint, "unix:///run/litedeploy-fleet/none/docker.sock")
    (fleet.dir / "broken.yml").write_text(broken)
    done = fleet.deploy("--config", "broken.yml", "--tag", "v2", "--json")
    assert done.returncode == 3, said(done)
    report = json.loads(done.stdout)
    assert [h["state"] for h in report["hosts"]] == ["not-started"] * 3
    assert "Docker is not reachable" in report["preflight"]["h3"]["error"]
    assert "preflight failed on h3; no host was touched" in done.stderr
    assert fleet.state() == before
    for h in fleet.hosts:
        assert len(h.history(fleet.dir)) == 1
        assert h.locks() == []


def test_a_lock_held_on_one_host_touches_nothing(fleet: Fleet) -> None:
    before = fleet.state()
    h2 = fleet.hosts[1]
    hold_lock(
        h2,
        deploy_id="20261203T000000Z-abcdef",
        pid="4242",
        host="another-operators-laptop",
        target="litedeploy-demo:v9",
        since="1764720000",
    )
    try:
        done = fleet.deploy("--tag", "v2")
        assert done.returncode == 7, said(done)
        assert "another deploy holds the lock on ssh://" in done.stderr
        assert "deploy 20261203T000000Z-abcdef" in done.stderr
        assert "another-operators-laptop" in done.stderr
        assert fleet.state() == before
        assert all(len(h.history(fleet.dir)) == 1 for h in fleet.hosts)
    finally:
        on(h2.engine, "rm", "-f", f"litedeploy-lock-{h2.project}")


def test_a_good_release_canary_first_then_two_at_once(fleet: Fleet) -> None:
    done = fleet.deploy("--tag", "v2", "--parallel", "2", "--json")
    assert done.returncode == 0, said(done)
    report = json.loads(done.stdout)
    assert report["canary"] == ["h1"] and report["batches"] == [["h2", "h3"]]
    assert [h["state"] for h in report["hosts"]] == ["deployed"] * 3
    for h in fleet.hosts:
        assert h.image() == "litedeploy-demo:v2"
        assert "fleet_v2" in h.tables()
        assert [r["outcome"] for r in h.history(fleet.dir)] == ["deployed", "deployed"]
        assert h.locks() == []
    # The canary finished before the others started: its deploy ended before theirs began.
    h1_end = fleet.hosts[0].history(fleet.dir)[-1]
    others = [h.history(fleet.dir)[-1] for h in fleet.hosts[1:]]
    assert all(o["deploy_id"] > h1_end["deploy_id"] for o in others)
    status = fleet.deploy("status")
    assert status.returncode == 0, said(status)
    for h in fleet.hosts:
        assert f"== {h.name} ({h.endpoint})" in status.stdout
    assert status.stdout.count("litedeploy-demo:v2 (running, health healthy)") == 3


def test_a_release_crashing_on_host_2_halts_there(fleet: Fleet) -> None:
    h1, h2, h3 = fleet.hosts
    h3_before = (h3.image(), h3.started_at(), h3.db.read_bytes())
    h2_tables = h2.tables()
    done = fleet.deploy("--tag", "v3", "--json")
    assert done.returncode == 5, said(done)
    report = json.loads(done.stdout)
    states = [(h["name"], h["state"], h["outcome"]) for h in report["hosts"]]
    assert states == [
        ("h1", "deployed", "deployed"),
        ("h2", "failed", "rolled-back"),
        ("h3", "not-started", None),
    ]
    assert report["halted_at"] == "h2"
    assert "h1 stays on the new release" in done.stderr
    assert h1.image() == "litedeploy-demo:v3" and "fleet_v3" in h1.tables()
    # Host 2: the previous image, and its database from before the migration.
    assert h2.image() == "litedeploy-demo:v2"
    assert h2.tables() == h2_tables and "fleet_v3" not in h2.tables()
    assert h2.history(fleet.dir)[-1]["outcome"] == "rolled-back"
    assert http_get(f"http://127.0.0.1:{h2.port}/health")[0] == 200
    quarantine = h2.dir / "data" / "quarantine"
    assert quarantine.is_dir() and any(quarantine.iterdir()), "the replaced files are kept"
    # Host 3: never touched.
    assert (h3.image(), h3.started_at(), h3.db.read_bytes()) == h3_before
    assert len(h3.history(fleet.dir)) == 2
    assert all(h.locks() == [] for h in fleet.hosts)


def test_rollback_all_brings_the_done_hosts_back_too(fleet: Fleet) -> None:
    h1, h2, h3 = fleet.hosts
    h1_tables = h1.tables()
    done = fleet.deploy("--tag", "v4", "--on-failure", "rollback-all", "--json")
    assert done.returncode == 5, said(done)
    report = json.loads(done.stdout)
    assert [h["state"] for h in report["hosts"]] == ["rolled-back", "failed", "not-started"]
    # `deploy rollback` starts the image it kept (rollback-<deploy id>): v3's, by its id.
    running = h1.container()
    assert running is not None and running["Image"] == image_id(h1.engine, "litedeploy-demo:v3")
    assert h1.tables() == h1_tables and "fleet_v4" not in h1.tables()
    assert [r["outcome"] for r in h1.history(fleet.dir)][-2:] == ["deployed", "rolled-back-by-hand"]
    assert h2.image() == "litedeploy-demo:v2"
    assert h3.image() == "litedeploy-demo:v2"
    assert report["summary"] == {"rolled-back-all": 1, "rolled-back": 1, "not-started": 1}
    assert "fleet: 1 rolled back by rollback-all, 1 rolled back, 1 not started" in done.stderr


def test_a_lock_left_by_a_dead_deploy_of_this_machine_is_taken_over(fleet: Fleet) -> None:
    h1 = fleet.hosts[0]
    dead = subprocess.Popen(["true"])
    dead.wait()
    hold_lock(
        h1,
        deploy_id="20261203T000000Z-dead01",
        pid=str(dead.pid),
        host=socket.gethostname(),
        target="litedeploy-demo:v3",
        since="1764720000",
    )
    done = fleet.deploy("--host", "h1", "--tag", "v3")
    assert done.returncode == 0, said(done)
    assert "the previous deploy 20261203T000000Z-dead01" in done.stderr
    assert "taking over" in done.stderr
    assert h1.locks() == []


def test_compose_v1_deploys_a_fleet_too(
    tmp_path_factory: pytest.TempPathFactory, fleet_images: dict[str, str]
) -> None:
    """Compose v1 (the Python docker-compose) on two hosts, one over ssh://."""
    unix, ssh, ssh_path = engines()
    root = tmp_path_factory.mktemp("fleet-v1")
    uid = uuid.uuid4().hex[:8]
    hosts = []
    for i, endpoint in ((0, unix[0]), (2, ssh[2])):
        name = f"v1h{i + 1}"
        hosts.append(new_host(root, name, unix[i], endpoint, f"ldfleet1-{uid}-{name}"))
    write_deploy_yml(root, hosts)
    made = Fleet(root, hosts, ssh_path)
    try:
        for tag in ("v1", "v2"):
            done = made.deploy("--compose", "v1", "--tag", tag, "--parallel", "2")
            assert done.returncode == 0, said(done)
        for h in hosts:
            assert h.image() == "litedeploy-demo:v2"
            assert "fleet_v2" in h.tables()
            labels = (h.container() or {}).get("Config", {}).get("Labels", {})
            assert labels.get("com.docker.compose.version", "").startswith("1.")
    finally:
        for h in hosts:
            h.down()
