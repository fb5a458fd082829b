"""`deploy` against a real Docker engine and real Compose (v1 and v2), each scenario checked by
the database's content: deploys that work, fail in the rehearsal, crash after migrating, never
become healthy, and the errors that must touch nothing."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from stack import DEMO_REPO, ROOT, V1, V1_TAG, Stack, build_variant, docker

from deploy.pin import pinned

pytestmark = pytest.mark.docker

VISITS = "CREATE TABLE `visits` (`id` integer PRIMARY KEY NOT NULL, `at` text);"
STOCK = "ALTER TABLE `products` ADD `stock` integer DEFAULT 0 NOT NULL;"
BROKEN = "ALTER TABLE `products` ADD `stock` integer NOT NULL;"  # fails: products has rows

EXIT_DEPLOYED, EXIT_CONFIG, EXIT_PREFLIGHT, EXIT_ABORTED, EXIT_ROLLED_BACK = 0, 2, 3, 4, 5
EXIT_LOCK_HELD = 7


def snapshot_with_stock() -> str:
    """The demo's newest drizzle-kit snapshot plus products.stock: what push mode declares."""
    data = json.loads((ROOT / "demo" / "migrations" / "meta" / "0005_snapshot.json").read_text())
    data["tables"]["products"]["columns"]["stock"] = {
        "name": "stock",
        "type": "integer",
        "primaryKey": False,
        "notNull": True,
        "autoincrement": False,
        "default": 0,
    }
    return json.dumps(data, indent=2)


@pytest.fixture(scope="module")
def variants(demo_image: str) -> dict[str, str]:
    """The releases the scenarios deploy, built once: FROM v1 plus migrations and knobs."""
    return {
        "v2": build_variant("scn-v2", migrations={"0006_add_visits": VISITS}),
        "stock": build_variant("scn-stock", migrations={"0006_add_stock": STOCK}),
        "broken": build_variant("scn-broken", migrations={"0006_add_stock": BROKEN}),
        "crash": build_variant(
            "scn-crash", migrations={"0006_add_stock": STOCK}, env={"DEMO_FAIL": "crash"}
        ),
        "unhealthy": build_variant(
            "scn-unhealthy", migrations={"0006_add_stock": STOCK}, env={"DEMO_FAIL": "unhealthy"}
        ),
        "push": build_variant("scn-push", files={"meta/0006_snapshot.json": snapshot_with_stock()}),
        # An image that runs its server directly: no litedeploy entrypoint to rehearse with.
        "no-entrypoint": build_variant(
            "scn-no-entrypoint", migrations={"0006_add_stock": STOCK}, entrypoint=[]
        ),
        "code-only": build_variant(
            "scn-code-only", env={"DEMO_NOTE": "a release without migrations"}
        ),
        "push-prod": build_variant(
            "scn-push-prod",
            files={"meta/0006_snapshot.json": snapshot_with_stock()},
            env={"APP_ENV": "production"},
        ),
    }


