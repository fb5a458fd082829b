"""Which database deploy protects: the file the entrypoint will open, found by its own rules.

`--db` in the container's argv, else DB_PATH (the service's over the image's), else
./data/app.db from the working directory (the service's over the image's WORKDIR). The image
configurations below have the shape `docker image inspect` gives under "Config".
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

from deploy.compose import Service, parse_service
from deploy.stack import database_in_container

# A Node app image built as the README says: WORKDIR /app, litedeploy's entrypoint, no DB_PATH.
NODE_APP: dict[str, Any] = {
    "Env": ["PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=22.11.0"],
    "WorkingDir": "/app",
    "Entrypoint": ["/opt/litedeploy/entrypoint", "run", "--"],
    "Cmd": ["node", "server.js"],
}


def _service(**over: Any) -> Service:
    return Service(name="app", image="shop:v2", **over)


def test_without_any_setting_the_default_is_taken_from_the_images_workdir() -> None:
    assert database_in_container(_service(), NODE_APP) == PurePosixPath("/app/data/app.db")


def test_an_image_with_no_workdir_runs_in_the_root() -> None:
    config = {**NODE_APP, "WorkingDir": ""}
    assert database_in_container(_service(), config) == PurePosixPath("/data/app.db")


def test_an_image_that_cannot_be_inspected_leaves_the_default_in_the_root() -> None:
    assert database_in_container(_service(), None) == PurePosixPath("/data/app.db")


def test_the_images_db_path_is_read() -> None:
    config = {**NODE_APP, "Env": [*NODE_APP["Env"], "DB_PATH=/var/lib/shop/shop.db"]}
    assert database_in_container(_service(), config) == PurePosixPath("/var/lib/shop/shop.db")


def test_the_services_db_path_wins_over_the_images() -> None:
    config = {**NODE_APP, "Env": ["DB_PATH=/var/lib/shop/shop.db"]}
    service = _service(environment={"DB_PATH": "/data/live.db"})
    assert database_in_container(service, config) == PurePosixPath("/data/live.db")


def test_a_relative_db_path_is_taken_from_the_services_working_dir() -> None:
    service = _service(environment={"DB_PATH": "db/app.db"}, working_dir="/srv")
    assert database_in_container(service, NODE_APP) == PurePosixPath("/srv/db/app.db")


def test_db_in_the_command_wins_over_db_path() -> None:
    """The one-shot migration container: litedeploy's image, `command: [run, --db, ...]`."""
    litedeploy = {"Env": ["DB_PATH=/data/app.db"], "Entrypoint": ["/opt/litedeploy/entrypoint"]}
    service = _service(
        environment={"DB_PATH": "/data/other.db"},
        command=("run", "--db", "/state/shop.db", "--migrations", "/migrations"),
    )
    assert database_in_container(service, litedeploy) == PurePosixPath("/state/shop.db")
    equals = _service(command=("run", "--db=state/shop.db"))
    in_app = {**litedeploy, "WorkingDir": "/app"}
    assert database_in_container(equals, in_app) == PurePosixPath("/app/state/shop.db")


def test_the_apps_own_db_flag_after_the_separator_is_not_the_entrypoints() -> None:
    service = _service(command=("node", "server.js", "--db", "/elsewhere.db"))
    assert database_in_container(service, NODE_APP) == PurePosixPath("/app/data/app.db")


def test_an_app_that_is_not_run_through_the_entrypoint_has_no_db_flag() -> None:
    config = {**NODE_APP, "Entrypoint": None, "Cmd": ["node", "server.js", "--db", "/x.db"]}
    assert database_in_container(_service(), config) == PurePosixPath("/app/data/app.db")


def test_a_service_entrypoint_drops_the_images_command() -> None:
    """Docker's rule: an entrypoint set in Compose clears the image's CMD."""
    config = {**NODE_APP, "Cmd": ["run", "--db", "/from/cmd.db"], "Entrypoint": ["/e"]}
    service = _service(entrypoint=("/opt/litedeploy/entrypoint",))
    assert database_in_container(service, config) == PurePosixPath("/app/data/app.db")
    kept = _service(entrypoint=None)
    assert database_in_container(kept, config) == PurePosixPath("/from/cmd.db")


# What `docker compose config` (2.x) prints for a service that sets all three: lists.
V2 = """\
name: shop
services:
  app:
    command:
      - run
      - --db
      - /state/app.db
    entrypoint:
      - /opt/litedeploy/entrypoint
    image: shop:v2
    working_dir: /srv
"""

# docker-compose 1.29 keeps a string command as written.
V1 = """\
services:
  app:
    command: run --db '/state/my app.db'
    image: shop:v2
version: '3.8'
"""


def test_compose_configs_give_the_entrypoint_command_and_working_dir() -> None:
    v2 = parse_service(V2, "app", "docker-compose.yml")
    assert v2.entrypoint == ("/opt/litedeploy/entrypoint",)
    assert v2.command == ("run", "--db", "/state/app.db")
    assert v2.working_dir == "/srv"
    assert database_in_container(v2, NODE_APP) == PurePosixPath("/state/app.db")
    v1 = parse_service(V1, "app", "docker-compose.yml")
    assert v1.entrypoint is None
    assert v1.command == ("run", "--db", "/state/my app.db")
    assert v1.working_dir is None
