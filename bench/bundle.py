"""The self-contained entrypoint (issue 12): its size, and its start-up beside the venv install.

Builds, from the images scripts/test.sh (or scripts/bundle.sh) makes, four images tagged
litedeploy-bundle-bench:* (removed at the end unless --keep):

    bundle   litedeploy-base:bookworm + COPY --from litedeploy:<version> /opt/litedeploy
    venv     litedeploy-base:bookworm + python3 -m venv + pip install litedeploy (the demo
             image's way before issue 12; offline from wheels/)
    nopy     litedeploy-bundle-nopython:bookworm + the same COPY (what a Node image gets)
    onefile  the litedeploy image built with BUNDLE_MODE=onefile (only with --onefile)

bundle and venv share the base, so only the entrypoint differs. Each image runs
`entrypoint run --db /data/app.db --migrations /m -- true` on a database the image migrated
first (nothing pending), timed two ways, medians of --runs:

    docker run   the whole `docker run --rm` process, as an orchestrator sees it
    in-container the entrypoint alone: a shell loop inside one container times each run with
                 `date +%s%N` (no container start in it)

    .venv/bin/python bench/bundle.py [--runs 21] [--onefile] [--keep]

Prints figures; it is not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHOP = ROOT / "tests" / "fixtures" / "drizzle-journal" / "shop"
REPO = "litedeploy-bundle-bench"
BASE = os.environ.get("LITEDEPLOY_BASE_IMAGE", "litedeploy-base:bookworm")
NOPYTHON = os.environ.get("LITEDEPLOY_NOPYTHON_IMAGE", "litedeploy-bundle-nopython:bookworm")
# The Dockerfile's docker CLI stage, from the local image scripts/docker.sh makes (no registry).
DOCKER_CLI = os.environ.get("LITEDEPLOY_DOCKER_CLI_IMAGE", "litedeploy-docker-cli:local")
RUN = ["run", "--db", "/data/app.db", "--migrations", "/m", "--", "true"]

COPY_DOCKERFILE = """\
FROM {litedeploy} AS litedeploy
FROM {base}
COPY --from=litedeploy /opt/litedeploy /opt/litedeploy
ENTRYPOINT ["/opt/litedeploy/entrypoint"]
"""
VENV_DOCKERFILE = """\
FROM {base}
WORKDIR /src
COPY pyproject.toml README.md ./
COPY entrypoint ./entrypoint
COPY deploy ./deploy
COPY wheels ./wheels
RUN python3 -m venv /opt/venv \\
 && /opt/venv/bin/pip install --no-cache-dir --disable-pip-version-check \\
      --no-index --find-links /src/wheels /src \\
 && rm -rf /src
