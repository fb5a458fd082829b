"""Drift: the live schema against the snapshot of its newest applied migration, via
`entrypoint check` and `entrypoint run`."""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from harness import ROOT, Cli, write_plain

from entrypoint.engine.snapshots import latest_snapshot
from entrypoint.engine.sources import load_source
from entrypoint.safety.drift import declared_schema, differences
from entrypoint.safety.schema import read_schema

Invoke = Callable[..., Any]

FIXTURES = ROOT / "tests" / "fixtures"
FOLDERS = {
    "drizzle-journal": FIXTURES / "drizzle-journal" / "shop",
    "drizzle-folders": FIXTURES / "drizzle-folders" / "shop",
}

PRICE_AS_TEXT = """\
PRAGMA foreign_keys=OFF;
CREATE TABLE __new_products (
    id integer PRIMARY KEY NOT NULL, title text NOT NULL, price text NOT NULL,
    sku text DEFAULT '' NOT NULL
);
INSERT INTO __new_products SELECT id, title, price, sku FROM products;
DROP TABLE products;
ALTER TABLE __new_products RENAME TO products;
"""


@pytest.fixture(params=sorted(FOLDERS))
def migrated(request: pytest.FixtureRequest, cli: Cli, tmp_path: Path) -> tuple[Path, Path]:
    """A database migrated by `python -m entrypoint run` from one of the shop fixtures."""
    folder = FOLDERS[request.param]
    db = tmp_path / "app.db"
    proc = cli("run", "--db", db, "--migrations", folder)
    assert proc.returncode == 0, proc.stderr
    return db, folder


def alter(db: Path, sql: str) -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(sql)


def drift_of(invoke: Invoke, db: Path, folder: Path) -> list[str]:
    result = invoke("check", "--db", db, "--migrations", folder, "--json")
    assert result.exit_code == 0, result.stderr
    drift: list[str] = json.loads(result.stdout)["drift"]
    return drift


def test_latest_snapshot_of_each_format(tmp_path: Path) -> None:
    journal = latest_snapshot(load_source(FOLDERS["drizzle-journal"]))
    assert journal == FOLDERS["drizzle-journal"] / "meta" / "0005_snapshot.json"
    folders = latest_snapshot(load_source(FOLDERS["drizzle-folders"]))
    assert folders == FOLDERS["drizzle-folders"] / "20261125215007_drop_user_name" / "snapshot.json"
    plain = write_plain(tmp_path / "m", [("0001_init", "CREATE TABLE t (id integer);")])
    assert latest_snapshot(load_source(plain)) is None


def test_both_snapshot_shapes_declare_the_same_schema() -> None:
    journal, folders = (
        declared_schema(latest_snapshot(load_source(f)) or f) for f in FOLDERS.values()
    )
    assert sorted(journal) == sorted(folders) == ["orders", "products", "reviews", "users"]
    # 0.x's `.unique()` is a unique index, 1.0's a constraint: the same guarantee, no drift
    assert differences(journal, folders) == []
    assert journal["products"].columns["sku"].default == "''"
    assert folders["orders"].columns["quantity"].default == "1"
    assert folders["orders"].columns["id"].not_null  # 1.0 omits it on INTEGER PRIMARY KEY


def test_a_database_migrated_with_the_folder_has_no_drift(
    migrated: tuple[Path, Path], invoke: Invoke
) -> None:
    db, folder = migrated
    assert drift_of(invoke, db, folder) == []
    result = invoke("check", "--db", db, "--migrations", folder, "--strict")
    assert result.exit_code == 0, result.stderr
    assert "drift: none" in result.stdout


def test_a_column_altered_by_hand_is_a_warning_or_with_strict_a_failure(
    migrated: tuple[Path, Path], invoke: Invoke
) -> None:
    db, folder = migrated
    alter(db, PRICE_AS_TEXT)
    line = "products.price: type TEXT in the database, integer in the snapshot"
    assert drift_of(invoke, db, folder) == [line]

    result = invoke("check", "--db", db, "--migrations", folder)
    assert result.exit_code == 0, result.stderr
    assert f"drift: {line}" in result.stdout.splitlines()
    assert result.stdout.index("foreign keys:") < result.stdout.index("drift:")
    assert re.search(
        r"^drift: compared with the snapshot of \S*drop_user_name \(", result.stdout, re.M
    )
    assert "warning: the schema differs from drizzle-kit's snapshot of " in result.stderr

    strict = invoke("check", "--db", db, "--migrations", folder, "--strict")
    assert strict.exit_code == 11
    assert line in strict.stderr
    strict_json = invoke("check", "--db", db, "--migrations", folder, "--strict", "--json")
    assert strict_json.exit_code == 11
    assert json.loads(strict_json.stdout)["ok"] is False

    without = invoke("check", "--db", db, "--json")  # no --migrations: no drift, no key
    assert without.exit_code == 0
    assert "drift" not in json.loads(without.stdout)


