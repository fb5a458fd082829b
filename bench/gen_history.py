"""Write a drizzle-kit 0.x migration history of N migrations, table rebuilds included.

    .venv/bin/python bench/gen_history.py OUT [--migrations 100] [--seed 7]

The files are what drizzle-kit 0.3x writes for SQLite (`generate` with the journal format):
`NNNN_name.sql` with `--> statement-breakpoint` between statements, `meta/_journal.json`,
and a `meta/NNNN_snapshot.json` (version 6) for every migration, each the schema after it.
The steps cycle through what real histories do (tests/corpus: homarr, dyad):

  - new tables, some with a foreign key to an earlier one (ON DELETE cascade / set null);
  - columns added (nullable, or NOT NULL with a DEFAULT), an index or a unique index;
  - every fifth migration a rebuild, exactly as drizzle-kit writes one (PRAGMA
    foreign_keys=OFF; CREATE TABLE `__new_t`; INSERT INTO `__new_t`(...) SELECT ... FROM `t`;
    DROP TABLE `t`; ALTER TABLE `__new_t` RENAME TO `t`; indexes again; PRAGMA
    foreign_keys=ON): a column made NOT NULL with a default, or its type changed, or a
    column dropped, on a table other tables reference;
  - now and then a migration that fills a lookup table (INSERT ... VALUES).

Deterministic for a seed: the benchmark compares runs on the same files. Nothing here is
checked against drizzle-kit itself; bench/whole_history.py checks that drizzle's migrator
applies the history and that litedeploy reports no drift from the last snapshot.
"""

from __future__ import annotations

import argparse
import json
import random
import uuid
from dataclasses import dataclass, field
from pathlib import Path

BP = "--> statement-breakpoint\n"
WORDS = [
    *("amber", "basil", "cedar", "delta", "ember", "fjord", "grove", "harbor", "iris"),
    *("juniper", "kelp", "lotus", "maple", "nectar", "onyx", "pepper", "quartz", "raven"),
    *("sage", "thistle", "umber", "violet", "willow", "yarrow", "zephyr"),
]


@dataclass
class Column:
    name: str
    type: str  # integer | text | real
    primary_key: bool = False
    not_null: bool = False
    autoincrement: bool = False
    default: str | None = None  # as drizzle-kit writes it: "0", "'x'", "(unixepoch())"

    def ddl(self) -> str:
        out = f"`{self.name}` {self.type}"
        if self.primary_key:
            out += " PRIMARY KEY"
            if self.autoincrement:
                out += " AUTOINCREMENT"
        if self.default is not None:
            out += f" DEFAULT {self.default}"
        if self.not_null:
            out += " NOT NULL"
        return out

    def snapshot(self) -> dict[str, object]:
        shot: dict[str, object] = {
            "name": self.name,
            "type": self.type,
            "primaryKey": self.primary_key,
            "notNull": self.not_null,
            "autoincrement": self.autoincrement,
        }
        if self.default is not None:
            shot["default"] = self.default
        return shot


@dataclass
class ForeignKey:
    column: str
    parent: str
    on_delete: str  # cascade | set null

    def name(self, table: str) -> str:
        return f"{table}_{self.column}_{self.parent}_id_fk"


@dataclass
class Index:
    name: str
    columns: list[str]
    unique: bool

    def ddl(self, table: str) -> str:
        cols = ",".join(f"`{c}`" for c in self.columns)
        return (
            f"CREATE {'UNIQUE ' if self.unique else ''}INDEX `{self.name}` ON `{table}` ({cols});"
        )


