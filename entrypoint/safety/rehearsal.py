"""The rehearsal: apply the pending migrations to a copy, and let the judge compare.

`rehearse` never writes to the live database: it opens it read-only and copies it (a file
copy under a read transaction, or SQLite's online backup API when the WAL holds frames: see
`_snapshot`) into a private temporary folder (`before.db`), clones that file
(`after.db`), plans against the clone exactly like `entrypoint run` (same source loading,
history table and policy checks), applies the pending migrations to it with
`apply_migrations` (so foreign keys are handled the same way), then hands both files to
`judge.judge`, which looks for every row and non-NULL value of `before.db` in `after.db`
(see there: a value counts as kept in its row's new home, under another column name, or
moved to another table keyed by the same id). The folder is removed afterwards, whatever
happens.

The rehearsal is the gate's judge: a block needs evidence from the copy. An intended loss
is acknowledged (`loss.Acknowledgements`); it is still reported. A migration that fails on
the copy is reported with its error; it is what would have happened to the live database.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..base import faults
from ..base.durable import copy_to_new, size_of
from ..base.errors import BackupFailed, MigrationFailed
from ..base.progress import watching
from ..engine import fkcheck, history
from ..engine.apply import apply_migrations
from ..engine.plan import Planned, check_policy, make_plan, prepare_history_table, read_plan
from ..engine.sources import Source, load_source
from ..safetynet.database import begin_quiet_read, check_file, connect, online_copy, uri
from ..settings import Options
from . import scratch
from .judge import BEFORE, TableRows, judge, measure_file
from .loss import Acknowledgements, Loss

__all__ = ["Cost", "Failure", "Loss", "RehearsalReport", "TableRows", "rehearse"]


@dataclass(frozen=True)
class Cost:
    """What the rehearsal took: wall-clock milliseconds per phase and the copy's size."""

    snapshot_ms: float = 0.0
    apply_ms: float = 0.0
    compare_ms: float = 0.0
    snapshot_bytes: int = 0

    @property
    def total_ms(self) -> float:
        return round(self.snapshot_ms + self.apply_ms + self.compare_ms, 1)


@dataclass(frozen=True)
class Failure:
    """A migration that failed on the copy: what would have happened to the live database."""

    migration: str | None
    error: str


@dataclass
class RehearsalReport:
    """Everything the rehearsal found; `problems()` lists what blocks, first one first."""

    database: Path
    database_exists: bool
    migrations_dir: Path
    format: str
    history_table: str
    pending: list[str] = field(default_factory=list)
    applied: list[str] = field(default_factory=list)
    failure: Failure | None = None
    tables: list[TableRows] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)
    cost: Cost = field(default_factory=Cost)

    @property
    def rehearsed(self) -> bool:
        return self.database_exists and bool(self.pending)

    def blocking(self) -> list[Loss]:
        return [loss for loss in self.losses if loss.blocks]

    def problems(self) -> list[str]:
        """One line per blocking problem: a failed migration first, then losses."""
        lines = []
        if self.failure is not None:
            name = f"{self.failure.migration} " if self.failure.migration else ""
            lines.append(f"{name}failed on the copy: {self.failure.error}")
        lines += [loss.message for loss in self.blocking()]
        return lines

    @property
    def verdict(self) -> str:
        if not self.database_exists:
            return "nothing to rehearse"
        if self.failure is not None:
            return "fail"
        return "block" if self.blocking() else "pass"

    def to_json(self) -> dict[str, Any]:
        failure = self.failure
        return {
            "database": str(self.database),
            "database_exists": self.database_exists,
            "migrations_dir": str(self.migrations_dir),
            "format": self.format,
            "history_table": self.history_table,
            "pending": self.pending,
            "applied": self.applied,
            "failed": None
            if failure is None
            else {"migration": failure.migration, "error": failure.error},
            "tables": [
                {"table": t.table, "before": t.before, "after": t.after, "now": t.now}
                for t in self.tables
            ],
            "losses": [loss.to_json() for loss in self.losses],
            "blocking": len(self.problems()),
            "verdict": self.verdict,
            "cost": {
                "snapshot_ms": self.cost.snapshot_ms,
                "apply_ms": self.cost.apply_ms,
                "compare_ms": self.cost.compare_ms,
                "total_ms": self.cost.total_ms,
                "snapshot_bytes": self.cost.snapshot_bytes,
            },
        }


