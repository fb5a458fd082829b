"""The whole fault suite, in full, and docs/reliability.md written from what it measured.

    .venv/bin/python bench/faults.py [--kills 50] [--out docs/reliability.md] [--json FILE]

Runs the cases of tests/faults/lab.py: every injection point of each scenario with each
fault (kill -9, an SQLite I/O error, SIGTERM and SIGINT while the process waits there),
2 to 8 concurrent starts, a writer committing throughout, a full disk under each folder,
and `--kills` kill -9s at random moments of a larger run; then the bad-input table of
tests/test_bad_input.py and the deploy kills of tests/deploy/test_deploy_faults.py
through pytest (the deploy ones need the Docker engine scripts/test.sh starts). The
pytest suite runs the same cases (with fewer random kills): this script is where the
figures come from.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "tests" / "faults"), str(ROOT / "tests"), str(ROOT)]

import lab  # noqa: E402

ACTIONS = lab.ACTIONS


def lab_results(scratch: Path, kills: int) -> Iterable[lab.Result]:
    for name, scenario in lab.SCENARIOS.items():
        for action in ACTIONS:
            yield from lab.sweep(scenario, scratch / f"{name}-{action}", (action,))
    for n in (2, 4, 8):
        for new in (False, True):
            yield lab.concurrent_starts(scratch / f"concurrent-{n}-{new}", n, new=new)
    yield lab.writer_throughout(scratch / "writer")
    for place in ("database", "backups", "rehearsal", "restore"):
        yield lab.full_disk(scratch / f"full-{place}", place)
    yield from lab.random_kills(scratch / "random", kills)


def pytest_cases(paths: list[str], scratch: Path) -> list[dict[str, object]]:
    """Run pytest on `paths`; one dict per test case (name, outcome, seconds)."""
    scratch.mkdir(parents=True, exist_ok=True)
    report = scratch / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            *paths,
        ],
        cwd=ROOT,
        check=False,
    )
    cases = []
    for case in ET.parse(report).getroot().iter("testcase"):
        failed = case.find("failure") is not None or case.find("error") is not None
        skipped = case.find("skipped") is not None
        cases.append(
            {
                "case": case.get("name", ""),
                "file": case.get("classname", ""),
                "outcome": "failed" if failed else "skipped" if skipped else "passed",
                "seconds": round(float(case.get("time", "0")), 2),
            }
        )
    return cases


def render(
    results: list[lab.Result],
    inputs: list[dict[str, object]],
    deploys: list[dict[str, object]],
    seconds: float,
) -> str:
    lost = sum(r.rows_lost for r in results)
    hung = sum(1 for r in results if r.hung)
    held = sum(1 for r in results if r.held)
    groups: dict[str, list[lab.Result]] = {}
    for r in results:
        groups.setdefault(r.scenario, []).append(r)
    inputs_ok = sum(1 for c in inputs if c["outcome"] == "passed")
    deploys_ok = sum(1 for c in deploys if c["outcome"] == "passed")
    lines = [
        "# Reliability: what the fault suite injected, and what held",
        "",
        f"Written by `bench/faults.py` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC "
        f"({platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}), "
        f"in {seconds / 60:.1f} min. The same cases run in `bash .ci/run` (tests/faults, "
        "tests/test_bad_input.py, tests/deploy/test_deploy_faults.py), with fewer random "
        "kills; `tests/faults/test_reliability_doc.py` checks this page lists the cases the "
        "suite has now.",
        "",
        "Every case runs real `entrypoint` processes on a database with rows: the fault is "
        "injected at a named point (`entrypoint/base/faults.py`) or at a random moment, then the "
        "database is checked (a migration's end, never in between; integrity_check) and the "
        "entrypoint started again (it must end with a clean run's content, row for row). "
        "tests/faults/lab.py says exactly what is checked.",
        "",
        "## Totals",
        "",
        "| | cases | held | rows lost | hangs |",
        "| --- | --- | --- | --- | --- |",
        f"| injected faults, concurrency, full disks | {len(results)} | {held} | {lost} | {hung} |",
        f"| bad inputs (tests/test_bad_input.py) | {len(inputs)} | {inputs_ok} | 0 | 0 |",
        f"| deploy killed at each step (Docker) | {len(deploys)} | {deploys_ok} | 0 | 0 |",
        "",
        "| group | cases | held | rows lost | hangs |",
        "| --- | --- | --- | --- | --- |",
    ]
    for name, rs in groups.items():
        lines.append(
            f"| {name} | {len(rs)} | {sum(1 for r in rs if r.held)} | "
            f"{sum(r.rows_lost for r in rs)} | {sum(1 for r in rs if r.hung)} |"
        )
    lines += ["", "## Every case", ""]
    lines += [
        "| case | injected | first run: exit, first error line | restart | rows before → after "
        "| held |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        first = f"{r.first_exit}: {r.first_error}".replace("|", "\\|")
        restart = "" if r.restart_exit is None else str(r.restart_exit)
        verdict = "yes" if r.held else "NO: " + "; ".join(r.problems).replace("|", "\\|")
        lines.append(
            f"| {r.case} | `{r.injected}` | {first} | {restart} | "
            f"{r.rows_before} → {r.rows_after} | {verdict} |"
        )
    for title, cases in (("Bad inputs", inputs), ("Deploy killed at each step", deploys)):
        lines += ["", f"## {title}", "", "| case | outcome | seconds |", "| --- | --- | --- |"]
        lines += [f"| `{c['case']}` | {c['outcome']} | {c['seconds']} |" for c in cases]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kills", type=int, default=50, help="random kill -9s (default 50)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "reliability.md")
    parser.add_argument("--json", type=Path, help="also write every result as JSON")
    parser.add_argument("--no-docker", action="store_true", help="leave out the deploy kills")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("the full-disk cases mount a tmpfs: run as root", file=sys.stderr)
        return 2
    started = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="litedeploy-faults-"))
    try:
        results = []
        for r in lab_results(scratch, args.kills):
            results.append(r)
            mark = "ok " if r.held else "NO "
            print(f"{mark} {r.case} ({r.seconds:.1f}s)", flush=True)
        inputs = pytest_cases(["tests/test_bad_input.py"], scratch / "inputs")
        deploys = (
            []
            if args.no_docker
            else pytest_cases(["tests/deploy/test_deploy_faults.py"], scratch / "deploys")
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    seconds = time.monotonic() - started
    args.out.write_text(render(results, inputs, deploys, seconds))
    if args.json:
        args.json.write_text(json.dumps([r.to_json() for r in results], indent=1))
    bad = [r for r in results if not r.held]
    print(f"{len(results)} cases, {len(bad)} did not hold; wrote {args.out} in {seconds:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
