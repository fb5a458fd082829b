"""Helpers for the real drizzle-kit histories in tests/corpus (homarr, dyad).

- `HISTORIES` / `History`: the two journal folders; `first(history, k, dest)` trims one to its
  first k migrations (as `Flavor.first` in tests/interop/test_drizzle_interop.py).
- `prepare(history, k, workdir)`: the database an app on that history would have at cut point
  k: drizzle-orm's own migrator (tests/interop/drizzle0) applied the first k migrations to a new
  file, then `corpus_fill.fill` put 3 rows in every table. k == 0 means "nothing applied yet",
  which is a database that does not exist: `prepare` returns the path of a file it does not
  create (both migrators create it). Built once per (history, k) in a temporary folder for the
  process (removed at exit); every call after that is a file copy.
- `run_ours(db, folder, *args)`: `python -m entrypoint run ... -- true` in a clean environment;
  `rehearse_ours(db, folder)`: `python -m entrypoint rehearse --json`, parsed.
- `run_drizzle(db, folder)`: drizzle's migrator on a copy of `db`, with rows per table and
  non-NULL values per column before and after, so a caller can say what it lost.

Stdlib and pytest only. drizzle's side needs `node` and `npm ci` in tests/interop/drizzle0; a
missing one raises `HarnessMissing` saying what to install (tests turn it into a failure).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corpus_fill import FillReport, fill_report, fillable_tables, q
from harness import CLI_ENV_VARS

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "tests" / "corpus"
DRIZZLE0 = ROOT / "tests" / "interop" / "drizzle0"
FORMAT = "drizzle-journal"
TIMEOUT_S = 300
ROWS_PER_TABLE = 3
SEED = 0


class HarnessMissing(RuntimeError):
    """node or the drizzle0 harness's node_modules is missing."""


# --------------------------------------------------------------------------------------
# The histories


@dataclass(frozen=True)
class History:
    name: str
    folder: Path

    def journal(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.folder / "meta" / "_journal.json").read_text())
        return data

    def tags(self) -> list[str]:
        return [e["tag"] for e in self.journal()["entries"]]

    def __len__(self) -> int:
        return len(self.tags())


HISTORIES = {name: History(name, CORPUS / name) for name in ("homarr", "dyad")}
HOMARR = HISTORIES["homarr"]
DYAD = HISTORIES["dyad"]


def first(history: History, k: int, dest: Path) -> Path:
    """A copy of the journal folder holding only its first k migrations (and their snapshots)."""
    shutil.copytree(history.folder, dest)
    journal_path = dest / "meta" / "_journal.json"
    journal = json.loads(journal_path.read_text())
    journal["entries"] = journal["entries"][:k]
    journal_path.write_text(json.dumps(journal, indent=2))
    kept = {e["tag"] for e in journal["entries"]}
    for sql in dest.glob("*.sql"):
        if sql.stem not in kept:
            sql.unlink()
            prefix = sql.stem.split("_")[0]
            (dest / "meta" / f"{prefix}_snapshot.json").unlink(missing_ok=True)
    return dest


# --------------------------------------------------------------------------------------
# Reading a database


@dataclass(frozen=True)
class Counts:
    """Rows per table and non-NULL values per column of the app tables (none: no database)."""

    rows: dict[str, int] = field(default_factory=dict)
    values: dict[str, dict[str, int]] = field(default_factory=dict)  # table -> column -> n

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "values": self.values}


def counts(db: Path) -> Counts:
    if not db.exists():
        return Counts()
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        rows: dict[str, int] = {}
        values: dict[str, dict[str, int]] = {}
        for t in fillable_tables(conn):
            cols = [r[1] for r in conn.execute(f"PRAGMA table_info({q(t)})")]
            picks = ", ".join(["count(*)", *(f"count({q(c)})" for c in cols)])
            total, *per_col = conn.execute(f"SELECT {picks} FROM {q(t)}").fetchone()
            rows[t] = int(total)
            values[t] = {c: int(n) for c, n in zip(cols, per_col, strict=True)}
    return Counts(rows, values)


