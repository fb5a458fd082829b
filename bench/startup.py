"""Start-up cost with nothing pending: `entrypoint run ... -- true` beside drizzle's migrate().

Both are timed as whole processes (fork to exit), several runs each, interleaved so that
both see the same machine state; the figures are medians and minimums.

    .venv/bin/python bench/startup.py [--runs 21] [--migrations demo/migrations]
                                      [--without-backups]

The database is migrated once and given a backup (`entrypoint backup`), as a database is
after any deploy that migrated it; the first timed start then remembers the drift
comparison beside that backup (drift_memo.py), and the others reuse it. `--without-backups`
times a database that never had a backup: no memo, every start compares.

The package is byte-compiled first and the runs do not inherit PYTHONDONTWRITEBYTECODE: an
installed package (the image's venv, the bundle) has its bytecode, and without it every start
compiles every module again (~60 ms). Needs the venv and the drizzle harness that
scripts/test.sh installs.
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def timed(argv: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21)
    parser.add_argument("--migrations", type=Path, default=ROOT / "demo" / "migrations")
    parser.add_argument("--without-backups", action="store_true")
    args = parser.parse_args()
    compileall.compile_dir(ROOT / "entrypoint", quiet=1)
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)

    entrypoint = shutil.which("entrypoint") or str(Path(sys.executable).parent / "entrypoint")
    harness = ROOT / "tests" / "interop" / "drizzle0" / "migrate.mjs"
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "app.db"
        ours = [
            entrypoint,
            "run",
            "--db",
            str(db),
            "--migrations",
            str(args.migrations),
            "--",
            "true",
        ]
        theirs = ["node", str(harness), str(db), str(args.migrations)]
        subprocess.run(ours, check=True, capture_output=True)  # migrate once: nothing pending after
        if not args.without_backups:
            backup = [entrypoint, "backup", "--db", str(db)]
            subprocess.run(backup, check=True, capture_output=True)
            timed(ours)  # compares once and remembers it; the timed starts reuse it
        timed(theirs)  # warm the page cache for node too
        samples: dict[str, list[float]] = {"entrypoint run (to exec)": [], "drizzle migrate()": []}
        for _ in range(args.runs):
            samples["entrypoint run (to exec)"].append(timed(ours))
            samples["drizzle migrate()"].append(timed(theirs))

    print(
        f"nothing pending, {args.runs} runs each, migrations: {args.migrations}"
        + (" (no backup, so no drift memo)" if args.without_backups else "")
    )
    print(f"{'command':<28}{'median':>10}{'min':>10}{'max':>10}")
    for name, values in samples.items():
        print(
            f"{name:<28}{statistics.median(values) * 1000:>8.0f}ms"
            f"{min(values) * 1000:>8.0f}ms{max(values) * 1000:>8.0f}ms"
        )
    ratio = statistics.median(samples["entrypoint run (to exec)"]) / statistics.median(
        samples["drizzle migrate()"]
    )
    print(f"ratio (median ours / median drizzle): {ratio:.2f}")


if __name__ == "__main__":
    main()