def test_an_added_column_and_a_dropped_index_are_reported(
    migrated: tuple[Path, Path], invoke: Invoke
) -> None:
    db, folder = migrated
    alter(db, "ALTER TABLE products ADD note text; DROP INDEX reviews_product_idx;")
    assert drift_of(invoke, db, folder) == [
        "products.note: column in the database, not in the snapshot",
        "reviews: index reviews_product_idx missing from the database",
    ]


def test_nullability_default_foreign_key_and_table_changes_are_reported(
    migrated: tuple[Path, Path], invoke: Invoke
) -> None:
    db, folder = migrated
    alter(
        db,
        """\
        PRAGMA foreign_keys=OFF;
        CREATE TABLE __new_reviews (
            id integer PRIMARY KEY, product_id integer NOT NULL, body text,
            stars integer DEFAULT 3 NOT NULL
        );
        INSERT INTO __new_reviews SELECT * FROM reviews;
        DROP TABLE reviews;
        ALTER TABLE __new_reviews RENAME TO reviews;
        CREATE INDEX reviews_product_idx ON reviews (product_id);
        CREATE TABLE audit (id integer PRIMARY KEY);
        DROP TABLE orders;
        """,
    )
    assert drift_of(invoke, db, folder) == [
        "audit: table in the database, not in the snapshot",
        "orders: table missing from the database",
        "reviews.body: nullable in the database, NOT NULL in the snapshot",
        "reviews.stars: default 3 in the database, 5 in the snapshot",
        "reviews: foreign key (product_id) -> products(id) ON DELETE CASCADE "
        "missing from the database",
    ]


def test_primary_key_and_index_shape_changes_are_reported(tmp_path: Path) -> None:
    snapshot = tmp_path / "snapshot.json"
    snapshot.write_text(
        json.dumps(
            {
                "version": "6",
                "tables": {
                    "t": {
                        "columns": {
                            "a": {"type": "text", "notNull": True, "primaryKey": False},
                            "b": {
                                "type": "text",
                                "notNull": True,
                                "primaryKey": False,
                                "default": "'x'",
                            },
                        },
                        "indexes": {"t_idx": {"columns": ["a"], "isUnique": True}},
                        "compositePrimaryKeys": {"t_pk": {"columns": ["a", "b"]}},
                        "foreignKeys": {},
                    }
                },
            }
        )
    )
    with contextlib.closing(sqlite3.connect(":memory:")) as conn:
        conn.executescript(
            """CREATE TABLE t (a text NOT NULL PRIMARY KEY, b text NOT NULL DEFAULT ( 'x' ));
            CREATE INDEX t_idx ON t (a, b);"""
        )
        live = read_schema(conn)
    assert differences(declared_schema(snapshot), live) == [
        "t.b: not primary key in the database, primary key in the snapshot",
        "t: index t_idx is on (a, b) in the database, unique on (a) in the snapshot",
    ]


