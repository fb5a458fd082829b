"""The stack's data folder (database, backups, quarantine), as deploy reads and changes it.

The entrypoint runs as root inside the app's container, so the backups it takes are
root-only (0600 in a 0700 folder) and what a restore replaces is root's. An operator who is
in the `docker` group but not root cannot read them on the host, yet may use the Docker
engine, which can. So every operation here exists twice, with the same JSON in and out:
done in this process (`Local`: root, or an operator who can reach the files), or by a
short-lived container of the litedeploy image that runs `deploy files OP` as root with the
folders mounted at their own paths (`InContainer`). `open_folder` picks one.
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from entrypoint.base.contract import WAL_SUFFIX, side_file
from entrypoint.base.durable import sha256_of
from entrypoint.base.errors import EntrypointError
from entrypoint.safetynet.backup import Backup, Manifest, Method, list_backups, take_backup
from entrypoint.safetynet.restore import find_backup, restore_backup

from . import prune, rehearsal, writes
from .config import Settings
from .errors import FolderError
from .runner import run
from .stack import Stack

OPS_COMMAND = "files"  # the hidden `deploy files OP ARGS_JSON` the container runs
SCRATCH = "/litedeploy-scratch"  # where a Docker volume for a snapshot is mounted


# -- the operations, on JSON-able values ---------------------------------------------------


def _backups(backup_dir: str) -> list[dict[str, Any]]:
    return [
        {"path": str(b.path), "manifest": asdict(b.manifest)}
        for b in list_backups(Path(backup_dir))
    ]


def _find(backup_dir: str, path: str | None, latest: bool, deploy_id: str | None) -> str:
    chosen = find_backup(
        Path(backup_dir), path=Path(path) if path else None, latest=latest, deploy_id=deploy_id
    )
    return str(chosen)


def _restore(db: str, backup: str, sha256: str | None) -> dict[str, Any]:
    if sha256 is not None and _equals(Path(db), sha256):
        return {"already": True, "quarantine": None, "summary": []}
    done = restore_backup(Path(db), Path(backup), lock_timeout=30)
    return {
        "already": False,
        "quarantine": str(done.quarantine) if done.quarantine else None,
        "summary": done.summary(),
    }


def _equals(db: Path, sha256: str) -> bool:
    """The database is the backup: same bytes, and no WAL whose frames would change them (a
    migration committed in WAL mode may sit in db-wal, the main file still the old one)."""
    wal = side_file(db, WAL_SUFFIX)
    if not db.exists() or (wal.exists() and wal.stat().st_size > 0):
        return False
    return sha256_of(db) == sha256


def _writes(db: str, backup: str) -> dict[str, int]:
    return writes.writes_since(Path(db), Path(backup))


def _snapshot(source: str, into: str, name: str, owner: list[int] | None) -> None:
    target = rehearsal.snapshot(Path(source), Path(into), name)
    if owner is not None:  # made by root for an operator: theirs to remove afterwards
        for path in (Path(into), target):
            if path.exists():
                os.chown(path, owner[0], owner[1])


def _backup(db: str, backup_dir: str) -> dict[str, Any]:
    made = take_backup(Path(db), Path(backup_dir), method=Method.ONLINE)
    return {"path": str(made.path), "manifest": asdict(made.manifest)}


def _room(db: str) -> dict[str, int]:
    path = Path(db)
    probe = path.parent if path.parent.exists() else path.parent.parent
    return {
        "size": path.stat().st_size if path.exists() else 0,
        "free": shutil.disk_usage(probe).free,
    }


def _prune(db: str, older_than: float, dry_run: bool) -> list[dict[str, Any]]:
    return [asdict(r) for r in prune.quarantines(Path(db), older_than, dry_run=dry_run)]


OPS: dict[str, Callable[..., Any]] = {
    "backups": _backups,
    "find": _find,
    "restore": _restore,
    "writes": _writes,
    "snapshot": _snapshot,
    "backup": _backup,
    "prune": _prune,
    "room": _room,
}


def perform(op: str, args: dict[str, Any]) -> Any:
    """Run one operation here; typed errors become FolderError with the entrypoint's code."""
    try:
        return OPS[op](**args)
    except EntrypointError as exc:
        raise FolderError(exc.message, exc.hint, exc.exit_code) from exc
    except (OSError, sqlite3.Error) as exc:
        raise FolderError(f"{op} failed on the data folder: {exc}") from exc


def answer(op: str, args_json: str) -> tuple[str, int]:
    """The container's side: the JSON result (or error) and the exit code to leave with."""
    try:
        args = json.loads(args_json)
    except ValueError:
        args = None
    try:
        if op not in OPS:
            raise FolderError(
                f"unknown operation {op!r}; known: {', '.join(OPS)}", entrypoint_code=2
            )
        if not isinstance(args, dict):
            raise FolderError("the arguments must be a JSON object", entrypoint_code=2)
        result = perform(op, args)
    except FolderError as exc:
        error = {"message": exc.message, "hint": exc.hint, "exit_code": exc.entrypoint_code}
        return json.dumps({"error": error}), 1
    return json.dumps({"result": result}), 0


# -- the two ways to run them ------------------------------------------------------------


