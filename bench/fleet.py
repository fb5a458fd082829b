"""Fleet deploys: the wall time of one release to three hosts, against the sum of three single
deploys, on the three extra engines the fleet tests use (host 2 over ssh://).

    .venv/bin/python bench/fleet.py [--runs 3]

Needs the engines up, as scripts/test.sh starts them, and the images it builds (run as root):

    bash -c 'source scripts/bootstrap.sh; source scripts/docker.sh; source scripts/engines.sh
             ensure_docker_engine; ensure_fleet_engines 3; ensure_fleet_sshd; fleet_export
             env | grep ^FLEET_ > /tmp/fleet.env'   # then: set -a; . /tmp/fleet.env; set +a

Every run builds three fresh stacks (the demo app, its own folder, project, port and database
per host), deploys v1 to them (not timed), then times one way of deploying v2 (a migration
that adds a table):

  singles       `deploy --host hN --tag v2` for each host, one after the other (the sum);
  fleet, 1      `deploy --tag v2`: preflight of all, canary h1, then one at a time;
  fleet, N-1    `deploy --tag v2 --parallel N-1`: the canary, then all the others at once.

With --hosts N above 3 (default 3), the hosts go round the three engines, each its own project.

Printed per way: the median wall time (min-max) over --runs, and its ratio to singles'. The
stacks and their containers are removed after each run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "deploy"))
sys.path.insert(0, str(ROOT))

from stack import build_demo_image, build_variant  # noqa: E402
from test_fleet import (  # noqa: E402
    TABLES,
    Fleet,
    engines,
    load,
    new_host,
    write_deploy_yml,
)


def ways(count: int) -> dict[str, list[str] | None]:
    return {
        "singles": None,
        "fleet, 1 at a time": ["--parallel", "1"],
        f"fleet, {count - 1} at a time": ["--parallel", str(count - 1)],
    }


def make_fleet(root: Path, run: int, count: int = 3) -> Fleet:
    """`count` hosts over the three engines (round robin: with more than three, an engine
    holds several hosts, each its own project); those on engine 2 are reached over ssh://."""
    unix, ssh, ssh_path = engines()
    hosts = []
    for n in range(count):
        i = n % 3
        name = f"h{n + 1}"
        endpoint = ssh[i] if i == 1 else unix[i]
        hosts.append(new_host(root, name, unix[i], endpoint, f"ldbench{run}-{name}"))
    write_deploy_yml(root, hosts)
    return Fleet(root, hosts, ssh_path)


def timed(fleet: Fleet, way: list[str] | None) -> float:
    started = time.monotonic()
    if way is None:
        for h in fleet.hosts:
            done = fleet.deploy("--host", h.name, "--tag", "v2")
            if done.returncode != 0:
                sys.exit(f"single deploy to {h.name} failed:\n{done.stderr}")
    else:
        done = fleet.deploy("--tag", "v2", *way)
        if done.returncode != 0:
            sys.exit(f"fleet deploy failed:\n{done.stderr}")
    return time.monotonic() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--hosts", type=int, default=3, help="how many hosts (default 3)")
    args = parser.parse_args()
    chosen = ways(args.hosts)
    unix, _, _ = engines()
    v1 = build_demo_image()
    v2 = build_variant("fleet-v2", migrations={"0102_fleet_v2": TABLES["v2"]})
    for engine in unix:
        load(engine, {"litedeploy-demo:v1": v1, "litedeploy-demo:v2": v2})
    results: dict[str, list[float]] = {way: [] for way in chosen}
    for run in range(args.runs):
        for way, flags in chosen.items():
            with tempfile.TemporaryDirectory(prefix="litedeploy-bench-fleet-") as tmp:
                fleet = make_fleet(Path(tmp), run, args.hosts)
                try:
                    first = fleet.deploy("--tag", "v1", "--parallel", str(args.hosts))
                    if first.returncode != 0:
                        sys.exit(f"the first deploy failed:\n{first.stderr}")
                    results[way].append(timed(fleet, flags))
                finally:
                    for h in fleet.hosts:
                        h.down()
            print(f"run {run + 1} {way}: {results[way][-1]:.1f} s", flush=True)
    base = statistics.median(results["singles"])
    print(f"\n{'way':<22} {'wall time, median (min-max)':<30} vs singles")
    for way, times in results.items():
        median = statistics.median(times)
        print(
            f"{way:<22} {median:6.1f} s ({min(times):.1f}-{max(times):.1f})"
            f"{'':<12} {median / base:.2f}x"
        )


if __name__ == "__main__":
    main()
