"""Open the SQLite database the way the app's driver does, refusing files that are not SQLite."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

from . import signals
from .errors import DatabaseError, NoVolume, UsageError

log = logging.getLogger("litedeploy.entrypoint")

HEADER = b"SQLite format 3\x00"


def path_problem(path: Path) -> str | None:
    """Why SQLite could not be given this path (it takes it in a UTF-8 URI); None if it can."""
    text = str(path)
    if "\0" in text:
        return f"the path {text!r} contains a NUL byte"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        byte = os.fsencode(text[exc.start])[0]
        return f"the path {text!r} is not valid UTF-8 (byte 0x{byte:02x} at character {exc.start})"
    return None


def check_file(path: Path) -> bool:
    """True if the database exists; raise if it exists but is not an SQLite database."""
    if (problem := path_problem(path)) is not None:
        raise UsageError(
            f"database {problem}",
            hint="rename the file or folder to UTF-8, or point --db / DB_PATH elsewhere",
        )
    if path.is_symlink() and not path.exists():
        raise DatabaseError(
            f"database path {path} is a symbolic link to {os.readlink(path)}, which does not exist",
            hint="fix the link, or point --db / DB_PATH at the database file itself",
        )
    if not path.exists():
        if not path.parent.is_dir():
            raise DatabaseError(
                f"database folder {path.parent} does not exist",
                hint="mount the data volume there, or set --db / DB_PATH",
            )
        return False
    if not path.is_file():
        raise DatabaseError(f"database path {path} is not a file")
    try:
        with path.open("rb") as f:
            header = f.read(len(HEADER))
    except OSError as exc:
        raise DatabaseError(f"cannot read database {path}: {exc.strerror}") from exc
    if header and header != HEADER:
        raise DatabaseError(
            f"{path} is not an SQLite database (its header is not 'SQLite format 3')",
            hint="check --db / DB_PATH points at the app's database file",
        )
    return True


def uri(path: Path, mode: str = "ro", *, immutable: bool = False) -> str:
    """An SQLite URI for a path, quoted so that #, ? and % stay part of the file name."""
    extra = "&immutable=1" if immutable else ""
    return f"file:{quote(str(path.resolve()))}?mode={mode}{extra}"


def online_copy(source: sqlite3.Connection, target: Path) -> None:
    """Copy a database with SQLite's online backup API, in one step, into a new private file.

    One step gives a consistent snapshot even while other processes write. The target is
    created 0600 (and must not exist) before SQLite writes into it.
    """
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    os.close(fd)
    dst = sqlite3.connect(uri(target, "rw"), uri=True)
    try:
        source.backup(dst)
    finally:
        dst.close()


def connect(
    path: Path, *, busy_timeout: float = 30.0, read_only: bool = False
) -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves) with foreign keys ON.

    A stop signal aborts its statements (`signals.interruptible`).
    """
    signals.check()
    target = uri(path, "ro" if read_only else "rwc")
    try:
        conn = signals.interruptible(
            sqlite3.connect(target, timeout=busy_timeout, isolation_level=None, uri=True)
        )
        # better-sqlite3, the app's usual driver, enforces foreign keys by default.
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(
            f"cannot open {path}: {exc}",
            hint="the file may be damaged; restore it from a backup",
        ) from exc
    return conn


def check_volume(folder: Path, *, required: bool) -> None:
    """Warn (or refuse, when required) if the database folder is not a mounted volume."""
    if os.path.ismount(folder) or not folder.is_dir():
        return
    message = (
        f"database folder {folder} is not a mount point: the data lives in the container's "
        "own filesystem and vanishes with it"
    )
    if required:
        raise NoVolume(message, hint="bind-mount a host folder or a volume there")
    log.warning("warning: %s (mount a volume there; --require-volume refuses to start)", message)
