"""The command line: help for every command, `python -m entrypoint`, the environment."""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import re
import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer.main
from harness import ROOT, Cli, assert_one_clear_error, query, run_cli, write_plain

from entrypoint.base import errors
from entrypoint.cli import app

Invoke = Callable[..., Any]

COMMANDS = sorted(typer.main.get_command(app).commands)  # type: ignore[attr-defined]


def test_the_commands() -> None:
    assert COMMANDS == [
        "backup",
        "backups",
        "check",
        "lint",
        "plan",
        "rehearse",
        "restore",
        "run",
        "status",
    ]


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_naming_each_option(invoke: Invoke, name: str) -> None:
    result = invoke(name, "--help")
    assert result.exit_code == 0
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    options = [p for p in command.params if p.param_type_name == "option"]
    assert options
    for option in options:
        for flag in [*option.opts, *option.secondary_opts]:
            assert flag in result.stdout, f"{name} --help does not mention {flag}"
        if option.envvar:
            assert option.envvar in result.stdout, f"{name} --help hides {option.envvar}"


def test_python_dash_m_entrypoint_works(cli: Cli) -> None:
    proc = cli("--help")
    assert proc.returncode == 0, proc.stderr
    assert "Usage: python -m entrypoint" in proc.stdout
    for name in COMMANDS:
        assert re.search(rf"^\s+{name}\s", proc.stdout, re.MULTILINE), name


def test_every_exit_code_is_documented(invoke: Invoke) -> None:
    text = invoke("--help").stdout
    codes = {
        cls.exit_code
        for cls in vars(errors).values()
        if isinstance(cls, type) and issubclass(cls, errors.EntrypointError)
    } - {errors.EntrypointError.exit_code}
    assert codes == {2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 126, 127}
    stopped = {128 + signal.SIGHUP, 128 + signal.SIGINT, 128 + signal.SIGTERM}  # errors.Stopped
    for code in codes | stopped:
        assert re.search(rf"^\s+{code}\s+\S", text, re.MULTILINE), f"exit code {code}"


def test_console_scripts_are_declared() -> None:
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["entrypoint"] == "entrypoint.cli:main"
    module, _, function = scripts["entrypoint"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))


