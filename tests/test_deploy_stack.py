"""room_for_deploy: the preflight's disk check, before anything is touched."""

from __future__ import annotations

import shutil
from pathlib import Path, PurePosixPath
from typing import Any

import pytest

from deploy import stack as stacks
from deploy.compose import Compose, Flavour, Service
from deploy.errors import PreflightFailed
from deploy.stack import Stack, room_for_deploy

MIB = 1 << 20


def _stack(tmp_path: Path) -> Stack:
    return Stack(
        compose=Compose(Flavour.V2, (tmp_path / "docker-compose.yml",), "shop"),
        service=Service(name="app", image="shop:v2", environment={}, binds=[]),
        db_path=tmp_path / "data" / "app.db",
        db_container_path=PurePosixPath("/data/app.db"),
        backup_dir=tmp_path / "data" / "backups",
    )


def _free(monkeypatch: pytest.MonkeyPatch, free: int) -> list[Path]:
    """Every disk has `free` bytes free; returns the folders asked about."""
    asked: list[Path] = []
    real = shutil.disk_usage

    def usage(path: Any) -> Any:
        asked.append(Path(path))
        return real(path)._replace(free=free)

    monkeypatch.setattr(stacks.shutil, "disk_usage", usage)
    return asked


def test_a_first_deploy_needs_only_the_margin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _free(monkeypatch, 64 * MIB)
    room_for_deploy(_stack(tmp_path), tmp_path / "state")  # no database, no state folder yet
    assert set(asked) == {tmp_path}  # a folder not made yet is asked through its parent


def test_twice_the_database_and_a_margin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    current = _stack(tmp_path)
    current.db_path.parent.mkdir()
    with current.db_path.open("wb") as f:
        f.truncate(10 * MIB)  # sparse: its size is what counts
    state = current.db_path.parent  # one folder for both: one disk asked
    _free(monkeypatch, 2 * 10 * MIB + 64 * MIB)
    room_for_deploy(current, state)
    _free(monkeypatch, 2 * 10 * MIB + 64 * MIB - 1)
    with pytest.raises(PreflightFailed) as caught:
        room_for_deploy(current, state)
    assert caught.value.exit_code == 3
    assert caught.value.message == (
        f"not enough free disk in {state}: need 84 MiB for a snapshot and a backup of the "
        "10 MiB database, 83 MiB free"
    )
