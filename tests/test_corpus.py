"""The gate on real drizzle-kit histories nobody here wrote, at every cut point.

For each history in tests/corpus (homarr: 42 migrations, dyad: 50) and each cut point k,
drizzle's own migrator applies the first k migrations to a new database, `corpus_fill`
puts plausible rows in every table, then `entrypoint run` runs the rest with defaults.
Its decision is compared with the truth written below, which was decided by reading the
pending SQL against the data the filler writes (docs/gate-truth.md says how):

- `Vanishes`: values that really disappear, with the cut points where they do;
- `KEPT`: one line for every other migration that can lose, move or fail data, saying
  why it does not here.

A refusal must name exactly the objects that vanish (no more, no less) and leave the
file byte for byte; acknowledged with `--allow`, the same run then migrates every row.
Where the truth says nothing vanishes, the run must migrate and keep every row. drizzle's
migrator runs on a copy of the same database at every cut point too, so the comparison
in the README is measured here: every row it loses (ON DELETE CASCADE during rebuilds),
ours keeps.
"""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path

import pytest
from corpus_harness import HISTORIES, History, compare, counts, prepare, run_drizzle, run_ours

pytestmark = pytest.mark.interop


@dataclass(frozen=True)
class Vanishes:
    """Values at `object` that vanish when the cut point k is in [since, last] (inclusive).

    `since`: the first cut point at which the filler writes values there (the column
    exists after that many migrations); `last`: the position of the migration that drops
    them (pending while k <= last); `kept_from`: a migration that copies them elsewhere
    first, so they are kept while it is pending too (k <= its position).
    """

    object: str
    since: int
    dropped_by: str
    why: str
    kept_while_pending: str | None = None


HOMARR_VANISHES = [
    Vanishes("user.salt", 1, "0035_remove_salt", "0035 drops user.salt; nothing copies it"),
    Vanishes(
        "apiKey.salt",
        10,  # apiKey is created by 0009
        "0035_remove_salt",
        "0035 drops apiKey.salt; nothing copies it",
    ),
    *(
        Vanishes(
            f"section.{column}",
            7,  # added by 0006's rebuild of section
            "0030_migrate_item_and_section_for_layouts",
            f"0030's rebuild of section leaves out {column}; 0029 copied it into section_layout "
            "only for sections whose kind = 'dynamic', and the filler writes no such kind",
        )
        for column in ("width", "height", "parent_section_id")
    ),
    *(
        Vanishes(
            f"item.{column}",
            1,
            "0030_migrate_item_and_section_for_layouts",
            f"0030's rebuild of item leaves out {column}; 0029 copies it into item_layout "
            "keyed by item_id, so it is kept while 0029 is pending, and lost when 0029 ran "
            "before the rows were written (k = 30: item_layout holds other values)",
            kept_while_pending="0029_add_layouts",
        )
        for column in ("x_offset", "y_offset", "width", "height")
    ),
    Vanishes(
        "board.column_count",
        1,
        "0030_migrate_item_and_section_for_layouts",
        "0030 drops board.column_count; 0029 copies it into layout.column_count keyed by "
        "layout.id = board.id, so it is kept while 0029 is pending",
        kept_while_pending="0029_add_layouts",
    ),
]

# Every other homarr migration that can lose, move or fail data, and why it does not here.
HOMARR_KEPT = {
    "0001_mixed_titanium_man": "user rebuilt the old way (rename, create, copy, drop) with "
    "the COMMIT/PRAGMA/BEGIN idiom: every column copied, homeBoardId added NULL",
    "0006_windy_doctor_faustus": "section rebuilt the old way: position copied into y_offset, "
    "the new columns filled with constants or NULL, the idiom again",
    "0012_ambiguous_black_panther": "user rebuilt, every column copied; drizzle's migrator "
    "empties 5-7 child tables here through ON DELETE CASCADE, ours rebuilds with foreign "
    "keys off",
    "0013_faithful_hex": "unique index on group.name: the filler's names are distinct",
    "0015_superb_psylocke": "search_engine rebuilt, every column copied",
    "0016_change_all_to_snake_case": "three RENAME COLUMNs and eight rebuilds that rename "
    "columns to snake_case through the copy (userId -> user_id, ...): every value carried",
    "0018_cheerful_tattoo": "unique index on search_engine.short: the filler's values are distinct",
    "0023_fix_on_delete_actions": "user rebuilt with new ON DELETE actions, every column "
    "copied, the idiom",
    "0025_add-group-home-board-settings": "group rebuilt by two INSERTs with complementary "
    "filters (name = 'everyone' / name != 'everyone'): every row copied, position computed",
    "0029_add_layouts": "copies board.column_count, item and section geometry into the new "
    "layout tables (INSERT ... SELECT with LEFT JOINs); drops nothing",
    "0030_migrate_item_and_section_for_layouts": "apart from what Vanishes lists: item's "
    "rebuild copies every row through a LEFT JOIN (section_id becomes board_id; section_id "
    "stays in item_layout, keyed by item_id); UPDATE section ... WHERE kind = 'dynamic' "
    "meets no row",
    "0039_merge_custom_widget_url": "custom_widget_definition rebuilt with url = base_url || "
    "endpoint: both values are kept inside url; drizzle's migrator empties "
    "custom_widget_secret here through ON DELETE CASCADE",
}

