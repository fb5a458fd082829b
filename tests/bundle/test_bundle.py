"""The self-contained entrypoint (bundle/, the litedeploy image) in containers without Python:
everything `entrypoint` does, on a bind-mounted database, with the app handed over by exec."""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from stack import ROOT, container_logs, docker, query_db, run

SHOP = ROOT / "tests" / "fixtures" / "drizzle-journal" / "shop"
BUNDLE = "/opt/litedeploy"
EXE = f"{BUNDLE}/entrypoint"
COMMANDS = ["run", "status", "plan", "rehearse", "check", "backup", "backups", "restore"]
# The target of issue 12: what the bundle may add to an image.
MAX_BUNDLE_KIB = 25 * 1024


def container(
    image: str,
    *args: str,
    mounts: Mapping[Path, str] = {},
    env: Mapping[str, str] = {},
    entrypoint: str | None = None,
    user: str | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """`docker run --rm` of image with args; bind mounts {host path: "container path[:ro]"}."""
    argv = ["docker", "run", "--rm", "--network", "none"]
    for host, inside in mounts.items():
        argv += ["-v", f"{host}:{inside}"]
    for key, value in env.items():
        argv += ["-e", f"{key}={value}"]
    if entrypoint is not None:
        argv += ["--entrypoint", entrypoint]
    if user is not None:
        argv += ["--user", user]
    return run([*argv, image, *args], check=False, timeout=timeout)


def history(db: Path) -> list[int]:
    return [r[0] for r in query_db(db, "SELECT created_at FROM __drizzle_migrations ORDER BY id")]


def journal(folder: Path) -> list[int]:
    entries = json.loads((folder / "meta" / "_journal.json").read_text())["entries"]
    return [e["when"] for e in entries]


def first_migrations(tmp: Path, count: int) -> Path:
    """A copy of the shop's drizzle folder as it was after its first `count` migrations."""
    folder = tmp / f"shop-{count}"
    shutil.copytree(SHOP, folder)
    path = folder / "meta" / "_journal.json"
    data = json.loads(path.read_text())
    data["entries"] = data["entries"][:count]
    path.write_text(json.dumps(data, indent=2))
    for sql in folder.glob("*.sql"):
        if sql.stem not in {e["tag"] for e in data["entries"]}:
            sql.unlink()
    return folder


@pytest.fixture
def data(tmp_path: Path) -> Path:
    """The database folder to bind-mount at /data."""
    folder = tmp_path / "data"
    folder.mkdir()
    return folder


def test_the_base_has_no_python(nopython: str) -> None:
    found = container(
        nopython,
        "-c",
        "command -v python3 python python3.11; ls -d /usr/lib/python3* /usr/local/lib/python3*",
        entrypoint="/bin/sh",
    )
    assert found.stdout.strip() == "", found.stdout


def test_help_of_every_command_as_root_and_as_nobody(app_image: str) -> None:
    script = "; ".join(f'echo "== {c}"; {EXE} {c} --help || echo "!! exit $?"' for c in COMMANDS)
    for user in ("0", "65534"):
        top = container(app_image, "--help", entrypoint=EXE, user=user)
        assert top.returncode == 0, top.stderr
        assert "Usage: entrypoint [OPTIONS] COMMAND" in top.stdout
        for command in COMMANDS:
            assert command in top.stdout
        each = container(app_image, "-c", script, entrypoint="/bin/sh", user=user)
        assert "!! exit" not in each.stdout, each.stdout + each.stderr
        for command in COMMANDS:
            assert f"Usage: entrypoint {command} [OPTIONS]" in each.stdout


def test_migrates_a_bind_mounted_database_then_execs_the_app_as_pid_1(
    app_image: str, data: Path
) -> None:
    mounts = {data: "/data", SHOP: "/app/drizzle:ro"}
    first = container(app_image, mounts=mounts)  # no command: migrate, then exit 0
    assert first.returncode == 0, first.stderr
    assert "Applied 0005_drop_user_name" in first.stderr
    assert history(data / "app.db") == journal(SHOP)

    app = "echo pid=$$; env; exit 7"
    second = container(
        app_image,
        "/bin/sh",
        "-c",
        app,
        mounts=mounts,
        env={"LD_LIBRARY_PATH": "/usr/local/lib/app"},
    )
    assert second.returncode == 7, second.stderr  # the app's own exit code
    assert "nothing to apply; database is at 0005_drop_user_name" in second.stderr
    assert "exec /bin/sh -c" in second.stderr
    lines = second.stdout.splitlines()
    assert lines[0] == "pid=1"  # exec'd, not a child of the entrypoint
    env = dict(line.split("=", 1) for line in lines[1:] if "=" in line)
    assert env["DB_PATH"] == "/data/app.db"
    # the loader's variables are gone; a variable the caller set comes back as it was
    assert env["LD_LIBRARY_PATH"] == "/usr/local/lib/app"
    assert not [k for k in env if k.startswith("_PYI_") or k == "LD_LIBRARY_PATH_ORIG"]
    assert history(data / "app.db") == journal(SHOP)


def test_status_plan_rehearse_backup_restore_and_check(
    app_image: str, data: Path, tmp_path: Path
) -> None:
    release1 = first_migrations(tmp_path, 3)
    db = data / "app.db"
    r1 = {data: "/data", release1: "/app/drizzle:ro"}
    assert container(app_image, mounts=r1).returncode == 0
    with_rows = "INSERT INTO users(id, email, name) VALUES (1, 'a@x', 'Ann'), (2, 'b@x', NULL)"
    conn = sqlite3.connect(db)
    with conn:
        conn.execute(with_rows)
    conn.close()
    mounts = {data: "/data", SHOP: "/app/drizzle:ro"}

    def entrypoint(*args: str) -> subprocess.CompletedProcess[str]:
        return container(app_image, *args, mounts=mounts, entrypoint=EXE)

    status = entrypoint("status", "--json")
    assert status.returncode == 0, status.stderr
    states = {m["name"]: m["state"] for m in json.loads(status.stdout)["migrations"]}
    assert states["0002_add_reviews"] == "applied"
    assert states["0005_drop_user_name"] == "pending"

    plan = entrypoint("plan")
    assert "0005_drop_user_name" in plan.stdout + plan.stderr
    rehearse = entrypoint("rehearse")
    assert rehearse.returncode == 15, rehearse.stderr  # users.name holds 'Ann'
    assert "users.name" in rehearse.stdout + rehearse.stderr

    backup = entrypoint("backup")
    assert backup.returncode == 0, backup.stderr
    listed = entrypoint("backups", "--json")
    assert listed.returncode == 0, listed.stderr
    assert len(json.loads(listed.stdout)) == 1

    allowed = container(
        app_image, mounts=mounts, env={"LITEDEPLOY_ALLOW": "lost-values=users.name"}
    )
    assert allowed.returncode == 0, allowed.stderr
    assert history(db) == journal(SHOP)
    check = entrypoint("check", "--migrations", "/app/drizzle")
    assert check.returncode == 0, check.stderr

    restore = entrypoint("restore", "--latest")
    assert restore.returncode == 0, restore.stderr
    assert history(db) == journal(release1)
    assert query_db(db, "SELECT name FROM users ORDER BY id") == [("Ann",), (None,)]
    assert list((data / "quarantine").iterdir())  # the replaced files are kept


def test_push_mode_syncs_the_declared_schema(app_image: str, data: Path) -> None:
    mounts = {data: "/data", SHOP: "/app/drizzle:ro"}
    pushed = container(
        app_image,
        "true",
        mounts=mounts,
        env={"LITEDEPLOY_MIGRATE_MODE": "push", "APP_ENV": "staging"},
    )
    assert pushed.returncode == 0, pushed.stderr
    assert "push:" in pushed.stderr
    columns = [
        r[0] for r in query_db(data / "app.db", "SELECT name FROM pragma_table_info('products')")
    ]
    assert "title" in columns and "name" not in columns

    refused = container(
        app_image,
        "true",
        mounts=mounts,
        env={"LITEDEPLOY_MIGRATE_MODE": "push", "APP_ENV": "production"},
    )
    assert refused.returncode == 5
    assert "push mode is refused in production" in refused.stderr


def test_drops_root_to_the_app_user_before_exec(app_image: str, data: Path) -> None:
    mounts = {data: "/data", SHOP: "/app/drizzle:ro"}
    result = container(
        app_image,
        "/bin/sh",
        "-c",
        "id -u; id -g",
        mounts=mounts,
        env={"LITEDEPLOY_APP_USER": "nobody"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["65534", "65534"]
    assert "running as nobody (uid 65534" in result.stderr
    assert (data / "app.db").stat().st_uid == 65534  # handed to the app, which can write to it


@pytest.fixture
def running(app_image: str, data: Path) -> Iterator[list[str]]:
    """Names of detached containers to remove after the test."""
    names: list[str] = []
    yield names
    for name in names:
        docker("rm", "-f", name, check=False)


def test_signals_reach_the_app_directly(app_image: str, data: Path, running: list[str]) -> None:
    name = f"litedeploy-bundle-signal-{uuid.uuid4().hex[:8]}"
    running.append(name)
    app = 'trap "echo got TERM; exit 0" TERM; echo ready; while :; do sleep 0.1; done'
    docker(
        "run", "-d", "--name", name, "--network", "none",
        "-v", f"{data}:/data", "-v", f"{SHOP}:/app/drizzle:ro",
        app_image, "/bin/sh", "-c", app,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while "ready" not in container_logs(name):
        assert time.monotonic() < deadline, container_logs(name)
        time.sleep(0.1)
    started = time.monotonic()
    docker("stop", "-t", "20", name)
    assert time.monotonic() - started < 10  # SIGTERM, not the SIGKILL 20 s later
    assert "got TERM" in container_logs(name)
    state = json.loads(docker("inspect", name))[0]["State"]
    assert state["ExitCode"] == 0


def test_the_litedeploy_image_is_a_one_shot_migrator(litedeploy: str, data: Path) -> None:
    migrate = container(
        litedeploy,
        "run",
        "--db",
        "/data/app.db",
        "--migrations",
        "/migrations",
        mounts={data: "/data", SHOP: "/migrations:ro"},
    )
    assert migrate.returncode == 0, migrate.stderr
    assert history(data / "app.db") == journal(SHOP)
    again = container(
        litedeploy, "status", "--db", "/data/app.db", "--migrations", "/migrations",
        mounts={data: "/data", SHOP: "/migrations:ro"},
    )  # fmt: skip
    assert again.returncode == 0 and "pending" not in again.stdout, again.stdout
    usage = container(litedeploy)
    assert usage.returncode == 0 and "Usage: entrypoint" in usage.stdout
    python = container(litedeploy, "-c", "command -v python3", entrypoint="/bin/sh")
    assert python.stdout == ""  # the image needs no Python either


def test_the_bundle_holds_the_entrypoint_and_nothing_of_the_host_side(litedeploy: str) -> None:
    size = container(litedeploy, "-sk", BUNDLE, entrypoint="du")
    assert int(size.stdout.split()[0]) <= MAX_BUNDLE_KIB
    # The modules are plain .pyc files under _internal/ (noarchive, see bundle/entrypoint.spec).
    listing = container(litedeploy, f"{BUNDLE}/_internal", "-name", "*.pyc", entrypoint="find")
    modules = {
        line.removeprefix(f"{BUNDLE}/_internal/").removesuffix(".pyc").replace("/", ".")
        for line in listing.stdout.split()
    }
    assert {"entrypoint.cli.program", "entrypoint.handoff.app", "typer.main"} <= modules
    # Imported only inside functions (kept off `run`'s start-up path): still found and bundled.
    lazy = {
        "entrypoint.cli.backups",
        "entrypoint.safety.gate",
        "entrypoint.safety.judge",
        "entrypoint.modes.push",
    }
    assert lazy <= modules
    host_side = ("deploy", "docker", "requests", "urllib3", "yaml", "tenacity", "rich", "pygments")
    assert sorted(m for m in modules if m.split(".")[0] in host_side) == []


def test_the_image_carries_deploy_with_compose_v2_and_no_python(litedeploy: str) -> None:
    usage = container(litedeploy, "--help", entrypoint="deploy")
    assert usage.returncode == 0, usage.stderr
    assert "Usage: deploy [OPTIONS] COMMAND" in usage.stdout
    for command in ("rollback", "status", "history", "restore"):
        assert command in usage.stdout
    # what deploy runs: `docker compose`, and the docker CLI the plugin hangs on
    compose = container(litedeploy, "compose", "version", "--short", entrypoint="docker")
    assert compose.returncode == 0 and compose.stdout.strip(), compose.stderr
    where = container(
        litedeploy,
        "-c",
        'command -v python3 python python3.11; readlink -f "$(command -v deploy)"',
        entrypoint="/bin/sh",
    )
    # no Python on PATH, and deploy is a bundle of its own, outside what app images copy
    assert where.stdout.split() == ["/opt/litedeploy-deploy/deploy"], where.stdout
