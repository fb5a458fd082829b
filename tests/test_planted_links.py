"""Symlinks the app's user could plant in its data folder, met by a start as root.

After a start with LITEDEPLOY_APP_USER the app's user may write the database folder, so it can
replace `backups` or `quarantine` with a symlink. A root process following one would chmod the
target, write root-owned files into it and delete files there. These tests plant real
symlinks (owned by that user, as it would make them) and check nothing outside is touched.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest
from harness import (
    Cli,
    applied,
    assert_one_clear_error,
    assert_unchanged,
    backup_files,
    db_state,
    mode_of,
    query,
    write_plain,
)

APP_UID = 4321  # the app's user: any uid but root's

INIT = (
    "CREATE TABLE items (id integer PRIMARY KEY, body text NOT NULL);\n"
    "INSERT INTO items (body) VALUES ('a'), ('b'), ('c');"
)
NEXT = "ALTER TABLE items ADD tag text;"

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0, reason="needs root, as the entrypoint runs (CI runs the suite as root)"
)


def app_owned_data(tmp_path: Path, *, pending: bool = True) -> tuple[Path, Path]:
    """data/app.db with 0001 applied, the folder and file then handed to the app's user."""
    data = tmp_path / "data"
    data.mkdir()
    db = data / "app.db"
    folder = write_plain(tmp_path / "m", [("0001_init", INIT)])
    applied(db, folder)
    if pending:
        write_plain(folder, [("0002_next", NEXT)])
    for path in (data, db):
        os.chown(path, APP_UID, APP_UID)
    return db, folder


def victim(tmp_path: Path, mode: int = 0o755) -> Path:
    """A folder the app's user must not get at, holding a file named like a leftover."""
    target = tmp_path / "victim"
    target.mkdir()
    target.chmod(mode)
    (target / ".precious.db.123.tmp").write_text("not ours to delete")
    (target / "keep.txt").write_text("keep")
    return target


def plant(link: Path, target: Path) -> None:
    """A symlink made by the app's user (it owns the link, as it would)."""
    link.symlink_to(target)
    os.lchown(link, APP_UID, APP_UID)


def assert_untouched(target: Path, mode: int = 0o755) -> None:
    assert stat.S_IMODE(target.stat().st_mode) == mode
    assert sorted(p.name for p in target.iterdir()) == [".precious.db.123.tmp", "keep.txt"]


def columns(db: Path) -> list[str]:
    return [r[1] for r in query(db, "SELECT * FROM pragma_table_info('items')")]


@pytest.mark.parametrize("command", ["run", "backup"])
def test_a_planted_backups_link_is_refused(tmp_path: Path, cli: Cli, command: str) -> None:
    db, folder = app_owned_data(tmp_path)
    target = victim(tmp_path)
    plant(db.parent / "backups", target)
    before = db_state(db)
    if command == "run":
        proc = cli("run", "--db", db, "--migrations", folder)
    else:
        proc = cli("backup", "--db", db)
    assert_one_clear_error(proc, 8, str(db.parent / "backups"), "symbolic link", "not following")
    assert_untouched(target)
    assert_unchanged(db, before)
    assert "tag" not in columns(db)


def test_a_start_without_a_backup_removes_nothing_through_a_planted_link(
    tmp_path: Path, cli: Cli
) -> None:
    """Nothing pending: no backup, but the start still sweeps leftovers of killed backups."""
    db, folder = app_owned_data(tmp_path, pending=False)
    target = victim(tmp_path)
    plant(db.parent / "backups", target)
    proc = cli("run", "--db", db, "--migrations", folder)
    assert proc.returncode == 0, proc.stderr
    assert_untouched(target)


def test_a_planted_link_inside_the_backup_dir_path_is_refused(tmp_path: Path, cli: Cli) -> None:
    """--backup-dir data/snapshots/app, with `snapshots` a planted link: refused on the way."""
    db, folder = app_owned_data(tmp_path)
    target = victim(tmp_path)
    plant(db.parent / "snapshots", target)
    proc = cli(
        "run", "--db", db, "--migrations", folder, "--backup-dir", db.parent / "snapshots/app"
    )
    assert_one_clear_error(proc, 8, "symbolic link")
    assert_untouched(target)


