"""Splitting a big data migration into statements: the old prefix split beside the one-pass one.

The file is tests/split_reference.py's generated data migration (800 kB by default: a
trigger whose body has `;` and CASE ... END, then one INSERT of thousands of rows whose
strings hold `;`). The old split calls sqlite3.complete_statement on every prefix ending at
a `;`, so its time grows with the square of the `;` inside one statement.

    .venv/bin/python bench/split.py [--size 800000] [--runs 5]

Prints the time of each, and of the whole split_statements (what every start pays).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from split_reference import big_data_migration, split_by_prefixes  # noqa: E402

from entrypoint.engine.statements import split_complete, split_statements  # noqa: E402


def timed(split: Callable[[str], list[str]], text: str, runs: int) -> tuple[list[float], list[str]]:
    times, pieces = [], []
    for _ in range(runs):
        started = time.perf_counter()
        pieces = split(text)
        times.append(time.perf_counter() - started)
    return times, pieces


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=800_000, help="bytes of SQL")
    parser.add_argument("--runs", type=int, default=5, help="runs of the new split")
    parser.add_argument("--old-runs", type=int, default=1, help="runs of the old split")
    args = parser.parse_args()
    text, expected = big_data_migration(args.size)
    print(
        f"file: {len(text.encode())} bytes, {text.count(';')} ';', {len(expected)} statements; "
        f"python {platform.python_version()}, {platform.machine()}"
    )
    new, pieces = timed(split_complete, text, args.runs)
    whole, _ = timed(lambda t: [s.sql for s in split_statements(t)[0]], text, args.runs)
    old, old_pieces = timed(split_by_prefixes, text, args.old_runs)
    assert pieces == old_pieces, "the two splits differ"
    print(f"{'split':<36}{'median':>10}{'min':>10}  runs")
    for label, times in (
        ("old: complete_statement per prefix", old),
        ("new: one pass (split_complete)", new),
        ("new: split_statements, whole file", whole),
    ):
        print(f"{label:<36}{statistics.median(times):>9.3f}s{min(times):>9.3f}s  {len(times)}")
    ratio = statistics.median(old) / statistics.median(new)
    print(f"speed-up (median old / median new): {ratio:.0f}x")


if __name__ == "__main__":
    main()
