"""Push mode on real drizzle-kit histories nobody here wrote, from every cut point.

For each history in tests/corpus and each cut point k, drizzle's own migrator applies the
first k migrations, `corpus_fill` puts 3 rows in every table, then `entrypoint run --mode
push` (no --schema: the folder's newest snapshot, no renames told) makes the schema the
declared one, as a staging container pointed at an older database would. Its answer is
compared with the truth written below, decided by reading the pending SQL: a push is told
nothing of what the migrations did with values (renames done through rebuilds, values
moved to other tables, a column made NOT NULL from values the migration computes), so
where the newest schema drops a column that holds values, push names a loss; where it
adds a NOT NULL column without a default to a table with rows, push cannot do it without
deleting them. Everything else must apply. Then:

- a refusal: exit 15, exactly the written reasons (no more, no fewer), the file byte for
  byte, and the dry run exits 15 with the same error line; where every reason is a loss,
  `--accept-data-loss` applies it;
- an applied push: every table keeps every row, and a dry run then reports no change;
- never an internal error (exit 70).
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from corpus_harness import HISTORIES, History, ours, prepare
from harness import error_lines

pytestmark = pytest.mark.interop


@dataclass(frozen=True)
class Refused:
    """A reason push gives at cut points `since` <= k <= position of `until` (its migration
    is pending): `kind` LOSS (--accept-data-loss takes it) or CANNOT (never applied)."""

    kind: str
    object: str  # "table.column"
    since: int  # the first cut point at which the column exists with the filler's values
    until: str  # the migration after which the live column is the declared one
    why: str


SNAKE = "0016_change_all_to_snake_case"
SNAKE_WHY = (
    "0016 renames camelCase columns to snake_case through rebuilds (INSERT ... SELECT "
    '"userId" AS user_id); push, told no rename, sees the old column dropped with its values '
    "and, where the new one is NOT NULL without a default, a column it cannot fill"
)
LAYOUTS = "0030_migrate_item_and_section_for_layouts"
LAYOUTS_WHY = (
    "0029 copies board and item geometry into layout / item_layout and 0030 rebuilds item, "
    "section and board without it; the declared schema has neither the old columns nor a "
    "value for item.board_id (0030 computes it from section.board_id by a join)"
)

HOMARR: list[Refused] = [
    *(
        Refused("CANNOT", o, since, SNAKE, SNAKE_WHY)
        for o, since in [
            ("account.user_id", 1),
            ("groupPermission.group_id", 1),
            ("iconRepository.slug", 1),
            ("icon.name", 1),
            ("icon.url", 1),
            ("icon.checksum", 1),
            ("icon.icon_repository_id", 1),
            ("session.user_id", 1),
            ("apiKey.api_key", 10),
            ("apiKey.user_id", 10),
        ]
    ),
    *(
        Refused("LOSS", o, since, SNAKE, SNAKE_WHY)
        for o, since in [
            ("account.userId", 1),
            ("account.providerAccountId", 1),
            ("groupMember.groupId", 1),
            ("groupMember.userId", 1),
            ("groupPermission.groupId", 1),
            ("iconRepository.iconRepository_id", 1),
            ("iconRepository.iconRepository_slug", 1),
            ("icon.icon_id", 1),
            ("icon.icon_name", 1),
            ("icon.icon_url", 1),
            ("icon.icon_checksum", 1),
            ("icon.iconRepository_id", 1),
            ("session.sessionToken", 1),
            ("session.userId", 1),
            ("user.emailVerified", 1),
            ("user.homeBoardId", 2),  # added by 0001
            ("serverSetting.key", 4),  # serverSetting is created by 0003
            ("user.colorScheme", 8),  # 0007
            ("apiKey.apiKey", 10),
            ("apiKey.userId", 10),  # apiKey is created by 0009
            ("user.firstDayOfWeek", 11),  # 0010
            ("user.pingIconsEnabled", 12),  # 0011
        ]
    ),
    Refused(
        "LOSS",
        "section.position",
        1,
        "0006_windy_doctor_faustus",
        "0006 rebuilds section, moving position into y_offset (INSERT ... SELECT ..., 0, "
        "`position`, ...); the declared section has no position",
    ),
    Refused(
        "CANNOT",
        "group.position",
        1,
        "0025_add-group-home-board-settings",
        "0025 adds group.position NOT NULL, computing it (-1 for 'everyone', ROW_NUMBER() "
        "for the others); push has no value for the rows",
    ),
    Refused("CANNOT", "item.board_id", 1, LAYOUTS, LAYOUTS_WHY),
    *(
        Refused("LOSS", o, since, LAYOUTS, LAYOUTS_WHY)
        for o, since in [
            ("board.column_count", 1),
            ("item.section_id", 1),
            ("item.x_offset", 1),
            ("item.y_offset", 1),
            ("item.width", 1),
            ("item.height", 1),
            ("section.width", 7),
            ("section.height", 7),
            ("section.parent_section_id", 7),
        ]  # the section columns are added by 0006
    ),
    *(
        Refused(
            "LOSS",
            o,
            since,
            "0035_remove_salt",
            "0035 drops the salt columns: their values are gone with push as with the migration",
        )
        for o, since in [("user.salt", 1), ("apiKey.salt", 10)]
    ),
    Refused(
        "CANNOT",
        "custom_widget_definition.url",
        39,  # custom_widget_definition is created by 0038
        "0039_merge_custom_widget_url",
        "0039 rebuilds the table with url NOT NULL = base_url || endpoint",
    ),
    *(
        Refused(
            "LOSS",
            f"custom_widget_definition.{c}",
            39,
            "0039_merge_custom_widget_url",
            "0039 merges base_url and endpoint into url; the declared table has neither",
        )
        for c in ("base_url", "endpoint")
    ),
]
TRUTH: dict[str, list[Refused]] = {
    "homarr": HOMARR,
    # dyad's history only adds: tables, nullable columns, columns with literal defaults,
    # unique indexes on columns it has just added (all NULL then) and an FTS5 table with
    # its triggers (0040, hand-written: not in the snapshot, named, left alone)
    "dyad": [],
}
# dyad's 0040 creates these; its snapshots do not have them
DYAD_FTS = "0040_chat-search-fts"

CUTS = [
    pytest.param(name, k, id=f"{name}-{k:02d}")
    for name, history in HISTORIES.items()
    for k in range(len(history) + 1)
]
_REASON = re.compile(
    r"^entrypoint: push: (?:cannot be done without deleting rows|data loss): "
    r"(?:adds (?P<add>\S+) NOT NULL without a default|drops (?P<drop>\S+) with)",
    re.MULTILINE,
)


def expected(history: History, k: int) -> set[tuple[str, str]]:
    position = {tag: i for i, tag in enumerate(history.tags())}
    return {(r.kind, r.object) for r in TRUTH[history.name] if r.since <= k <= position[r.until]}


def reasons(stderr: str) -> set[tuple[str, str]]:
    return {
        ("CANNOT", m["add"]) if m["add"] else ("LOSS", m["drop"]) for m in _REASON.finditer(stderr)
    }


def table_rows(db: Path) -> dict[str, int]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        names = [
            str(n)
            for (n,) in conn.execute(
                "SELECT name FROM pragma_table_list WHERE schema = 'main' AND type = 'table' "
                "AND name NOT LIKE 'sqlite_%'"
            )
        ]
        found = {n: int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]) for n in names}
    conn.close()
    return found


def test_the_truth_names_real_migrations() -> None:
    for name, refused in TRUTH.items():
        tags = HISTORIES[name].tags()
        assert {r.until for r in refused} <= set(tags)
        assert all(0 < r.since <= tags.index(r.until) for r in refused)
    assert DYAD_FTS in HISTORIES["dyad"].tags()


@pytest.mark.parametrize(("name", "k"), CUTS)
def test_push_from_every_cut_point_decides_as_the_written_truth(
    tmp_path: Path, name: str, k: int
) -> None:
    history = HISTORIES[name]
    db = prepare(history, k, tmp_path / "db")
    before = db.read_bytes() if db.exists() else None
    rows_before = table_rows(db) if db.exists() else {}
    want = expected(history, k)

    dry = ours("run", db, history.folder, "--mode", "push", "--dry-run", "--", "true")
    real = ours("run", db, history.folder, "--mode", "push", "--", "true")
    for proc in (dry, real):
        assert proc.returncode != 70 and "Traceback" not in proc.stderr, proc.stderr
    if want:
        assert real.returncode == 15, real.stderr
        assert reasons(real.stderr) == want, real.stderr
        assert dry.returncode == 15, dry.stderr  # the dry run answers as the push
        errors = error_lines(real.stderr)
        assert len(errors) == 1 and errors[0] in dry.stderr
        assert (db.read_bytes() if db.exists() else None) == before
        if any(kind == "CANNOT" for kind, _ in want):
            accepted = ours(
                "run", db, history.folder, "--mode", "push", "--accept-data-loss", "--", "true"
            )
            assert accepted.returncode == 15, accepted.stderr  # deleting rows: never
            assert (db.read_bytes() if db.exists() else None) == before
            return
        real = ours("run", db, history.folder, "--mode", "push", "--accept-data-loss", "--", "true")
    assert dry.returncode == 0 or want, dry.stderr
    assert real.returncode == 0, real.stderr
    after = table_rows(db)
    assert {t: n for t, n in rows_before.items() if after.get(t, 0) < n} == {}  # every row kept
    again = ours("run", db, history.folder, "--mode", "push", "--dry-run", "--", "true")
    assert again.returncode == 0, again.stderr
    assert "changes: 0 (the schema already matches)" in again.stdout, again.stdout
    if name == "dyad":
        fts_ran = k > history.tags().index(DYAD_FTS)
        said = "not in the declared schema, left alone: virtual table chat_search_fts"
        missing = "the migrations create virtual table chat_search_fts"
        assert (said in real.stderr) == fts_ran, real.stderr
        assert (missing in real.stderr) == (not fts_ran), real.stderr