def deploy(
    stack: Stack, *args: str, timeout: float = 240, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run `deploy` in the stack's folder with its Compose flavour, as root or the operator."""
    return stack.run_deploy(*args, env=env, timeout=timeout)


def tag_of(image: str) -> str:
    return image.rpartition(":")[2]


def dump(db: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def columns(db: Path, table: str) -> list[str]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [r[1] for r in conn.execute("SELECT * FROM pragma_table_info(?)", (table,))]
    finally:
        conn.close()


def history(stack: Stack) -> list[dict[str, Any]]:
    path = stack.dir / ".litedeploy" / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def plain_restart(stack: Stack) -> str:
    """`compose down` then `compose up -d` without APP_TAG, as an operator would; the image
    that then runs healthy."""
    env = {k: v for k, v in stack.env().items() if k != "APP_TAG"}
    argv = [*stack.compose_command, "-p", stack.project, "-f", str(stack.compose_file)]
    for args in (["down"], ["up", "-d"]):
        done = subprocess.run(
            [*argv, *args], cwd=stack.dir, env=env, capture_output=True, text=True, timeout=180
        )
        assert done.returncode == 0, done.stderr
    return str(stack.wait_healthy()["Config"]["Image"])


def running_image(stack: Stack) -> str:
    return str(stack.inspect()["Config"]["Image"])


def seed(stack: Stack) -> None:
    """v1 running and serving, with rows the app wrote (a review per product)."""
    result = deploy(stack, "--tag", V1_TAG)
    assert result.returncode == EXIT_DEPLOYED, result.stderr
    conn = sqlite3.connect(stack.db_path, timeout=10)
    with conn:
        conn.execute("INSERT INTO products(id, title, price, sku) VALUES (1, 'Lamp', 12, 'L-1')")
        conn.execute("INSERT INTO products(id, title, price, sku) VALUES (2, 'Desk', 99, 'D-1')")
    conn.close()
    for product in (1, 2):
        body = json.dumps({"product_id": product, "body": "fine"}).encode()
        request = urllib.request.Request(stack.url("/reviews"), data=body, method="POST")
        with urllib.request.urlopen(request, timeout=5) as response:
            assert response.status == 201


@contextmanager
def probing(stack: Stack, every: float = 0.05) -> Iterator[dict[str, int]]:
    """Poll the app every 50 ms while the block runs; count answers and failures."""
    seen = {"ok": 0, "failed": 0}
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                with urllib.request.urlopen(stack.url("/products"), timeout=2) as r:
                    seen["ok" if r.status == 200 else "failed"] += 1
            except (urllib.error.URLError, OSError):
                seen["failed"] += 1
            stop.wait(every)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        stop.set()
        thread.join(timeout=5)


def test_first_deploy_then_a_release_with_one_migration(
    stack: Stack, variants: dict[str, str]
) -> None:
    seed(stack)
    before = dump(stack.db_path)

    result = deploy(stack, "--tag", tag_of(variants["v2"]), "--json")

    assert result.returncode == EXIT_DEPLOYED, result.stderr
    report = json.loads(result.stdout)
    assert report["outcome"] == "deployed"
    assert report["from_image"] == V1
    assert report["to_image"] == variants["v2"]
    assert running_image(stack) == variants["v2"]
    assert stack.health() == "healthy"
    assert "visits" in {r[0] for r in stack.query("SELECT name FROM sqlite_master")}
    assert stack.query("SELECT count(*) FROM reviews") == [(2,)]
    # The entrypoint's backup at cutover carries this deploy's id and the pre-deploy content.
    manifest = json.loads(Path(report["backup"] + ".json").read_text())
    assert manifest["deploy_id"] == report["deploy_id"]
    assert manifest["pending"] == ["0006_add_visits"]
    assert dump(Path(report["backup"])) == before
    outcomes = [r["outcome"] for r in history(stack)]
    assert outcomes == ["deployed", "deployed"]
    for step in ("preflight", "rehearsal on a snapshot", "health"):
        assert step in report["durations"]


@pytest.mark.operator_too
def test_failing_migration_is_caught_by_the_rehearsal(
    stack: Stack, variants: dict[str, str]
) -> None:
    seed(stack)
    before = dump(stack.db_path)
    container = stack.container()

    with probing(stack) as seen:
        result = deploy(stack, "--tag", tag_of(variants["broken"]))

    assert result.returncode == EXIT_ABORTED, result.stderr
    assert "production was not touched" in result.stderr
    assert "Cannot add a NOT NULL column" in result.stderr
    assert stack.container() == container  # v1 was never stopped
    assert running_image(stack) == V1
    assert seen["failed"] == 0 and seen["ok"] > 0, seen
    assert dump(stack.db_path) == before
    assert history(stack)[-1]["outcome"] == "aborted"


def test_an_image_without_the_entrypoint_is_named_as_such(
    stack: Stack, variants: dict[str, str]
) -> None:
    seed(stack)
    before = dump(stack.db_path)
    result = deploy(stack, "--tag", tag_of(variants["no-entrypoint"]), "--health-timeout", "20")
    assert result.returncode == EXIT_ABORTED, result.stderr
    [error] = [line for line in result.stderr.splitlines() if "error:" in line]
    assert "does not run litedeploy's entrypoint" in error
    assert "fix the migration" not in result.stderr
    assert "COPY --from=litedeploy" in result.stderr
    assert stack.wait_healthy()["Config"]["Image"] == V1
    assert dump(stack.db_path) == before


def test_push_deploy_syncs_the_declared_schema_on_staging(
    stack: Stack, variants: dict[str, str]
) -> None:
    seed(stack)
    reviews = stack.query("SELECT * FROM reviews ORDER BY id")

    result = deploy(stack, "--tag", tag_of(variants["push"]), "--push", "--json")

    assert result.returncode == EXIT_DEPLOYED, result.stderr
    assert running_image(stack) == variants["push"]
    assert "LITEDEPLOY_MIGRATE_MODE=push" in stack.inspect()["Config"]["Env"]
    assert "stock" in columns(stack.db_path, "products")  # pushed, not migrated:
    assert len(stack.query("SELECT * FROM __drizzle_migrations")) == 6  # no history row added
    assert stack.query("SELECT * FROM reviews ORDER BY id") == reviews
    assert stack.query("SELECT id, stock FROM products ORDER BY id") == [(1, 0), (2, 0)]


def test_push_deploy_to_production_is_refused_before_cutover(
    stack: Stack, variants: dict[str, str]
) -> None:
    seed(stack)
    before = dump(stack.db_path)
    container = stack.container()

    result = deploy(stack, "--tag", tag_of(variants["push-prod"]), "--push")

    assert result.returncode == EXIT_ABORTED, result.stderr
    assert "push mode is refused in production" in result.stderr
    assert stack.container() == container  # v1 was never stopped
    assert dump(stack.db_path) == before


@pytest.mark.operator_too
@pytest.mark.parametrize("variant", ["crash", "unhealthy"])
def test_release_that_fails_after_migrating_is_rolled_back(
    stack: Stack, variants: dict[str, str], variant: str
) -> None:
    seed(stack)
    before = dump(stack.db_path)

    result = deploy(stack, "--tag", tag_of(variants[variant]), "--health-timeout", "45")

    assert result.returncode == EXIT_ROLLED_BACK, result.stderr
    assert f"rolled back to {V1}" in result.stderr
    assert "  | " in result.stderr  # the failing container's last log lines
    assert running_image(stack).startswith(f"{DEMO_REPO}:")
    assert stack.wait_healthy()["Config"]["Image"] != variants[variant]
    assert stack.get("/products")[0] == 200
    assert dump(stack.db_path) == before
    assert "stock" not in columns(stack.db_path, "products")
    # The migrated database is kept in quarantine, not deleted.
    quarantined = sorted((stack.data_dir / "quarantine").glob("*/app.db"))
    assert quarantined, "the v2 database was not kept"
    assert "stock" in columns(quarantined[-1], "products")
    assert history(stack)[-1]["outcome"] == "rolled-back"
    # The tag that runs again is the one pinned for plain Compose.
    assert pinned(stack.dir / ".env", "APP_TAG") == tag_of(stack.wait_healthy()["Config"]["Image"])


def test_no_rehearse_with_a_failing_migration_rolls_back(
    stack: Stack, variants: dict[str, str]
) -> None:
    seed(stack)
    before = dump(stack.db_path)

    result = deploy(stack, "--tag", tag_of(variants["broken"]), "--no-rehearse")

    assert result.returncode == EXIT_ROLLED_BACK, result.stderr
    assert "rehearsal" not in json.dumps(history(stack)[-1]["durations"])
    assert stack.wait_healthy()["Config"]["Image"] != variants["broken"]
    assert stack.get("/products")[0] == 200
    assert dump(stack.db_path) == before


def test_errors_before_cutover_touch_nothing(stack: Stack, variants: dict[str, str]) -> None:
    seed(stack)
    before = dump(stack.db_path)
    container = stack.container()

    missing = deploy(stack, "--tag", "no-such-tag")
    assert missing.returncode == EXIT_PREFLIGHT, missing.stderr
    assert f"{DEMO_REPO}:no-such-tag is not on this Docker host" in missing.stderr

    no_service = deploy(stack, "--tag", V1_TAG, "--service", "web")
    assert no_service.returncode == EXIT_CONFIG, no_service.stderr
    assert "has no service 'web' (services: app)" in no_service.stderr

    (stack.dir / "deploy.yml").write_text("service: app\nhealth_timeout: [1, 2\n")
    malformed = deploy(stack, "--tag", V1_TAG)
    assert malformed.returncode == EXIT_CONFIG, malformed.stderr
    assert "deploy.yml is not valid YAML" in malformed.stderr
    (stack.dir / "deploy.yml").unlink()

    unreachable = deploy(
        stack, "--tag", V1_TAG, env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}
    )
    assert unreachable.returncode == EXIT_PREFLIGHT, unreachable.stderr
    assert "Docker is not reachable" in unreachable.stderr

    for result in (missing, no_service, malformed, unreachable):
        assert "Traceback" not in result.stderr
        assert sum(line.startswith("deploy: error:") for line in result.stderr.splitlines()) == 1
    assert stack.container() == container
    assert dump(stack.db_path) == before


def test_a_second_deploy_is_refused_while_one_holds_the_lock(
    stack: Stack, variants: dict[str, str]
) -> None:
    seed(stack)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from deploy.lock import deploy_lock\n"
            "with deploy_lock(Path(sys.argv[1]), 'other-deploy', 'litedeploy-demo:v9'):\n"
            "    print('held', flush=True); time.sleep(120)",
            str(stack.dir / ".litedeploy"),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        result = deploy(stack, "--tag", tag_of(variants["v2"]))
    finally:
        holder.kill()
        holder.wait()

    assert result.returncode == EXIT_LOCK_HELD, result.stderr
    assert "another deploy of this stack is running: deploy other-deploy" in result.stderr
    assert running_image(stack) == V1


def test_a_deploy_killed_mid_way_is_detected_and_the_next_one_recovers(
    stack: Stack, variants: dict[str, str]
) -> None:
    seed(stack)
    argv, how = stack.deploy_process(
        "--tag", tag_of(variants["unhealthy"]), "--health-timeout", "120"
    )
    killed = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, **how)
    assert killed.stderr is not None
    for line in killed.stderr:  # kill it while it waits for the new container's health
        if "cutover to" in line:
            break
    killed.send_signal(signal.SIGKILL)
    killed.wait()

    # The fixed release (same migration, no failure) recovers the stack.
    result = deploy(stack, "--tag", tag_of(variants["stock"]))

    assert result.returncode == EXIT_DEPLOYED, result.stderr
    assert "died" in result.stderr and "taking over" in result.stderr
    assert running_image(stack) == variants["stock"]
    assert stack.health() == "healthy"
    assert stack.query("SELECT count(*) FROM reviews") == [(2,)]


