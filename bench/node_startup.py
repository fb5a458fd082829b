"""Start-up of the Node example's container: `docker run` to the first healthy GET /health.

    .venv/bin/python bench/node_startup.py [--runs 7] [--litedeploy-image litedeploy:0.1.0]

examples/node-shop is built twice from the same layers: with /opt/litedeploy copied from the
litedeploy image (--litedeploy-image, default $LITEDEPLOY_IMAGE, else litedeploy:<version>,
which scripts/test.sh builds) and its plain `app` target, the app alone. Each run starts a container
with the database folder bind-mounted, times `docker run -d` until GET /health answers 200 on the
published port (polled every 5 ms), then removes it. Runs are interleaved, so every variant sees
the same machine; the figures are medians (and min, max) over --runs.

  nothing pending   the database already migrated (a fresh copy for each run):
                    entrypoint        the image as shipped: litedeploy's entrypoint, then node
                    drizzle migrate() the plain image with SHOP_MIGRATE=drizzle: drizzle-orm's
                                      migrate() inside the server before it listens
                    no migration      the plain image: node alone, the floor
  new database      an empty folder, the example's four migrations: entrypoint, drizzle
  image size        the two images' sizes, and what the bundle adds

Needs a Docker engine, the Node base image, examples/node-shop/node_modules and the litedeploy
image (scripts/test.sh makes them all). The two images are tagged litedeploy-node-bench:* and
removed at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "examples" / "node-shop"
BENCH_REPO = "litedeploy-node-bench"
APP_UID = 1000  # the image's `node` user: the plain image runs as it
TARGETS = {  # the issue's: what the entrypoint may add over drizzle's own migrate()
    "size": 25 * 1000 * 1000,
    "nothing pending": 0.060,
    "new database": 0.150,
}


def run(argv: list[str]) -> str:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        sys.exit(f"bench: `{' '.join(argv)}` exited {result.returncode}:\n{result.stderr[-2000:]}")
    return result.stdout


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def build(tag: str, litedeploy: str, base: str, target: str | None = None) -> str:
    ref = f"{BENCH_REPO}:{tag}"
    argv = ["docker", "build", "-q", "-t", ref, "--build-arg", f"NODE_BASE={base}"]
    argv += ["--build-arg", f"LITEDEPLOY_IMAGE={litedeploy}"]
    run([*argv, *(["--target", target] if target else []), str(SHOP)])
    return ref


def wait_healthy(port: int, container: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.005)
    logs = subprocess.run(["docker", "logs", container], capture_output=True, text=True)
    sys.exit(f"bench: {container} not healthy in {timeout:.0f} s:\n{logs.stderr[-2000:]}")


def start_to_healthy(image: str, data: Path, args: list[str]) -> float:
    """Seconds from `docker run -d` to the first 200 from /health; the container is removed."""
    port, name = free_port(), f"ldnode-bench-{uuid.uuid4().hex[:8]}"
    argv = ["docker", "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000"]
    argv += ["-v", f"{data}:/data", *args, image]
    started = time.perf_counter()
    try:
        subprocess.run(argv, check=True, capture_output=True)
        wait_healthy(port, name)
        return time.perf_counter() - started
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", name], capture_output=True, check=False)


@contextmanager
def folder(parent: Path, database: Path | None) -> Iterator[Path]:
    """A fresh database folder owned by the app's uid: empty, or with a copy of `database`."""
    path = parent / uuid.uuid4().hex[:8]
    path.mkdir()
    if database is not None:
        shutil.copy(database, path / "app.db")
        os.chown(path / "app.db", APP_UID, APP_UID)
    os.chown(path, APP_UID, APP_UID)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def migrated_database(image: str, parent: Path) -> Path:
    """The example's database with every migration applied (by the entrypoint, once)."""
    with folder(parent, None) as data:
        start_to_healthy(image, data, [])
        target = parent / "migrated.db"
        source = sqlite3.connect(data / "app.db")
        copy = sqlite3.connect(target)
        source.backup(copy)
        copy.close()
        source.close()
    return target


def row(name: str, values: list[float]) -> str:
    ms = [v * 1000 for v in values]
    return f"  {name:<20}{statistics.median(ms):>8.0f} ms{min(ms):>8.0f} ms{max(ms):>8.0f} ms"


