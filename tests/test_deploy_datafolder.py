"""datafolder.py on real files, in this process: the JSON protocol the litedeploy image's
`deploy files OP ARGS` speaks, and the operations behind it. (The container side runs in the
non-root Docker tests.)"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import tomllib
from pathlib import Path

from deploy import VERSION
from deploy.datafolder import DataFolder, answer
from entrypoint.safetynet.backup import take_backup

ROOT = Path(__file__).resolve().parent.parent


def database(path: Path, rows: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE IF NOT EXISTS notes (id INTEGER PRIMARY KEY, body TEXT)")
        conn.executemany("INSERT INTO notes(body) VALUES (?)", [(f"n{i}",) for i in range(rows)])
    return path


def test_the_protocol_lists_finds_counts_and_restores(tmp_path: Path) -> None:
    db = database(tmp_path / "data" / "app.db", 3)
    made = take_backup(db, tmp_path / "data" / "backups")
    database(db, 2)  # two rows written since
    folder = DataFolder(db, tmp_path / "data" / "backups")

    [listed] = folder.backups()
    assert listed.path == made.path and listed.manifest.sha256 == made.manifest.sha256
    assert folder.find(Path(made.path.name), latest=False, deploy_id=None) == made.path
    assert folder.writes_since(made.path) == {"notes": 2}

    done = folder.restore(made.path, unless_sha256=made.manifest.sha256)
    assert done["already"] is False and done["quarantine"]
    assert Path(done["quarantine"], "app.db").is_file()
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM notes").fetchone() == (3,)
    again = folder.restore(made.path, unless_sha256=made.manifest.sha256)
    assert again == {"already": True, "quarantine": None, "summary": []}


def test_answers_are_json_with_the_error_and_its_exit_code(tmp_path: Path) -> None:
    out, code = answer(
        "find",
        json.dumps({"backup_dir": str(tmp_path), "path": None, "latest": True, "deploy_id": None}),
    )
    assert code == 1
    error = json.loads(out)["error"]
    assert "there are no backups" in error["message"] and error["exit_code"] == 12

    out, code = answer("format-disk", "{}")
    assert code == 1 and "unknown operation 'format-disk'" in json.loads(out)["error"]["message"]
    out, code = answer("backups", "not json")
    assert code == 1 and json.loads(out)["error"]["exit_code"] == 2

    out, code = answer("backups", json.dumps({"backup_dir": str(tmp_path / "none")}))
    assert (json.loads(out), code) == ({"result": []}, 0)


def test_the_version_is_pyprojects() -> None:
    with (ROOT / "pyproject.toml").open("rb") as f:
        assert tomllib.load(f)["project"]["version"] == VERSION


def test_a_database_whose_wal_holds_a_migration_is_not_taken_for_its_backup(
    tmp_path: Path,
) -> None:
    """The main file can still be byte-identical to the backup while the migration sits in
    db-wal: 'already equal' would skip the restore and leave the migrated database."""
    db = database(tmp_path / "data" / "app.db", 3)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA journal_mode=wal")
    made = take_backup(db, tmp_path / "data" / "backups")
    holder = sqlite3.connect(db)  # keeps the WAL from being checkpointed away at close
    try:
        holder.execute("PRAGMA wal_autocheckpoint=0")
        with holder:
            holder.execute("ALTER TABLE notes ADD stock INTEGER DEFAULT 0")
        assert (db.parent / "app.db-wal").stat().st_size > 0
        folder = DataFolder(db, tmp_path / "data" / "backups")
        done = folder.restore(made.path, unless_sha256=made.manifest.sha256)
    finally:
        holder.close()
    assert done["already"] is False
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert "stock" not in [r[1] for r in conn.execute("PRAGMA table_info(notes)")]


def test_only_existing_folders_are_mounted_and_none_twice(tmp_path: Path) -> None:
    """Docker makes a missing bind-mount source as root 0755: a backups folder made that way
    would stay world-readable, so a folder that does not exist yet is never mounted."""
    from deploy.datafolder import _mounts

    data = tmp_path / "data"
    (data / "backups").mkdir(parents=True)
    elsewhere = tmp_path / "state"
    elsewhere.mkdir()
    assert _mounts([data, data / "backups", elsewhere, tmp_path / "missing"]) == [data, elsewhere]
    assert _mounts([data / "backups", tmp_path / "data" / ".." / "data"]) == [data]
