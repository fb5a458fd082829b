"""Open the SQLite database the way the app's driver does, refusing files that are not SQLite."""

from __future__ import annotations

import logging
import os
import sqlite3
from pathlib import Path

from ..base import signals
from ..base.contract import JOURNAL_SUFFIX, WAL_SUFFIX, side_file
from ..base.contract import SIDE_FILES as SIDE_FILES  # the contract's, under its old address
from ..base.durable import size_of
from ..base.errors import DatabaseError, NoVolume, UsageError

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
    """True if the database exists; raise if it exists but is not an SQLite database.

    An empty file (0 bytes: `touch`ed, or left by a tool that created it and failed) is no
    database yet, and False: SQLite treats it as a new one, and so does the migration (WAL,
    nothing to back up).
    """
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
    if not header:
        return False
    if header != HEADER:
        raise DatabaseError(
            f"{path} is not an SQLite database (its header is not 'SQLite format 3')",
            hint="check --db / DB_PATH points at the app's database file",
        )
    return True


def missing(path: Path) -> str:
    """How a database check_file found absent is absent: for an error line."""
    return "is empty (0 bytes): no database yet" if path.is_file() else "does not exist"


# What a URI path keeps as it is (RFC 3986's unreserved characters and `/`); every other
# byte of the UTF-8 name is %-escaped, as urllib.parse.quote does (not imported: start-up).
_URI_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~/")


def uri(path: Path, mode: str = "ro", *, immutable: bool = False) -> str:
    """An SQLite URI for a path, quoted so that #, ? and % stay part of the file name."""
    name = os.fsencode(path.resolve())
    quoted = "".join(chr(b) if b in _URI_SAFE else f"%{b:02X}" for b in name)
    extra = "&immutable=1" if immutable else ""
    return f"file:{quoted}?mode={mode}{extra}"


def begin_quiet_read(reader: sqlite3.Connection, db_path: Path) -> bool:
    """Start a read transaction on `reader` (autocommit mode); True when it sees no WAL frames.

    Then nothing can change the main file until the transaction ends, so the file's bytes
    are the snapshot: a writer appends to the WAL, and the checkpoint that would copy frames
    into the main file needs the read lock such a reader holds (WAL_READ_LOCK(0)); in
    rollback-journal mode the reader's SHARED lock keeps every writer out. The WAL is looked
    at after the read began: empty then, the reader saw no frames (frames a reader uses keep
    the WAL from being truncated under it). False, with the transaction ended, otherwise.
    """
    reader.execute("BEGIN")
    reader.execute("SELECT count(*) FROM main.sqlite_schema").fetchone()  # reading now
    if size_of(side_file(db_path, WAL_SUFFIX)) == 0:
        return True
    reader.execute("COMMIT")
    return False


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

    A stop signal aborts its statements (`signals.interruptible`). A read-only connection
    to a database with a hot rollback journal rolls the journal back first when this
    process may write (any opener does; a read-only one cannot), and says so.
    """
    signals.check()
    if not read_only:
        _refuse_unwritable(path)
    try:
        return _open(path, busy_timeout, "ro" if read_only else "rwc")
    except sqlite3.DatabaseError as exc:
        if not (read_only and exc.sqlite_errorcode == _READONLY_ROLLBACK):
            raise open_error(path, exc, busy_timeout) from exc
    journal = side_file(path, JOURNAL_SUFFIX)
    if not _writable(path):
        raise DatabaseError(
            f"{path} has a hot rollback journal ({journal.name}): a writer stopped in the middle "
            "of a transaction. The database is not damaged, but a read-only open cannot roll "
            "the unfinished transaction back",
            hint=f"open it once with write access (`entrypoint run`, or the app) and SQLite rolls "
            f"it back; do not delete {journal.name} and do not restore a backup, which would "
            "throw away committed data",
        )
    try:
        _open(path, busy_timeout, "rw").close()  # the open's first read rolls the journal back
        conn = _open(path, busy_timeout, "ro")
    except sqlite3.DatabaseError as exc:
        raise open_error(path, exc, busy_timeout) from exc
    log.info(
        "%s had a hot rollback journal (a writer stopped mid-transaction): SQLite rolled the "
        "unfinished transaction back, as the app's next open would have; committed data is "
        "untouched",
        path,
    )
    return conn


_READONLY_ROLLBACK = 776  # SQLITE_READONLY_ROLLBACK: a hot journal a read-only open cannot undo


def _open(path: Path, busy_timeout: float, mode: str) -> sqlite3.Connection:
    conn = signals.interruptible(
        sqlite3.connect(uri(path, mode), timeout=busy_timeout, isolation_level=None, uri=True)
    )
    try:
        # better-sqlite3, the app's usual driver, enforces foreign keys by default.
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except BaseException:
        conn.close()
        raise
    return conn


def _writable(path: Path) -> bool:
    """This process may write the file and create files beside it (the journal, the WAL)."""
    return os.access(path, os.W_OK) and os.access(path.parent, os.W_OK | os.X_OK)


def _refuse_unwritable(path: Path) -> None:
    """Before migrating: SQLite opens a file it may not write read-only, without a word, and
    the first statement to write then fails as if the migration were wrong."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise DatabaseError(
            f"cannot write {path}: {exc.strerror}",
            hint=UNWRITABLE_HINT,
        ) from exc
    os.close(fd)


