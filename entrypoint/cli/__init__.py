"""The `entrypoint` command line: a thin typer layer over the core modules.

`main` reads a container's start (`run -- app`, settings in the environment) without typer
(`startup`), and loads only the command module any other command line needs
(`commands.load`); `app`, here, is the whole typer app with every command registered (as
the tests and `--help` see it).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .main import main

if TYPE_CHECKING:
    import typer

__all__ = ["app", "main"]


def __getattr__(name: str) -> typer.Typer:
    if name == "app":
        from .commands import load

        return load()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
