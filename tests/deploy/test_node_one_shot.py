"""The one-shot pattern (examples/node-shop/docker-compose.one-shot.yml): a `migrate` service runs
the litedeploy image on the app's bind mount, and the app, an image without litedeploy's
entrypoint, waits for it with `depends_on: condition: service_completed_successfully`.

With Compose v2 and v1 (1.29.2), in each file format: none (the Compose Specification), "2.4"
and "3.8" work in both; v1's legacy format (services at the top, no `services:` key) has no
depends_on at all, and v2 does not read it. Each case is a test of its own that passes or fails:
none is skipped."""

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import yaml
from node_stack import NODE_SHOP, ONE_SHOT_COMPOSE, PLAIN_REPO, build_node_shop
from stack import CommandError, Stack, container_logs, free_port, litedeploy_image, query_db
from test_deploy_scenarios import dump

pytestmark = pytest.mark.docker

APP_UID = 1000  # the app image's `node` user, which the migrate service runs as
MakeStack = Callable[[str | None], Stack]


@pytest.fixture(scope="session")
def plain_image(docker_engine: str) -> str:
    """The shop without litedeploy's entrypoint: the Dockerfile's `app` target."""
    try:
        return build_node_shop(f"{PLAIN_REPO}:test", target="app")
    except CommandError as exc:
        pytest.fail(f"building the plain Node shop image failed: {exc}", pytrace=False)


@pytest.fixture
def one_shot(
    tmp_path: Path, plain_image: str, compose_flavour: str, test_failed: Callable[[], bool]
) -> Iterator[MakeStack]:
    """Make the one-shot stack in a fresh folder, its file in a given format ("2.4", "3.8", or
    None for none), with a copy of the app's drizzle folder and ./data owned by the app's uid."""
    made: list[Stack] = []

    def make(version: str | None) -> Stack:
        folder = tmp_path / "stack"
        folder.mkdir()
        text = ONE_SHOT_COMPOSE.read_text()
        (folder / "docker-compose.yml").write_text(
            (f'version: "{version}"\n' if version else "") + text
        )
        shutil.copytree(NODE_SHOP / "drizzle", folder / "drizzle")
        (folder / "data").mkdir()
        os.chown(folder / "data", APP_UID, APP_UID)
        stack = Stack(
            dir=folder,
            project=f"ldnode-{uuid.uuid4().hex[:10]}",
            port=free_port(),
            flavour=compose_flavour,
        )
        made.append(stack)
        return stack

    try:
        yield make
    finally:
        for stack in made:
            if test_failed():
                print(stack.diagnostics())
            stack.down()


def env() -> dict[str, str]:
    return {"LITEDEPLOY_IMAGE": litedeploy_image()}


def exit_code(stack: Stack, service: str) -> int:
    (container,) = stack.containers(service=service)
    return int(stack.inspect(container)["State"]["ExitCode"])


@pytest.mark.parametrize("version", [None, "2.4", "3.8"], ids=["no-version", "2.4", "3.8"])
def test_migrate_runs_to_completion_then_the_app_starts(
    one_shot: MakeStack, version: str | None
) -> None:
    stack = one_shot(version)

    stack.compose("up", "-d", tag="test", env=env())

    stack.wait_healthy()
    assert exit_code(stack, "migrate") == 0
    (migrate,) = stack.containers(service="migrate")
    assert "Applied 0003_add_shop_account" in container_logs(migrate)
    assert len(query_db(stack.db_path, "SELECT * FROM __drizzle_migrations")) == 4
    assert query_db(stack.db_path, "SELECT email FROM users") == [("shop@example.com",)]
    assert stack.db_path.stat().st_uid == APP_UID
    assert stack.get("/products") == (200, [])


def test_a_refused_migration_keeps_the_app_stopped(one_shot: MakeStack) -> None:
    stack = one_shot(None)
    stack.compose("up", "-d", tag="test", env=env())
    stack.wait_healthy()
    stack.compose("down", "-t", "5", tag="test", env=env())
    before = dump(stack.db_path)
    # The next release drops a column that holds values: the entrypoint refuses it (exit 15).
    journal_path = stack.dir / "drizzle" / "meta" / "_journal.json"
    journal = json.loads(journal_path.read_text())
    last = journal["entries"][-1]
    journal["entries"].append(
        {**last, "idx": last["idx"] + 1, "when": last["when"] + 1000, "tag": "0004_drop_name"}
    )
    journal_path.write_text(json.dumps(journal, indent=2))
    (stack.dir / "drizzle" / "0004_drop_name.sql").write_text(
        "ALTER TABLE `users` DROP COLUMN `name`;"
    )

    result = stack.compose("up", "-d", tag="test", env=env(), check=False)

    assert result.returncode != 0, result.stdout + result.stderr
    assert exit_code(stack, "migrate") == 15
    app = stack.containers()
    assert not app or stack.inspect(app[0])["State"]["Status"] == "created"  # never started
    assert dump(stack.db_path) == before


LEGACY_ERRORS = {
    "v1": "Unsupported config option for app: 'depends_on'",
    "v2": "(root) Additional property",  # then the first service it meets: not a v2 file
}


def test_legacy_v1_format_cannot_express_it(one_shot: MakeStack, compose_flavour: str) -> None:
    stack = one_shot(None)
    # Services at the top level, and no ${VAR:-default}, which the legacy format cannot read.
    text = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", stack.compose_file.read_text())
    stack.compose_file.write_text(yaml.safe_dump(yaml.safe_load(text)["services"]))

    result = stack.compose("config", tag="test", env=env(), check=False)

    assert result.returncode != 0
    assert LEGACY_ERRORS[compose_flavour] in result.stdout + result.stderr
