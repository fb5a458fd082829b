"""Read migrations from drizzle-kit 0.x journal folders, 1.0 folders, or plain SQL folders."""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from .errors import SourceError
from .rebuilds import find_rebuilds
from .sqltext import Op, Pragma, TxControl, classify
from .statements import Chunk, Statement, split_statements

JOURNAL = Path("meta") / "_journal.json"
JOURNAL_VERSIONS = {"5", "6", "7"}
_FOLDER_NAME = re.compile(r"^(\d{14})_.+$")
_PLAIN_NAME = re.compile(r"^\d+[_-].*\.sql$")


class Format(StrEnum):
    """Layout of a migrations folder."""

    DRIZZLE_JOURNAL = "drizzle-journal"
    DRIZZLE_FOLDERS = "drizzle-folders"
    SQL = "sql"


@dataclass(frozen=True)
class Migration:
    """One migration file: what it is called, its bytes' hash and its statements."""

    name: str
    path: Path
    hash: str
    created_at: int | None
    statements: list[Statement] = field(compare=False, repr=False)
    chunks: list[Chunk] = field(compare=False, repr=False)

    @property
    def wants_foreign_keys_off(self) -> bool:
        """Foreign keys go off around this migration (and are checked before commit).

        When the file says `PRAGMA foreign_keys=OFF` (drizzle-kit's rebuilds do), and when it
        rebuilds a table at all: SQLite's procedure for a rebuild turns them off, and with
        them on, the DROP TABLE deletes the children (ON DELETE CASCADE) or fails. Projects
        whose own runner turns them off write rebuilds without the pragma.
        """
        return any(s.foreign_keys_setting is False for s in self.statements) or bool(
            self.rebuilt_tables
        )

    @cached_property
    def rebuilt_tables(self) -> list[str]:
        """The tables this migration rebuilds (create new, copy, drop old, rename)."""
        return [r.old for r in find_rebuilds(self.statements, self.ops).values()]

    @cached_property
    def ops(self) -> list[Op]:
        """What each statement does, in order (`sqltext.classify`)."""
        return [classify(s.code) for s in self.statements]

    @cached_property
    def foreign_keys_idiom(self) -> set[int]:
        """Statement numbers of `COMMIT; PRAGMA ...; BEGIN` pieces.

        drizzle's migrator runs a file inside its own transaction, where `PRAGMA
        foreign_keys` does nothing; projects end that transaction, set the pragma and begin
        a new one. The pair asks for foreign keys to be off (or on) for the file, nothing
        more: litedeploy runs the whole file in one transaction with the setting applied
        outside it.
        """
        ops, found = self.ops, set()
        for i, op in enumerate(ops):
            if not (isinstance(op, TxControl) and op.verb in ("COMMIT", "END")):
                continue
            j = i + 1
            while j < len(ops) and isinstance(ops[j], Pragma):
                j += 1
            end = ops[j] if j < len(ops) else None
            if j > i + 1 and isinstance(end, TxControl) and end.verb == "BEGIN":
                found |= {self.statements[i].number, self.statements[j].number}
        return found

    @property
    def transaction_control(self) -> list[Statement]:
        """BEGIN / COMMIT / ROLLBACK / SAVEPOINT statements that are not the idiom."""
        idiom = self.foreign_keys_idiom
        return [
            s
            for s, op in zip(self.statements, self.ops, strict=True)
            if isinstance(op, TxControl) and s.number not in idiom
        ]


@dataclass(frozen=True)
class Source:
    """A migrations folder and the migrations it declares, in the order they apply."""

    folder: Path
    format: Format
    migrations: list[Migration]


def detect_format(folder: Path) -> Format:
    """Tell the folder's layout from what it contains."""
    entries = _list(folder)  # first: it turns an unreadable folder into a SourceError
    if _is_file(folder / JOURNAL):
        return Format.DRIZZLE_JOURNAL
    if any(_is_file(folder / e / "migration.sql") for e in entries):
        return Format.DRIZZLE_FOLDERS
    if any(e.endswith(".sql") for e in entries):
        return Format.SQL
    raise SourceError(
        f"no migrations found in {folder}",
        hint="expected meta/_journal.json (drizzle-kit 0.x), YYYYMMDDHHMMSS_name/migration.sql "
        "folders (drizzle-kit 1.0) or NNNN_name.sql files; check --migrations / MIGRATIONS_DIR",
    )


def load_source(folder: Path, fmt: Format | None = None) -> Source:
    """Read every migration of the folder, validating names, encodings and the journal."""
    if not folder.is_dir():
        raise SourceError(
            f"migrations folder {folder} does not exist or is not a folder",
            hint="set --migrations / MIGRATIONS_DIR to the folder drizzle-kit generates into",
        )
    fmt = fmt or detect_format(folder)
    if fmt is Format.DRIZZLE_JOURNAL:
        migrations = _journal_migrations(folder)
    elif fmt is Format.DRIZZLE_FOLDERS:
        migrations = _folder_migrations(folder)
    else:
        migrations = _plain_migrations(folder)
    names = [m.name for m in migrations]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SourceError(f"migration {duplicates[0]} is listed more than once in {folder}")
    return Source(folder=folder, format=fmt, migrations=migrations)


