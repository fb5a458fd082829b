"""The drift memo (drift_memo.py) answers exactly what the full comparison answers.

Every test compares `remembered_drift` with `against_snapshot` called directly on the same
real SQLite file and folder, and looks at the memo file itself: a start whose schema and
snapshot are the ones compared before reuses the answer without writing, any change is
compared again, and a memo that is damaged, forged or cannot be written changes nothing but
the cost.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tomllib
from pathlib import Path

import pytest
from harness import ROOT, Cli, tmpfs

from entrypoint.base.contract import VERSION
from entrypoint.engine.snapshots import latest_snapshot
from entrypoint.engine.sources import Source, load_source
from entrypoint.safety.drift import against_snapshot
from entrypoint.safety.drift_memo import COMPARER, Answer, memo_path, remembered_drift

FIXTURES = ROOT / "tests" / "fixtures"
FORMATS = ["drizzle-journal", "drizzle-folders"]


@pytest.fixture(params=FORMATS)
def app(request: pytest.FixtureRequest, cli: Cli, tmp_path: Path) -> tuple[Path, Path, Path]:
    """A database migrated from a copy of a shop fixture, and an existing backup folder."""
    folder = tmp_path / "drizzle"
    shutil.copytree(FIXTURES / request.param / "shop", folder)
    db = tmp_path / "data" / "app.db"
    db.parent.mkdir()
    proc = cli("run", "--db", db, "--migrations", folder)
    assert proc.returncode == 0, proc.stderr
    backups = tmp_path / "data" / "backups"
    backups.mkdir(mode=0o700)
    return db, folder, backups


def direct(db: Path, folder: Path) -> Answer:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return against_snapshot(conn, load_source(folder, None), ignore=["__drizzle_migrations"])


def remembered(db: Path, folder: Path, memo: Path) -> Answer:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return remembered_drift(
            conn, load_source(folder, None), ignore=["__drizzle_migrations"], memo=memo
        )


def stamp(path: Path) -> tuple[int, int] | None:
    """The memo file's identity: a write renames a new file over it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    return st.st_ino, st.st_mtime_ns


def alter(db: Path, sql: str) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(sql)


def source_of(folder: Path) -> Source:
    return load_source(folder, None)


def test_the_same_pair_is_compared_once_and_reused(app: tuple[Path, Path, Path]) -> None:
    db, folder, backups = app
    memo = memo_path(db, backups)
    alter(db, "ALTER TABLE users ADD COLUMN nickname text")  # some drift to remember
    expected = direct(db, folder)
    assert expected[0] == ["users.nickname: column in the database, not in the snapshot"]
    assert remembered(db, folder, memo) == expected
    written = stamp(memo)
    assert written is not None
    assert memo.stat().st_mode & 0o777 == 0o600
    stored = json.loads(memo.read_text())
    assert stored["drifted"] == expected[0] and stored["note"] is None
    for _ in range(3):
        assert remembered(db, folder, memo) == expected
        assert stamp(memo) == written  # a match writes nothing


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE products ADD COLUMN colour text",
        "CREATE INDEX products_sku_idx ON products (sku)",
        "DROP TABLE reviews",
        "DROP INDEX reviews_product_idx",
        "ALTER TABLE users RENAME COLUMN email TO mail",
        "CREATE TABLE extra (id integer PRIMARY KEY)",
        "CREATE VIEW v AS SELECT id FROM users",
    ],
)
def test_a_changed_schema_is_compared_again(app: tuple[Path, Path, Path], change: str) -> None:
    db, folder, backups = app
    memo = memo_path(db, backups)
    before = remembered(db, folder, memo)
    assert before == direct(db, folder) == ([], None)
    written = stamp(memo)
    alter(db, change)
    after = remembered(db, folder, memo)
    assert after == direct(db, folder)
    if change.startswith("CREATE VIEW"):  # a view is no table: no drift, but still a new key
        assert after == ([], None)
    else:
        assert after[0], "the change must show as drift"
    assert stamp(memo) != written  # compared again and remembered
    assert remembered(db, folder, memo) == after


def test_a_change_undone_gives_the_first_answer_again(app: tuple[Path, Path, Path]) -> None:
    db, folder, backups = app
    memo = memo_path(db, backups)
    clean = remembered(db, folder, memo)
    alter(db, "ALTER TABLE orders ADD COLUMN note text")
    assert remembered(db, folder, memo) == direct(db, folder) != clean
    alter(db, "ALTER TABLE orders DROP COLUMN note")
    assert remembered(db, folder, memo) == direct(db, folder) == clean


