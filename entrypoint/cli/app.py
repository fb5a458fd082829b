"""The `entrypoint` typer app, its one error-to-exit-code translation, and `main`."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import typer

from ..errors import EntrypointError

log = logging.getLogger("litedeploy.entrypoint")

EXIT_CODES = """\b
Exit codes:
  0    success (or the app's own code, after exec)
  2    bad option or environment value
  3    migrations folder missing or malformed
  4    database unusable (not SQLite, folder missing)
  5    history needs a decision (out of order, changed, newer database); push in production
  6    a migration failed (on the rehearsal's copy: nothing touched; for real: rolled
       back, or the pre-run backup restored); a failed push is rolled back whole
  7    timed out waiting for another migrator's lock
  8    backup failed (folder not writable, copy failed its check)
  9    not enough free space for the backup
  10   the database is damaged; not migrated
  11   a check failed, or drift with --strict (after migrating: the backup was restored)
  12   restore refused: the backup is missing or damaged
  13   restore refused: the database is in use
  14   the database folder is not a mounted volume (--require-volume)
  15   blocked before anything was written: rows or values the rehearsal saw vanish
       that nobody acknowledged, transaction control that would commit half a
       migration, a finding with --no-rehearse, or a push losing data without
       --accept-data-loss (or that only deleting rows could fit)
  126  the app command is not executable
  127  the app command was not found
  70   internal error (a bug: please report it with LITEDEPLOY_DEBUG=1 output)
"""

app = typer.Typer(
    name="entrypoint",
    help="Container entrypoint for SQLite apps: back up, migrate safely, check, then exec the "
    "app server.\n\n" + EXIT_CODES,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """The one place where core errors become a message and an exit code."""
    try:
        yield
    except EntrypointError as exc:
        log.error("error: %s", exc.message)
        if exc.hint:
            log.error("hint: %s", exc.hint)
        raise typer.Exit(exc.exit_code) from None


def _configure_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("entrypoint: %(message)s"))
    root = logging.getLogger("litedeploy")
    root.addHandler(handler)
    root.setLevel(logging.INFO)


def main() -> None:
    """Console-script entry point."""
    _configure_logging()
    try:
        app()
    except Exception as exc:  # the last line of defence: one line, never a traceback
        if os.environ.get("LITEDEPLOY_DEBUG"):
            raise
        log.error(
            "internal error: %s: %s (set LITEDEPLOY_DEBUG=1 for a traceback)",
            type(exc).__name__,
            exc,
        )
        sys.exit(70)
