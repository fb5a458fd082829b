"""The Docker test infrastructure works: the example stack comes up healthy with each Compose
version, and the demo's failure knobs and image variants behave as the deploy tests expect."""

from __future__ import annotations

import time
import urllib.error
import uuid
from pathlib import Path

import pytest
from stack import (
    V1,
    Stack,
    build_variant,
    demo_journal,
    docker,
    free_port,
    history_whens,
    http_get,
    query_db,
    run,
)

pytestmark = pytest.mark.docker

STOCK = "ALTER TABLE `products` ADD `stock` integer DEFAULT 0 NOT NULL;"


def test_v1_comes_up_healthy_and_migrated(stack: Stack) -> None:
    stack.up("v1")
    info = stack.wait_healthy()

    assert info["Config"]["Image"] == V1
    assert stack.get("/products") == (200, [])
    assert stack.get("/health") == (200, {"status": "ok"})
    assert history_whens(stack.db_path) == [entry["when"] for entry in demo_journal()]
    columns = [row[1] for row in stack.query("SELECT * FROM pragma_table_info('products')")]
    assert columns == ["id", "title", "price", "sku"]


def test_variant_that_crashes_after_migrating(demo_image: str, tmp_path: Path) -> None:
    image = build_variant(
        "smoke-crash", migrations={"0006_add_stock": STOCK}, env={"DEMO_FAIL": "crash"}
    )
    data = tmp_path / "data"
    data.mkdir()
    started = time.monotonic()
    result = run(["docker", "run", "--rm", "-v", f"{data}:/data", image], check=False, timeout=60)

    assert result.returncode == 3, result.stderr
    assert "crashing on purpose" in result.stderr
    assert time.monotonic() - started < 30
    db = data / "app.db"
    whens = [entry["when"] for entry in demo_journal()]
    assert history_whens(db) == [*whens, whens[-1] + 1000]
    columns = [row[1] for row in query_db(db, "SELECT * FROM pragma_table_info('products')")]
    assert columns == ["id", "title", "price", "sku", "stock"]


def test_unhealthy_knob_fails_health_only(demo_image: str, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    name = f"ldtest-{uuid.uuid4().hex[:10]}"
    docker(
        "run",
        "-d",
        "--name",
        name,
        "-p",
        f"127.0.0.1:{port}:8000",
        "-v",
        f"{data}:/data",
        "-e",
        "DEMO_FAIL=unhealthy",
        demo_image,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = http_get(f"http://127.0.0.1:{port}/health", timeout=2)
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, docker("logs", name, check=False)
                time.sleep(0.2)
        assert status == 503, body
        assert http_get(f"http://127.0.0.1:{port}/products") == (200, [])
    finally:
        docker("rm", "-f", "-v", name, check=False)
