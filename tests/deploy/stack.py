"""Plain helpers for the deploy integration tests: images, Compose stacks, HTTP and the database.

A module of its own (not conftest.py) so that test files can import it: `from stack import ...`.
Everything here drives the real Docker engine and Compose through argv lists, and addresses only
127.0.0.1 and the containers of the stack at hand.
"""

from __future__ import annotations

import grp
import json
import os
import pwd
import re
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# The demo image's name: DEMO_IMAGE, as in demo/docker-compose.yml (runs on a shared engine use
# a name of their own, so that they never rebuild each other's tags).
DEMO_REPO = os.environ.get("DEMO_IMAGE", "litedeploy-demo")
V1_TAG = "v1"
V1 = f"{DEMO_REPO}:{V1_TAG}"
DEMO_MIGRATIONS = ROOT / "demo" / "migrations"
DEMO_COMPOSE = ROOT / "demo" / "docker-compose.yml"
SERVICE = "app"
COMPOSE_COMMANDS = {"v2": ("docker", "compose"), "v1": ("docker-compose",)}
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


class CommandError(AssertionError):
    """A command failed; the message carries its argv, exit code and output."""


def run(
    argv: Sequence[str | Path],
    *,
    check: bool = True,
    timeout: float = 180,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run argv, capturing its output; raise CommandError with that output when it fails."""
    args = [str(a) for a in argv]
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and result.returncode != 0:
        raise CommandError(
            f"`{' '.join(args)}` exited with {result.returncode}\n"
            f"--- stdout\n{_tail(result.stdout)}\n--- stderr\n{_tail(result.stderr)}"
        )
    return result


def docker(*args: str | Path, check: bool = True, timeout: float = 180) -> str:
    """`docker ARGS`, returning its stdout."""
    return run(["docker", *args], check=check, timeout=timeout).stdout


def _tail(text: str, lines: int = 60) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# --- the engine, Compose and images ----------------------------------------------------------


def engine_version() -> str | None:
    """The engine's version, or None when no engine answers."""
    try:
        result = run(["docker", "info", "--format", "{{.ServerVersion}}"], check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    version = result.stdout.strip()
    return version if result.returncode == 0 and version else None


@cache
def compose_version(flavour: str) -> str | None:
    """The version of a Compose flavour (v2: `docker compose`, v1: `docker-compose`), or None."""
    try:
        result = run([*COMPOSE_COMMANDS[flavour], "version", "--short"], check=False, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def compose_flavours() -> list[str]:
    """The Compose versions to test with: $LITEDEPLOY_COMPOSE_FLAVOURS, else those that answer.

    When none answers both are listed anyway, so the tests fail and say so instead of vanishing.
    """
    listed = os.environ.get("LITEDEPLOY_COMPOSE_FLAVOURS", "").split()
    if listed:
        unknown = set(listed) - COMPOSE_COMMANDS.keys()
        if unknown:
            raise ValueError(f"LITEDEPLOY_COMPOSE_FLAVOURS: unknown {sorted(unknown)}; use v2, v1")
        return listed
    return [f for f in COMPOSE_COMMANDS if compose_version(f)] or list(COMPOSE_COMMANDS)


def base_image() -> str:
    """The base image the tests build the demo FROM (scripts/test.sh makes it with debootstrap)."""
    return os.environ.get("LITEDEPLOY_BASE_IMAGE", "litedeploy-base:bookworm")


def project_version() -> str:
    """litedeploy's version, from pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def litedeploy_image() -> str:
    """The litedeploy image (the bundle at /opt/litedeploy) that scripts/test.sh builds."""
    return os.environ.get("LITEDEPLOY_IMAGE", f"litedeploy:{project_version()}")


def image_exists(ref: str) -> bool:
    return run(["docker", "image", "inspect", ref], check=False, timeout=30).returncode == 0


def build_demo_image(tag: str = V1) -> str:
    """Build demo/Dockerfile as `tag`: the demo app FROM the base image, the entrypoint copied
    from the litedeploy image; cached layers make a rebuild of an unchanged tree take a second."""
    base, litedeploy = base_image(), litedeploy_image()
    for image, how in ((base, "ensure_base_image"), (litedeploy, "ensure_litedeploy_image")):
        if not image_exists(image):
            raise CommandError(f"image {image} is missing: scripts/test.sh builds it ({how})")
    run(
        [
            "docker",
            "build",
            "-q",
            "-t",
            tag,
            "--build-arg",
            f"BASE_IMAGE={base}",
            "--build-arg",
            f"LITEDEPLOY_IMAGE={litedeploy}",
            ROOT / "demo",
        ],
        timeout=600,
    )
    return tag


def image_ref(tag: str) -> str:
    """`v2` -> `litedeploy-demo:v2` (DEMO_REPO); a full reference stays as it is."""
    return tag if ":" in tag else f"{DEMO_REPO}:{tag}"


def build_variant(
    tag: str,
    *,
    migrations: Mapping[str, str] | None = None,
    extra_migrations_from: Path | None = None,
    env: Mapping[str, str] | None = None,
    files: Mapping[str, str] | None = None,
    entrypoint: Sequence[str] | None = None,
) -> str:
    """Build `litedeploy-demo:TAG` FROM litedeploy-demo:v1 (which must exist) plus migrations and
    ENV lines; returns the image reference.

    migrations: {name: SQL}, appended in order to the drizzle journal (names like
    "0006_add_stock", with or without ".sql"). extra_migrations_from: a folder whose *.sql files
    are appended (sorted by name) before those. env: e.g. {"DEMO_FAIL": "crash"}. files:
    {path under the migrations folder: text}, e.g. a newer drizzle-kit snapshot for push mode.
    entrypoint: replaces the image's ENTRYPOINT (exec form; [] removes it).
    """
    ref = image_ref(tag)
    added: dict[str, str] = {}
    if extra_migrations_from is not None:
        for path in sorted(Path(extra_migrations_from).glob("*.sql")):
            added[path.stem] = path.read_text()
    for name, sql in (migrations or {}).items():
        added[name.removesuffix(".sql")] = sql
    lines = [f"FROM {V1}", f"LABEL org.litedeploy.test-variant={json.dumps(ref)}"]
    with tempfile.TemporaryDirectory(prefix="litedeploy-variant-") as tmp:
        context = Path(tmp)
        folder = context / "migrations"
        (folder / "meta").mkdir(parents=True)
        for rel, text in (files or {}).items():
            (folder / rel).write_text(text)
        if added:
            journal = json.loads((DEMO_MIGRATIONS / "meta" / "_journal.json").read_text())
            journal["entries"].extend(journal_entries(journal["entries"], list(added)))
            (folder / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2) + "\n")
            for name, sql in added.items():
                (folder / f"{name}.sql").write_text(sql)
        if added or files:
            lines.append("COPY migrations/ /app/migrations/")
        for key, value in (env or {}).items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"not an environment variable name: {key!r}")
            lines.append(f"ENV {key}={json.dumps(value)}")
        if entrypoint is not None:
            lines.append(f"ENTRYPOINT {json.dumps(list(entrypoint))}")
        (context / "Dockerfile").write_text("\n".join(lines) + "\n")
        run(["docker", "build", "-q", "-t", ref, context], timeout=300)
    return ref


def journal_entries(
    existing: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> list[dict[str, Any]]:
    """Drizzle-kit journal entries for new migrations, a second apart after the last one."""
    last = existing[-1]["when"] if existing else 1_700_000_000_000
    return [
        {
            "idx": len(existing) + i,
            "version": "6",
            "when": last + 1000 * (i + 1),
            "tag": name,
            "breakpoints": True,
        }
        for i, name in enumerate(names)
    ]


def demo_journal() -> list[dict[str, Any]]:
    """The entries of the demo's drizzle journal (what v1 ships)."""
    entries: list[dict[str, Any]] = json.loads(
        (DEMO_MIGRATIONS / "meta" / "_journal.json").read_text()
    )["entries"]
    return entries


# --- a stack ---------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Stack:
    """One Compose project of the example stack in its own folder, on its own port."""

    dir: Path
    project: str
    port: int
    flavour: str  # "v2" (`docker compose`) or "v1" (`docker-compose`)
    # Who runs `deploy`: root with this checkout's code, or an operator in the docker group
    # with the host CLI bundle (`operator` and `host_cli` set: test_deploy_nonroot.py).
    operator: pwd.struct_passwd | None = None
    host_cli: Path | None = None

    def run_deploy(
        self, *args: str, env: Mapping[str, str] | None = None, timeout: float = 240
    ) -> subprocess.CompletedProcess[str]:
        """`deploy --compose FLAVOUR ARGS` in the stack's folder, as root (`python -m deploy`)
        or as the operator (the bundle), with the variables the compose file reads."""
        argv, kwargs = self.deploy_process(*args, env=env)
        return subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )

    def deploy_process(
        self, *args: str, env: Mapping[str, str] | None = None
    ) -> tuple[list[str], dict[str, Any]]:
        """The argv and subprocess arguments of a `deploy` run (for Popen too)."""
        full = {**self.env(), "PYTHONPATH": str(ROOT), **(env or {})}
        if self.operator is None:
            argv = [sys.executable, "-m", "deploy", "--compose", self.flavour, *args]
            return argv, {"cwd": self.dir, "env": full}
        assert self.host_cli is not None
        full["HOME"] = self.operator.pw_dir
        full["LITEDEPLOY_IMAGE"] = litedeploy_image()
        argv = [str(self.host_cli), "--compose", self.flavour, *args]
        return argv, {
            "cwd": self.dir,
            "env": full,
            "user": self.operator.pw_uid,
            "group": self.operator.pw_gid,
            "extra_groups": [grp.getgrnam("docker").gr_gid],
        }

    @property
    def compose_file(self) -> Path:
        return self.dir / "docker-compose.yml"

    @property
    def data_dir(self) -> Path:
        return self.dir / "data"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "app.db"

    @property
    def compose_command(self) -> list[str]:
        return list(COMPOSE_COMMANDS[self.flavour])

    def env(self, tag: str | None = None, **extra: str) -> dict[str, str]:
        """The environment for compose (or deploy) on this stack: project name, port, tag."""
        env = dict(os.environ)
        env.update(COMPOSE_PROJECT_NAME=self.project, APP_PORT=str(self.port))
        if tag is not None:
            env["APP_TAG"] = tag
        env.update(extra)
        return env

    def compose(
        self,
        *args: str,
        tag: str | None = None,
        env: Mapping[str, str] | None = None,
        check: bool = True,
        timeout: float = 180,
    ) -> subprocess.CompletedProcess[str]:
        """Run this stack's Compose flavour with ARGS in the stack's folder."""
        argv = [*self.compose_command, "-p", self.project, "-f", str(self.compose_file), *args]
        full_env = self.env(tag, **(env or {}))
        return run(argv, check=check, timeout=timeout, env=full_env, cwd=self.dir)

    def up(self, tag: str = V1_TAG) -> None:
        """`up -d` with APP_TAG=tag (no waiting: see wait_healthy)."""
        self.compose("up", "-d", tag=tag)

    def down(self) -> None:
        """Remove the stack's containers, networks and volumes, whatever state they are in."""
        self.compose("down", "-v", "-t", "0", "--remove-orphans", check=False, timeout=120)
        leftovers = self.containers(service=None)
        if leftovers:
            docker("rm", "-f", "-v", *leftovers, check=False)
        networks = docker(
            "network", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={self.project}"
        )
        if networks.split():
            docker("network", "rm", *networks.split(), check=False)

    def containers(self, service: str | None = SERVICE) -> list[str]:
        """IDs of the project's containers (running or not), newest first."""
        filters = ["--filter", f"label={PROJECT_LABEL}={self.project}"]
        if service is not None:
            filters += ["--filter", f"label={SERVICE_LABEL}={service}"]
        return docker("ps", "-aq", "--no-trunc", *filters).split()

    def container(self) -> str:
        """The service's newest container."""
        ids = self.containers()
        if not ids:
            raise AssertionError(f"project {self.project} has no {SERVICE} container")
        return ids[0]

    def inspect(self, container: str | None = None) -> dict[str, Any]:
        """`docker inspect` of a container (default: the service's newest)."""
        data: list[dict[str, Any]] = json.loads(docker("inspect", container or self.container()))
        return data[0]

    def health(self, container: str | None = None) -> str:
        """The container's health status, or its state when it has no healthcheck or stopped."""
        state = self.inspect(container)["State"]
        if state["Status"] != "running" or "Health" not in state:
            return str(state["Status"])
        return str(state["Health"]["Status"])

    def wait_healthy(self, timeout: float = 60) -> dict[str, Any]:
        """Poll `docker inspect` until the service is healthy; fail fast when it stops or turns
        unhealthy. Returns the last inspect data."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.inspect()
            state = info["State"]
            health = state.get("Health", {}).get("Status")
            if state["Status"] == "running" and health == "healthy":
                return info
            # The stack fixture prints the containers' logs when the test fails.
            if state["Status"] in ("exited", "dead") or health == "unhealthy":
                raise AssertionError(
                    f"{SERVICE} is {state['Status']} (exit code {state['ExitCode']}, "
                    f"health {health}) instead of healthy"
                )
            if time.monotonic() > deadline:
                raise AssertionError(f"{SERVICE} not healthy after {timeout:.0f} s ({health})")
            time.sleep(0.25)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def get(self, path: str, timeout: float = 5) -> tuple[int, Any]:
        """GET the app through the published port: (status, decoded JSON body)."""
        return http_get(self.url(path), timeout)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Rows of a query on the database file in the bind mount, opened read-only."""
        return query_db(self.db_path, sql, params)

    def diagnostics(self) -> str:
        """State, health log and last log lines of every container of the project."""
        parts = [f"=== compose project {self.project} ({self.flavour}) in {self.dir}"]
        for cid in self.containers(service=None):
            try:
                info = self.inspect(cid)
            except CommandError as exc:  # removed meanwhile
                parts.append(str(exc))
                continue
            state = info["State"]
            parts.append(
                f"--- {info['Name'].lstrip('/')} image={info['Config']['Image']} "
                f"status={state['Status']} exit={state['ExitCode']} "
                f"health={state.get('Health', {}).get('Status', '-')}"
            )
            for probe in state.get("Health", {}).get("Log", [])[-3:]:
                parts.append(f"health check exit={probe['ExitCode']}: {probe['Output'].strip()}")
            parts.append(container_logs(cid))
        return "\n".join(parts)


def container_logs(container: str, tail: int = 80) -> str:
    """The last lines a container wrote, stdout and stderr interleaved as they came."""
    logs = subprocess.run(
        ["docker", "logs", "--tail", str(tail), container],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=30,
        check=False,
    )
    return logs.stdout.rstrip()


def query_db(path: Path, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows of a query on a database file, opened read-only (the app may be running on it)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def history_whens(path: Path) -> list[int]:
    """created_at of each row of drizzle's history table, i.e. the journal `when` of each
    applied migration, in the order they were applied."""
    return [
        row[0] for row in query_db(path, "SELECT created_at FROM __drizzle_migrations ORDER BY id")
    ]


def http_get(url: str, timeout: float = 5) -> tuple[int, Any]:
    """GET url: (status, decoded JSON body); HTTP errors are returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")
