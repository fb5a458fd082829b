"""deploy protects the file the entrypoint opens, also when nobody sets DB_PATH.

An app image built with `WORKDIR /srv/app` and litedeploy's entrypoint, no DB_PATH anywhere:
the entrypoint migrates ./data/app.db from its working directory, /srv/app/data/app.db, bind
mounted from the stack's ./data. deploy reads the image's WORKDIR and finds the same file (it
used to look for /data/app.db and refuse: "not on a bind mount").
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import Stack, docker, free_port, litedeploy_image, query_db

pytestmark = pytest.mark.docker

IMAGE = "litedeploy-workdir:test"
MIGRATION = "CREATE TABLE notes (id integer PRIMARY KEY, body text NOT NULL);"
JOURNAL = {
    "version": "7",
    "dialect": "sqlite",
    "entries": [
        {"idx": 0, "version": "6", "when": 1700000000000, "tag": "0000_notes", "breakpoints": True}
    ],
}
COMPOSE = """\
services:
  app:
    image: litedeploy-workdir:${APP_TAG:-test}
    volumes:
      - ./data:/srv/app/data
"""


@pytest.fixture(scope="module")
def workdir_image(docker_engine: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    context = tmp_path_factory.mktemp("workdir-image")
    (context / "drizzle" / "meta").mkdir(parents=True)
    (context / "drizzle" / "0000_notes.sql").write_text(MIGRATION)
    (context / "drizzle" / "meta" / "_journal.json").write_text(json.dumps(JOURNAL))
    (context / "Dockerfile").write_text(
        f"FROM {litedeploy_image()}\n"
        "WORKDIR /srv/app\n"
        "COPY drizzle ./drizzle\n"
        'ENTRYPOINT ["/opt/litedeploy/entrypoint", "run", "--migrations", "./drizzle", "--"]\n'
        'CMD ["sleep", "infinity"]\n'
    )
    docker("build", "-q", "-t", IMAGE, str(context), timeout=300)
    return IMAGE


@pytest.fixture
def workdir_stack(tmp_path: Path, workdir_image: str, compose_flavour: str) -> Iterator[Stack]:
    folder = tmp_path / "stack"
    (folder / "data").mkdir(parents=True)
    (folder / "docker-compose.yml").write_text(COMPOSE)
    s = Stack(folder, f"ldworkdir-{uuid.uuid4().hex[:10]}", free_port(), compose_flavour)
    try:
        yield s
    finally:
        s.down()
        shutil.rmtree(folder, ignore_errors=True)


def _migrated(db: Path, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if query_db(db, "SELECT count(*) FROM __drizzle_migrations") == [(1,)]:
                return
        except sqlite3.Error:
            pass
        time.sleep(0.5)
    raise AssertionError(f"the entrypoint did not migrate {db} within {timeout:.0f}s")


def test_backup_finds_the_database_under_the_images_workdir(workdir_stack: Stack) -> None:
    workdir_stack.compose("up", "-d")
    db = workdir_stack.data_dir / "app.db"
    _migrated(db)
    with sqlite3.connect(db, timeout=10) as conn:
        conn.execute("INSERT INTO notes (body) VALUES ('kept')")
    conn.close()

    result = workdir_stack.run_deploy("backup", "--json")

    assert result.returncode == 0, result.stderr
    made = json.loads(result.stdout)
    backup = Path(made["path"])
    assert backup.parent == workdir_stack.data_dir / "backups"
    assert query_db(backup, "SELECT body FROM notes") == [("kept",)]
