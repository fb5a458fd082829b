"""Which command modules to load: only the one a command line names.

Each module registers its commands on `app` when imported. `entrypoint run` with options on
its command line (without them, `startup` reads it and typer is not loaded at all) loads `run`
alone and none of the code for backups, plans or rehearsals it does not use there; anything
else (`--help`, an unknown command) loads them all, in the order the help lists them. The
imports are written out, not computed, so that PyInstaller's bundle finds each of them.
"""

from __future__ import annotations

import typer

from .program import app


def load(command: str | None = None) -> typer.Typer:
    """Register the commands `command` needs (all of them when it names none); return the app."""
    if command == "run":
        from . import run
    else:
        from . import backups, check, plan, rehearse, run, status  # noqa: F401
    return app