@dataclass
class Table:
    name: str
    columns: list[Column]
    foreign_keys: list[ForeignKey] = field(default_factory=list)
    indexes: list[Index] = field(default_factory=list)

    def create(self, name: str | None = None) -> str:
        lines = [c.ddl() for c in self.columns]
        lines += [
            f"FOREIGN KEY (`{fk.column}`) REFERENCES `{fk.parent}`(`id`) "
            f"ON UPDATE no action ON DELETE {fk.on_delete}"
            for fk in self.foreign_keys
        ]
        return f"CREATE TABLE `{name or self.name}` (\n\t" + ",\n\t".join(lines) + "\n);\n"

    def snapshot(self) -> dict[str, object]:
        return {
            "name": self.name,
            "columns": {c.name: c.snapshot() for c in self.columns},
            "indexes": {
                i.name: {"name": i.name, "columns": i.columns, "isUnique": i.unique}
                for i in self.indexes
            },
            "foreignKeys": {
                fk.name(self.name): {
                    "name": fk.name(self.name),
                    "tableFrom": self.name,
                    "tableTo": fk.parent,
                    "columnsFrom": [fk.column],
                    "columnsTo": ["id"],
                    "onDelete": fk.on_delete,
                    "onUpdate": "no action",
                }
                for fk in self.foreign_keys
            },
            "compositePrimaryKeys": {},
            "uniqueConstraints": {},
            "checkConstraints": {},
        }


class History:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.tables: dict[str, Table] = {}
        self.counter = 0

    def fresh(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}_{self.rng.choice(WORDS)}_{self.counter}"

    def new_table(self) -> list[str]:
        name = self.fresh("t")
        columns = [
            Column("id", "integer", primary_key=True, not_null=True, autoincrement=True),
            Column("title", "text", not_null=True),
            Column("created_at", "integer", not_null=True, default="(unixepoch())"),
        ]
        table = Table(name, columns)
        parents = list(self.tables)
        if parents and self.rng.random() < 0.7:
            parent = self.rng.choice(parents)
            on_delete = self.rng.choice(["cascade", "set null"])
            column = f"{parent}_id"
            table.columns.append(Column(column, "integer", not_null=on_delete == "cascade"))
            table.foreign_keys.append(ForeignKey(column, parent, on_delete))
        self.tables[name] = table
        out = [table.create()]
        if table.foreign_keys:
            index = Index(
                f"{name}_{table.foreign_keys[0].column}_idx", [table.foreign_keys[0].column], False
            )
            table.indexes.append(index)
            out.append(index.ddl(name) + "\n")
        return out

    def add_column(self) -> list[str]:
        table = self.rng.choice(list(self.tables.values()))
        kind = self.rng.choice(["nullable", "defaulted", "real"])
        name = self.fresh("c")
        if kind == "nullable":
            column = Column(name, "text")
        elif kind == "defaulted":
            column = Column(name, "integer", not_null=True, default="0")
        else:
            column = Column(name, "real")
        table.columns.append(column)
        return [f"ALTER TABLE `{table.name}` ADD `{name}` {column.ddl().split(' ', 1)[1]};"]

    def add_index(self) -> list[str]:
        table = self.rng.choice(list(self.tables.values()))
        unique = self.rng.random() < 0.3
        column = "title" if not unique else "id"
        index = Index(
            f"{table.name}_{column}_{'unique' if unique else 'idx'}_{self.counter}",
            [column],
            unique,
        )
        self.counter += 1
        table.indexes.append(index)
        return [index.ddl(table.name)]

    def fill(self) -> list[str]:
        table = self.rng.choice(
            [t for t in self.tables.values() if not t.foreign_keys] or list(self.tables.values())
        )
        if table.foreign_keys:
            return self.add_column()
        values = ", ".join(f"('{self.rng.choice(WORDS)} {i}')" for i in range(20))
        return [f"INSERT INTO `{table.name}` (`title`) VALUES {values};"]

    def rebuild(self) -> list[str]:
        referenced = {fk.parent for t in self.tables.values() for fk in t.foreign_keys}
        candidates = [t for t in self.tables.values() if t.name in referenced] or list(
            self.tables.values()
        )
        table = self.rng.choice(candidates)
        optional = [c for c in table.columns if not c.primary_key and c.name != "title"]
        optional = [c for c in optional if c.name not in {fk.column for fk in table.foreign_keys}]
        change = self.rng.choice(["not-null", "type", "drop"]) if optional else "not-null-title"
        kept = list(table.columns)
        select = {c.name: f'"{c.name}"' for c in kept}
        if change == "not-null":
            target = self.rng.choice(optional)
            index = kept.index(target)
            kept[index] = Column(
                target.name,
                target.type,
                not_null=True,
                default=target.default or ("0" if target.type != "text" else "''"),
            )
            select[target.name] = f'"{target.name}"'
        elif change == "type":
            target = self.rng.choice(optional)
            index = kept.index(target)
            kept[index] = Column(
                target.name,
                "text" if target.type != "text" else "integer",
                not_null=target.not_null,
                default=None,
            )
            if kept[index].not_null and kept[index].default is None:
                kept[index].default = "''" if kept[index].type == "text" else "0"
        elif change == "drop":
            target = self.rng.choice(optional)
            kept.remove(target)
            select.pop(target.name)
            table.indexes = [i for i in table.indexes if target.name not in i.columns]
        else:
            target = next(c for c in kept if c.name == "title")
        table.columns = kept
        names = [c.name for c in kept]
        out = ["PRAGMA foreign_keys=OFF;", table.create(f"__new_{table.name}").rstrip("\n")]
        if change == "not-null":
            col = next(c for c in kept if c.name == target.name)
            select[target.name] = f'coalesce("{target.name}", {col.default})'
        out.append(
            f"INSERT INTO `__new_{table.name}`("
            + ", ".join(f'"{n}"' for n in names)
            + ") SELECT "
            + ", ".join(select[n] for n in names)
            + f" FROM `{table.name}`;"
        )
        out.append(f"DROP TABLE `{table.name}`;")
        out.append(f"ALTER TABLE `__new_{table.name}` RENAME TO `{table.name}`;")
        out.append("PRAGMA foreign_keys=ON;")
        out += [i.ddl(table.name) for i in table.indexes]
        return out

    def step(self, number: int) -> list[str]:
        if number == 0:
            return [s for _ in range(6) for s in self.new_table()]
        if number % 5 == 4:
            return self.rebuild()
        choice = self.rng.choices(
            [self.new_table, self.add_column, self.add_index, self.fill], weights=[3, 4, 2, 1]
        )[0]
        return choice()

    def snapshot(self, previous: str) -> dict[str, object]:
        return {
            "version": "6",
            "dialect": "sqlite",
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "prevId": previous,
            "tables": {name: t.snapshot() for name, t in sorted(self.tables.items())},
            "views": {},
            "enums": {},
            "_meta": {"schemas": {}, "tables": {}, "columns": {}},
            "internal": {"indexes": {}},
        }


