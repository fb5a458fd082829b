"""Put a verified backup back in place, keeping the replaced files in quarantine."""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from . import durable
from .backup import list_backups, read_manifest
from .checks import file_problems
from .errors import DatabaseBusy, LockTimeout, RestoreFailed
from .lock import migration_lock

log = logging.getLogger("litedeploy.entrypoint")

SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class Restored:
    """What a restore did."""

    backup: Path
    database: Path
    quarantine: Path | None
    quarantined: list[Path]

    def summary(self) -> list[str]:
        """What was done, for the operator."""
        lines = [f"restored {self.database} from {self.backup}"]
        if self.quarantine is not None:
            lines.append(
                f"the replaced files are kept in {self.quarantine} "
                f"({', '.join(p.name for p in self.quarantined)}); delete them when no longer "
                "needed"
            )
        return lines


def find_backup(
    folder: Path, *, path: Path | None = None, latest: bool = False, deploy_id: str | None = None
) -> Path:
    """Pick the backup to restore: an explicit file, the newest, or the one of a deploy."""
    if path is not None:
        if not path.is_file():
            raise RestoreFailed(
                f"backup {path} does not exist",
                hint="list them with `entrypoint backups`",
            )
        return path
    backups = list_backups(folder)
    if deploy_id is not None:
        backups = [b for b in backups if b.manifest.deploy_id == deploy_id]
        if not backups:
            raise RestoreFailed(
                f"no backup in {folder} was made for deploy id {deploy_id!r}",
                hint="list them with `entrypoint backups`",
            )
        return backups[-1].path
    if latest:
        if not backups:
            raise RestoreFailed(f"there are no backups in {folder}")
        return backups[-1].path
    raise RestoreFailed(
        "say which backup to restore: a file, --latest or --deploy-id ID",
        hint="list them with `entrypoint backups`",
    )


def restore_backup(db_path: Path, backup_path: Path, *, lock_timeout: float = 0.0) -> Restored:
    """Verify the backup, take the lock, then swap it in (see replace_database)."""
    expected = _verified_hash(backup_path)
    try:
        with migration_lock(db_path, lock_timeout):
            return replace_database(db_path, backup_path, expected)
    except LockTimeout as exc:
        raise DatabaseBusy(
            f"another litedeploy process is migrating or restoring {db_path}: {exc.message}",
            hint="wait for it to finish, then restore",
        ) from None


def replace_database(db_path: Path, backup_path: Path, expected: str | None = None) -> Restored:
    """With the migration lock held: quarantine the live files, copy the backup in, verify.

    If the restored copy is not sound, the quarantined files are put back, so the live
    database is either the verified backup or exactly what it was.
    """
    if expected is None:
        expected = _verified_hash(backup_path)
    _refuse_if_in_use(db_path)
    moves, quarantine = _quarantine(db_path)
    try:
        durable.atomic_copy(backup_path, db_path, mode=0o644)
        _match_owner(db_path, moves)
        problem = _check_restored(db_path, expected)
    except OSError as exc:
        problem = f"cannot copy it into place: {exc.strerror or exc}"
    if problem is not None:
        _put_back(db_path, moves)
        raise RestoreFailed(
            f"restored copy of {backup_path} is not sound ({problem}); the previous "
            "database was put back",
            hint="check the disk holding the database",
        )
    return Restored(backup_path, db_path, quarantine, [kept for _, kept in moves])


def _verified_hash(backup_path: Path) -> str:
    """Refuse a backup that is missing, differs from its manifest, or fails quick_check."""
    if not backup_path.is_file():
        raise RestoreFailed(f"backup {backup_path} does not exist")
    actual = durable.sha256_of(backup_path)
    manifest = read_manifest(backup_path)
    if manifest is not None and manifest.sha256 != actual:
        raise RestoreFailed(
            f"backup {backup_path} does not match its manifest (sha256 {actual[:12]}, "
            f"manifest says {manifest.sha256[:12]}); it was changed or damaged",
            hint="restore an older backup (`entrypoint backups` lists them)",
        )
    problems = file_problems(backup_path, immutable=True)
    if problems:
        raise RestoreFailed(
            f"backup {backup_path} is damaged ({problems[0]})",
            hint="restore an older backup (`entrypoint backups` lists them)",
        )
    return actual