@pytest.fixture
def other_stacks_tags(variants: dict[str, str]) -> Iterator[list[str]]:
    """Rollback tags another stack sharing the repository made (a production beside this
    staging): old, so that any repository-wide pruning would take them first."""
    tags = [f"{DEMO_REPO}:rollback-2020010{n}T000000Z-other{n}" for n in range(1, 5)]
    for tag in tags:
        docker("tag", variants["stock"], tag)
    yield tags
    docker("image", "rm", *tags, check=False)


def tagged(repository: str) -> list[str]:
    return docker("image", "ls", repository, "--format", "{{.Repository}}:{{.Tag}}").split()


@pytest.mark.operator_too
def test_status_history_backup_and_manual_rollback(
    stack: Stack, variants: dict[str, str], other_stacks_tags: list[str]
) -> None:
    seed(stack)
    before = dump(stack.db_path)
    # v1 again (nothing pending): its image is kept as this stack's first rollback tag, the
    # one `prune` removes below
    assert deploy(stack, "--tag", V1_TAG).returncode == EXIT_DEPLOYED
    assert deploy(stack, "--tag", tag_of(variants["v2"])).returncode == EXIT_DEPLOYED
    # the deploys pruned their own old rollback tags (they keep 3), none of the other stack's
    assert set(other_stacks_tags) <= set(tagged(DEMO_REPO))
    history = json.loads(deploy(stack, "history", "--json").stdout)
    first_kept, _ = [r["rollback_image"] for r in history if r.get("rollback_image")]

    status = deploy(stack, "status", "--json")
    assert status.returncode == 0, status.stderr
    info = json.loads(status.stdout)
    assert info["running"]["image"] == variants["v2"]
    assert info["running"]["health"] == "healthy"
    assert info["migrations"].startswith("7 applied, latest 0006_add_visits")  # by name

    logs = deploy(stack, "logs", "-n", "5", "--json")
    assert logs.returncode == 0, logs.stderr
    assert 0 < len(json.loads(logs.stdout)["lines"]) <= 5

    made = deploy(stack, "backup", "--json")
    assert made.returncode == 0, made.stderr
    assert Path(json.loads(made.stdout)["path"]).is_file()

    # A plain `compose up` (a reboot script, a colleague) starts what deploy started: the
    # tag is pinned in the stack's .env.
    assert pinned(stack.dir / ".env", "APP_TAG") == tag_of(variants["v2"])
    restarted = plain_restart(stack)
    assert restarted == variants["v2"]

    rolled = deploy(stack, "rollback")
    assert rolled.returncode == 0, rolled.stderr
    assert stack.wait_healthy()["Config"]["Image"].startswith(f"{DEMO_REPO}:rollback-")
    assert dump(stack.db_path) == before
    running = plain_restart(stack)
    assert running.startswith(f"{DEMO_REPO}:rollback-")
    assert dump(stack.db_path) == before

    # prune: rollback images older than 0 days, but never the running one.
    listed = deploy(stack, "prune", "--older-than", "0", "--dry-run", "--json")
    assert listed.returncode == 0, listed.stderr
    found = json.loads(listed.stdout)
    names = [r["name"] for r in found if r["what"] == "image"]
    assert names == [first_kept] and running != first_kept  # the other stack's: not listed
    assert all(docker("image", "inspect", name, "--format", "{{.Id}}") for name in names)
    # the rollback's quarantine folder (the v2 database it replaced) is listed too
    [kept] = [Path(r["name"]) for r in found if r["what"] == "quarantine"]
    assert kept.parent == stack.data_dir / "quarantine" and kept.is_dir()
    pruned = deploy(stack, "prune", "--older-than", "0")
    assert pruned.returncode == 0, pruned.stderr
    assert f"{len(found)} item(s) removed" in pruned.stdout
    assert not kept.exists()
    left = tagged(DEMO_REPO)
    assert running in left and not set(names) & set(left)
    assert set(other_stacks_tags) <= set(left)

    listed = deploy(stack, "history", "--json")
    outcomes = [r["outcome"] for r in json.loads(listed.stdout)]
    assert outcomes == ["deployed", "deployed", "deployed", "rolled-back-by-hand"]
    assert docker("image", "inspect", variants["v2"], "--format", "{{.Id}}").strip()


