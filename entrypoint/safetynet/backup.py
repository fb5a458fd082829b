"""Verified backups of the live database, with a manifest beside each, and their retention."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sqlite3
import stat
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from ..base import durable, faults, progress
from ..base.contract import JOURNAL_SUFFIX, WAL_SUFFIX, side_file
from ..base.errors import BackupFailed, CorruptDatabase, NoSpace
from . import swap
from .backup_options import Method as Method  # re-exported: its old address
from .backup_options import default_dir as default_dir
from .database import begin_quiet_read, online_copy, uri
from .integrity import Level, file_problems, integrity_problems

log = logging.getLogger("litedeploy.entrypoint")

SUFFIX = ".backup"
MANIFEST_SUFFIX = ".json"
MARGIN_BYTES = 16 << 20
MARGIN_RATIO = 0.05
# Containers' clocks disagree a little; beyond this a manifest's time is not believed.
CLOCK_SLACK = timedelta(minutes=5)
# The longest a backup's checkpoint may keep the app's writers waiting, per try (_quiet_reader):
# 100 ms showed as 100 ms gaps for a client writing through the proxy during a start-first deploy.
CHECKPOINT_WAIT_MS = 20

# The backup this process took last, by (device, inode): the current run's, which retention
# never deletes, whatever the clocks say (prune's callers run it right after take_backup).
_last_taken: list[tuple[int, int]] = []


@dataclass(frozen=True)
class Manifest:
    """What a backup is of, written as JSON beside it."""

    file: str
    source: str
    size: int
    sha256: str
    created_at: str
    sqlite_version: str
    journal_mode: str
    method: str
    check: str
    head_before: str | None = None
    pending: list[str] = field(default_factory=list)
    deploy_id: str | None = None
    duration_ms: int = 0
    # losses the operator acknowledged for this run (--allow RULE OBJECT), for the audit
    acknowledged: list[str] = field(default_factory=list)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2) + "\n"


@dataclass(frozen=True)
class Backup:
    """A backup file and its manifest."""

    path: Path
    manifest: Manifest

    @property
    def manifest_path(self) -> Path:
        return manifest_path(self.path)


def manifest_path(backup: Path) -> Path:
    return backup.with_name(backup.name + MANIFEST_SUFFIX)


def prepare_dir(folder: Path) -> None:
    """Create the backup folder private (0700), or use the existing one as it is; check it.

    A symlink another user could have planted on the way is refused (durable.open_folder):
    as root, following one would write root's backups, and delete temporary files, wherever
    it points. An existing folder's mode is never changed; one others can write is used
    with a warning (the backups themselves are 0600).
    """
    try:
        opened = durable.open_folder(folder, create=True)
    except durable.UnsafePath as exc:
        raise BackupFailed(
            f"backup folder {folder} is not safe to write to as uid {os.geteuid()}: "
            f"{exc.strerror}; not following it",
            hint="replace the link with a real folder, or set --backup-dir / LITEDEPLOY_BACKUP_DIR "
            "to a folder only root (or this user) can change",
        ) from exc
    except OSError as exc:
        raise BackupFailed(
            f"cannot create backup folder {folder}: {exc.strerror}",
            hint="set --backup-dir / LITEDEPLOY_BACKUP_DIR to a writable folder on the data volume",
        ) from exc
    try:
        st = os.fstat(opened.fd)
    finally:
        opened.close()
    if not opened.created and (st.st_uid != os.geteuid() or st.st_mode & 0o022):
        log.warning(
            "warning: backup folder %s (mode %o, owner uid %d) can be changed by another user, "
            "who could delete or replace the backups; left as it is",
            folder,
            stat.S_IMODE(st.st_mode),
            st.st_uid,
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise BackupFailed(
            f"backup folder {folder} is not writable",
            hint="fix its owner or mode, or set --backup-dir / LITEDEPLOY_BACKUP_DIR elsewhere",
        )


def room_for_backup(db_path: Path, folder: Path) -> None:
    """Refuse before writing anything when the folder's filesystem cannot hold the copy."""
    size = sum(durable.size_of(side_file(db_path, s)) for s in ("", WAL_SUFFIX))
    needed = size + max(MARGIN_BYTES, int(size * MARGIN_RATIO))
    free = shutil.disk_usage(folder).free
    if free < needed:
        raise NoSpace(
            f"not enough free space for a backup in {folder}: need {_mib(needed)} "
            f"(database {_mib(size)} plus margin), {_mib(free)} free",
            hint="free space there, lower --backup-keep, or set --backup-dir / "
            "LITEDEPLOY_BACKUP_DIR to a larger filesystem",
        )


