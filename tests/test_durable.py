"""durable.open_folder: the one way into a folder the entrypoint writes in."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from harness import cli_env, mode_of

from entrypoint.base import durable as durable_module
from entrypoint.base.durable import UnsafePath, open_folder

AS_ANOTHER_USER = ("setpriv", "--reuid=4321", "--regid=4321", "--clear-groups")


def test_missing_parts_are_created_private_and_existing_ones_left(tmp_path: Path) -> None:
    existing = tmp_path / "there"
    existing.mkdir(mode=0o755)
    opened = open_folder(existing / "a" / "b", create=True)
    opened.close()
    assert opened.created
    assert mode_of(existing / "a") == mode_of(existing / "a" / "b") == 0o700
    assert mode_of(existing) == 0o755
    again = open_folder(existing / "a" / "b", create=True)
    again.close()
    assert not again.created


def test_the_real_error_is_raised(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        open_folder(tmp_path / "missing" / "deeper")
    (tmp_path / "file").write_text("")
    with pytest.raises(FileExistsError, match="not a folder"):
        open_folder(tmp_path / "file" / "x", create=True)


def test_own_symlinks_are_followed_relative_or_absolute(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    (tmp_path / "abs").symlink_to(real)
    (tmp_path / "rel").symlink_to("real")
    for link in ("abs", "rel"):
        opened = open_folder(tmp_path / link)
        try:
            assert os.readlink(f"/proc/self/fd/{opened.fd}") == str(real)
        finally:
            opened.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to make another user's symlink")
def test_a_symlink_another_user_could_have_made_is_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    os.chown(theirs, 4321, 4321)
    (theirs / "root-made").symlink_to(real)  # root's link, in a folder they can change
    owned = tmp_path / "owned"
    owned.symlink_to(real)
    os.lchown(owned, 4321, 4321)
    for link in (theirs / "root-made", owned, owned / "below"):
        with pytest.raises(UnsafePath, match="symbolic link"):
            open_folder(link, create=True)
    assert list(real.iterdir()) == []


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_passing_through_a_search_only_folder_is_enough() -> None:
    """As a lookup by path needs: a folder on the way with mode 0711 is passed, not read."""
    outer = Path(tempfile.mkdtemp(dir="/tmp"))  # pytest's own folders are closed to others
    # The other user reads the package from a copy anyone may read: the checkout itself may
    # sit in a folder closed to others (a clone made in a private temporary folder).
    readable = Path(tempfile.mkdtemp(dir="/tmp"))
    try:
        readable.chmod(0o755)
        shutil.copytree(
            Path(durable_module.__file__).parents[2] / "entrypoint",
            readable / "entrypoint",
            ignore=shutil.ignore_patterns("__pycache__"),
        )
        outer.chmod(0o711)
        (outer / "inner").mkdir()
        os.chown(outer / "inner", 4321, 4321)
        code = (
            "import sys; from pathlib import Path; "
            "from entrypoint.base.durable import open_folder; "
            "open_folder(Path(sys.argv[1]), create=True).close()"
        )
        proc = subprocess.run(
            [*AS_ANOTHER_USER, sys.executable, "-S", "-c", code, str(outer / "inner" / "backups")],
            env=cli_env({"PYTHONPATH": str(readable)}),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert (outer / "inner" / "backups").is_dir()
    finally:
        shutil.rmtree(outer)
        shutil.rmtree(readable)
