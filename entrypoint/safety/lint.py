"""`entrypoint lint`: what a migrations folder says about itself, with no database.

For CI, before a release: the folder must load as the entrypoint loads it (journal, names,
encodings, paths), and then:

- journal dates in order: drizzle's migrator runs a migration only when its journal date is
  newer than the newest applied one, so a date older than an earlier entry's means it is
  never run on a database that has that entry (an error);
- 1.0 folders: two migrations stamped with the same second apply in name order (a warning);
- every migration with its snapshot (drift and push read them), and no file drizzle never
  runs (a `.sql` beside the journal or the folders that no entry names);
- one statement per `--> statement-breakpoint` piece: drizzle's migrator runs each piece as
  one statement, which better-sqlite3 refuses when it holds several (litedeploy splits them);
- the findings a file gives on its own (`files.find_in_files`): transaction control, empty
  pieces, statements that open another database file;
- drizzle-kit's random names (`0003_overconfident_terrax`, generated without `--name`): a
  warning when the newest migration has one, since a name is what a reviewer and an operator
  reading a log have to go on (older ones are left be: renaming applied migrations is worse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from ..base.errors import SourceError
from ..engine.snapshots import snapshot_path
from ..engine.sources import JOURNAL, Format, Migration, Source, load_source
from ..engine.statements import split_complete, strip_comments
from .drizzle_words import ADJECTIVES, HEROES
from .files import find_in_files

Level = Literal["error", "warning"]


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the folder: where (a path relative to the folder), and what."""

    level: Level
    rule: str
    path: str
    message: str


def lint(folder: Path, fmt: Format | None = None) -> tuple[Source | None, list[Problem]]:
    """The folder's problems (errors first); the source is None when it does not load."""
    try:
        source = load_source(folder, fmt)
    except SourceError as exc:
        return None, [Problem("error", "unreadable", ".", exc.message)]
    problems = [
        *_order(source),
        *_files(source),
        *_pieces(source),
        *_findings(source),
        *_unnamed(source),
    ]
    return source, sorted(problems, key=lambda p: (p.level != "error", p.path))


def _where(source: Source, migration: Migration) -> str:
    return str(migration.path.relative_to(source.folder))


def _order(source: Source) -> list[Problem]:
    problems = []
    newest: Migration | None = None
    for m in source.migrations:
        if m.created_at is None:
            continue
        if newest is not None and newest.created_at is not None:
            if source.format is Format.DRIZZLE_JOURNAL and m.created_at <= newest.created_at:
                problems.append(
                    Problem(
                        "error",
                        "journal-order",
                        _where(source, m),
                        f"{m.name}'s journal date ({_when(m.created_at)}) is not after "
                        f"{newest.name}'s ({_when(newest.created_at)}): drizzle's migrator never "
                        f"runs it on {_reach(source, m)} (it compares dates with the newest "
                        "applied)",
                    )
                )
            elif source.format is Format.DRIZZLE_FOLDERS and m.created_at == newest.created_at:
                problems.append(
                    Problem(
                        "warning",
                        "same-second",
                        _where(source, m),
                        f"{m.name} and {newest.name} are stamped with the same second: they "
                        "apply in name order, which may not be the order they were written in",
                    )
                )
        if newest is None or (newest.created_at or 0) < m.created_at:
            newest = m
    return problems


def _reach(source: Source, late: Migration) -> str:
    """The earliest migration whose presence makes drizzle skip `late`: the first one dated
    at or after it (all of them when it is older than the first)."""
    assert late.created_at is not None
    for m in source.migrations:
        if m is late:
            break
        if m.created_at is not None and m.created_at >= late.created_at:
            if m is source.migrations[0]:
                return f"any existing database: it is dated before even {m.name}, the first"
            return f"a database that has {m.name}"
    return "a database that has the migrations before it"


def _when(millis: int) -> str:
    try:
        moment = datetime.fromtimestamp(millis / 1000, tz=UTC)
    except (ValueError, OverflowError, OSError):  # beyond year 9999: the number alone
        return str(millis)
    return f"{moment.isoformat(timespec='milliseconds').replace('+00:00', 'Z')}, {millis}"