def _norm(name: str, owner: str = "") -> str:
    """`boardGroupPermission` and `board_group_permission` alike (drizzle renames); with `owner`
    (the table of a column) also without that table's name in front: `icon.icon_id` ~ `id`."""
    flat = name.replace("_", "").lower()
    prefix = owner.replace("_", "").lower()
    if prefix and flat.startswith(prefix) and len(flat) > len(prefix):
        return flat[len(prefix) :]
    return flat


def _match(old: list[str], new: list[str], owner: str = "") -> dict[str, str]:
    """old name -> new name: the same name (case-insensitive), else one unique normalised match
    (first without underscores and case, then also without the owning table's name in front)."""
    out: dict[str, str] = {}
    by_lower = {n.lower(): n for n in new}
    for name in old:
        if name.lower() in by_lower:
            out[name] = by_lower[name.lower()]
    for strip in ("", owner) if owner else ("",):
        left_old = [o for o in old if o not in out]
        left_new = [n for n in new if n not in out.values()]
        for name in left_old:
            key = _norm(name, strip)
            hits = [n for n in left_new if _norm(n, strip) == key]
            rivals = [o for o in left_old if _norm(o, strip) == key]
            if len(hits) == 1 and len(rivals) == 1:
                out[name] = hits[0]
    return out


@dataclass(frozen=True)
class Changes:
    """What disappeared between two `Counts`, following renames (same name up to case and _)."""

    rows_lost: dict[str, int]  # table still there with fewer rows: how many fewer
    # "table.column" still there with fewer non-NULL values, beyond the rows its table lost
    # (a lost row takes its values along; those are counted in rows_lost only)
    values_lost: dict[str, int]
    tables_gone: dict[str, int]  # table gone (no match after): the rows it had
    columns_gone: dict[str, int]  # "table.column" gone from a table still there: its values
    renamed: dict[str, str]  # old -> new, tables and "table.column" renamed

    @property
    def lost_anything(self) -> bool:
        return bool(self.rows_lost or self.values_lost or self.tables_gone or self.columns_gone)

    def to_json(self) -> dict[str, Any]:
        return {
            "rows_lost": self.rows_lost,
            "values_lost": self.values_lost,
            "tables_gone": self.tables_gone,
            "columns_gone": self.columns_gone,
            "renamed": self.renamed,
        }


def compare(before: Counts, after: Counts) -> Changes:
    rows_lost: dict[str, int] = {}
    values_lost: dict[str, int] = {}
    tables_gone: dict[str, int] = {}
    columns_gone: dict[str, int] = {}
    renamed: dict[str, str] = {}
    tables = _match(list(before.rows), list(after.rows))
    for t, n in before.rows.items():
        if t not in tables:
            tables_gone[t] = n
            continue
        t2 = tables[t]
        if t2 != t:
            renamed[t] = t2
        if after.rows[t2] < n:
            rows_lost[t] = n - after.rows[t2]
        cols = _match(list(before.values[t]), list(after.values[t2]), owner=t)
        for c, v in before.values[t].items():
            if c not in cols:
                if v:
                    columns_gone[f"{t}.{c}"] = v
                continue
            if cols[c] != c:
                renamed[f"{t}.{c}"] = f"{t2}.{cols[c]}"
            lost = v - after.values[t2][cols[c]] - rows_lost.get(t, 0)
            if lost > 0:
                values_lost[f"{t}.{c}"] = lost
    return Changes(rows_lost, values_lost, tables_gone, columns_gone, renamed)


# --------------------------------------------------------------------------------------
# drizzle's migrator


