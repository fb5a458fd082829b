"""Start-first or recreate (deploy/strategy.py), and the proxy's upstream file (deploy/proxy.py):
the choice for every combination, the plan it reads (the real `entrypoint plan --json` of the
example's releases), the `docker run` it builds, and the settings that configure it."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path, PurePosixPath

import pytest

from deploy.compose import Compose, Flavour, Service
from deploy.config import Settings, settings, validate
from deploy.errors import ConfigError
from deploy.proxy import Proxy
from deploy.runner import Result
from deploy.stack import Stack
from deploy.strategy import Strategy, Undecided, Verdict, choose, plan_argv, program_of, read_plan

ROOT = Path(__file__).resolve().parent.parent
RELEASES = ROOT / "examples" / "node-shop" / "releases"
SECRET = "s3cr3t-value-never-on-argv"

EXPAND = Verdict(pending=("0001_add_reviews",), expand_only=True, contract=())
CONTRACT = Verdict(
    pending=("0002_optional_description",),
    expand_only=False,
    contract=("0002_optional_description statement 4: rebuilds table products",),
)


# -- the choice -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("wanted", "proxy", "running", "push", "verdict", "expected", "why"),
    [
        ("auto", True, True, False, EXPAND, "start-first", "expand-only: the running version"),
        ("auto", True, True, False, CONTRACT, "recreate", "not expand-only: 0002_optional"),
        ("auto", True, True, False, "cannot tell: old image", "recreate", "cannot tell"),
        ("auto", False, True, False, EXPAND, "recreate", "no proxy"),
        ("auto", True, False, False, EXPAND, "recreate", "nothing runs yet"),
        ("auto", True, True, True, EXPAND, "recreate", "push mode"),
        ("recreate", True, True, False, EXPAND, "recreate", "strategy: recreate in the settings"),
        ("start-first", True, True, False, CONTRACT, "start-first", "start-first in the settings"),
        ("start-first", True, False, False, None, "recreate", "nothing runs yet"),
        (
            "auto",
            True,
            True,
            False,
            Verdict((), True, ()),
            "start-first",
            "nothing pending",
        ),
    ],
)
def test_the_choice(
    wanted: str,
    proxy: bool,
    running: bool,
    push: bool,
    verdict: Verdict | str | None,
    expected: str,
    why: str,
) -> None:
    choice = choose(wanted, proxy=proxy, running=running, push=push, verdict=verdict)
    assert choice.strategy == Strategy(expected)
    assert why in choice.reason
    assert choice.line().startswith(f"strategy: {expected} (")


def test_a_forced_start_first_still_says_what_the_analysis_found() -> None:
    choice = choose("start-first", proxy=True, running=True, push=False, verdict=CONTRACT)
    assert "rebuilds table products" in choice.reason


# -- the plan it reads: the real `entrypoint plan --json` -----------------------------------------


def plan(tmp_path: Path, applied: str, release: str) -> Result:
    """`entrypoint plan --json` of `release`'s migrations on a database migrated to `applied`."""
    db = tmp_path / "app.db"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    entry = [sys.executable, "-m", "entrypoint"]
    subprocess.run(
        [*entry, "run", "--db", str(db), "--migrations", str(RELEASES / applied / "drizzle")],
        env=env,
        check=True,
        capture_output=True,
    )
    done = subprocess.run(
        [
            *entry,
            "plan",
            "--json",
            "--db",
            str(db),
            "--migrations",
            str(RELEASES / release / "drizzle"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    return Result((), done.returncode, done.stdout, done.stderr)


def test_the_plan_of_an_expand_only_release(tmp_path: Path) -> None:
    verdict = read_plan(plan(tmp_path, "v1", "v2"))
    assert verdict == Verdict(pending=("0001_add_reviews",), expand_only=True, contract=())


def test_the_plan_of_a_rebuild(tmp_path: Path) -> None:
    verdict = read_plan(plan(tmp_path, "v2", "v3"))
    assert verdict.pending == ("0002_optional_description",)
    assert not verdict.expand_only
    assert "rebuilds table products" in verdict.contract[0]


def test_nothing_pending_is_expand_only(tmp_path: Path) -> None:
    verdict = read_plan(plan(tmp_path, "v2", "v2"))
    assert verdict == Verdict(pending=(), expand_only=True, contract=())


@pytest.mark.parametrize(
    ("result", "said"),
    [
        (Result((), 2, "", "No such command 'plan'."), "exited 2"),
        (Result((), 0, "not json", ""), "does not say whether"),
        (Result((), 0, '{"migrations": []}', ""), "does not say whether"),  # an older litedeploy
        (Result((), 0, '{"migrations": [], "expand_only": "yes"}', ""), "no expand-only verdict"),
    ],
)
def test_a_plan_it_cannot_read_is_undecided(result: Result, said: str) -> None:
    with pytest.raises(Undecided, match=said):
        read_plan(result)


def test_a_blocking_finding_still_gives_a_verdict() -> None:
    text = '{"migrations": [{"name": "0001_x"}], "expand_only": false, "contract_changes": ["a"]}'
    assert read_plan(Result((), 15, text, "")).contract == ("a",)


# -- the container that runs the plan -------------------------------------------------------------


def test_program_of_an_entrypoint() -> None:
    assert program_of(["/opt/litedeploy/entrypoint", "run", "--"]) == ["/opt/litedeploy/entrypoint"]
    assert program_of(["python3", "-m", "entrypoint", "run"]) == ["python3", "-m", "entrypoint"]
    assert program_of(["/docker-entrypoint.sh"]) is None
    assert program_of(["run"]) is None


def test_plan_argv_runs_the_plan_offline_with_values_by_name_only(tmp_path: Path) -> None:
    service = Service(
        name="app",
        image="shop:v2",
        environment={"DB_PATH": "/data/app.db", "SECRET_KEY": SECRET},
        binds=[(tmp_path / "data", PurePosixPath("/data"))],
    )
    stack = Stack(
        compose=Compose(Flavour.V2, (tmp_path / "docker-compose.yml",), "shop"),
        service=service,
        db_path=tmp_path / "data" / "app.db",
        db_container_path=PurePosixPath("/data/app.db"),
        backup_dir=tmp_path / "data" / "backups",
    )
    argv = plan_argv(stack, "shop:v2", ["python3", "-m", "entrypoint"], tmp_path / "snap")
    assert argv[:5] == ["docker", "run", "--rm", "--network", "none"]
    assert f"{tmp_path / 'snap'}:/data" in argv
    assert argv[argv.index("--entrypoint") + 1] == "python3"
    assert argv[-5:] == ["shop:v2", "-m", "entrypoint", "plan", "--json"]
    assert "SECRET_KEY" in argv
    assert not any(SECRET in part for part in argv)


# -- the proxy's upstream file --------------------------------------------------------------------


def nginx(tmp_path: Path) -> Proxy:
    found = Proxy.of(
        settings(
            {
                "proxy_service": "proxy",
                "proxy_upstream_file": str(tmp_path / "proxy" / "upstream.conf"),
                "proxy_reload": "nginx -s reload",
            },
            {},
        )
    )
    assert found is not None
    return found


def test_the_upstream_file_is_replaced_whole_and_readable_by_the_proxy(tmp_path: Path) -> None:
    proxy = nginx(tmp_path)
    assert proxy.pointed_at() is None
    proxy.write("shop-app-1")
    assert proxy.upstream_file.read_text() == "set $litedeploy_upstream shop-app-1:8000;\n"
    assert stat.S_IMODE(proxy.upstream_file.stat().st_mode) == 0o644
    inode = proxy.upstream_file.stat().st_ino
    proxy.write("shop_app_2")  # Compose v1's names
    assert proxy.pointed_at() == "shop_app_2"
    assert proxy.upstream_file.stat().st_ino != inode  # a rename, never a rewrite in place
    assert [p.name for p in proxy.upstream_file.parent.iterdir()] == ["upstream.conf"]


def test_the_reload_runs_in_the_proxys_container(tmp_path: Path) -> None:
    proxy = nginx(tmp_path)
    compose = Compose(Flavour.V1, (tmp_path / "docker-compose.yml",), "shop")
    argv = proxy.reload_argv(compose)
    assert argv is not None
    assert argv[0] == "docker-compose"
    assert argv[-6:] == ["exec", "-T", "proxy", "nginx", "-s", "reload"]
    watched = Proxy("proxy", tmp_path / "x.yml", "url: http://{address}", None, 3000)
    assert watched.reload_argv(compose) is None  # Traefik's file provider watches the file
    assert watched.line("app-1") == "url: http://app-1:3000\n"


# -- settings -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "said"),
    [
        ({"strategy": "blue-green"}, "strategy: must be auto, start-first or recreate"),
        ({"proxy_reload": []}, "proxy_reload: must be a command"),
        ({"proxy_reload": ["nginx", 3]}, "proxy_reload: must be a command"),
        ({"proxy_upstream": "server app:8000;"}, "proxy_upstream: must contain {address}"),
        ({"app_port": 0}, "app_port: must be a TCP port"),
        ({"grace_seconds": -1}, "grace_seconds: must be a positive number"),
    ],
)
def test_bad_strategy_settings_name_their_field(raw: dict[str, object], said: str) -> None:
    with pytest.raises(ConfigError) as caught:
        validate(raw, source="deploy.yml")
    assert said in caught.value.message


def test_a_proxy_needs_its_upstream_file() -> None:
    with pytest.raises(ConfigError, match="proxy_upstream_file is not"):
        Proxy.of(Settings(proxy_service="proxy"))


def test_no_proxy_service_is_no_proxy() -> None:
    assert Proxy.of(Settings()) is None


def test_the_example_stacks_deploy_yml_configures_nginx() -> None:
    from deploy.config import load_file

    current = settings(load_file(ROOT / "deploy.yml"), {})
    proxy = Proxy.of(current)
    assert proxy is not None
    assert current.strategy == "auto"
    assert proxy.reload == ("nginx", "-s", "reload")
    assert proxy.upstream_file == ROOT / "proxy" / "upstream.conf"
    conf = (ROOT / "examples" / "proxy" / "litedeploy.conf").read_text()
    assert "$litedeploy_upstream" in conf and "include /etc/nginx/litedeploy/*.conf;" in conf