# dyad drops, rebuilds and renames nothing; these are the statements that could fail.
DYAD_KEPT = {
    "0009_previous_misty_knight": "unique index on a table created by the same migration",
    "0012_bouncy_fenris": "unique index on a table created by the same migration",
    "0026_lying_joseph": "adds prompts.slug, then a unique index on it: every value is NULL, "
    "and NULLs never collide",
    "0031_remarkable_spacker_dave": "unique index on a new table; apps gains a NULL foreign "
    "key column",
    "0036_crazy_morg": "unique index on a table created by the same migration",
    "0038_sudden_tony_stark": "adds mcp_servers.catalog_slug, then a unique index on it: all NULL",
    "0040_chat-search-fts": "an FTS5 table and triggers, and INSERT OR REPLACE of every message "
    "id into a new queue table: nothing is removed",
    "0041_wet_forge": "adds messages.user_input_request_id, then a unique index on "
    "(chat_id, it): NULLs never collide",
    "0045_empty_firestar": "adds messages.chat_turn_intent_id, then a unique index on "
    "(chat_id, it): NULLs never collide",
    "0046_amusing_malice": "unique indexes on tables created by the same migration",
    "0048_familiar_mystique": "unique index on a table created by the same migration",
}

TRUTH: dict[str, tuple[list[Vanishes], dict[str, str]]] = {
    "homarr": (HOMARR_VANISHES, HOMARR_KEPT),
    "dyad": ([], DYAD_KEPT),
}


def expected(history: History, k: int) -> set[str]:
    """The objects whose values vanish at cut point k (empty: the run migrates)."""
    position = {tag: i for i, tag in enumerate(history.tags())}
    found = set()
    for v in TRUTH[history.name][0]:
        pending = k <= position[v.dropped_by]
        copied = v.kept_while_pending is not None and k <= position[v.kept_while_pending]
        if v.since <= k and pending and not copied:
            found.add(v.object)
    return found


CUTS = [
    pytest.param(name, k, id=f"{name}-{k:02d}")
    for name, history in HISTORIES.items()
    for k in range(len(history) + 1)
]
_BLOCKED = re.compile(r"^entrypoint: blocking: rehearsal: (\S+): ", re.MULTILINE)


def history_rows(db: Path) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return int(conn.execute("SELECT count(*) FROM __drizzle_migrations").fetchone()[0])


def test_the_truth_names_real_migrations() -> None:
    for name, (vanishes, kept) in TRUTH.items():
        tags = set(HISTORIES[name].tags())
        assert {v.dropped_by for v in vanishes} <= tags
        assert {v.kept_while_pending for v in vanishes if v.kept_while_pending} <= tags
        assert set(kept) <= tags


@pytest.mark.parametrize(("name", "k"), CUTS)
def test_the_gate_decides_as_the_written_truth(tmp_path: Path, name: str, k: int) -> None:
    history = HISTORIES[name]
    db = prepare(history, k, tmp_path / "ours")
    before = counts(db)
    before_bytes = db.read_bytes() if db.exists() else None
    vanishing = expected(history, k)
    theirs = run_drizzle(db, history.folder, tmp_path / "drizzle" / "app.db")
    assert theirs.ok, theirs.error  # the corpus applies under drizzle at every cut point

    proc = run_ours(db, history.folder)
    assert "Traceback" not in proc.stderr
    if vanishing:
        assert proc.returncode == 15, proc.stderr
        named = set(_BLOCKED.findall(proc.stderr))
        assert {o.lower() for o in named} == {o.lower() for o in vanishing}, proc.stderr
        assert db.read_bytes() == before_bytes  # refused before anything was written
        assert not (db.parent / "backups").exists()
        # acknowledged by name, as an operator of an image they did not write would
        allows = [a for o in sorted(vanishing) for a in ("--allow", f"lost-values={o}")]
        proc = run_ours(db, history.folder, *allows)
    assert proc.returncode == 0, proc.stderr
    assert history_rows(db) == len(history)
    assert not (db.parent / "quarantine").exists()  # the check after migrating agreed
    ours = compare(before, counts(db))
    assert ours.rows_lost == {} and ours.tables_gone == {}  # every row kept
    # where drizzle's migrator lost rows on the same data (ON DELETE CASCADE during a
    # rebuild), ours kept them: the README's comparison, measured
    assert set(ours.values_lost) <= {o for o in vanishing}
