"""Which command modules to load: only the one a command line names.

Each module registers its commands on `app` when imported. `entrypoint run` with options on
its command line (without them, `startup` reads it and typer is not loaded at all) loads `run`
alone and none of the code for backups, plans or rehearsals it does not use there; anything
else (`--help`, an unknown command) loads them all, in the order the help lists them. The
imports are written out, not computed, so that PyInstaller's bundle finds each of them.
"""

from __future__ import annotations

from typing import cast

import typer

from .program import PARSE_ERROR, ParseError, app, parse_error_to_exit


def load(command: str | None = None) -> typer.Typer:
    """Register the commands `command` needs (all of them when it names none); return the app."""
    if command == "run":
        from . import run
    else:
        from . import backups, check, lint, plan, rehearse, run, status  # noqa: F401
    return app


def run_typer(args: list[str]) -> int:
    """Run the command line with typer, loading only the command modules it needs."""
    try:
        code = load(args[0] if args else None)(args=args, standalone_mode=False)
    except PARSE_ERROR as exc:
        return parse_error_to_exit(cast(ParseError, exc))
    return code if isinstance(code, int) else 0
