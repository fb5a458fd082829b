"""Fixtures for the bundle tests: the self-contained entrypoint in containers without Python.

Every test in this folder is marked `docker`. They need an engine, the Python-less base image
(litedeploy-bundle-nopython:bookworm) and the litedeploy image, which scripts/test.sh (or
scripts/bundle.sh) builds; without them they fail, they do not skip.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
# The deploy tests' plain helpers (argv runner, engine and image look-ups) serve here too.
sys.path.insert(0, str(HERE.parent / "deploy"))

from stack import CommandError, docker, engine_version, image_exists, litedeploy_image  # noqa: E402

NOPYTHON_IMAGE = os.environ.get("LITEDEPLOY_NOPYTHON_IMAGE", "litedeploy-bundle-nopython:bookworm")
APP_IMAGE = "litedeploy-bundle-test:app"

# An app image as the README tells a Node team to write one, without the Node: the bundle
# copied from the litedeploy image into a Debian without Python.
APP_DOCKERFILE = """\
ARG LITEDEPLOY_IMAGE
ARG BASE_IMAGE
FROM ${LITEDEPLOY_IMAGE} AS litedeploy
FROM ${BASE_IMAGE}
COPY --from=litedeploy /opt/litedeploy /opt/litedeploy
ENV DB_PATH=/data/app.db MIGRATIONS_DIR=/app/drizzle
ENTRYPOINT ["/opt/litedeploy/entrypoint", "run", "--"]
"""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.docker)


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The engine's version; fails every test that needs it when no engine answers."""
    version = engine_version()
    if version is None:
        pytest.fail(
            "no Docker engine answers (`docker info` failed). The bundle tests need one: "
            "scripts/test.sh starts dockerd when run as root, or start it yourself.",
            pytrace=False,
        )
    return version


def _require(image: str, how: str) -> str:
    if not image_exists(image):
        pytest.fail(f"image {image} is missing: scripts/test.sh builds it ({how})", pytrace=False)
    return image


@pytest.fixture(scope="session")
def nopython(docker_engine: str) -> str:
    """Debian 12 minbase without Python."""
    return _require(NOPYTHON_IMAGE, "ensure_nopython_image")


@pytest.fixture(scope="session")
def litedeploy(docker_engine: str) -> str:
    """litedeploy:<version>: the bundle at /opt/litedeploy, ENTRYPOINT the bundle."""
    return _require(litedeploy_image(), "ensure_litedeploy_image")


@pytest.fixture(scope="session")
def app_image(litedeploy: str, nopython: str) -> str:
    """An app image that got the entrypoint with one COPY (layers cached: about a second)."""
    with tempfile.TemporaryDirectory(prefix="litedeploy-bundle-app-") as tmp:
        (Path(tmp) / "Dockerfile").write_text(APP_DOCKERFILE)
        try:
            docker(
                "build",
                "-q",
                "-t",
                APP_IMAGE,
                "--build-arg",
                f"LITEDEPLOY_IMAGE={litedeploy}",
                "--build-arg",
                f"BASE_IMAGE={nopython}",
                tmp,
                timeout=300,
            )
        except CommandError as exc:
            pytest.fail(f"building {APP_IMAGE} failed: {exc}", pytrace=False)
    return APP_IMAGE
