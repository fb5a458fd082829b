"""The rehearsal: apply the pending migrations to a snapshot copy and compare it with before.

`rehearse` never writes to the live database: it opens it read-only, copies it with SQLite's
online backup API into a private temporary folder, plans against the copy exactly like
`entrypoint run` (same source loading, history table and policy checks), applies the pending
migrations to the copy with `apply_migrations` (so foreign keys are handled the same way),
then compares the copy after migrating with the copy before: rows per table, non-NULL values
per column, and the tables, indexes, triggers and views that vanished. The folder is removed
afterwards, whatever happens.

A loss is *explained* when a statement of the applied migrations says so:

- rows: `DELETE FROM t`, a `DROP TABLE t` that stays dropped (a rebuild that drops and
  recreates `t` does not count), or `t` is an ON DELETE CASCADE descendant of a table deleted
  from (the same rule as `checks.explained_losses`, which decides it);
- values: `ALTER TABLE t DROP COLUMN c` (an explicit DROP COLUMN is the statement that says
  so), the table dropped for good, or the values went with rows whose loss is explained;
- objects: `DROP INDEX/TRIGGER/VIEW name`, or the table it belonged to dropped for good.

Unexplained lost rows, values, tables, triggers and views block; an unexplained vanished index
is a warning (no data goes with it). An intended loss is acknowledged by a directive in one of
the pending migrations (`-- litedeploy: allow lost-rows orders`, `lost-values users.name`,
`lost-object name`) or, for rows (and the values that went with them), by `--allow-row-loss`;
it is still reported. A migration that fails on the copy is reported with its error; it is what
would have happened to the live database.
"""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
import tempfile
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from . import history
from .apply import apply_migrations
from .checks import RowLoss, explained_losses
from .database import check_file, connect, online_copy, uri
from .errors import BackupFailed, MigrationFailed
from .findings import allowing
from .plan import check_policy, make_plan, prepare_history_table
from .replay import NAME, QNAME, q, unquote
from .settings import Options
from .sources import Migration, Source, load_source

Verdict = Literal["explained", "warn", "block"]
Kind = Literal["rows", "values", "table", "index", "trigger", "view"]
_KINDS: dict[str, Kind] = {"table": "table", "index": "index", "trigger": "trigger", "view": "view"}

_I = re.IGNORECASE
_DELETE = re.compile(rf"^DELETE\s+FROM\s+(?P<t>{QNAME})", _I)
_DROP_TABLE = re.compile(rf"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<t>{QNAME})", _I)
_CREATE_TABLE = re.compile(
    rf"^CREATE\s+(?:TEMP(?:ORARY)?\s+)?TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<t>{QNAME})", _I
)
_DROP_OBJECT = re.compile(
    rf"^DROP\s+(?P<type>INDEX|TRIGGER|VIEW)\s+(?:IF\s+EXISTS\s+)?(?P<n>{QNAME})", _I
)
_RENAME_TABLE = re.compile(rf"^ALTER\s+TABLE\s+(?P<t>{QNAME})\s+RENAME\s+TO\s+(?P<new>{NAME})", _I)
_RENAME_COLUMN = re.compile(
    rf"^ALTER\s+TABLE\s+(?P<t>{QNAME})\s+RENAME\s+(?:COLUMN\s+)?(?P<old>{NAME})\s+TO\s+"
    rf"(?P<new>{NAME})",
    _I,
)
_DROP_COLUMN = re.compile(
    rf"^ALTER\s+TABLE\s+(?P<t>{QNAME})\s+DROP\s+(?:COLUMN\s+)?(?P<c>{NAME})", _I
)


@dataclass(frozen=True)
class TableRows:
    """A table's rows before and after (after None: the table is gone; `now`: renamed to)."""

    table: str
    before: int
    after: int | None
    now: str | None = None


