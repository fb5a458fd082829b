"""Reading migrations: the three folder layouts, journal versions, names, order and hashes."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from harness import (
    FIRST_WHEN,
    Cli,
    assert_one_clear_error,
    write_folders,
    write_journal,
    write_plain,
)

from entrypoint.base.errors import SourceError
from entrypoint.engine.sources import Format, detect_format, load_source

ONE = "CREATE TABLE a (id integer);"


def test_detects_journal_folder(tmp_path: Path) -> None:
    folder = write_journal(tmp_path / "m", [("0000_init", ONE)])
    assert detect_format(folder) is Format.DRIZZLE_JOURNAL


def test_detects_folder_per_migration(tmp_path: Path) -> None:
    folder = write_folders(tmp_path / "m", [("20250220153045_init", ONE)])
    assert detect_format(folder) is Format.DRIZZLE_FOLDERS


def test_detects_plain_sql_folder(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", [("0001_init", ONE)])
    assert detect_format(folder) is Format.SQL


def test_empty_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    with pytest.raises(SourceError, match="no migrations found"):
        load_source(tmp_path / "m")


def test_format_override_beats_detection(
    tmp_path: Path, status_of: Callable[..., dict[str, Any]]
) -> None:
    """A journal folder read as plain SQL: its .sql files by name, the tool's own table."""
    folder = write_journal(tmp_path / "m", [("0000_init", ONE), ("0001_more", ONE)])
    detected = status_of(tmp_path / "app.db", folder)
    assert (detected["format"], detected["history_table"]) == (
        "drizzle-journal",
        "__drizzle_migrations",
    )
    forced = status_of(tmp_path / "app.db", folder, "--format", "sql")
    assert (forced["format"], forced["history_table"]) == ("sql", "__litedeploy_migrations")
    assert list(forced["states"]) == ["0000_init", "0001_more"]


