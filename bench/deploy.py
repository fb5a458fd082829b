"""Deploy downtime: `deploy --tag v2` beside plain `compose up -d --force-recreate`, and the time
to roll back a release that crashes after migrating.

    .venv/bin/python bench/deploy.py [--compose v2|v1|both] [--runs 5] [--db-mb 100]

Needs a Docker engine, Compose, and the image litedeploy-demo:v1 (scripts/test.sh builds them;
run as root here, like the tests: the bind-mounted database belongs to the container's user).
Everything runs on the demo stack in a temporary folder: a copy of demo/docker-compose.yml, its own
project name, a free 127.0.0.1 port (APP_PORT) and ./data. The database is seeded once on the
host through sqlite3, with the app stopped: a few products and reviews, and random rows in a table
of its own (`bench_ballast`, untouched by the migrations) up to --db-mb. Each run starts from a
copy of that database with v1 healthy; a client polls GET /products every 50 ms around the
measured command and reports the longest gap between two successful answers and the failed
requests. Three scenarios, each --runs times:

  deploy        `python -m deploy --tag V2 --json`, V2 = v1 plus one migration (a column with a
                default); wall time and the deploy's own step durations;
  plain compose `APP_TAG=V2 compose up -d --force-recreate`, then `docker inspect` polled until
                healthy (no rehearsal, no rollback, no lock: only the image's entrypoint, which
                still backs up and migrates);
  rollback      `python -m deploy --tag CRASH --json`, CRASH = the same migration with
                DEMO_FAIL=crash (the app exits a second after starting): exit code 5 expected,
                the rollback's step durations.

The variant images are built FROM a private copy of litedeploy-demo:v1 (an image ID of its own);
the containers, networks, temporary folder, those images and the rollback tags the deploys keep
are removed at the end, also after a failure, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from entrypoint.safetynet.backup import list_backups

ROOT = Path(__file__).resolve().parent.parent
REPO = os.environ.get("DEMO_IMAGE", "litedeploy-demo")  # as demo/docker-compose.yml
V1 = f"{REPO}:v1"
SERVICE = "app"
COMPOSE_COMMANDS = {"v2": ("docker", "compose"), "v1": ("docker-compose",)}
PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"
MIGRATION = ("0006_add_stock", "ALTER TABLE `products` ADD `stock` integer DEFAULT 0 NOT NULL;")
POLL_EVERY = 0.05
REQUEST_TIMEOUT = 1.0
GAP_COUNTED = 0.25  # gaps longer than this add up to "unavailable"
EXIT_DEPLOYED, EXIT_ROLLED_BACK = 0, 5
ENTRYPOINT_BACKUP = "entrypoint's backup (manifest)"
APP_START = "container start -> app serving (logs)"
PAGE_PRAGMAS = ("page_count", "page_size")


class BenchError(RuntimeError):
    """A step of the benchmark failed; the message says which and why."""


def run(
    argv: Sequence[str | Path],
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 300,
    check: bool = True,
) -> subprocess.CompletedProcess[str]:
    args = [str(a) for a in argv]
    result = subprocess.run(
        args,
        capture_output=True,
        text=True,
        env=dict(env) if env is not None else None,
        cwd=cwd,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    if check and result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).rstrip().splitlines()[-20:])
        raise BenchError(f"`{' '.join(args)}` exited with {result.returncode}:\n{tail}")
    return result


def docker(*args: str | Path, check: bool = True, timeout: float = 300) -> str:
    return run(["docker", *args], check=check, timeout=timeout).stdout


def log(line: str) -> None:
    print(f"bench: {line}", file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# --- the polling client ----------------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    """Client-side figures for one measured command."""

    longest_gap: float
    unavailable: float
    failed: int
    requests: int


class Poller:
    """GET a URL every 50 ms in a thread, recording when each request ended and whether it
    answered 200."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.records: list[tuple[float, bool]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            ok = False
            try:
                with urllib.request.urlopen(self.url, timeout=REQUEST_TIMEOUT) as response:
                    response.read()
                    ok = response.status == 200
            except (urllib.error.URLError, http.client.HTTPException, OSError):
                ok = False
            self.records.append((time.monotonic(), ok))
            self._stop.wait(max(0.0, started + POLL_EVERY - time.monotonic()))

    def __enter__(self) -> Poller:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def wait_for_success(self, after: float, timeout: float = 60) -> None:
        """Until a request that ended after `after` was answered (the command is over)."""
        deadline = time.monotonic() + timeout
        while not any(ok and t > after for t, ok in list(self.records)):
            if time.monotonic() > deadline:
                raise BenchError(f"the app did not answer {self.url} within {timeout:.0f}s")
            time.sleep(POLL_EVERY)

    def seen(self, since: float, until: float) -> Seen:
        """Gaps between successful answers from the last one before `since` to the first one
        after `until`; failed requests in between."""
        records = list(self.records)
        before = [t for t, ok in records if ok and t <= since]
        after = [t for t, ok in records if ok and t >= until]
        if not before or not after:
            raise BenchError("the client saw no successful answer before or after the command")
        start, end = before[-1], after[0]
        oks = [t for t, ok in records if ok and start <= t <= end]
        gaps = [b - a for a, b in itertools.pairwise(oks)]
        window = [ok for t, ok in records if start < t <= end]
        return Seen(
            longest_gap=max(gaps, default=0.0),
            unavailable=sum(g for g in gaps if g > GAP_COUNTED),
            failed=sum(1 for ok in window if not ok),
            requests=len(window),
        )


