"""The Node example's migrations (examples/node-shop) hold together: each release ships
drizzle-kit's output as it stood at that release, so every earlier release is a prefix of the
next, byte for byte, and the shapes the deploy tests rely on are there (the v3 rebuild, the v4
data migration)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

SHOP = Path(__file__).resolve().parent.parent / "examples" / "node-shop"
RELEASES = {
    "v1": SHOP / "releases" / "v1" / "drizzle",
    "v2": SHOP / "releases" / "v2" / "drizzle",
    "v3": SHOP / "releases" / "v3" / "drizzle",
    "v4": SHOP / "drizzle",
}
TAGS = [
    "0000_users_and_products",
    "0001_add_reviews",
    "0002_optional_description",
    "0003_add_shop_account",
]


def journal(folder: Path) -> list[dict[str, object]]:
    entries: list[dict[str, object]] = json.loads((folder / "meta" / "_journal.json").read_text())[
        "entries"
    ]
    return entries


@pytest.mark.parametrize("release", list(RELEASES))
def test_each_release_ships_the_migrations_up_to_it(release: str) -> None:
    folder = RELEASES[release]
    count = list(RELEASES).index(release) + 1

    assert [e["tag"] for e in journal(folder)] == TAGS[:count]
    files = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())
    snapshots = [f"meta/{tag[:4]}_snapshot.json" for tag in TAGS[:count]]
    assert files == sorted([*(f"{t}.sql" for t in TAGS[:count]), *snapshots, "meta/_journal.json"])
    # Everything but the journal is what the newest release has, byte for byte.
    for name in files:
        if name != "meta/_journal.json":
            assert (folder / name).read_bytes() == (SHOP / "drizzle" / name).read_bytes(), name
    assert journal(folder) == journal(SHOP / "drizzle")[:count]


def test_v3_is_drizzle_kits_table_rebuild_under_a_cascading_child() -> None:
    v2 = (SHOP / "drizzle" / "0001_add_reviews.sql").read_text()
    v3 = (SHOP / "drizzle" / "0002_optional_description.sql").read_text()

    assert "REFERENCES `products`(`id`) ON UPDATE no action ON DELETE cascade" in v2
    assert v3.startswith("PRAGMA foreign_keys=OFF;")
    for statement in ("CREATE TABLE `__new_products`", "DROP TABLE `products`;", "RENAME TO"):
        assert statement in v3


def test_v4_changes_data_not_the_schema() -> None:
    snapshots = SHOP / "drizzle" / "meta"
    v3 = json.loads((snapshots / "0002_snapshot.json").read_text())
    v4 = json.loads((snapshots / "0003_snapshot.json").read_text())

    assert v4["tables"] == v3["tables"]
    assert "INSERT INTO `users`" in (SHOP / "drizzle" / "0003_add_shop_account.sql").read_text()
