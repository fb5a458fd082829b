"""SQLite identifiers in SQL text: `quote` one. Kept apart from `sqltext` (the SQL reader),
which the start-up path with nothing pending never needs."""

from __future__ import annotations


def quote(name: str) -> str:
    """A name quoted for SQLite."""
    return '"' + name.replace('"', '""') + '"'
