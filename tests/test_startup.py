"""The start-up reader (`entrypoint run -- app`, settings from the environment, no typer)
gives the request typer gives for the same environment, or hands the command line to typer.

Typer's answer is taken from its own parser: `run`'s click command reads the environment
and converts each value (make_context), and `launch.run_request` makes the request from
those values, as `run` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from harness import CLI_ENV_VARS, cli_env, write_journal

from entrypoint.cli import app
from entrypoint.cli.launch import RunRequest, run_request
from entrypoint.cli.startup import PUSH_ONLY, SETTINGS, request_from_environment

ROOT = Path(__file__).resolve().parent.parent

# Per setting: values the start-up reader must take itself (typer takes them too) ...
PLAIN = {
    "DB_PATH": ["/data/app.db", "db.sqlite", "./data/a b.db"],
    "MIGRATIONS_DIR": ["/app/drizzle", "migrations"],
    "LITEDEPLOY_MIGRATIONS_FORMAT": ["auto", "drizzle-journal", "drizzle-folders", "sql"],
    "LITEDEPLOY_MIGRATIONS_TABLE": ["my_migrations", "__drizzle_migrations"],
    "LITEDEPLOY_MIGRATE_TRANSACTION": ["each", "all"],
    "LITEDEPLOY_LOCK_TIMEOUT": ["0", "2.5", "86400", " 30 "],
    "LITEDEPLOY_APP_USER": ["node", "1000"],
    "LITEDEPLOY_BACKUP": ["always", "pending", "never"],
    "LITEDEPLOY_BACKUP_DIR": ["/backups", "data/b"],
    "LITEDEPLOY_BACKUP_KEEP": ["1", "10", "10000", " 3"],
    "LITEDEPLOY_BACKUP_METHOD": ["auto", "copy", "online"],
    "LITEDEPLOY_CHECK": ["quick", "integrity"],
    "LITEDEPLOY_JOURNAL_MODE": ["wal", "WAL", "delete", " truncate "],
    "LITEDEPLOY_DEPLOY_ID": ["deploy-20261202T101010Z-abc", "x" * 200],
    "LITEDEPLOY_FINDINGS": ["block", "warn"],
    "LITEDEPLOY_REHEARSAL_DIR": ["/tmp/rehearsals"],
    "APP_ENV": ["production", "staging"],
    "LITEDEPLOY_MIGRATE_MODE": ["migrate"],
}
BOOLEAN_WORDS = ["1", "0", "true", "false", "TRUE", "yes", "no", "on", "Off", " y ", "t", "F"]
for _param, _variable, _read, _default in SETTINGS:
    if isinstance(_default, bool):
        PLAIN[_variable] = BOOLEAN_WORDS
# ... and values that are wrong, or that only typer should judge: either both refuse, or
# the reader steps aside (None) and typer answers.
ODD = {
    "DB_PATH": ["bad\udcffname.db"],
    "LITEDEPLOY_MIGRATIONS_FORMAT": ["SQL", "drizzle", " auto"],
    "LITEDEPLOY_MIGRATIONS_TABLE": ["sqlite_master", "a\nb"],
    "LITEDEPLOY_MIGRATE_TRANSACTION": ["both"],
    "LITEDEPLOY_LOCK_TIMEOUT": ["-1", "nan", "inf", "86401", "soon"],
    "LITEDEPLOY_BACKUP": ["Always", "sometimes"],
    "LITEDEPLOY_BACKUP_KEEP": ["0", "10001", "ten", "2.5", "1_0"],
    "LITEDEPLOY_BACKUP_METHOD": ["rsync"],
    "LITEDEPLOY_CHECK": ["full"],
    "LITEDEPLOY_JOURNAL_MODE": ["off", "wall"],
    "LITEDEPLOY_DEPLOY_ID": ["a\nb", "x" * 201],
    "LITEDEPLOY_FINDINGS": ["ignore"],
    "LITEDEPLOY_MIGRATE_MODE": ["push", "Push"],
    "LITEDEPLOY_REQUIRE_VOLUME": ["maybe", "2"],
    "LITEDEPLOY_REHEARSE": ["perhaps"],
}
CASES = [(k, v) for k, vs in PLAIN.items() for v in vs] + [
    (k, v) for k, vs in ODD.items() for v in vs
]


def _run_command() -> typer.core.TyperCommand:
    group = typer.main.get_command(app)
    command = group.commands["run"]  # type: ignore[attr-defined]
    assert isinstance(command, typer.core.TyperCommand)
    return command


def typer_request(args: list[str]) -> RunRequest | None:
    """What typer's `run` would launch for `args` in the current environment (None: refused)."""
    try:
        ctx = _run_command().make_context("run", list(args))
    except typer.BadParameter:
        return None
    except Exception as exc:  # click's UsageError and kin: typer refuses the command line
        if type(exc).__name__ in ("UsageError", "BadParameter", "NoSuchOption"):
            return None
        raise
    return run_request(**ctx.params)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for name in CLI_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_the_reader_knows_every_variable_of_run() -> None:
    """Each option of `run` read from the environment is in SETTINGS (same parameter) or is
    push mode's; a new option cannot be forgotten by the start-up reader."""
    typer_vars = {p.name: p.envvar for p in _run_command().params if p.envvar}
    ours = {param: variable for param, variable, _, _ in SETTINGS}
    push_only = {name: var for name, var in typer_vars.items() if var in PUSH_ONLY}
    assert typer_vars == {**ours, **push_only}
    assert set(push_only.values()) == set(PUSH_ONLY)
    assert set(typer_vars.values()) <= set(CLI_ENV_VARS)


