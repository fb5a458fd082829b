"""Health: the verdict on `docker inspect` output, and the poll loop against a fake engine.

Only the Docker SDK is faked (a client whose containers change state at each reload); the
HTTP probe talks to a real server on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, cast

import docker
import pytest
from docker.errors import NotFound

from deploy.health import Observation, Unhealthy, observe, verdict, wait_until_healthy

PROJECT = "shop"
SERVICE = "app"
LABELS = {
    "com.docker.compose.project": PROJECT,
    "com.docker.compose.service": SERVICE,
    "com.docker.compose.oneoff": "False",
}


def inspect(
    status: str = "running",
    health: str | None = None,
    *,
    restarts: int = 0,
    exit_code: int = 0,
    labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The parts of `docker inspect CONTAINER` that matter, shaped as the engine returns them."""
    state: dict[str, Any] = {
        "Status": status,
        "Running": status == "running",
        "Paused": False,
        "Restarting": status == "restarting",
        "OOMKilled": False,
        "Dead": status == "dead",
        "Pid": 4242 if status == "running" else 0,
        "ExitCode": exit_code,
        "Error": "",
        "StartedAt": "2025-03-01T10:00:00.123456789Z",
        "FinishedAt": "0001-01-01T00:00:00Z",
    }
    if health is not None:
        state["Health"] = {
            "Status": health,
            "FailingStreak": 3 if health == "unhealthy" else 0,
            "Log": [],
        }
    return {
        "Id": "3f2a9c1d8e7b6a5f4e3d2c1b0a9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4c3b2a1f",
        "Created": "2025-03-01T09:59:59.000000000Z",
        "Image": "sha256:" + "ab" * 32,
        "Name": "/shop-app-1",
        "RestartCount": restarts,
        "State": state,
        "Config": {"Image": "shop:v2", "Labels": dict(labels or LABELS)},
    }


class FakeContainer:
    """A container whose state moves one step along `states` at each reload (then stays)."""

    def __init__(self, *states: dict[str, Any], vanish_after: int | None = None) -> None:
        self.states = states
        self.attrs = states[0]
        self.reloads = 0
        self.vanish_after = vanish_after

    @property
    def labels(self) -> dict[str, str]:
        labels: dict[str, str] = self.attrs["Config"]["Labels"]
        return labels

    @property
    def status(self) -> str:
        status: str = self.attrs["State"]["Status"]
        return status

    def reload(self) -> None:
        if self.vanish_after is not None and self.reloads >= self.vanish_after:
            raise NotFound("No such container: 3f2a9c1d8e7b")
        self.attrs = self.states[min(self.reloads, len(self.states) - 1)]
        self.reloads += 1


class FakeContainers:
    """`client.containers`: list() honours the label filters, as the engine does."""

    def __init__(self, *containers: FakeContainer) -> None:
        self.containers = list(containers)
        self.calls: list[dict[str, Any]] = []

    def list(self, **kwargs: Any) -> list[FakeContainer]:
        self.calls.append(kwargs)
        assert kwargs.get("all") is True  # an exited container must be seen, not missed
        wanted = dict(label.split("=", 1) for label in kwargs["filters"]["label"])
        return [c for c in self.containers if all(c.labels.get(k) == v for k, v in wanted.items())]


class FakeClient:
    def __init__(self, *containers: FakeContainer) -> None:
        self.containers = FakeContainers(*containers)


def wait(client: FakeClient, **options: Any) -> Observation:
    options.setdefault("timeout", 10)
    options.setdefault("poll", 0.01)
    options.setdefault("stable_seconds", 0.05)
    return wait_until_healthy(cast(docker.DockerClient, client), PROJECT, SERVICE, **options)


# -- observe and verdict ------------------------------------------------------------------------


def test_observe_reads_docker_inspect() -> None:
    seen = observe(inspect("running", "starting", restarts=2))
    assert seen == Observation(
        container_id="3f2a9c1d8e7b",
        status="running",
        health="starting",
        restart_count=2,
        exit_code=0,
        started_at="2025-03-01T10:00:00.123456789Z",
    )
    assert observe(inspect("running")).health is None
    assert observe(inspect("exited", exit_code=137)).exit_code == 137