@pytest.mark.operator_too
def test_restore_puts_a_backup_back_and_keeps_newer_writes_in_quarantine(
    stack: Stack, variants: dict[str, str]
) -> None:
    seed(stack)
    made = deploy(stack, "backup", "--json")
    assert made.returncode == 0, made.stderr
    at_backup = dump(Path(json.loads(made.stdout)["path"]))
    body = json.dumps({"product_id": 1, "body": "written after the backup"}).encode()
    request = urllib.request.Request(stack.url("/reviews"), data=body, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201

    restored = deploy(stack, "restore", "--latest", "--json")

    assert restored.returncode == 0, restored.stderr
    report = json.loads(restored.stdout)
    assert report["outcome"] == "restored"
    assert stack.wait_healthy()["Config"]["Image"] == V1
    assert dump(stack.db_path) == at_backup
    kept = Path(report["quarantine"]) / "app.db"
    rows = (
        sqlite3.connect(f"file:{kept}?mode=ro", uri=True)
        .execute("SELECT count(*) FROM reviews WHERE body = 'written after the backup'")
        .fetchone()
    )
    assert rows == (1,)


def post_review(stack: Stack, body: str) -> None:
    data = json.dumps({"product_id": 1, "body": body}).encode()
    request = urllib.request.Request(stack.url("/reviews"), data=data, method="POST")
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status == 201


@pytest.mark.operator_too
def test_rollback_counts_writes_since_the_deploy_and_needs_discard_writes(
    stack: Stack, variants: dict[str, str]
) -> None:
    """A review written after the deploy: a plain rollback counts it and refuses before
    stopping anything; --discard-writes rolls back and keeps it in quarantine."""
    seed(stack)
    before = dump(stack.db_path)
    assert deploy(stack, "--tag", tag_of(variants["v2"])).returncode == EXIT_DEPLOYED
    post_review(stack, "written after the deploy")
    live = dump(stack.db_path)
    started = stack.inspect()["State"]["StartedAt"]

    refused = deploy(stack, "rollback")

    assert refused.returncode == EXIT_PREFLIGHT, refused.stderr
    [error] = [line for line in refused.stderr.splitlines() if "error:" in line]
    assert "1 row(s) (reviews 1) written since would be dropped" in error
    assert "nothing was stopped" in error and "--discard-writes" in refused.stderr
    info = stack.wait_healthy()
    assert info["Config"]["Image"] == variants["v2"] and info["State"]["StartedAt"] == started
    assert dump(stack.db_path) == live

    rolled = deploy(stack, "rollback", "--discard-writes")

    assert rolled.returncode == EXIT_DEPLOYED, rolled.stderr
    assert "--discard-writes: 1 row(s) (reviews 1)" in rolled.stderr
    assert stack.wait_healthy()["Config"]["Image"].startswith(f"{DEMO_REPO}:rollback-")
    assert dump(stack.db_path) == before
    [kept] = sorted((stack.data_dir / "quarantine").glob("*/app.db"))
    with sqlite3.connect(f"file:{kept}?mode=ro", uri=True) as conn:
        found = conn.execute("SELECT count(*) FROM reviews WHERE body = 'written after the deploy'")
        assert found.fetchone() == (1,)


@pytest.mark.operator_too
def test_rollback_onto_a_database_the_previous_image_refuses_stops_nothing(
    stack: Stack, variants: dict[str, str]
) -> None:
    """A release without migrations (so no backup), then a migration applied outside any
    deploy: the previous image would refuse the newer database, so the rollback refuses
    before stopping the healthy app, and says why."""
    seed(stack)
    assert deploy(stack, "--tag", tag_of(variants["code-only"])).returncode == EXIT_DEPLOYED
    # Out of band: someone runs the next release's entrypoint by hand on the live database.
    docker(
        "run",
        "--rm",
        "-v",
        f"{stack.data_dir}:/data",
        "-e",
        "DB_PATH=/data/app.db",
        variants["stock"],
        "true",
    )
    assert "stock" in columns(stack.db_path, "products")
    started = stack.inspect()["State"]["StartedAt"]
    live = dump(stack.db_path)

    refused = deploy(stack, "rollback")

    assert refused.returncode == EXIT_PREFLIGHT, refused.stderr
    [error] = [line for line in refused.stderr.splitlines() if line.startswith("deploy: error:")]
    assert "would not start on the database as it is now" in error
    assert "nothing was stopped" in error
    assert "missing from this image" in refused.stderr  # the previous image's own words
    assert "deploy restore" in refused.stderr
    info = stack.wait_healthy()
    assert info["Config"]["Image"] == variants["code-only"]
    assert info["State"]["StartedAt"] == started
    assert dump(stack.db_path) == live
    assert history(stack)[-1]["outcome"] == "rollback-refused"


@pytest.mark.operator_too
def test_a_rollback_that_fails_too_prints_logs_and_the_restore_command(
    stack: Stack, variants: dict[str, str]
) -> None:
    """Exit 6: the health wait of the previous version fails (an injected I/O error); the
    output holds both containers' logs and a restore command that works as given."""
    seed(stack)
    before = dump(stack.db_path)
    failed = deploy(
        stack,
        "--tag",
        tag_of(variants["crash"]),
        "--health-timeout",
        "45",
        env={"LITEDEPLOY_FAULT": "deploy.health-of.start:error"},
    )
    assert failed.returncode == 6, failed.stderr
    assert failed.stderr.count("  | ") >= 2  # log lines of the new and the previous container
    [hint] = [line for line in failed.stderr.splitlines() if "hint:" in line]
    [backup] = (stack.data_dir / "backups").glob("*.backup")
    assert f"`deploy restore {backup.name}`" in hint
    assert f"entrypoint restore --db {stack.db_path} {backup}" in hint

    restored = deploy(stack, "restore", backup.name)  # as the hint says, from the stack folder

    assert restored.returncode == 0, restored.stderr
    assert stack.wait_healthy()["Config"]["Image"] == V1
    assert dump(stack.db_path) == before
