"""Fixtures for the unit and CLI tests (helpers that are plain functions live in harness.py)."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` (unlike `python -m pytest`) does not add the cwd
    sys.path.insert(0, str(ROOT))

from harness import CLI_ENV_VARS, Cli, run_cli  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from entrypoint.cli import app  # noqa: E402


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """Run `python -m entrypoint ARGS` as a real process in tmp_path."""

    def run(
        *args: str | Path, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return run_cli(*args, cwd=tmp_path, env=env, timeout=timeout)

    return run


class _CurrentStderr(logging.Handler):
    """Log to whatever sys.stderr is at the time (CliRunner swaps it per invocation)."""

    def emit(self, record: logging.LogRecord) -> None:
        sys.stderr.write(f"entrypoint: {record.getMessage()}\n")


@dataclass(frozen=True)
class Invoked:
    exit_code: int
    stdout: str
    stderr: str


@pytest.fixture
def invoke() -> Iterator[Callable[..., Invoked]]:
    """Run the typer app in-process, where a subprocess would only be slower."""
    logger = logging.getLogger("litedeploy")
    handler = _CurrentStderr()
    logger.addHandler(handler)
    level = logger.level
    logger.setLevel(logging.INFO)  # as main() sets it
    runner = CliRunner()

    def run(*args: str | Path, env: dict[str, str] | None = None) -> Invoked:
        cleared: dict[str, str | None] = dict.fromkeys(CLI_ENV_VARS)
        result = runner.invoke(app, [str(a) for a in args], env={**cleared, **(env or {})})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        return Invoked(result.exit_code, result.stdout, result.stderr)

    yield run
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def status_of(invoke: Callable[..., Invoked]) -> Callable[..., dict[str, Any]]:
    """`entrypoint status --json` as a dict, plus `states`: {migration name: state}."""

    def run(db: Path, folder: Path, *extra: str) -> dict[str, Any]:
        result = invoke("status", "--db", db, "--migrations", folder, "--json", *extra)
        assert result.exit_code == 0, result.stderr
        data: dict[str, Any] = json.loads(result.stdout)
        data["states"] = {m["name"]: m["state"] for m in data["migrations"]}
        return data

    return run


@pytest.fixture
def non_utc_timezone(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Run in a local time zone that is not UTC (POSIX form: needs no tzdata)."""
    monkeypatch.setenv("TZ", "XYZ+05:30")
    time.tzset()
    assert time.timezone != 0
    yield
    monkeypatch.undo()
    time.tzset()