def require_drizzle() -> None:
    hint = f"run `npm ci --no-audit --no-fund` in {DRIZZLE0.relative_to(ROOT)}"
    if shutil.which("node") is None:
        raise HarnessMissing(f"node (Node.js 20+) is not on PATH: install it, then {hint}")
    wanted = json.loads((DRIZZLE0 / "package.json").read_text())["dependencies"]
    for package in wanted:
        if not (DRIZZLE0 / "node_modules" / package / "package.json").is_file():
            raise HarnessMissing(f"{DRIZZLE0.relative_to(ROOT)}/node_modules is incomplete: {hint}")


def drizzle_migrate(db: Path, folder: Path) -> tuple[bool, str | None]:
    """drizzle-orm 0.45's migrate() on `db` itself (better-sqlite3, foreign keys ON)."""
    require_drizzle()
    proc = subprocess.run(
        ["node", str(DRIZZLE0 / "migrate.mjs"), str(db), str(folder)],
        cwd=DRIZZLE0,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )
    lines = proc.stdout.splitlines()
    if len(lines) != 1:
        raise RuntimeError(f"migrate.mjs: {proc.returncode=} {proc.stdout=} {proc.stderr=}")
    out = json.loads(lines[0])
    return out["result"] == "ok", out["error"]


@dataclass(frozen=True)
class DrizzleRun:
    ok: bool
    error: str | None
    before: Counts
    after: Counts
    copy: Path  # the migrated copy, for a closer look
    seconds: float

    @property
    def changes(self) -> Changes:
        return compare(self.before, self.after)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "error": self.error,
            **self.changes.to_json(),
            "seconds": round(self.seconds, 3),
        }


def run_drizzle(db: Path, folder: Path, copy: Path | None = None) -> DrizzleRun:
    """drizzle's migrator on a copy of `db` (default: `<db folder>/drizzle/<db name>`).

    `db` is left as it is. A `db` that does not exist stands for a new database: the copy
    does not exist either and drizzle creates it.
    """
    copy = copy or db.parent / "drizzle" / db.name
    copy.parent.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{copy}{suffix}").unlink(missing_ok=True)
        if Path(f"{db}{suffix}").exists():
            shutil.copyfile(f"{db}{suffix}", f"{copy}{suffix}")
    before = counts(copy)
    started = time.perf_counter()
    ok, error = drizzle_migrate(copy, folder)
    seconds = time.perf_counter() - started
    return DrizzleRun(ok, error, before, counts(copy), copy, seconds)


# --------------------------------------------------------------------------------------
# Prepared databases


@dataclass(frozen=True)
class Prepared:
    history: str
    k: int
    path: Path | None  # the cached file; None for k == 0 (no database)
    fill: FillReport | None
    seconds: float  # building it: drizzle + fill


_cache_lock = threading.Lock()
_key_locks: dict[tuple[str, int], threading.Lock] = {}
_prepared: dict[tuple[str, int], Prepared] = {}
_cache_root: Path | None = None


def cache_dir() -> Path:
    """The process's cache folder (created on first use, removed at exit)."""
    global _cache_root
    with _cache_lock:
        if _cache_root is None:
            _cache_root = Path(tempfile.mkdtemp(prefix="litedeploy-corpus-"))
            atexit.register(shutil.rmtree, _cache_root, True)
        return _cache_root


def prepared(history: History, k: int) -> Prepared:
    """Build (once) the cached database of `history` at cut point k; see `prepare`."""
    if not 0 <= k <= len(history):
        raise ValueError(f"{history.name} has {len(history)} migrations, no cut point {k}")
    key = (history.name, k)
    with _cache_lock:
        lock = _key_locks.setdefault(key, threading.Lock())
    with lock:
        if key in _prepared:
            return _prepared[key]
        if k == 0:
            _prepared[key] = Prepared(history.name, 0, None, None, 0.0)
            return _prepared[key]
        started = time.perf_counter()
        where = cache_dir() / f"{history.name}-{k:04d}"
        shutil.rmtree(where, ignore_errors=True)
        where.mkdir()
        db = where / "app.db"
        ok, error = drizzle_migrate(db, first(history, k, where / "migrations"))
        if not ok:
            raise RuntimeError(f"drizzle could not apply {history.name}'s first {k}: {error}")
        report = fill_report(db, ROWS_PER_TABLE, SEED)
        for suffix in ("-wal", "-shm", "-journal"):
            if Path(f"{db}{suffix}").exists():
                raise RuntimeError(f"{db}{suffix} left behind: the cache copies the main file only")
        _prepared[key] = Prepared(history.name, k, db, report, time.perf_counter() - started)
        return _prepared[key]


