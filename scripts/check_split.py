"""Compare the one-pass statement split with the old one on every real migration file here.

The old split asks sqlite3.complete_statement about every prefix ending at a `;`; the new
one runs SQLite's recogniser once. Every statement of every .sql file in tests/corpus and,
when present on this machine, /work/extra-corpus/*/migrations and
/work/extra-corpus/_local-only/*/migrations must come out identical.

    .venv/bin/python scripts/check_split.py

Exits 1 when any file splits differently (and lists them).
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from split_reference import compare, corpus_files, corpus_roots  # noqa: E402


def main() -> int:
    total_files = total_statements = 0
    differences: list[str] = []
    for root in corpus_roots():
        files = corpus_files(root)
        statements = 0
        for path in files:
            count, found = compare(path)
            statements += count
            differences += found
        total_files += len(files)
        total_statements += statements
        print(f"{root.relative_to(root.parents[1])}: {len(files)} files, {statements} statements")
    print(
        f"total: {total_files} files, {total_statements} statements, "
        f"{len(differences)} difference(s)"
    )
    for line in differences:
        print(f"DIFFERENT: {line}")
    return 1 if differences else 0


if __name__ == "__main__":
    sys.exit(main())
