"""Start-first deploys of the example stack (docker-compose.yml: nginx in front of the Node
shop, deploy.yml naming it), on a real engine, with Compose v1 and v2 (both can scale a
service up beside its running container: `up --no-recreate --scale app=2`).

A client goes through the proxy every 20 ms during each deploy, reading and writing. An
expand-only release (v2 adds the reviews table) starts beside v1, takes over with no failed
request and every write kept; a contract release (v3 rebuilds products) is recreated as before;
an expand-only release that crashes before it is healthy is withdrawn with the proxy never
switched and the old container never stopped; one that crashes after the switch is switched
back from during the grace period.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from node_stack import NODE_REPO
from stack import Stack
from test_deploy_scenarios import EXIT_DEPLOYED, EXIT_ROLLED_BACK, deploy, history
from test_node_stack import deployed

pytestmark = pytest.mark.docker


@dataclass
class Probe:
    """A client of the shop through the proxy: every 20 ms a GET /products or a POST of a new
    product, alternately. Counts what failed, and keeps the names whose POST answered 201."""

    url: str
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def run(self) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            started = time.monotonic()
            self.requests += 1
            name = f"probe-{n}"
            try:
                if n % 2:
                    body = json.dumps({"name": name, "description": "", "price": n}).encode()
                    request = urllib.request.Request(
                        f"{self.url}/products",
                        data=body,
                        method="POST",
                        headers={"Content-Type": "application/json"},
                    )
                    with urllib.request.urlopen(request, timeout=10) as response:
                        if response.status == 201:
                            self.written.append(name)
                else:
                    with urllib.request.urlopen(f"{self.url}/products", timeout=10) as response:
                        response.read()
            except (urllib.error.URLError, OSError) as exc:
                self.failures.append(f"{'POST' if n % 2 else 'GET'} #{n}: {exc}")
            time.sleep(max(0.0, 0.02 - (time.monotonic() - started)))


@contextmanager
def probing(stack: Stack) -> Iterator[Probe]:
    probe = Probe(f"http://127.0.0.1:{stack.port}")
    thread = threading.Thread(target=probe.run, daemon=True)
    thread.start()
    try:
        time.sleep(0.5)  # the probe is under way before the deploy begins
        yield probe
    finally:
        probe.stop.set()
        thread.join(timeout=30)


def upstream(stack: Stack) -> str:
    return (stack.dir / "proxy" / "upstream.conf").read_text()


def started(stack: Stack, container: str) -> tuple[str, int]:
    info = stack.inspect(container)
    return info["State"]["StartedAt"], int(info["RestartCount"])


def names_in_db(stack: Stack) -> set[str]:
    return {name for (name,) in stack.query("SELECT name FROM products")}


def test_an_expand_only_release_starts_first_and_a_contract_one_is_recreated(
    node_stack: Stack, node_images: dict[str, str]
) -> None:
    stack = node_stack
    first = deployed(stack, "test-v1")
    assert first["strategy"] == "recreate"  # nothing ran before
    v1 = stack.container()
    assert stack.inspect(v1)["Name"].lstrip("/") in upstream(stack)

    with probing(stack) as probe:
        result = deploy(stack, "--tag", "test-v2", "--json", "--health-timeout", "60")
    assert result.returncode == EXIT_DEPLOYED, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert report["strategy"] == "start-first"
    assert (
        "strategy: start-first (expand-only: the running version can live with "
        "0001_add_reviews)" in result.stderr
    )
    assert probe.failures == [], probe.failures
    assert probe.requests > 100 and len(probe.written) > 50, probe
    assert set(probe.written) <= names_in_db(stack)  # every write made during the deploy
    (v2,) = stack.containers()  # the old container is gone, one runs
    assert v2 != v1
    assert stack.inspect(v2)["Config"]["Image"] == f"{NODE_REPO}:test-v2"
    assert stack.inspect(v2)["Name"].lstrip("/") in upstream(stack)
    assert stack.query("SELECT name FROM sqlite_master WHERE name = 'reviews'") == [("reviews",)]
    manifest = json.loads(Path(report["backup"] + ".json").read_text())
    assert manifest["pending"] == ["0001_add_reviews"]  # the new container's online backup

    # A rebuild is not something v2 can live with: recreate, as before.
    result = deploy(stack, "--tag", "test-v3", "--json", "--health-timeout", "60")
    assert result.returncode == EXIT_DEPLOYED, result.stderr
    assert json.loads(result.stdout)["strategy"] == "recreate"
    assert (
        "strategy: recreate (not expand-only: 0002_optional_description statement 4: rebuilds "
        "table products" in result.stderr
    )
    assert stack.wait_healthy()["Config"]["Image"] == f"{NODE_REPO}:test-v3"
    assert [(r["outcome"], r["strategy"]) for r in history(stack)] == [
        ("deployed", "recreate"),
        ("deployed", "start-first"),
        ("deployed", "recreate"),
    ]


def test_an_expand_only_release_that_fails_never_gets_traffic_and_the_old_one_never_stops(
    node_stack: Stack, node_images: dict[str, str]
) -> None:
    stack = node_stack
    deployed(stack, "test-v1")
    (v1,) = stack.containers()
    before = started(stack, v1)
    pointed = upstream(stack)

    with probing(stack) as probe:
        result = deploy(stack, "--tag", "test-v2-crash", "--json", "--health-timeout", "60")
    assert result.returncode == EXIT_ROLLED_BACK, result.stderr
    assert "the proxy never switched" in result.stderr
    assert "crashing on purpose (SHOP_FAIL=crash)" in result.stderr  # its logs are shown
    assert probe.failures == [], probe.failures
    assert probe.requests > 20
    assert stack.containers() == [v1]  # the new container is gone
    assert started(stack, v1) == before  # never stopped, never restarted
    assert upstream(stack) == pointed
    # Nothing restored: the expand-only migration stays, and so does every write.
    assert stack.query("SELECT name FROM sqlite_master WHERE name = 'reviews'") == [("reviews",)]
    assert set(probe.written) <= names_in_db(stack)
    last = history(stack)[-1]
    assert (last["outcome"], last["strategy"]) == ("rolled-back", "start-first")
    assert stack.get("/products")[0] == 200


def test_a_release_failing_after_the_switch_is_switched_back_within_the_grace_period(
    node_stack: Stack, node_images: dict[str, str]
) -> None:
    stack = node_stack
    deployed(stack, "test-v1")
    (v1,) = stack.containers()
    before = started(stack, v1)
    pointed = upstream(stack)

    with probing(stack) as probe:
        result = deploy(stack, "--tag", "test-v2-crash-later", "--json", "--health-timeout", "60")
    assert result.returncode == EXIT_ROLLED_BACK, result.stderr
    assert "✓ switch the proxy to" in result.stderr  # it was healthy, and got the traffic
    assert "✓ switch back to" in result.stderr
    assert "the proxy was switched back to" in result.stderr
    assert stack.containers() == [v1]
    assert started(stack, v1) == before  # kept through the grace period, never stopped
    assert upstream(stack) == pointed
    assert set(probe.written) <= names_in_db(stack)  # what the new one wrote is kept too
    # Requests between its crash and the switch back fail (a 502 from the proxy): how many
    # is what bench/start_first.py measures; the probe itself must have run.
    assert probe.requests > 100
    last = history(stack)[-1]
    assert (last["outcome"], last["strategy"]) == ("rolled-back", "start-first")
    assert stack.get("/products")[0] == 200


def test_a_start_first_deploy_killed_after_the_switch_is_finished_by_the_next(
    node_stack: Stack, node_images: dict[str, str]
) -> None:
    """kill -9 of `deploy` in the grace period (both containers up, the proxy on the new one):
    the client never notices, and the next deploy takes over the lock and ends with one
    container of the release."""
    stack = node_stack
    deployed(stack, "test-v1")
    (v1,) = stack.containers()
    with probing(stack) as probe:
        killed = deploy(
            stack,
            "--tag",
            "test-v2",
            env={"LITEDEPLOY_FAULT": "deploy.grace-period.start"},
        )
        assert killed.returncode == -9, killed.stderr
        assert len(stack.containers()) == 2  # the old one was not stopped yet
        assert stack.inspect(v1)["Name"].lstrip("/") not in upstream(stack)  # switched
        result = deploy(stack, "--tag", "test-v2", "--json", "--grace-seconds", "2")
    assert result.returncode == EXIT_DEPLOYED, result.stderr
    assert "died" in result.stderr and "taking over" in result.stderr
    assert json.loads(result.stdout)["strategy"] == "start-first"  # nothing pending now
    assert probe.failures == [], probe.failures
    assert set(probe.written) <= names_in_db(stack)
    (v2,) = stack.containers()  # both earlier containers are gone
    assert stack.inspect(v2)["Config"]["Image"] == f"{NODE_REPO}:test-v2"
    assert stack.inspect(v2)["Name"].lstrip("/") in upstream(stack)
