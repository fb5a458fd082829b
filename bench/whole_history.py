"""litedeploy against drizzle's own migrate() on whole histories, side by side in one run.

    .venv/bin/python bench/whole_history.py [--runs 15] [--only homarr,dyad,generated-100]

Three histories: the two real ones in tests/corpus (homarr: 42 migrations, 16 rebuilds;
dyad: 50) and one of 100 migrations with 20 rebuilds written by bench/gen_history.py
(seed 7). For each, two cases, each a whole process timed from fork to exit:

  new database     `entrypoint run --db NEW --migrations H -- true` against
                   `node tests/interop/drizzle0/migrate.mjs NEW H` (drizzle-orm's migrate()
                   on better-sqlite3); a new file for every run.
  nothing pending  the same two commands on a database both have already migrated, backed
                   up once as a deploy leaves it (so the drift comparison is remembered:
                   safety/drift_memo.py).

Runs are paired and interleaved (ours, theirs, ours, ...) after one warm-up of each, so both
see the same machine. Printed: the medians, and the median of the per-pair ratio (ours /
theirs), with the load average before and after. The package is byte-compiled first, as an
installed one is. Needs the venv and the drizzle harness that scripts/test.sh installs.
"""

from __future__ import annotations

import argparse
import compileall
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
from gen_history import write as generate  # noqa: E402

HARNESS = ROOT / "tests" / "interop" / "drizzle0" / "migrate.mjs"
TARGETS = {"new database": 1.0, "nothing pending": 0.5}  # issue 15: at most this ratio


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def paired(
    runs: int, ours: list[str], theirs: list[str], reset: Callable[[], None]
) -> tuple[list[float], list[float]]:
    a: list[float] = []
    b: list[float] = []
    for i in range(runs + 1):  # the first pair warms the page cache and is not counted
        reset()
        x = timed(ours)
        reset()
        y = timed(theirs)
        if i:
            a.append(x)
            b.append(y)
    return a, b


def removing(*paths: Path) -> Callable[[], None]:
    """A reset that removes the databases (and their side files and backups)."""

    def reset() -> None:
        for path in paths:
            for suffix in ("", "-wal", "-shm", "-journal"):
                Path(f"{path}{suffix}").unlink(missing_ok=True)
            shutil.rmtree(path.parent / "backups", ignore_errors=True)

    return reset


def cases(
    name: str, folder: Path, work: Path, runs: int, entrypoint: str, node: str
) -> dict[str, tuple[list[float], list[float]]]:
    ours, theirs = work / f"{name}-ours" / "app.db", work / f"{name}-theirs" / "app.db"
    done = work / f"{name}-done" / "app.db"
    for path in (ours, theirs, done):
        path.parent.mkdir()
    found = {
        "new database": paired(
            runs,
            [entrypoint, "run", "--db", str(ours), "--migrations", str(folder), "--", "true"],
            [node, str(HARNESS), str(theirs), str(folder)],
            removing(ours, theirs),
        )
    }
    on_done = [entrypoint, "run", "--db", str(done), "--migrations", str(folder), "--", "true"]
    subprocess.run(on_done, check=True, capture_output=True)
    subprocess.run([entrypoint, "backup", "--db", str(done)], check=True, capture_output=True)
    found["nothing pending"] = paired(
        runs, on_done, [node, str(HARNESS), str(done), str(folder)], lambda: None
    )
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--only", default="homarr,dyad,generated-100")
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "entrypoint", quiet=1)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    entrypoint = shutil.which("entrypoint") or str(Path(sys.executable).parent / "entrypoint")
    node = shutil.which("node") or sys.exit("bench: node is not on PATH")
    with tempfile.TemporaryDirectory(prefix="litedeploy-bench-") as tmp:
        work = Path(tmp)
        histories = {
            "homarr": ROOT / "tests" / "corpus" / "homarr",
            "dyad": ROOT / "tests" / "corpus" / "dyad",
            "generated-100": generate(work / "generated-100", 100, 7),
        }
        print(f"{args.runs} paired runs each; load average before: {load()}")
        print(
            f"{'history':<15}{'case':<17}{'ours':>9}{'drizzle':>9}{'ratio':>7}"
            f"{'(min-max)':>15}{'target':>8}"
        )
        for name in filter(None, args.only.split(",")):
            for case, (a, b) in cases(
                name, histories[name], work, args.runs, entrypoint, node
            ).items():
                ratios = [x / y for x, y in zip(a, b, strict=True)]
                print(
                    f"{name:<15}{case:<17}{statistics.median(a) * 1000:>7.0f}ms"
                    f"{statistics.median(b) * 1000:>7.0f}ms{statistics.median(ratios):>7.2f}"
                    f"{f'({min(ratios):.2f}-{max(ratios):.2f})':>15}{TARGETS[case]:>8.2f}"
                )
        print(f"load average after: {load()}")


if __name__ == "__main__":
    main()
