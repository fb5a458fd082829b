"""The rehearsal: its `docker run` argv (secrets never on it) and the snapshot it runs on."""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
from pathlib import Path, PurePosixPath
from urllib.parse import quote

import pytest

from deploy.compose import Compose, Flavour, Service
from deploy.rehearsal import rehearsal_env, rehearse_argv, snapshot
from deploy.stack import Stack
from entrypoint.base.contract import REHEARSAL_ENV

SECRET = "s3cr3t-value-never-on-argv"


def stack(tmp_path: Path, db_in_container: str = "/data/app.db") -> Stack:
    return Stack(
        compose=Compose(Flavour.V2, (tmp_path / "docker-compose.yml",), "shop"),
        service=Service(
            name="app",
            image="shop:v2",
            environment={
                "DB_PATH": db_in_container,
                "MIGRATIONS_DIR": "/app/migrations",
                "SECRET_KEY": SECRET,
                "DATABASE_URL": f"sqlite:///{db_in_container}?key={SECRET}",
                "LITEDEPLOY_DEPLOY_ID": "",
                "LITEDEPLOY_BACKUP": "always",
            },
            binds=[(tmp_path / "data", PurePosixPath("/data"))],
            has_healthcheck=True,
        ),
        db_path=tmp_path / "data" / "app.db",
        db_container_path=PurePosixPath(db_in_container),
        backup_dir=tmp_path / "data" / "backups",
    )


def test_rehearse_argv(tmp_path: Path) -> None:
    snap = tmp_path / "state" / "rehearsal-x"
    argv = rehearse_argv(stack(tmp_path), "shop:v2", snap, "litedeploy-rehearsal-x")
    assert argv == [
        "docker",
        "run",
        "--rm",
        "--name",
        "litedeploy-rehearsal-x",
        "--network",
        "none",
        "-v",
        f"{snap}:/data",
        "-e",
        "DATABASE_URL",
        "-e",
        "DB_PATH",
        "-e",
        "LITEDEPLOY_BACKUP",
        "-e",
        REHEARSAL_ENV,
        "-e",
        "MIGRATIONS_DIR",
        "-e",
        "SECRET_KEY",
        "shop:v2",  # last: the image's own ENTRYPOINT and CMD run, nothing overrides them
    ]


def test_environment_goes_by_name_only(tmp_path: Path) -> None:
    current = stack(tmp_path)
    argv = rehearse_argv(current, "shop:v2", tmp_path / "snap", "r")
    env = rehearsal_env(current)
    for i, arg in enumerate(argv):
        if arg == "-e":
            assert argv[i + 1] in env
            assert "=" not in argv[i + 1]
    for value in env.values():
        if value not in ("", "1"):
            assert not any(value in arg for arg in argv if arg not in env), value
    assert not any(SECRET in arg for arg in argv)


def test_the_rehearsal_environment(tmp_path: Path) -> None:
    env = rehearsal_env(stack(tmp_path))
    assert env[REHEARSAL_ENV] == "1"  # the entrypoint stops after its checks: no app start
    assert env["LITEDEPLOY_BACKUP"] == "never"  # a backup of a throw-away copy is noise
    assert env["DB_PATH"] == "/data/app.db"
    assert env["SECRET_KEY"] == SECRET  # the migrations may need the app's settings
    assert (
        "LITEDEPLOY_DEPLOY_ID" not in env
    )  # a rehearsal must not pass for the deploy's cutover backup


def test_a_push_deploy_rehearses_in_push_mode(tmp_path: Path) -> None:
    assert "LITEDEPLOY_MIGRATE_MODE" not in rehearsal_env(stack(tmp_path))
    env = rehearsal_env(stack(tmp_path), push=True)
    assert env["LITEDEPLOY_MIGRATE_MODE"] == "push"
    argv = rehearse_argv(stack(tmp_path), "shop:v2", tmp_path / "snap", "r", push=True)
    assert (
        argv[argv.index("LITEDEPLOY_MIGRATE_MODE") - 1] == "-e"
    )  # by name, like every other variable


