"""Helpers for the Node example's Docker tests: its release images and what is inside them.

The images are built from examples/node-shop/Dockerfile FROM the Node base image without Python
(scripts/docker.sh: ensure_node_base_image), with the node_modules npm installed on the host
(ensure_node_shop_modules) and /opt/litedeploy copied from LITEDEPLOY_IMAGE (the project image
litedeploy:<version>, which scripts/test.sh builds: ensure_litedeploy_image).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from stack import ROOT, CommandError, image_exists, litedeploy_image, run

NODE_SHOP = ROOT / "examples" / "node-shop"
NODE_COMPOSE = ROOT / "docker-compose.yml"
ONE_SHOT_COMPOSE = NODE_SHOP / "docker-compose.one-shot.yml"
NODE_REPO = "litedeploy-node-shop"
PLAIN_REPO = "litedeploy-node-shop-plain"  # the app alone: the Dockerfile's `app` target
# What each release's image is built with: its migrations folder, and v4's bug.
RELEASES: dict[str, dict[str, str]] = {
    "v1": {"MIGRATIONS": "releases/v1/drizzle"},
    "v2": {"MIGRATIONS": "releases/v2/drizzle"},
    "v3": {"MIGRATIONS": "releases/v3/drizzle"},
    "v4": {"MIGRATIONS": "drizzle", "SHOP_FAIL": "crash"},
    # v2's expand-only migration in a release that crashes a second after it starts, and in
    # one that crashes 15 s after (healthy and stable first: after the proxy switched to it).
    "v2-crash": {"MIGRATIONS": "releases/v2/drizzle", "SHOP_FAIL": "crash"},
    "v2-crash-later": {"MIGRATIONS": "releases/v2/drizzle", "SHOP_FAIL": "crash-later"},
}


def node_base_image() -> str:
    return os.environ.get("LITEDEPLOY_NODE_BASE_IMAGE", "litedeploy-node-base:bookworm")


def build_node_shop(
    ref: str, *, target: str | None = None, args: dict[str, str] | None = None
) -> str:
    """Build examples/node-shop as `ref` (layers cached: the releases share all but the last)."""
    needed = {
        node_base_image(): "ensure_node_base_image",
        litedeploy_image(): "ensure_litedeploy_image",
    }
    for image, step in needed.items():
        if not image_exists(image):
            raise CommandError(f"image {image} is missing: scripts/test.sh builds it ({step})")
    if not (NODE_SHOP / "node_modules" / "better-sqlite3").is_dir():
        raise CommandError(
            "examples/node-shop/node_modules is missing: scripts/test.sh installs it "
            "(ensure_node_shop_modules)"
        )
    build_args = {
        "NODE_BASE": node_base_image(),
        "LITEDEPLOY_IMAGE": litedeploy_image(),
        **(args or {}),
    }
    argv = ["docker", "build", "-q", "-t", ref]
    for key, value in build_args.items():
        argv += ["--build-arg", f"{key}={value}"]
    if target:
        argv += ["--target", target]
    run([*argv, NODE_SHOP], timeout=600)
    return ref


def build_release(release: str, tag: str) -> str:
    """`litedeploy-node-shop:TAG`, the image of one release (v1 .. v4)."""
    return build_node_shop(f"{NODE_REPO}:{tag}", args=RELEASES[release])


def pythons(image: str, *, outside: str = "/opt/litedeploy") -> list[str]:
    """Python interpreters and libraries in the image (files and links named python* or
    libpython*, outside one folder), and whatever `python3` or `python` finds on its PATH."""
    script = (
        f"find / -xdev -path {outside} -prune -o \\( -name 'python*' -o -name 'libpython*' \\)"
        " \\( -type f -o -type l \\) -print; command -v python3 python || true"
    )
    out = run(["docker", "run", "--rm", "--entrypoint", "/bin/sh", image, "-c", script]).stdout
    return out.split()


def drizzle_migrate(image: str, data: Path) -> dict[str, Any]:
    """drizzle-orm's own migrate() (the app's src/migrate.js) on the database in `data`, inside
    the image, without litedeploy's entrypoint: its JSON report (error, row counts)."""
    result = run(
        [
            "docker",
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "node",
            "-v",
            f"{data}:/data",
            image,
            "src/migrate.js",
        ],
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    if not lines:
        raise CommandError(f"src/migrate.js printed nothing (exit {result.returncode})")
    report: dict[str, Any] = json.loads(lines[-1])
    return report
