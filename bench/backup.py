"""Backup speed and memory: `take_backup` beside a durable `cp` and `sqlite3 .backup`.

For each database size (generated once into the work folder, WAL mode, checkpointed; reused
when present) every method runs `--runs` times, interleaved (in a shuffled order each round) so
that all see the same machine state. The figures are best-of and medians, ratios to the durable
copy (`cp DB OUT` then `sync OUT`), and the peak memory (max RSS) of each process.

    .venv/bin/python bench/backup.py [--sizes 10M,100M,1G] [--runs 5] [--work DIR]

Ours (`take_backup`, methods copy and online) runs in a fresh child Python per run (so its
memory is its own) and is timed inside the child around the `take_backup` call only; `cp`+`sync`,
`sqlite3` and the `entrypoint backup` CLI are timed as whole processes. Peak memory comes from
GNU time's `%M` (`apt-get install time`). One more child per round ("phases") runs the real
`take_backup` (copy method) with timers wrapped around its steps: the pin (checkpoint, a read
transaction that freezes the main file), then the overlapped part (quick_check of the pinned
source on one thread while the kernel copy runs, then fsync and sha256 of the copy on two more),
the rename and the manifest; then it times quick_check and sha256 of the finished copy again
one after the other, alone, to show what the overlap saves.
The page cache cannot be dropped here, so every run is warm-cache: the source is in memory, and
the time is copying, writing the copy out to disk, and reading it back from memory to check and
hash it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET_RATIO = 1.7  # issue 15 (issue 3's was 2.5)
TARGET_RSS_MB = 64.0
GNU_TIME = "/usr/bin/time"
DURABLE = "cp + sync"
SQLITE_CLI = "sqlite3 .backup"

# One backup in a fresh interpreter; prints its own timing and the method actually used.
CHILD = """\
import json, sys, time
from pathlib import Path
t0 = time.perf_counter()
from entrypoint.safetynet.backup import Method, take_backup
imported = time.perf_counter() - t0
out = {"import": imported}
if sys.argv[3] != "none":
    started = time.perf_counter()
    made = take_backup(Path(sys.argv[1]), Path(sys.argv[2]), method=Method(sys.argv[3]))
    out["seconds"] = time.perf_counter() - started
    out["used"] = made.manifest.method
print(json.dumps(out))
"""

# The real take_backup (copy method) with timers around its steps, then the check of the finished
# copy and its hash again, alone and one after the other. Wraps private names of
# entrypoint/safetynet/backup.py; if they change, this child fails loudly rather than timing
# something else.
PHASES = """\
import json, sys, time
from pathlib import Path
from entrypoint.base import durable
from entrypoint.safetynet import backup
from entrypoint.safetynet.integrity import Level
t = {}
def timed(module, name, key):
    inner = getattr(module, name)
    def wrapper(*args, **kwargs):
        started = time.perf_counter()
        try:
            return inner(*args, **kwargs)
        finally:  # the first call only: atomic_write calls commit again, for the manifest
            t.setdefault(key, time.perf_counter() - started)
    setattr(module, name, wrapper)
