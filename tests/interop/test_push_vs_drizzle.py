"""Our push mode next to the real `drizzle-kit push` (0.31.11), on copies of the same database.

Where both are told the same thing (the rename answered, the loss accepted) they end with the
same schema and the same rows. Where drizzle-kit push --force decides on its own, ours refuses
and keeps the data: a rename it was not told about (drizzle empties the table and, through ON
DELETE CASCADE, its children) and a column dropped with its values (drizzle drops it silently).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from drizzle_push import drizzle_push, hints_file, normalised_schema, shop_step
from harness import run_cli
from test_drizzle_push import (
    EARLY,
    JOURNAL,
    REVIEWS_ONLY,
    WITH_ORDERS,
    counts,
    database,
    table_rows,
)

pytestmark = pytest.mark.interop

# What our push is told at each step: the same answers drizzle-kit's prompts get.
OUR_FLAGS: dict[int, tuple[str, ...]] = {
    3: ("--accept-data-loss",),  # '12.50' does not stay text under INTEGER affinity
    4: ("--rename", "products.name=title"),
    5: ("--accept-data-loss",),  # users.name is dropped with its values
}


def ours(db: Path, step: int, *flags: str) -> subprocess.CompletedProcess[str]:
    schema = JOURNAL / "meta" / f"{step:04d}_snapshot.json"
    return run_cli(
        "run", "--mode", "push", "--db", db, "--schema", schema, "--env", "staging",
        "--backup", "never", *flags,
        cwd=db.parent,
    )  # fmt: skip


def twin(db: Path, name: str) -> Path:
    """A copy of the database in a sibling folder, for the other tool."""
    folder = db.parent.parent / name
    folder.mkdir()
    shutil.copyfile(db, folder / db.name)
    return folder / db.name


def seed_for(step: int) -> str | None:
    """The database at step-1 (migrations 0000..step-2 applied), seeded where a seed fits."""
    return REVIEWS_ONLY if step >= 3 else EARLY


@pytest.mark.parametrize("step", range(1, 6))
def test_told_the_same_both_end_with_the_same_schema_and_rows(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, step: int
) -> None:
    db = database(step, seed_for(step), tmp_path / "ours", tmp_path_factory)
    theirs = twin(db, "theirs")

    proc = ours(db, step, *OUR_FLAGS.get(step, ()))
    result = drizzle_push(shop_step(step), theirs, renames=hints_file(shop_step(step)))

    assert proc.returncode == 0, proc.stderr
    assert result.ok, result.output
    assert normalised_schema(db) == normalised_schema(theirs)
    assert table_rows(db) == table_rows(theirs)


@pytest.mark.parametrize("seed", [REVIEWS_ONLY, WITH_ORDERS])
def test_a_rename_nobody_declared_drizzle_empties_products_ours_refuses(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory, seed: str
) -> None:
    db = database(4, seed, tmp_path / "ours", tmp_path_factory)
    theirs = twin(db, "theirs")
    before, raw = table_rows(db), db.read_bytes()

    proc = ours(db, 4, "--accept-data-loss")  # even accepting losses: no rows are deleted
    result = drizzle_push(shop_step(4), theirs, renames={"products.title": None})

    assert proc.returncode == 15, proc.stderr
    assert "cannot be made without deleting rows" in proc.stderr
    assert "products.title NOT NULL without a default to 3 row(s)" in proc.stderr
    assert db.read_bytes() == raw  # ours: untouched, every product and review still there
    lost = counts(before)
    if seed == REVIEWS_ONLY:
        assert result.ok, result.output
        # theirs: `delete from products;`, and every review with them (ON DELETE CASCADE)
        assert counts(table_rows(theirs)) == {**lost, "products": 0, "reviews": 0}
    else:
        assert not result.ok  # theirs: FOREIGN KEY constraint failed, the orders block it
        assert "FOREIGN KEY constraint failed" in result.output


def test_a_column_with_values_drizzle_drops_it_silently_ours_asks(
    tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    db = database(5, REVIEWS_ONLY, tmp_path / "ours", tmp_path_factory)
    theirs = twin(db, "theirs")
    raw = db.read_bytes()
    names = [u["name"] for u in table_rows(db)["users"]]
    assert names == ["Olena", "Taras"]

    proc = ours(db, 5)
    result = drizzle_push(shop_step(5), theirs)

    assert result.ok, result.output
    assert all("name" not in u for u in table_rows(theirs)["users"])  # theirs: names gone
    assert proc.returncode == 15, proc.stderr
    assert "drops users.name with 2 non-NULL value(s)" in proc.stderr
    assert db.read_bytes() == raw  # ours: refused until the loss is accepted
    accepted = ours(db, 5, "--accept-data-loss")
    assert accepted.returncode == 0, accepted.stderr
    assert normalised_schema(db) == normalised_schema(theirs)
