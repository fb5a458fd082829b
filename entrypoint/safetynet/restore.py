"""Put a verified backup back in place, keeping the replaced files in quarantine.

Which backup, whether it is sound, and whether anyone has the database open are decided
here; the swap itself, crash-safe and finished by the next start if interrupted, is swap.py.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from ..base import durable, progress
from ..base.contract import SHM_SUFFIX, SIDE_FILES, side_file
from ..base.errors import DatabaseBusy, LockTimeout, RestoreFailed
from ..engine.lock import migration_lock
from . import swap
from .integrity import file_problems

log = logging.getLogger("litedeploy.entrypoint")


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
        if not path.is_file() and path.parent == Path() and (folder / path.name).is_file():
            path = folder / path.name  # a backup's bare name, as the hints give it
        if not path.is_file():
            raise RestoreFailed(
                f"backup {path} does not exist",
                hint="list them with `entrypoint backups`",
            )
        return path
    from .backup import by_time, list_backups  # only here: a start-up loads no backup code

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
        dated, undated = by_time(backups)
        for backup in undated if dated else []:
            log.warning(
                "warning: --latest passes over %s, dated %r (in the future, or not a time); "
                "restore it by name if it is the one",
                backup.path.name,
                backup.manifest.created_at,
            )
        return (dated or backups)[-1].path
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
    """With the migration lock held: swap the verified backup in, crash-safe (see swap.py).

    The live files are kept in quarantine. If the backup cannot be copied and verified, no
    live file is changed. An interrupted restore found first is finished; one that cannot
    be finished (its backup gone) is taken over by this one.
    """
    if expected is None:
        expected = _verified_hash(backup_path)
    _refuse_if_in_use(db_path)
    unfinished = _unfinished(db_path)
    try:
        intent = swap.begin(db_path, backup_path, expected, taking_over=unfinished)
    except OSError as exc:
        if unfinished is None:
            with contextlib.suppress(FileNotFoundError):
                swap.intent_path(db_path).unlink()
        raise RestoreFailed(
            f"cannot restore {backup_path}: cannot write {swap.intent_path(db_path).name}: "
            f"{exc.strerror or exc}; the live database was not touched",
            hint="check the disk holding the database",
        ) from exc
    try:
        done = swap.complete(db_path, intent)
    except swap.Unusable as exc:
        if unfinished is None:
            swap.abandon(db_path, intent)
            raise RestoreFailed(
                f"cannot restore {backup_path}: {exc}; the live database was not touched",
                hint="check the disk holding the database",
            ) from None
        raise _cannot_finish(db_path, intent, str(exc)) from None
    except OSError as exc:
        raise RestoreFailed(
            f"the restore of {backup_path} stopped half-way: {exc.strerror or exc}; "
            f"{swap.intent_path(db_path).name} says what is left to do",
            hint="the next `entrypoint run` (or `entrypoint restore` again) finishes it",
        ) from exc
    return Restored(backup_path, db_path, done.quarantine, done.kept)


def finish_interrupted(db_path: Path) -> Restored | None:
    """With the migration lock held, before anything opens the database: finish a restore
    a killed process left half-done, or refuse (exit 12) when it cannot be finished."""
    try:
        intent = swap.read_intent(db_path)
    except swap.Unreadable as exc:
        raise RestoreFailed(
            f"{swap.intent_path(db_path)} says a restore of {db_path} was interrupted, but {exc}",
            hint="restore a backup (`entrypoint restore --latest`, or a FILE): it takes the "
            "interrupted restore's place",
        ) from None
    if intent is None:
        return None
    log.warning(
        "warning: a restore of %s into %s was interrupted (started %s by pid %d); finishing it",
        intent.backup,
        db_path,
        intent.started_at,
        intent.pid,
    )
    _refuse_if_in_use(db_path)
    try:
        done = swap.complete(db_path, intent)
    except swap.Unusable as exc:
        raise _cannot_finish(db_path, intent, str(exc)) from None
    except OSError as exc:
        raise RestoreFailed(
            f"cannot finish the interrupted restore of {intent.backup} into {db_path}: "
            f"{exc.strerror or exc}",
            hint="check the disk holding the database, then start again",
        ) from exc
    restored = Restored(Path(intent.backup), db_path, done.quarantine, done.kept)
    if done.earlier:
        log.info("the restore had swapped the files before it was interrupted; nothing was left")
    for line in restored.summary():
        log.info("%s", line)
    return restored


def _unfinished(db_path: Path) -> swap.Intent | None:
    """Finish an interrupted restore; return its intent only when it cannot be finished."""
    try:
        finish_interrupted(db_path)
    except RestoreFailed:
        try:
            return swap.read_intent(db_path)
        except swap.Unreadable:
            log.warning("warning: replacing %s, which cannot be read", swap.intent_path(db_path))
    return None


def _cannot_finish(db_path: Path, intent: swap.Intent, reason: str) -> RestoreFailed:
    kept = swap.quarantine_root(db_path) / intent.quarantine
    return RestoreFailed(
        f"a restore of {intent.backup} into {db_path} was interrupted and cannot be finished: "
        f"{reason}; {db_path} still holds the database it was replacing"
        + (f" (its files are also kept in {kept})" if kept.is_dir() else ""),
        hint="restore another backup (`entrypoint backups` lists them; `entrypoint restore "
        "FILE`): it takes the interrupted restore's place",
    )


def _verified_hash(backup_path: Path) -> str:
    """Refuse a backup that is missing, differs from its manifest, or fails quick_check."""
    if not backup_path.is_file():
        raise RestoreFailed(f"backup {backup_path} does not exist")
    from .backup import read_manifest  # only when restoring: start-ups never load it

    with progress.counting("restore check", durable.size_of(backup_path)) as read:
        actual = durable.sha256_of(backup_path, read)
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
    for suffix in ("", SHM_SUFFIX):
        path = side_file(db_path, suffix)
        if _locked_by_another(path):
            raise DatabaseBusy(
                f"{db_path} is locked by another process (a lock on {path.name}), maybe in "
                "another container",
                hint="stop the app before restoring",
            )


def _locked_by_another(path: Path) -> bool:
    """True when another process holds a POSIX lock on any byte of the file."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_NOFOLLOW | os.O_CLOEXEC)
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
