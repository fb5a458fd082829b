"""Compose v1 and v2: exact argv, and the service read back from `compose config` output.

The YAML below is what `docker compose config` (2.26) and `docker-compose config` (1.29) print
for the example stack, copied from their real output.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest

from deploy.compose import (
    Compose,
    Flavour,
    default_project,
    host_path,
    parse_service,
    split_image,
)
from deploy.errors import ConfigError

FILE = Path("/srv/shop/docker-compose.yml")
OVERRIDE = Path("/srv/shop/.litedeploy/deploy-override.yml")

V2_CONFIG = """\
name: shop
services:
  app:
    environment:
      DB_PATH: /data/app.db
      LITEDEPLOY_DEPLOY_ID: ""
      MIGRATIONS_DIR: /app/migrations
    healthcheck:
      test:
        - CMD
        - python3
        - -c
        - import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=2)
      timeout: 2s
      interval: 2s
      retries: 3
      start_period: 10s
    image: litedeploy-demo:v2
    networks:
      default: null
    ports:
      - mode: ingress
        host_ip: 127.0.0.1
        target: 8000
        published: "8000"
        protocol: tcp
    restart: "no"
    volumes:
      - type: bind
        source: /srv/shop/data
        target: /data
        bind:
          create_host_path: true
networks:
  default:
    name: shop_default
"""

V1_CONFIG = """\
services:
  app:
    environment:
      DB_PATH: /data/app.db
      LITEDEPLOY_DEPLOY_ID: ''
      MIGRATIONS_DIR: /app/migrations
    healthcheck:
      interval: 2s
      retries: 3
      start_period: 10s
      test:
      - CMD
      - python3
      - -c
      - import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health',
        timeout=2)
      timeout: 2s
    image: litedeploy-demo:v1
    ports:
    - 127.0.0.1:8000:8000/tcp
    restart: "no"
    volumes:
    - /srv/shop/data:/data:rw
version: '3.9'
"""

# Nested binds, a named volume, a variable without a value, a worker without a healthcheck.
V2_NESTED = """\
name: shop
services:
  app:
    environment:
      LITEDEPLOY_BACKUP_DIR: /data/backups
      DB_PATH: /data/db/app.db
      SECRET: null
    image: localhost:5000/shop:v2
    networks:
      default: null
    volumes:
      - type: bind
        source: /srv/shop/data
        target: /data
        bind:
          create_host_path: true
      - type: bind
        source: /srv/backups
        target: /data/backups
        bind:
          create_host_path: true
      - type: volume
        source: cache
        target: /cache
        volume: {}
      - type: bind
        source: /srv/shop/data/db
        target: /data/db
        read_only: true
        bind:
          create_host_path: true
  worker:
    healthcheck:
      disable: true
    image: localhost:5000/shop
    networks:
      default: null
networks:
  default:
    name: shop_default
volumes:
  cache:
    name: shop_cache
"""

V1_NESTED = """\
services:
  app:
    environment:
      LITEDEPLOY_BACKUP_DIR: /data/backups
      DB_PATH: /data/db/app.db
      SECRET: null
    image: localhost:5000/shop:v1
    volumes:
    - /srv/shop/data:/data:rw
    - /srv/backups:/data/backups:rw
    - cache:/cache:rw
    - /srv/shop/data/db:/data/db:ro
  worker:
    healthcheck:
      test:
      - NONE
    image: localhost:5000/shop
version: '3.9'
volumes:
  cache: {}
