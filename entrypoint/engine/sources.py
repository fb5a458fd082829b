"""Read migrations from drizzle-kit 0.x journal folders, 1.0 folders, or plain SQL folders."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
import unicodedata
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..base.errors import SourceError
from ..base.record import Record

if TYPE_CHECKING:  # the SQL is read only when a migration's statements are needed
    from .sqltext import Op
    from .statements import Chunk, Statement

JOURNAL = Path("meta") / "_journal.json"
JOURNAL_VERSIONS = {"5", "6", "7"}
JOURNAL_MAX_BYTES = 16 << 20  # drizzle-kit writes ~100 bytes a migration
LATEST_WHEN = 8_640_000_000_000_000  # the last millisecond a JavaScript Date can hold
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
    sql: str = field(compare=False, repr=False)  # the text, an editor's BOM removed

    # Split on first use: a start with nothing pending only hashes the files, and splitting
    # 50 applied migrations would cost more than the whole check.
    @cached_property
    def _split(self) -> tuple[list[Statement], list[Chunk]]:
        from .statements import split_statements

        return split_statements(self.sql)

    @property
    def statements(self) -> list[Statement]:
        return self._split[0]

    @property
    def chunks(self) -> list[Chunk]:
        return self._split[1]

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
        from .rebuilds import find_rebuilds

        return [r.old for r in find_rebuilds(self.statements, self.ops).values()]

    @cached_property
    def ops(self) -> list[Op]:
        """What each statement does, in order (`sqltext.classify`)."""
        from .sqltext import classify

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
        from .sqltext import Pragma, TxControl

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
        from .sqltext import TxControl

        idiom = self.foreign_keys_idiom
        return [
            s
            for s, op in zip(self.statements, self.ops, strict=True)
            if isinstance(op, TxControl) and s.number not in idiom
        ]


@dataclass(eq=False, repr=False)
class Source(Record):
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
    root = folder.resolve()
    journal_path = folder / JOURNAL
    journal = _read_journal(journal_path)
    migrations = []
    for number, entry in enumerate(journal["entries"]):
        where = f"{journal_path}: entries[{number}]"
        if not isinstance(entry, dict):
            raise SourceError(f"{where} is not an object")
        tag, when = entry.get("tag"), entry.get("when")
        if not isinstance(tag, str) or not tag:
            raise SourceError(
                f"{where}.tag is missing or not a string (got {_short(tag)})",
                hint="restore the journal from version control or regenerate it with drizzle-kit",
            )
        _check_name(tag, f"{where}.tag")
        if not isinstance(when, int) or isinstance(when, bool) or not 0 <= when <= LATEST_WHEN:
            raise SourceError(
                f"{where}.when must be a time in milliseconds from 0 to {LATEST_WHEN} "
                f"(got {_short(when)})",
                hint="drizzle-kit writes Date.now() there; restore the journal from version "
                "control or regenerate it",
            )
        path = _inside(folder, f"{tag}.sql", where=f"{where}.tag", root=root)
        migrations.append(_read_migration(tag, path, created_at=when))
    return migrations


def _read_journal(path: Path) -> dict[str, Any]:
    try:
        size = _regular_file_size(path, what="the journal")
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc}") from exc
    if size > JOURNAL_MAX_BYTES:
        raise SourceError(
            f"{path} is {size} bytes; a drizzle-kit journal is a few kilobytes "
            f"(at most {JOURNAL_MAX_BYTES} bytes are read)",
            hint="check --migrations / MIGRATIONS_DIR points at drizzle-kit's output folder",
        )
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
    except (ValueError, RecursionError) as exc:  # a 5000-digit number, [[[[...]]]] nested deep
        raise SourceError(
            f"{path} is not a journal drizzle-kit writes: {exc}",
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
    root = folder.resolve()
    migrations = []
    for name in _list(folder):
        if not (folder / name).is_dir():
            continue
        if name == "meta":
            continue
        _check_name(name, f"folder {folder / name!r}")
        match = _FOLDER_NAME.match(name)
        if match is None:
            if _is_file(folder / name / "migration.sql"):
                raise SourceError(
                    f"migration folder {folder / name} does not start with a "
                    "YYYYMMDDHHMMSS timestamp",
                    hint="drizzle-kit 1.0 names folders like 20250220153045_name",
                )
            continue
        path = _inside(folder, f"{name}/migration.sql", where=f"folder {name}", root=root)
        millis = _folder_millis(match.group(1), folder / name)
        migrations.append(_read_migration(name, path, created_at=millis))
    return migrations


def _folder_millis(stamp: str, where: Path) -> int:
    """drizzle 1.0's created_at: the folder's UTC timestamp in ms, at second precision."""
    try:
        moment = datetime.strptime(stamp, "%Y%m%d%H%M%S")
    except ValueError:
        raise SourceError(
            f"migration folder {where} does not start with a real YYYYMMDDHHMMSS time "
            f"({stamp[:4]}-{stamp[4:6]}-{stamp[6:8]} {stamp[8:10]}:{stamp[10:12]}:{stamp[12:]})",
            hint="drizzle-kit 1.0 names folders like 20250220153045_name; rename the folder "
            "only if it was never applied (the time is its created_at)",
        ) from None
    import calendar  # drizzle-kit 1.0's folder names only (strptime loads it anyway)

    return calendar.timegm(moment.timetuple()) * 1000


def _plain_migrations(folder: Path) -> list[Migration]:
    root = folder.resolve()
    migrations = []
    for name in _list(folder):
        if not name.endswith(".sql"):
            continue
        _check_name(name, repr(str(folder / name)))
        if not _PLAIN_NAME.match(name):
            raise SourceError(
                f"{folder / name} does not start with a number",
                hint="name plain migrations NNNN_name.sql, or move other .sql files out of "
                "the migrations folder",
            )
        path = _inside(folder, name, where=name, root=root)
        migrations.append(_read_migration(name.removesuffix(".sql"), path, created_at=None))
    return migrations


def _inside(folder: Path, relative: str, *, where: str, root: Path) -> Path:
    """Resolve a name from the journal or the folder, refusing anything outside the folder
    (`root`: the folder resolved, once for all its migrations)."""
    name = Path(relative)
    outside = ".." in name.parts or name.is_absolute()
    if not outside and not _plain_entry(root, name):  # a symbolic link on the way
        outside = not (folder / relative).resolve().is_relative_to(root)
    if outside:
        raise SourceError(
            f"{where}: {relative!r} points outside the migrations folder {folder}",
            hint="migration names must be plain names inside the folder",
        )
    return folder / relative


def _plain_entry(root: Path, name: Path) -> bool:
    """True when no part of `name` under the resolved folder is a symbolic link (a missing
    part too: the reader says so): it is then inside without resolving the whole path."""
    here = root
    for part in name.parts:
        here = here / part
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                return False
        except FileNotFoundError:
            return True
        except OSError:
            return False
    return True


def _read_migration(name: str, path: Path, *, created_at: int | None) -> Migration:
    try:
        _regular_file_size(path, what="migration file")
        data = path.read_bytes()
    except FileNotFoundError as exc:
        raise SourceError(
            f"migration file {path} is missing",
            hint="the journal lists it; restore the file or regenerate with drizzle-kit",
        ) from exc
    except OSError as exc:
        raise SourceError(f"cannot read migration file {path}: {exc.strerror}") from exc
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise SourceError(
            f"{path} is UTF-16 (it starts with a UTF-16 byte-order mark), not UTF-8",
            hint="save the file as UTF-8",
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SourceError(
            f"{path} is not valid UTF-8 (byte {exc.start})",
            hint="save the file as UTF-8",
        ) from exc
    if "\0" in text:
        raise SourceError(
            f"{path} contains a NUL byte (byte {data.index(0)}); SQL text never does",
            hint="the file is binary or damaged: restore it from version control",
        )
    # An editor's UTF-8 byte-order mark: SQLite skips it, and so must whoever reads the SQL
    # (the findings would not see the first keyword). The hash stays the file's bytes'.
    return Migration(
        name=name,
        path=path,
        hash=hashlib.sha256(data).hexdigest(),
        created_at=created_at,
        sql=text.removeprefix("\ufeff"),
    )


def _regular_file_size(path: Path, *, what: str) -> int:
    """The size of a regular file; a FIFO (which would block the read), a device or a
    socket is a SourceError. Missing files raise FileNotFoundError for the caller."""
    try:
        st = path.stat()
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror}") from exc
    if not stat.S_ISREG(st.st_mode):
        kind = "a folder" if stat.S_ISDIR(st.st_mode) else _special_kind(st.st_mode)
        raise SourceError(
            f"{what} {path} is {kind}, not a regular file",
            hint="migrations are plain files; replace it with the file from version control",
        )
    return st.st_size


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a file"


def _check_name(name: str, where: str) -> None:
    """A migration's name becomes a history row and a file name: refuse control characters
    (NUL, newlines, escapes) and bytes that are not UTF-8 (a file name's surrogates)."""
    for i, char in enumerate(name):
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            what = "a byte that is not UTF-8" if "\udc80" <= char <= "\udcff" else repr(char)
            raise SourceError(
                f"{where}: the migration name {_short(name)} contains {what} at character {i}",
                hint="rename it (and its journal entry) to letters, digits, _ and -",
            )


def _short(value: object, limit: int = 60) -> str:
    """A value for an error line: repr, cut short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