timed(backup, "_quiet_reader", "pin: checkpoint, read transaction")
timed(backup, "_copy_quiet", "copy, check, fsync, hash (wall)")
timed(backup, "integrity_problems", "  quick_check of the pinned source (its thread)")
timed(durable, "copy_to_new", "  kernel copy (copy_file_range)")
timed(durable, "fsync_file", "  fsync of the copy (its thread, after the copy)")
timed(durable, "sha256_of", "  sha256 of the copy (its thread, after the copy)")
timed(durable, "commit", "rename + fsync of the folder")
timed(durable, "atomic_write", "manifest (write, fsync, rename)")
started = time.perf_counter()
made = backup.take_backup(Path(sys.argv[1]), Path(sys.argv[2]), method=backup.Method.COPY)
total = time.perf_counter() - started
assert made.manifest.method == "copy", made.manifest.method
top = [k for k in t if not k.startswith(" ")]
t["rest: folder, leftovers, free space"] = total - sum(t[k] for k in top)
t["take_backup, total"] = total
started = time.perf_counter()
assert backup._verify(made.path, Level.QUICK) == []
t["alone after: quick_check"] = time.perf_counter() - started
started = time.perf_counter()
durable.sha256_of(made.path)
t["alone after: sha256"] = time.perf_counter() - started
steps = ["pin", "copy,", "  kernel", "  quick", "  fsync", "  sha", "rename", "manifest", "rest"]
steps += ["take", "alone after: quick", "alone after: sha"]
print(json.dumps({k: t[k] for s in steps for k in t if k.startswith(s)}))
"""


@dataclass
class Sample:
    seconds: float
    rss_mb: float


@dataclass
class Series:
    samples: list[Sample] = field(default_factory=list)

    @property
    def best(self) -> float:
        return min(s.seconds for s in self.samples)

    @property
    def median(self) -> float:
        return statistics.median(s.seconds for s in self.samples)

    @property
    def rss(self) -> float:
        return max(s.rss_mb for s in self.samples)


def parse_size(text: str) -> int:
    match = re.fullmatch(r"(\d+)([KMG]?)", text.strip().upper())
    if not match:
        raise argparse.ArgumentTypeError(f"bad size {text!r} (use e.g. 10M, 1G)")
    return int(match[1]) << {"": 0, "K": 10, "M": 20, "G": 30}[match[2]]


def label(size: int) -> str:
    return f"{size >> 30} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"


def spawn(argv: list[str], stdout: Path, stderr: Path) -> tuple[float, float]:
    """Run a process to its end; returns wall seconds and its peak RSS in MiB.

    The peak comes from GNU time (`%M`, its wait4 of a child it fork()ed): ru_maxrss of a child
    that this Python posix_spawn()s directly starts from this process's own peak (vfork shares
    the parent's memory up to the exec), so `cp` would show this script's 30+ MB.
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
    if code != 0:
        detail = stderr.read_text(errors="replace").strip().splitlines()[-5:]
        raise SystemExit(f"{' '.join(argv[:4])} ... exited {code}:\n  " + "\n  ".join(detail))
    return elapsed, int(rss_file.read_text().split()[-1]) / 1024  # %M is in KiB


