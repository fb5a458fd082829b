"""Rehearsal overhead: `entrypoint run` with and without the rehearsal on a copy (issue 5).

A shop database of about `--size` bytes at step 0002 of the shop fixture (users, products with
text prices, many reviews that reference products ON DELETE CASCADE, orders; WAL mode) is
generated once into the work folder and reused. Each of `--runs` rounds runs, in a shuffled
order, on a fresh copy of it each:

    a) entrypoint run --db COPY --migrations ACKED --backup never          (rehearsal on)
    b) entrypoint run --db COPY --migrations ACKED --backup never --no-rehearse
    c) entrypoint rehearse --db COPY --migrations ACKED --json             (its `cost` phases)

ACKED is the shop fixture with the two acknowledgements an operator writes (first line of 0003
`-- litedeploy: allow type-change products.price`, of 0005 `-- litedeploy: allow drop-column
users.name`); the three pending migrations are 0003 (rebuild of products, price text ->
integer), 0004 (rename products.name) and 0005 (drop users.name).

    .venv/bin/python bench/rehearsal.py [--size 100M] [--runs 5] [--work DIR]

Each command is timed as a whole process (spawn to exit, interpreter start included); peak
memory is GNU time's `%M` (`apt-get install time`), as in bench/backup.py. Copying the database
is not counted: after the copy the script reads it once (warm cache; the page cache cannot be
dropped here), calls `os.sync()` and waits 0.2 s. After a) and b) it checks that the migrated
copy is at 0005 with as many reviews as before, and prints a line when it is not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shlex
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURE = ROOT / "tests" / "fixtures" / "drizzle-journal" / "shop"
GNU_TIME = "/usr/bin/time"
ACKS = {
    "0003_price_to_integer.sql": "-- litedeploy: allow type-change products.price",
    "0005_drop_user_name.sql": "-- litedeploy: allow drop-column users.name",
}
RUN_ON, RUN_OFF, REHEARSE = "a) run (rehearsal on)", "b) run --no-rehearse", "c) rehearse --json"
# entrypoint run's own log line about the rehearsal it did (gate._log_rehearsal).
REHEARSAL_LOG = re.compile(
    r"rehearsal on a copy \((\d+) bytes\): (\w+); snapshot (\d+) ms, apply (\d+) ms, "
    r"compare (\d+) ms"
)
PHASES = ("snapshot_ms", "apply_ms", "compare_ms", "total_ms")

FIRST = ["Olena", "Taras", "Ivan", "Maria", "Andrii", "Sofia", "Petro", "Iryna", "Oleh"]
LAST = ["Shevchenko", "Kovalenko", "Bondarenko", "Tkachenko", "Oliinyk", "Lysenko", "Melnyk"]
GOODS = ["Lamp", "Desk", "Chair", "Shelf", "Mug", "Kettle", "Rug", "Pillow", "Stool", "Mirror"]
MATERIAL = ["Oak", "Pine", "Steel", "Linen", "Wool", "Glass", "Ceramic", "Walnut", "Bamboo"]
SENTENCES = [
    "Arrived quickly and well packed.",
    "Exactly as described on the page.",
    "The colour is a little darker than in the photos.",
    "Sturdy, and it looks great in the living room.",
    "Assembly took about twenty minutes with the included tools.",
    "One screw was missing but support sent a new one the next day.",
    "Good value for the price, I would buy it again.",
    "Smaller than I expected, check the dimensions before ordering.",
    "My kids love it.",
    "The finish scratched after a week of normal use.",
    "Delivery was two days late, otherwise fine.",
    "Feels premium and the instructions were clear.",
    "Returned it, the size did not fit our hallway.",
    "Second one we ordered, the first is still going strong after a year.",
    "Not bad, not great.",
    "Wobbles a little on a tiled floor.",
]


@dataclass
class Sample:
    seconds: float
    rss_mb: float
    phases: dict[str, float] = field(default_factory=dict)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (use e.g. 10M, 1G)")
    return int(match[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[match[2]]


def spawn(argv: list[str], stdout: Path, stderr: Path, *, ok: tuple[int, ...] = (0,)) -> Sample:
    """Run a process to its end under GNU time: wall seconds and its peak RSS in MiB.

    posix_spawn and GNU time as in bench/backup.py: the child's ru_maxrss seen directly from
    this Python would start from this process's own peak.
    """
    rss_file = stdout.with_suffix(".rss")
    command = [GNU_TIME, "-f", "%M", "-o", str(rss_file), *argv]
    actions = [
        (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
        (os.POSIX_SPAWN_OPEN, 1, str(stdout), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
        (os.POSIX_SPAWN_OPEN, 2, str(stderr), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
    ]
    started = time.perf_counter()
    pid = os.posix_spawn(command[0], command, os.environ, file_actions=actions)
    _, status = os.waitpid(pid, 0)
    elapsed = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code not in ok:
        detail = stderr.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"{shlex.join(argv[:4])} ... exited {code}:\n  " + "\n  ".join(detail))
    return Sample(elapsed, int(rss_file.read_text().split()[-1]) / 1024)  # %M is in KiB


def folders(work: Path) -> tuple[Path, Path]:
    """The fixture truncated to its first 3 journal entries, and the acknowledged copy."""
    three, acked = work / "shop-0002", work / "shop-acked"
    for folder in (three, acked):
        shutil.rmtree(folder, ignore_errors=True)
        shutil.copytree(FIXTURE, folder)
    journal = three / "meta" / "_journal.json"
    data = json.loads(journal.read_text())
    data["entries"] = data["entries"][:3]
    journal.write_text(json.dumps(data, indent=2) + "\n")
    for name, line in ACKS.items():
        path = acked / name
        path.write_bytes(line.encode() + b"\n" + path.read_bytes())
    return three, acked


def generate(db: Path, size: int, three: Path, work: Path) -> None:
    """Migrate a new database to 0002 with `entrypoint run`, then fill it to about `size`."""
    ready = db.with_name(db.name + ".ready")
    if ready.exists() and db.exists() and ready.read_text().strip() == str(size):
        return
    for suffix in ("", "-wal", "-shm", ".ready"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    print(f"generating {db} ({size >> 20} MiB) ...", file=sys.stderr, flush=True)
    argv = [sys.executable, "-m", "entrypoint", "run", "--db", str(db)]
    spawn([*argv, "--migrations", str(three), "--backup", "never"], *logs(work))
    rng = random.Random(5)
    bodies = [
        " ".join(rng.sample(SENTENCES, rng.randint(1, 5))) for _ in range(4096)
    ]  # 1 to 5 sentences: 20 to 300 characters
    conn = sqlite3.connect(db, isolation_level=None)
    conn.execute("PRAGMA synchronous = off")
    conn.execute("PRAGMA cache_size = -65536")
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    users = products = 0
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    while conn.execute("PRAGMA page_count").fetchone()[0] * page_size < size:
        conn.execute("BEGIN")
        new_users = [
            (
                users + i,
                f"{rng.choice(FIRST).lower()}.{users + i}@example.com",
                None if rng.random() < 0.1 else f"{rng.choice(FIRST)} {rng.choice(LAST)}",
            )
            for i in range(1, 501)
        ]
        users += 500
        conn.executemany("INSERT INTO users (id, email, name) VALUES (?, ?, ?)", new_users)
        new_products = [
            (
                products + i,
                f"{rng.choice(MATERIAL)} {rng.choice(GOODS)} {products + i}",
                # most prices are whole numbers stored as text, a few are like '12.50'
                f"{rng.randint(1, 499)}.{rng.choice((50, 99))}"
                if rng.random() < 0.02
                else str(rng.randint(1, 2000)),
                f"SKU-{products + i:06d}",
            )
            for i in range(1, 51)
        ]
        products += 50
        conn.executemany(
            "INSERT INTO products (id, name, price, sku) VALUES (?, ?, ?, ?)", new_products
        )
        conn.executemany(
            "INSERT INTO reviews (product_id, body, stars) VALUES (?, ?, ?)",
            (
                (rng.randint(1, products), rng.choice(bodies), rng.choice((1, 2, 3, 4, 4, 5, 5)))
                for _ in range(5000)
            ),
        )
        conn.executemany(
            "INSERT INTO orders (user_id, product_id, quantity) VALUES (?, ?, ?)",
            (
                (rng.randint(1, users), rng.randint(1, products), rng.choice((1, 1, 1, 2, 3)))
                for _ in range(2500)
            ),
        )
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    conn.close()
    os.sync()
    ready.write_text(f"{size}\n")


def logs(work: Path) -> tuple[Path, Path]:
    return work / "child.out", work / "child.err"


def counts(db: Path) -> dict[str, int]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        tables = ["users", "products", "reviews", "orders", "__drizzle_migrations"]
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
    finally:
        conn.close()


def warm(path: Path) -> None:
    with path.open("rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def fresh_copy(db: Path, copy: Path) -> None:
    """A private copy of the database (not timed), read once, then a quiet moment."""
    shutil.rmtree(copy.parent, ignore_errors=True)
    copy.parent.mkdir(mode=0o700)
    shutil.copyfile(db, copy)
    warm(copy)
    os.sync()  # nothing of the copy left to write back during the run
    time.sleep(0.2)


def run_all(
    db: Path, acked: Path, work: Path, runs: int, reviews: int, verbose: bool
) -> dict[str, list[Sample]]:
    copy = work / "run" / "app.db"
    out, err = logs(work)
    base = [sys.executable, "-m", "entrypoint"]
    where = ["--db", str(copy), "--migrations", str(acked)]
    commands = {
        RUN_ON: [*base, "run", *where, "--backup", "never"],
        RUN_OFF: [*base, "run", *where, "--backup", "never", "--no-rehearse"],
        REHEARSE: [*base, "rehearse", *where, "--json"],
    }
    samples: dict[str, list[Sample]] = {name: [] for name in commands}
    names = list(commands)
    order = random.Random(3)  # the same orders every time the script runs
    warm(db)
    for r in range(runs):
        order.shuffle(names)
        for name in names:
            fresh_copy(db, copy)
            sample = spawn(commands[name], out, err)
            if name == REHEARSE:
                report = json.loads(out.read_text())
                if report["verdict"] != "pass":
                    print(f"  run {r + 1} {name}: verdict {report['verdict']}, expected pass")
                sample.phases = {k: float(report["cost"][k]) for k in PHASES}
                sample.phases["snapshot_bytes"] = float(report["cost"]["snapshot_bytes"])
            else:
                if name == RUN_ON:
                    found = REHEARSAL_LOG.search(err.read_text(errors="replace"))
                    if found is None:
                        print(f"  run {r + 1} {name}: no rehearsal line in its log")
                    else:
                        snap, apply, compare = (float(found[i]) for i in (3, 4, 5))
                        sample.phases = {
                            "snapshot_ms": snap,
                            "apply_ms": apply,
                            "compare_ms": compare,
                            "total_ms": snap + apply + compare,
                            "snapshot_bytes": float(found[1]),
                        }
                after = counts(copy)
                if after["reviews"] != reviews or after["__drizzle_migrations"] != 6:
                    print(
                        f"  run {r + 1} {name}: reviews {after['reviews']} after, {reviews} "
                        f"before; {after['__drizzle_migrations']} migrations recorded (want 6)"
                    )
            samples[name].append(sample)
            if verbose:
                print(f"  run {r + 1} {name}: {sample.seconds:.3f}s", file=sys.stderr)
    shutil.rmtree(copy.parent, ignore_errors=True)
    return samples


def spread(values: list[float], unit: str = "s", digits: int = 3) -> str:
    """`median (min-max)`."""
    med, lo, hi = statistics.median(values), min(values), max(values)
    return f"{med:.{digits}f}{unit} ({lo:.{digits}f}-{hi:.{digits}f})"


def report(samples: dict[str, list[Sample]]) -> None:
    on, off = samples[RUN_ON], samples[RUN_OFF]
    overhead = [a.seconds - b.seconds for a, b in zip(on, off, strict=True)]
    print(f"\n| {'whole process':<38} | {'median (min-max)':>24} | {'peak RSS, max (min)':>20} |")
    print(f"|{'-' * 40}|{'-' * 25}:|{'-' * 21}:|")
    for name, values in samples.items():
        rss = [s.rss_mb for s in values]
        print(
            f"| {name:<38} | {spread([s.seconds for s in values]):>24} "
            f"| {f'{max(rss):.1f} MB ({min(rss):.1f})':>20} |"
        )
    print(f"| {'a - b, paired per round (the overhead)':<38} | {spread(overhead):>24} | {'':>20} |")
    ratio = statistics.median(s.seconds for s in on) / statistics.median(s.seconds for s in off)
    print(f"\nmedian a / median b: {ratio:.2f}x")

    head = f"| {'rehearsal phases, ms':<24} | {'inside a) (its log)':>26} "
    print(f"\n{head}| {'c) rehearse --json':>26} |")
    print(f"|{'-' * 26}|{'-' * 27}:|{'-' * 27}:|")
    for phase in PHASES:
        cells = []
        for name in (RUN_ON, REHEARSE):
            values = [s.phases[phase] for s in samples[name] if s.phases]
            cells.append(spread(values, "", 0) if values else "n/a")
        print(f"| {phase:<24} | {cells[0]:>26} | {cells[1]:>26} |")
    for name in (RUN_ON, REHEARSE):
        sizes = {int(s.phases["snapshot_bytes"]) for s in samples[name] if s.phases}
        print(f"snapshot bytes, {name}: {', '.join(f'{b:,}' for b in sorted(sizes)) or 'n/a'}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=parse_size, default=100 << 20, help="default 100M")
    parser.add_argument("--runs", type=int, default=5, help="rounds of a, b and c")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "litedeploy-bench-rehearsal",
        help="folder for the generated database (kept and reused) and the copies",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each run as it ends")
    args = parser.parse_args()
    if not os.access(GNU_TIME, os.X_OK):
        raise SystemExit(f"needs GNU time at {GNU_TIME} for peak memory: sudo apt-get install time")
    args.work = args.work.resolve()
    args.work.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)  # `python -m entrypoint` from this checkout

    three, acked = folders(args.work)
    db = args.work / f"shop-{args.size >> 20}MiB.db"
    generate(db, args.size, three, args.work)
    before = counts(db)
    load_before = os.getloadavg()
    samples = run_all(db, acked, args.work, args.runs, before["reviews"], args.verbose)
    load_after = os.getloadavg()

    try:
        system = platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
    except OSError:
        system = platform.system()
    python = os.path.relpath(sys.executable, ROOT)
    print("# bench/rehearsal.py")
    print(f"\ncommand: {shlex.join([python, *sys.argv])}")
    print(
        f"{args.runs} rounds of a, b and c, shuffled within each round; {os.cpu_count()} CPUs, "
        f"{system} (kernel {platform.release()}); Python {platform.python_version()} with "
        f"SQLite {sqlite3.sqlite_version}"
    )
    print(
        f"database: {db} ({db.stat().st_size:,} bytes, WAL, checkpointed), at 0002: "
        + ", ".join(f"{t} {n:,}" for t, n in before.items() if not t.startswith("__"))
    )
    print(
        f"pending: 0003, 0004, 0005 from {acked}; rehearsal copies in $TMPDIR "
        f"({tempfile.gettempdir()})"
    )
    print(
        "load average (1/5/15 min) before: "
        + " ".join(f"{x:.2f}" for x in load_before)
        + ", after: "
        + " ".join(f"{x:.2f}" for x in load_after)
    )
    report(samples)


if __name__ == "__main__":
    main()
