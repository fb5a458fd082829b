"""`deploy` run by an operator who is in the `docker` group but not root, as most teams run
it: the host CLI (the PyInstaller bundle from the litedeploy image, copied out) in a stack
folder the operator owns, with ./data made by Docker as root and handed by the entrypoint
to the app's user, and the backups root-only. A release that crashes after migrating is
rolled back with the database restored; `deploy restore --latest` works; the tag is pinned.
Both Compose flavours. The operator is $LITEDEPLOY_OPERATOR (scripts/test.sh creates it).
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from stack import (
    DEMO_COMPOSE,
    DEMO_REPO,
    V1,
    V1_TAG,
    Stack,
    build_variant,
    docker,
    free_port,
)
from test_deploy_scenarios import post_review

from deploy.pin import pinned

pytestmark = pytest.mark.docker

STOCK = "ALTER TABLE `products` ADD `stock` integer DEFAULT 0 NOT NULL;"


@pytest.fixture(scope="module")
def crash(demo_image: str) -> str:
    return build_variant(
        "nonroot-crash", migrations={"0006_add_stock": STOCK}, env={"DEMO_FAIL": "crash"}
    )


@pytest.fixture(scope="module")
def release(demo_image: str) -> str:
    return build_variant("nonroot-v2", migrations={"0006_add_stock": STOCK})


@pytest.fixture
def stack(
    workspace: Path,
    operator: pwd.struct_passwd,
    host_cli: Path,
    compose_flavour: str,
    demo_image: str,
) -> Iterator[Stack]:
    folder = workspace / f"stack-{uuid.uuid4().hex[:8]}"
    folder.mkdir()
    shutil.copy(DEMO_COMPOSE, folder / "docker-compose.yml")
    os.chown(folder, operator.pw_uid, operator.pw_gid)
    os.chown(folder / "docker-compose.yml", operator.pw_uid, operator.pw_gid)
    # ./data is not made here: Docker makes a missing bind-mount source, as root.
    s = Stack(
        dir=folder,
        project=f"ldnonroot-{uuid.uuid4().hex[:10]}",
        port=free_port(),
        flavour=compose_flavour,
        operator=operator,
        host_cli=host_cli,
    )
    try:
        yield s
    finally:
        s.down()
        shutil.rmtree(folder, ignore_errors=True)


def as_operator(
    stack: Stack, cli: Path, account: pwd.struct_passwd, *args: str
) -> subprocess.CompletedProcess[str]:
    assert (stack.operator, stack.host_cli) == (account, cli)
    return stack.run_deploy(*args, timeout=300)


def dump(db: Path) -> list[str]:
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return list(conn.iterdump())  # closed: an open WAL connection would block a restore


def seeded(stack: Stack, cli: Path, account: pwd.struct_passwd) -> None:
    """v1 deployed by the operator, a product and a review in the database."""
    first = as_operator(stack, cli, account, "--tag", V1_TAG)
    assert first.returncode == 0, first.stderr
    with contextlib.closing(sqlite3.connect(stack.db_path)) as conn, conn:  # the test is root
        conn.execute("INSERT INTO products(id, title, price, sku) VALUES (1, 'Lamp', 12, 'L-1')")
    post_review(stack, "fine")


def test_a_non_root_operator_rolls_back_by_hand_counting_the_writes(
    stack: Stack, host_cli: Path, operator: pwd.struct_passwd, release: str
) -> None:
    """deploy rollback as the operator: the writes since the deploy are counted from the
    root-only backup, the previous image is rehearsed on a snapshot of that backup, and
    --discard-writes restores it."""
    seeded(stack, host_cli, operator)
    before = dump(stack.db_path)
    deployed = as_operator(stack, host_cli, operator, "--tag", release.rpartition(":")[2])
    assert deployed.returncode == 0, deployed.stderr
    post_review(stack, "written after the deploy")

    refused = as_operator(stack, host_cli, operator, "rollback")
    assert refused.returncode == 3, refused.stderr
    assert "1 row(s) (reviews 1) written since would be dropped" in refused.stderr
    assert stack.wait_healthy()["Config"]["Image"] == release

    rolled = as_operator(stack, host_cli, operator, "rollback", "--discard-writes")
    assert rolled.returncode == 0, rolled.stderr
    assert "rehearsal of" in rolled.stderr
    assert stack.wait_healthy()["Config"]["Image"].startswith(f"{DEMO_REPO}:")
    assert dump(stack.db_path) == before
    assert not list(Path(stack.dir, ".litedeploy").glob("rehearsal-*"))  # cleaned up


def test_a_non_root_operator_deploys_rolls_back_and_restores(
    stack: Stack, host_cli: Path, operator: pwd.struct_passwd, crash: str
) -> None:
    seeded(stack, host_cli, operator)
    # What the operator cannot do on the host: read the backups, write the data folder.
    assert os.stat(stack.data_dir).st_uid != operator.pw_uid
    before = dump(stack.db_path)

    failed = as_operator(
        stack, host_cli, operator, "--tag", crash.rpartition(":")[2], "--health-timeout", "45"
    )

    assert failed.returncode == 5, failed.stderr
    assert f"rolled back to {V1}" in failed.stderr
    assert "database restored from" in failed.stderr
    backups = stack.data_dir / "backups"
    assert backups.stat().st_mode & 0o077 == 0 and backups.stat().st_uid == 0  # root-only
    assert stack.wait_healthy()["Config"]["Image"] == V1
    assert dump(stack.db_path) == before
    assert pinned(stack.dir / ".env", "APP_TAG") == V1_TAG
    assert os.stat(stack.dir / ".env").st_uid == operator.pw_uid

    status = as_operator(stack, host_cli, operator, "status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["latest_backups"], "the root-only backups are listed through the engine"
    assert info["migrations"].startswith("6 applied, latest 0005_")

    restored = as_operator(stack, host_cli, operator, "restore", "--latest", "--json")

    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert report["outcome"] == "restored" and report["quarantine"]
    assert stack.wait_healthy()["Config"]["Image"] == V1
    with contextlib.closing(sqlite3.connect(stack.db_path)) as conn:
        assert "stock" not in [r[1] for r in conn.execute("PRAGMA table_info(products)")]
    assert Path(report["quarantine"]).parent == stack.data_dir / "quarantine"
    assert docker("image", "inspect", f"{DEMO_REPO}:{V1_TAG}", "--format", "{{.Id}}")