def _refuse_if_in_use(db_path: Path) -> None:
    """Refuse when any other process has the database (or its WAL) open or locked."""
    users = open_by(db_path)
    if users:
        listed = ", ".join(f"pid {pid} ({name})" for pid, name in users[:5])
        raise DatabaseBusy(
            f"{db_path} is open in {listed}",
            hint="stop the app (docker compose stop SERVICE) before restoring",
        )
    # /proc shows only this PID namespace; an app in another container sharing the volume
    # still holds SQLite's POSIX locks (an idle WAL connection: a read lock on the file and on
    # the -shm). Test for them with a lock of our own, not an SQLite connection, whose close
    # would checkpoint a leftover WAL into the file we are about to quarantine.
    for suffix in ("", "-shm"):
        path = db_path.with_name(db_path.name + suffix)
        if _locked_by_another(path):
            raise DatabaseBusy(
                f"{db_path} is locked by another process (a lock on {path.name}), maybe in "
                "another container",
                hint="stop the app before restoring",
            )


def _locked_by_another(path: Path) -> bool:
    """True when another process holds a POSIX lock on any byte of the file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(fd, fcntl.LOCK_UN)
    except OSError:
        return True
    finally:
        os.close(fd)
    return False


def open_by(db_path: Path) -> list[tuple[int, str]]:
    """Processes (pid, command) other than this one holding the database files open."""
    targets = set()
    for suffix in ("", *SIDE_FILES):
        with contextlib.suppress(OSError):
            st = (db_path.parent / (db_path.name + suffix)).stat()
            targets.add((st.st_dev, st.st_ino))
    if not targets:
        return []
    found = []
    me = os.getpid()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == me:
            continue
        with contextlib.suppress(OSError):
            for fd in (entry / "fd").iterdir():
                with contextlib.suppress(OSError):
                    st = fd.stat()
                    if (st.st_dev, st.st_ino) in targets:
                        name = (entry / "comm").read_text().strip()
                        found.append((int(entry.name), name))
                        break
    return found


Moves = list[tuple[Path, Path]]


def _quarantine(db_path: Path) -> tuple[Moves, Path | None]:
    """Move the live database and its side files into a new quarantine folder."""
    present = [
        db_path.parent / (db_path.name + s)
        for s in ("", *SIDE_FILES)
        if (db_path.parent / (db_path.name + s)).exists()
    ]
    if not present:
        return [], None
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
    folder = db_path.parent / "quarantine" / stamp
    folder.mkdir(mode=0o700, parents=True)
    moves = [(path, folder / path.name) for path in present]
    for original, kept in moves:
        os.rename(original, kept)
        log.info("moved %s to %s", original, kept)
    durable.fsync_dir(folder)
    durable.fsync_dir(db_path.parent)
    return moves, folder


def _match_owner(db_path: Path, moves: Moves) -> None:
    """Give the restored file the replaced file's owner and mode, so the app can write it."""
    replaced = next((kept for original, kept in moves if original == db_path), None)
    if replaced is None:
        return
    st = replaced.stat()
    os.chmod(db_path, st.st_mode & 0o777)
    if os.getuid() == 0:
        os.chown(db_path, st.st_uid, st.st_gid)


def _check_restored(db_path: Path, expected: str) -> str | None:
    if durable.sha256_of(db_path) != expected:
        return "its sha256 differs from the backup's"
    problems = file_problems(db_path, immutable=True)
    return problems[0] if problems else None


def _put_back(db_path: Path, moves: Moves) -> None:
    """Undo a failed restore: the quarantined files go back where they were."""
    with contextlib.suppress(FileNotFoundError):
        db_path.unlink()
    for original, kept in moves:
        os.rename(kept, original)
        log.info("put %s back", original)
    durable.fsync_dir(db_path.parent)