@dataclass(frozen=True)
class Loss:
    """Rows, values or a schema object that the migrations made disappear."""

    kind: Kind
    object: str
    verdict: Verdict
    before: int | None = None
    after: int | None = None
    explained_by: str | None = None
    acknowledged_by: str | None = None

    @property
    def rule(self) -> str:
        """The directive rule that acknowledges this kind of loss."""
        return {"rows": "lost-rows", "values": "lost-values"}.get(self.kind, "lost-object")

    @property
    def blocks(self) -> bool:
        return self.verdict == "block" and self.acknowledged_by is None

    @property
    def message(self) -> str:
        if self.kind == "rows":
            after = "the table is gone" if self.after is None else f"{self.after} after"
            what = f"{self.object}: {self.before} row(s) before, {after}"
        elif self.kind == "values":
            gone = self.after is None
            lost = self.before if gone else (self.before or 0) - (self.after or 0)
            where = "the column is gone" if gone else f"{self.before} -> {self.after} non-NULL"
            what = f"{self.object}: {lost} non-NULL value(s) lost ({where})"
        else:
            what = f"{self.kind} {self.object} vanished"
        if self.explained_by:
            return f"{what}; as {self.explained_by} says"
        if self.acknowledged_by:
            return f"{what}; acknowledged by {self.acknowledged_by}"
        return f"{what} without a statement that says so"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "object": self.object,
            "before": self.before,
            "after": self.after,
            "verdict": self.verdict,
            "blocks": self.blocks,
            "explained_by": self.explained_by,
            "acknowledged_by": self.acknowledged_by,
            "message": self.message,
        }


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


def rehearse(options: Options, *, workdir: Path | None = None) -> RehearsalReport:
    """Rehearse the pending migrations on a copy; the live database is only read.

    The copy lives in a private folder made in `workdir` (default: `$TMPDIR`), removed
    afterwards even on failure. Policy refusals (out of order, changed, newer database)
    are raised as `run` raises them; a migration failing on the copy is reported.
    """
    source = load_source(options.migrations_dir, options.format)
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
    try:
        folder = Path(tempfile.mkdtemp(prefix="litedeploy-rehearsal-", dir=workdir))
    except OSError as exc:
        raise BackupFailed(
            f"cannot make the rehearsal's folder in {workdir or tempfile.gettempdir()}: "
            f"{exc.strerror or exc}",
            hint="set --rehearsal-dir / REHEARSAL_DIR to a writable folder with room for a copy "
            "of the database (or skip the copy with --no-rehearse)",
        ) from exc
    try:
        copy = folder / "rehearsal.db"
        started = time.perf_counter()
        size = _snapshot(options.db_path, copy)
        snapshot_ms = _ms_since(started)
        with contextlib.closing(connect(copy)) as conn:
            conn.execute("PRAGMA synchronous = OFF")  # a throw-away copy needs no fsync
            _rehearse_on(conn, source, options, report)
        report.cost = Cost(snapshot_ms, report.cost.apply_ms, report.cost.compare_ms, size)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return report


def _rehearse_on(
    conn: sqlite3.Connection, source: Source, options: Options, report: RehearsalReport
) -> None:
    """Plan like `run` (migrate._migrate), measure, apply, measure again, compare."""
    table = history.locate(conn, source.format, options.history_table)
    rows = history.read(conn, table)
    plan = make_plan(source, table.kind, rows)
    check_policy(
        plan,
        allow_out_of_order=options.allow_out_of_order,
        allow_changed=options.allow_changed,
        allow_newer_database=options.allow_newer_database,
    )
    pending = plan.to_apply(allow_out_of_order=options.allow_out_of_order)
    report.history_table = table.name
    report.pending = [m.name for m in pending]
    if not pending:
        return
    started = time.perf_counter()
    before = _measure(conn, table.name)
    compare_ms = _ms_since(started)

    def prepare(tx: sqlite3.Connection) -> history.Table:
        return prepare_history_table(tx, table, plan, source.format, expected_rows=len(rows))

    started = time.perf_counter()
    try:
        apply_migrations(
            conn,
            table,
            pending,
            one_transaction=options.one_transaction,
            prepare=prepare,
            quiet=True,
        )
    except MigrationFailed as exc:
        report.failure = Failure(None, exc.message)
    apply_ms = _ms_since(started)
    done = len(history.read(conn, history.locate(conn, source.format, table.name))) - len(rows)
    applied = pending[:done]
    report.applied = [m.name for m in applied]
    if report.failure is not None and not options.one_transaction:
        report.failure = Failure(pending[done].name, report.failure.error)
    started = time.perf_counter()
    after = _measure(conn, table.name)
    report.tables, losses = _compare(conn, before, after, applied)
    report.losses = acknowledged(losses, pending, allow_row_loss=options.allow_row_loss)
    compare_ms += _ms_since(started)
    report.cost = Cost(0.0, apply_ms, round(compare_ms, 1), 0)


def _snapshot(db_path: Path, copy: Path) -> int:
    """Copy the live database with the online backup API (a consistent, read-only snapshot)."""
    try:
        src = sqlite3.connect(uri(db_path, "ro"), uri=True, timeout=30)
        try:
            online_copy(src, copy)
        finally:
            src.close()
        return copy.stat().st_size
    except (OSError, sqlite3.Error) as exc:
        raise BackupFailed(
            f"cannot take the rehearsal's snapshot of {db_path} in {copy.parent}: {exc}",
            hint="check free space and permissions of $TMPDIR",
        ) from exc