def test_format_override_to_a_layout_that_is_not_there_fails(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", [("0001_init", ONE)])
    with pytest.raises(SourceError, match=r"_journal\.json"):
        load_source(folder, Format.DRIZZLE_JOURNAL)


@pytest.mark.parametrize("version", ["5", "6", "7"])
def test_supported_journal_versions(tmp_path: Path, version: str) -> None:
    folder = write_journal(tmp_path / "m", [("0000_init", ONE)], version=version)
    source = load_source(folder)
    assert [m.name for m in source.migrations] == ["0000_init"]


@pytest.mark.parametrize("version", ["4", "8", "1.0", None])
def test_other_journal_versions_are_refused(tmp_path: Path, version: str | None) -> None:
    folder = write_journal(tmp_path / "m", [("0000_init", ONE)])
    journal_path = folder / "meta" / "_journal.json"
    journal = json.loads(journal_path.read_text())
    journal["version"] = version
    journal_path.write_text(json.dumps(journal))
    with pytest.raises(SourceError, match="journal version"):
        load_source(folder)


def test_journal_order_and_when_are_kept(tmp_path: Path) -> None:
    """Journal order wins over file names; `when` becomes created_at as written."""
    folder = write_journal(
        tmp_path / "m",
        [("0001_second", ONE), ("0000_first", ONE)],
        whens=[FIRST_WHEN, FIRST_WHEN + 5],
    )
    (folder / "0002_not_in_journal.sql").write_text(ONE)
    source = load_source(folder)
    assert [(m.name, m.created_at) for m in source.migrations] == [
        ("0001_second", FIRST_WHEN),
        ("0000_first", FIRST_WHEN + 5),
    ]


@pytest.mark.usefixtures("non_utc_timezone")
def test_folder_timestamps_become_utc_milliseconds(tmp_path: Path) -> None:
    folder = write_folders(
        tmp_path / "m",
        [("20250220153045_init", ONE), ("20251231235959_year_end", ONE)],
    )
    (folder / "not_a_migration").mkdir()  # folders without migration.sql are ignored
    source = load_source(folder)
    expected = [
        int(datetime(2025, 2, 20, 15, 30, 45, tzinfo=UTC).timestamp()) * 1000,
        int(datetime(2025, 12, 31, 23, 59, 59, tzinfo=UTC).timestamp()) * 1000,
    ]
    assert [m.created_at for m in source.migrations] == expected
    assert expected[0] == 1_740_065_445_000
    assert [m.name for m in source.migrations] == ["20250220153045_init", "20251231235959_year_end"]


def test_folders_are_ordered_by_name(tmp_path: Path) -> None:
    names = ["20250301000000_c", "20250101000000_a", "20250201000000_b"]
    folder = write_folders(tmp_path / "m", [(n, ONE) for n in names])
    assert [m.name for m in load_source(folder).migrations] == sorted(names)


def test_folder_without_timestamp_is_refused(tmp_path: Path) -> None:
    folder = write_folders(tmp_path / "m", [("20250101000000_a", ONE), ("init", ONE)])
    with pytest.raises(SourceError, match="YYYYMMDDHHMMSS"):
        load_source(folder)


def test_plain_files_are_ordered_by_name(tmp_path: Path) -> None:
    folder = tmp_path / "m"
    # written in reverse, so neither creation order nor inode order gives the right answer
    write_plain(folder, [("0010_c", ONE), ("0002_b", ONE), ("0001_a", ONE)])
    (folder / "README.md").write_text("not a migration")
    source = load_source(folder)
    assert [m.name for m in source.migrations] == ["0001_a", "0002_b", "0010_c"]
    assert all(m.created_at is None for m in source.migrations)


def test_plain_sql_file_without_number_is_refused(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", [("0001_a", ONE), ("seed", ONE)])
    with pytest.raises(SourceError, match="does not start with a number"):
        load_source(folder)


@pytest.mark.parametrize(
    "data",
    [
        b"CREATE TABLE a (id integer);\n",
        b"CREATE TABLE a (id integer);\r\n--> statement-breakpoint\r\nSELECT 1;\r\n",
        "\ufeffINSERT INTO a VALUES ('caf\u00e9');\n".encode(),
    ],
    ids=["lf", "crlf", "bom-and-utf8"],
)
def test_hash_is_sha256_of_the_file_bytes(tmp_path: Path, data: bytes) -> None:
    for fmt, folder in [
        (Format.DRIZZLE_JOURNAL, write_journal(tmp_path / "j", [("0000_a", data)])),
        (Format.DRIZZLE_FOLDERS, write_folders(tmp_path / "f", [("20250101000000_a", data)])),
        (Format.SQL, write_plain(tmp_path / "p", [("0001_a", data)])),
    ]:
        source = load_source(folder)
        assert source.format is fmt
        assert source.migrations[0].hash == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize(
    "tag", ["../0001_up", "/tmp/0001_abs", "sub/../../0001_up", "sub/../../m/0000_a"]
)
def test_journal_tags_must_stay_inside_the_folder(tmp_path: Path, tag: str) -> None:
    folder = write_journal(tmp_path / "m", [("0000_a", ONE)])
    (tmp_path / "0001_up.sql").write_text(ONE)
    journal = json.loads((folder / "meta" / "_journal.json").read_text())
    journal["entries"].append({"idx": 1, "version": "6", "when": FIRST_WHEN + 1, "tag": tag})
    (folder / "meta" / "_journal.json").write_text(json.dumps(journal))
    with pytest.raises(SourceError, match="points outside the migrations folder"):
        load_source(folder)


def test_statements_of_a_journal_migration(tmp_path: Path) -> None:
    folder = write_journal(
        tmp_path / "m",
        [("0000_init", "CREATE TABLE a (id integer);\n--> statement-breakpoint\nSELECT 1;")],
    )
    migration = load_source(folder).migrations[0]
    assert [s.sql for s in migration.statements] == ["CREATE TABLE a (id integer);", "SELECT 1;"]


def test_a_utf8_byte_order_mark_is_not_part_of_the_first_statement(
    tmp_path: Path, cli: Cli
) -> None:
    """SQLite skips an editor's BOM; the findings read past it too (it hid a DROP TABLE)."""
    folder = write_plain(tmp_path / "m", [("0001_init", "CREATE TABLE users (id integer);")])
    db = tmp_path / "app.db"
    assert cli("run", "--db", db, "--migrations", folder).returncode == 0
    query_db = sqlite3.connect(db)
    query_db.execute("INSERT INTO users VALUES (1)")
    query_db.commit()
    query_db.close()
    data = "\ufeffDROP TABLE users;\n".encode()
    write_plain(folder, [("0002_drop", data)])
    migration = load_source(folder).migrations[1]
    assert migration.statements[0].sql == "DROP TABLE users;"
    assert migration.hash == hashlib.sha256(data).hexdigest()  # the file's bytes, BOM and all
    proc = cli("plan", "--db", db, "--migrations", folder)
    assert_one_clear_error(proc, 15, "drops table users")


def test_a_fifo_in_place_of_a_migration_is_refused_without_blocking(tmp_path: Path) -> None:
    folder = write_plain(tmp_path / "m", [("0001_init", ONE)])
    os.mkfifo(folder / "0002_next.sql")  # reading it would wait for a writer for ever
    with pytest.raises(SourceError, match=r"0002_next.sql is a FIFO \(named pipe\), not a regular"):
        load_source(folder)


@pytest.mark.parametrize(
    ("when", "message"),
    [
        (2**63, "from 0 to 8640000000000000"),  # SQLite's integer overflowed: exit 70
        (10**30, "from 0 to 8640000000000000"),
        (-1, "from 0 to 8640000000000000"),
        (1.5e12, "from 0 to 8640000000000000"),
        ("1740000000000", "from 0 to 8640000000000000"),
    ],
)
def test_a_journal_when_must_be_a_time_drizzle_could_write(
    tmp_path: Path, when: object, message: str
) -> None:
    folder = write_journal(tmp_path / "m", [("0000_init", ONE)])
    journal = json.loads((folder / "meta" / "_journal.json").read_text())
    journal["entries"][0]["when"] = when
    (folder / "meta" / "_journal.json").write_text(json.dumps(journal))
    with pytest.raises(SourceError, match=message):
        load_source(folder)


@pytest.mark.parametrize("tag", ["0000_in\x00it", "0000_in\nit", "0000_\x1b[31mred", "0000_\u2028"])
def test_a_journal_tag_with_a_control_character_is_refused(tmp_path: Path, tag: str) -> None:
    folder = write_journal(tmp_path / "m", [("0000_init", ONE)])
    journal = json.loads((folder / "meta" / "_journal.json").read_text())
    journal["entries"][0]["tag"] = tag
    (folder / "meta" / "_journal.json").write_text(json.dumps(journal))
    with pytest.raises(SourceError, match=r"contains .* at character"):
        load_source(folder)


def test_a_folder_time_that_is_no_time_is_refused(tmp_path: Path) -> None:
    folder = write_folders(tmp_path / "m", [("20251399250000_init", ONE)])
    with pytest.raises(SourceError, match="real YYYYMMDDHHMMSS time"):
        load_source(folder)