def test_a_plain_sql_folder_has_no_drift_to_report(invoke: Invoke, tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", [("0001_init", "CREATE TABLE t (id integer);")])
    db = tmp_path / "app.db"
    assert invoke("run", "--db", db, "--migrations", folder).exit_code == 0
    for flags in ((), ("--strict",)):
        result = invoke("check", "--db", db, "--migrations", folder, *flags)
        assert result.exit_code == 0, result.stderr
        assert "drift: not available for plain SQL folders" in result.stdout
    data = json.loads(invoke("check", "--db", db, "--migrations", folder, "--json").stdout)
    assert data["drift"] is None
    assert "not available" in data["drift_note"]


def test_strict_without_a_folder_is_a_usage_error(invoke: Invoke, tmp_path: Path) -> None:
    db = tmp_path / "app.db"
    sqlite3.connect(db).close()
    result = invoke("check", "--db", db, "--strict")
    assert result.exit_code == 2
    assert "--strict needs --migrations" in result.stderr


def test_a_damaged_snapshot_is_a_source_error(invoke: Invoke, tmp_path: Path) -> None:
    folder = tmp_path / "m"
    (folder / "20250101000000_init").mkdir(parents=True)
    (folder / "20250101000000_init" / "migration.sql").write_text("CREATE TABLE t (id integer);")
    (folder / "20250101000000_init" / "snapshot.json").write_text("{not json")
    db = tmp_path / "app.db"
    assert invoke("run", "--db", db, "--migrations", folder).exit_code == 0
    result = invoke("check", "--db", db, "--migrations", folder)
    assert result.exit_code == 3
    assert "not valid JSON" in result.stderr


def cut(tmp_path: Path, fmt: str, keep: int) -> Path:
    """A copy of a shop fixture whose history stops after `keep` migrations: the journal's
    later entries (every snapshot file stays, as when a folder is copied from a newer release)
    or the later migration folders."""
    folder = tmp_path / "drizzle"
    shutil.copytree(FOLDERS[fmt], folder)
    if fmt == "drizzle-journal":
        journal = folder / "meta" / "_journal.json"
        data = json.loads(journal.read_text())
        data["entries"] = data["entries"][:keep]
        journal.write_text(json.dumps(data))
    else:
        for later in sorted(p for p in folder.iterdir() if p.is_dir())[keep:]:
            shutil.rmtree(later)
    return folder


@pytest.mark.parametrize("fmt", sorted(FOLDERS))
def test_a_database_is_compared_with_the_snapshot_of_its_newest_applied_migration(
    tmp_path: Path, cli: Cli, invoke: Invoke, fmt: str
) -> None:
    """A database at 0002 is compared with 0002's snapshot: neither with meta/0005_snapshot.json
    that no journal entry names, nor with the snapshots of migrations still pending."""
    db = tmp_path / "app.db"
    first = cli("run", "--db", db, "--migrations", cut(tmp_path, fmt, 3))
    assert first.returncode == 0, first.stderr
    assert "drift" not in first.stderr  # the journal-cut folder still holds 0003..0005's files
    result = invoke("check", "--db", db, "--migrations", FOLDERS[fmt], "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["drift"] == []
    assert data["drift_snapshot_migration"].endswith("_add_reviews")
    assert data["drift_snapshot_predates"] == []
    text = invoke("check", "--db", db, "--migrations", FOLDERS[fmt])
    assert re.search(r"^drift: compared with the snapshot of \S+_add_reviews \(", text.stdout, re.M)
    assert "drift: none" in text.stdout


@pytest.mark.parametrize("fmt", sorted(FOLDERS))
def test_applied_migrations_written_without_a_snapshot_are_not_drift(
    tmp_path: Path, cli: Cli, invoke: Invoke, fmt: str
) -> None:
    """0005 (drops users.name) shipped without the snapshot drizzle-kit writes: 0004's snapshot
    still has users.name, which is 0005's doing, not drift. Said as info; no warning; --strict
    passes."""
    folder = cut(tmp_path, fmt, 6)
    newest = load_source(folder).migrations[-1]
    snapshot = (
        folder / "meta" / "0005_snapshot.json"
        if fmt == "drizzle-journal"
        else newest.path.parent / "snapshot.json"
    )
    snapshot.unlink()
    db = tmp_path / "app.db"
    proc = cli("run", "--db", db, "--migrations", folder, "--strict")
    assert proc.returncode == 0, proc.stderr
    assert "warning: drift" not in proc.stderr
    said = [line for line in proc.stderr.splitlines() if "drift" in line]
    assert len(said) == 1, said
    assert re.search(
        rf"drift from the snapshot of \S+_rename_product_name_to_title \(.*\), which predates "
        rf"{newest.name} \(applied, written without a snapshot\): 1 difference\(s\), likely "
        r"theirs, not counted as drift \(first: users.name: column missing from the database\)",
        said[0],
    ), said
    check = invoke("check", "--db", db, "--migrations", folder, "--strict")
    assert check.exit_code == 0, check.stderr
    assert f"drift: which predates {newest.name}" in check.stdout
    assert "drift: users.name: column missing from the database" in check.stdout