def prepare(history: History, k: int, workdir: Path, name: str = "app.db") -> Path:
    """`workdir/name`: the history's first k migrations applied by drizzle, then filled.

    k == 0: no migration applied is a database that does not exist yet, so the returned path
    names no file (an existing one is removed). The fill's report: `prepared(history, k).fill`.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    dest = workdir / name
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{dest}{suffix}").unlink(missing_ok=True)
    built = prepared(history, k)
    if built.path is not None:
        shutil.copyfile(built.path, dest)
    return dest


# --------------------------------------------------------------------------------------
# Ours


# Where `python -m entrypoint` is imported from: this checkout, or another copy of the package
# (bench/corpus_survey.py --rev exports a commit's entrypoint/ to compare before and after).
ENTRYPOINT_SRC = ROOT


def ours(command: str, db: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m entrypoint COMMAND --db DB --migrations FOLDER --format drizzle-journal ARGS`."""
    env = {k: v for k, v in os.environ.items() if k not in CLI_ENV_VARS}
    src = str(ENTRYPOINT_SRC)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [src, env.get("PYTHONPATH")]))
    argv = [sys.executable, "-m", "entrypoint", command, "--db", str(db)]
    return subprocess.run(
        [*argv, "--migrations", str(folder), "--format", FORMAT, *args],
        cwd=db.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        stdin=subprocess.DEVNULL,
    )


def run_ours(db: Path, folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`entrypoint run ... ARGS -- true`: migrate `db` itself, then exec `true` (exit 0)."""
    return ours("run", db, folder, *args, "--", "true")


@dataclass(frozen=True)
class Rehearsal:
    proc: subprocess.CompletedProcess[str]
    report: dict[str, Any] | None  # the --json document; None when stdout was not JSON

    @property
    def losses(self) -> list[dict[str, Any]]:
        return list((self.report or {}).get("losses") or [])

    @property
    def blocking(self) -> list[dict[str, Any]]:
        return [loss for loss in self.losses if loss.get("blocks")]

    @property
    def failed(self) -> dict[str, Any] | None:
        failed = (self.report or {}).get("failed")
        return failed if isinstance(failed, dict) else None


def rehearse_ours(db: Path, folder: Path, *args: str) -> Rehearsal:
    """`entrypoint rehearse --json`: reads `db` only (its copy lives in $TMPDIR)."""
    proc = ours("rehearse", db, folder, "--json", *args)
    try:
        report = json.loads(proc.stdout)
    except ValueError:
        report = None
    return Rehearsal(proc, report if isinstance(report, dict) else None)


# Lines of `run`'s stderr that say what blocked: the rehearsal's, findings at error/warning
# level, and the final `error:` line.
_BLOCK_LINE = re.compile(r"rehearsal:|\berror:|(?i:finding).*(?i:error|warn|block)|\[[a-z-]+\]")


def blocked_lines(stderr: str) -> list[str]:
    lines = [line.rstrip() for line in stderr.splitlines() if line.strip()]
    picked = [line for line in lines if _BLOCK_LINE.search(line)]
    last_error = next((line for line in reversed(lines) if "error:" in line), None)
    if last_error and last_error not in picked:
        picked.append(last_error)
    return picked
