"""Every branch of a start-first deploy (deployer.py's `_start_first`), fast: the rollback
paths' fake Docker host, grown a second container, the new image's plan and the proxy's reload,
in front of a real SQLite file, the real upstream file and the real history.

tests/deploy/test_start_first.py runs the same story end to end (a real engine, Compose v1 and
v2, nginx, a client every 20 ms); these reach what a real engine makes slow or hard to provoke:
a reload that fails, a Compose that starts nothing, the order of every step.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from test_deploy_rollback_paths import MIGRATE, REPOSITORY, FakeHost, Version, World, dump
from test_deploy_rollback_paths import world as world  # the fixture

from deploy.deployer import Outcome
from deploy.errors import ConfigError, RolledBack, exit_code
from deploy.health import Unhealthy
from deploy.host import Box
from deploy.runner import Result
from deploy.stack import Stack


@dataclass
class Side(Version):
    """A release beside the running one: its plan's verdict, and when it fails."""

    expand_only: bool = True
    dies_in_grace: bool = False


@dataclass
class TwoContainerHost(FakeHost):
    boxes: list[Box] = field(default_factory=list)
    reload_fails: bool = False
    upstream_at_reload: list[str] = field(default_factory=list)
    upstream: Path | None = None

    def containers(self, stack: Stack) -> list[Box]:
        return list(self.boxes)

    def run(
        self,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: str | None = None,
        timeout: float | None = None,
    ) -> Result:
        argv = tuple(argv)
        if argv[-2:] == ("plan", "--json"):
            self.calls.append("plan")
            version = self.versions[argv[-3].split(":")[1]]  # IMAGE [program args] plan --json
            fit = version.expand_only if isinstance(version, Side) else True
            out = {
                "migrations": [{"name": "0002"}] if version.migrate else [],
                "expand_only": fit,
                "contract_changes": [] if fit else ["0002 statement 1: rebuilds table notes"],
            }
            return Result(argv, 0, json.dumps(out), "")
        if "exec" in argv:
            assert self.upstream is not None
            self.upstream_at_reload.append(self.upstream.read_text().strip())
            self.calls.append("reload")
            return Result(argv, 1 if self.reload_fails else 0, "", "nginx: [emerg] bad\n")
        if "--no-recreate" in argv and "--scale" not in argv:
            self.calls.append("proxy up")
            return Result(argv, 0, "", "")
        if "--scale" in argv:
            tag = (env or {})["APP_TAG"]
            self.calls.append(f"beside {tag}")
            if tag in self.up_fails:
                return Result(argv, 1, "", "port is already allocated\n")
            n = len(self.boxes) + 1
            self.boxes.append(Box(f"id-{n}", f"shop-app-{n}", f"{REPOSITORY}:{tag}", True))
            self._entrypoint(self.versions[tag], "x")
            return Result(argv, 0, "", "")
        return super().run(argv, env=env, cwd=cwd, timeout=timeout)

    def _tag_of_box(self, container_id: str) -> str:
        box = next(b for b in self.boxes if b.id == container_id)
        return box.image.split(":")[1]

    def wait_until_healthy(
        self, stack: Stack, settings: object, container_id: str | None = None
    ) -> None:
        if container_id is None:
            return super().wait_until_healthy(stack, settings)  # type: ignore[arg-type]
        tag = self._tag_of_box(container_id)
        self.calls.append(f"health {tag}")
        if not self.versions[tag].healthy:
            raise Unhealthy(f"container {container_id} exited with code 3")
        return None

    def stays_healthy(self, container_id: str, seconds: float) -> None:
        tag = self._tag_of_box(container_id)
        self.calls.append(f"stays {tag} {seconds:g}s")
        version = self.versions[tag]
        if isinstance(version, Side) and version.dies_in_grace and seconds == 10:
            raise Unhealthy(f"container {container_id} is restarting (restart count 1)")

    def remove(self, container_id: str) -> None:
        self.calls.append(f"remove {self._tag_of_box(container_id)}")
        self.boxes = [b for b in self.boxes if b.id != container_id]

    def failure_lines(self, stack: Stack, container_id: str | None = None) -> list[str]:
        return ["| boom"]


@pytest.fixture
def side(world: World) -> World:
    """`world` with v1 running in one container behind an nginx the settings describe."""
    old = world.host
    host = TwoContainerHost(old.db, old.backup_dir, old.versions, running_tag="v1")
    host.boxes = [Box("id-1", "shop-app-1", f"{REPOSITORY}:v1", True)]
    folder = world.settings.compose_file.parent
    host.upstream = folder / "proxy" / "upstream.conf"
    settings = world.settings.__class__(
        **{
            **world.settings.__dict__,
            "proxy_service": "proxy",
            "proxy_upstream_file": host.upstream,
            "proxy_reload": ("nginx", "-s", "reload"),
        }
    )
    return World(settings, host, [])