def test_observe_tolerates_missing_fields() -> None:
    assert observe({}) == Observation("", "unknown", None, 0, 0, "")


def judge(attrs: dict[str, Any], first: dict[str, Any] | None = None, stable_for: float = 0) -> str:
    return verdict(observe(attrs), observe(first or attrs), stable_for, stable_seconds=5)


def test_healthy_is_ok() -> None:
    assert judge(inspect("running", "healthy")) == "ok"


def test_starting_is_wait_however_long_it_has_run() -> None:
    assert judge(inspect("running", "starting")) == "wait"
    assert judge(inspect("running", "starting"), stable_for=60) == "wait"


def test_unhealthy_is_a_failure() -> None:
    assert judge(inspect("running", "unhealthy")) == "container 3f2a9c1d8e7b is unhealthy"


@pytest.mark.parametrize("status", ["exited", "dead"])
def test_exited_or_dead_is_a_failure_with_its_code(status: str) -> None:
    assert judge(inspect(status, exit_code=3)) == f"container 3f2a9c1d8e7b {status} with code 3"
    # Even when its last healthcheck said healthy.
    assert judge(inspect(status, "healthy", exit_code=1)).endswith("with code 1")


def test_restarting_is_a_failure() -> None:
    assert judge(inspect("restarting", restarts=1), first=inspect("restarting", restarts=1)) == (
        "container 3f2a9c1d8e7b is restarting (restart count 1)"
    )


def test_a_rising_restart_count_is_a_failure_even_when_running() -> None:
    # A restart policy can bring the container back between two polls: the count tells.
    outcome = judge(
        inspect("running", "starting", restarts=2), first=inspect("running", restarts=1)
    )
    assert outcome == "container 3f2a9c1d8e7b is restarting (restart count 2)"
    assert (
        judge(inspect("running", "healthy", restarts=1), first=inspect("running", restarts=1))
        == "ok"
    )


def test_without_a_healthcheck_running_must_also_be_stable() -> None:
    assert judge(inspect("running"), stable_for=0) == "wait"
    assert judge(inspect("running"), stable_for=4.9) == "wait"
    assert judge(inspect("running"), stable_for=5) == "ok"


@pytest.mark.parametrize("status", ["created", "paused", "removing"])
def test_other_states_wait(status: str) -> None:
    assert judge(inspect(status), stable_for=60) == "wait"


# -- the poll loop ------------------------------------------------------------------------------


def test_becomes_healthy() -> None:
    container = FakeContainer(
        inspect("created"),
        inspect("running", "starting"),
        inspect("running", "starting"),
        inspect("running", "healthy"),
    )
    client = FakeClient(container)
    seen = wait(client)
    assert seen.health == "healthy"
    assert container.reloads == 4
    assert client.containers.calls[0]["filters"] == {
        "label": ["com.docker.compose.project=shop", "com.docker.compose.service=app"]
    }


def test_goes_unhealthy_fails_fast() -> None:
    client = FakeClient(
        FakeContainer(inspect("running", "starting"), inspect("running", "unhealthy"))
    )
    started = time.monotonic()
    with pytest.raises(Unhealthy, match="container 3f2a9c1d8e7b is unhealthy"):
        wait(client, timeout=30)
    assert time.monotonic() - started < 2  # the first unhealthy poll ends it, not the timeout


def test_exits_fails_fast_with_the_code() -> None:
    client = FakeClient(
        FakeContainer(inspect("running", "starting"), inspect("exited", exit_code=3))
    )
    started = time.monotonic()
    with pytest.raises(Unhealthy, match="exited with code 3"):
        wait(client, timeout=30)
    assert time.monotonic() - started < 2


def test_a_restart_between_polls_fails_fast() -> None:
    client = FakeClient(
        FakeContainer(inspect("running", restarts=0), inspect("running", restarts=1))
    )
    with pytest.raises(Unhealthy, match=r"restarting \(restart count 1\)"):
        wait(client, timeout=30, stable_seconds=20)


