"""Fixtures for the deploy integration tests: a real Docker engine, the demo image, the Node
shop's images and Compose stacks of each (plain helpers live in stack.py and node_stack.py).

Every test in this folder is marked `docker`. They need an engine, both Compose versions, the
base image and the wheelhouse, which scripts/test.sh provides; without an engine they fail, they
do not skip.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import tempfile
import uuid
from collections.abc import Callable, Generator, Iterator
from pathlib import Path

import pytest
from node_stack import NODE_COMPOSE, RELEASES, build_release
from stack import (
    DEMO_COMPOSE,
    ROOT,
    CommandError,
    Stack,
    build_demo_image,
    compose_flavours,
    compose_version,
    docker,
    engine_version,
    free_port,
    litedeploy_image,
)

HERE = Path(__file__).resolve().parent
OPERATOR_FLAVOUR = "v2"
PHASES = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    kept, dropped = [], []
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.docker)
        params = getattr(getattr(item, "callspec", None), "params", {})
        # As the operator run the scenarios where being root matters (the root-only backups,
        # restores and snapshots, through the litedeploy image), with one Compose flavour, for
        # the suite's time; test_deploy_nonroot.py runs its stories with both.
        as_operator = params.get("who") == "operator"
        if as_operator and (
            params.get("compose_flavour") != OPERATOR_FLAVOUR
            or item.get_closest_marker("operator_too") is None
        ):
            dropped.append(item)
        else:
            kept.append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    # Keep each phase's report on the item, so that fixtures can tell a failed test at teardown.
    report = yield
    item.stash.setdefault(PHASES, {})[report.when] = report
    return report


def _failed(node: pytest.Item) -> bool:
    return any(r.failed for r in node.stash.get(PHASES, {}).values())


@pytest.fixture
def test_failed(request: pytest.FixtureRequest) -> Callable[[], bool]:
    """Whether the test failed so far: for fixtures of test files that print diagnostics."""
    return lambda: _failed(request.node)


@pytest.fixture(scope="session")
def docker_engine() -> str:
    """The engine's version; fails every test that needs it when no engine answers."""
    version = engine_version()
    if version is None:
        pytest.fail(
            "no Docker engine answers (`docker info` failed). The deploy tests need one: "
            "scripts/test.sh starts dockerd when run as root, or start it yourself.",
            pytrace=False,
        )
    return version


@pytest.fixture(scope="session")
def demo_image(docker_engine: str) -> str:
    """DEMO_IMAGE:v1 (litedeploy-demo:v1) built from demo/Dockerfile, once per session (cached)."""
    try:
        return build_demo_image()
    except CommandError as exc:
        pytest.fail(f"building the demo image failed: {exc}", pytrace=False)


@pytest.fixture(params=compose_flavours(), ids=lambda flavour: f"compose-{flavour}")
def compose_flavour(request: pytest.FixtureRequest, docker_engine: str) -> str:
    """The Compose flavour, v2 (`docker compose`) or v1 (`docker-compose`): tests run with both."""
    flavour: str = request.param
    if compose_version(flavour) is None:
        command = "docker compose" if flavour == "v2" else "docker-compose"
        pytest.fail(
            f"Compose {flavour} (`{command} version`) does not answer: scripts/test.sh installs it",
            pytrace=False,
        )
    return flavour


@pytest.fixture(scope="session")
def operator() -> pwd.struct_passwd:
    """The operator who runs `deploy` without root: in the docker group (scripts/test.sh
    creates it as $LITEDEPLOY_OPERATOR)."""
    name = os.environ.get("LITEDEPLOY_OPERATOR", "litedeploy-op")
    try:
        account = pwd.getpwnam(name)
    except KeyError:
        pytest.fail(f"no user {name}: scripts/test.sh creates it (ensure_operator_user)")
    docker_gid = grp.getgrnam("docker").gr_gid
    if account.pw_uid == 0 or docker_gid not in os.getgrouplist(name, account.pw_gid):
        pytest.fail(f"{name} must be a non-root user in the docker group", pytrace=False)
    return account


