"""acl.py and the hand-off: the app's user may write the database folder, whose owner stays.

Real folders, real ACLs (the host's ext4), real processes running as other users.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from harness import cli_env, entrypoint_argv, write_plain

from entrypoint.handoff import acl

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root, as the entrypoint runs (CI runs the suite as root)"
)

APP_UID, OTHER_UID = 4321, 4322


@pytest.fixture
def reachable() -> Iterator[Path]:
    """A folder other users can reach (pytest's own are root-only)."""
    root = Path(tempfile.mkdtemp(prefix="litedeploy-acl-", dir="/tmp"))
    root.chmod(0o755)
    try:
        yield root
    finally:
        shutil.rmtree(root)


def can_write(folder: Path, uid: int) -> bool:
    probe = folder / f"probe-{uid}"
    done = subprocess.run(
        ["sh", "-c", f': > "{probe}"'], user=uid, group=uid, capture_output=True, check=False
    )
    return done.returncode == 0 and probe.exists()


def test_a_grant_lets_the_user_write_and_keeps_the_owner(reachable: Path) -> None:
    folder = reachable / "data"
    folder.mkdir(mode=0o755)
    assert not can_write(folder, APP_UID)
    assert acl.grant(folder, APP_UID) is True
    assert can_write(folder, APP_UID)
    st = folder.stat()
    assert (st.st_uid, st.st_gid) == (0, 0)
    assert not can_write(folder, OTHER_UID)  # nobody else gained anything
    assert acl.grant(folder, APP_UID) is False  # already allowed: unchanged


def test_other_entries_keep_exactly_their_access(reachable: Path) -> None:
    """A named entry the old mask capped at r-x stays r-x when the mask widens for ours."""
    folder = reachable / "data"
    folder.mkdir(mode=0o750)
    acl.grant(folder, OTHER_UID, perm=0o5)
    entries = acl.read(folder)
    acl.grant(folder, APP_UID)
    after = acl.read(folder)
    assert (acl.USER, 0o5, OTHER_UID) in after and acl.allows(after, APP_UID)
    assert [e for e in entries if e[0] == acl.GROUP_OBJ] == [
        e for e in after if e[0] == acl.GROUP_OBJ
    ]
    assert not can_write(folder, OTHER_UID) and can_write(folder, APP_UID)


def test_a_symbolic_link_is_not_followed(reachable: Path) -> None:
    target = reachable / "target"
    target.mkdir(mode=0o755)
    link = reachable / "link"
    link.symlink_to(target)
    with pytest.raises(OSError):
        acl.grant(link, APP_UID)
    assert not acl.allows(acl.read(target), APP_UID)


def test_run_with_a_user_lets_the_app_write_a_root_owned_folder_it_does_not_own(
    reachable: Path,
) -> None:
    """`entrypoint run --user nobody`: the app creates files in the database's folder (as
    SQLite does its -wal and -shm), and the folder still belongs to root."""
    data = reachable / "data"
    data.mkdir(mode=0o755)
    folder = write_plain(reachable / "m", [("0001_init", "CREATE TABLE t (id INTEGER);")])
    db = data / "app.db"
    argv = entrypoint_argv(
        "run", "--db", db, "--migrations", folder, "--user", "nobody",
        "--", "sh", "-c", f': > "{data}/written-by-the-app"',
    )  # fmt: skip
    done = subprocess.run(argv, cwd=reachable, env=cli_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert (data / "written-by-the-app").exists()
    st = data.stat()
    assert (st.st_uid, st.st_gid) == (0, 0), "the folder's owner must not change"
    assert stat.S_IMODE(st.st_mode) & 0o020  # the mask shows in the group bits
    assert "owner 0:0 unchanged" in done.stderr