def rehearse(
    options: Options, *, workdir: Path | None = None, planned: Planned | None = None
) -> RehearsalReport:
    """Rehearse the pending migrations on a copy; the live database is only read.

    The copies live in a private folder made in `workdir` (default: `$TMPDIR`), removed
    afterwards even on failure. Policy refusals (out of order, changed, newer database)
    are raised as `run` raises them; a migration failing on the copy is reported. `planned`
    is the plan `run` made of the live database under the lock it still holds (the copy has
    the same history): it is used as it is, neither the folder nor the history read again.
    """
    source = planned.source if planned else load_source(options.migrations_dir, options.format)
    report = RehearsalReport(
        database=options.db_path,
        database_exists=check_file(options.db_path),
        migrations_dir=source.folder,
        format=str(source.format),
        history_table=history.new_table(source.format, options.history_table).name,
    )
    if not report.database_exists:
        plan = make_plan(source, history.new_table(source.format, options.history_table).kind, [])
        report.pending = [m.name for m in plan.to_apply(allow_out_of_order=False)]
        return report
    scratch.remove_stale(workdir)  # the copies of runs that were killed
    try:
        folder = Path(tempfile.mkdtemp(prefix=scratch.prefix(), dir=workdir))
    except OSError as exc:
        raise BackupFailed(
            f"cannot make the rehearsal's folder in {workdir or tempfile.gettempdir()}: "
            f"{exc.strerror or exc}",
            hint="set --rehearsal-dir / LITEDEPLOY_REHEARSAL_DIR to a writable folder with room "
            "for two copies of the database (or skip the copy with --no-rehearse)",
        ) from exc
    try:
        before, after = folder / "before.db", folder / "after.db"
        started = time.perf_counter()
        size = _snapshot(options.db_path, before, after)
        snapshot_ms = _ms_since(started)
        with contextlib.closing(connect(after)) as conn:
            conn.execute("PRAGMA synchronous = OFF")  # a throw-away copy needs no fsync
            fence = Fence(folder)
            conn.set_authorizer(fence)
            _rehearse_on(
                conn, before, planned or _plan_copy(conn, source, options), options, report
            )
            if report.failure is not None and fence.refused:
                report.failure = Failure(
                    report.failure.migration,
                    f"it opens {fence.refused[0]} (ATTACH or VACUUM INTO), a file outside the "
                    "rehearsal's copy, which the rehearsal may not write (an acknowledged "
                    "migration that must open it runs with --no-rehearse); "
                    f"SQLite said: {report.failure.error}",
                )
        report.cost = Cost(snapshot_ms, report.cost.apply_ms, report.cost.compare_ms, size)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def _plan_copy(conn: sqlite3.Connection, source: Source, options: Options) -> Planned:
    """Plan the copy like `run` does the live database, with the same policy checks."""
    planned = read_plan(conn, source, options.history_table)
    check_policy(
        planned.plan,
        allow_out_of_order=options.allow_out_of_order,
        allow_changed=options.allow_changed,
        allow_newer_database=options.allow_newer_database,
    )
    return planned


