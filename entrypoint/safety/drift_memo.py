"""Drift, remembered: a start whose schema and snapshot were already compared reuses the answer.

`drift.against_snapshot` is a pure function of what it reads:

- the live schema: `read_schema` asks SQLite's pragmas about the main schema, and SQLite
  derives every one of their answers from the rows of `sqlite_master` (type, name, tbl_name,
  sql) as this SQLite version parses them;
- the snapshot it compares with: which file (`drift.basis`: the format, the folder, the
  newest applied migration) and its bytes;
- the tables it is told to ignore;
- its own code (drift.py, schema.py, snapshots.py), named by `COMPARER` and the package's
  version.

The memo's key is sha256 over all of them; the memo (`memo_path`: `<db name>.drift-memo` in
the backup folder, 0600, written atomically) holds one key and the answer for it. A start
whose key matches reuses the answer, and the time it was first given (`since`: the caller
summarises drift it already reported in one line); any other start compares again and writes
the new answer. The schema rows are read and the comparison
runs in one read transaction, so both see the same schema; the snapshot is read once, and the
bytes hashed are the bytes compared. A memo that is missing, unreadable, corrupt or not
plainly ours only means comparing again; failing to write one is a debug line.

The memo is written only into a backup folder that exists (a run that takes no backup never
creates one): without one, as with LITEDEPLOY_BACKUP=never on a database that never had a backup,
every start compares, as before the memo.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sqlite3
import stat
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

from ..base import durable
from ..base.contract import VERSION
from ..engine.snapshots import basis
from ..engine.sources import Source

log = logging.getLogger("litedeploy.entrypoint")

# Bump when drift.py, schema.py or snapshots.py would answer differently for the same input
# (tests/test_drift_memo.py fails on any change to them until COMPARER has been looked at).
COMPARER = "drift-3"
MEMO_SUFFIX = ".drift-memo"
MAX_MEMO_BYTES = 1 << 20  # a memo is a few hundred bytes; anything larger is not ours

Answer = tuple[list[str] | None, str | None]


def memo_path(db_path: Path, backups: Path) -> Path:
    """Where the drift of `db_path` is remembered: beside its backups, named after it."""
    return backups / f"{db_path.name}{MEMO_SUFFIX}"


def remembered_drift(
    conn: sqlite3.Connection,
    source: Source,
    *,
    upto: int | None = None,
    ignore: Iterable[str] = (),
    memo: Path,
) -> Answer:
    """`against_snapshot(conn, source, upto=upto, ignore=ignore)`, reused from the `memo` file
    when the schema, the snapshot, the ignore list and the comparer are the ones it was
    computed for."""
    return recalled_drift(conn, source, upto=upto, ignore=ignore, memo=memo)[0]


def recalled_drift(
    conn: sqlite3.Connection,
    source: Source,
    *,
    upto: int | None = None,
    ignore: Iterable[str] = (),
    memo: Path,
) -> tuple[Answer, str | None]:
    """`remembered_drift`'s answer, and when it was first given if it was reused (an ISO
    time; None when compared now)."""
    ignore = list(ignore)
    snapshot = basis(source, upto).path
    text = None
    if snapshot is not None:
        try:
            text = snapshot.read_bytes().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            return _compare(conn, source, upto, ignore, None), None  # says why: SourceError
    began = not conn.in_transaction
    if began:
        conn.execute("BEGIN")  # the rows hashed are the schema compared
    try:
        key = memo_key(conn, source, snapshot, text, ignore)
        stored = read_memo(memo, key)
        if stored is not None:
            return stored
        answer = _compare(conn, source, upto, ignore, text)
    finally:
        if began:
            conn.execute("COMMIT")
    write_memo(memo, key, answer)
    return answer, None


def _compare(
    conn: sqlite3.Connection,
    source: Source,
    upto: int | None,
    ignore: list[str],
    text: str | None,
) -> Answer:
    from .drift import against_snapshot  # only on a change: the schema model is not light

    return against_snapshot(conn, source, upto=upto, ignore=ignore, snapshot_text=text)


def memo_key(
    conn: sqlite3.Connection,
    source: Source,
    snapshot: Path | None,
    text: str | None,
    ignore: list[str],
) -> str:
    """sha256 over everything `against_snapshot` reads, and the comparer's version."""
    rows = conn.execute(
        "SELECT type, name, tbl_name, sql FROM main.sqlite_master ORDER BY type, name"
    ).fetchall()
    digest = hashlib.sha256()
    header = [
        COMPARER,
        VERSION,
        sqlite3.sqlite_version,
        str(source.format),
        # with a snapshot the answer is its bytes' (hashed below), wherever the folder is;
        # without one, the note names the folder
        str(source.folder) if snapshot is None else None,
        snapshot.name if snapshot is not None else None,
        ignore,
        rows,
    ]
    digest.update(json.dumps(header, ensure_ascii=False).encode("utf-8", "surrogatepass"))
    digest.update(b"\0snapshot\0")
    if text is not None:
        digest.update(text.encode("utf-8"))
    return digest.hexdigest()


def read_memo(path: Path, key: str) -> tuple[Answer, str | None] | None:
    """The stored answer when the memo holds `key`, and when it was first given; None for
    anything else."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        st = os.fstat(fd)
        if (
            not stat.S_ISREG(st.st_mode)
            or st.st_uid != os.geteuid()  # one we wrote, not one planted for us
            or st.st_mode & 0o022
            or st.st_size > MAX_MEMO_BYTES
        ):
            return None
        data = json.loads(os.read(fd, MAX_MEMO_BYTES + 1))
    except (OSError, ValueError, RecursionError):
        return None
    finally:
        os.close(fd)
    if not isinstance(data, dict) or data.get("key") != key:
        return None
    drifted, note = data.get("drifted"), data.get("note")
    if drifted is not None and not (
        isinstance(drifted, list) and all(isinstance(line, str) for line in drifted)
    ):
        return None
    if note is not None and not isinstance(note, str):
        return None
    since = data.get("since")
    return (drifted, note), since if isinstance(since, str) else None


def write_memo(memo: Path, key: str, answer: Answer) -> None:
    """Store the answer for `key` (atomically, 0600); a failure is only a debug line."""
    drifted, note = answer
    since = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    data = (
        json.dumps({"key": key, "drifted": drifted, "note": note, "since": since}, indent=1) + "\n"
    )
    try:
        opened = durable.open_folder(memo.parent)  # never created for it: see the note above
    except OSError as exc:
        log.debug("drift memo not written: %s: %s", memo.parent, exc)
        return
    try:
        durable.atomic_write_at(opened.fd, memo.name, data.encode("utf-8", "surrogatepass"))
    except OSError as exc:
        log.debug("drift memo not written: %s: %s", memo, exc)
    finally:
        with contextlib.suppress(OSError):
            opened.close()
