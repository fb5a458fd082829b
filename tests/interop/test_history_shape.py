"""drizzle 1.0's history table shape, pending or not (issue 19).

drizzle 1.0's migrate() brings a 0.x `__drizzle_migrations` (id, hash, created_at) to 1.0's
shape (name and applied_at added, the names back-filled) on any start where the folder is in
1.0's format, with or without something to apply. The entrypoint did it only when it applied
something, so the table's shape depended on which tool ran last. Here a database migrated by
drizzle 0.45, whose history drizzle-kit 1.0 then converted (`drizzle-kit up`), starts with
nothing pending under each tool: the history tables must end the same.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path

import pytest
from drizzle_generate import Step, generate, upgrade
from harness import run_cli
from test_push_real_snapshots import GUESTS_NAMELESS, GUESTS_V1

pytestmark = pytest.mark.interop

HERE = Path(__file__).resolve().parent


def drizzle_migrate(harness: str, db: Path, folder: Path) -> None:
    proc = subprocess.run(
        ["node", str(HERE / harness / "migrate.mjs"), str(db), str(folder)],
        cwd=HERE / harness,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    assert json.loads(proc.stdout.splitlines()[-1])["result"] == "ok", proc.stdout + proc.stderr


def history(db: Path) -> tuple[str, list[tuple[object, ...]]]:
    with sqlite3.connect(db) as conn:
        (ddl,) = conn.execute(
            "SELECT sql FROM sqlite_master WHERE name = '__drizzle_migrations'"
        ).fetchone()
        columns = [r[1] for r in conn.execute("PRAGMA table_info(__drizzle_migrations)")]
        wanted = [c for c in ("hash", "created_at", "name", "applied_at") if c in columns]
        rows = conn.execute(
            f"SELECT {', '.join(wanted)} FROM __drizzle_migrations ORDER BY created_at"
        ).fetchall()
    conn.close()
    return str(ddl), rows


def test_a_0x_history_gets_1_0s_shape_with_nothing_pending_as_drizzle_1_0_gives_it(
    tmp_path: Path,
) -> None:
    steps = [Step("init", GUESTS_V1), Step("nameless", GUESTS_NAMELESS)]
    journal = generate("drizzle0", steps, tmp_path / "journal")
    db = tmp_path / "0x" / "app.db"
    db.parent.mkdir()
    drizzle_migrate("drizzle0", db, journal.folder)
    converted = upgrade(journal, tmp_path / "converted")
    ddl, rows = history(db)
    assert '"name"' not in ddl and len(rows) == 2  # drizzle 0.x's shape

    theirs = tmp_path / "theirs" / "app.db"
    ours = tmp_path / "ours" / "app.db"
    for copy in (theirs, ours):
        copy.parent.mkdir()
        shutil.copyfile(db, copy)
    drizzle_migrate("drizzle1", theirs, converted.folder)
    proc = run_cli(
        "run", "--db", ours, "--migrations", converted.folder, "--format", converted.format,
        "--", "true", cwd=ours.parent,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "nothing to apply" in proc.stderr
    assert "upgrading __drizzle_migrations to drizzle 1.0's shape" in proc.stderr
    assert history(ours) == history(theirs)
    assert [r[2] for r in history(ours)[1]] == [p.parent.name for p in converted.migrations()]
    again = run_cli(
        "run", "--db", ours, "--migrations", converted.folder, "--format", converted.format,
        "--", "true", cwd=ours.parent,
    )  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "upgrading" not in again.stderr
