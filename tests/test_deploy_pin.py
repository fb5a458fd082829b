"""pin.py: the tag deploy last started, written into the stack's .env for plain Compose."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from deploy.pin import COMMENT, pin, pinned


def test_a_new_env_file_gets_the_tag_and_a_comment(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    said = pin(env, "APP_TAG", "v2")
    assert env.read_text() == f"{COMMENT}\nAPP_TAG=v2\n"
    assert pinned(env, "APP_TAG") == "v2"
    assert "pinned APP_TAG=v2" in said
    assert stat.S_IMODE(env.stat().st_mode) & 0o044  # readable by Compose as any operator


def test_the_tag_line_is_replaced_in_place_and_the_rest_kept(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("# secrets\nDB_PASSWORD=s3cr=t\nexport APP_TAG=v1\nAPP_PORT=8000\nAPP_TAG=v0\n")
    env.chmod(0o600)
    pin(env, "APP_TAG", "v3")
    assert env.read_text() == "# secrets\nDB_PASSWORD=s3cr=t\nAPP_TAG=v3\nAPP_PORT=8000\n"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600  # a file with secrets stays private
    assert pinned(env, "APP_TAG") == "v3"
    assert pinned(env, "APP_PORT") == "8000"
    assert pinned(env, "MISSING") is None


def test_other_variables_with_a_common_prefix_are_left_alone(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("APP_TAG_OLD=v0\nMY_APP_TAG=x\n")
    pin(env, "APP_TAG", "v2")
    assert env.read_text() == f"APP_TAG_OLD=v0\nMY_APP_TAG=x\n{COMMENT}\nAPP_TAG=v2\n"


def test_pinning_the_same_tag_again_changes_nothing(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    pin(env, "APP_TAG", "v2")
    before = env.stat().st_mtime_ns, env.stat().st_ino
    assert "already" in pin(env, "APP_TAG", "v2")
    assert (env.stat().st_mtime_ns, env.stat().st_ino) == before


def test_a_symlinked_env_file_is_not_rewritten(tmp_path: Path) -> None:
    secrets = tmp_path / "secrets.env"
    secrets.write_text("TOKEN=abc\n")
    env = tmp_path / ".env"
    env.symlink_to(secrets)
    said = pin(env, "APP_TAG", "v2")
    assert "symbolic link" in said and "APP_TAG=v2" in said
    assert env.is_symlink() and secrets.read_text() == "TOKEN=abc\n"


def test_an_env_path_that_is_a_folder_raises_for_the_deployer_to_report(tmp_path: Path) -> None:
    (tmp_path / ".env").mkdir()
    with pytest.raises(OSError):
        pin(tmp_path / ".env", "APP_TAG", "v2")
