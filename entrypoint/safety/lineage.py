"""Where the values of a database are after pending migrations: the lineage.

Keys are (original table, original column), lower case; each has the set of places
(`Location`: a table and column, by current name) where its values can be found: copied
as is (exact) or computed from them (derived), plus the identity links that tie a moved
row to its new home (`userSettings.userId = user.id`). `replay.Replay` keeps it up to date
statement by statement; the findings ask it whether a dropped column was copied first, the
rehearsal's judge where to look for each value.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Location:
    """Where a value can be found: a table and column (lower case), copied or computed."""

    table: str
    column: str
    exact: bool


@dataclass
class Lineage:
    """Where the values of the tables before the migrations are, statement after statement.

    Keys are (original table, original column), lower case; tables are tracked by their
    current name. `current[t]` is None once the original table is dropped.
    """

    current: dict[str, str | None] = field(default_factory=dict)
    locations: dict[tuple[str, str], set[Location]] = field(default_factory=dict)
    touched: set[str] = field(default_factory=set)  # current names written to or altered
    everything_touched: bool = False  # a statement nobody understands ran
    # table (its original name, and its name at the time) -> the DELETE that removed rows
    deleted: dict[str, str] = field(default_factory=dict)
    dropped_tables: dict[str, str] = field(default_factory=dict)  # original -> DROP statement
    dropped_columns: dict[tuple[str, str], str] = field(default_factory=dict)
    dropped_objects: dict[str, str] = field(default_factory=dict)  # name -> DROP statement
    rebuilt: set[str] = field(default_factory=set)  # current names filled by INSERT..SELECT

    def start(self, tables: dict[str, list[str]]) -> None:
        for t, cols in tables.items():
            self.current[t.lower()] = t.lower()
            for c in cols:
                self.locations[(t.lower(), c.lower())] = {Location(t.lower(), c.lower(), True)}

    def originals_at(self, table: str, column: str) -> list[tuple[tuple[str, str], bool]]:
        """(original key, exact) for every original value now found at table.column."""
        t, c = table.lower(), column.lower()
        return [
            (key, loc.exact)
            for key, locs in self.locations.items()
            for loc in locs
            if loc.table == t and loc.column == c
        ]

    def add(self, key: tuple[str, str], loc: Location) -> None:
        """A value is (also) found at `loc`: an UPDATE that computes a column from itself
        leaves the rows it skipped exact and the others derived, so both are kept."""
        self.locations.setdefault(key, set()).add(loc)

    def rename_table(self, old: str, new: str) -> None:
        o, n = old.lower(), new.lower()
        for name, cur in self.current.items():
            if cur == o:
                self.current[name] = n
        for key, locs in self.locations.items():
            self.locations[key] = {
                Location(n, x.column, x.exact) if x.table == o else x for x in locs
            }
        self.touched = {n if t == o else t for t in self.touched}
        self.rebuilt = {n if t == o else t for t in self.rebuilt}
        self.touched.add(n)
        self._reattach(n)

    def rename_column(self, table: str, old: str, new: str) -> None:
        t, o, n = table.lower(), old.lower(), new.lower()
        for key, locs in self.locations.items():
            self.locations[key] = {
                Location(t, n, x.exact) if (x.table, x.column) == (t, o) else x for x in locs
            }
        self.touched.add(t)

    def drop_column(self, table: str, column: str, ref: str) -> None:
        t, c = table.lower(), column.lower()
        for key, exact in self.originals_at(t, c):
            if exact:
                self.dropped_columns.setdefault(key, ref)
        for key, locs in self.locations.items():
            self.locations[key] = {x for x in locs if (x.table, x.column) != (t, c)}
        self.touched.add(t)

    def drop_table(self, table: str, ref: str) -> None:
        t = table.lower()
        for name, cur in self.current.items():
            if cur == t:
                self.current[name] = None
                self.dropped_tables[name] = ref
        for key, locs in self.locations.items():
            self.locations[key] = {x for x in locs if x.table != t}
        self.touched.discard(t)
        self.rebuilt.discard(t)

    def delete(self, table: str, ref: str) -> None:
        """Rows of the table (and of the originals now under that name) removed by `ref`."""
        self.deleted.setdefault(table.lower(), ref)
        for name, cur in self.current.items():
            if cur == table.lower():
                self.deleted.setdefault(name, ref)

    def created(self, table: str) -> None:
        self._reattach(table.lower())

    def _reattach(self, name: str) -> None:
        """A table that takes the name of a dropped original (a rebuild) continues it."""
        if name in self.dropped_tables and self.current.get(name) is None:
            self.current[name] = name
            self.dropped_tables.pop(name)

    def live_table(self, current: str) -> str | None:
        """The original table whose rows the current table still is (not a copy), if any."""
        for key, cur in self.current.items():
            if cur == current.lower():
                return key
        return None
