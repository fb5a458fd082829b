"""Zero-downtime deploys: a client through the proxy every 20 ms during start-first and recreate
deploys and rollbacks of the example stack (docker-compose.yml: nginx in front of the Node shop).

    .venv/bin/python bench/start_first.py [--compose v2|v1|both] [--runs 3] [--db-mb 100]

Needs what scripts/test.sh provides: a Docker engine, Compose, the images litedeploy:<version>,
litedeploy-node-base:bookworm and litedeploy-proxy:nginx, and examples/node-shop/node_modules
(run as root, like the tests). The stack runs in a temporary folder: copies of
docker-compose.yml and deploy.yml, its own project name, a free 127.0.0.1 port and ./data. v1
migrates an empty database; the host's sqlite3 then adds 20 products and random rows in a table of
its own (`bench_ballast`) up to --db-mb. Every run starts from a copy of that database with v1
serving behind the proxy. The client alternates GET /products and POST /products (a new product,
its name remembered when the answer is 201) every 20 ms, from 2 s before the command (the
baseline latency) until the app answers after it. Four scenarios, each --runs times:

  start-first       `deploy --tag V2`: V2 adds the reviews table (expand-only), so `auto` starts
                    it beside v1 and switches the proxy when it is healthy;
  recreate          the same release with `--strategy recreate` (what every deploy did before);
  start-first fail  `deploy --tag CRASH`: the same migration, the app exits a second after it
                    starts (exit 5 expected; the proxy must never switch);
  recreate fail     the same with `--strategy recreate` (exit 5: previous image and the
                    pre-migration database restored).

Reported per scenario, median (min-max): wall time of the deploy, failed requests, the longest
time between two successful answers, the p50 and p99 latency of the requests made during the
deploy (the baseline's beside them), and how many of the writes answered 201 are in the
database afterwards. Everything it made (containers, networks, images, the folder) is removed at
the end.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import itertools
import json
import os
import shutil
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
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "node-shop"
EVERY = 0.02
BASELINE = 2.0
SCENARIOS = {
    "start-first": ("v2", "auto", 0),
    "recreate": ("v2", "recreate", 0),
    "start-first fail": ("crash", "auto", 5),
    "recreate fail": ("crash", "recreate", 5),
}


class BenchError(Exception):
    pass


def run(
    argv: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 300,
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        argv, capture_output=True, text=True, check=False, cwd=cwd, env=env, timeout=timeout
    )
    if done.returncode != 0:
        raise BenchError(f"{' '.join(map(str, argv))} failed: {done.stderr[-800:]}")
    return done


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Client:
    """Reads and writes through the proxy every 20 ms; (end, ok, latency) per request."""

    url: str
    records: list[tuple[float, bool, float]] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def loop(self) -> None:
        for n in itertools.count():
            if self.stop.is_set():
                return
            started = time.monotonic()
            ok = False
            name = f"bench-{uuid.uuid4().hex[:8]}"
            try:
                if n % 2:
                    body = json.dumps({"name": name, "description": "", "price": n}).encode()
                    request = urllib.request.Request(
                        f"{self.url}/products",
                        data=body,
                        method="POST",
                        headers={"Content-Type": "application/json"},
                    )
                    with urllib.request.urlopen(request, timeout=10) as response:
                        ok = response.status == 201
                    if ok:
                        self.written.append(name)
                else:
                    with urllib.request.urlopen(f"{self.url}/products", timeout=10) as response:
                        response.read()
                        ok = response.status == 200
            except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
                ok = False
                self.errors.append(f"{'POST' if n % 2 else 'GET'}: {exc}"[:200])
            ended = time.monotonic()
            self.records.append((ended, ok, ended - started))
            self.stop.wait(max(0.0, started + EVERY - time.monotonic()))


@contextlib.contextmanager
def client(url: str) -> Iterator[Client]:
    c = Client(url)
    thread = threading.Thread(target=c.loop, daemon=True)
    thread.start()
    try:
        yield c
    finally:
        c.stop.set()
        thread.join(timeout=30)


@dataclass
class Seen:
    wall: float
    failed: int
    longest_gap: float
    p50: float
    p99: float
    base_p50: float
    base_p99: float
    kept: int
    written: int


def seen(c: Client, since: float, until: float, wall: float, kept: int) -> Seen:
    records = list(c.records)
    base = [lat for t, ok, lat in records if ok and since - BASELINE <= t < since]
    during = [(t, ok, lat) for t, ok, lat in records if since <= t <= until]
    oks = [t for t, ok, _ in records if ok and since - BASELINE <= t]
    first_after = [t for t in oks if t > until]
    window = [t for t in oks if t <= until] + first_after[:1]
    gaps = [b - a for a, b in itertools.pairwise(window)]
    lat = sorted(lat for _, ok, lat in during if ok)

    def pct(values: list[float], p: float) -> float:
        return values[min(len(values) - 1, int(p * len(values)))] if values else float("nan")

    return Seen(
        wall=wall,
        failed=sum(1 for _, ok, _ in during if not ok),
        longest_gap=max(gaps, default=0.0),
        p50=pct(lat, 0.5),
        p99=pct(lat, 0.99),
        base_p50=pct(sorted(base), 0.5),
        base_p99=pct(sorted(base), 0.99),
        kept=kept,
        written=len(c.written),
    )


class Bench:
    def __init__(self, flavour: str, db_mb: int, work: Path, images: dict[str, str]) -> None:
        self.flavour, self.db_mb, self.dir, self.images = flavour, db_mb, work, images
        self.project = f"ldbench-sf-{uuid.uuid4().hex[:8]}"
        self.port = free_port()
        self.dir.mkdir(parents=True)
        shutil.copy(ROOT / "docker-compose.yml", self.dir / "docker-compose.yml")
        shutil.copy(ROOT / "deploy.yml", self.dir / "deploy.yml")
        (self.dir / "examples").symlink_to(ROOT / "examples")
        (self.dir / "data").mkdir()
        self.golden = self.dir / "golden.db"
        self.errors: list[str] = []

    @property
    def db(self) -> Path:
        return self.dir / "data" / "app.db"

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            "COMPOSE_PROJECT_NAME": self.project,
            "APP_PORT": str(self.port),
            "PYTHONPATH": str(ROOT),
        }

    def deploy(self, tag: str, *extra: str) -> tuple[int, dict[str, object], float]:
        argv = [sys.executable, "-m", "deploy", "--compose", self.flavour, "--tag", tag]
        started = time.monotonic()
        done = subprocess.run(
            [*argv, "--json", *extra],
            cwd=self.dir,
            env=self.env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=600,
        )
        wall = time.monotonic() - started
        try:
            report = json.loads(done.stdout)
        except ValueError as exc:
            raise BenchError(
                f"deploy printed no JSON (exit {done.returncode}): {done.stderr}"
            ) from exc
        return done.returncode, report, wall

    def compose(self, *args: str) -> None:
        base = ["docker", "compose"] if self.flavour == "v2" else ["docker-compose"]
        run([*base, "-p", self.project, *args], cwd=self.dir, env=self.env(), timeout=300)

    def answering(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with (
                contextlib.suppress(urllib.error.URLError, http.client.HTTPException, OSError),
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}/products", timeout=2),
            ):
                return
            time.sleep(0.1)
        raise BenchError("v1 does not answer through the proxy")

    def prepare(self) -> None:
        code, report, _ = self.deploy(self.images["v1"])
        if code != 0:
            raise BenchError(f"deploying v1 failed: {report.get('error')}")
        self.compose("stop", "app")
        conn = sqlite3.connect(self.db, isolation_level=None, timeout=30)
        try:
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO products (name, description, price) VALUES (?, ?, ?)",
                [(f"product {i}", "", 100 + i) for i in range(20)],
            )
            conn.execute("CREATE TABLE bench_ballast (id INTEGER PRIMARY KEY, note TEXT NOT NULL)")
            target = self.db_mb << 20
            while True:
                pages = conn.execute("PRAGMA page_count").fetchone()[0]
                size = conn.execute("PRAGMA page_size").fetchone()[0]
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
        shutil.copy2(self.db, self.golden)

    def reset(self) -> None:
        """v1 serving the golden database behind the proxy; no history, no backups."""
        self.compose("down", "-t", "0", "--remove-orphans")
        for name in ("data", "proxy", ".litedeploy"):
            shutil.rmtree(self.dir / name, ignore_errors=True)
        (self.dir / ".env").unlink(missing_ok=True)
        (self.dir / "data").mkdir()
        shutil.copy2(self.golden, self.db)
        code, report, _ = self.deploy(self.images["v1"])
        if code != 0:
            raise BenchError(f"deploying v1 failed: {report.get('error')}")
        self.answering()

    def names(self) -> set[str]:
        with contextlib.closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)) as conn:
            return {n for (n,) in conn.execute("SELECT name FROM products")}

    def scenario(self, name: str) -> Seen:
        release, strategy, expected = SCENARIOS[name]
        self.reset()
        with client(f"http://127.0.0.1:{self.port}") as c:
            time.sleep(BASELINE)
            since = time.monotonic()
            code, report, wall = self.deploy(self.images[release], "--strategy", strategy)
            until = time.monotonic()
            deadline = until + 60
            while not any(ok and t > until for t, ok, _ in list(c.records)):
                if time.monotonic() > deadline:
                    raise BenchError(f"{name}: the app did not answer after the deploy")
                time.sleep(EVERY)
        if code != expected:
            raise BenchError(f"{name}: deploy exited {code}, expected {expected}: {report}")
        ran = report.get("strategy")
        want = "start-first" if strategy == "auto" else "recreate"
        if ran != want:
            raise BenchError(f"{name}: the deploy ran {ran}, expected {want}")
        kept = len(set(c.written) & self.names())
        self.errors = list(c.errors)
        if c.errors:  # what the proxy said about them
            logs = subprocess.run(
                [
                    "docker",
                    "logs",
                    f"{self.project}-proxy-1"
                    if self.flavour == "v2"
                    else f"{self.project.replace('-', '')}_proxy_1",
                ],
                capture_output=True,
                text=True,
                check=False,
            )
            self.errors += [line for line in logs.stderr.splitlines() if "[error]" in line][-3:]
        return seen(c, since, until, wall, kept)

    def cleanup(self) -> None:
        with contextlib.suppress(BenchError, subprocess.TimeoutExpired):
            self.compose("down", "-t", "0", "--remove-orphans")


def build(images: dict[str, dict[str, str]], litedeploy: str) -> dict[str, str]:
    built = {}
    for release, args in images.items():
        ref = f"litedeploy-node-shop:bench-sf-{release}"
        argv = ["docker", "build", "-q", "-t", ref]
        for key, value in {
            "NODE_BASE": os.environ.get(
                "LITEDEPLOY_NODE_BASE_IMAGE", "litedeploy-node-base:bookworm"
            ),
            "LITEDEPLOY_IMAGE": litedeploy,
            **args,
        }.items():
            argv += ["--build-arg", f"{key}={value}"]
        run([*argv, str(SHOP)], timeout=900)
        built[release] = ref.rpartition(":")[2]
    return built


def spread(values: list[float], fmt: str) -> str:
    med = statistics.median(values)
    if min(values) == max(values):
        return fmt.format(med)
    return f"{fmt.format(med)} ({fmt.format(min(values))}-{fmt.format(max(values))})"


def table(flavour: str, results: dict[str, list[Seen]], runs: int, db_mb: int) -> str:
    rows = [
        f"Compose {flavour}, {db_mb} MiB database, {runs} runs: median (min-max)",
        "",
        "| scenario | wall s | failed requests | longest gap ms | p50 ms (baseline) "
        "| p99 ms (baseline) | writes kept |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, seen_ in results.items():
        rows.append(
            f"| {name} | {spread([s.wall for s in seen_], '{:.1f}')} "
            f"| {spread([float(s.failed) for s in seen_], '{:.0f}')} "
            f"| {spread([s.longest_gap * 1000 for s in seen_], '{:.0f}')} "
            f"| {spread([s.p50 * 1000 for s in seen_], '{:.0f}')} "
            f"({statistics.median(s.base_p50 for s in seen_) * 1000:.0f}) "
            f"| {spread([s.p99 * 1000 for s in seen_], '{:.0f}')} "
            f"({statistics.median(s.base_p99 for s in seen_) * 1000:.0f}) "
            f"| {sum(s.kept for s in seen_)}/{sum(s.written for s in seen_)} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--compose", choices=("v2", "v1", "both"), default="v2")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--db-mb", type=int, default=100)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS))
    args = parser.parse_args()
    version = run([sys.executable, "-c", "import deploy; print(deploy.VERSION)"], cwd=ROOT)
    litedeploy = os.environ.get("LITEDEPLOY_IMAGE", f"litedeploy:{version.stdout.strip()}")
    images = build(
        {
            "v1": {"MIGRATIONS": "releases/v1/drizzle"},
            "v2": {"MIGRATIONS": "releases/v2/drizzle"},
            "crash": {"MIGRATIONS": "releases/v2/drizzle", "SHOP_FAIL": "crash"},
        },
        litedeploy,
    )
    flavours = ["v2", "v1"] if args.compose == "both" else [args.compose]
    names = args.scenario or list(SCENARIOS)
    with tempfile.TemporaryDirectory(prefix="ldbench-sf-") as tmp:
        for flavour in flavours:
            bench = Bench(flavour, args.db_mb, Path(tmp) / flavour, images)
            try:
                print(f"# Compose {flavour}: seeding a {args.db_mb} MiB database", file=sys.stderr)
                bench.prepare()
                results: dict[str, list[Seen]] = {n: [] for n in names}
                for i, name in itertools.product(range(args.runs), names):
                    got = bench.scenario(name)
                    results[name].append(got)
                    print(f"  run {i + 1} {name}: {got}", file=sys.stderr)
                    for error in bench.errors[:3] + bench.errors[-3:]:
                        print(f"    {error}", file=sys.stderr)
                print(table(flavour, results, args.runs, args.db_mb))
                print()
            finally:
                bench.cleanup()
    for ref in images.values():
        subprocess.run(
            ["docker", "rmi", f"litedeploy-node-shop:{ref}"], capture_output=True, check=False
        )


if __name__ == "__main__":
    try:
        main()
    except BenchError as exc:
        print(f"bench/start_first.py: {exc}", file=sys.stderr)
        sys.exit(1)