def test_installed_console_script_points_at_main() -> None:
    try:
        dist = importlib.metadata.distribution("litedeploy")
    except importlib.metadata.PackageNotFoundError:
        pytest.skip("litedeploy is not pip-installed here; `python -m entrypoint` is tested")
    scripts = {ep.name: ep.value for ep in dist.entry_points if ep.group == "console_scripts"}
    assert scripts.get("entrypoint") == "entrypoint.cli:main"
    script = Path(sys.executable).parent / "entrypoint"  # beside this interpreter, as pip puts it
    if script.exists():
        proc = subprocess.run([script, "--help"], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, proc.stderr
        assert "Usage: entrypoint" in proc.stdout


def test_defaults_are_data_app_db_and_drizzle_migrations(tmp_path: Path, cli: Cli) -> None:
    write_plain(tmp_path / "drizzle" / "migrations", [("0001_a", "CREATE TABLE a (id integer);")])
    (tmp_path / "data").mkdir()
    proc = cli("run")
    assert proc.returncode == 0, proc.stderr
    assert query(tmp_path / "data" / "app.db", "SELECT name FROM __litedeploy_migrations") == [
        ("0001_a",)
    ]


def test_options_from_the_environment(tmp_path: Path, invoke: Invoke) -> None:
    folder = write_plain(tmp_path / "m", [("0001_a", "CREATE TABLE a (id integer);")])
    db = tmp_path / "app.db"
    env = {
        "DB_PATH": str(db),
        "MIGRATIONS_DIR": str(folder),
        "LITEDEPLOY_MIGRATIONS_TABLE": "history",
    }
    result = invoke("run", env=env)
    assert result.exit_code == 0, result.stderr
    assert query(db, "SELECT name FROM history") == [("0001_a",)]


@pytest.mark.parametrize(
    "args",
    [
        ["run", "--transaction", "sometimes"],
        ["run", "--lock-timeout", "-1"],
        ["run", "--format", "yaml"],
        ["status", "--no-such-option"],
    ],
)
def test_bad_option_values_exit_2(tmp_path: Path, invoke: Invoke, args: list[str]) -> None:
    folder = write_plain(tmp_path / "m", [("0001_a", "CREATE TABLE a (id integer);")])
    result = invoke(*args, "--db", tmp_path / "app.db", "--migrations", folder)
    assert result.exit_code == 2
    assert not (tmp_path / "app.db").exists()


def test_status_errors_use_the_same_exit_codes(tmp_path: Path, invoke: Invoke) -> None:
    result = invoke("status", "--db", tmp_path / "app.db", "--migrations", tmp_path / "nope")
    assert result.exit_code == 3
    assert "does not exist" in result.stderr


@pytest.mark.parametrize(
    ("args", "env", "needles"),
    [
        (
            ["run"],
            {"LITEDEPLOY_BACKUP": "bogus"},
            ["--backup", "LITEDEPLOY_BACKUP", "'bogus' is not one of"],
        ),
        (["run", "--transaction", "sometimes"], {}, ["--transaction", "sometimes"]),
        (["status", "--no-such-option"], {}, ["no such option: --no-such-option"]),
        (["no-such-command"], {}, ["no such command"]),
    ],
)
def test_a_bad_option_is_one_line_and_a_hint_like_every_error(
    tmp_path: Path, cli: Cli, args: list[str], env: dict[str, str], needles: list[str]
) -> None:
    """Not click's usage block: the same `entrypoint: error:` line as every other failure."""
    folder = write_plain(tmp_path / "m", [("0001_a", "CREATE TABLE a (id integer);")])
    proc = cli(*args, "--db", tmp_path / "app.db", "--migrations", folder, env=env)
    assert_one_clear_error(proc, 2, *needles)
    assert "entrypoint: hint: `" in proc.stderr and "--help` lists the options" in proc.stderr
    assert "Usage:" not in proc.stderr
    assert not (tmp_path / "app.db").exists()


def test_the_default_migrations_folder_is_drizzle_kits(tmp_path: Path, cli: Cli) -> None:
    """drizzle-kit writes to ./drizzle; ./drizzle/migrations (the old default) still works."""
    write_plain(tmp_path / "drizzle", [("0001_init", "CREATE TABLE a (x integer);")])
    proc = cli("run", "--db", tmp_path / "app.db")
    assert proc.returncode == 0, proc.stderr
    assert "migrations drizzle (sql, 1)" in proc.stderr
    old = tmp_path / "old"
    write_plain(old / "drizzle" / "migrations", [("0001_init", "CREATE TABLE b (x integer);")])
    proc = run_cli("run", "--db", old / "app.db", cwd=old)
    assert proc.returncode == 0, proc.stderr
    assert "migrations drizzle/migrations (sql, 1)" in proc.stderr


PLANTED_BUG = """
import importlib, sys
target = importlib.import_module(sys.argv[1])
def bug(*args, **kwargs):
    raise RuntimeError("a planted bug")
setattr(target, sys.argv[2], bug)
target.main()
"""


@pytest.mark.parametrize("debug", [False, True])
@pytest.mark.parametrize(
    ("module", "attribute"), [("entrypoint.cli.main", "_dispatch"), ("deploy.cli", "app")]
)
def test_an_internal_error_exits_70_with_a_traceback_only_when_asked(
    module: str, attribute: str, debug: bool
) -> None:
    """A bug is exit 70 (documented) whether or not LITEDEPLOY_DEBUG asks for its traceback;
    it was exit 1 with the variable set (Python's own uncaught-exception code). The bug is
    planted in a child process: main() installs signal handlers and log handlers."""
    env = {k: v for k, v in os.environ.items() if k != "LITEDEPLOY_DEBUG"}
    env["PYTHONPATH"] = str(ROOT)
    if debug:
        env["LITEDEPLOY_DEBUG"] = "1"
    proc = subprocess.run(
        [sys.executable, "-c", PLANTED_BUG, module, attribute],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 70, proc.stderr
    assert "internal error: RuntimeError: a planted bug" in proc.stderr
    assert ("Traceback (most recent call last)" in proc.stderr) == debug


SHARED_VARIABLES = {"DB_PATH", "MIGRATIONS_DIR", "APP_ENV"}  # the app's own names, read on purpose


@pytest.mark.parametrize("name", COMMANDS)
def test_every_setting_of_the_tools_own_is_namespaced(name: str) -> None:
    """The entrypoint runs in the app's environment: its own settings are LITEDEPLOY_*."""
    command = typer.main.get_command(app).commands[name]  # type: ignore[attr-defined]
    for option in command.params:
        names = option.envvar if isinstance(option.envvar, list) else [option.envvar]
        for variable in filter(None, names):
            assert variable.startswith("LITEDEPLOY_") or variable in SHARED_VARIABLES, (
                f"{name} {option.opts[0]} reads {variable}"
            )


def test_the_apps_own_variables_of_common_names_change_nothing(tmp_path: Path, cli: Cli) -> None:
    """An app that sets BACKUP, CHECK, FINDINGS or LOCK_TIMEOUT for itself: the entrypoint
    neither reads them nor refuses them (before the prefix, each was an exit 2 or a change of
    how the database was migrated)."""
    folder = write_plain(tmp_path / "migrations", [("0001_init.sql", "CREATE TABLE t (id int);")])
    db = tmp_path / "data" / "app.db"
    db.parent.mkdir()
    apps = {
        "BACKUP": "s3://bucket/app",
        "CHECK": "1",
        "FINDINGS": "ignore",
        "LOCK_TIMEOUT": "nan",
        "MIGRATE_MODE": "yolo",
        "BACKUP_KEEP": "0",
    }
    proc = cli("run", "--db", db, "--migrations", folder, "--", "true", env=apps)
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT count(*) FROM sqlite_master WHERE name = 't'") == [(1,)]
    refused = cli(
        "run", "--db", db, "--migrations", folder, "--", "true",
        env={"LITEDEPLOY_LOCK_TIMEOUT": "nan"},
    )  # fmt: skip
    assert_one_clear_error(refused, 2, "LITEDEPLOY_LOCK_TIMEOUT")


def test_both_commands_print_their_version(tmp_path: Path, cli: Cli) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    proc = cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"entrypoint (litedeploy) {version}, SQLite ")
    deploy = subprocess.run(
        [sys.executable, "-m", "deploy", "--version"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert deploy.returncode == 0, deploy.stderr
    assert deploy.stdout == f"deploy (litedeploy) {version}\n"


def test_json_log_lines_for_log_collectors(tmp_path: Path, cli: Cli) -> None:
    folder = write_plain(tmp_path / "migrations", [("0001_init.sql", "CREATE TABLE t (id int);")])
    db = tmp_path / "data" / "app.db"
    db.parent.mkdir()
    env = {"LITEDEPLOY_LOG_FORMAT": "json"}
    proc = cli("run", "--db", db, "--migrations", folder, "--", "true", env=env)
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stderr.splitlines()]  # every line is one object
    assert lines and all(
        set(line) == {"time", "level", "event", "message", "fields"} for line in lines
    )
    assert all(
        re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["time"]) for line in lines
    )
    assert {line["level"] for line in lines} <= {"info", "warning"}
    applied = [line for line in lines if "0001_init" in line["message"]]
    assert applied and applied[0]["level"] == "info"
    refused = cli("run", "--db", db, "--migrations", folder, "--lock-timeout", "nan", env=env)
    (error, hint) = [json.loads(line) for line in refused.stderr.splitlines()]
    assert refused.returncode == 2
    assert (error["level"], error["event"], hint["event"]) == ("error", "error", "hint")
    assert "--lock-timeout" in error["message"]


def test_an_unknown_log_format_is_a_usage_error(tmp_path: Path, cli: Cli) -> None:
    proc = cli("status", "--db", tmp_path / "app.db", env={"LITEDEPLOY_LOG_FORMAT": "xml"})
    assert_one_clear_error(proc, 2, "LITEDEPLOY_LOG_FORMAT='xml' is not one of text, json")