def generate(db: Path, size: int) -> None:
    """An app-like database of about `size` bytes: random-ish rows, two indexes, WAL mode."""
    ready = db.with_name(db.name + ".ready")
    if ready.exists() and db.exists() and ready.read_text().strip() == str(size):
        return
    for suffix in ("", "-wal", "-shm", ".ready"):
        db.with_name(db.name + suffix).unlink(missing_ok=True)
    print(f"generating {db} ({label(size)}) ...", file=sys.stderr, flush=True)
    conn = sqlite3.connect(db, isolation_level=None)
    conn.executescript(
        """
        PRAGMA journal_mode = wal;
        PRAGMA synchronous = off;
        PRAGMA cache_size = -65536;
        CREATE TABLE items (
            id INTEGER PRIMARY KEY,
            created_at INTEGER NOT NULL,
            email TEXT NOT NULL,
            status TEXT NOT NULL,
            qty INTEGER NOT NULL,
            body TEXT NOT NULL
        );
        CREATE INDEX items_email ON items (email);
        CREATE INDEX items_created ON items (created_at);
        """
    )
    batch = max(200, min(20_000, size // 600 // 20))
    insert = """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < ?)
        INSERT INTO items (created_at, email, status, qty, body)
        SELECT 1600000000 + abs(random()) % 200000000,
               lower(hex(randomblob(6))) || '@example.com',
               CASE abs(random()) % 3 WHEN 0 THEN 'new' WHEN 1 THEN 'paid' ELSE 'sent' END,
               abs(random()) % 1000,
               hex(randomblob(50 + abs(random()) % 400))
        FROM n
    """
    page_size = conn.execute("PRAGMA page_size").fetchone()[0]
    while conn.execute("PRAGMA page_count").fetchone()[0] * page_size < size:
        conn.execute("BEGIN")
        conn.execute(insert, (batch,))
        conn.execute("COMMIT")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
    conn.close()
    os.sync()
    ready.write_text(f"{size}\n")


def warm(path: Path) -> None:
    with path.open("rb", buffering=0) as f:
        while f.read(8 << 20):
            pass


def clean(out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(mode=0o700)
    os.sync()  # nothing of the last run left to write back (or discard) during the next
    time.sleep(0.2)


def run_size(
    db: Path, work: Path, runs: int, cli: str | None, verbose: bool
) -> tuple[dict[str, Series], dict[str, list[float]]]:
    out = work / "out"
    log_out, log_err = work / "child.out", work / "child.err"
    copy = out / "copy.db"
    py = sys.executable

    def durable_copy() -> Sample:
        t1, rss1 = spawn(["cp", str(db), str(copy)], log_out, log_err)
        t2, rss2 = spawn(["sync", str(copy)], log_out, log_err)
        return Sample(t1 + t2, max(rss1, rss2))

    def sqlite_cli() -> Sample:
        seconds, rss = spawn(["sqlite3", str(db), f".backup '{copy}'"], log_out, log_err)
        return Sample(seconds, rss)

    def ours(method: str) -> Sample:
        _, rss = spawn([py, "-c", CHILD, str(db), str(out / "backups"), method], log_out, log_err)
        result = json.loads(log_out.read_text())
        if result["used"] != method:
            raise SystemExit(f"asked for {method}, take_backup used {result['used']}")
        return Sample(result["seconds"], rss)

    def whole_cli() -> Sample:
        assert cli is not None
        argv = [cli, "backup", "--db", str(db), "--backup-dir", str(out / "backups")]
        seconds, rss = spawn(argv, log_out, log_err)
        return Sample(seconds, rss)

    methods = {
        DURABLE: durable_copy,
        SQLITE_CLI: sqlite_cli,
        "ours: copy": lambda: ours("copy"),
        "ours: online": lambda: ours("online"),
    }
    if cli:
        methods["entrypoint backup (CLI)"] = whole_cli
    series = {name: Series() for name in methods}
    phases: dict[str, list[float]] = {}
    names = [*methods, "phases"]
    warm(db)
    order = random.Random(len(names))  # the same orders every time the script runs
    for r in range(runs):
        order.shuffle(names)  # no method always runs right after the same other one
        for name in names:
            clean(out)
            if name == "phases":
                spawn([py, "-c", PHASES, str(db), str(out / "phases")], log_out, log_err)
                for step, seconds in json.loads(log_out.read_text()).items():
                    phases.setdefault(step, []).append(seconds)
            else:
                sample = methods[name]()
                series[name].samples.append(sample)
                if verbose:
                    print(f"  run {r + 1} {name}: {sample.seconds:.3f}s", file=sys.stderr)
    shutil.rmtree(out, ignore_errors=True)
    return series, phases


def report(size: int, series: dict[str, Series], phases: dict[str, list[float]]) -> bool:
    base = series[DURABLE]
    print(f"\n## {label(size)}\n")
    print(f"load average after the runs: {' '.join(f'{x:.2f}' for x in os.getloadavg())}\n")
    print(
        f"| {'method':<29} | {'best':>8} | {'median':>8} | {'best/best':>9} "
        f"| {'med/med':>7} | {'peak RSS':>8} |"
    )
    print(f"|{'-' * 31}|{'-' * 9}:|{'-' * 9}:|{'-' * 10}:|{'-' * 8}:|{'-' * 9}:|")
    for name, s in series.items():
        print(
            f"| {name:<29} | {s.best:>7.3f}s | {s.median:>7.3f}s | {s.best / base.best:>8.2f}x "
            f"| {s.median / base.median:>6.2f}x | {s.rss:>5.1f} MB |"
        )
    if phases:
        total = phases["take_backup, total"]
        median_total = statistics.median(total)
        print(
            "\nphases of take_backup, copy method (its own child, timers around the real steps; "
            "the indented rows run at once, each timed in its thread; share of the median total):\n"
        )
        print(f"| {'step':<44} | {'best':>8} | {'median':>8} | {'share':>6} |")
        print(f"|{'-' * 46}|{'-' * 9}:|{'-' * 9}:|{'-' * 7}:|")
        for step, values in phases.items():
            median = statistics.median(values)
            share = (
                ""
                if step.startswith(("  ", "alone", "take_backup"))
                else f"{median / median_total:.0%}"
            )
            print(f"| {step:<44} | {min(values):>7.3f}s | {median:>7.3f}s | {share:>6} |")
        copy = phases["  kernel copy (copy_file_range)"]
        check, digest = phases["alone after: quick_check"], phases["alone after: sha256"]
        serial = [c + a + b for c, a, b in zip(copy, check, digest, strict=True)]
        overlapped = phases["copy, check, fsync, hash (wall)"]
        print(
            f"\ncopy, check, fsync and hash overlapped: {min(overlapped):.3f}s best, "
            f"{statistics.median(overlapped):.3f}s median; the copy, then quick_check, then "
            f"sha256 one after the other: {min(serial):.3f}s best, "
            f"{statistics.median(serial):.3f}s median (no fsync left to do by then)"
        )
    verdicts = []
    for name, role in (("ours: copy", "start-up path"), ("ours: online", "for reference")):
        s = series[name]
        ratio = s.best / base.best
        ok = ratio <= TARGET_RATIO and s.rss < TARGET_RSS_MB
        verdicts.append(ok)
        print(
            f"\ntarget ({name}, {role}): best {ratio:.2f}x the durable copy "
            f"({'<=' if ratio <= TARGET_RATIO else '>'} {TARGET_RATIO}x), "
            f"peak RSS {s.rss:.1f} MB ({'<' if s.rss < TARGET_RSS_MB else '>='} "
            f"{TARGET_RSS_MB:.0f} MB): {'HOLDS' if ok else 'DOES NOT HOLD'}",
            end="",
        )
    print()
    return verdicts[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes",
        type=lambda t: [parse_size(x) for x in t.split(",")],
        default=[10 << 20, 100 << 20, 1 << 30],
        help="comma-separated database sizes (default 10M,100M,1G)",
    )
    parser.add_argument("--runs", type=int, default=5, help="runs per method and size")
    parser.add_argument(
        "--work",
        type=Path,
        default=Path(tempfile.gettempdir()) / "litedeploy-bench",
        help="folder for the generated databases (kept and reused) and the copies",
    )
    parser.add_argument(
        "--no-cli", action="store_true", help="skip the whole-process `entrypoint backup` row"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="print each run as it ends")
    args = parser.parse_args()

    if shutil.which("sqlite3") is None:
        raise SystemExit("needs the sqlite3 command-line shell: sudo apt-get install sqlite3")
    if not os.access(GNU_TIME, os.X_OK):
        raise SystemExit(f"needs GNU time at {GNU_TIME} for peak memory: sudo apt-get install time")
    cli = None
    if not args.no_cli:
        cli = shutil.which("entrypoint") or str(Path(sys.executable).parent / "entrypoint")
    args.work.mkdir(parents=True, exist_ok=True)
    os.chdir(ROOT)  # the child imports `entrypoint` from this checkout

    dbs = {size: args.work / f"bench-{label(size).replace(' ', '')}.db" for size in args.sizes}
    for size, db in dbs.items():
        generate(db, size)

    cli_version = subprocess.run(
        ["sqlite3", "--version"], check=True, capture_output=True, text=True
    ).stdout.split()[0]
    try:
        system = platform.freedesktop_os_release().get("PRETTY_NAME", "Linux")
    except OSError:
        system = platform.system()
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / (1 << 30)
    print("# bench/backup.py")
    print(
        f"\n{args.runs} runs per method and size, interleaved; {os.cpu_count()} CPUs, "
        f"{ram:.0f} GiB RAM, {system} (kernel {platform.release()}); Python "
        f"{platform.python_version()} with SQLite {sqlite3.sqlite_version}; sqlite3 CLI "
        f"{cli_version}; work folder {args.work}"
    )
    print(
        "warm cache: the source database is in the page cache (it cannot be dropped here); "
        "copies are written to the same filesystem and fsynced."
    )
    print(
        "timing: `cp`+`sync` and `sqlite3` as whole processes (spawn to exit); ours inside a "
        "fresh child Python around the take_backup() call (interpreter start and import not "
        "counted); the CLI row as a whole process. Peak RSS: max RSS of each process (GNU time "
        "%M, its wait4 of the child)."
    )

    baseline = Series()
    log_out, log_err = args.work / "child.out", args.work / "child.err"
    for _ in range(args.runs):
        argv = [sys.executable, "-c", CHILD, "-", "-", "none"]
        baseline.samples.append(Sample(*spawn(argv, log_out, log_err)))
    print(
        f"not counted in ours: interpreter start + `import entrypoint.safetynet.backup`, "
        f"measured alone "
        f"as a whole process: best {baseline.best * 1000:.0f} ms, median "
        f"{baseline.median * 1000:.0f} ms, peak RSS {baseline.rss:.1f} MB."
    )

    holds = {}
    for size, db in dbs.items():
        series, phases = run_size(db, args.work, args.runs, cli, args.verbose)
        holds[size] = report(size, series, phases)

    summary = ", ".join(
        f"{label(s)} {'holds' if ok else 'does NOT hold'}" for s, ok in holds.items()
    )
    print(
        f"target (copy method, the start-up path: best <= {TARGET_RATIO}x the durable copy, "
        f"peak RSS < {TARGET_RSS_MB:.0f} MB): {summary}"
    )


if __name__ == "__main__":
    main()
