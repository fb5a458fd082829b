"""The declared schema for push mode: drizzle-kit's newest snapshot, or a plain schema.sql.

A snapshot is turned into the DDL drizzle-kit itself would write for it (0.x: versions 5 and 6,
nested `tables`; 1.0: version 7, a flat `ddl` list), so a table push creates reads like the
one `drizzle-kit generate` would have created. Either way the DDL is executed into an
in-memory database: the declared schema is a real SQLite schema, read with the same pragmas
as the live one, and SQLite itself rejects a declaration that does not parse.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..base.errors import SourceError
from ..engine.snapshots import newest_snapshot, read_snapshot
from ..engine.sources import Source
from ..engine.sqltext import CreateObject, DropObject, DropTable, classify


@dataclass(frozen=True)
class Declared:
    """Where the declared schema came from, and its DDL."""

    path: Path
    kind: str  # "drizzle snapshot v6", "schema.sql", ...
    statements: list[str]
    # what the operator should know about this declaration (said in the log and the dry run)
    warnings: tuple[str, ...] = ()
    # (kind, name) of views, triggers and virtual tables the migrations create and the
    # snapshot does not declare (drizzle-kit records none of a migration's hand-written SQL)
    undeclared: tuple[tuple[str, str], ...] = ()

    def load(self) -> sqlite3.Connection:
        """An in-memory database holding exactly the declared schema."""
        conn = sqlite3.connect(":memory:", isolation_level=None)
        for sql in self.statements:
            try:
                conn.execute(sql)
            except sqlite3.Error as exc:
                conn.close()
                hint = (
                    "fix the schema file"
                    if self.kind == "schema.sql"
                    else "if drizzle-kit's own migration SQL for this snapshot runs, this is a "
                    "litedeploy bug: please report it with the snapshot; meanwhile pass --schema "
                    "with a schema.sql holding that SQL"
                )
                raise SourceError(
                    f"{self.path}: the declared schema does not load into SQLite: {exc} "
                    f"[{' '.join(sql.split())[:80]}]",
                    hint=hint,
                ) from exc
        return conn


def from_source(source: Source) -> Declared:
    """The newest snapshot drizzle-kit wrote in the migrations folder, with a warning when
    migrations newer than it exist, or when the migrations create objects it lacks."""
    found = newest_snapshot(source)
    if found is None:
        raise SourceError(
            f"push mode needs a declared schema and {source.folder} has no drizzle-kit snapshot "
            f"({source.format})",
            hint="pass --schema FILE (a drizzle-kit snapshot.json or a schema.sql)",
        )
    snapshot, position = found
    declared = from_file(snapshot)
    warnings = []
    after = [m.name for m in source.migrations[position + 1 :]]
    if after:
        shown = ", ".join(after[:3]) + (f" ... {after[-1]}" if len(after) > 3 else "")
        warnings.append(
            f"the newest snapshot ({snapshot.relative_to(source.folder)}) is older than the "
            f"newest migration: it was written with {source.migrations[position].name}, and "
            f"{len(after)} migration(s) after it have none ({shown}); push targets the schema "
            "as that snapshot has it and undoes what those migrations changed: regenerate the "
            "snapshot (drizzle-kit generate), or pass --schema"
        )
    with contextlib.closing(declared.load()) as conn:
        have = {str(n).lower() for (n,) in conn.execute("SELECT name FROM sqlite_master")}
    lacking = tuple((kind, name) for kind, name in _made_by(source) if name.lower() not in have)
    return Declared(declared.path, declared.kind, declared.statements, tuple(warnings), lacking)


def _made_by(source: Source) -> list[tuple[str, str]]:
    """(kind, name) of the views, triggers and virtual tables the migrations leave created
    (a trigger goes with its table's DROP TABLE)."""
    made: dict[str, CreateObject] = {}
    for migration in source.migrations:
        for statement in migration.statements:
            op = classify(statement.code)
            if isinstance(op, CreateObject):
                made[op.name.lower()] = op
            elif isinstance(op, DropObject):
                made.pop(op.name.lower(), None)
            elif isinstance(op, DropTable):
                gone = op.table.lower()
                made = {
                    k: v for k, v in made.items() if k != gone and (v.table or "").lower() != gone
                }
    return [(op.kind, op.name) for op in made.values()]


def from_file(path: Path) -> Declared:
    """A snapshot (`*.json`) or a plain SQL schema (anything else)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"cannot read the declared schema {path}: {exc}") from exc
    if path.suffix.lower() != ".json":
        statements = _split_sql(text, path)
        return Declared(path, "schema.sql", statements)
    version, data = read_snapshot(path, text)
    try:
        statements = _from_ddl(data["ddl"]) if version == "7" else _from_tables(data)
    except (KeyError, TypeError, AttributeError) as exc:
        raise SourceError(
            f"snapshot {path} is not shaped like a drizzle-kit snapshot: {exc!r}"
        ) from exc
    return Declared(path, f"drizzle-kit snapshot v{version}", statements)


def _split_sql(text: str, path: Path) -> list[str]:
    """Complete statements of a schema file (CREATE TABLE / INDEX / VIEW / TRIGGER)."""
    statements, current = [], ""
    for piece in text.split(";"):
        current += piece + ";"
        if sqlite3.complete_statement(current):
            if current.strip(" \t\r\n;"):
                statements.append(current.strip())
            current = ""
    current = current[:-1]  # the ";" added after the last piece
    if current.strip() and not _only_comments(current):
        raise SourceError(
            f"{path}: the last statement is not complete (a missing `;`?): "
            f"{' '.join(current.split())[:80]}"
        )
    return [s for s in statements if not _only_comments(s)]


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


def q(name: str) -> str:
    return f"`{name}`"


def _names(columns: list[str], sep: str = ",") -> str:
    return sep.join(q(c) for c in columns)


def _default(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _column(col: dict[str, Any], *, primary_key: bool, unique: bool = False) -> str:
    """One column's line, in drizzle-kit's order: PRIMARY KEY, AUTOINCREMENT, DEFAULT,
    GENERATED, NOT NULL (and 1.0's inline UNIQUE)."""
    line = f"\t{q(col['name'])} {col['type']}"
    if primary_key:
        line += " PRIMARY KEY"
        if col.get("autoincrement"):
            line += " AUTOINCREMENT"
    if col.get("default") is not None:
        line += f" DEFAULT {_default(col['default'])}"
    if (gen := col.get("generated")) and gen.get("as"):
        line += f" GENERATED ALWAYS AS {gen['as']} {str(gen.get('type', 'virtual')).upper()}"
    if col.get("notNull"):
        line += " NOT NULL"
    if unique:
        line += " UNIQUE"
    return line


# --- drizzle-kit 0.x (snapshot versions 5 and 6) -------------------------------------------------


def _from_tables(data: dict[str, Any]) -> list[str]:
    statements: list[str] = []
    # 0.x lists an index's columns as strings; an expression (`lower("email")`) is told
    # apart only in the snapshot's `internal` section: {index: {columns: {text: {isExpression}}}}
    internal = (data.get("internal") or {}).get("indexes") or {}
    for name, spec in data["tables"].items():
        lines = []
        for col in spec["columns"].values():
            lines.append(_column(col, primary_key=bool(col.get("primaryKey"))))
        for pk in (spec.get("compositePrimaryKeys") or {}).values():
            lines.append(f"\tPRIMARY KEY({_names(pk['columns'], ', ')})")
        for fk in (spec.get("foreignKeys") or {}).values():
            lines.append(
                f"\tFOREIGN KEY ({_names(fk['columnsFrom'])}) REFERENCES "
                f"{q(fk['tableTo'])}({_names(fk['columnsTo'])}) "
                f"ON UPDATE {fk.get('onUpdate') or 'no action'} "
                f"ON DELETE {fk.get('onDelete') or 'no action'}"
            )
        for unique in (spec.get("uniqueConstraints") or {}).values():
            lines.append(f"\tCONSTRAINT {q(unique['name'])} UNIQUE({_names(unique['columns'])})")
        for check in (spec.get("checkConstraints") or {}).values():
            lines.append(f'\tCONSTRAINT "{check["name"]}" CHECK({check["value"]})')
        statements.append(f"CREATE TABLE {q(name)} (\n" + ",\n".join(lines) + "\n);")
        for index in (spec.get("indexes") or {}).values():
            unique = "UNIQUE " if index.get("isUnique") else ""
            where = f" WHERE {index['where']}" if index.get("where") else ""
            marks = (internal.get(index["name"]) or {}).get("columns") or {}
            listed = ",".join(
                c if (marks.get(c) or {}).get("isExpression") else q(c) for c in index["columns"]
            )
            statements.append(
                f"CREATE {unique}INDEX {q(index['name'])} ON {q(name)} ({listed}){where};"
            )
    for name, view in (data.get("views") or {}).items():
        if not view.get("isExisting") and view.get("definition"):
            statements.append(f"CREATE VIEW {q(name)} AS {view['definition']};")
    return statements


# --- drizzle-kit 1.0 (snapshot version 7) ---------------------------------------------------------


def _from_ddl(ddl: list[dict[str, Any]]) -> list[str]:
    tables = [e["name"] for e in ddl if e["entityType"] == "tables"]
    of: dict[str, dict[str, list[dict[str, Any]]]] = {t: {} for t in tables}
    for e in ddl:
        if "table" in e and e["table"] in of:
            of[e["table"]].setdefault(e["entityType"], []).append(e)
    statements: list[str] = []
    for name in tables:
        parts = of[name]
        pks = parts.get("pks", [])
        inline_pk = pks[0]["columns"][0] if len(pks) == 1 and len(pks[0]["columns"]) == 1 else None
        uniques = parts.get("uniques", [])
        inline_unique = {
            u["columns"][0] for u in uniques if len(u["columns"]) == 1 and not u.get("nameExplicit")
        }
        lines = []
        for col in parts.get("columns", []):
            lines.append(
                _column(
                    col,
                    primary_key=col["name"] == inline_pk,
                    unique=col["name"] in inline_unique,
                )
            )
        if pks and inline_pk is None:
            pk = pks[0]
            lines.append(f"\tCONSTRAINT {q(pk['name'])} PRIMARY KEY({_names(pk['columns'], ', ')})")
        for fk in parts.get("fks", []):
            line = (
                f"\tCONSTRAINT {q(fk['name'])} FOREIGN KEY ({_names(fk['columns'])}) REFERENCES "
                f"{q(fk['tableTo'])}({_names(fk['columnsTo'])})"
            )
            for action in ("onUpdate", "onDelete"):
                value = str(fk.get(action) or "NO ACTION").upper()
                if value != "NO ACTION":
                    line += f" ON {'UPDATE' if action == 'onUpdate' else 'DELETE'} {value}"
            lines.append(line)
        for unique in uniques:
            if len(unique["columns"]) == 1 and unique["columns"][0] in inline_unique:
                continue
            lines.append(f"\tCONSTRAINT {q(unique['name'])} UNIQUE({_names(unique['columns'])})")
        for check in parts.get("checks", []):
            lines.append(f"\tCONSTRAINT {q(check['name'])} CHECK({check['value']})")
        statements.append(f"CREATE TABLE {q(name)} (\n" + ",\n".join(lines) + "\n);")
        for index in parts.get("indexes", []):
            listed = ", ".join(
                (c["value"] if c.get("isExpression") else q(c["value"]))
                if isinstance(c, dict)
                else q(c)
                for c in index["columns"]
            )
            uniq = "UNIQUE " if index.get("isUnique") else ""
            where = f" WHERE {index['where']}" if index.get("where") else ""
            statements.append(
                f"CREATE {uniq}INDEX {q(index['name'])} ON {q(name)} ({listed}){where};"
            )
    for e in ddl:
        if e["entityType"] == "views" and not e.get("isExisting") and e.get("definition"):
            statements.append(f"CREATE VIEW {q(e['name'])} AS {e['definition']};")
    return statements
