"""drizzle-kit's snapshots in a migrations folder: which one is newest, and reading one.

drizzle-kit 0.x keeps `meta/NNNN_snapshot.json` (versions "5" and "6": nested `tables`);
1.0 keeps `<folder>/snapshot.json` next to each migration (version "7": a flat `ddl` list).
Drift (the live schema against the snapshot) and push (the declared schema) both start here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base.errors import SourceError
from .sources import Format, Source

SNAPSHOT_VERSIONS = frozenset({"5", "6", "7"})
_SNAPSHOT_NAME = re.compile(r"^(\d+)_snapshot\.json$")


def latest_snapshot(source: Source) -> Path | None:
    """The newest snapshot drizzle-kit wrote for the folder; None for plain SQL or none found."""
    if source.format is Format.DRIZZLE_JOURNAL:
        meta = source.folder / "meta"
        numbered = [
            (int(m.group(1)), p)
            for p in (meta.iterdir() if meta.is_dir() else [])
            if (m := _SNAPSHOT_NAME.match(p.name)) and p.is_file()
        ]
        return max(numbered)[1] if numbered else None
    if source.format is Format.DRIZZLE_FOLDERS and source.migrations:
        path = source.migrations[-1].path.parent / "snapshot.json"
        return path if path.is_file() else None
    return None


def newest_snapshot(source: Source) -> tuple[Path, int] | None:
    """The newest snapshot drizzle-kit wrote for the folder and the position (in
    `source.migrations`) of the migration it was written with, which may be older than the
    newest migration (a migration written by hand, without a snapshot); None when there is none.
    """
    if source.format is Format.DRIZZLE_JOURNAL:
        path = latest_snapshot(source)
        if path is None:
            return None
        match = _SNAPSHOT_NAME.match(path.name)
        number = int(match.group(1)) if match else 0
        for position, migration in enumerate(source.migrations):
            if (lead := re.match(r"\d+", migration.name)) and int(lead.group()) == number:
                return path, position
        return path, min(number, len(source.migrations) - 1)
    if source.format is Format.DRIZZLE_FOLDERS:
        for position in reversed(range(len(source.migrations))):
            path = source.migrations[position].path.parent / "snapshot.json"
            if path.is_file():
                return path, position
    return None


def snapshot_path(source: Source, position: int) -> Path | None:
    """Where drizzle-kit writes the snapshot of the migration at `position` (None for plain
    SQL, or a journal tag without a number).

    0.x: `meta/<the tag's number>_snapshot.json` (drizzle-kit names both after the same
    prefix, `0003` or a timestamp); 1.0: `snapshot.json` in the migration's own folder.
    """
    migration = source.migrations[position]
    if source.format is Format.DRIZZLE_JOURNAL:
        lead = re.match(r"\d+", migration.name)
        return source.folder / "meta" / f"{lead.group()}_snapshot.json" if lead else None
    if source.format is Format.DRIZZLE_FOLDERS:
        return migration.path.parent / "snapshot.json"
    return None


def snapshot_of(source: Source, position: int) -> Path | None:
    """The snapshot drizzle-kit wrote with the migration at `position`, if it is there."""
    path = snapshot_path(source, position)
    return path if path is not None and path.is_file() else None


def snapshot_at(source: Source, upto: int) -> tuple[Path, int] | None:
    """The snapshot of the newest migration at or before position `upto` that has one, and
    that migration's position: the schema drizzle-kit recorded for a database migrated that
    far (a snapshot file of a newer migration says nothing about it)."""
    for position in reversed(range(min(upto + 1, len(source.migrations)))):
        if (path := snapshot_of(source, position)) is not None:
            return path, position
    return None


@dataclass(frozen=True)
class Basis:
    """What drift compares with: a snapshot and the migration it was written with, the
    applied migrations after it that drizzle-kit wrote no snapshot for, or why nothing."""

    path: Path | None = None
    migration: str | None = None
    after: list[str] = field(default_factory=list)
    note: str | None = None

    def describe(self, folder: Path) -> str:
        if self.path is None:
            return "no snapshot"
        where = self.path.relative_to(folder) if self.path.is_relative_to(folder) else self.path
        return f"the snapshot of {self.migration} ({where})"


def basis(source: Source, upto: int | None = None) -> Basis:
    """The snapshot of the newest migration at or before position `upto` (the newest applied
    one; None: the folder's newest migration) that has one."""
    if source.format is Format.SQL:
        return Basis(
            note="not available for plain SQL folders (no drizzle-kit snapshot to compare)"
        )
    if upto is None:
        upto = len(source.migrations) - 1
    if upto < 0:
        return Basis(note="not compared: no migration of the folder is applied yet")
    found = snapshot_at(source, upto)
    if found is None:
        return Basis(
            note=f"not available: no applied migration has a drizzle-kit snapshot in "
            f"{source.folder}"
        )
    path, position = found
    after = [m.name for m in source.migrations[position + 1 : upto + 1]]
    return Basis(path, source.migrations[position].name, after)


def read_snapshot(path: Path, text: str | None = None) -> tuple[str, dict[str, Any]]:
    """A drizzle-kit SQLite snapshot's version and its JSON; SourceError for anything else."""
    try:
        data = json.loads(path.read_text(encoding="utf-8") if text is None else text)
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read snapshot {path}: {exc}") from exc
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"snapshot {path} is not valid JSON: {exc.msg} at line {exc.lineno}",
            hint="restore it from version control or regenerate it with drizzle-kit",
        ) from exc
    version = str(data.get("version")) if isinstance(data, dict) else None
    if (
        not isinstance(data, dict)
        or version not in SNAPSHOT_VERSIONS
        or data.get("dialect") not in (None, "sqlite", "turso")
    ):
        raise SourceError(
            f"{path} is not a drizzle-kit SQLite snapshot (version {version!r}); supported "
            f"versions are {', '.join(sorted(SNAPSHOT_VERSIONS))}"
        )
    return version, data
