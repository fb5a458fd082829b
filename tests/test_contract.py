"""The environment contract (entrypoint/base/contract.py): what deploy passes, the entrypoint
reads as deploy means it, and neither half spells a name of it on its own.

The entrypoint's side is taken from its own parser: `run`'s click command reads the
environment deploy builds (make_context), as it would in the container; click hands on a
choice as its text, which `run` then makes its enum.
"""

from __future__ import annotations

import ast
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
import typer
from harness import CLI_ENV_VARS, ROOT

from deploy.compose import Compose, Flavour, Service
from deploy.rehearsal import rehearsal_env
from deploy.stack import Stack
from entrypoint.base import contract
from entrypoint.cli import app
from entrypoint.cli.values import Mode
from entrypoint.settings import Policy

NAMES = {k: v for k, v in vars(contract).items() if k.endswith("_ENV")}


def _run_params(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The parameters `entrypoint run` takes from this environment (and no command line)."""
    for name in CLI_ENV_VARS:
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    return dict(command.make_context("run", ["--", "true"]).params)


def _stack(tmp_path: Path) -> Stack:
    return Stack(
        compose=Compose(Flavour.V2, (tmp_path / "docker-compose.yml",), "shop"),
        service=Service(
            name="app",
            image="shop:v2",
            environment={
                "DB_PATH": "/srv/shop.db",
                "LITEDEPLOY_DEPLOY_ID": "old",
                "LITEDEPLOY_BACKUP": "always",
            },
            binds=[(tmp_path / "data", PurePosixPath("/srv"))],
            has_healthcheck=True,
        ),
        db_path=tmp_path / "data" / "shop.db",
        db_container_path=PurePosixPath("/srv/shop.db"),
        backup_dir=tmp_path / "data" / "backups",
    )


def test_every_name_of_the_contract_is_an_option_of_run() -> None:
    """All but the log format, which every command reads before its options (cli/logs.py)."""
    command = typer.main.get_command(app).commands["run"]  # type: ignore[attr-defined]
    read = {p.envvar for p in command.params if p.envvar}
    assert set(NAMES.values()) - {contract.LOG_FORMAT_ENV} <= read
    assert contract.LOG_FORMAT_ENV not in read
    assert set(NAMES.values()) <= set(CLI_ENV_VARS)  # tests clear them from the environment


def test_the_names_are_the_documented_ones() -> None:
    """Renaming one breaks every compose file in the field: the spelling is pinned here."""
    assert sorted(NAMES.values()) == [
        "DB_PATH",
        "LITEDEPLOY_BACKUP",
        "LITEDEPLOY_BACKUP_DIR",
        "LITEDEPLOY_BACKUP_KEEP",
        "LITEDEPLOY_BACKUP_METHOD",
        "LITEDEPLOY_DEPLOY_ID",
        "LITEDEPLOY_LOG_FORMAT",
        "LITEDEPLOY_MIGRATE_MODE",
        "LITEDEPLOY_REHEARSAL",
        "MIGRATIONS_DIR",
    ]
    assert contract.SIDE_FILES == ("-journal", "-wal", "-shm")


def test_the_rehearsals_environment_reads_as_deploy_means_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = _run_params(rehearsal_env(_stack(tmp_path)), monkeypatch)
    assert params["rehearsal"] is True  # stop after the checks, exec nothing
    assert Policy(params["backup"]) is Policy.NEVER
    assert params["db"] == Path("/srv/shop.db")
    assert (
        params["deploy_id"] is None
    )  # the service's own LITEDEPLOY_DEPLOY_ID is not the rehearsal's
    assert Mode(params["mode"]) is Mode.MIGRATE


def test_a_push_rehearsal_reads_as_push_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    params = _run_params(rehearsal_env(_stack(tmp_path), push=True), monkeypatch)
    assert Mode(params["mode"]) is Mode.PUSH


def test_the_values_are_the_entrypoints_own() -> None:
    assert Policy(contract.BACKUP_NEVER) is Policy.NEVER
    assert Mode(contract.MODE_PUSH) is Mode.PUSH


def test_without_db_path_the_default_is_relative_to_the_working_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """deploy resolves it from the image's WORKDIR (tests/test_deploy_stack.py)."""
    assert _run_params({}, monkeypatch)["db"] == contract.CLI_DEFAULT_DB
    assert not contract.CLI_DEFAULT_DB.is_absolute()


def test_the_side_file_of_a_database() -> None:
    assert contract.side_file(Path("/d/app.db"), contract.WAL_SUFFIX) == Path("/d/app.db-wal")


# A string equal to a contract value that is not the contract's: a column header, say.
NOT_THE_CONTRACT = {("entrypoint/cli/backups.py", "LITEDEPLOY_BACKUP")}


def test_no_module_spells_the_contract_itself() -> None:
    """Names, suffixes and paths are written once, in contract.py: a literal copy elsewhere
    in either package is a second definition that a rename would miss. (The short values
    "1", "push" and "never" are common words, so they are not looked for.)"""
    spelled = {v: k for k, v in NAMES.items()}
    spelled |= {s: "SIDE_FILES" for s in contract.SIDE_FILES}
    spelled |= {str(contract.CLI_DEFAULT_DB): "CLI_DEFAULT_DB"}
    spelled |= {"./data/app.db": "CLI_DEFAULT_DB"}
    found = []
    for package in ("entrypoint", "deploy"):
        for path in sorted((ROOT / package).rglob("*.py")):
            where = path.relative_to(ROOT).as_posix()
            if where == "entrypoint/base/contract.py":
                continue
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Constant)
                    and isinstance(node.value, str)
                    and node.value in spelled
                    and (where, node.value) not in NOT_THE_CONTRACT
                ):
                    found.append(f"{where}:{node.lineno} {node.value!r} ({spelled[node.value]})")
    assert found == []
