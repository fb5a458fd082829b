"""The `entrypoint` command line: a thin typer layer over the core modules.

`main` loads only the command module its command line needs (`commands.load`); `app`,
here, is the whole app with every command registered (as the tests and `--help` see it).
"""

from __future__ import annotations

import typer

from .program import main

__all__ = ["app", "main"]


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        from .commands import load

        return load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