def _mib(n: int) -> str:
    return f"{n / (1 << 20):.1f} MiB"


def take_backup(
    db_path: Path,
    folder: Path,
    *,
    method: Method = Method.AUTO,
    level: Level = Level.QUICK,
    head_before: str | None = None,
    pending: list[str] | None = None,
    deploy_id: str | None = None,
    acknowledged: list[str] | None = None,
) -> Backup:
    """Snapshot the database into `folder`, fsynced and verified, with its manifest.

    A backup that fails its check is deleted. The manifest is written before the backup is
    renamed into place, so a killed run never leaves a backup without one. Call while
    holding the migration lock, so what a killed run left can be removed safely.
    """
    started = time.monotonic()
    _refuse_during_a_restore(db_path)
    prepare_dir(folder)
    for leftover in durable.remove_leftovers(folder) + _remove_orphan_manifests(folder, db_path):
        log.info("removed %s, left by an interrupted backup", leftover)
    room_for_backup(db_path, folder)
    stamp = datetime.now(UTC)
    target = folder / f"{db_path.name}.{stamp.strftime('%Y%m%dT%H%M%S.%fZ')}{SUFFIX}"
    tmp = durable.temporary_for(target)
    try:
        try:
            used, journal_mode, problems, digest = _snapshot(db_path, tmp, method, level)
        except OSError as exc:
            raise BackupFailed(
                f"cannot write backup {target}: {exc.strerror or exc}",
                hint="check the backup folder's space and permissions",
            ) from exc
        except sqlite3.Error as exc:  # the online backup API reports write failures this way
            raise BackupFailed(
                f"cannot back up {db_path} to {target}: {exc}",
                hint="check the backup folder's space and permissions",
            ) from exc
        if problems:
            _refuse_damaged(db_path, target, level, problems)
        manifest = Manifest(
            file=target.name,
            source=str(db_path),
            size=tmp.stat().st_size,
            sha256=digest,
            created_at=stamp.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            sqlite_version=sqlite3.sqlite_version,
            journal_mode=journal_mode,
            method=used.value,
            check=f"{level.value}_check ok",
            head_before=head_before,
            pending=list(pending or []),
            deploy_id=deploy_id,
            duration_ms=round((time.monotonic() - started) * 1000),
            acknowledged=list(acknowledged or []),
        )
        _publish(tmp, target, manifest)
    finally:
        _remove_temporary(tmp)
    _last_taken[:] = [taken] if (taken := _identity(target)) is not None else []
    return Backup(target, manifest)


def _publish(tmp: Path, target: Path, manifest: Manifest) -> None:
    """The manifest first, then the backup renamed into place beside it."""
    try:
        durable.atomic_write(manifest_path(target), manifest.to_json().encode())
        faults.point("backup.manifest")
        durable.commit(tmp, target)
    except OSError as exc:
        _delete(target)
        raise BackupFailed(
            f"cannot write backup {target} or its manifest: {exc.strerror or exc}",
            hint="check the backup folder's space and permissions",
        ) from exc
    faults.point("backup.published")


def _refuse_during_a_restore(db_path: Path) -> None:
    """A database a restore was swapping when it was killed is no thing to back up."""
    intent = swap.intent_path(db_path)
    if intent.exists():
        raise BackupFailed(
            f"a restore into {db_path} was interrupted ({intent.name} is there); refusing to "
            "back up a database half-way through a restore",
            hint="`entrypoint run` finishes the restore first (or `entrypoint restore` again)",
        )


def _remove_orphan_manifests(folder: Path, db_path: Path) -> list[Path]:
    """Manifests of this database's backups whose backup never got renamed beside them."""
    removed = []
    opened = durable.open_folder(folder)
    try:
        for entry in os.scandir(opened.fd):
            name = entry.name
            if not (
                name.startswith(f"{db_path.name}.") and name.endswith(SUFFIX + MANIFEST_SUFFIX)
            ):
                continue
            try:
                os.stat(name.removesuffix(MANIFEST_SUFFIX), dir_fd=opened.fd, follow_symlinks=False)
                continue  # its backup is there
            except FileNotFoundError:
                pass
            if entry.is_file(follow_symlinks=False):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(name, dir_fd=opened.fd)
                    removed.append(folder / name)
    finally:
        opened.close()
    return removed