@pytest.fixture(scope="session")
def workspace() -> Iterator[Path]:
    """A folder other users can reach (pytest's own are root-only)."""
    root = Path(tempfile.mkdtemp(prefix="litedeploy-tests-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def host_cli(workspace: Path, docker_engine: str) -> Path:
    """The host CLI bundle (/opt/litedeploy-deploy) copied out of the litedeploy image: what
    an operator installs, runnable by any user."""
    target = workspace / "litedeploy-deploy"
    container = docker("create", litedeploy_image()).strip()
    try:
        docker("cp", f"{container}:/opt/litedeploy-deploy", str(target))
    finally:
        docker("rm", container)
    for path in [target, *target.rglob("*")]:
        path.chmod(path.stat().st_mode | (0o055 if path.is_dir() else 0o044))
    return target / "deploy"


@pytest.fixture(params=["root", "operator"])
def who(request: pytest.FixtureRequest) -> str:
    """Who runs `deploy` in the scenarios: root, and an operator in the docker group."""
    return str(request.param)


@pytest.fixture
def stack(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    demo_image: str,
    compose_flavour: str,
    who: str,
) -> Iterator[Stack]:
    """The demo stack in a fresh folder: a copy of demo/docker-compose.yml, ./data, its own
    project name and 127.0.0.1 port. Torn down whatever happens; its containers' state and
    logs are printed when the test fails. With `who` operator, the folder is the operator's
    (./data root's, as Docker makes it) and `stack.run_deploy` runs the host CLI as them."""
    if who == "root":
        yield from _stack_in(request, tmp_path, DEMO_COMPOSE, compose_flavour, "ldtest")
        return
    account = request.getfixturevalue("operator")
    cli = request.getfixturevalue("host_cli")
    place = request.getfixturevalue("workspace") / f"op-{uuid.uuid4().hex[:8]}"
    place.mkdir()
    place.chmod(0o755)
    try:
        for s in _stack_in(request, place, DEMO_COMPOSE, compose_flavour, "ldop"):
            s.operator, s.host_cli = account, cli
            for path in (s.dir, s.compose_file):
                os.chown(path, account.pw_uid, account.pw_gid)
            yield s
    finally:
        shutil.rmtree(place, ignore_errors=True)


@pytest.fixture
def image_stack(request: pytest.FixtureRequest, tmp_path: Path, demo_image: str) -> Iterator[Stack]:
    """The demo stack for `deploy` run from the litedeploy image: Compose v2 only, the one the
    image carries (the host's v2 tears it down); projects named ldhostcli-*."""
    if compose_version("v2") is None:
        pytest.fail("Compose v2 (`docker compose version`) does not answer", pytrace=False)
    yield from _stack_in(request, tmp_path, DEMO_COMPOSE, "v2", "ldhostcli")


@pytest.fixture(scope="session")
def node_images(docker_engine: str) -> dict[str, str]:
    """The Node shop's releases v1..v4 as litedeploy-node-shop:test-vN, built once per session
    (they share every layer but their migrations)."""
    try:
        return {release: build_release(release, f"test-{release}") for release in RELEASES}
    except CommandError as exc:
        pytest.fail(f"building the Node shop's images failed: {exc}", pytrace=False)


@pytest.fixture
def node_stack(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    node_images: dict[str, str],
    compose_flavour: str,
) -> Iterator[Stack]:
    """The example stack (the repo's docker-compose.yml: the Node shop) in a fresh folder, as
    `stack` is for the demo."""
    # Compose v1 wants the file's build context to exist, even when it builds nothing.
    link = {"examples": ROOT / "examples"}
    # deploy.yml too: the proxy in front of the shop, and start-first for expand-only releases.
    extra = [ROOT / "deploy.yml"]
    yield from _stack_in(request, tmp_path, NODE_COMPOSE, compose_flavour, "ldnode", link, extra)


def _stack_in(
    request: pytest.FixtureRequest,
    tmp_path: Path,
    compose_file: Path,
    flavour: str,
    prefix: str,
    links: dict[str, Path] | None = None,
    files: list[Path] | None = None,
) -> Iterator[Stack]:
    folder = tmp_path / "stack"
    folder.mkdir()
    shutil.copy(compose_file, folder / "docker-compose.yml")
    for path in files or ():
        shutil.copy(path, folder / path.name)
    for name, target in (links or {}).items():
        (folder / name).symlink_to(target)
    (folder / "data").mkdir()
    project = f"{prefix}-{uuid.uuid4().hex[:10]}"
    s = Stack(dir=folder, project=project, port=free_port(), flavour=flavour)
    try:
        yield s
    finally:
        if _failed(request.node):
            print(s.diagnostics())
        s.down()