@pytest.mark.usefixtures("clean_env")
def test_no_variables_gives_typers_defaults() -> None:
    fast = request_from_environment(["--", "node", "server.js"], os.environ)
    assert fast is not None
    assert fast == typer_request(["--", "node", "server.js"])
    assert fast.command == ("node", "server.js")


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(("variable", "value"), CASES)
def test_same_request_as_typer(monkeypatch: pytest.MonkeyPatch, variable: str, value: str) -> None:
    monkeypatch.setenv(variable, value)
    fast = request_from_environment(["--", "true"], os.environ)
    expected = typer_request(["--", "true"])
    if fast is not None:
        assert fast == expected
    if value in PLAIN.get(variable, []):
        assert fast is not None, f"{variable}={value!r} should not need typer"
        assert expected is not None


@pytest.mark.usefixtures("clean_env")
def test_many_variables_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable, value in {
        "DB_PATH": "/data/app.db",
        "MIGRATIONS_DIR": "/app/drizzle",
        "LITEDEPLOY_BACKUP_KEEP": "3",
        "LITEDEPLOY_CHECK": "integrity",
        "LITEDEPLOY_APP_USER": "node",
        "APP_ENV": "production",
        "LITEDEPLOY_STRICT_DRIFT": "1",
        "LITEDEPLOY_REHEARSE": "false",
        "LITEDEPLOY_ALLOW": "lost-rows=sessions",
    }.items():
        monkeypatch.setenv(variable, value)
    fast = request_from_environment(["node", "server.js"], os.environ)
    assert fast is not None and fast == typer_request(["node", "server.js"])
    assert fast.options.allow == (("lost-rows", "sessions"),)
    assert fast.options.rehearse is False and fast.options.strict_drift is True


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    "args",
    [
        ["--check", "quick", "--", "true"],
        ["--db", "x.db", "--check", "quick", "--", "true"],
        ["--help"],
        ["-h"],
        ["--mode=push"],
        ["--db", "a.db", "--db", "b.db", "--", "true"],  # given twice
        ["--db"],  # no value
        ["--db", "", "--", "true"],  # empty: typer takes "", the environment the default
        ["--db=", "--", "true"],
        ["--db", "--", "true"],
        ["--migrations", "-x", "--", "true"],
        ["--db", "bad\udcffname.db", "--", "true"],  # not plainly valid: typer words it
    ],
)
def test_other_options_on_the_command_line_go_to_typer(args: list[str]) -> None:
    assert request_from_environment(args, os.environ) is None


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize(
    "args",
    [
        ["--db", "/data/app.db", "--", "node", "server.js"],
        ["--db", "db.sqlite", "--migrations", "drizzle", "--", "true"],
        ["--migrations", "/app/drizzle", "--db", "./data/a b.db", "--", "true"],
        ["--db=/data/app.db", "--migrations=/app/drizzle", "--", "true"],
        ["--db", "x.db", "node", "--enable-source-maps", "server.js"],
        ["--db", "x=y.db", "--"],
    ],
)
def test_db_and_migrations_on_the_command_line_give_typers_request(
    monkeypatch: pytest.MonkeyPatch, args: list[str]
) -> None:
    """Read without typer, to the same request, over the variables they stand for too."""
    fast = request_from_environment(args, os.environ)
    assert fast is not None and fast == typer_request(args)
    monkeypatch.setenv("DB_PATH", "/elsewhere/other.db")
    monkeypatch.setenv("MIGRATIONS_DIR", "/elsewhere/drizzle")
    monkeypatch.setenv("LITEDEPLOY_CHECK", "integrity")
    fast = request_from_environment(args, os.environ)
    assert fast is not None and fast == typer_request(args)


