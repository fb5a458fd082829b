"""The judge: which rows and values present before the migrations are absent after them.

Given one connection to the database after migrating (`main`) with the database before
attached (`before`), and the migrations that were applied, `judge` replays the migrations'
lineage (`replay.Lineage`: where each value was copied) and then looks, row by row, for
every non-NULL value the database held before:

- in the same row of the table's continuation (same table, renamed, or rebuilt: the row
  matched by its primary key, followed through the copy; by rowid or content when the
  table has none), in the column it was carried to, compared without type affinity, so
  `'12.50'` stored as `12.5` is a changed value while `'5'` stored as `5` is the same;
- or in another table it was copied to, keyed by the same id (an identity column the
  migration carried there, or a foreign key between the two tables and a column of the
  same name), which is how values moved to another table are found;
- a value computed from others (`url = base_url || endpoint`) counts as kept where the
  result still contains it.

A row is lost when its table's continuation does not hold it and none of its values was
moved; values are lost when neither holds them. Losses a statement asks for are
*explained* (rows removed by a DELETE and its ON DELETE CASCADE). Everything else
blocks, with the counts measured here, until acknowledged (`loss.Acknowledgements`).
Triggers and views that vanish without a DROP block; indexes warn.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..base.ident import quote
from ..engine.sources import Migration
from ..safetynet.database import uri
from . import schema
from .lineage import Location
from .loss import Loss, Verdict
from .replay import Replay

BEFORE = "before"


@dataclass(frozen=True)
class TableRows:
    """A table's rows before and after (after None: the table is gone; `now`: renamed to)."""

    table: str
    before: int
    after: int | None
    now: str | None = None


@dataclass
class Judgement:
    tables: list[TableRows] = field(default_factory=list)
    losses: list[Loss] = field(default_factory=list)


@dataclass(frozen=True)
class Counts:
    """Rows per table, and non-NULL values per column, of one database."""

    rows: dict[str, int]
    values: dict[str, dict[str, int]]


def same(a: str, b: str) -> str:
    """SQL: a and b hold the same value, compared without column affinity."""
    return f"(+{a} IS +{b} OR CAST(+{a} AS TEXT) IS CAST(+{b} AS TEXT))"


def contains(a: str, b: str) -> str:
    """SQL: a holds b, or a text a contains b's text (a value computed from b)."""
    text = f"CAST(+{b} AS TEXT)"
    inside = f"typeof(+{a}) = 'text' AND length({text}) > 0 AND instr(+{a}, {text}) > 0"
    return f"({same(a, b)} OR ({inside}))"


def measure(conn: sqlite3.Connection, skip: Sequence[str], *, schema_name: str) -> Counts:
    """One scan per table: count(*) and count(column) for every column."""
    rows: dict[str, int] = {}
    values: dict[str, dict[str, int]] = {}
    s = quote(schema_name)
    for t in schema.data_tables(conn, skip, schema=schema_name):
        cols = [c.name for c in schema.columns(conn, t, schema=schema_name)]
        counts = ", ".join(["count(*)", *(f"count({quote(c)})" for c in cols)])
        got = conn.execute(f"SELECT {counts} FROM {s}.{quote(t)}").fetchone()
        rows[t] = int(got[0])
        values[t] = {c: int(n) for c, n in zip(cols, got[1:], strict=True)}
    return Counts(rows, values)


def measure_file(path: Path, skip: Sequence[str]) -> Counts:
    """`measure` of a database file nobody writes (the rehearsal's snapshot), on its own
    connection: the rehearsal counts `before` on a second CPU while the migrations run."""
    conn = sqlite3.connect(uri(path, "ro", immutable=True), uri=True)
    try:
        return measure(conn, skip, schema_name="main")
    finally:
        conn.close()


def judge(
    conn: sqlite3.Connection,
    applied: Sequence[Migration],
    skip: Sequence[str],
    *,
    before: Counts | None = None,
) -> Judgement:
    """Compare `before` (attached) with `main` after `applied` ran; see the module docstring.

    `before`: its counts when already measured (`measure_file` of the same file, same skip).
    """
    replay = Replay(conn, source_schema=BEFORE, skip=tuple(skip))
    try:
        for m in applied:
            fk_on = not m.wants_foreign_keys_off
            for s, op in zip(m.statements, m.ops, strict=True):
                replay.step(op, f"{m.name} statement {s.number}", foreign_keys_on=fk_on)
        return _Judge(conn, replay, skip, before).run()
    finally:
        replay.close()