def _ms_since(started: float) -> float:
    return round(max(0.0, time.perf_counter() - started) * 1000, 1)


@dataclass(frozen=True)
class _State:
    """Rows, non-NULL values per column, and schema objects of a database at one moment."""

    rows: dict[str, int]
    values: dict[str, dict[str, int]]  # table -> column -> non-NULL values
    objects: dict[tuple[str, str], str]  # (type, name) -> the table it belongs to


def _measure(conn: sqlite3.Connection, history_table: str) -> _State:
    """One scan per table: count(*) and count(column) for every column."""
    skip = history_table.lower()
    rows: dict[str, int] = {}
    values: dict[str, dict[str, int]] = {}
    tables = [
        str(r[0])
        for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%' ORDER BY name"
        )
    ]
    for t in tables:
        if t.lower() == skip:
            continue
        columns = [str(r[1]) for r in conn.execute("SELECT * FROM pragma_table_info(?)", (t,))]
        counts = ", ".join(["count(*)", *(f"count({q(c)})" for c in columns)])
        got = conn.execute(f"SELECT {counts} FROM {q(t)}").fetchone()  # noqa: S608
        rows[t] = int(got[0])
        values[t] = {c: int(n) for c, n in zip(columns, got[1:], strict=True)}
    objects = {
        (str(kind), str(name)): str(table)
        for kind, name, table in conn.execute(
            "SELECT type, name, tbl_name FROM sqlite_master WHERE name NOT LIKE 'sqlite_%' "
            "AND type IN ('table', 'index', 'trigger', 'view')"
        )
        if str(name).lower() != skip
    }
    return _State(rows, values, objects)


class _Story:
    """Follows the applied statements: renames, and the statements that explain a loss."""

    def __init__(self, tables: list[str]) -> None:
        self.current: dict[str, str | None] = {t.lower(): t.lower() for t in tables}
        self.dropped_as: dict[str, str] = {}
        self.columns: dict[tuple[str, str], str] = {}
        self.deleted: dict[str, str] = {}  # table name as written -> the statement
        self.drops: dict[str, str] = {}  # original table -> the DROP TABLE statement
        self.dropped_columns: dict[tuple[str, str], str] = {}
        self.dropped_objects: dict[str, str] = {}  # object name -> the DROP statement

    def follow(self, migrations: list[Migration]) -> list[str]:
        codes = []
        for m in migrations:
            for s in m.statements:
                code = s.code
                codes.append(code)
                self._one(code, f"{m.name} statement {s.number} ({_preview(code)})")
        return codes

    def _originals(self, name: str) -> list[str]:
        return [o for o, cur in self.current.items() if cur == name]

    def _one(self, code: str, ref: str) -> None:
        if m := _RENAME_COLUMN.match(code):
            t, old, new = (unquote(m.group(g)).lower() for g in ("t", "old", "new"))
            for o in self._originals(t):
                for key, col in self.columns.items():
                    if key[0] == o and col == old:
                        self.columns[key] = new
        elif m := _RENAME_TABLE.match(code):
            t, new = unquote(m.group("t")).lower(), unquote(m.group("new")).lower()
            for o in self._originals(t):
                self.current[o] = new
            self._reattach(new)
        elif m := _DROP_COLUMN.match(code):
            t, c = unquote(m.group("t")).lower(), unquote(m.group("c")).lower()
            for o in self._originals(t):
                for key, col in self.columns.items():
                    if key[0] == o and col == c:
                        self.dropped_columns[key] = ref
        elif m := _DROP_TABLE.match(code):
            t = unquote(m.group("t")).lower()
            for o in self._originals(t):
                self.current[o] = None
                self.dropped_as[o] = t
                self.drops[o] = ref
        elif m := _CREATE_TABLE.match(code):
            self._reattach(unquote(m.group("t")).lower())
        elif m := _DROP_OBJECT.match(code):
            self.dropped_objects[unquote(m.group("n")).lower()] = ref
        elif m := _DELETE.match(code):
            self.deleted.setdefault(unquote(m.group("t")).lower(), ref)

    def _reattach(self, name: str) -> None:
        """A table dropped and recreated under its name (a rebuild) is the same table."""
        for o, cur in self.current.items():
            if cur is None and self.dropped_as.get(o) == name:
                self.current[o] = name
                self.drops.pop(o, None)

    def settle(self, existing: set[str]) -> None:
        """A table dropped and then recreated under its name (a rebuild) is the same table."""
        for o, cur in self.current.items():
            if cur is None and self.dropped_as.get(o) in existing:
                self.current[o] = self.dropped_as[o]
                self.drops.pop(o, None)