def _rehearse_on(
    conn: sqlite3.Connection,
    before: Path,
    planned: Planned,
    options: Options,
    report: RehearsalReport,
) -> None:
    """Apply the pending migrations of the plan to the copy, then judge after against before."""
    source, table, rows, plan = planned.source, planned.table, planned.rows, planned.plan
    pending = plan.to_apply(allow_out_of_order=options.allow_out_of_order)
    report.history_table = table.name
    report.pending = [m.name for m in pending]
    if not pending:
        return

    def prepare(tx: sqlite3.Connection) -> history.HistoryTable:
        return prepare_history_table(tx, table, plan, source.format, expected_rows=len(rows))

    from concurrent.futures import ThreadPoolExecutor  # 10 ms to import: only for a rehearsal

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=1) as pool:
        # The judge's counts of `before` (a scan of every table) on a second CPU meanwhile:
        # nobody writes the snapshot, the migrations run on its clone.
        counted = pool.submit(measure_file, before, [table.name])
        try:
            apply_migrations(
                conn,
                table,
                pending,
                one_transaction=options.one_transaction,
                prepare=prepare,
                quiet=True,
                # `conn` is a clone of `before`: the violations before are asked of it, per
                # table and only for tables with violations after (none, usually), not twice.
                baseline=fkcheck.Snapshot(before),
            )
        except MigrationFailed as exc:
            report.failure = Failure(None, exc.message)
        apply_ms = _ms_since(started)
        counts_before = counted.result()
    faults.point("rehearsal.applied")
    done = len(history.read(conn, history.locate(conn, source.format, table.name))) - len(rows)
    applied = pending[:done]
    report.applied = [m.name for m in applied]
    if report.failure is not None and not options.one_transaction:
        failed = pending[min(done, len(pending) - 1)]  # it may fail after its own COMMIT
        report.failure = Failure(failed.name, report.failure.error)
    started = time.perf_counter()
    conn.set_authorizer(None)  # the fence is for the migrations; the judge reads `before`
    conn.execute(f"ATTACH DATABASE ? AS {BEFORE}", (uri(before, "ro"),))
    try:
        found = judge(conn, applied, [table.name], before=counts_before)
    finally:
        conn.execute(f"DETACH DATABASE {BEFORE}")
    report.tables = found.tables
    report.losses = acknowledgements(pending, options).apply(found.losses)
    report.cost = Cost(0.0, apply_ms, _ms_since(started), 0)


def acknowledgements(pending: list[Any], options: Options) -> Acknowledgements:
    """The pending migrations' directives, the operator's --allow, and --allow-row-loss."""
    return Acknowledgements.gather(pending, options.allow, row_loss=options.allow_row_loss)


class Fence:
    """An authorizer that keeps the rehearsal inside its folder.

    The migrations run on the copy exactly as written, so a statement that opens another
    file (ATTACH, VACUUM INTO: both ask for SQLITE_ATTACH) would write the real one: the
    rehearsal of a migration that moves rows out of an attached database emptied the real
    file. Only files inside the rehearsal's own folder may be opened; extensions may not be
    loaded.
    """

    def __init__(self, folder: Path) -> None:
        self.folder = folder.resolve()
        self.refused: list[str] = []

    def __call__(
        self, action: int, arg1: str | None, arg2: str | None, db: str | None, trigger: str | None
    ) -> int:
        if action == sqlite3.SQLITE_ATTACH and (arg1 or ":memory:") != ":memory:":
            target = Path(arg1 or "")
            inside = target.is_absolute() and target.resolve().is_relative_to(self.folder)
            if not inside:
                self.refused.append(arg1 or "(an in-memory or unnamed database)")
                return sqlite3.SQLITE_DENY
        if action == sqlite3.SQLITE_FUNCTION and (arg2 or "").lower() == "load_extension":
            self.refused.append("an extension (load_extension)")
            return sqlite3.SQLITE_DENY
        return sqlite3.SQLITE_OK


def _snapshot(db_path: Path, before: Path, after: Path) -> int:
    """Copy the live database, then clone the copy; the live file is only read.

    Under a read transaction that sees no WAL frames (`begin_quiet_read`: the WAL empty or
    absent, as after a clean close) the main file alone is the snapshot and nothing can
    write it while the transaction lasts, so a kernel copy of the file is taken then (about a
    third of the backup API's time). Otherwise, with frames to read, the online backup API
    copies what a read transaction sees.
    """
    try:
        total = size_of(db_path)
        src = sqlite3.connect(uri(db_path, "ro"), uri=True, timeout=30, isolation_level=None)
        try:
            with watching("rehearsal snapshot", before, total):
                if begin_quiet_read(src, db_path):
                    copy_to_new(db_path, before)
                    src.execute("COMMIT")
                else:
                    online_copy(src, before)
        finally:
            src.close()
        with watching("rehearsal copy", after, before.stat().st_size):
            copy_to_new(before, after)
        return before.stat().st_size
    except (OSError, sqlite3.Error) as exc:
        raise BackupFailed(
            f"cannot take the rehearsal's snapshot of {db_path} in {before.parent}: {exc}",
            hint="check free space (two copies of the database) and permissions of $TMPDIR "
            "(or --rehearsal-dir)",
        ) from exc


def _ms_since(started: float) -> float:
    return round(max(0.0, time.perf_counter() - started) * 1000, 1)
