"""The `entrypoint` typer app: every command, `--help`, and its usage errors as one line."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Protocol, cast

import typer

from ..base.contract import VERSION
from .exits import core_errors

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
       --accept-data-loss (or that only deleting rows could fit); a push's --dry-run
       exits 15 where the push would
  126  the app command is not executable (no exec bit, no #! line, missing interpreter)
  127  the app command was not found
  129  stopped by SIGHUP before the app was started
  130  stopped by SIGINT (ctrl-c) before the app was started
  143  stopped by SIGTERM (docker stop) before the app was started; for 129-143 each
       migration is committed with its history row or rolled back
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


def _version(value: bool) -> None:
    if value:
        print(f"entrypoint (litedeploy) {VERSION}, SQLite {sqlite3.sqlite_version}")
        raise typer.Exit()


@app.callback()
def _commands(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    # A callback keeps `entrypoint` a group of commands even when main() has loaded only one
    # (typer would otherwise make a lone command the whole program).
    pass


@contextmanager
def errors_to_exit() -> Iterator[None]:
    """Core errors as a message and typer's exit (`main.core_errors`)."""
    with core_errors(typer.Exit):
        yield


class ParseError(Protocol):
    """What typer's parser raises for an unknown option or a value that does not convert."""

    exit_code: int
    ctx: Any

    def format_message(self) -> str: ...

    def show(self) -> None: ...


# click's ClickException: typer exports only its subclass BadParameter (and vendors click in
# a private module), so it is found from there.
PARSE_ERROR = cast(
    "type[Exception]",
    next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException"),
)


def parse_error_to_exit(exc: ParseError) -> int:
    """A usage error from the parser, as one line and a hint like every other error."""
    if type(exc).__name__ == "NoArgsIsHelpError":  # `entrypoint` alone: the help, as before
        exc.show()
        return exc.exit_code
    message = " ".join(exc.format_message().split())
    log.error("error: %s", message[:1].lower() + message[1:])
    command = exc.ctx.command_path if exc.ctx is not None else "entrypoint"
    if _lint_format(exc):
        log.error(
            "hint: --format names the migrations folder's format; GitHub Actions annotations "
            "are --output github"
        )
        return exc.exit_code
    log.error("hint: `%s --help` lists the options, their values and variables", command)
    return exc.exit_code


def _lint_format(exc: ParseError) -> bool:
    """`lint --format github`: the output's format asked of the folder's format option."""
    param = getattr(exc, "param", None)
    return (
        exc.ctx is not None
        and exc.ctx.info_name == "lint"
        and getattr(param, "name", None) == "fmt"
        and "'github'" in exc.format_message()
    )