def test_a_changed_snapshot_is_compared_again(app: tuple[Path, Path, Path]) -> None:
    db, folder, backups = app
    memo = memo_path(db, backups)
    assert remembered(db, folder, memo) == ([], None)
    snapshot = latest_snapshot(source_of(folder))
    assert snapshot is not None
    text = snapshot.read_text()
    # the same JSON with one column renamed: a different declared schema
    snapshot.write_text(text.replace('"email"', '"e_mail"'))
    changed = remembered(db, folder, memo)
    assert changed == direct(db, folder)
    assert changed[0] and any("e_mail" in line for line in changed[0])
    # only whitespace changed: other bytes, the same answer, compared again all the same
    snapshot.write_text(text + "\n")
    written = stamp(memo)
    assert remembered(db, folder, memo) == direct(db, folder) == ([], None)
    assert stamp(memo) != written


@pytest.mark.parametrize("app", ["drizzle-journal"], indirect=True)  # numbered in meta/
def test_a_snapshot_no_journal_entry_names_is_not_compared(app: tuple[Path, Path, Path]) -> None:
    """meta/0006_snapshot.json without a 0006 entry in the journal (a folder copied from a
    newer release, a journal cut back by hand) says nothing about this database."""
    db, folder, backups = app
    memo = memo_path(db, backups)
    assert source_of(folder).format.value == "drizzle-journal"
    assert remembered(db, folder, memo) == ([], None)
    newest = folder / "meta" / "0005_snapshot.json"
    data = json.loads(newest.read_text())
    del data["tables"]["orders"]
    (folder / "meta" / "0006_snapshot.json").write_text(json.dumps(data))
    answer = remembered(db, folder, memo)
    assert answer == direct(db, folder) == ([], None)
    newest.write_text(json.dumps(data))  # 0005's own snapshot is the one compared
    assert remembered(db, folder, memo) == direct(db, folder)
    assert direct(db, folder)[0] == ["orders: table in the database, not in the snapshot"]


@pytest.mark.parametrize(
    "content",
    [
        b"",
        b"not json",
        b'{"key": "',
        b"[1, 2, 3]",
        b'{"key": null, "drifted": [], "note": null}',
        b"[" * 100_000,
        b"\xff\xfe",
    ],
)
def test_a_corrupt_memo_means_comparing_again(app: tuple[Path, Path, Path], content: bytes) -> None:
    db, folder, backups = app
    memo = memo_path(db, backups)
    alter(db, "CREATE INDEX orders_qty_idx ON orders (quantity)")
    memo.write_bytes(content)
    memo.chmod(0o600)
    assert remembered(db, folder, memo) == direct(db, folder)
    assert json.loads(memo.read_text())["drifted"] == direct(db, folder)[0]  # rewritten


def test_a_memo_with_the_right_key_but_the_wrong_shape_is_not_believed(
    app: tuple[Path, Path, Path],
) -> None:
    db, folder, backups = app
    memo = memo_path(db, backups)
    remembered(db, folder, memo)
    key = json.loads(memo.read_text())["key"]
    for forged in ({"key": key, "drifted": "x", "note": None}, {"key": key, "drifted": [1]}):
        memo.write_text(json.dumps(forged))
        memo.chmod(0o600)
        assert remembered(db, folder, memo) == direct(db, folder) == ([], None)


def test_a_memo_others_could_write_is_not_believed(app: tuple[Path, Path, Path]) -> None:
    db, folder, backups = app
    memo = memo_path(db, backups)
    remembered(db, folder, memo)
    key = json.loads(memo.read_text())["key"]
    memo.write_text(json.dumps({"key": key, "drifted": ["planted"], "note": None}))
    memo.chmod(0o666)
    assert remembered(db, folder, memo) == direct(db, folder) == ([], None)
    memo.unlink()
    target = backups / "elsewhere"
    target.write_text(json.dumps({"key": key, "drifted": ["planted"], "note": None}))
    target.chmod(0o600)
    memo.symlink_to(target)  # never followed
    assert remembered(db, folder, memo) == direct(db, folder) == ([], None)


