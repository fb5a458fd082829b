"""A deploy SIGKILLed between each of its steps: the next deploy recovers, nothing is lost.

The deploy of a release that crashes after migrating (so it goes through the cutover and
the whole rollback) is killed at the start of each step (`faults.point` in
Deployer.step). Then, as an operator would, the fixed release is deployed: it must take
over the dead deploy's lock, deploy, and serve every row written before; and at no moment
may the app answer from an empty database. One Compose flavour (v2): each case is a fresh
stack, and the step logic does not depend on the flavour (test_deploy_scenarios covers
both).
"""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from stack import DEMO_COMPOSE, ROOT, Stack, free_port
from test_deploy_scenarios import (
    EXIT_DEPLOYED,
    deploy,
    running_image,
    seed,
    tag_of,
    variants,  # noqa: F401  (the module-scoped fixture the test uses)
)

# The steps of a deploy that crashes after migrating and is rolled back, in order.
STEPS = [
    "deploy.preflight.start",
    "deploy.record-the.start",
    "deploy.rehearsal-on.start",
    "deploy.strategy.start",  # recreate here: the demo stack has no proxy
    "deploy.cutover-to.start",
    "deploy.health.start",
    "deploy.stop-the.start",
    "deploy.restore-the.start",
    "deploy.bring-back.start",
    "deploy.health-of.start",
]


@contextmanager
def fresh_stack(tmp_path: Path) -> Iterator[Stack]:
    folder = tmp_path / "stack"
    folder.mkdir()
    shutil.copy(DEMO_COMPOSE, folder / "docker-compose.yml")
    (folder / "data").mkdir()
    s = Stack(
        dir=folder, project=f"ldfault-{uuid.uuid4().hex[:10]}", port=free_port(), flavour="v2"
    )
    try:
        yield s
    except BaseException:
        print(s.diagnostics())
        raise
    finally:
        s.down()


def rows(stack: Stack) -> tuple[int, int]:
    conn = sqlite3.connect(f"file:{stack.db_path}?mode=ro", uri=True, timeout=10)
    try:
        products = conn.execute("SELECT count(*) FROM products").fetchone()[0]
        reviews = conn.execute("SELECT count(*) FROM reviews").fetchone()[0]
    finally:
        conn.close()
    return int(products), int(reviews)


def served(stack: Stack) -> int | None:
    """How many products the app serves right now; None when it does not answer."""
    try:
        status, body = stack.get("/products", timeout=2)
    except Exception:  # not running, or not listening: serving nothing is fine
        return None
    return len(body) if status == 200 else None


def killed_deploy(stack: Stack, tag: str, fault: str, log: Path | None = None) -> int:
    env = {**stack.env(), "PYTHONPATH": str(ROOT), "LITEDEPLOY_FAULT": fault}
    if log is not None:
        env["LITEDEPLOY_FAULT_LOG"] = str(log)
    argv = [sys.executable, "-m", "deploy", "--compose", stack.flavour, "--tag", tag]
    argv += ["--health-timeout", "45"]
    proc = subprocess.run(argv, cwd=stack.dir, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode


def test_the_steps_are_the_ones_the_suite_kills(
    tmp_path: Path,
    demo_image: str,
    variants: dict[str, str],  # noqa: F811
) -> None:
    with fresh_stack(tmp_path) as stack:
        seed(stack)
        log = tmp_path / "points.log"
        code = killed_deploy(stack, tag_of(variants["crash"]), "none", log)
        assert code == 5  # rolled back
        seen = [line.split("@")[0] for line in log.read_text().splitlines()]
        assert [p for p in seen if p.endswith(".start")] == STEPS


@pytest.mark.parametrize("point", STEPS)
def test_a_deploy_killed_at_each_step_is_recovered_by_the_next(
    tmp_path: Path,
    demo_image: str,
    variants: dict[str, str],  # noqa: F811
    point: str,
) -> None:
    with fresh_stack(tmp_path) as stack:
        seed(stack)
        before = rows(stack)
        code = killed_deploy(stack, tag_of(variants["crash"]), point)
        assert code == -9, f"the deploy was not killed at {point} (exit {code})"
        # whatever runs now never serves an empty database
        assert rows(stack) == before
        assert served(stack) in (None, before[0])
        result = deploy(stack, "--tag", tag_of(variants["stock"]))
        assert result.returncode == EXIT_DEPLOYED, result.stderr
        assert running_image(stack) == variants["stock"]
        assert stack.health() == "healthy"
        assert rows(stack) == before  # every product and review the app wrote
