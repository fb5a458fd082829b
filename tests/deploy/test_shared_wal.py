"""Two containers on one bind-mounted WAL database (issue 16's premise for start-first deploys).

Start-first runs the new version beside the old one on the same database file: one host, one
kernel, so the WAL index (`-shm`, memory-mapped by every connection) is the same memory for
both containers. Here two containers of the demo image write to one database at once, each
reading what the other commits as it goes (they alternate about 1,900 times in 2,000 commits);
afterwards a third sees every row and SQLite's integrity_check is clean. Plain `docker run`: the
mechanism needs no Compose, so it runs once, not per flavour.
"""

from __future__ import annotations

import itertools
import sqlite3
import uuid
from pathlib import Path

import pytest
from stack import docker, query_db

pytestmark = pytest.mark.docker

COMMITS = 1000

# Commits COMMITS transactions, each one row of its own, and checks on every one that it never
# sees fewer of the other writer's rows than before (a WAL index that was not shared would show
# stale or missing frames, or corrupt the file).
WRITER = """
import os, sqlite3, sys, time
me, other, commits = sys.argv[1], sys.argv[2], int(sys.argv[3])
open(f"/data/ready-{me}", "w").close()  # start together: the point is to overlap
deadline = time.monotonic() + 60
while not os.path.exists(f"/data/ready-{other}"):
    assert time.monotonic() < deadline, f"{other} never started"
    time.sleep(0.005)
conn = sqlite3.connect("/data/app.db", isolation_level=None, timeout=60)
assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
seen = 0
for n in range(commits):
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO writes (who, n) VALUES (?, ?)", (me, n))
    theirs = conn.execute("SELECT count(*) FROM writes WHERE who = ?", (other,)).fetchone()[0]
    assert theirs >= seen, f"{me} saw {theirs} rows of {other} after {seen}"
    seen = theirs
    conn.execute("COMMIT")
    time.sleep(0.001)  # as an app between requests; else the lock's holder keeps retaking it
mine = conn.execute("SELECT count(*) FROM writes WHERE who = ?", (me,)).fetchone()[0]
assert mine == commits, mine
print(f"{me}: {commits} commits; saw {seen} of {other}'s while writing")
"""


def test_two_containers_write_one_wal_database_at_once(demo_image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    data.chmod(0o777)  # whoever the image runs as
    db = data / "app.db"
    with sqlite3.connect(db) as conn:
        assert conn.execute("PRAGMA journal_mode = wal").fetchone()[0] == "wal"
        conn.execute("CREATE TABLE writes (id integer PRIMARY KEY, who text NOT NULL, n integer)")
    conn.close()
    db.chmod(0o666)

    names = {who: f"ldwal-{who}-{uuid.uuid4().hex[:8]}" for who in ("old", "new")}
    try:
        for who, other in (("old", "new"), ("new", "old")):
            docker(
                "run", "-d", "--name", names[who], "-v", f"{data}:/data",
                "--entrypoint", "python3", demo_image,
                "-c", WRITER, who, other, str(COMMITS),
            )  # fmt: skip
        codes = {who: docker("wait", name, timeout=120).strip() for who, name in names.items()}
        logs = {who: docker("logs", name) for who, name in names.items()}
        assert codes == {"old": "0", "new": "0"}, logs
        # A third container, started after both, reads every row through the same WAL.
        counted = docker(
            "run", "--rm", "-v", f"{data}:/data", "--entrypoint", "python3", demo_image, "-c",
            "import sqlite3; c = sqlite3.connect('/data/app.db');"
            "print(c.execute('SELECT count(*) FROM writes').fetchone()[0])",
        )  # fmt: skip
        assert counted.strip() == str(2 * COMMITS)
    finally:
        for name in names.values():
            docker("rm", "-f", name, check=False)
    assert query_db(db, "PRAGMA integrity_check") == [("ok",)]
    # They wrote at once, not one after the other: the writers alternate many times in id order.
    order = [who for (who,) in query_db(db, "SELECT who FROM writes ORDER BY id")]
    switches = sum(1 for a, b in itertools.pairwise(order) if a != b)
    assert switches >= COMMITS // 10, f"the two writers alternated only {switches} time(s)"
    assert query_db(db, "SELECT who, count(*), count(DISTINCT n) FROM writes GROUP BY who") == [
        ("new", COMMITS, COMMITS),
        ("old", COMMITS, COMMITS),
    ]