@pytest.mark.usefixtures("clean_env")
@pytest.mark.parametrize("variable", PUSH_ONLY)
def test_push_settings_go_to_typer(monkeypatch: pytest.MonkeyPatch, variable: str) -> None:
    monkeypatch.setenv(variable, "1")
    assert request_from_environment(["--", "true"], os.environ) is None


@pytest.mark.usefixtures("clean_env")
def test_a_command_without_separator(monkeypatch: pytest.MonkeyPatch) -> None:
    fast = request_from_environment(["node", "--enable-source-maps", "server.js"], os.environ)
    assert fast is not None
    assert fast.command == ("node", "--enable-source-maps", "server.js")
    assert fast == typer_request(["node", "--enable-source-maps", "server.js"])


def _start(tmp_path: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`entrypoint run ARGS` as a process that reports, at exit, whether typer was loaded."""
    code = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('typer loaded:', 'typer' in sys.modules))\n"
        f"sys.argv = ['entrypoint', 'run', *{list(args)!r}]\n"
        "from entrypoint.cli import main\n"
        "main()\n"
    )
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=cli_env(env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_container_start_does_not_load_typer(tmp_path: Path) -> None:
    folder = write_journal(tmp_path / "drizzle", [("0000_init", "CREATE TABLE t (id INTEGER);")])
    env = {"DB_PATH": str(tmp_path / "data" / "app.db"), "MIGRATIONS_DIR": str(folder)}
    (tmp_path / "data").mkdir()
    first = _start(tmp_path, env)  # new database: migrates
    assert first.returncode == 0, first.stderr
    assert "typer loaded: False" in first.stdout
    again = _start(tmp_path, env, "--")  # nothing pending
    assert again.returncode == 0, again.stderr
    assert "nothing to apply" in again.stderr and "typer loaded: False" in again.stdout
    with_option = _start(tmp_path, env, "--check", "quick")
    assert with_option.returncode == 0, with_option.stderr
    assert "typer loaded: True" in with_option.stdout
    by_hand = _start(tmp_path, {}, "--db", env["DB_PATH"], "--migrations", str(folder), "--")
    assert by_hand.returncode == 0, by_hand.stderr
    assert "nothing to apply" in by_hand.stderr and "typer loaded: False" in by_hand.stdout


@pytest.mark.parametrize(
    ("env", "code", "needle"),
    [
        ({"MIGRATIONS_DIR": "missing"}, 3, "missing"),
        ({"LITEDEPLOY_LOCK_TIMEOUT": "soon"}, 2, "soon"),
        ({"LITEDEPLOY_BACKUP_KEEP": "0"}, 2, "LITEDEPLOY_BACKUP_KEEP"),
        ({"LITEDEPLOY_MIGRATE_TRANSACTION": "both"}, 2, "both"),
        ({"DB_PATH": "nofolder/app.db"}, 4, "nofolder"),
        ({"LITEDEPLOY_ALLOW": "nonsense"}, 2, "nonsense"),  # refused making the request
    ],
)
def test_errors_read_the_same_either_way(
    tmp_path: Path, env: dict[str, str], code: int, needle: str
) -> None:
    """The same bad setting from the environment alone and with an option on the command
    line (typer's path): the same exit code and the same error line."""
    write_journal(tmp_path / "drizzle", [("0000_init", "CREATE TABLE t (id INTEGER);")])
    (tmp_path / "data").mkdir()
    alone = _start(tmp_path, env, "--", "true")
    typed = _start(tmp_path, env, "--check", "quick", "--", "true")
    assert "typer loaded: True" in typed.stdout
    assert alone.returncode == typed.returncode == code, alone.stderr
    errors = [line for line in alone.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and needle in errors[0], alone.stderr
    assert errors == [line for line in typed.stderr.splitlines() if "error:" in line]
