"""The Docker engine restarted in the middle of a deploy: the next deploy recovers.

A private engine of the test's own (its socket, data root, exec root and bridge; the
images the deploy needs loaded into it from the main engine) is restarted while `deploy`
waits for the new container's health. Whatever that deploy then says, the next deploy of
the same release must deploy it, healthy, with every row the app wrote, and the database
must never be empty in between. A private engine keeps the restart away from whatever else
the machine's engine runs.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import DEMO_COMPOSE, ROOT, Stack, free_port
from test_deploy_scenarios import (
    EXIT_DEPLOYED,
    deploy,
    running_image,
    seed,
    tag_of,
    variants,  # noqa: F401  (the module-scoped fixture the test uses)
)

BRIDGE = "ldrestart0"


def wait_for(host: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        probe = subprocess.run(
            ["docker", "-H", host, "info"], capture_output=True, text=True, check=False
        )
        if probe.returncode == 0:
            return
        time.sleep(0.5)
    raise AssertionError(f"the private engine at {host} did not answer in {timeout:.0f} s")


class PrivateEngine:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.sock = root / "docker.sock"
        self.host = f"unix://{self.sock}"
        self.log = root / "dockerd.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        argv = [
            "dockerd",
            "--host",
            self.host,
            "--data-root",
            str(self.root / "data"),
            "--exec-root",
            str(self.root / "exec"),
            "--pidfile",
            str(self.root / "dockerd.pid"),
            "--bridge",
            BRIDGE,
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(argv, stdout=log, stderr=log)
        wait_for(self.host)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@contextlib.contextmanager
def private_engine(root: Path, images: list[str]) -> Iterator[PrivateEngine]:
    subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)
    subprocess.run(["ip", "link", "add", BRIDGE, "type", "bridge"], check=True)
    subprocess.run(["ip", "addr", "add", "172.31.250.1/24", "dev", BRIDGE], check=True)
    subprocess.run(["ip", "link", "set", BRIDGE, "up"], check=True)
    root.mkdir(parents=True, exist_ok=True)
    engine = PrivateEngine(root)
    try:
        engine.start()
        save = subprocess.Popen(["docker", "save", *images], stdout=subprocess.PIPE)
        subprocess.run(
            ["docker", "-H", engine.host, "load"],
            stdin=save.stdout,
            check=True,
            capture_output=True,
        )
        assert save.wait() == 0
        yield engine
    finally:
        engine.stop()
        subprocess.run(["ip", "link", "del", BRIDGE], capture_output=True, check=False)


def rows(db: Path) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)
    try:
        return (
            int(conn.execute("SELECT count(*) FROM products").fetchone()[0]),
            int(conn.execute("SELECT count(*) FROM reviews").fetchone()[0]),
        )
    finally:
        conn.close()


def test_engine_restarted_mid_deploy_then_the_next_deploy_recovers(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    demo_image: str,
    variants: dict[str, str],  # noqa: F811
) -> None:
    if os.geteuid() != 0:
        pytest.fail("a private Docker engine needs root (scripts/test.sh runs as root)")
    release = variants["stock"]
    short = Path(tempfile.mkdtemp(prefix="ld-", dir="/tmp"))  # unix socket paths are short
    with private_engine(short, [demo_image, release]) as engine:
        monkeypatch.setenv("DOCKER_HOST", engine.host)
        folder = tmp_path / "stack"
        folder.mkdir()
        shutil.copy(DEMO_COMPOSE, folder / "docker-compose.yml")
        (folder / "data").mkdir()
        project = f"ldrestart-{uuid.uuid4().hex[:8]}"
        stack = Stack(dir=folder, project=project, port=free_port(), flavour="v2")
        try:
            seed(stack)
            before = rows(stack.db_path)
            argv = [sys.executable, "-m", "deploy", "--compose", "v2", "--tag", tag_of(release)]
            env = {**stack.env(), "PYTHONPATH": str(ROOT), "LITEDEPLOY_DEBUG": "1"}
            running = subprocess.Popen(
                argv, cwd=stack.dir, env=env, stderr=subprocess.PIPE, text=True
            )
            assert running.stderr is not None
            for line in running.stderr:  # restart the engine while the cutover happens
                if "cutover to" in line:
                    break
            engine.stop()
            assert rows(stack.db_path) == before
            engine.start()
            said = running.stderr.read()
            first = running.wait(timeout=300)
            # deployed after all (the health loop waits the restart out), rolled back, or one
            # line saying the engine stopped answering: never an internal error
            assert first in (0, 1, 5, 6), f"the interrupted deploy exited {first}: {said}"
            assert "Traceback" not in said
            assert rows(stack.db_path) == before  # never an empty or a lost database
            result = deploy(stack, "--tag", tag_of(release))
            assert result.returncode == EXIT_DEPLOYED, result.stderr
            assert running_image(stack) == release
            assert stack.health() == "healthy"
            assert rows(stack.db_path) == before
        except BaseException:
            print(stack.diagnostics())
            print(engine.log.read_text()[-3000:])
            raise
        finally:
            stack.down()
            shutil.rmtree(short, ignore_errors=True)
