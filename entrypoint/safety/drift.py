"""Drift: the live schema compared with the snapshot drizzle-kit wrote for it.

The snapshot is the one written with the newest *applied* migration that has one (`basis`): a
database at 0002 is compared with 0002's snapshot, never with a newer file in the folder.
Both snapshot formats (snapshots.py) are read into the same `Schema` as the live database,
then compared. Stdlib only.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..base.errors import SourceError
from ..engine.snapshots import basis, read_snapshot
from ..engine.sources import Source
from .schema import (
    Column,
    Index,
    Schema,
    Table,
    foreign_key,
    normal_default,
    normal_type,
    normalised,
    read_schema,
)


def declared_schema(path: Path, text: str | None = None) -> Schema:
    """The schema a drizzle-kit snapshot declares (0.x versions 5 and 6, 1.0 version 7);
    `text` is the file's content when the caller has read it already."""
    version, data = read_snapshot(path, text)
    try:
        schema = _from_ddl(data["ddl"]) if version == "7" else _from_tables(data["tables"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise SourceError(
            f"snapshot {path} is not shaped like a drizzle-kit snapshot: {exc!r}"
        ) from exc
    return normalised(schema)


def _from_tables(tables: dict[str, Any]) -> Schema:
    schema: Schema = {}
    for name, spec in tables.items():
        table = schema[name] = Table()
        composite = {
            c for pk in (spec.get("compositePrimaryKeys") or {}).values() for c in pk["columns"]
        }
        for col_name, col in spec["columns"].items():
            table.columns[col_name] = Column(
                type=col["type"],
                not_null=bool(col.get("notNull")),
                default=normal_default(col.get("default")),
                primary_key=bool(col.get("primaryKey")) or col_name in composite,
            )
        for index_name, index in (spec.get("indexes") or {}).items():
            table.indexes[index_name] = Index(tuple(index["columns"]), bool(index.get("isUnique")))
        for unique in (spec.get("uniqueConstraints") or {}).values():
            table.uniques.add(tuple(unique["columns"]))
        for fk in (spec.get("foreignKeys") or {}).values():
            table.foreign_keys.add(
                foreign_key(
                    fk["columnsFrom"],
                    fk["tableTo"],
                    fk["columnsTo"],
                    fk.get("onDelete"),
                    fk.get("onUpdate"),
                )
            )
    return schema


def _from_ddl(ddl: list[dict[str, Any]]) -> Schema:
    schema: Schema = {e["name"]: Table() for e in ddl if e["entityType"] == "tables"}
    pk_columns = {(e["table"], c) for e in ddl if e["entityType"] == "pks" for c in e["columns"]}
    for e in ddl:
        kind = e["entityType"]
        if kind in ("tables", "pks") or "table" not in e or e["table"] not in schema:
            continue
        table = schema[e["table"]]
        if kind == "columns":
            table.columns[e["name"]] = Column(
                type=e["type"],
                not_null=bool(e.get("notNull")),
                default=normal_default(e.get("default")),
                primary_key=(e["table"], e["name"]) in pk_columns,
            )
        elif kind == "indexes":
            columns = tuple(
                "<expression>"
                if isinstance(c, dict) and c.get("isExpression")
                else (c["value"] if isinstance(c, dict) else c)
                for c in e["columns"]
            )
            table.indexes[e["name"]] = Index(columns, bool(e.get("isUnique")))
        elif kind == "uniques":
            table.uniques.add(tuple(e["columns"]))
        elif kind == "fks":
            table.foreign_keys.add(
                foreign_key(
                    e["columns"], e["tableTo"], e["columnsTo"], e.get("onDelete"), e.get("onUpdate")
                )
            )
    return schema


def differences(declared: Schema, live: Schema) -> list[str]:
    """One line per difference, `table[.column]: what`, in table order; empty: no drift."""
    lines: list[str] = []
    for name in sorted(declared.keys() | live.keys()):
        if name not in live:
            lines.append(f"{name}: table missing from the database")
            continue
        if name not in declared:
            lines.append(f"{name}: table in the database, not in the snapshot")
            continue
        lines += _table_differences(name, declared[name], live[name])
    return lines


def _table_differences(name: str, want: Table, have: Table) -> list[str]:
    lines: list[str] = []
    for col in [*want.columns, *(c for c in have.columns if c not in want.columns)]:
        where = f"{name}.{col}"
        if col not in have.columns:
            lines.append(f"{where}: column missing from the database")
            continue
        if col not in want.columns:
            lines.append(f"{where}: column in the database, not in the snapshot")
            continue
        w, h = want.columns[col], have.columns[col]
        if normal_type(w.type) != normal_type(h.type):
            lines.append(
                f"{where}: type {h.type or '(none)'} in the database, "
                f"{w.type or '(none)'} in the snapshot"
            )
        # a primary key's NOT NULL is not compared: drizzle-kit 1.0 records every key column
        # as nullable (the key implies it), 0.x and the SQL it wrote say NOT NULL
        if w.not_null != h.not_null and not (w.primary_key and h.primary_key):
            lines.append(
                f"{where}: {_null(h.not_null)} in the database, {_null(w.not_null)} in the snapshot"
            )
        if w.default != h.default:
            lines.append(
                f"{where}: default {_shown(h.default)} in the database, "
                f"{_shown(w.default)} in the snapshot"
            )
        if w.primary_key != h.primary_key:
            lines.append(
                f"{where}: {_pk(h.primary_key)} in the database, "
                f"{_pk(w.primary_key)} in the snapshot"
            )
    want, have = _pair_unique_forms(want, have)
    for index in sorted(want.indexes.keys() | have.indexes.keys()):
        if index not in have.indexes:
            lines.append(f"{name}: index {index} missing from the database")
        elif index not in want.indexes:
            lines.append(f"{name}: index {index} in the database, not in the snapshot")
        elif want.indexes[index] != have.indexes[index]:
            lines.append(
                f"{name}: index {index} is {_index(have.indexes[index])} in the "
                f"database, {_index(want.indexes[index])} in the snapshot"
            )
    for unique in sorted(want.uniques - have.uniques):
        lines.append(f"{name}: UNIQUE ({', '.join(unique)}) missing from the database")
    for unique in sorted(have.uniques - want.uniques):
        lines.append(f"{name}: UNIQUE ({', '.join(unique)}) in the database, not in the snapshot")
    for fk in sorted(want.foreign_keys - have.foreign_keys, key=str):
        lines.append(f"{name}: foreign key {fk} missing from the database")
    for fk in sorted(have.foreign_keys - want.foreign_keys, key=str):
        lines.append(f"{name}: foreign key {fk} in the database, not in the snapshot")
    return lines


def _pair_unique_forms(want: Table, have: Table) -> tuple[Table, Table]:
    """A UNIQUE constraint on one side and a unique index on the same columns on the other
    give the same guarantee (drizzle-kit 0.x writes `.unique()` as an index, 1.0 as a
    constraint): drop both from the comparison."""

    def spare(table: Table, other: Table) -> dict[tuple[str, ...], str]:
        return {
            i.columns: n for n, i in table.indexes.items() if i.unique and n not in other.indexes
        }

    want_spare, have_spare = spare(want, have), spare(have, want)
    for cols in want.uniques - have.uniques:
        if cols in have_spare:
            have = _without(have, have_spare.pop(cols), cols)
            want = _without(want, None, cols)
    for cols in have.uniques - want.uniques:
        if cols in want_spare:
            want = _without(want, want_spare.pop(cols), cols)
            have = _without(have, None, cols)
    return want, have


def _without(table: Table, index: str | None, unique: tuple[str, ...]) -> Table:
    return Table(
        columns=table.columns,
        indexes={n: i for n, i in table.indexes.items() if n != index},
        uniques=table.uniques - {unique},
        foreign_keys=table.foreign_keys,
    )


def _null(not_null: bool) -> str:
    return "NOT NULL" if not_null else "nullable"


def _pk(primary_key: bool) -> str:
    return "primary key" if primary_key else "not primary key"


def _shown(default: str | None) -> str:
    return "none" if default is None else default


def _index(index: Index) -> str:
    return f"{'unique ' if index.unique else ''}on ({', '.join(index.columns)})"


def against_snapshot(
    conn: sqlite3.Connection,
    source: Source,
    *,
    upto: int | None = None,
    ignore: Iterable[str] = (),
    snapshot_text: str | None = None,
) -> tuple[list[str] | None, str | None]:
    """Differences from the snapshot `basis(source, upto)` names, or a note saying why none
    can be given.

    `ignore` names tables beyond the default history tables (a custom history table);
    `snapshot_text` is that snapshot's content when the caller has read it already
    (drift_memo.py: the bytes it hashed are the bytes compared).
    """
    chosen = basis(source, upto)
    if chosen.path is None:
        return None, chosen.note
    declared = declared_schema(chosen.path, snapshot_text)
    return differences(declared, read_schema(conn, ignore)), None