def test_the_snapshot_is_mounted_at_the_databases_folder(tmp_path: Path) -> None:
    current = stack(tmp_path, db_in_container="/var/lib/shop/db/app.sqlite")
    argv = rehearse_argv(current, "shop:v2", tmp_path / "snap", "r")
    assert argv[argv.index("-v") + 1] == f"{tmp_path / 'snap'}:/var/lib/shop/db"
    assert rehearsal_env(current)["DB_PATH"] == "/var/lib/shop/db/app.sqlite"


# -- the snapshot -------------------------------------------------------------------------------


def rows(db: Path) -> list[tuple[int, str]]:
    with contextlib.closing(sqlite3.connect(f"file:{quote(str(db))}?mode=ro", uri=True)) as conn:
        return list(conn.execute("SELECT id, name FROM items ORDER BY id"))


@pytest.mark.parametrize("folder", ["data", "odd #1 ?name%20"])
def test_snapshot_of_a_wal_database_includes_what_is_only_in_the_wal(
    tmp_path: Path, folder: str
) -> None:
    db = tmp_path / folder / "app.db"
    db.parent.mkdir()
    live = sqlite3.connect(db)
    try:
        live.execute("PRAGMA journal_mode=wal")
        live.execute("PRAGMA wal_autocheckpoint=0")  # keep every commit in app.db-wal
        live.execute("CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT)")
        live.executemany("INSERT INTO items (name) VALUES (?)", [("a",), ("b",)])
        live.commit()
        assert db.with_name("app.db-wal").stat().st_size > 0
        # The main file alone does not have the table yet.
        alone = tmp_path / "alone.db"
        shutil.copyfile(db, alone)
        with contextlib.closing(sqlite3.connect(alone)) as conn:
            assert conn.execute("SELECT count(*) FROM sqlite_master").fetchone() == (0,)

        snap = snapshot(db, tmp_path / "snap")

        assert snap == tmp_path / "snap" / "app.db"
        assert not snap.with_name("app.db-wal").exists()  # self-contained: one file to mount
        assert rows(snap) == [(1, "a"), (2, "b")]
        live.execute("INSERT INTO items (name) VALUES ('c')")  # the app keeps writing
        live.commit()
    finally:
        live.close()
    assert rows(snap) == [(1, "a"), (2, "b")]
    assert rows(db) == [(1, "a"), (2, "b"), (3, "c")]
    # Nothing was created beside the live folder (a cut-short URI opens a new, empty file).
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([folder, "alone.db", "snap"])


def test_snapshot_of_no_database_yet_is_an_empty_folder(tmp_path: Path) -> None:
    snap = snapshot(tmp_path / "data" / "app.db", tmp_path / "snap")
    assert snap == tmp_path / "snap" / "app.db"
    assert not snap.exists()
    assert list((tmp_path / "snap").iterdir()) == []
    assert not (tmp_path / "data").exists()  # nothing created where the live database goes


@pytest.mark.parametrize(
    ("entrypoint", "ours"),
    [
        (["/opt/litedeploy/entrypoint", "run", "--"], True),
        (["entrypoint", "run", "--"], True),
        (["/app/.venv/bin/entrypoint", "run"], True),
        (["python3", "-m", "entrypoint", "run", "--"], True),
        (["docker-entrypoint.sh"], False),  # the node image's own
        (["/app/start.sh"], False),
        ([], False),
    ],
)
def test_which_entrypoints_look_like_litedeploys(entrypoint: list[str], ours: bool) -> None:
    from deploy.rehearsal import runs_litedeploy

    assert runs_litedeploy(entrypoint) is ours


def test_the_entrypoint_spoke_when_a_line_starts_with_its_name() -> None:
    from deploy.rehearsal import spoke
    from deploy.runner import Result

    said = "entrypoint: database /data/app.db; migrations /app/drizzle\n"
    assert spoke(Result(("docker",), 6, "", said))
    assert not spoke(Result(("docker",), 1, "listening on 8000\n", "Error: EADDRINUSE\n"))