class _Judge:
    def __init__(
        self, conn: sqlite3.Connection, replay: Replay, skip: Sequence[str], before: Counts | None
    ) -> None:
        self.conn = conn
        self.lin = replay.lineage
        self.before = before if before is not None else measure(conn, skip, schema_name=BEFORE)
        self.after = measure(conn, skip, schema_name="main")
        self.after_names = {t.lower(): t for t in self.after.rows}
        if self._triggers_fired():
            self.lin.everything_touched = True

    def _triggers_fired(self) -> bool:
        """A trigger on a table the migrations wrote may have written anywhere."""
        for (table,) in self.conn.execute(
            f"SELECT tbl_name FROM {BEFORE}.sqlite_master WHERE type = 'trigger'"
        ):
            cur = self.lin.current.get(str(table).lower())
            if cur is None or cur in self.lin.touched:
                return True
        return False

    def run(self) -> Judgement:
        out = Judgement()
        for t, n in self.before.rows.items():
            successor = self._successor(t)
            after = self.after.rows.get(successor) if successor else None
            now = successor if successor and successor.lower() != t.lower() else None
            out.tables.append(TableRows(t, n, after, now))
            if n and not self._clean(t, successor):
                out.losses += self._table(t, successor)
        out.losses += self._objects()
        return out

    # -- which table continues which

    def _successor(self, t: str) -> str | None:
        """The table after the migrations that holds t's rows (its key carried there)."""
        key = schema.primary_key(self.conn, t, schema=BEFORE)
        cur = self.lin.current.get(t.lower())
        homes: set[str] | None = None
        for k in key:
            here = {loc.table for loc in self._locs(t, k) if loc.exact}
            homes = here if homes is None else homes & here
        if homes:
            pick = cur if cur in homes else sorted(homes)[0]
            return self.after_names.get(pick)
        if cur is not None and cur in self.after_names:
            return self.after_names[cur]
        if not key:  # a rowid table copied elsewhere: where most of its columns went
            tally: dict[str, int] = {}
            for c in self.before.values[t]:
                for loc in self._locs(t, c):
                    if loc.exact and loc.table in self.after_names:
                        tally[loc.table] = tally.get(loc.table, 0) + 1
            if tally:
                return self.after_names[max(sorted(tally), key=lambda x: tally[x])]
        return None

    def _locs(self, t: str, c: str) -> set[Location]:
        return {
            loc
            for loc in self.lin.locations.get((t.lower(), c.lower()), set())
            if loc.table in self.after_names
        }

    def _clean(self, t: str, successor: str | None) -> bool:
        """Nothing touched the table and nothing it held is missing by count."""
        if successor is None or successor.lower() != t.lower() or self.lin.everything_touched:
            return False
        if t.lower() in self.lin.touched or t.lower() in self.lin.deleted:
            return False
        after = self.after.values.get(successor, {})
        after_lower = {c.lower(): n for c, n in after.items()}
        if self.after.rows[successor] < self.before.rows[t]:
            return False
        return all(after_lower.get(c.lower(), 0) >= n for c, n in self.before.values[t].items())

    # -- one table, row by row

    def _table(self, t: str, successor: str | None) -> list[Loss]:
        conn = self.conn
        key = schema.primary_key(conn, t, schema=BEFORE)
        before_cols = [c.name for c in schema.columns(conn, t, schema=BEFORE)]
        join, joined_by = self._join(t, successor, key, before_cols)
        if join is None:
            successor = None
        identity = key if len(key) == 1 else []
        judged = [
            c
            for c in before_cols
            if self.before.values[t].get(c, 0) and c not in joined_by and c not in identity
        ]
        if successor is not None and join is not None:
            rowid = "" if schema.without_rowid(conn, successor) else "rowid AS _ld_rowid, "
            target = f"(SELECT 1 AS _ld_hit, {rowid}* FROM main.{quote(successor)}) AS s ON {join}"
            source = f"{BEFORE}.{quote(t)} AS t LEFT JOIN {target}"
            hit = "s._ld_hit IS NOT NULL"
        else:
            source, hit = f"{BEFORE}.{quote(t)} AS t", "0"
        in_place = {c: self._in_place(t, c, successor) for c in judged}
        moved = {c: self._moved(t, c, successor, before_cols) for c in judged}
        any_moved = " OR ".join(f"(t.{quote(c)} IS NOT NULL AND {moved[c]})" for c in judged)
        any_moved = f"({any_moved or '0'})"
        sums = [f"sum(CASE WHEN NOT ({hit}) AND NOT {any_moved} THEN 1 ELSE 0 END)"]
        homes = {c: self._home(t, c, successor) for c in judged}
        for c in judged:
            col = f"t.{quote(c)}"
            kept = f"({in_place[c]} OR {moved[c]})"
            sums.append(
                f"sum(CASE WHEN {col} IS NULL THEN 0 WHEN {hit} THEN NOT {kept} "
                f"WHEN {any_moved} THEN NOT {moved[c]} ELSE 0 END)"
            )
            home = homes[c]
            blank = f"s.{quote(home)} IS NULL" if home else "0"
            sums.append(
                f"sum(CASE WHEN {col} IS NOT NULL AND {hit} AND NOT {kept} AND {blank} "
                "THEN 1 ELSE 0 END)"
            )
        try:
            got = conn.execute(f"SELECT {', '.join(sums)} FROM {source}").fetchone()
        except sqlite3.Error as exc:
            return [Loss("rows", t, "block", self.before.rows[t], None, f"not measured: {exc}")]
        rows_lost = int(got[0] or 0)
        losses: list[Loss] = []
        deleted = self.lin.deleted.get(t.lower()) or (
            self.lin.deleted.get(successor.lower()) if successor else None
        )
        if rows_lost:
            dropped = self.lin.dropped_tables.get(t.lower())
            what = f"the table is dropped by {dropped}" if dropped and successor is None else ""
            losses.append(
                Loss(
                    "rows",
                    t,
                    "explained" if deleted else "block",
                    self.before.rows[t],
                    rows_lost,
                    what,
                    explained_by=deleted,
                )
            )
        for i, c in enumerate(judged):
            n, blanked = int(got[1 + 2 * i] or 0), int(got[2 + 2 * i] or 0)
            if not n:
                continue
            dropped_col = self.lin.dropped_columns.get((t.lower(), c.lower()))
            if dropped_col:
                what = f"the column is dropped by {dropped_col}"
            elif homes[c] is None:
                what = (
                    "the column is not carried over"
                    if successor is not None
                    else "not moved with the rest of the row"
                )
            elif blanked == n:
                what = f"set to NULL in {successor}.{homes[c]}"
            elif blanked:
                what = f"{n - blanked} changed, {blanked} set to NULL in {successor}.{homes[c]}"
            else:
                what = f"changed in {successor}.{homes[c]}"
            losses.append(
                Loss("values", f"{t}.{c}", "block", self.before.values[t][c], int(n), what)
            )
        return losses

    def _join(
        self, t: str, successor: str | None, key: list[str], cols: list[str]
    ) -> tuple[str | None, list[str]]:
        """SQL matching a before row `t` to its row `s` in the successor, and the columns used."""
        if successor is None:
            return None, []
        after_cols = {c.name.lower(): c.name for c in schema.columns(self.conn, successor)}
        s = successor.lower()

        def home(c: str) -> str | None:
            exact = sorted(loc.column for loc in self._locs(t, c) if loc.exact and loc.table == s)
            if exact:
                return after_cols.get(exact[0])
            if self.lin.everything_touched or s == t.lower():
                return after_cols.get(c.lower())
            return None

        if key:
            homes = [home(k) for k in key]
            if all(homes):
                on = " AND ".join(
                    f"s.{quote(h or '')} = t.{quote(k)}" for k, h in zip(key, homes, strict=True)
                )
                return on, list(key)
            return None, []
        if s == t.lower() and s not in self.lin.rebuilt:
            return "s._ld_rowid = t.rowid", []
        pairs = [(c, h) for c in cols if (h := home(c))]
        if not pairs:
            return None, []
        first, rest = pairs[0], pairs[1:]
        on = f"s.{quote(first[1])} = t.{quote(first[0])}" + "".join(
            f" AND {same('s.' + quote(h), 't.' + quote(c))}" for c, h in rest
        )
        return on, [c for c, _ in pairs]

    def _home(self, t: str, c: str, successor: str | None) -> str | None:
        """The successor's column that t.c was carried to as is (the first one), if any."""
        if successor is None:
            return None
        after_cols = {x.name.lower(): x.name for x in schema.columns(self.conn, successor)}
        exact = sorted(
            loc.column for loc in self._locs(t, c) if loc.exact and loc.table == successor.lower()
        )
        if exact:
            return after_cols.get(exact[0])
        if self.lin.everything_touched or successor.lower() == t.lower():
            dropped = (t.lower(), c.lower()) in self.lin.dropped_columns
            return None if dropped else after_cols.get(c.lower())
        return None

    def _in_place(self, t: str, c: str, successor: str | None) -> str:
        if successor is None:
            return "0"
        s = successor.lower()
        after_cols = {x.name.lower(): x.name for x in schema.columns(self.conn, successor)}
        tests = []
        locs = [loc for loc in self._locs(t, c) if loc.table == s]
        if not locs and (self.lin.everything_touched or s == t.lower()):
            locs = [Location(s, c.lower(), True)] if c.lower() in after_cols else []
        for loc in sorted(locs, key=lambda x: (x.column, x.exact)):
            col = after_cols.get(loc.column)
            if col is None:
                continue
            test = same if loc.exact else contains
            tests.append(test(f"s.{quote(col)}", f"t.{quote(c)}"))
        return f"({' OR '.join(tests)})" if tests else "0"

    def _moved(self, t: str, c: str, successor: str | None, before_cols: list[str]) -> str:
        """SQL: the value of t.c is found in another table, in the row keyed by the same id."""
        s = successor.lower() if successor else None
        tests = []
        for loc in sorted(self._locs(t, c), key=lambda x: (x.table, x.column, x.exact)):
            if loc.table == s:
                continue
            x = self.after_names[loc.table]
            x_cols = {col.name.lower(): col.name for col in schema.columns(self.conn, x)}
            if loc.column not in x_cols:
                continue
            test = same if loc.exact else contains
            holds = test("x." + quote(x_cols[loc.column]), "t." + quote(c))
            for i_col, j_col in self._identity(t, x, before_cols):
                tests.append(
                    f"EXISTS (SELECT 1 FROM main.{quote(x)} AS x WHERE x.{quote(j_col)} = "
                    f"t.{quote(i_col)} AND {holds})"
                )
        tests += self._related(t, c, successor)
        return f"({' OR '.join(tests)})" if tests else "0"

    def _identity(self, t: str, x: str, before_cols: list[str]) -> list[tuple[str, str]]:
        """(column of t, column of x) pairs that tie a row of t to a row of x: t's key,
        foreign key and unique columns, wherever the migrations carried them in x."""
        xl = x.lower()
        x_cols = {col.name.lower(): col.name for col in schema.columns(self.conn, x)}
        ids = {k.lower() for k in schema.primary_key(self.conn, t, schema=BEFORE)}
        ids |= {
            fk.columns[0].lower()
            for fk in schema.foreign_keys(self.conn, t, schema=BEFORE)
            if len(fk.columns) == 1
        }
        ids |= {
            key[0].lower()
            for key in schema.unique_keys(self.conn, t, schema=BEFORE)
            if len(key) == 1
        }
        pairs = []
        for i_col in before_cols:
            if i_col.lower() not in ids:
                continue
            for loc in self._locs(t, i_col):
                if loc.exact and loc.table == xl and loc.column in x_cols:
                    pairs.append((i_col, x_cols[loc.column]))
        return pairs

    def _related(self, t: str, c: str, successor: str | None) -> list[str]:
        """Values of t.c found in a table related to t by a foreign key, in a column of the
        same name (moved by an earlier release, so no pending statement tells where)."""
        tests = []
        key = schema.primary_key(self.conn, t, schema=BEFORE)
        names = {t.lower(), *((successor.lower(),) if successor else ())}
        for x in self.after.rows:
            if x.lower() in names:
                continue
            x_cols = {col.name.lower(): col.name for col in schema.columns(self.conn, x)}
            y = x_cols.get(c.lower())
            if y is None:
                continue
            pairs: list[tuple[str, str]] = []
            for fk in schema.foreign_keys(self.conn, x):  # x is a child of t
                if fk.table_to.lower() in names and len(fk.columns) == 1:
                    to = fk.columns_to[0]
                    if to.lower() in {k.lower() for k in key} or to == "rowid":
                        pairs.append((to, fk.columns[0]))
            for fk in schema.foreign_keys(self.conn, t, schema=BEFORE):  # x is a parent of t
                if fk.table_to.lower() == x.lower() and len(fk.columns) == 1:
                    pairs.append((fk.columns[0], fk.columns_to[0]))
            for i_col, j_col in pairs:
                tests.append(
                    f"EXISTS (SELECT 1 FROM main.{quote(x)} AS x WHERE x.{quote(j_col)} = "
                    f"t.{quote(i_col)} AND {same('x.' + quote(y), 't.' + quote(c))})"
                )
        return tests

    # -- schema objects

    def _objects(self) -> list[Loss]:
        after = {
            str(n).lower() for (n,) in self.conn.execute("SELECT name FROM main.sqlite_master")
        }
        out = []
        for kind, name, table in self.conn.execute(
            f"SELECT type, name, tbl_name FROM {BEFORE}.sqlite_master "
            "WHERE type IN ('index', 'trigger', 'view') AND sql IS NOT NULL "
            "AND name NOT LIKE 'sqlite_%' ORDER BY type, name"
        ):
            name, table = str(name), str(table)
            if name.lower() in after:
                continue
            why = self.lin.dropped_objects.get(name.lower())
            if why is None and self.lin.current.get(table.lower(), table.lower()) is None:
                why = self.lin.dropped_tables.get(table.lower())
            verdict: Verdict = "explained" if why else ("warn" if kind == "index" else "block")
            out.append(Loss("object", name, verdict, what=str(kind), explained_by=why))
        return out