def test_never_healthy_fails_at_the_timeout() -> None:
    client = FakeClient(FakeContainer(inspect("running", "starting")))
    started = time.monotonic()
    with pytest.raises(Unhealthy) as caught:
        wait(client, timeout=0.3)
    took = time.monotonic() - started
    assert 0.3 <= took < 2
    assert str(caught.value) == "not healthy after 0.3s (status running, health starting)"


def test_without_a_healthcheck_it_waits_for_stable_seconds() -> None:
    container = FakeContainer(inspect("created"), inspect("running"))
    started = time.monotonic()
    seen = wait(FakeClient(container), stable_seconds=0.2)
    assert seen.status == "running"
    assert seen.health is None
    assert time.monotonic() - started >= 0.2
    assert container.reloads > 2


def test_no_container_is_a_failure() -> None:
    other = FakeContainer(
        inspect("running", "healthy", labels={**LABELS, "com.docker.compose.project": "other"})
    )
    with pytest.raises(Unhealthy, match="no container for service app"):
        wait(FakeClient(other))


def test_a_container_that_vanishes_is_a_failure() -> None:
    client = FakeClient(FakeContainer(inspect("running", "starting"), vanish_after=2))
    with pytest.raises(Unhealthy, match="container of app vanished"):
        wait(client)


def test_a_one_off_container_of_the_service_is_ignored() -> None:
    # `compose run app ...` leaves a container with the same service label; it is not the app.
    oneoff = FakeContainer(
        inspect("running", "healthy", labels={**LABELS, "com.docker.compose.oneoff": "True"})
    )
    app = FakeContainer(inspect("running", "unhealthy"))
    with pytest.raises(Unhealthy, match="is unhealthy"):
        wait(FakeClient(oneoff, app))


def test_the_running_container_is_preferred_over_an_exited_one() -> None:
    old = inspect("exited", exit_code=0)
    old["Created"] = "2025-03-01T10:30:00Z"  # newer, but not running
    client = FakeClient(FakeContainer(old), FakeContainer(inspect("running", "healthy")))
    assert wait(client).health == "healthy"


# -- the HTTP probe -----------------------------------------------------------------------------


class Probe:
    """An HTTP server on 127.0.0.1 that fails `failures` times, then answers 200."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.hits = 0
        probe = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                probe.hits += 1
                code = 503 if probe.hits <= probe.failures else 200
                self.send_response(code)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/health"


@pytest.fixture
def probe_server() -> Iterator[Callable[[int], Probe]]:
    started: list[Probe] = []

    def start(failures: int) -> Probe:
        probe = Probe(failures)
        threading.Thread(
            target=probe.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        ).start()
        started.append(probe)
        return probe

    yield start
    for probe in started:
        probe.server.shutdown()
        probe.server.server_close()


def test_the_probe_must_answer_2xx_too(probe_server: Callable[[int], Probe]) -> None:
    probe = probe_server(2)
    client = FakeClient(FakeContainer(inspect("running", "healthy")))
    seen = wait(client, probe_url=probe.url)
    assert seen.health == "healthy"
    assert probe.hits == 3


def test_a_probe_that_never_answers_2xx_fails_at_the_timeout(
    probe_server: Callable[[int], Probe],
) -> None:
    probe = probe_server(10**6)
    client = FakeClient(FakeContainer(inspect("running", "healthy")))
    with pytest.raises(Unhealthy) as caught:
        wait(client, probe_url=probe.url, timeout=0.3)
    assert str(caught.value) == (
        f"not healthy after 0.3s (status running, health healthy, probe {probe.url} not answering)"
    )
    assert probe.hits >= 2


def test_the_probe_is_not_asked_before_the_container_is_healthy(
    probe_server: Callable[[int], Probe],
) -> None:
    probe = probe_server(0)
    client = FakeClient(
        FakeContainer(inspect("running", "starting"), inspect("running", "unhealthy"))
    )
    with pytest.raises(Unhealthy, match="unhealthy"):
        wait(client, probe_url=probe.url)
    assert probe.hits == 0
