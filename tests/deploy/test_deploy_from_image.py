"""`deploy` run from litedeploy's image, as the README shows: the engine's socket mounted, the
stack's folder mounted at the same path, Compose v2 and the docker SDK inside the image, no
Python anywhere in it. Deploys the demo's v1, then a release with one migration."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from stack import DEMO_REPO, V1, V1_TAG, Stack, build_variant, docker, litedeploy_image, run

pytestmark = pytest.mark.docker

VISITS = "CREATE TABLE `visits` (`id` integer PRIMARY KEY NOT NULL, `at` text);"


def engine_socket() -> Path:
    """The engine's Unix socket on this host: DOCKER_HOST's, else the default."""
    host = os.environ.get("DOCKER_HOST", "")
    if host and not host.startswith("unix://"):
        pytest.fail(
            f"DOCKER_HOST={host}: these tests mount the engine's Unix socket", pytrace=False
        )
    return Path(host.removeprefix("unix://") or "/var/run/docker.sock")


def deploy_in_image(
    stack: Stack, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    """`docker run --rm ... --entrypoint deploy <litedeploy image> --compose v2 ARGS` in the
    stack's folder, with the variables the compose file reads."""
    socket = engine_socket()
    env = {"COMPOSE_PROJECT_NAME": stack.project, "APP_PORT": str(stack.port)}
    env["DEMO_IMAGE"] = DEMO_REPO
    argv = ["docker", "run", "--rm", "-v", f"{socket}:/var/run/docker.sock"]
    argv += ["-v", f"{stack.dir}:{stack.dir}", "-w", str(stack.dir)]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    argv += ["--entrypoint", "deploy", litedeploy_image(), "--compose", "v2", *args]
    return run(argv, check=False, timeout=timeout)


def history(stack: Stack) -> list[dict[str, Any]]:
    path = stack.dir / ".litedeploy" / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


@pytest.fixture
def release(demo_image: str) -> str:
    """v1 plus one migration."""
    return build_variant("hostcli-v2", migrations={"0006_add_visits": VISITS})


@pytest.fixture
def deployed(image_stack: Stack) -> Iterator[Stack]:
    """The stack; at the end, the rollback-<deploy id> tags its deploys made are removed."""
    yield image_stack
    path = image_stack.dir / ".litedeploy" / "history.jsonl"
    if path.exists():
        for record in history(image_stack):
            if record.get("rollback_image"):
                docker("rmi", record["rollback_image"], check=False)


def test_deploy_from_the_image_ships_v1_then_a_release(deployed: Stack, release: str) -> None:
    stack = deployed
    first = deploy_in_image(stack, "--tag", V1_TAG, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["to_image"] == V1
    stack.wait_healthy()
    assert stack.get("/products") == (200, [])

    second = deploy_in_image(stack, "--tag", release.rpartition(":")[2], "--json")

    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert (report["outcome"], report["from_image"], report["to_image"]) == (
        "deployed",
        V1,
        release,
    )
    assert "rehearsal on a snapshot" in report["durations"]  # the rehearsal container ran
    info = stack.wait_healthy()
    assert info["Config"]["Image"] == release
    assert stack.get("/health") == (200, {"status": "ok"})
    assert "visits" in {r[0] for r in stack.query("SELECT name FROM sqlite_master")}
    # The records are written on the host, in the stack's folder, where a host-installed
    # deploy would find them.
    records = history(stack)
    assert [(r["outcome"], r["to_image"]) for r in records] == [
        ("deployed", V1),
        ("deployed", release),
    ]
    backup = Path(report["backup"])
    assert backup.is_relative_to(stack.data_dir) and backup.exists()
    manifest = json.loads(Path(f"{backup}.json").read_text())
    assert manifest["deploy_id"] == report["deploy_id"]
    assert manifest["pending"] == ["0006_add_visits"]
    # The image's deploy reads them back too.
    listed = deploy_in_image(stack, "history")
    assert listed.returncode == 0, listed.stderr
    assert report["deploy_id"] in listed.stdout