def _list(folder: Path) -> list[str]:
    try:
        return sorted(os.listdir(folder))
    except OSError as exc:
        raise SourceError(f"cannot read migrations folder {folder}: {exc.strerror}") from exc


def _is_file(path: Path) -> bool:
    """Path.is_file, but a folder we may not look into is a SourceError, not a crash."""
    try:
        return path.is_file()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc


def _journal_migrations(folder: Path) -> list[Migration]:
    journal_path = folder / JOURNAL
    journal = _read_journal(journal_path)
    migrations = []
    for number, entry in enumerate(journal["entries"]):
        where = f"{journal_path}: entries[{number}]"
        if not isinstance(entry, dict):
            raise SourceError(f"{where} is not an object")
        tag, when = entry.get("tag"), entry.get("when")
        if not isinstance(tag, str) or not tag:
            raise SourceError(f"{where}.tag is missing or not a string")
        if not isinstance(when, int) or isinstance(when, bool):
            raise SourceError(f"{where}.when must be a number of milliseconds (got {when!r})")
        path = _inside(folder, f"{tag}.sql", where=f"{where}.tag")
        migrations.append(_read_migration(tag, path, created_at=when))
    return migrations


def _read_journal(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc
    try:
        journal = json.loads(text)
    except json.JSONDecodeError as exc:
        raise SourceError(
            f"{path} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
            hint="restore it from version control or regenerate it with drizzle-kit",
        ) from exc
    if not isinstance(journal, dict) or not isinstance(journal.get("entries"), list):
        raise SourceError(f"{path} has no 'entries' list; is it a drizzle-kit journal?")
    version = str(journal.get("version"))
    if version not in JOURNAL_VERSIONS:
        raise SourceError(
            f"{path} has journal version {journal.get('version')!r}; "
            f"supported versions are {', '.join(sorted(JOURNAL_VERSIONS))}",
        )
    dialect = journal.get("dialect")
    if dialect not in (None, "sqlite", "turso"):
        raise SourceError(f"{path} is for dialect {dialect!r}; litedeploy migrates SQLite only")
    return journal


def _folder_migrations(folder: Path) -> list[Migration]:
    migrations = []
    for name in _list(folder):
        if not (folder / name).is_dir():
            continue
        if name == "meta":
            continue
        match = _FOLDER_NAME.match(name)
        if match is None:
            if _is_file(folder / name / "migration.sql"):
                raise SourceError(
                    f"migration folder {folder / name} does not start with a "
                    "YYYYMMDDHHMMSS timestamp",
                    hint="drizzle-kit 1.0 names folders like 20250220153045_name",
                )
            continue
        path = _inside(folder, f"{name}/migration.sql", where=f"folder {name}")
        migrations.append(_read_migration(name, path, created_at=_folder_millis(match.group(1))))
    return migrations


def _folder_millis(stamp: str) -> int:
    """drizzle 1.0's created_at: the folder's UTC timestamp in ms, at second precision."""
    fields = (stamp[0:4], stamp[4:6], stamp[6:8], stamp[8:10], stamp[10:12], stamp[12:14])
    year, month, day, hour, minute, second = (int(f) for f in fields)
    return calendar.timegm((year, month, day, hour, minute, second, 0, 0, 0)) * 1000


def _plain_migrations(folder: Path) -> list[Migration]:
    migrations = []
    for name in _list(folder):
        if not name.endswith(".sql"):
            continue
        if not _PLAIN_NAME.match(name):
            raise SourceError(
                f"{folder / name} does not start with a number",
                hint="name plain migrations NNNN_name.sql, or move other .sql files out of "
                "the migrations folder",
            )
        path = _inside(folder, name, where=name)
        migrations.append(_read_migration(name.removesuffix(".sql"), path, created_at=None))
    return migrations


def _inside(folder: Path, relative: str, *, where: str) -> Path:
    """Resolve a name from the journal or the folder, refusing anything outside the folder."""
    root = folder.resolve()
    candidate = (folder / relative).resolve()
    if (
        ".." in Path(relative).parts
        or Path(relative).is_absolute()
        or not candidate.is_relative_to(root)
    ):
        raise SourceError(
            f"{where}: {relative!r} points outside the migrations folder {folder}",
            hint="migration names must be plain names inside the folder",
        )
    return folder / relative


def _read_migration(name: str, path: Path, *, created_at: int | None) -> Migration:
    try:
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceError(
            f"migration file {path} is missing",
            hint="the journal lists it; restore the file or regenerate with drizzle-kit",
        ) from exc
    except OSError as exc:
        raise SourceError(f"cannot read migration file {path}: {exc.strerror}") from exc
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path} is not valid UTF-8 (byte {exc.start})",
            hint="save the file as UTF-8",
        ) from exc
    statements, chunks = split_statements(text)
    return Migration(
        name=name,
        path=path,
        hash=hashlib.sha256(data).hexdigest(),
        created_at=created_at,
        statements=statements,
        chunks=chunks,
    )