def write(out: Path, migrations: int, seed: int) -> Path:
    history = History(seed)
    (out / "meta").mkdir(parents=True, exist_ok=True)
    entries = []
    previous = "00000000-0000-0000-0000-000000000000"
    when = 1_700_000_000_000
    for number in range(migrations):
        tag = f"{number:04d}_{history.rng.choice(WORDS)}_{history.rng.choice(WORDS)}"
        statements = history.step(number)
        sql = BP.join(statements)
        (out / f"{tag}.sql").write_text(sql.rstrip("\n") + "\n", encoding="utf-8")
        shot = history.snapshot(previous)
        previous = str(shot["id"])
        (out / "meta" / f"{number:04d}_snapshot.json").write_text(
            json.dumps(shot, indent=2), encoding="utf-8"
        )
        when += 86_400_000 + history.rng.randrange(3_600_000)
        entries.append(
            {"idx": number, "version": "6", "when": when, "tag": tag, "breakpoints": True}
        )
    journal = {"version": "7", "dialect": "sqlite", "entries": entries}
    (out / "meta" / "_journal.json").write_text(json.dumps(journal, indent=2), encoding="utf-8")
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--migrations", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        raise SystemExit(f"gen_history: {args.out} is not empty; give a new folder")
    write(args.out, args.migrations, args.seed)
    print(f"{args.out}: {args.migrations} migrations (seed {args.seed})")


if __name__ == "__main__":
    main()