def _files(source: Source) -> list[Problem]:
    problems = []
    named = {m.path.resolve() for m in source.migrations}
    if source.format is Format.SQL:
        return []
    expected = set()
    for position, m in enumerate(source.migrations):
        snapshot = snapshot_path(source, position)
        if snapshot is None or not snapshot.is_file():
            problems.append(_no_snapshot(source, m, snapshot))
        else:
            expected.add(snapshot.resolve())
    if source.format is Format.DRIZZLE_JOURNAL:
        strays = sorted(p for p in source.folder.glob("*.sql") if p.resolve() not in named)
        meta = (source.folder / JOURNAL).parent
        for path in sorted(meta.glob("*_snapshot.json")):
            if path.resolve() not in expected:
                problems.append(
                    Problem(
                        "warning",
                        "not-a-snapshot",
                        str(path.relative_to(source.folder)),
                        f"{path.name} belongs to no journal entry (a journal cut back by hand, "
                        "or a folder copied over another): drizzle-kit generate builds the "
                        "next migration on the newest snapshot file, so it would diff against "
                        "a schema the journal does not have; remove it, or restore its entry",
                    )
                )
    else:
        strays = sorted(p for p in source.folder.glob("*.sql") if p.is_file())
    for path in strays:
        problems.append(
            Problem(
                "warning",
                "not-a-migration",
                str(path.relative_to(source.folder)),
                f"{path.name} is no migration of this folder (no journal entry or migration "
                "folder names it): neither drizzle nor litedeploy runs it; remove it, or "
                "generate it as a migration",
            )
        )
    return problems


def _no_snapshot(source: Source, m: Migration, snapshot: Path | None) -> Problem:
    where = f" ({snapshot.relative_to(source.folder)})" if snapshot is not None else ""
    return Problem(
        "warning",
        "no-snapshot",
        _where(source, m),
        f"{m.name} has no snapshot{where}: drift then compares "
        "a database at it with an older snapshot, and push's declared schema cannot show what "
        "it changed; let drizzle-kit generate the migration (`drizzle-kit generate --custom` "
        "for hand-written SQL)",
    )


def _pieces(source: Source) -> list[Problem]:
    problems = []
    for m in source.migrations:
        if source.format is Format.SQL:
            continue
        for number, chunk in enumerate(m.chunks, 1):
            if chunk.skipped:
                continue
            statements = [s for s in split_complete(chunk.text) if strip_comments(s).strip()]
            if len(statements) > 1:
                problems.append(
                    Problem(
                        "warning",
                        "no-breakpoint",
                        _where(source, m),
                        f"piece {number} of {m.name} holds {len(statements)} statements without "
                        "`--> statement-breakpoint` between them: drizzle's migrator runs a "
                        "piece as one statement, which better-sqlite3 refuses (litedeploy "
                        "splits it)",
                    )
                )
    return problems


def _findings(source: Source) -> list[Problem]:
    by_name = {m.name: m for m in source.migrations}
    problems = []
    for f in find_in_files(source.migrations):
        if f.acknowledged or f.severity == "info":
            continue
        m = by_name.get(f.migration)
        where = _where(source, m) if m is not None else "."
        level: Level = "error" if f.severity == "block" else "warning"
        problems.append(Problem(level, f.rule, where, f"{f.migration}: {f.message} ({f.hint})"))
    return problems


def random_name(name: str) -> bool:
    """Whether drizzle-kit made the name up: `<prefix>_<adjective>_<hero>` from its lists."""
    _, _, suffix = name.partition("_")
    adjective, _, hero = suffix.partition("_")
    return adjective in ADJECTIVES and hero in HEROES


def _unnamed(source: Source) -> list[Problem]:
    if source.format is Format.SQL:
        return []
    if not source.migrations or not random_name(source.migrations[-1].name):
        return []
    newest = source.migrations[-1]
    return [
        Problem(
            "warning",
            "unnamed",
            _where(source, newest),
            f"{newest.name} has a name drizzle-kit made up (it was given no --name): name "
            "what a migration does (`drizzle-kit generate --name add_user_email`), so a "
            "reviewer and whoever reads the deploy log know what it changes",
        )
    ]
