"""The example stack as the drizzle team runs it: a Node shop (drizzle-orm, better-sqlite3) whose
image has no Python and gets litedeploy's entrypoint with one COPY, deployed through its four
releases with Compose v1 and v2. v3 is drizzle-kit's table rebuild under a cascading child: every
review survives it here, and drizzle's own migrate() run on a copy of the same database deletes
them all. v4 crashes after migrating: rolled back, the database restored byte for byte."""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest
from node_stack import NODE_REPO, drizzle_migrate, node_base_image, pythons
from stack import Stack, container_logs, docker, free_port
from test_deploy_scenarios import EXIT_DEPLOYED, EXIT_ROLLED_BACK, deploy, dump, history

pytestmark = pytest.mark.docker

PRODUCTS = [
    {"name": "Lamp", "description": "Brass, 40 cm", "price": 4900},
    {"name": "Desk", "description": "", "price": 24900},
    {"name": "Chair", "description": "Oak", "price": 12900},
]
REVIEWS = [
    {"product_id": 1, "author": "ann", "rating": 5, "body": "Bright and warm"},
    {"product_id": 2, "author": "bo", "rating": 3, "body": "Wobbles a bit"},
    {"product_id": 2, "author": "cy", "rating": 4, "body": "Roomy"},
    {"product_id": 3, "author": "di", "rating": 5, "body": "Sturdy"},
]


def post(stack: Stack, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        stack.url(path),
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"null")


def copy_database(source: Path, target: Path) -> None:
    """A consistent copy of a live database (SQLite's online backup), for drizzle to run on."""
    target.parent.mkdir(parents=True, exist_ok=True)
    src = sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=10)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
    finally:
        dst.close()
        src.close()


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def deployed(stack: Stack, tag: str) -> dict[str, Any]:
    result = deploy(stack, "--tag", tag, "--json", "--health-timeout", "60")
    assert result.returncode == EXIT_DEPLOYED, result.stderr
    report: dict[str, Any] = json.loads(result.stdout)
    assert stack.wait_healthy()["Config"]["Image"] == f"{NODE_REPO}:{tag}"
    return report


def test_the_node_images_have_no_python(node_images: dict[str, str]) -> None:
    assert pythons(node_base_image(), outside="/nonexistent") == []
    # What the app image adds is the litedeploy bundle under /opt/litedeploy, nothing on PATH.
    assert pythons(node_images["v1"]) == []
    assert "node" in docker("run", "--rm", "--entrypoint", "/bin/sh", node_images["v1"], "-c", "ls")
    labels = json.loads(
        docker("image", "inspect", "--format", "{{json .Config}}", node_images["v1"])
    )
    assert labels["Entrypoint"] == ["/opt/litedeploy/entrypoint", "run", "--"]
    assert labels["Cmd"] == ["node", "src/server.js"]


def test_the_server_stops_at_once_on_sigterm(node_images: dict[str, str], tmp_path: Path) -> None:
    name = f"ldnode-{uuid.uuid4().hex[:10]}"
    port = free_port()
    data = tmp_path / "data"
    data.mkdir()
    publish, mount = f"127.0.0.1:{port}:8000", f"{data}:/data"
    docker("run", "-d", "--name", name, "-p", publish, "-v", mount, node_images["v2"])
    try:
        deadline = time.monotonic() + 30
        while docker("inspect", "--format", "{{.State.Health.Status}}", name).strip() != "healthy":
            assert time.monotonic() < deadline, container_logs(name)
            time.sleep(0.25)
        started = time.monotonic()
        docker("stop", "-t", "10", name)  # SIGTERM, then SIGKILL after 10 s
        assert time.monotonic() - started < 3
        assert docker("inspect", "--format", "{{.State.ExitCode}}", name).strip() == "0"
        assert "node-shop: SIGTERM: stopping" in container_logs(name)
    finally:
        docker("rm", "-f", "-v", name, check=False)


def test_releases_v1_to_v4_reviews_survive_the_rebuild_v4_rolls_back(
    node_stack: Stack, node_images: dict[str, str], tmp_path: Path
) -> None:
    stack = node_stack
    deployed(stack, "test-v1")
    assert stack.get("/products") == (200, [])
    for product in PRODUCTS:
        assert post(stack, "/products", product)[0] == 201
    assert post(stack, "/reviews", REVIEWS[0]) == (404, {"error": "reviews arrive with release v2"})

    deployed(stack, "test-v2")
    for review in REVIEWS:
        assert post(stack, "/reviews", review)[0] == 201
    assert post(stack, "/reviews", {**REVIEWS[0], "product_id": 99})[0] == 400  # foreign key
    reviews = stack.query("SELECT * FROM reviews ORDER BY id")
    assert len(reviews) == len(REVIEWS)

    # What drizzle's own migrate() does with v3 on this very data, on a copy.
    copy = tmp_path / "drizzle-copy"
    copy_database(stack.db_path, copy / "app.db")
    report = drizzle_migrate(node_images["v3"], copy)
    assert report["error"] is None  # drizzle reports success...
    assert report["before"]["reviews"] == len(REVIEWS)
    assert report["after"]["reviews"] == 0  # ...having deleted every review (ON DELETE CASCADE)

    v3 = deployed(stack, "test-v3")
    assert stack.query("SELECT * FROM reviews ORDER BY id") == reviews
    notnull = stack.query(
        "SELECT \"notnull\" FROM pragma_table_info('products') WHERE name = ?", ("description",)
    )
    assert notnull == [(0,)]  # the rebuild happened: description is optional now
    status, products = stack.get("/products")
    assert status == 200
    assert [p["reviews"] for p in products] == [1, 2, 1]
    assert json.loads(Path(v3["backup"] + ".json").read_text())["pending"] == [
        "0002_optional_description"
    ]

    before = dump(stack.db_path)
    result = deploy(stack, "--tag", "test-v4", "--json", "--health-timeout", "60")
    assert result.returncode == EXIT_ROLLED_BACK, result.stderr
    rolled = json.loads(result.stdout)
    assert rolled["outcome"] == "rolled-back"
    assert "crashing on purpose (SHOP_FAIL=crash)" in result.stderr
    assert "Applied 0003_add_shop_account" in result.stderr  # it crashed after migrating
    assert stack.wait_healthy()["Config"]["Image"] == f"{NODE_REPO}:test-v3"
    manifest = json.loads(Path(rolled["backup"] + ".json").read_text())
    assert manifest["pending"] == ["0003_add_shop_account"]
    assert sha256(stack.db_path) == manifest["sha256"]  # the pre-migration file, byte for byte
    assert dump(stack.db_path) == before
    assert stack.query("SELECT count(*) FROM users") == [(0,)]
    quarantined = sorted((stack.data_dir / "quarantine").glob("*/app.db"))
    assert quarantined, "the v4 database was not kept"
    migrated = sqlite3.connect(f"file:{quarantined[-1]}?mode=ro", uri=True)
    assert migrated.execute("SELECT email FROM users").fetchall() == [("shop@example.com",)]
    migrated.close()
    assert stack.get("/products") == (200, products)
    assert [r["outcome"] for r in history(stack)] == ["deployed"] * 3 + ["rolled-back"]