# --- the stack -------------------------------------------------------------------------------


@dataclass
class Result:
    """One measured run of one scenario."""

    scenario: str
    wall: float
    seen: Seen
    steps: dict[str, float] = field(default_factory=dict)
    exit_code: int | None = None


def step_key(name: str) -> str:
    """Step names from `--json` carry image names: keep their stable part."""
    for prefix, key in (("cutover to ", "cutover"), ("bring back ", "bring back the previous")):
        if name.startswith(prefix):
            return key
    return name


def docker_time(text: str) -> datetime:
    """A Docker RFC 3339 time with nanoseconds (StartedAt, `logs --timestamps`)."""
    found = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?Z", text)
    if found is None:
        raise BenchError(f"not a Docker time: {text!r}")
    whole = datetime.fromisoformat(found[1]).replace(tzinfo=UTC)
    return whole + timedelta(seconds=float(f"0.{found[2] or 0}"))


def journal_entries(existing: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[dict]:
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


class Bench:
    """The example stack in a temporary folder, its images, and the three scenarios."""

    def __init__(self, flavour: str, db_mb: int, work: Path) -> None:
        self.flavour = flavour
        self.db_mb = db_mb
        self.key = f"bench-{uuid.uuid4().hex[:8]}"
        self.project = f"ldbench-{self.key[6:]}-{flavour}"
        self.port = free_port()
        self.dir = work / f"stack-{flavour}"
        self.golden = work / f"golden-{flavour}.db"
        self.tags = {name: f"{self.key}-{name}" for name in ("v1", "v2", "crash")}
        self.images_made: list[str] = []
        self.v1_id = ""
        self.db_bytes = 0

    # -- helpers ---------------------------------------------------------------------------

    @property
    def compose_file(self) -> Path:
        return self.dir / "docker-compose.yml"

    @property
    def data(self) -> Path:
        return self.dir / "data"

    @property
    def db(self) -> Path:
        return self.data / "app.db"

    def env(self, tag: str | None = None) -> dict[str, str]:
        env = dict(os.environ)
        env.update(COMPOSE_PROJECT_NAME=self.project, APP_PORT=str(self.port))
        env.pop("LITEDEPLOY_CONFIG", None)
        if tag is not None:
            env["APP_TAG"] = tag
        return env

    def compose_argv(self, *args: str) -> list[str]:
        return [
            *COMPOSE_COMMANDS[self.flavour],
            "-p",
            self.project,
            "-f",
            str(self.compose_file),
            *args,
        ]

    def compose(self, *args: str, tag: str = "none", check: bool = True) -> None:
        run(self.compose_argv(*args), env=self.env(tag), cwd=self.dir, check=check)

    def containers(self, service: str | None = SERVICE) -> list[str]:
        filters = ["--filter", f"label={PROJECT_LABEL}={self.project}"]
        if service:
            filters += ["--filter", f"label={SERVICE_LABEL}={service}"]
        return docker("ps", "-aq", "--no-trunc", *filters).split()

    def state(self) -> dict[str, Any]:
        ids = self.containers()
        if not ids:
            return {}
        out = docker("inspect", ids[0], check=False)
        data = json.loads(out) if out.strip() else []
        return data[0] if data else {}

    def wait_healthy(self, timeout: float = 90) -> None:
        """Poll `docker inspect` every 0.1 s until the service's container is healthy."""
        deadline = time.monotonic() + timeout
        while True:
            info = self.state()
            state = info.get("State", {})
            health = state.get("Health", {}).get("Status")
            if state.get("Status") == "running" and health == "healthy":
                return
            if state.get("Status") in ("exited", "dead") or health == "unhealthy":
                logs = docker("logs", "--tail", "30", info["Id"], check=False)
                raise BenchError(f"{SERVICE} is {state.get('Status')}/{health}:\n{logs}")
            if time.monotonic() > deadline:
                raise BenchError(f"{SERVICE} not healthy after {timeout:.0f}s ({health})")
            time.sleep(0.1)

    def running_image(self) -> str:
        return str(self.state().get("Config", {}).get("Image"))

    def columns(self, table: str) -> list[str]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=10)
        try:
            return [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]
        finally:
            conn.close()

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    # -- images and the seeded database ----------------------------------------------------

    def build_images(self) -> None:
        """A private copy of v1 (tests may rebuild v1 meanwhile; a label of its own gives it an
        image ID of its own, so the rollback tags deploy keeps of it are ours), and the two
        variants FROM it."""
        v1 = f"{REPO}:{self.tags['v1']}"
        with tempfile.TemporaryDirectory(prefix="litedeploy-bench-v1-") as tmp:
            dockerfile = f"FROM {V1}\nLABEL org.litedeploy.bench={json.dumps(self.key)}\n"
            (Path(tmp) / "Dockerfile").write_text(dockerfile)
            self.images_made.append(v1)
            self.v1_id = docker("build", "-q", "-t", v1, tmp).strip()
        self.build_variant("v2", {})
        self.build_variant("crash", {"DEMO_FAIL": "crash"})

    def build_variant(self, name: str, env: Mapping[str, str]) -> None:
        ref = f"{REPO}:{self.tags[name]}"
        journal_path = ROOT / "demo" / "migrations" / "meta" / "_journal.json"
        journal = json.loads(journal_path.read_text())
        journal["entries"].extend(journal_entries(journal["entries"], [MIGRATION[0]]))
        lines = [
            f"FROM {REPO}:{self.tags['v1']}",
            f"LABEL org.litedeploy.bench-variant={json.dumps(ref)}",
            "COPY migrations/ /app/migrations/",
        ]
        for key, value in env.items():
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
                raise ValueError(f"not an environment variable name: {key!r}")
            lines.append(f"ENV {key}={json.dumps(value)}")
        with tempfile.TemporaryDirectory(prefix="litedeploy-bench-variant-") as tmp:
            context = Path(tmp)
            (context / "migrations" / "meta").mkdir(parents=True)
            (context / "migrations" / "meta" / "_journal.json").write_text(
                json.dumps(journal, indent=2) + "\n"
            )
            (context / "migrations" / f"{MIGRATION[0]}.sql").write_text(MIGRATION[1] + "\n")
            (context / "Dockerfile").write_text("\n".join(lines) + "\n")
            self.images_made.append(ref)
            docker("build", "-q", "-t", ref, context)

    def prepare(self) -> None:
        """The stack folder; v1 migrates an empty database; seeded on the host, kept as golden."""
        self.dir.mkdir(parents=True)
        shutil.copy(ROOT / "demo" / "docker-compose.yml", self.compose_file)
        self.data.mkdir()
        self.compose("up", "-d", tag=self.tags["v1"])
        self.wait_healthy()
        self.compose("stop", "-t", "10", tag=self.tags["v1"])
        self.seed()
        shutil.copy2(self.db, self.golden)
        self.db_bytes = self.golden.stat().st_size

    def seed(self) -> None:
        """Products, reviews and random ballast rows up to --db-mb (the app is stopped)."""
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO products (id, title, price, sku) VALUES (?, ?, ?, ?)",
                [(i, f"product {i}", 100 + i, f"SKU-{i}") for i in range(1, 21)],
            )
            conn.executemany(
                "INSERT INTO reviews (product_id, body, stars) VALUES (?, ?, ?)",
                [(1 + i % 20, f"review {i}", 1 + i % 5) for i in range(2000)],
            )
            conn.execute("CREATE TABLE bench_ballast (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
            target = self.db_mb << 20
            while True:  # in chunks of ~10 MiB until the file is big enough
                pages, size = (conn.execute(f"PRAGMA {p}").fetchone()[0] for p in PAGE_PRAGMAS)
                if pages * size >= target:
                    break
                conn.execute(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                    "INSERT INTO bench_ballast (note) SELECT hex(randomblob(512)) FROM n",
                    (min(7500, max(1, (target - pages * size) // 1365)),),
                )
            conn.execute("COMMIT")
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            conn.close()

    def reset(self) -> None:
        """Nothing running; the golden database in place; v1 up, healthy and answering."""
        self.compose("down", "-t", "0", "--remove-orphans", tag=self.tags["v1"])
        for path in self.data.iterdir():
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        shutil.copy2(self.golden, self.db)
        self.compose("up", "-d", tag=self.tags["v1"])
        self.wait_healthy()
        deadline = time.monotonic() + 30
        while True:
            with (
                contextlib.suppress(urllib.error.URLError, http.client.HTTPException, OSError),
                urllib.request.urlopen(self.url("/products"), timeout=2) as response,
            ):
                if response.status == 200:
                    return
            if time.monotonic() > deadline:
                raise BenchError("v1 is healthy but /products does not answer")
            time.sleep(0.1)

    def app_start(self) -> float:
        """Seconds from the running container's start to the app's first line (after the
        entrypoint's backup, migration and checks), from `docker logs --timestamps`."""
        info = self.state()
        started = docker_time(info["State"]["StartedAt"])
        for line in docker("logs", "--timestamps", info["Id"]).splitlines():
            stamp, _, text = line.partition(" ")
            if text.startswith("demo app: serving"):
                return (docker_time(stamp) - started).total_seconds()
        logs = docker("logs", "--tail", "20", info["Id"])
        raise BenchError(f"no 'demo app: serving' line in the new container's log:\n{logs}")

    def backup_seconds(self, deploy_id: str | None) -> float:
        """What the entrypoint's backup at start-up took, from its manifest."""
        found = [
            b
            for b in list_backups(self.data / "backups")
            if deploy_id is None or b.manifest.deploy_id == deploy_id
        ]
        if not found:
            raise BenchError(f"the entrypoint took no backup (deploy id {deploy_id})")
        return found[-1].manifest.duration_ms / 1000

    # -- the scenarios ---------------------------------------------------------------------

    @contextlib.contextmanager
    def measured(self) -> Iterator[tuple[Poller, dict[str, float]]]:
        """A poller running a second before and until the app answers after the block."""
        marks: dict[str, float] = {}
        with Poller(self.url("/products")) as poller:
            time.sleep(1.0)
            marks["since"] = time.monotonic()
            yield poller, marks
            marks.setdefault("until", time.monotonic())
            poller.wait_for_success(marks["until"])
            time.sleep(0.2)

    def deploy(self, tag: str) -> tuple[int, dict[str, Any], float]:
        """`python -m deploy --tag TAG --json` in the stack's folder: exit code, report, wall."""
        argv = [sys.executable, "-m", "deploy", "--compose", self.flavour, "--tag", tag, "--json"]
        env = self.env()
        env["PYTHONPATH"] = str(ROOT)
        started = time.monotonic()
        result = subprocess.run(
            argv,
            cwd=self.dir,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        wall = time.monotonic() - started
        try:
            report: dict[str, Any] = json.loads(result.stdout)
        except ValueError:
            raise BenchError(
                f"deploy --tag {tag} printed no JSON (exit {result.returncode}):\n"
                f"{result.stdout}\n{result.stderr}"
            ) from None
        return result.returncode, report, wall

    def scenario_deploy(self) -> Result:
        self.reset()
        with self.measured() as (poller, marks):
            code, report, wall = self.deploy(self.tags["v2"])
            marks["until"] = time.monotonic()
        if code != EXIT_DEPLOYED or report.get("outcome") != "deployed":
            raise BenchError(f"deploy v2 exited {code}: {report.get('error')}")
        self.check_serving("v2", migrated=True)
        seen = poller.seen(marks["since"], marks["until"])
        steps = {step_key(k): v for k, v in report["durations"].items()}
        steps[ENTRYPOINT_BACKUP] = self.backup_seconds(report["deploy_id"])
        steps[APP_START] = round(self.app_start(), 2)
        return Result("deploy", wall, seen, steps, code)

    def scenario_compose(self) -> Result:
        self.reset()
        with self.measured() as (poller, marks):
            started = time.monotonic()
            self.compose("up", "-d", "--force-recreate", tag=self.tags["v2"])
            returned = time.monotonic() - started
            self.wait_healthy()
            marks["until"] = time.monotonic()
            wall = marks["until"] - started
        self.check_serving("v2", migrated=True)
        seen = poller.seen(marks["since"], marks["until"])
        steps = {
            "compose up returned": round(returned, 2),
            "then healthy": round(wall - returned, 2),
            ENTRYPOINT_BACKUP: self.backup_seconds(None),
            APP_START: round(self.app_start(), 2),
        }
        return Result("compose", wall, seen, steps)

    def scenario_rollback(self) -> Result:
        self.reset()
        with self.measured() as (poller, marks):
            code, report, wall = self.deploy(self.tags["crash"])
            marks["until"] = time.monotonic()
        if code != EXIT_ROLLED_BACK or report.get("outcome") != "rolled-back":
            raise BenchError(
                f"deploy of the crashing v2 exited {code} ({report.get('outcome')}), expected "
                f"{EXIT_ROLLED_BACK} (rolled-back): {report.get('error')}"
            )
        self.check_serving("v1", migrated=False)
        seen = poller.seen(marks["since"], marks["until"])
        steps = {step_key(k): v for k, v in report["durations"].items()}
        steps[ENTRYPOINT_BACKUP] = self.backup_seconds(report["deploy_id"])
        return Result("rollback", wall, seen, steps, code)

    def check_serving(self, name: str, *, migrated: bool) -> None:
        """The running image (by ID: a rollback runs v1 under a kept tag), and the migration
        applied, or restored away, in the database."""
        running = str(self.state().get("Image"))
        wanted = docker("image", "inspect", "--format", "{{.Id}}", f"{REPO}:{self.tags[name]}")
        if running != wanted.strip():
            raise BenchError(f"running {self.running_image()} ({running[7:19]}), expected {name}")
        has_stock = "stock" in self.columns("products")
        if has_stock != migrated:
            raise BenchError(f"products.stock {'missing' if migrated else 'still there'}")

    # -- cleanup -----------------------------------------------------------------------------

    def cleanup(self) -> None:
        """Containers, networks, the rollback tags the deploys kept, and our images."""
        with contextlib.suppress(Exception):
            self.compose("down", "-v", "-t", "0", "--remove-orphans", check=False)
        leftovers = self.containers(service=None)
        history = self.dir / ".litedeploy" / "history.jsonl"
        deploy_ids: list[str] = []
        keep_tags: list[str] = []
        if history.exists():
            for line in history.read_text().splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    deploy_ids.append(str(record.get("deploy_id")))
                    if record.get("rollback_image"):
                        keep_tags.append(str(record["rollback_image"]))
        for deploy_id in deploy_ids:  # rehearsal containers of an interrupted deploy
            name = f"litedeploy-rehearsal-{deploy_id}"
            leftovers += docker("ps", "-aq", "--filter", f"name=^{name}$", check=False).split()
        if leftovers:
            docker("rm", "-f", "-v", *leftovers, check=False)
        networks = docker(
            "network", "ls", "-q", "--filter", f"label={PROJECT_LABEL}={self.project}", check=False
        ).split()
        if networks:
            docker("network", "rm", *networks, check=False)
        images = [t for t in keep_tags if t.startswith(f"{REPO}:rollback-")]
        if self.v1_id:  # also those kept by a deploy interrupted before it wrote its history
            listed = docker("image", "ls", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}", REPO)
            for line in listed.splitlines():
                ref, _, short_id = line.partition(" ")
                if ref.startswith(f"{REPO}:rollback-") and short_id and short_id in self.v1_id:
                    images.append(ref)
        images += list(reversed(self.images_made))
        for image in images:
            docker("rmi", image, check=False)


# --- figures ---------------------------------------------------------------------------------


def spread(values: Sequence[float], fmt: str = "{:.2f}") -> str:
    """median (min-max), or the one value."""
    if len(values) == 1:
        return fmt.format(values[0])
    low, high = fmt.format(min(values)), fmt.format(max(values))
    return f"{fmt.format(statistics.median(values))} ({low}-{high})"


LABELS = {
    "deploy": "deploy --tag v2 (1 migration)",
    "compose": "plain compose up + wait healthy",
    "rollback": "deploy of v2 that crashes -> exit 5",
}
STEP_ORDER = [
    "preflight",
    "record the running version",
    "rehearsal on a snapshot",
    "cutover",
    "health",
    "stop the new version",
    "restore the pre-migration database",
    "bring back the previous",
    "health of the previous version",
    "total",
    "compose up returned",
    "then healthy",
    ENTRYPOINT_BACKUP,
    APP_START,
]


def table(flavour: str, version: str, bench: Bench, results: list[Result], runs: int) -> str:
    out = [
        f"## Compose {flavour} ({version}), database {bench.db_bytes / (1 << 20):.1f} MiB, "
        f"{runs} run(s) each; figures are median (min-max), seconds unless said",
        "",
        f"{'scenario':<38}{'wall':>20}{'longest gap':>20}{'unavailable':>20}{'failed req':>16}",
    ]
    by: dict[str, list[Result]] = {}
    for r in results:
        by.setdefault(r.scenario, []).append(r)
    for name, rs in by.items():
        out.append(
            f"{LABELS[name]:<38}"
            f"{spread([r.wall for r in rs]):>20}"
            f"{spread([r.seen.longest_gap for r in rs]):>20}"
            f"{spread([r.seen.unavailable for r in rs]):>20}"
            f"{spread([float(r.seen.failed) for r in rs], '{:.0f}'):>16}"
        )
    out += [
        "",
        f"{'steps (deploy: its --json durations)':<46}" + "".join(f"{name:>22}" for name in by),
    ]
    keys = [k for k in STEP_ORDER if any(k in r.steps for r in results)]
    keys += sorted({k for r in results for k in r.steps} - set(keys))
    for key in keys:
        cells = []
        for rs in by.values():
            values = [r.steps[key] for r in rs if key in r.steps]
            cells.append(spread(values) if values else "-")
        out.append(f"{key:<46}" + "".join(f"{c:>22}" for c in cells))
    return "\n".join(out)


def compose_version(flavour: str) -> str:
    result = run([*COMPOSE_COMMANDS[flavour], "version", "--short"], check=False, timeout=60)
    if result.returncode != 0:
        raise BenchError(f"Compose {flavour} does not answer: {result.stderr.strip()}")
    return result.stdout.strip()


def bench_flavour(flavour: str, args: argparse.Namespace, work: Path) -> str:
    version = compose_version(flavour)
    bench = Bench(flavour, args.db_mb, work)
    results: list[Result] = []
    try:
        log(f"compose {flavour} ({version}): building variants FROM {V1}, project {bench.project}")
        bench.build_images()
        log(f"seeding a {args.db_mb} MiB database through v1")
        bench.prepare()
        scenarios = (bench.scenario_deploy, bench.scenario_compose, bench.scenario_rollback)
        for i in range(args.runs):
            for scenario in scenarios:
                r = scenario()
                results.append(r)
                log(
                    f"run {i + 1}/{args.runs} {r.scenario:<8} wall {r.wall:5.2f}s  "
                    f"longest gap {r.seen.longest_gap:5.2f}s  unavailable "
                    f"{r.seen.unavailable:5.2f}s  failed {r.seen.failed:3d}/{r.seen.requests}  "
                    + " ".join(f"{k}={v}" for k, v in r.steps.items())
                )
    finally:
        log(f"cleaning up project {bench.project}")
        bench.cleanup()
    return table(flavour, version, bench, results, args.runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--compose", choices=("v2", "v1", "both"), default="v2")
    parser.add_argument("--runs", type=int, default=5, help="runs of each scenario [5]")
    parser.add_argument("--db-mb", type=int, default=100, help="database size in MiB [100]")
    args = parser.parse_args()
    if args.runs < 1 or args.db_mb < 1:
        parser.error("--runs and --db-mb must be positive")
    if run(["docker", "image", "inspect", V1], check=False, timeout=60).returncode != 0:
        sys.exit(f"bench: {V1} is missing: scripts/test.sh builds it (or `bash scripts/demo.sh`)")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # run the cleanup on kill too

    flavours = ["v2", "v1"] if args.compose == "both" else [args.compose]
    command = " ".join([".venv/bin/python", "bench/deploy.py", *sys.argv[1:]])
    v1_id = docker("image", "inspect", "--format", "{{.Id}}", V1).strip()[7:19]
    tables = []
    with tempfile.TemporaryDirectory(prefix="litedeploy-bench-") as tmp:
        try:
            for flavour in flavours:
                tables.append(bench_flavour(flavour, args, Path(tmp)))
        except BenchError as exc:
            sys.exit(f"bench: {exc}")
    print(f"command: {command}")
    print(
        f"engine {docker('version', '--format', '{{.Server.Version}}').strip()}, "
        f"{os.cpu_count()} CPUs, {V1} = {v1_id}; client polls GET /products every "
        f"{POLL_EVERY * 1000:.0f} ms ({REQUEST_TIMEOUT:.0f} s timeout); 'unavailable' sums the "
        f"gaps between answers longer than {GAP_COUNTED} s"
    )
    for t in tables:
        print()
        print(t)
    print()
    print(
        "plain compose has no rehearsal, no lock, no rollback and no restore: a crashing v2 "
        "would stay down with a migrated database"
    )


if __name__ == "__main__":
    main()
