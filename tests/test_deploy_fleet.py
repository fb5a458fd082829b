"""The fleet's rollout order and policies (fleet.py) against a fake launcher, and the real
child processes against engines that do not answer (no Docker needed).

The Docker tests (tests/deploy/test_fleet.py) run the same rollouts on three real engines.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import pytest

from deploy.cli import child_args
from deploy.config import for_host, load_file, settings
from deploy.endpoint import activate, environment
from deploy.errors import ConfigError
from deploy.fleet import Child, Fleet, State, child_launcher, groups, run_fleet
from deploy.hosts import HostSpec, name_of, select
from deploy.lock import deploy_lock, lock_error

ROOT = Path(__file__).resolve().parent.parent
HOSTS = tuple(HostSpec(f"h{i}", f"unix:///run/e{i}.sock") for i in (1, 2, 3, 4))


class FakeHosts:
    """A launcher whose hosts answer as told; it records every command it was given, and
    which ran at the same time."""

    def __init__(self, codes: dict[tuple[str, str], int] | None = None) -> None:
        self.codes = codes or {}
        self.calls: list[tuple[str, str]] = []
        self.running: set[str] = set()
        self.together: list[set[str]] = []
        self.lock = threading.Lock()

    def __call__(self, spec: HostSpec, command: Sequence[str], say: object) -> Child:
        what = command[0] if command else "deploy"
        with self.lock:
            self.calls.append((spec.name, what))
            self.running.add(spec.name)
            self.together.append(set(self.running))
        time.sleep(0.05)
        with self.lock:
            self.running.discard(spec.name)
        code = self.codes.get((spec.name, what), 0)
        outcome = {0: "deployed", 5: "rolled-back", 4: "aborted", 6: "rollback-failed"}
        report = {
            "outcome": outcome.get(code, "failed") if what == "deploy" else what,
            "from_image": "shop:v1",
            "to_image": "shop:v2",
            "durations": {"health": 2.5, "total": 4.0},
            "error": None if code == 0 else f"{what} failed on {spec.name}",
        }
        return Child(code, report, None if code == 0 else f"{what} failed on {spec.name}")

    def deployed(self) -> list[str]:
        return [name for name, what in self.calls if what == "deploy"]


def rollout(
    fake: FakeHosts, *, canary: int = 1, parallel: int = 2, on_failure: str = "halt"
) -> tuple[Fleet, list[str]]:
    said: list[str] = []
    fleet = Fleet(
        HOSTS[:3],
        "v2",
        canary=canary,
        parallel=parallel,
        on_failure=on_failure,
        launch=fake,
        say=said.append,
    )
    run_fleet(fleet)
    return fleet, said


def test_groups_are_the_canary_then_batches() -> None:
    names = [[h.name for h in g] for g in groups(HOSTS, 1, 2)]
    assert names == [["h1"], ["h2", "h3"], ["h4"]]
    assert [[h.name for h in g] for g in groups(HOSTS, 2, 1)] == [["h1", "h2"], ["h3"], ["h4"]]


def test_a_good_release_preflights_all_then_canary_then_the_rest_at_once() -> None:
    fake = FakeHosts()
    fleet, said = rollout(fake)
    assert [w for _, w in fake.calls[:3]] == ["preflight"] * 3
    assert fake.deployed()[0] == "h1"
    assert {"h2", "h3"} in fake.together  # the batch ran in parallel
    assert not any("h1" in t and len(t) > 1 for t in fake.together[3:])  # the canary alone
    assert [h.state for h in fleet.report.hosts] == [State.DEPLOYED] * 3
    assert fleet.report.exit_code == 0
    assert fleet.report.summary() == "3 deployed"
    assert 0.05 <= fleet.report.preflight_seconds < fleet.report.seconds
    assert any(line.startswith("h2  deployed     shop:v1 -> shop:v2  4.0s") for line in said)


def test_a_failure_halts_hosts_not_started_are_never_touched() -> None:
    fake = FakeHosts({("h2", "deploy"): 5})
    fleet, said = rollout(fake, parallel=1)
    assert fake.deployed() == ["h1", "h2"]
    assert all(name != "h3" for name, what in fake.calls if what != "preflight")
    states = {h.name: h.state for h in fleet.report.hosts}
    assert states == {"h1": State.DEPLOYED, "h2": State.FAILED, "h3": State.NOT_STARTED}
    assert fleet.report.exit_code == 5
    assert fleet.report.halted_at == "h2"
    assert fleet.report.summary() == "1 deployed, 1 rolled back, 1 not started"
    assert any("h1 stays on the new release" in line for line in said)
    assert ("h1", "rollback") not in fake.calls


def test_rollback_all_rolls_back_the_hosts_already_done() -> None:
    fake = FakeHosts({("h2", "deploy"): 5})
    fleet, _ = rollout(fake, parallel=1, on_failure="rollback-all")
    assert ("h1", "rollback") in fake.calls
    assert ("h3", "deploy") not in fake.calls
    assert fleet.report.hosts[0].state is State.ROLLED_BACK
    assert fleet.report.exit_code == 5


@pytest.mark.parametrize(("code", "exit_code"), [(3, 5), (6, 6)])
def test_a_rollback_all_that_is_refused_or_fails(code: int, exit_code: int) -> None:
    fake = FakeHosts({("h2", "deploy"): 5, ("h1", "rollback"): code})
    fleet, said = rollout(fake, parallel=1, on_failure="rollback-all")
    assert fleet.report.hosts[0].state is State.KEPT
    assert fleet.report.exit_code == exit_code
    assert any(line.startswith("h1  kept on the new release") for line in said)


def test_a_failing_host_in_a_batch_lets_its_neighbour_finish_and_stops_the_next_batch() -> None:
    fake = FakeHosts({("h2", "deploy"): 4})
    fleet = Fleet(
        HOSTS, "v2", canary=1, parallel=2, on_failure="halt", launch=fake, say=lambda _: None
    )
    run_fleet(fleet)
    assert fake.deployed()[:1] == ["h1"] and set(fake.deployed()[1:]) == {"h2", "h3"}
    assert ("h4", "deploy") not in fake.calls
    assert fleet.report.exit_code == 4
    assert [h.state for h in fleet.report.hosts] == [
        State.DEPLOYED,
        State.FAILED,
        State.DEPLOYED,
        State.NOT_STARTED,
    ]


def test_a_preflight_failure_anywhere_touches_no_host() -> None:
    fake = FakeHosts({("h3", "preflight"): 7})
    fleet, said = rollout(fake)
    assert fake.deployed() == []
    assert fleet.report.exit_code == 7
    assert fleet.report.halted_at == "h3"
    assert "no host was touched" in said[-1]
    assert all(h.state is State.NOT_STARTED for h in fleet.report.hosts)


def test_the_report_as_json_names_every_host() -> None:
    fake = FakeHosts({("h2", "deploy"): 5})
    fleet, _ = rollout(fake, parallel=1)
    data = json.loads(json.dumps(fleet.report.as_dict()))
    assert [h["state"] for h in data["hosts"]] == ["deployed", "failed", "not-started"]
    assert data["summary"] == {"deployed": 1, "rolled-back": 1, "not-started": 1}
    assert data["exit_code"] == 5


# -- hosts: in deploy.yml, --host ---------------------------------------------------------------


def test_hosts_load_with_their_own_values(tmp_path: Path) -> None:
    (tmp_path / "deploy.yml").write_text(
        "hosts:\n"
        "  - name: eu-1\n    docker_host: ssh://deploy@eu-1.example.com\n"
        "  - name: us-1\n    docker_host: tcp-us\n    db_path: us/app.db\n"
        "  - ssh://root@10.0.0.7:2222\n"
        "parallel: 2\non_failure: rollback-all\n"
    )
    current = settings(load_file(tmp_path / "deploy.yml"), {})
    assert [h.name for h in current.hosts] == ["eu-1", "us-1", "10.0.0.7-2222"]
    assert current.parallel == 2 and current.on_failure == "rollback-all"
    us = for_host(current, current.hosts[1])
    assert us.db_path == tmp_path / "us" / "app.db"
    assert us.docker_host == "tcp-us"
    assert us.state == current.state / "hosts" / "us-1"
    assert us.hosts == ()


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("hosts: []\n", "must be a list of hosts"),
        ("hosts:\n  - name: a\n", "docker_host: required"),
        ("hosts:\n  - name: 'a b'\n    docker_host: ssh://x\n", "name: must be letters"),
        ("hosts:\n  - docker_host: ssh://x\n    health_timeout: 3\n", "not a per-host setting"),
        ("hosts:\n  - ssh://x\n  - ssh://x\n", "x named twice"),
        ("hosts:\n  - ssh://x\nparallel: 0\n", "parallel: must be 1 or more"),
        ("hosts:\n  - ssh://x\non_failure: retry\n", "on_failure: must be halt or rollback-all"),
    ],
)
def test_hosts_mistakes_name_the_field(tmp_path: Path, text: str, words: str) -> None:
    (tmp_path / "deploy.yml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_file(tmp_path / "deploy.yml")
    assert words in caught.value.message


def test_host_flags_select_by_name_or_endpoint() -> None:
    assert [h.name for h in select(HOSTS, [])] == ["h1", "h2", "h3", "h4"]
    assert [h.name for h in select(HOSTS, ["h3", "unix:///run/e1.sock"])] == ["h3", "h1"]
    ad_hoc = select(HOSTS, ["ssh://root@127.0.0.1:22221"])[0]
    assert ad_hoc == HostSpec("127.0.0.1-22221", "ssh://root@127.0.0.1:22221")
    with pytest.raises(ConfigError, match=r"no such host in deploy\.yml"):
        select(HOSTS, ["h9"])
    with pytest.raises(ConfigError, match="given twice"):
        select(HOSTS, ["h1", "h1"])
    assert select((), ["prod-context"])[0] == HostSpec("prod-context", "prod-context")
    assert name_of("tcp://10.1.2.3:2376") == "10.1.2.3-2376"


def test_an_endpoint_or_a_context_points_the_process_at_the_engine() -> None:
    env = {"DOCKER_CONTEXT": "old", "PATH": "/bin"}
    activate("ssh://deploy@h1", env, relay=False)
    assert env == {"DOCKER_HOST": "ssh://deploy@h1", "PATH": "/bin"}
    activate("prod", env)
    assert env == {"DOCKER_CONTEXT": "prod", "PATH": "/bin"}
    assert environment("tcp://h:2376") == {"DOCKER_HOST": "tcp://h:2376"}


def test_a_host_process_gets_the_same_file_and_flags(tmp_path: Path) -> None:
    argv = child_args(
        tmp_path / "deploy.yml",
        {"tag": "v2", "rehearse": False, "push": None, "health_timeout": 30.0, "parallel": 3},
    )
    assert argv == [
        "--config",
        str(tmp_path / "deploy.yml"),
        "--tag",
        "v2",
        "--no-rehearse",
        "--health-timeout",
        "30.0",
    ]


def test_the_preflight_sees_a_lock_held_by_a_running_deploy(tmp_path: Path) -> None:
    assert lock_error(tmp_path) is None  # no lock file yet
    with deploy_lock(tmp_path, "d1", "shop:v2"):
        held = lock_error(tmp_path)
        assert held is not None and "deploy d1" in held.message
    assert lock_error(tmp_path) is None


# -- the real child processes, against engines that do not answer -------------------------------


def test_unreachable_hosts_stop_the_fleet_at_preflight(tmp_path: Path) -> None:
    (tmp_path / "docker-compose.yml").write_text(
        "services:\n  app:\n    image: shop:${APP_TAG:-v1}\n    volumes: [./data:/data]\n"
    )
    (tmp_path / "deploy.yml").write_text(
        "hosts:\n"
        f"  - name: a\n    docker_host: unix://{tmp_path}/a.sock\n"
        f"  - name: b\n    docker_host: unix://{tmp_path}/b.sock\n"
    )
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "--tag", "v2", "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 3, done.stderr
    report = json.loads(done.stdout)
    assert [h["state"] for h in report["hosts"]] == ["not-started", "not-started"]
    assert "Docker is not reachable" in report["preflight"]["a"]["error"]
    assert "preflight failed on a, b; no host was touched" in done.stderr
    assert "Traceback" not in done.stderr
    assert not (tmp_path / ".litedeploy" / "hosts" / "a" / "history.jsonl").exists()


def test_a_one_host_command_refuses_several_hosts(tmp_path: Path) -> None:
    (tmp_path / "deploy.yml").write_text("hosts:\n  - unix:///nowhere/a\n  - unix:///nowhere/b\n")
    done = subprocess.run(
        [sys.executable, "-m", "deploy", "rollback"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "acts on one host; 2 are selected (nowhere-a, nowhere-b)" in done.stderr


def test_a_hosts_lines_reach_the_fleet_as_text_whatever_the_log_format(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The child's lines are read here (its error) and said again in the fleet's own format,
    so the child writes text even under LITEDEPLOY_LOG_FORMAT=json (a real child process)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LITEDEPLOY_LOG_FORMAT", "json")
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    for name in ("LITEDEPLOY_CONFIG", "DOCKER_HOST", "APP_TAG"):
        monkeypatch.delenv(name, raising=False)
    lines: list[str] = []
    child = child_launcher([])(HostSpec("h1", "unix:///nonexistent.sock"), ["status"], lines.append)
    assert child.returncode == 3
    assert child.error == "there is no Docker context named h1"
    assert lines[0] == "error: there is no Docker context named h1"