UNWRITABLE_HINT = (
    "the entrypoint must be able to read and write the database and its folder (SQLite writes "
    "-journal and -wal files beside it): check the owner and mode, a read-only mount (:ro), "
    "and the immutable attribute (lsattr; chattr -i)"
)


def open_error(path: Path, exc: sqlite3.Error, busy_timeout: float = 30.0) -> DatabaseError:
    """SQLite's reason for not opening (or reading) a database, with the hint that fits it."""
    code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
    message = f"cannot open {path}: {exc}"
    if code in (_CORRUPT, _NOTADB):
        hint = "the file is damaged; restore it from a backup (`entrypoint restore --latest`)"
    elif code in (_READONLY, _PERM, _CANTOPEN, _AUTH):
        hint = UNWRITABLE_HINT
    elif code in (_BUSY, _LOCKED):
        message = f"{path} stayed locked by another process for {busy_timeout:g}s ({exc})"
        hint = "find the process holding it (a long write, a stuck app) and stop it, then retry"
    elif code in (_IOERR, _FULL):
        hint = "check the disk that holds the database (free space, errors in the kernel log)"
    else:
        hint = "check that --db / DB_PATH points at the app's SQLite database"
    return DatabaseError(message, hint=hint)


# SQLite's primary result codes (sqlite3.h)
_PERM, _BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT = 3, 5, 6, 8, 10, 11
_FULL, _CANTOPEN, _AUTH, _NOTADB = 13, 14, 23, 26


def in_container(root: Path = Path("/")) -> bool:
    """Whether this process runs in a container: Docker's /.dockerenv, Podman's
    /run/.containerenv, or systemd's `container` variable (nspawn, Podman)."""
    markers = (root / ".dockerenv", root / "run" / ".containerenv")
    return any(m.exists() for m in markers) or bool(os.environ.get("container"))  # noqa: SIM112


def check_volume(folder: Path, *, required: bool, root: Path = Path("/")) -> None:
    """Warn (or refuse, when required) if the database folder is in the container's own
    filesystem: on the same device as its root, so not a volume or a bind mount (of the
    folder or of any folder above it). Outside a container the host's disk is the volume."""
    if not folder.is_dir() or not in_container(root):
        return
    try:
        if os.path.ismount(folder) or folder.stat().st_dev != root.stat().st_dev:
            return
    except OSError:
        return  # the open that follows says what is wrong with the folder
    message = (
        f"database folder {folder} is not a mount point: the data lives in the container's "
        "own filesystem and vanishes with it"
    )
    if required:
        raise NoVolume(message, hint="bind-mount a host folder or a volume there")
    log.warning("warning: %s (mount a volume there; --require-volume refuses to start)", message)