def verdict(added: float, target: float, unit: str = "ms") -> str:
    scale = 1000 if unit == "ms" else 1 / 1e6
    got, limit = added * scale, target * scale
    return (
        f"{got:+.0f} {unit} (target <= +{limit:.0f} {unit}: {'met' if got <= limit else 'missed'})"
    )


def project_version() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        version: str = tomllib.load(f)["project"]["version"]
    return version


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--litedeploy-image",
        default=os.environ.get("LITEDEPLOY_IMAGE", f"litedeploy:{project_version()}"),
    )
    parser.add_argument(
        "--node-base",
        default=os.environ.get("LITEDEPLOY_NODE_BASE_IMAGE", "litedeploy-node-base:bookworm"),
    )
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit("bench: run as root (the database folders are handed to the image's uid 1000)")
    if not (SHOP / "node_modules" / "better-sqlite3").is_dir():
        sys.exit("bench: examples/node-shop/node_modules is missing: run scripts/test.sh first")

    with_bundle = build("with-entrypoint", args.litedeploy_image, args.node_base)
    plain = build("plain", args.litedeploy_image, args.node_base, target="app")
    try:
        with tempfile.TemporaryDirectory(prefix="ldnode-bench-") as tmp:
            parent = Path(tmp)
            migrated = migrated_database(with_bundle, parent)
            drizzle = ["-e", "SHOP_MIGRATE=drizzle"]
            variants: dict[str, tuple[Path | None, Callable[[Path], float]]] = {
                "pending: entrypoint": (migrated, lambda d: start_to_healthy(with_bundle, d, [])),
                "pending: drizzle": (migrated, lambda d: start_to_healthy(plain, d, drizzle)),
                "pending: none": (migrated, lambda d: start_to_healthy(plain, d, [])),
                "new: entrypoint": (None, lambda d: start_to_healthy(with_bundle, d, [])),
                "new: drizzle": (None, lambda d: start_to_healthy(plain, d, drizzle)),
            }
            samples: dict[str, list[float]] = {name: [] for name in variants}
            for database, measure in variants.values():  # warm the page cache first
                with folder(parent, database) as data:
                    measure(data)
            for _ in range(args.runs):
                for name, (database, measure) in variants.items():
                    with folder(parent, database) as data:
                        samples[name].append(measure(data))
        sizes = {
            ref: int(json.loads(run(["docker", "image", "inspect", ref]))[0]["Size"])
            for ref in (with_bundle, plain)
        }
    finally:
        subprocess.run(["docker", "rmi", with_bundle, plain], capture_output=True, check=False)

    med = {name: statistics.median(values) for name, values in samples.items()}
    print(
        f"Node example, `docker run` to the first 200 from /health, {args.runs} runs each, "
        f"{os.cpu_count()} CPUs; /opt/litedeploy from {args.litedeploy_image}"
    )
    print(f"  {'':<20}{'median':>11}{'min':>11}{'max':>11}")
    print("nothing pending (database already migrated)")
    print(row("entrypoint", samples["pending: entrypoint"]))
    print(row("drizzle migrate()", samples["pending: drizzle"]))
    print(row("no migration", samples["pending: none"]))
    print("new database (4 migrations)")
    print(row("entrypoint", samples["new: entrypoint"]))
    print(row("drizzle migrate()", samples["new: drizzle"]))
    print("image size")
    print(f"  {'with the entrypoint':<20}{sizes[with_bundle] / 1e6:>8.1f} MB")
    print(f"  {'app alone':<20}{sizes[plain] / 1e6:>8.1f} MB")
    added = sizes[with_bundle] - sizes[plain]
    print("against the targets (entrypoint minus drizzle's migrate(), medians)")
    print(f"  image size added     {verdict(added, TARGETS['size'], 'MB')}")
    nothing = med["pending: entrypoint"] - med["pending: drizzle"]
    print(f"  nothing pending      {verdict(nothing, TARGETS['nothing pending'])}")
    new = med["new: entrypoint"] - med["new: drizzle"]
    print(f"  new database         {verdict(new, TARGETS['new database'])}")


if __name__ == "__main__":
    main()