def test_an_expand_only_release_starts_beside_switches_and_stops_the_old_one(side: World) -> None:
    side.host.versions["v2"] = Side(migrate=MIGRATE)
    report = side.deployer().deploy("v2")
    assert report.strategy == "start-first"
    host = side.host
    assert isinstance(host, TwoContainerHost)
    assert host.calls == [
        "proxy up",  # the proxy runs (started if it did not)
        "rehearse",
        "plan",  # the new image's verdict, on a snapshot
        "reload",  # pinned to the running container
        "beside v2",
        "health v2",
        "stays v2 5s",  # stable before the switch
        "reload",  # switched
        "stays v2 10s",  # the grace period
        "remove v1",
    ]
    assert host.upstream_at_reload == [
        "set $litedeploy_upstream shop-app-1:8000;",
        "set $litedeploy_upstream shop-app-2:8000;",
    ]
    assert [b.name for b in host.boxes] == ["shop-app-2"]
    assert "stop" not in host.calls  # nothing was stopped by Compose: the old one was drained
    assert any("strategy: start-first (expand-only" in line for line in side.lines)
    assert side.history() == ["deployed"]


def test_a_new_version_failing_health_is_removed_and_nothing_restored(side: World) -> None:
    side.host.versions["v2"] = Side(migrate=MIGRATE, healthy=False)
    with pytest.raises(RolledBack) as caught:
        side.deployer().deploy("v2")
    assert exit_code(caught.value) == 5
    assert (
        "the proxy never switched: shop-app-1 kept serving, never stopped" in caught.value.message
    )
    host = side.host
    assert isinstance(host, TwoContainerHost)
    assert [b.name for b in host.boxes] == ["shop-app-1"]
    assert "remove v1" not in host.calls and "stop" not in host.calls
    assert host.upstream_at_reload == ["set $litedeploy_upstream shop-app-1:8000;"]
    assert "done" in "".join(dump(host.db))  # the expand-only migration stays: no restore
    assert side.history() == [Outcome.ROLLED_BACK]


def test_a_release_dying_in_the_grace_period_is_switched_back(side: World) -> None:
    side.host.versions["v2"] = Side(migrate=MIGRATE, dies_in_grace=True)
    with pytest.raises(RolledBack) as caught:
        side.deployer().deploy("v2")
    assert "the proxy was switched back to shop-app-1" in caught.value.message
    host = side.host
    assert isinstance(host, TwoContainerHost)
    assert host.upstream_at_reload == [
        "set $litedeploy_upstream shop-app-1:8000;",
        "set $litedeploy_upstream shop-app-2:8000;",
        "set $litedeploy_upstream shop-app-1:8000;",
    ]
    assert [b.name for b in host.boxes] == ["shop-app-1"]
    assert host.calls[-1] == "remove v2"


def test_a_failing_reload_at_the_switch_puts_the_old_one_back(side: World) -> None:
    side.host.versions["v2"] = Side(migrate=MIGRATE)
    host = side.host
    assert isinstance(host, TwoContainerHost)
    deployer = side.deployer()
    original = host.run

    def fail_second_reload(argv: Sequence[str], **kwargs: object) -> Result:
        host.reload_fails = host.calls.count("reload") == 1  # the pin works, the switch fails
        return original(argv, **kwargs)  # type: ignore[arg-type]

    host.run = fail_second_reload  # type: ignore[method-assign]
    with pytest.raises(RolledBack) as caught:
        deployer.deploy("v2")
    assert "reloading the proxy" in caught.value.message
    assert host.upstream is not None
    assert host.upstream.read_text() == "set $litedeploy_upstream shop-app-1:8000;\n"
    assert [b.name for b in host.boxes] == ["shop-app-1"]


def test_compose_starting_nothing_beside_is_a_withdrawal_with_the_hint(side: World) -> None:
    side.host.versions["v2"] = Side(migrate=MIGRATE)
    side.host.up_fails.add("v2")
    with pytest.raises(RolledBack) as caught:
        side.deployer().deploy("v2")
    assert "port is already allocated" in caught.value.message
    assert caught.value.hint is not None and "publish no fixed host port" in caught.value.hint
    host = side.host
    assert isinstance(host, TwoContainerHost)
    assert [b.name for b in host.boxes] == ["shop-app-1"]


def test_a_contract_release_is_recreated_with_the_reason(side: World) -> None:
    side.host.versions["v2"] = Side(migrate=MIGRATE, expand_only=False)
    report = side.deployer().deploy("v2")
    assert report.strategy == "recreate"
    assert any(
        "not expand-only: 0002 statement 1: rebuilds table notes" in line for line in side.lines
    )
    host = side.host
    assert isinstance(host, TwoContainerHost)
    assert "beside v2" not in host.calls and "up v2" in host.calls


def test_start_first_without_a_proxy_is_a_config_error(world: World) -> None:
    with pytest.raises(ConfigError, match="needs a proxy"):
        world.deployer(strategy="start-first").deploy("v2")
    assert world.history() == [Outcome.CONFIG_ERROR]