def test_a_folder_that_cannot_be_written_only_costs_the_comparison(
    app: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    db, folder, _ = app
    alter(db, "DROP TABLE reviews")
    expected = direct(db, folder)
    # a backup folder that is not there: never created for the memo
    missing = memo_path(db, tmp_path / "no-backups")
    assert remembered(db, folder, missing) == expected
    assert not missing.parent.exists()
    # a read-only one: a read-only mount (root writes through modes), else mode 0500
    if os.geteuid() == 0:
        with tmpfs(tmp_path / "ro", "ro,size=1m") as ro:
            memo = memo_path(db, ro)
            assert remembered(db, folder, memo) == expected
            assert remembered(db, folder, memo) == expected
            assert list(ro.iterdir()) == []
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        memo = memo_path(db, ro)
        assert remembered(db, folder, memo) == expected
        assert list(ro.iterdir()) == []


def test_a_plain_sql_folder_remembers_its_note(cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "sql"
    folder.mkdir()
    (folder / "0001_init.sql").write_text("CREATE TABLE t (id integer PRIMARY KEY);")
    db = tmp_path / "app.db"
    assert cli("run", "--db", db, "--migrations", folder).returncode == 0
    (tmp_path / "backups").mkdir()
    memo = memo_path(db, tmp_path / "backups")
    assert remembered(db, folder, memo) == direct(db, folder)
    assert remembered(db, folder, memo) == direct(db, folder)
    assert direct(db, folder)[0] is None


# The comparer's code as it was when COMPARER was last set. A change to these files fails
# the test below until the two are set again together: bump COMPARER when the answer for the
# same schema and snapshot may differ (or keep it, for a change that cannot), then record the
# new digest. A memo written by other code is then never taken for this code's answer.
COMPARER_SOURCES = ["safety/drift.py", "safety/schema.py", "engine/snapshots.py"]
RECORDED = {
    "drift-2": "70a9f2c73607f5d9e0ee338210e97c0fc1c6ac99a50ba6a39f19fb173e89afcf",
    "drift-3": "d0986de60a5b9279e7c6d5e1bc6b59d6c8638408488106295b526df1628a5616",  # basis
}


def test_the_comparer_cannot_change_without_a_look_at_comparer() -> None:
    digest = hashlib.sha256(
        b"".join((ROOT / "entrypoint" / name).read_bytes() for name in COMPARER_SOURCES)
    ).hexdigest()
    assert RECORDED.get(COMPARER) == digest, (
        f"{', '.join(COMPARER_SOURCES)} changed: bump drift_memo.COMPARER if the drift "
        f"answer may differ, then set RECORDED[COMPARER] = {digest!r}"
    )


def test_the_package_version_in_the_key_is_pyprojects() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["version"] == VERSION


def test_a_start_reuses_the_memo_and_still_warns(app: tuple[Path, Path, Path], cli: Cli) -> None:
    """Through `entrypoint run`: the drift is warned on every start, in full the first time and
    in one line while it is unchanged; that start writes nothing and does not load the comparer."""
    db, folder, backups = app
    alter(db, "ALTER TABLE users ADD COLUMN nickname text")
    line = "users.nickname: column in the database, not in the snapshot"
    first = cli("run", "--db", db, "--migrations", folder)
    assert first.returncode == 0, first.stderr
    assert re.search(
        r"warning: drift from the snapshot of \S*drop_user_name \(.*\): " + line, first.stderr
    ), first.stderr
    memo = memo_path(db, backups)
    written = stamp(memo)
    assert written is not None
    again = cli("run", "--db", db, "--migrations", folder, env={"PYTHONPROFILEIMPORTTIME": "1"})
    assert again.returncode == 0, again.stderr
    assert re.search(r"\| +entrypoint\.safety\.drift_memo$", again.stderr, re.M)  # they show
    assert not re.search(r"\| +entrypoint\.safety\.(drift|schema)$", again.stderr, re.M)
    said = [x for x in again.stderr.splitlines() if x.startswith("entrypoint:") and "drift" in x]
    assert len(said) == 1, said
    assert re.fullmatch(
        r"entrypoint: warning: drift unchanged since 20\d\d-\d\d-\d\dT[\d:]+Z: the schema "
        r"differs from the snapshot of \S+ \(\S+\) in 1 place\(s\), first: "
        + re.escape(line)
        + r"; `entrypoint check --migrations DIR` lists them; --strict makes this refuse the "
        "start",
        said[0],
    ), said
    assert stamp(memo) == written
    strict = cli("run", "--db", db, "--migrations", folder, "--strict")
    assert strict.returncode != 0 and "users.nickname" in strict.stderr