def test_a_root_made_link_is_followed(tmp_path: Path, cli: Cli) -> None:
    """The control: a link only root could have made (root's folder, mode 0755) is fine."""
    db, folder = app_owned_data(tmp_path)
    real = tmp_path / "vol" / "backups"
    real.mkdir(parents=True, mode=0o700)
    (tmp_path / "backups-link").symlink_to(real)
    proc = cli("run", "--db", db, "--migrations", folder, "--backup-dir", tmp_path / "backups-link")
    assert proc.returncode == 0, proc.stderr
    assert len(backup_files(real)) == 1
    assert "tag" in columns(db)


def test_a_shared_backup_dir_keeps_its_mode(tmp_path: Path, cli: Cli) -> None:
    """An existing folder (a shared 1777 one) is used as it is, with a warning; never chmodded."""
    db, folder = app_owned_data(tmp_path)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    proc = cli("run", "--db", db, "--migrations", folder, "--backup-dir", shared)
    assert proc.returncode == 0, proc.stderr
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    [backup] = backup_files(shared)
    assert mode_of(backup) == 0o600
    assert f"backup folder {shared} (mode 1777, owner uid 0) can be changed" in proc.stderr


def test_a_new_backup_dir_is_created_private(tmp_path: Path, cli: Cli) -> None:
    db, folder = app_owned_data(tmp_path)
    nested = tmp_path / "vol" / "deep" / "backups"
    proc = cli("run", "--db", db, "--migrations", folder, "--backup-dir", nested)
    assert proc.returncode == 0, proc.stderr
    for created in (nested, nested.parent, nested.parent.parent):
        assert mode_of(created) == 0o700, created


def test_leftover_removal_never_follows_a_link(tmp_path: Path, cli: Cli) -> None:
    """Entries of backups/ named like leftovers but linking out: neither followed nor removed."""
    db, folder = app_owned_data(tmp_path)
    target = victim(tmp_path)
    backups = db.parent / "backups"
    backups.mkdir(mode=0o700)
    plant(backups / ".app.db.20250101T000000.000000Z.backup.77.tmp", target / "keep.txt")
    plant(backups / ".dir.1.tmp", target)
    real_leftover = backups / ".app.db.20250101T000000.000000Z.backup.99.tmp"
    real_leftover.write_bytes(b"half a copy")
    proc = cli("run", "--db", db, "--migrations", folder)
    assert proc.returncode == 0, proc.stderr
    assert not real_leftover.exists()
    assert (target / "keep.txt").read_text() == "keep"
    assert_untouched(target)
    assert (backups / ".dir.1.tmp").is_symlink()


# --- quarantine/, where a restore keeps the replaced files ------------------------------------


def restore_latest(cli: Cli, db: Path) -> subprocess.CompletedProcess[str]:
    proc = cli("backup", "--db", db)
    assert proc.returncode == 0, proc.stderr
    return cli("restore", "--db", db, "--latest")


def test_a_planted_quarantine_link_is_refused(tmp_path: Path, cli: Cli) -> None:
    db, _ = app_owned_data(tmp_path, pending=False)
    target = victim(tmp_path)
    plant(db.parent / "quarantine", target)
    before = db_state(db)
    proc = restore_latest(cli, db)
    assert_one_clear_error(proc, 12, "symbolic link", "the live database was not touched")
    assert_untouched(target)
    assert_unchanged(db, before)
    assert not db.with_name("app.db.restoring").exists()  # no intent, no copy left behind
    assert not db.with_name(".app.db.restore-copy").exists()


def test_quarantine_is_created_private(tmp_path: Path, cli: Cli) -> None:
    db, _ = app_owned_data(tmp_path, pending=False)
    proc = restore_latest(cli, db)
    assert proc.returncode == 0, proc.stderr
    quarantine = db.parent / "quarantine"
    [kept] = quarantine.iterdir()
    assert mode_of(quarantine) == 0o700
    assert mode_of(kept) == 0o700
    assert (db.stat().st_uid, db.stat().st_gid) == (APP_UID, APP_UID)  # the app can write it


def test_a_planted_lock_file_link_is_never_followed(tmp_path: Path, cli: Cli) -> None:
    db, folder = app_owned_data(tmp_path)
    outside = tmp_path / "precious"
    outside.write_text("root's data\n")
    lock = db.with_name(db.name + ".lock")
    lock.unlink(missing_ok=True)
    lock.symlink_to(outside)
    os.lchown(lock, APP_UID, APP_UID)
    before = db_state(db)
    proc = cli("run", "--db", db, "--migrations", folder)
    assert_one_clear_error(proc, 4, "is a symbolic link, which the entrypoint never follows")
    assert outside.read_text() == "root's data\n"  # not truncated
    assert_unchanged(db, before)