def _settle(tmp: Path, level: Level) -> tuple[list[str], str]:
    """fsync, check and hash a copy written by SQLite's backup API at once: each releases
    the GIL, and together they cost little more than the slowest of them."""
    from concurrent.futures import ThreadPoolExecutor  # 10 ms to import: only for a backup

    with (
        ThreadPoolExecutor(max_workers=3) as pool,
        progress.counting("backup check", durable.size_of(tmp)) as read,
    ):
        synced = pool.submit(durable.fsync_file, tmp)
        checked = pool.submit(_verify, tmp, level)
        hashed = pool.submit(durable.sha256_of, tmp, read)
        synced.result()
        return checked.result(), hashed.result()


def _refuse_damaged(db_path: Path, target: Path, level: Level, problems: list[str]) -> None:
    """A copy that fails its check: blame the source if it is damaged too, else the backup."""
    source_problems = _source_problems(db_path, level)
    if source_problems:
        raise CorruptDatabase(
            f"{db_path} is damaged ({level.value}_check: {source_problems[0]}); "
            "refusing to migrate it",
            hint="restore it from a backup (`entrypoint restore --latest`) or repair it "
            "with sqlite3's .recover",
        )
    raise BackupFailed(
        f"backup {target} failed its {level.value}_check ({problems[0]}) and was deleted",
        hint="check the backup folder's disk; nothing was migrated",
    )


def _remove_temporary(tmp: Path) -> None:
    for leftover in (tmp, side_file(tmp, JOURNAL_SUFFIX)):
        with contextlib.suppress(FileNotFoundError):
            leftover.unlink()


def _snapshot(
    db_path: Path, tmp: Path, method: Method, level: Level
) -> tuple[Method, str, list[str], str]:
    """Write the snapshot to the temporary file `tmp`, fsync it, check it and hash it.

    Returns the method used, the database's journal mode, the check's problems (none when
    sound) and the copy's sha256. Not yet renamed into place.
    """
    conn = sqlite3.connect(uri(db_path, "rw"), uri=True, isolation_level=None, timeout=30)
    try:
        journal_mode = str(conn.execute("PRAGMA journal_mode").fetchone()[0])
        if method is not Method.ONLINE:
            reader = _quiet_reader(conn, db_path)
            if reader is not None:
                with contextlib.closing(reader):
                    problems, digest = _copy_quiet(reader, db_path, tmp, level)
                return Method.COPY, journal_mode, problems, digest
        if method is Method.COPY:
            raise BackupFailed(
                f"could not get {db_path} to a quiet state for a file copy (another process "
                "keeps writing)",
                hint="use --backup-method online, which copes with concurrent writers",
            )
        with progress.watching("backup", tmp, durable.size_of(db_path)):
            online_copy(conn, tmp)
    finally:
        conn.close()
    faults.point("backup.copy")
    return Method.ONLINE, journal_mode, *_settle(tmp, level)


def _quiet_reader(conn: sqlite3.Connection, db_path: Path) -> sqlite3.Connection | None:
    """A second connection in a read transaction that pins the main file (`begin_quiet_read`),
    the WAL checkpointed into it first; None if writers keep the WAL from staying empty.

    No write lock is held: writers carry on into the WAL while the backup copies and checks
    the main file, and only the checkpoint waits until the reader is closed.
    """
    wal = side_file(db_path, WAL_SUFFIX)
    conn.execute("SELECT count(*) FROM main.sqlite_schema").fetchone()  # rolls a hot journal back
    reader = sqlite3.connect(
        uri(db_path, "ro"), uri=True, isolation_level=None, timeout=30, check_same_thread=False
    )
    # A TRUNCATE checkpoint holds off new writers while it waits for readers to move on: with
    # the app serving (its readers always busy, another container writing), a long wait there
    # would be the app's writes stalled for as long. So each try waits at most 20 ms.
    conn.execute(f"PRAGMA busy_timeout = {CHECKPOINT_WAIT_MS}")
    try:
        for _ in range(5):
            if durable.size_of(wal):  # an empty WAL needs no checkpoint (others see it as a change)
                conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if begin_quiet_read(reader, db_path):
                return reader
            time.sleep(0.05)
    except BaseException:
        reader.close()
        raise
    finally:
        conn.execute("PRAGMA busy_timeout = 30000")
    reader.close()
    return None