@dataclass(frozen=True)
class DataFolder:
    """The database and its backups; `via` names who touches them (for messages)."""

    db: Path
    backup_dir: Path
    image: str | None = None  # None: this process; else the litedeploy image to run them in
    # On another host (a fleet's): its paths are that host's, so nothing of them is looked at
    # here; every operation runs in a container of `image` on that host's engine.
    remote: bool = False

    @property
    def via(self) -> str:
        return "here" if self.image is None else f"in a container of {self.image}"

    def _call(
        self,
        op: str,
        mounts: tuple[Path, ...] = (),
        volumes: tuple[tuple[str, str], ...] = (),
        **args: Any,
    ) -> Any:
        if self.image is None:
            return perform(op, args)
        argv = ["docker", "run", "--rm", "--network", "none", "--user", "0:0"]
        folders = [self.db.parent, self.backup_dir, *mounts]
        for folder in _remote_mounts(folders) if self.remote else _mounts(folders):
            argv += ["-v", f"{folder}:{folder}"]
        for volume, at in volumes:
            argv += ["-v", f"{volume}:{at}"]
        argv += ["--entrypoint", "deploy", self.image, OPS_COMMAND, op, json.dumps(args)]
        done = run(argv, timeout=3600)
        try:
            reply = json.loads(done.stdout.strip().splitlines()[-1])
        except (ValueError, IndexError):
            raise FolderError(
                f"{op} on the data folder, {self.via}, failed (exit {done.returncode}): "
                f"{done.tail(5)}",
                hint=f"the litedeploy image ({self.image}) must be on this Docker host: build it "
                "with `docker build -t litedeploy:<version> .` in litedeploy's repository, or "
                "set litedeploy_image in deploy.yml; or run deploy as root",
            ) from None
        if "error" in reply:
            error = reply["error"]
            raise FolderError(error["message"], error.get("hint"), int(error["exit_code"]))
        return reply["result"]

    def backups(self) -> list[Backup]:
        return [
            Backup(Path(b["path"]), Manifest(**b["manifest"]))
            for b in self._call("backups", backup_dir=str(self.backup_dir))
        ]

    def find(self, path: Path | None, *, latest: bool, deploy_id: str | None) -> Path:
        if path is not None and not path.is_absolute() and path.parent != Path():
            path = path.resolve()  # relative to where deploy runs, not to the container
        found = self._call(
            "find",
            backup_dir=str(self.backup_dir),
            path=str(path) if path else None,
            latest=latest,
            deploy_id=deploy_id,
        )
        return Path(found)

    def restore(self, backup: Path, *, unless_sha256: str | None = None) -> dict[str, Any]:
        """{"already": bool, "quarantine": str | None, "summary": [lines]}."""
        result: dict[str, Any] = self._call(
            "restore", db=str(self.db), backup=str(backup), sha256=unless_sha256
        )
        return result

    def writes_since(self, backup: Path) -> dict[str, int]:
        return {
            str(k): int(v)
            for k, v in self._call("writes", db=str(self.db), backup=str(backup)).items()
        }

    def snapshot(self, source: Path | None, into: Path | str, name: str) -> None:
        """A consistent copy of the database (or `source`) named `name` in the folder `into`,
        or, `into` a string, in that Docker volume of the host (a fleet host's rehearsal: made
        by a container there, nothing of the copy crosses to this machine)."""
        if isinstance(into, str):
            self._call(
                "snapshot",
                volumes=((into, SCRATCH),),
                source=str(source or self.db),
                into=SCRATCH,
                name=name,
                owner=None,
            )
            return
        into.mkdir(parents=True, exist_ok=True, mode=0o755)
        owner = None if self.image is None else [os.getuid(), os.getgid()]
        self._call(
            "snapshot",
            (into,),
            source=str(source or self.db),
            into=str(into),
            name=name,
            owner=owner,
        )

    def room(self) -> tuple[int, int]:
        """The database's size and the free bytes of its folder (on the host)."""
        found = self._call("room", db=str(self.db))
        return int(found["size"]), int(found["free"])

    def take_backup(self) -> Backup:
        made = self._call("backup", db=str(self.db), backup_dir=str(self.backup_dir))
        return Backup(Path(made["path"]), Manifest(**made["manifest"]))

    def prune_quarantines(self, older_than: float, *, dry_run: bool) -> list[prune.Removed]:
        listed = self._call("prune", db=str(self.db), older_than=older_than, dry_run=dry_run)
        return [prune.Removed(**r) for r in listed]


def _mounts(folders: list[Path]) -> list[Path]:
    """The folders to bind-mount: those that exist (Docker would create a missing one as
    root 0755, and a backups folder made so would stay world-readable), none inside another."""
    present = sorted({f.resolve() for f in folders if f.is_dir()})
    return [f for f in present if not any(f != o and f.is_relative_to(o) for o in present)]


def _remote_mounts(folders: list[Path]) -> list[Path]:
    """The same, for another host's paths, which cannot be looked at from here: each folder
    unless it lies inside another (the backups inside the database's folder, by default)."""
    unique = sorted(set(folders))
    return [f for f in unique if not any(f != o and f.is_relative_to(o) for o in unique)]


def reachable(db: Path, backup_dir: Path) -> bool:
    """Whether this process can do every operation itself: root, or an operator who may
    read the backups and write the database's folder."""
    if os.geteuid() == 0:
        return True
    folders = [(db.parent, os.W_OK | os.X_OK), (backup_dir, os.R_OK | os.W_OK | os.X_OK)]
    return all(not f.exists() or os.access(f, mode) for f, mode in folders) and (
        not db.exists() or os.access(db, os.R_OK | os.W_OK)
    )


def open_folder(db: Path, backup_dir: Path, image: str) -> DataFolder:
    """Work here when possible, else in a container of `image` (the litedeploy image)."""
    return DataFolder(db, backup_dir, None if reachable(db, backup_dir) else image)


def for_stack(settings: Settings, stack: Stack) -> DataFolder:
    """The stack's database and backups (open_folder with the settings' litedeploy image; on
    a fleet's host, always in a container there)."""
    if settings.docker_host is not None:
        return DataFolder(stack.db_path, stack.backup_dir, settings.files_image, remote=True)
    return open_folder(stack.db_path, stack.backup_dir, settings.files_image)