def _compare(
    conn: sqlite3.Connection, before: _State, after: _State, applied: list[Migration]
) -> tuple[list[TableRows], list[Loss]]:
    story = _Story(list(before.rows))
    story.columns = {
        (t.lower(), c.lower()): c.lower() for t, cols in before.values.items() for c in cols
    }
    codes = story.follow(applied)
    by_lower = {t.lower(): t for t in after.rows}
    story.settle(set(by_lower))

    tables: list[TableRows] = []
    row_losses: list[tuple[str, RowLoss]] = []
    for t, count in before.rows.items():
        cur = story.current[t.lower()]
        now = by_lower.get(cur) if cur else None
        after_count = after.rows[now] if now is not None else None
        renamed = now if now is not None and now.lower() != t.lower() else None
        tables.append(TableRows(t, count, after_count, renamed))
        if count > (after_count or 0):
            match_name = now if now is not None else t  # DELETE names the table as it is
            row_losses.append((t, RowLoss(match_name, count, after_count)))
    expected, _ = explained_losses(conn, codes, [loss for _, loss in row_losses])
    explained_tables: set[str] = set()
    losses: list[Loss] = []
    for original, loss in row_losses:
        why = None
        if loss in expected:
            explained_tables.add(original.lower())
            why = (
                story.deleted.get(loss.table.lower())
                or story.drops.get(original.lower())
                or "an ON DELETE CASCADE from a DELETE"
            )
        verdict: Verdict = "explained" if why else "block"
        losses.append(Loss("rows", original, verdict, loss.before, loss.after, why))

    for t, cols in before.values.items():
        cur = story.current[t.lower()]
        now = by_lower.get(cur) if cur else None
        now_cols = {c.lower(): n for c, n in after.values[now].items()} if now else {}
        for c, n in cols.items():
            key = (t.lower(), c.lower())
            left = now_cols.get(story.columns[key]) if now else None
            if n == 0 or (left is not None and left >= n):
                continue
            why = story.dropped_columns.get(key) if left is None else None
            if now is None:
                why = story.drops.get(t.lower())
            if why is None and t.lower() in explained_tables:
                why = next(x.explained_by for x in losses if x.object == t and x.kind == "rows")
            losses.append(Loss("values", f"{t}.{c}", "explained" if why else "block", n, left, why))

    names_after = {name.lower() for _, name in after.objects}
    gone_tables = {t.lower() for t, cur in story.current.items() if cur is None}
    for (kind, name), owner in sorted(before.objects.items()):
        if kind == "table":
            if name.lower() not in gone_tables:
                continue
            why = story.drops.get(name.lower())
        elif name.lower() in names_after:
            continue
        else:
            why = story.dropped_objects.get(name.lower()) or story.drops.get(owner.lower())
        verdict = "explained" if why else ("warn" if kind == "index" else "block")
        losses.append(Loss(_KINDS[kind], name, verdict, explained_by=why))
    return tables, losses


def acknowledged(
    losses: list[Loss], migrations: list[Migration], *, allow_row_loss: bool
) -> list[Loss]:
    """Mark the blocking losses a directive (or --allow-row-loss, for rows) acknowledges.

    Values lost with acknowledged rows are acknowledged with them.
    """
    by_table: dict[str, str] = {}
    why: dict[int, str] = {}
    order = sorted(range(len(losses)), key=lambda i: losses[i].kind != "rows")
    for i in order:  # rows first: the values that went with them follow their verdict
        loss = losses[i]
        if not loss.blocks:
            continue
        reason = allowing(migrations, loss.rule, loss.object)
        if reason is None and loss.kind == "rows" and allow_row_loss:
            reason = "--allow-row-loss"
        if reason is None and loss.kind == "values":
            reason = by_table.get(loss.object.rsplit(".", 1)[0].lower())
        if reason is not None:
            why[i] = reason
            if loss.kind == "rows":
                by_table[loss.object.lower()] = reason
    return [
        replace(loss, acknowledged_by=why[i]) if i in why else loss for i, loss in enumerate(losses)
    ]


def _preview(sql: str, limit: int = 60) -> str:
    flat = " ".join(sql.split()).rstrip(";")
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