def _copy_quiet(
    reader: sqlite3.Connection, db_path: Path, tmp: Path, level: Level
) -> tuple[list[str], str]:
    """Copy the pinned main file in the kernel while `reader` checks the same bytes, then
    fsync and hash the copy at once.

    The check reads the snapshot the copy is of (the reader's transaction pins the file: no
    byte of it can change until the reader ends), so the copy is sound exactly when the
    check passes; checking the source rather than the finished copy lets the check (the
    longest step) run beside the copy instead of after it. The hash is of the copy as read
    back, the bytes a restore will verify. Each step releases the GIL.
    """
    from concurrent.futures import ThreadPoolExecutor  # 10 ms to import: only for a backup

    with ThreadPoolExecutor(max_workers=3) as pool:
        checked = pool.submit(integrity_problems, reader, level)
        try:
            with progress.watching("backup", tmp, durable.size_of(db_path)):
                durable.copy_to_new(db_path, tmp)
            faults.point("backup.copy")
            with progress.counting("backup check", durable.size_of(tmp)) as read:
                synced = pool.submit(durable.fsync_file, tmp)
                hashed = pool.submit(durable.sha256_of, tmp, read)
                synced.result()
                digest = hashed.result()
        except BaseException:
            reader.interrupt()  # the check would only delay the error
            raise
        return checked.result(), digest


def _verify(path: Path, level: Level) -> list[str]:
    """Check a copy nobody else has open: immutable, so SQLite writes nothing beside it."""
    return file_problems(path, level, immutable=True)


def _source_problems(db_path: Path, level: Level) -> list[str]:
    return file_problems(db_path, level)


def _delete(path: Path) -> None:
    for p in (path, manifest_path(path)):
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def list_backups(folder: Path) -> list[Backup]:
    """Backups in the folder, oldest first; a backup without a readable manifest is skipped."""
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob(f"*{SUFFIX}")):
        manifest = read_manifest(path)
        if manifest is not None:
            found.append(Backup(path, manifest))
    return sorted(found, key=lambda b: b.manifest.created_at)


def read_manifest(backup: Path) -> Manifest | None:
    """The manifest beside a backup, or None when it is missing or unreadable."""
    try:
        data: dict[str, Any] = json.loads(manifest_path(backup).read_text(encoding="utf-8"))
        return Manifest(**data)
    except (OSError, ValueError, TypeError):
        return None


def prune(folder: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups, trusting no clock with the ones that matter.

    Never deleted, whatever the manifests' times say: the backup this process took last (the
    current run's), the newest backup whose file still matches its manifest, and a backup
    whose time is unreadable or in the future (it cannot be placed; it is named in a
    warning, for the operator to judge).
    """
    keep = max(keep, 1)
    dated, undated = by_time(list_backups(folder))
    for backup in undated:
        log.warning(
            "warning: backup %s says it was made at %r, which is %s; retention leaves it (delete "
            "it by hand if it is not needed)",
            backup.path.name,
            backup.manifest.created_at,
            "in the future" if _created(backup) else "not a time",
        )
    newest_sound = [b for b in dated if _matches_manifest(b)][-1:]
    spared = {b.path for b in dated[-keep:] + newest_sound}
    spared |= {b.path for b in dated if _identity(b.path) in _last_taken}
    doomed = [b for b in dated if b.path not in spared]
    for backup in doomed:
        _delete(backup.path)
        log.info("removed old backup %s (keeping %d)", backup.path.name, keep)
        faults.point("backup.pruned")
    return [b.path for b in doomed]


def by_time(backups: list[Backup]) -> tuple[list[Backup], list[Backup]]:
    """(backups oldest first by manifest time, backups whose time is unreadable or ahead)."""
    latest_credible = datetime.now(UTC) + CLOCK_SLACK
    dated = []
    undated = []
    for backup in backups:
        created = _created(backup)
        if created is not None and created <= latest_credible:
            dated.append((created, backup))
        else:
            undated.append(backup)
    return [b for _, b in sorted(dated, key=lambda pair: pair[0])], undated


def _created(backup: Backup) -> datetime | None:
    try:
        created = datetime.fromisoformat(backup.manifest.created_at.replace("Z", "+00:00"))
    except (TypeError, ValueError):
        return None
    return created if created.tzinfo is not None else None


def _matches_manifest(backup: Backup) -> bool:
    """A cheap check (size and recorded check) that the file is the backup it says it is."""
    try:
        size = backup.path.stat().st_size
    except OSError:
        return False
    return size == backup.manifest.size and backup.manifest.check.endswith(" ok")


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino
