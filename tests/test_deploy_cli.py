"""`python -m deploy`: help for every command, exit codes, config errors as one clear line.

None of these reach Docker: each stops at the configuration or reads only the state folder.
A few run as real processes (what an operator runs); the rest in-process, which is faster.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import typer.main
from typer.testing import CliRunner

from deploy import errors, records
from deploy.cli import app

ROOT = Path(__file__).resolve().parent.parent
ALL = typer.main.get_command(app).commands  # type: ignore[attr-defined]
COMMANDS = sorted(name for name, command in ALL.items() if not command.hidden)
# The deploy CLI reads these; the developer's shell must not leak them into a test.
LEAKY = ("LITEDEPLOY_CONFIG", "LITEDEPLOY_DEBUG", "LITEDEPLOY_LOG_FORMAT", "DOCKER_HOST", "APP_TAG")


def deploy(
    *args: str | Path, cwd: Path, extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `python -m deploy ARGS` as a real process; never raises on the exit code."""
    env = {k: v for k, v in os.environ.items() if k not in LEAKY} | (extra or {})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return subprocess.run(
        [sys.executable, "-m", "deploy", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


@dataclass(frozen=True)
class Ran:
    returncode: int
    stdout: str
    stderr: str


Invoke = Callable[..., Ran]


@pytest.fixture
def invoke(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Invoke:
    """The typer app in-process, in tmp_path (where it looks for ./deploy.yml)."""
    monkeypatch.chdir(tmp_path)
    for name in LEAKY:
        monkeypatch.delenv(name, raising=False)
    runner = CliRunner()

    def run(*args: str | Path) -> Ran:
        result = runner.invoke(app, [str(a) for a in args])
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Ran(result.exit_code, result.stdout, result.stderr)

    return run


def one_clear_error(proc: subprocess.CompletedProcess[str] | Ran, code: int, *needles: str) -> str:
    """The documented exit code, exactly one `deploy: error:` line naming the problem, no trace."""
    assert proc.returncode == code, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "internal error" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.startswith("deploy: error:")]
    assert len(lines) == 1, proc.stderr
    for needle in needles:
        assert needle in lines[0], proc.stderr
    return lines[0]


def test_the_commands() -> None:
    assert COMMANDS == [
        "backup",
        "history",
        "logs",
        "preflight",
        "prune",
        "restore",
        "rollback",
        "status",
    ]
    assert sorted(ALL) == sorted([*COMMANDS, "files"])  # files: deploy's own, for its helper


def test_help_lists_every_command_and_exit_code(tmp_path: Path) -> None:
    proc = deploy("--help", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Usage: python -m deploy" in proc.stdout
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", proc.stdout, re.MULTILINE), name
    documented = {int(m) for m in re.findall(r"^\s+(\d+)\s+\S", proc.stdout, re.MULTILINE)}
    raised = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.DeployError) and cls.exit_code != 1
    }
    assert raised == {2, 3, 4, 5, 6, 7}
    assert raised | {0} <= documented
    for flag in ("--config", "--compose-file", "--service", "--tag", "--health-timeout"):
        assert flag in proc.stdout, flag
    assert "--no-rehearse" in proc.stdout


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help(invoke: Invoke, name: str) -> None:
    proc = invoke(name, "--help")
    assert proc.returncode == 0, proc.stderr
    assert f" {name} [OPTIONS]" in proc.stdout
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    for param in command.params:
        if param.param_type_name == "option":
            for flag in [*param.opts, *param.secondary_opts]:
                assert flag in proc.stdout, f"{name} --help does not mention {flag}"


def test_a_malformed_deploy_yml_is_one_clear_line(tmp_path: Path) -> None:
    (tmp_path / "bad.yml").write_text("service: app\nhealth_timeout: 5\n  stable_seconds: 3\n")
    proc = deploy("--config", "bad.yml", "--tag", "x", cwd=tmp_path)
    one_clear_error(proc, 2, "bad.yml is not valid YAML at line 3")
    assert proc.stdout == ""


def test_json_log_lines_for_log_collectors(tmp_path: Path) -> None:
    """LITEDEPLOY_LOG_FORMAT=json: deploy's lines are the entrypoint's objects too."""
    (tmp_path / "deploy.yml").write_text("servce: app\n")
    proc = deploy("--tag", "x", cwd=tmp_path, extra={"LITEDEPLOY_LOG_FORMAT": "json"})
    assert proc.returncode == 2
    (error, hint) = [json.loads(line) for line in proc.stderr.splitlines()]
    assert set(error) == {"time", "level", "event", "message", "fields"}
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", error["time"])
    assert (error["level"], error["event"]) == ("error", "error")
    assert error["message"] == "error: deploy.yml: servce: unknown setting"
    assert (hint["level"], hint["event"]) == ("error", "hint")
    assert hint["message"].startswith("hint: known settings:")


def test_an_unknown_log_format_is_a_usage_error(tmp_path: Path) -> None:
    proc = deploy("history", cwd=tmp_path, extra={"LITEDEPLOY_LOG_FORMAT": "xml"})
    one_clear_error(proc, 2, "LITEDEPLOY_LOG_FORMAT='xml' is not one of text, json")
    assert proc.stdout == ""


def test_the_deploy_yml_in_the_current_folder_is_read(tmp_path: Path, invoke: Invoke) -> None:
    (tmp_path / "deploy.yml").write_text("health_timeout: -1\n")
    proc = invoke("--tag", "x")
    one_clear_error(proc, 2, "health_timeout: must be a positive number of seconds (got -1)")


def test_an_unknown_key_is_one_clear_line(tmp_path: Path, invoke: Invoke) -> None:
    (tmp_path / "deploy.yml").write_text("servce: app\n")
    proc = invoke("--config", "deploy.yml", "--tag", "x")
    one_clear_error(proc, 2, "servce: unknown setting")
    assert "deploy: hint: known settings:" in proc.stderr


def test_a_missing_config_file_is_one_clear_line(invoke: Invoke) -> None:
    proc = invoke("--config", "nope.yml", "--tag", "x")
    one_clear_error(proc, 2, "cannot read nope.yml")


def test_a_bad_flag_value_is_one_clear_line(invoke: Invoke) -> None:
    proc = invoke("--compose", "v3", "--tag", "x")
    one_clear_error(proc, 2, "compose: must be auto, v1 or v2")


def test_without_a_tag_nothing_is_deployed(tmp_path: Path) -> None:
    proc = deploy(cwd=tmp_path)
    one_clear_error(proc, 2, "no tag to deploy")
    assert "--tag" in proc.stderr


def test_a_missing_compose_file_is_a_config_error(invoke: Invoke) -> None:
    # A compose file that is not there is found before anything else is asked of Compose.
    proc = invoke("--tag", "v2", "--compose-file", "missing.yml", "backup")
    one_clear_error(proc, 2, "compose file missing.yml does not exist")


def test_history_reads_the_state_beside_the_compose_file(tmp_path: Path, invoke: Invoke) -> None:
    # deploy.yml in ops/ names the compose file relative to itself; a flag would win over it.
    (tmp_path / "ops").mkdir()
    (tmp_path / "ops" / "deploy.yml").write_text("compose_file: ../stack/docker-compose.yml\n")
    state = tmp_path / "stack" / ".litedeploy"
    proc = invoke("--config", "ops/deploy.yml", "history")
    assert proc.returncode == 0, proc.stderr
    assert f"no deploys recorded in {state / 'history.jsonl'}" in proc.stdout

    records.append(
        state,
        {
            "deploy_id": "20250101T000000Z-abcdef",
            "started_at": "2025-01-01T00:00:00+00:00",
            "outcome": "deployed",
            "from_image": "shop:v1",
            "to_image": "shop:v2",
            "backup": "/srv/data/backups/app-20250101.db",
            "durations": {"total": 12.34},
        },
    )
    proc = invoke("--config", "ops/deploy.yml", "history")
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip()
    for part in ("20250101T000000Z-abcdef", "deployed", "shop:v1 -> shop:v2", "12.3s"):
        assert part in line
    assert "backup app-20250101.db" in line

    other = tmp_path / "other" / "docker-compose.yml"
    proc = invoke("--config", "ops/deploy.yml", "--compose-file", other, "--json", "history")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == []
