"""Swap a verified copy of a backup in for the live database, so that a process killed at any
instruction leaves what the next start can finish: never a missing database, never a WAL
beside a file it does not belong to.

`begin` records the intent; `complete` does the rest, and is also what finishes a swap a
killed process left half-done (it looks at the files, so running it twice is harmless):

1. `<db>.restoring`, the intent (JSON: the backup, its sha256, the quarantine folder, the
   identity of the file being replaced), written atomically and fsynced before anything moves;
2. the backup copied to `.<db>.restore-copy` beside the database, fsynced and verified
   (sha256 and quick_check); the live files are untouched so far;
3. the live database and its -journal/-wal/-shm hard-linked into `quarantine/<time>/` (copied
   where the filesystem has no hard links), the folder fsynced;
4. the live side files unlinked (SQLite would replay an old -wal or -journal onto the restored
   file), then the copy renamed over the database, the folder fsynced;
5. the intent removed.

Between 4's unlinks and its rename the database path holds the old file without its WAL: two
filesystem calls cannot change two names at once, and the other order would pair the restored
file with the old WAL. The intent covers it: every start finishes the swap before anything
opens the database. Whether 4's rename happened is told by the file at the database path: the
intent records the inode it replaces, kept alive by its link in quarantine.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import stat
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..base import durable, faults, progress
from ..base.contract import RESTORE_INTENT_SUFFIX, SIDE_FILES
from .integrity import file_problems

log = logging.getLogger("litedeploy.entrypoint")

INTENT_SUFFIX = RESTORE_INTENT_SUFFIX
STAMP = re.compile(r"\d{8}T\d{6}\.\d{6}Z")


class Unusable(Exception):
    """The copy could not be made or verified; no live file was changed."""


class Unreadable(Exception):
    """An intent file is there but cannot be read or makes no sense."""


@dataclass(frozen=True)
class Intent:
    """What a restore is doing, written before it moves anything."""

    backup: str
    sha256: str
    quarantine: str  # the folder's name inside <db folder>/quarantine
    replaces: tuple[int, int] | None  # (st_dev, st_ino) of the file at the database path
    started_at: str
    pid: int


@dataclass(frozen=True)
class Swapped:
    """Where the replaced files were kept; `earlier`: the swap had happened before."""

    quarantine: Path | None
    kept: list[Path]
    earlier: bool = False


def intent_path(db: Path) -> Path:
    """`app.db` -> `app.db.restoring`."""
    return db.with_name(db.name + INTENT_SUFFIX)


def copy_path(db: Path) -> Path:
    """Where the backup is copied and verified before it is renamed over the database."""
    return db.with_name(f".{db.name}.restore-copy")


def quarantine_root(db: Path) -> Path:
    return db.parent / "quarantine"


def read_intent(db: Path) -> Intent | None:
    """The intent of an unfinished restore, None when there is none; Unreadable if garbled."""
    try:
        fd = os.open(intent_path(db), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise Unreadable(f"cannot read it: {exc.strerror}") from exc
    try:
        with os.fdopen(fd, "rb") as f:
            data: dict[str, Any] = json.loads(f.read(1 << 16))
        replaces = data["replaces"]
        intent = Intent(
            backup=str(data["backup"]),
            sha256=str(data["sha256"]),
            quarantine=str(data["quarantine"]),
            replaces=None if replaces is None else (int(replaces[0]), int(replaces[1])),
            started_at=str(data["started_at"]),
            pid=int(data["pid"]),
        )
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        raise Unreadable(f"it is not a litedeploy restore intent ({exc})") from exc
    if not STAMP.fullmatch(intent.quarantine) or not re.fullmatch(r"[0-9a-f]{64}", intent.sha256):
        raise Unreadable("it names a quarantine folder or a sha256 litedeploy would not write")
    return intent


def begin(db: Path, backup: Path, sha256: str, *, taking_over: Intent | None = None) -> Intent:
    """Write the intent, durably, before anything else; `taking_over` an unfinishable one."""
    if taking_over is not None:
        quarantine, replaces = taking_over.quarantine, taking_over.replaces
    else:
        quarantine = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        replaces = _identity(db)
    intent = Intent(
        backup=str(backup.absolute()),
        sha256=sha256,
        quarantine=quarantine,
        replaces=replaces,
        started_at=datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        pid=os.getpid(),
    )
    durable.atomic_write(intent_path(db), (json.dumps(asdict(intent), indent=2) + "\n").encode())
    faults.point("restore.intent")
    return intent


def abandon(db: Path, intent: Intent) -> None:
    """Undo a swap that changed no live file: its copy, its links in quarantine, its intent."""
    with contextlib.suppress(OSError):  # a quarantine folder we cannot open holds none of ours
        root = durable.open_folder(quarantine_root(db) / intent.quarantine)
        try:
            for name in (db.name + s for s in ("", *SIDE_FILES)):
                linked = _identity_at(root.fd, name)
                if linked is not None and linked == _identity(db.with_name(name)):
                    os.unlink(name, dir_fd=root.fd)  # a link to the live file, not a keepsake
        finally:
            root.close()
        os.rmdir(quarantine_root(db) / intent.quarantine)  # only when empty
    for path in (copy_path(db), intent_path(db)):
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
    durable.fsync_dir(db.parent)


def complete(db: Path, intent: Intent) -> Swapped:
    """Do (or finish) the swap the intent describes; hold the migration lock.

    Raises Unusable while no live file has been changed (the caller may `abandon`); any
    other error leaves the intent for the next start.
    """
    folder = durable.open_folder(db.parent)
    try:
        if _swapped(db, intent):
            return _finished_earlier(db, intent, folder.fd)
        try:
            _verified_copy(db, intent, folder.fd)
            kept = _quarantine(db, intent, folder.fd)
            _give_it_the_old_files_owner(db, folder.fd)
        except OSError as exc:
            raise Unusable(_reason(exc)) from exc
        for suffix in SIDE_FILES:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(db.name + suffix, dir_fd=folder.fd)
                faults.point("restore.unlinked")
        os.fsync(folder.fd)
        os.rename(copy_path(db).name, db.name, src_dir_fd=folder.fd, dst_dir_fd=folder.fd)
        os.fsync(folder.fd)
        faults.point("restore.renamed")
        os.unlink(intent_path(db).name, dir_fd=folder.fd)
        os.fsync(folder.fd)
    finally:
        folder.close()
    return Swapped(quarantine_root(db) / intent.quarantine if kept else None, kept)


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.lstat()
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _identity_at(dir_fd: int, name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _swapped(db: Path, intent: Intent) -> bool:
    """True once the copy has been renamed over the database (step 4 done)."""
    now = _identity(db)
    if now is None:
        return False
    return intent.replaces is None or now != intent.replaces


def _finished_earlier(db: Path, intent: Intent, dir_fd: int) -> Swapped:
    """Killed after the rename: only the intent is left to remove."""
    if durable.sha256_of(db) != intent.sha256:
        log.warning(
            "warning: %s differs from %s, which the interrupted restore put there (written to "
            "since, or replaced by hand); left as it is",
            db,
            intent.backup,
        )
    with contextlib.suppress(FileNotFoundError):
        os.unlink(copy_path(db).name, dir_fd=dir_fd)
    os.unlink(intent_path(db).name, dir_fd=dir_fd)
    os.fsync(dir_fd)
    folder = quarantine_root(db) / intent.quarantine
    kept = sorted(folder.iterdir()) if folder.is_dir() and not folder.is_symlink() else []
    return Swapped(folder if kept else None, kept, earlier=True)


def _verified_copy(db: Path, intent: Intent, dir_fd: int) -> None:
    """Make sure the copy beside the database is the backup, fsynced; copy it again if not."""
    copy = copy_path(db)
    if _problem(copy, intent.sha256) is None:
        _fsync_at(dir_fd, copy.name)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(copy.name, dir_fd=dir_fd)
        backup = Path(intent.backup)
        problem = _problem(backup, intent.sha256)
        if problem is not None:
            raise Unusable(f"backup {backup} {problem}")
        src = os.open(backup, os.O_RDONLY | os.O_CLOEXEC)
        try:
            with progress.watching("restore", copy, os.fstat(src).st_size):
                durable.copy_fd_to_new(src, copy.name, dir_fd)
        finally:
            os.close(src)
        problem = _problem(copy, intent.sha256)
        if problem is not None:
            raise Unusable(f"the copy of {backup} beside the database {problem}")
    os.fsync(dir_fd)
    faults.point("restore.copied")


def _problem(path: Path, sha256: str) -> str | None:
    """Why the file is not the verified backup, or None."""
    try:
        if not stat.S_ISREG(path.lstat().st_mode):
            return "is not a regular file"
        if durable.sha256_of(path) != sha256:
            return "differs from the backup's sha256"
    except FileNotFoundError:
        return "does not exist"
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    problems = file_problems(path, immutable=True)
    return f"fails quick_check ({problems[0]})" if problems else None


def _quarantine(db: Path, intent: Intent, dir_fd: int) -> list[Path]:
    """Link the live files into the quarantine folder (made 0700, never through a symlink)."""
    root = durable.open_folder(quarantine_root(db), create=True)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(intent.quarantine, 0o700, dir_fd=root.fd)
        flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
        qfd = os.open(intent.quarantine, flags, dir_fd=root.fd)
        try:
            kept = []
            for name in (db.name + s for s in ("", *SIDE_FILES)):
                if _keep(name, dir_fd, qfd):
                    kept.append(quarantine_root(db) / intent.quarantine / name)
            os.fsync(qfd)
        finally:
            os.close(qfd)
        if not kept:  # no database was there: nothing to keep
            os.rmdir(intent.quarantine, dir_fd=root.fd)
        os.fsync(root.fd)
    finally:
        root.close()
    if not kept and root.created:
        os.rmdir(quarantine_root(db).name, dir_fd=dir_fd)
    os.fsync(dir_fd)
    faults.point("restore.quarantined")
    return kept


def _keep(name: str, dir_fd: int, qfd: int) -> bool:
    """Keep the live file `name` in quarantine (a hard link, else a copy); True if it is kept."""
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:  # gone already (an earlier attempt unlinked it) or never there
        return _exists_at(qfd, name)
    if _exists_at(qfd, name):
        return True  # linked (or copied, atomically) by an earlier attempt
    try:
        os.link(name, name, src_dir_fd=dir_fd, dst_dir_fd=qfd, follow_symlinks=False)
        return True
    except OSError as exc:
        if exc.errno not in (errno.EPERM, errno.EXDEV, errno.EMLINK, errno.EOPNOTSUPP):
            raise
    tmp = f".{name}.copy"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp, dir_fd=qfd)
    src = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        durable.copy_fd_to_new(src, tmp, qfd)
    finally:
        os.close(src)
    os.rename(tmp, name, src_dir_fd=qfd, dst_dir_fd=qfd)
    log.info("copied %s to quarantine (no hard links on this filesystem)", name)
    return True


def _exists_at(dir_fd: int, name: str) -> bool:
    return _identity_at(dir_fd, name) is not None


def _fsync_at(dir_fd: int, name: str) -> None:
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _give_it_the_old_files_owner(db: Path, dir_fd: int) -> None:
    """The restored file gets the replaced file's owner and mode, so the app can write it."""
    try:
        st: os.stat_result | None = os.stat(db.name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        st = None
    fd = os.open(copy_path(db).name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
    try:
        if st is None or not stat.S_ISREG(st.st_mode):
            os.fchmod(fd, 0o644)
        else:
            os.fchmod(fd, stat.S_IMODE(st.st_mode))
            if os.geteuid() == 0:
                os.fchown(fd, st.st_uid, st.st_gid)
        os.fsync(fd)
    finally:
        os.close(fd)


def _reason(exc: OSError) -> str:
    if isinstance(exc, durable.UnsafePath):
        return f"cannot keep the replaced files: {exc.strerror}; not following it"
    where = f" ({exc.filename})" if exc.filename else ""
    return f"cannot prepare the swap: {exc.strerror or exc}{where}"