"""


# -- argv ---------------------------------------------------------------------------------------


def test_v2_argv() -> None:
    compose = Compose(Flavour.V2, (FILE,), "shop")
    base = ["docker", "compose", "-f", "/srv/shop/docker-compose.yml", "-p", "shop"]
    assert compose.config() == [*base, "config"]
    assert compose.up("app") == [*base, "up", "-d", "--no-deps", "--force-recreate", "app"]
    assert compose.stop("app") == [*base, "stop", "-t", "10", "app"]
    assert compose.stop("app", timeout=3) == [*base, "stop", "-t", "3", "app"]


def test_v1_argv() -> None:
    compose = Compose(Flavour.V1, (FILE,), "shop")
    base = ["docker-compose", "-f", "/srv/shop/docker-compose.yml", "-p", "shop"]
    assert compose.config() == [*base, "config"]
    assert compose.up("app") == [*base, "up", "-d", "--no-deps", "--force-recreate", "app"]
    assert compose.stop("app", timeout=30) == [*base, "stop", "-t", "30", "app"]


@pytest.mark.parametrize(
    ("flavour", "program"), [(Flavour.V2, ["docker", "compose"]), (Flavour.V1, ["docker-compose"])]
)
def test_every_file_comes_before_the_project_and_the_command(
    flavour: Flavour, program: list[str]
) -> None:
    compose = Compose(flavour, (FILE, OVERRIDE), "shop")
    assert compose.up("web") == [
        *program,
        "-f",
        "/srv/shop/docker-compose.yml",
        "-f",
        "/srv/shop/.litedeploy/deploy-override.yml",
        "-p",
        "shop",
        "up",
        "-d",
        "--no-deps",
        "--force-recreate",
        "web",
    ]


# -- the resolved service -----------------------------------------------------------------------


def test_parse_service_from_v2_config() -> None:
    service = parse_service(V2_CONFIG, "app", "docker-compose.yml")
    assert service.name == "app"
    assert service.image == "litedeploy-demo:v2"
    assert service.repository == "litedeploy-demo"
    assert service.environment == {
        "DB_PATH": "/data/app.db",
        "LITEDEPLOY_DEPLOY_ID": "",
        "MIGRATIONS_DIR": "/app/migrations",
    }
    assert service.binds == [(Path("/srv/shop/data"), PurePosixPath("/data"))]
    assert service.has_healthcheck


def test_parse_service_from_v1_config() -> None:
    service = parse_service(V1_CONFIG, "app", "docker-compose.yml")
    assert service.image == "litedeploy-demo:v1"
    assert service.environment["DB_PATH"] == "/data/app.db"
    assert service.environment["LITEDEPLOY_DEPLOY_ID"] == ""
    assert service.binds == [(Path("/srv/shop/data"), PurePosixPath("/data"))]
    assert service.has_healthcheck


@pytest.mark.parametrize("output", [V2_NESTED, V1_NESTED], ids=["v2", "v1"])
def test_named_volumes_are_not_binds_and_unset_variables_are_left_out(output: str) -> None:
    service = parse_service(output, "app", "docker-compose.yml")
    assert service.binds == [
        (Path("/srv/shop/data"), PurePosixPath("/data")),
        (Path("/srv/backups"), PurePosixPath("/data/backups")),
        (Path("/srv/shop/data/db"), PurePosixPath("/data/db")),
    ]
    assert service.environment == {
        "LITEDEPLOY_BACKUP_DIR": "/data/backups",
        "DB_PATH": "/data/db/app.db",
    }
    assert not service.has_healthcheck  # the app has none in this file
    assert service.repository == "localhost:5000/shop"


@pytest.mark.parametrize("output", [V2_NESTED, V1_NESTED], ids=["v2", "v1"])
def test_a_disabled_healthcheck_is_no_healthcheck(output: str) -> None:
    worker = parse_service(output, "worker", "docker-compose.yml")
    assert not worker.has_healthcheck
    assert worker.image == "localhost:5000/shop"
    assert worker.binds == []
    assert worker.environment == {}


def test_environment_as_a_list() -> None:
    output = (
        "services:\n  app:\n    image: a:1\n"
        "    environment:\n      - A=1\n      - B=x=y\n      - C\n"
    )
    assert parse_service(output, "app", "f").environment == {"A": "1", "B": "x=y"}


def test_a_missing_service_lists_the_services() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_service(V2_NESTED, "web", "/srv/shop/docker-compose.yml")
    assert caught.value.message == (
        "/srv/shop/docker-compose.yml has no service 'web' (services: app, worker)"
    )
    assert caught.value.hint is not None
    assert "--service" in caught.value.hint


def test_no_services_at_all() -> None:
    with pytest.raises(ConfigError, match=r"has no service 'app' \(services: none\)"):
        parse_service("name: empty\n", "app", "docker-compose.yml")


def test_a_service_without_an_image_is_refused() -> None:
    output = (
        "services:\n  app:\n    build:\n      context: /srv/shop\n      dockerfile: Dockerfile\n"
    )
    with pytest.raises(ConfigError, match=r"service 'app' in docker-compose\.yml has no image"):
        parse_service(output, "app", "docker-compose.yml")


def test_unreadable_config_output_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="cannot read the output of compose config"):
        parse_service("services: [\n", "app", "docker-compose.yml")


# -- where the database lives on the host -------------------------------------------------------

BINDS = [
    (Path("/srv/shop/data"), PurePosixPath("/data")),
    (Path("/srv/backups"), PurePosixPath("/data/backups")),
    (Path("/srv/shop/data/db"), PurePosixPath("/data/db")),
]


def test_host_path_through_the_deepest_bind() -> None:
    assert host_path(PurePosixPath("/data/db/app.db"), BINDS) == Path("/srv/shop/data/db/app.db")
    assert host_path(PurePosixPath("/data/backups"), BINDS) == Path("/srv/backups")
    assert host_path(PurePosixPath("/data/backups/x/y.db"), BINDS) == Path("/srv/backups/x/y.db")
    assert host_path(PurePosixPath("/data/app.db"), BINDS) == Path("/srv/shop/data/app.db")
    # Order does not matter: the deepest mount wins, as it does inside the container.
    assert host_path(PurePosixPath("/data/db/app.db"), BINDS[::-1]) == Path(
        "/srv/shop/data/db/app.db"
    )


def test_host_path_is_none_when_not_mounted() -> None:
    assert host_path(PurePosixPath("/var/lib/app.db"), BINDS) is None
    assert host_path(PurePosixPath("/database/app.db"), BINDS) is None  # /data is not a prefix
    assert host_path(PurePosixPath("/data/app.db"), []) is None


# -- image names and projects -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("shop:v2", ("shop", "v2")),
        ("shop", ("shop", "latest")),
        ("library/shop:1.10", ("library/shop", "1.10")),
        ("localhost:5000/app:v2", ("localhost:5000/app", "v2")),
        ("localhost:5000/app", ("localhost:5000/app", "latest")),
        (
            "registry.example.com:443/team/app:rollback-x",
            ("registry.example.com:443/team/app", "rollback-x"),
        ),
    ],
)
def test_split_image(image: str, expected: tuple[str, str]) -> None:
    assert split_image(image) == expected


@pytest.mark.parametrize(
    ("folder", "project"),
    [
        ("shop", "shop"),
        ("My_App.v2", "my_appv2"),
        ("Über App", "berapp"),
        ("web-1", "web-1"),
        ("...", "default"),
    ],
)
def test_default_project_is_composes_normalised_folder_name(
    tmp_path: Path, folder: str, project: str
) -> None:
    assert default_project(tmp_path / folder / "docker-compose.yml") == project