ENTRYPOINT ["/opt/venv/bin/entrypoint"]
"""


def sh(*argv: str | Path, stdin: str | None = None, timeout: float = 900) -> str:
    result = subprocess.run(
        [str(a) for a in argv], input=stdin, capture_output=True, text=True, timeout=timeout
    )
    if result.returncode != 0:
        sys.exit(f"bench: {' '.join(map(str, argv))} failed:\n{result.stderr[-3000:]}")
    return result.stdout


def litedeploy_image() -> str:
    with (ROOT / "pyproject.toml").open("rb") as f:
        version = tomllib.load(f)["project"]["version"]
    return os.environ.get("LITEDEPLOY_IMAGE", f"litedeploy:{version}")


def image_size(ref: str) -> int:
    return int(sh("docker", "image", "inspect", "--format", "{{.Size}}", ref).strip())


def build_from(dockerfile: str, tag: str, context: Path) -> float:
    started = time.perf_counter()
    sh("docker", "build", "-q", "-t", tag, "-f", "-", context, stdin=dockerfile)
    return time.perf_counter() - started


def mounts(data: Path) -> list[str]:
    return ["-v", f"{data}:/data", "-v", f"{SHOP}:/m:ro", "--network", "none"]


def docker_run_times(image: str, data: Path, runs: int) -> list[float]:
    argv = ["docker", "run", "--rm", *mounts(data), image, *RUN]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True, timeout=120)
        times.append(time.perf_counter() - started)
    return times


def in_container_times(image: str, data: Path, runs: int) -> list[float]:
    entrypoint = json.loads(
        sh("docker", "image", "inspect", "--format", "{{json .Config.Entrypoint}}", image)
    )[0]
    script = (
        f'i=0; while [ $i -lt {runs} ]; do s=$(date +%s%N); "$0" "$@" 2>/dev/null; '
        "e=$(date +%s%N); echo $((e - s)); i=$((i + 1)); done"
    )
    out = sh(
        "docker", "run", "--rm", *mounts(data), "--entrypoint", "/bin/sh", image,
        "-c", script, entrypoint, *RUN,
    )  # fmt: skip
    return [int(line) / 1e9 for line in out.split()]


def app_pid(image: str, data: Path) -> str:
    argv = ["run", "--db", "/data/app.db", "--migrations", "/m", "--", "/bin/sh", "-c", "echo $$"]
    return sh("docker", "run", "--rm", *mounts(data), image, *argv).strip()


def bundle_size_kib(image: str) -> int:
    out = sh("docker", "run", "--rm", "--entrypoint", "du", image, "-sk", "/opt/litedeploy")
    return int(out.split()[0])


def ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms (min {min(values) * 1000:.0f})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--onefile", action="store_true", help="also build and time onefile")
    parser.add_argument("--keep", action="store_true", help="keep the bench images")
    args = parser.parse_args()

    litedeploy = litedeploy_image()
    for ref in (litedeploy, BASE, NOPYTHON):
        sh("docker", "image", "inspect", ref)  # exits with a message when one is missing
    images = {
        "bundle": f"{REPO}:bundle",
        "venv": f"{REPO}:venv",
        "nopy": f"{REPO}:nopy",
    }
    build_seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="litedeploy-bench-bundle-") as tmp:
        empty = Path(tmp) / "context"
        empty.mkdir()
        build_from(
            COPY_DOCKERFILE.format(litedeploy=litedeploy, base=BASE), images["bundle"], empty
        )
        build_from(
            COPY_DOCKERFILE.format(litedeploy=litedeploy, base=NOPYTHON), images["nopy"], empty
        )
        build_seconds["venv"] = build_from(VENV_DOCKERFILE.format(base=BASE), images["venv"], ROOT)
        if args.onefile:
            images["onefile"] = f"{REPO}:onefile"
            started = time.perf_counter()
            sh(
                "docker", "build", "-q", "-t", images["onefile"],
                "--build-arg", f"BUILDER_IMAGE={BASE}", "--build-arg", f"BASE_IMAGE={BASE}",
                "--build-arg", "PIP_ARGS=--no-index --find-links /src/wheels",
                "--build-arg", f"DOCKER_CLI_IMAGE={DOCKER_CLI}",
                "--build-arg", "BUNDLE_MODE=onefile", ROOT,
            )  # fmt: skip
            build_seconds["onefile"] = time.perf_counter() - started

        print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs; {args.runs} runs each")
        print(f"litedeploy image: {litedeploy} ({image_size(litedeploy) / 1e6:.1f} MB)")
        print("\nsize")
        on_disk = {"bundle (onedir)": bundle_size_kib(litedeploy) * 1024}
        if args.onefile:
            on_disk["bundle (onefile)"] = bundle_size_kib(images["onefile"]) * 1024
        for name, size in on_disk.items():
            print(f"  {name} on disk (du -sk /opt/litedeploy): {size / 2**20:.1f} MiB")
        sizes = {name: image_size(image) for name, image in images.items()}
        base, nopython = image_size(BASE), image_size(NOPYTHON)
        added = {
            "the bundle to Debian 12 without Python (nopy)": sizes["nopy"] - nopython,
            "the bundle to litedeploy-base (bundle)": sizes["bundle"] - base,
            "the venv install to litedeploy-base (venv)": sizes["venv"] - base,
            "python3 + venv + sqlite3 to Debian 12 (base - nopython)": base - nopython,
        }
        for name, size in added.items():
            print(f"  added by {name + ':':<58}{size / 1e6:6.1f} MB")

        print("\nstart-up: entrypoint run -- true, nothing pending (median, min)")
        print(f"  {'image':<10}{'docker run':>24}{'in-container':>24}   app's pid")
        for name, image in images.items():
            data = Path(tmp) / f"data-{name}"
            data.mkdir()
            sh("docker", "run", "--rm", *mounts(data), image, *RUN[:-2])  # migrate once
            in_container_times(image, data, 2)  # warm the page cache
            inside = in_container_times(image, data, args.runs)
            whole = docker_run_times(image, data, args.runs)
            print(f"  {name:<10}{ms(whole):>24}{ms(inside):>24}   {app_pid(image, data)}")
        if build_seconds:
            print("\nbuild: " + ", ".join(f"{k} {v:.0f} s" for k, v in build_seconds.items()))
    if not args.keep:
        sh("docker", "rmi", *images.values())


if __name__ == "__main__":
    main()
