"""What each setting of the command line accepts, without typer.

`entrypoint run` reads these on every container start, often from the environment alone
(`cli/startup.py`); `cli/options.py` wraps the same checks as typer parsers, turning their
ValueError into typer's usage error.
"""

from __future__ import annotations

import math
import os
import unicodedata
from enum import StrEnum
from pathlib import Path
from typing import Any

from ..base.contract import MODE_PUSH
from ..base.errors import UsageError
from ..engine.history import name_problem
from ..engine.sources import Format
from ..safetynet.database import path_problem
from ..settings import JOURNAL_MODES, Options


class FormatChoice(StrEnum):
    AUTO = "auto"
    DRIZZLE_JOURNAL = "drizzle-journal"
    DRIZZLE_FOLDERS = "drizzle-folders"
    SQL = "sql"


class TransactionChoice(StrEnum):
    EACH = "each"
    ALL = "all"


class Mode(StrEnum):
    MIGRATE = "migrate"
    PUSH = MODE_PUSH


def sqlite_path(value: str | Path) -> Path:
    """A path SQLite will be given (the database, a backup, a folder for copies): UTF-8."""
    path = Path(value)
    if (problem := path_problem(path)) is not None:
        raise ValueError(f"{problem}; SQLite opens files by UTF-8 names")
    return path


# drizzle-kit writes to ./drizzle; earlier releases defaulted to ./drizzle/migrations, which
# is still read when ./drizzle is not a migrations folder itself and that one exists.
# (The database's default, CLI_DEFAULT_DB, is in base/contract.py, beside deploy's.)
DEFAULT_MIGRATIONS = Path("./drizzle")
_OLD_DEFAULT = DEFAULT_MIGRATIONS / "migrations"


def migrations_folder(given: Path) -> Path:
    """The folder to read: the default ./drizzle, or ./drizzle/migrations where they live."""
    if given != DEFAULT_MIGRATIONS or not _OLD_DEFAULT.is_dir():
        return given
    journal = given / "meta" / "_journal.json"
    holds_migrations = journal.exists() or any(given.glob("*/migration.sql"))
    return given if holds_migrations else _OLD_DEFAULT


def history_table_name(value: str) -> str:
    """--history-table / LITEDEPLOY_MIGRATIONS_TABLE: a name SQLite lets a table have."""
    if (problem := name_problem(value)) is not None:
        raise ValueError(problem)
    return value


MAX_WAIT = 86_400.0  # a day; more is a typo, and nan or inf would wait for ever
MAX_BACKUP_KEEP = 10_000


def seconds(value: str | float) -> float:
    """A wait from an option or the environment: a finite number of seconds, 0 to a day."""
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a number of seconds") from None
    if not (math.isfinite(number) and 0 <= number <= MAX_WAIT):
        raise ValueError(f"must be a number of seconds from 0 to {MAX_WAIT:g} (got {value!r})")
    return number


def known_journal_mode(value: str) -> str:
    """--journal-mode / LITEDEPLOY_JOURNAL_MODE: one of SQLite's modes that can roll back (any
    case)."""
    mode = value.strip().lower()
    if mode == "off":
        raise ValueError(
            "'off' keeps no rollback journal: a migration that fails half-way could not be "
            f"rolled back; use one of {', '.join(JOURNAL_MODES)} (wal is the default for a "
            "new database)"
        )
    if mode not in JOURNAL_MODES:
        raise ValueError(f"{value!r} is not one of {', '.join(JOURNAL_MODES)}")
    return mode


def deploy_id_value(value: str) -> str:
    """--deploy-id / LITEDEPLOY_DEPLOY_ID: a name the host-side deploy finds its backup by, on
    one line."""
    if any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in value):
        raise ValueError(f"{value!r} contains a control character")
    if len(value) > 200:
        raise ValueError(f"is {len(value)} characters long (at most 200)")
    return value


ALLOW_ENV = "LITEDEPLOY_ALLOW"


def allowances(given: list[str] | None) -> tuple[tuple[str, str], ...]:
    """--allow values and LITEDEPLOY_ALLOW, as (rule, object); bad ones are a UsageError."""
    values = list(given or [])
    env = os.environ.get(ALLOW_ENV, "")
    values += [v for part in env.replace(";", ",").split(",") if (v := part.strip())]
    if not values:
        return ()
    from ..safety.loss import parse_allow  # only with --allow given: loss.py is not light

    out = []
    for value in values:
        try:
            out.append(parse_allow(value))
        except ValueError:
            raise UsageError(
                f"--allow {value!r} is not RULE=OBJECT",
                hint="e.g. --allow lost-values=users.name (a column), --allow lost-rows=sessions "
                "(a table); one object each, no wildcards",
            ) from None
    return tuple(out)


def make_options(
    db: Path,
    migrations: Path,
    fmt: FormatChoice,
    table: str | None,
    *,
    allow: list[str] | None = None,
    **flags: Any,
) -> Options:
    chosen = None if fmt is FormatChoice.AUTO else Format(fmt.value)
    return Options(
        db_path=db,
        migrations_dir=migrations_folder(migrations),
        format=chosen,
        history_table=table,
        allow=allowances(allow),
        **flags,
    )
