"""prune.py's quarantine side: old folders go, young ones, odd names and the folder an
unfinished restore names stay. (The rollback images are pruned in the Docker scenarios.)"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from deploy.prune import quarantines
from entrypoint.safetynet.swap import intent_path

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def stamp(days_ago: float) -> str:
    return (NOW - timedelta(days=days_ago)).strftime("%Y%m%dT%H%M%S.%fZ")


def folder_with(db: Path, name: str, size: int = 10) -> Path:
    folder = db.parent / "quarantine" / name
    folder.mkdir(parents=True)
    (folder / "app.db").write_bytes(b"x" * size)
    return folder


def test_old_quarantine_folders_go_and_the_rest_stay(tmp_path: Path) -> None:
    db = tmp_path / "data" / "app.db"
    old = folder_with(db, stamp(30), size=1000)
    young = folder_with(db, stamp(2))
    odd = folder_with(db, "keep-me")
    in_use = folder_with(db, stamp(40))
    intent = {
        "backup": str(tmp_path / "b.backup"),
        "sha256": "0" * 64,
        "quarantine": in_use.name,
        "replaces": None,
        "started_at": NOW.isoformat(),
        "pid": 1,
    }
    intent_path(db).write_text(json.dumps(intent))

    listed = quarantines(db, 14, dry_run=True, now=NOW)
    assert [(r.name, r.size) for r in listed] == [(str(old), 1000)]
    assert old.exists()  # a dry run removes nothing

    removed = quarantines(db, 14, dry_run=False, now=NOW)
    assert [r.name for r in removed] == [str(old)]
    assert not old.exists() and young.exists() and odd.exists() and in_use.exists()


def test_no_quarantine_folder_is_nothing_to_do(tmp_path: Path) -> None:
    assert quarantines(tmp_path / "app.db", 0, dry_run=False, now=NOW) == []


def test_a_garbled_restore_intent_means_touch_nothing(tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    old = folder_with(db, stamp(100))
    intent_path(db).write_text("{not json")
    assert quarantines(db, 1, dry_run=False, now=NOW) == []
    assert old.exists()
